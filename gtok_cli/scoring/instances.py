"""Predicted instances matched to truth regions one to one (detection, counting): boxes at IoU ≥ 0.5, points
by the region that holds them, polygons by the box of their vertices, grid masks by the box of their
anchors' cells. ``gtok eval`` (detect, multi,
count) and the count reward share these, so a model is scored the same way in evaluation and in RL.

Example:

    >>> greedy_matches([("dog", (0, 0, 10, 10)), ("dog", (0, 0, 10, 10))], [("dog", (0, 0, 10, 12))])
    1
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from gtok_cli.codecs import Shape
from gtok_cli.scoring.measures import box_iou_matrix, point_hits
from gtok_cli.scoring.truth import Truth

MATCH_IOU = 0.5
"""A predicted box matches a truth box at IoU ≥ 0.5 (COCO's AP50 threshold, MDETR's and Kosmos-2's)."""

Box = tuple[float, float, float, float]


def greedy_matches(
    pred: Sequence[tuple[str, Sequence[float]]], truth: Sequence[tuple[str, Sequence[float]]]
) -> int:
    """Predicted boxes (in answer order) matched one to one to truth boxes of their label with IoU ≥ 0.5:
    each takes the free truth box of its label it overlaps most."""
    if not pred or not truth:
        return 0
    iou = box_iou_matrix([p[1] for p in pred], [t[1] for t in truth])
    same = np.asarray([[p[0] == t[0] for t in truth] for p in pred], dtype=bool)
    iou = np.where(same, iou, -1.0)
    taken = np.zeros(len(truth), dtype=bool)
    matched = 0
    for row in iou:
        cand = np.where(taken, -1.0, row)
        j = int(np.argmax(cand))
        if cand[j] >= MATCH_IOU:
            taken[j] = True
            matched += 1
    return matched


def box_of(shape: Shape, grid: int | None, size: tuple[int, int]) -> Box | None:
    """A box shape's corners; a polygon's (or polyline's) box of its vertices; a grid mask's box of its
    anchors' cells (``grid``: the scheme's); else None."""
    if shape.kind == "box":
        x1, y1, x2, y2 = shape.coords
        return (x1, y1, x2, y2)
    if shape.kind in ("polygon", "polyline") and len(shape.coords) >= 4:
        xs, ys = shape.coords[0::2], shape.coords[1::2]
        return (min(xs), min(ys), max(xs), max(ys))
    if shape.kind == "mask" and shape.anchors and grid:
        w, h = size
        i = [a[0] for a in shape.anchors]
        j = [a[1] for a in shape.anchors]
        return (min(i) / grid * w, min(j) / grid * h, (max(i) + 1) / grid * w, (max(j) + 1) / grid * h)
    return None


def point_matches(points: Sequence[Shape], truth: Truth) -> int:
    """Each point, in answer order, takes the first free region that holds it (real mask, else box)."""
    free = list(range(len(truth.regions)))
    masks: dict[int, Any] = {}
    for p in points:
        for r in free:
            region = truth.regions[r]
            if r not in masks:
                masks[r] = region.mask_array(truth.size, truth.record_id)
            if point_hits([p.coords], region.bbox, masks[r])[0]:
                free.remove(r)
                break
    return len(truth.regions) - len(free)


def instance_matches(shapes: Sequence[Shape], truth: Truth, grid: int | None) -> int:
    """How many of ``truth``'s regions the answer's ``shapes`` ground, one to one: by points when the answer
    has any, else by boxes (masks as their cells' box) at IoU ≥ 0.5, labels ignored (one category asked)."""
    points = [s for s in shapes if s.kind == "point"]
    if points:
        return point_matches(points, truth)
    boxes = [("", b) for s in shapes if (b := box_of(s, grid, truth.size)) is not None]
    return greedy_matches(boxes, [("", r.bbox) for r in truth.regions if r.bbox is not None])


def grounding_score(shapes: Sequence[Shape], truth: Truth, k: int) -> float:
    """How well an answer's first box or point grounds truth region ``k`` (a ``which`` answer): the IoU of a
    box, 1.0 / 0.0 for a point inside / outside it (real mask, else box); 0.0 without either."""
    first = next((s for s in shapes if s.kind in ("box", "point")), None)
    region = truth.regions[k]
    if first is None or region.bbox is None:
        return 0.0
    if first.kind == "point":
        mask = region.mask_array(truth.size, truth.record_id)
        return float(point_hits([first.coords], region.bbox, mask)[0])
    return float(box_iou_matrix([first.coords], [region.bbox])[0, 0])
