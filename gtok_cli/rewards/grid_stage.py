"""GETok's grid-stage rewards: the answer in grid tokens (or any scheme's text) against the line's truth.

Every function is ``(answer, meta, **params) -> float`` (docs/rewards.md has the table of formulas and
ranges). Shapes are paired with truth regions in answer order (the k-th box of the answer with the k-th box
region of ``meta``), as ``verify`` pairs them; a region with no shape paired scores as a miss. Answers are
read leniently (``strict=False``: fenced, truncated, clipped answers count as the model meant them,
:func:`gtok_cli.scoring.read_answer`); ``strict=True`` reads them as ``verify`` does and scores an answer with
any unreadable span as a miss. ``format_reward`` is always strict.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from gtok_cli.codecs import Codec
from gtok_cli.errors import UsageError
from gtok_cli.geometry.candidates import Candidates
from gtok_cli.rewards.context import NotApplicable, SchemeSpec, as_meta, not_applicable, resolve_codec
from gtok_cli.rewards.history import offset_stage_format, read_history
from gtok_cli.rewards.reading import Reading, check_codec_params, read_line
from gtok_cli.scoring import anchors_mask, box_iou, corner_l1, first_boxes, mask_iou, point_hits
from gtok_cli.scoring.stripped import rewrap

POINT_SATURATION = 5.0
"""The ``5`` of ``1 − e^(−m/5)`` in :func:`point_reward`."""
POINT_PENALTY = 0.02
"""The ``0.02`` of ``− 0.02·m`` in :func:`point_reward`."""


def format_reward(
    answer: str,
    meta: Any,
    *,
    scheme: SchemeSpec = None,
    previous: str | Sequence[str] | None = None,
    **codec_params: Any,
) -> float:
    """1.0 when the answer has the expected form, else 0.0 (always strict: read as ``verify`` reads).

    Grid stage (no ``previous`` answer to refine): 1.0 iff ``codec.decode(answer)`` reports no issue, finds at
    least one shape, every shape's kind (its wrapper: ``<box>``, ``<point>``, ``<pl>``, ``<seg>``) is a kind
    of the line's truth regions, and the answer holds no ``<offset>`` turn.

    Offset stage (``previous`` holds an answer with at least one shape): 1.0 iff the answer is one refinement
    turn that ``decode_refinement`` reads with no issue, pairs one-to-one with the shapes alive after the
    earlier turns (same count, kinds and anchor counts), and holds no answer shape outside ``<offset>``.

    Example:

        >>> meta = {"record_id": "r", "image_size": [640, 480],
        ...         "regions": [{"kind": "box", "bbox": [150, 100, 400, 350]}]}
        >>> format_reward("<box><grid_7_6><grid_19_23></box>", meta)
        1.0
        >>> format_reward("<point><grid_7_6></point>", meta), format_reward("<box><grid_7_6></box>", meta)
        (0.0, 0.0)
    """
    reading = read_line("format_reward", answer, meta, scheme, True, codec_params)
    history = read_history(reading, previous)
    if history.proposal:
        return 1.0 if offset_stage_format(reading, history) else 0.0
    ans = reading.answer
    kinds = {r.kind for r in reading.truth.regions}
    if not ans.ok or history.answer_has_offsets:
        return 0.0
    return 1.0 if all(s.kind in kinds for s in ans.shapes()) or not kinds else 0.0


def non_repetition_reward(
    answer: str, meta: Any, *, scheme: SchemeSpec = None, strict: bool = False, **codec_params: Any
) -> float:
    """unique / total over the answer's anchors; 1.0 when nothing repeats, 0.0 when there is no anchor.

    Anchors: each grid anchor ``(i, j)`` of a mask (``<seg>``), each point, each whole box and each whole
    polyline (a box's two corners may share a cell: a one-cell box is no repetition). Two anchors are the same
    when they decode to the same coordinates. Range 0–1.

    Example: ``<seg><grid_1_1><grid_2_1><grid_1_1></seg>`` → 2/3.
    """
    reading = read_line("non_repetition_reward", answer, meta, scheme, strict, codec_params)
    items: list[tuple[Any, ...]] = []
    for shape in reading.shapes():
        if shape.kind == "mask" and shape.anchors is not None:
            items += [("mask", a) for a in shape.anchors]
        else:
            items.append((shape.kind, shape.coords))
    return len(set(items)) / len(items) if items else 0.0


def box_reward(
    answer: str, meta: Any, *, scheme: SchemeSpec = None, strict: bool = False, **codec_params: Any
) -> float:
    """IoU + (1 − min(1, L1)), averaged over the line's box regions; range 0–2.

    For box region k and the answer's k-th box (a missing box scores 0): IoU of the two boxes, and
    ``L1 = (|Δx1|/W + |Δy1|/H + |Δx2|/W + |Δy2|/H) / 2``, the mean over the two corners of each corner's
    absolute error normalised per axis by the image width W and height H (issue 14's definition, range 0–2:
    0 for a perfect box, 2 for opposite corners of the image; ``gtok_cli.scoring.corner_l1``).
    A perfect answer scores 2.0; the grid's own quantisation leaves at most half a cell per coordinate.

    Example (640×480, truth ``[0, 0, 320, 240]``, answer the box ``[0, 0, 320, 480]``): IoU 0.5, L1 =
    (240/480)/2 = 0.25, reward 0.5 + 0.75 = 1.25.
    """
    reading = read_line("box_reward", answer, meta, scheme, strict, codec_params)
    regions = reading.regions("box")
    if not regions:
        raise not_applicable("box_reward", reading.meta, "the line has no box region")
    boxes = reading.shapes("box")
    total = 0.0
    for n, k in enumerate(regions):
        truth = reading.truth.regions[k].bbox
        if n >= len(boxes) or truth is None:
            continue
        iou = float(box_iou(boxes[n].coords, truth)[0])
        l1 = float(corner_l1(boxes[n].coords, truth, reading.truth.size)[0])
        total += iou + (1.0 - min(1.0, l1))
    return total / len(regions)


def box_reward_batch(
    answers: Sequence[str],
    metas: Sequence[Any],
    *,
    scheme: SchemeSpec = None,
    strict: bool = False,
    **codec_params: Any,
) -> list[float | None]:
    """:func:`box_reward` of each ``(answer, meta)``, equal to it item by item (None where it raises
    :class:`NotApplicable`), vectorised for the lines with one box region (the REC case):
    ``gtok_cli.scoring.first_boxes`` reads the canonical answers in one pass and IoU and L1 are computed on
    the whole batch; any other line takes :func:`box_reward` itself."""
    if len(answers) != len(metas):
        raise UsageError(f"box_reward_batch: {len(answers)} answers for {len(metas)} metas")
    out: list[float | None] = [None] * len(answers)
    groups: dict[int, tuple[Codec, list[int]]] = {}
    parsed = [as_meta(m) for m in metas]
    for k, m in enumerate(parsed):
        if not _one_box_line(m):
            try:
                out[k] = box_reward(answers[k], m, scheme=scheme, strict=strict, **codec_params)
            except NotApplicable:
                out[k] = None
            continue
        codec = resolve_codec(m, scheme, **check_codec_params("box_reward", codec_params))
        groups.setdefault(id(codec), (codec, []))[1].append(k)
    for codec, rows in groups.values():
        sizes = np.asarray([parsed[k]["image_size"] for k in rows], dtype=np.int64).reshape(-1, 2)
        truths = np.asarray([parsed[k]["regions"][0]["bbox"] for k in rows], dtype=np.float64).reshape(-1, 4)
        texts = [a if isinstance(a, str) else "" for a in (answers[k] for k in rows)]
        if not strict:  # as read_line: the box tags a skip_special_tokens decode stripped, put back
            texts = [rewrap(t, codec)[0] for t in texts]
        boxes = first_boxes(texts, codec, sizes, strict=strict).boxes
        read = ~np.isnan(boxes).any(axis=1)
        l1 = corner_l1(boxes, truths, sizes)
        value = np.where(read, box_iou(boxes, truths) + (1.0 - np.minimum(1.0, l1)), 0.0)
        for k, v in zip(rows, value.tolist(), strict=True):
            out[k] = v
    return out


def _one_box_line(m: Mapping[str, Any]) -> bool:
    """A well-formed meta with exactly one region, a box (anything else takes the general path, which also
    names what is wrong with a bad meta)."""
    regions, size = m.get("regions"), m.get("image_size")
    if not (isinstance(regions, list) and len(regions) == 1 and isinstance(regions[0], Mapping)):
        return False
    bbox = regions[0].get("bbox")
    return (
        regions[0].get("kind") == "box"
        and isinstance(m.get("record_id"), str)
        and isinstance(size, (list, tuple))
        and len(size) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in size)
        and isinstance(bbox, (list, tuple))
        and len(bbox) == 4
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in bbox)
    )


def mask_iou_reward(
    answer: str,
    meta: Any,
    *,
    scheme: SchemeSpec = None,
    strict: bool = False,
    candidates: Candidates | None = None,
    **codec_params: Any,
) -> float:
    """Mask IoU of the answer's k-th mask with mask region k, averaged over the mask regions; range 0–1.

    The predicted mask is what the anchors stand for, as in ``gtok eval``: the union of their grid cells at
    image resolution (the ``cells`` backend, default), or with ``candidates`` (SAM candidates of the line's
    image, ``geometry.sam.SamCandidateMaker``) the union of those anchors' candidate masks. The truth mask is
    the region's real mask when the line carries it, else the union of its mask-token anchors' cells
    (:meth:`gtok_cli.scoring.TruthRegion.truth_mask`). A missing mask scores 0.
    """
    reading = read_line("mask_iou_reward", answer, meta, scheme, strict, codec_params)
    regions = reading.regions("mask")
    truths = [reading.truth.regions[k].truth_mask(reading.truth.size)[0] for k in regions]
    if not regions or any(t is None for t in truths):
        raise not_applicable("mask_iou_reward", reading.meta, "the line has no mask region with a truth mask")
    masks = reading.shapes("mask")
    grid = getattr(reading.codec, "grid", None)
    total = 0.0
    for n, truth in enumerate(truths):
        anchors = masks[n].anchors if n < len(masks) else None
        if not anchors or grid is None or truth is None:
            continue
        total += mask_iou(anchors_mask(anchors, int(grid), reading.truth.size, candidates), truth)
    return total / len(regions)


def points_inside(reading: Reading, points: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    """Per point ``(x, y)``: inside the truth of one of the line's point regions (all its regions when none
    is a point region): the region's truth mask (real, else its mask-token cells), else its box."""
    regions = reading.regions("point") or list(range(len(reading.truth.regions)))
    if not regions:
        raise not_applicable("point reward", reading.meta, "the line has no region")
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    hit = np.zeros(len(p), dtype=bool)
    for k in regions:
        region = reading.truth.regions[k]
        mask, _ = region.truth_mask(reading.truth.size)
        hit |= point_hits(p, region.bbox, mask)
    return hit


