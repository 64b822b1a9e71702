"""The measures eval and the rewards share: box IoU (row-wise and pairwise), masks of grid anchors and their
IoU, point-in-truth hits, and the normalised L1 corner error.

Masks of grid anchors (docs/spec.md#mask-tokens): with the ``cells`` backend the union of the anchors' own
cells at image resolution (a pixel belongs to the cell its centre falls in: ``geometry.candidates``); with
SAM candidates of the image (``geometry.sam.SamCandidateMaker``, the rule ``gtok masks`` solved with) the
union of those candidate masks (``geometry.candidates.anchors_to_mask``).

Example:

    >>> box_iou([[0, 0, 10, 10]], [[5, 0, 15, 10]]).tolist()
    [0.3333333333333333]
    >>> round(float(corner_l1([[0, 0, 10, 10]], [[10, 0, 10, 10]], [[100, 50]])[0]), 3)
    0.05
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from gtok_cli.geometry.candidates import Candidates, anchors_to_mask, cell_of_pixel
from gtok_cli.geometry.compare import box_iou

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

__all__ = [
    "anchors_mask",
    "box_iou",
    "box_iou_matrix",
    "cells_mask",
    "corner_l1",
    "mask_iou",
    "mask_overlap",
    "point_hits",
    "point_in_box",
    "point_in_mask",
]


def box_iou_matrix(a: npt.ArrayLike, b: npt.ArrayLike) -> FloatArray:
    """IoU of every box of ``a`` (n×4 xyxy) with every box of ``b`` (m×4): n×m."""
    p = np.asarray(a, dtype=np.float64).reshape(-1, 4)[:, None, :]
    q = np.asarray(b, dtype=np.float64).reshape(-1, 4)[None, :, :]
    iw = np.clip(np.minimum(p[..., 2], q[..., 2]) - np.maximum(p[..., 0], q[..., 0]), 0, None)
    ih = np.clip(np.minimum(p[..., 3], q[..., 3]) - np.maximum(p[..., 1], q[..., 1]), 0, None)
    inter = iw * ih
    area_p = (p[..., 2] - p[..., 0]) * (p[..., 3] - p[..., 1])
    area_q = (q[..., 2] - q[..., 0]) * (q[..., 3] - q[..., 1])
    union = area_p + area_q - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def cells_mask(anchors: Iterable[Sequence[int]], grid: int, size: tuple[int, int]) -> BoolArray:
    """The union of the anchors' grid cells at image resolution, bool ``(H, W)``: the ``cells`` backend's
    ``anchors_to_mask`` without building its n² candidates (a pixel's cell is ``cell_of_pixel``)."""
    w, h = size
    chosen = np.zeros((grid, grid), dtype=bool)  # [row j, column i]
    for i, j in anchors:
        if not (0 <= i < grid and 0 <= j < grid):
            raise ValueError(f"anchor ({i}, {j}) outside the {grid}x{grid} grid")
        chosen[int(j), int(i)] = True
    rows = cell_of_pixel(h, grid)
    cols = cell_of_pixel(w, grid)
    out: BoolArray = chosen[rows[:, None], cols[None, :]]
    return out


def anchors_mask(
    anchors: Iterable[Sequence[int]], grid: int, size: tuple[int, int], candidates: Candidates | None = None
) -> BoolArray:
    """What mask tokens stand for, bool ``(H, W)``: the union of the anchors' cells (``candidates`` None, the
    ``cells`` backend), or the union of the given candidates' masks (SAM candidates of the image)."""
    if candidates is None:
        return cells_mask(anchors, grid, size)
    return anchors_to_mask(anchors, candidates)


def mask_overlap(pred: npt.ArrayLike, truth: npt.ArrayLike) -> tuple[int, int]:
    """``(intersection, union)`` pixel counts of two bool masks of one shape (cIoU sums these)."""
    p = np.asarray(pred, dtype=bool)
    t = np.asarray(truth, dtype=bool)
    return int(np.count_nonzero(p & t)), int(np.count_nonzero(p | t))


def mask_iou(pred: npt.ArrayLike, truth: npt.ArrayLike) -> float:
    """IoU of two bool masks (0 when both are empty)."""
    inter, union = mask_overlap(pred, truth)
    return inter / union if union else 0.0


def point_in_box(points: npt.ArrayLike, boxes: npt.ArrayLike) -> BoolArray:
    """Row-wise: point ``(x, y)`` inside box ``[x1, y1, x2, y2]`` (edges included)."""
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    out: BoolArray = (p[:, 0] >= b[:, 0]) & (p[:, 0] <= b[:, 2]) & (p[:, 1] >= b[:, 1]) & (p[:, 1] <= b[:, 3])
    return out


def point_in_mask(points: npt.ArrayLike, mask: npt.ArrayLike) -> BoolArray:
    """Per point ``(x, y)`` in continuous pixels: whether the pixel it lies in (``floor``, the last pixel for
    a point on the right/bottom edge) is in ``mask`` (bool ``(H, W)``); a point outside the image misses."""
    m = np.asarray(mask, dtype=bool)
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    h, w = m.shape
    inside = (p[:, 0] >= 0) & (p[:, 0] <= w) & (p[:, 1] >= 0) & (p[:, 1] <= h) & np.isfinite(p).all(axis=1)
    px = np.clip(np.floor(np.nan_to_num(p[:, 0])), 0, w - 1).astype(np.int64)
    py = np.clip(np.floor(np.nan_to_num(p[:, 1])), 0, h - 1).astype(np.int64)
    out: BoolArray = inside & m[py, px]
    return out


def point_hits(points: npt.ArrayLike, box: Sequence[float] | None, mask: Any = None) -> BoolArray:
    """Per point: inside the truth ``mask`` (bool ``(H, W)``) when there is one, else inside ``box``."""
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if mask is not None:
        return point_in_mask(p, mask)
    if box is None:
        return np.zeros(len(p), dtype=bool)
    return point_in_box(p, np.broadcast_to(np.asarray(box, dtype=np.float64), (len(p), 4)))


def corner_l1(pred: npt.ArrayLike, truth: npt.ArrayLike, sizes: npt.ArrayLike) -> FloatArray:
    """Row-wise normalised L1 corner error of boxes: ``(|Δx1|/W + |Δy1|/H + |Δx2|/W + |Δy2|/H) / 2``, the
    mean over the two corners of each corner's L1 distance in normalised units (0 for a perfect box, 2 for
    opposite corners of the image; more only for boxes outside it)."""
    p = np.asarray(pred, dtype=np.float64).reshape(-1, 4)
    t = np.asarray(truth, dtype=np.float64).reshape(-1, 4)
    s = np.asarray(sizes, dtype=np.float64).reshape(-1, 2)
    scale = s[:, [0, 1, 0, 1]]
    out: FloatArray = (np.abs(p - t) / scale).sum(axis=1) / 2.0
    return out