def point_reward(
    answer: str, meta: Any, *, scheme: SchemeSpec = None, strict: bool = False, **codec_params: Any
) -> float:
    """hit_rate · (1 − e^(−m/5)) − 0.02·m, with m the number of points in the answer and hit_rate the fraction
    of them inside the truth; 0.0 when the answer has no point.

    A point hits when it lies in the truth mask of one of the line's point regions (the real mask, else the
    union of the region's mask-token cells), or in its box when it has neither. The exponential term rewards
    enough points, the linear one penalises too many: with every point a hit the reward is 0.181 for m = 1,
    0.632 − 0.1 = 0.532 for m = 5 and peaks at 0.6693 for m = 12; m points all missing score −0.02·m.
    Range: [−0.02·m, 0.67).
    """
    reading = read_line("point_reward", answer, meta, scheme, strict, codec_params)
    points = np.asarray([s.coords[:2] for s in reading.shapes("point")], dtype=np.float64).reshape(-1, 2)
    m = len(points)
    if m == 0:
        return 0.0
    hit = points_inside(reading, points)
    hit_rate = float(hit.mean())
    return hit_rate * (1.0 - math.exp(-m / POINT_SATURATION)) - POINT_PENALTY * m


__all__ = [
    "box_reward",
    "box_reward_batch",
    "format_reward",
    "mask_iou_reward",
    "non_repetition_reward",
    "point_reward",
]
