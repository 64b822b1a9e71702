"""Target offsets for boxes, points and polylines: one lattice step toward the truth, or DELETE.

For an anchor at lattice index ``q`` whose true position is ``t`` (continuous lattice coordinate of the
ground-truth pixel coordinate, :meth:`OffsetLattice.continuous_index`), per axis with ``d = t − q``:

    offset = sign(d)   if |d| > ½ step   (moving one step strictly reduces the error)
    offset = 0         if |d| ≤ ½ step   (already at a closest lattice point; a tie stays)

and the anchor gets ``<DELETE>`` instead when ``max(|dx|, |dy|) > delete_radius_cells · m`` steps (too far to
be the object's). A box is two anchors (top-left, bottom-right) that stand or fall together: if either corner
is deleted both are. Polyline vertices and points are independent.

Consequences (tested): one turn never increases the error of a kept anchor on either axis; an anchor one step
from its nearest lattice point returns to it; K turns walk each anchor K steps (at most) toward the truth and
stop at the nearest lattice point. Corner truth for a box is ``(x1, y1)`` / ``(x2, y2)`` in pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gtok_cli.codecs.base import Size
from gtok_cli.refine.lattice import FloatArray, IntArray, Offset, OffsetLattice


@dataclass(frozen=True)
class TargetConfig:
    """``delete_radius_cells``: Chebyshev distance (cells) beyond which an anchor is DELETE; None = never."""

    delete_radius_cells: float | None = 3.0


def step_toward(q: npt.ArrayLike, t: npt.ArrayLike) -> IntArray:
    """Per-axis one-step move from lattice indices ``q`` toward continuous lattice coordinates ``t``."""
    d = np.asarray(t, dtype=np.float64) - np.asarray(q, dtype=np.float64)
    return (np.sign(d) * (np.abs(d) > 0.5)).astype(np.int64)


def anchor_targets(
    q: npt.ArrayLike,
    truth_xy: npt.ArrayLike,
    size: Size,
    lattice: OffsetLattice,
    cfg: TargetConfig = TargetConfig(),
) -> list[Offset]:
    """Offsets for independent anchors (points, polyline vertices): ``q`` k×2 indices, truth k×2 pixels."""
    pos = np.asarray(q, dtype=np.int64).reshape(-1, 2)
    t = lattice.continuous_index(np.asarray(truth_xy, dtype=np.float64).reshape(-1, 2), size)
    if len(t) != len(pos):
        raise ValueError(f"{len(t)} true positions for {len(pos)} anchors")
    moves = step_toward(pos, t)
    far = _too_far(pos, t, lattice, cfg)
    return [None if far[k] else (int(moves[k, 0]), int(moves[k, 1])) for k in range(len(pos))]


def _too_far(
    pos: IntArray, t: FloatArray, lattice: OffsetLattice, cfg: TargetConfig
) -> npt.NDArray[np.bool_]:
    if cfg.delete_radius_cells is None:
        return np.zeros(len(pos), dtype=bool)
    cheb = np.abs(t - pos).max(axis=1) if len(pos) else np.zeros(0)
    return np.asarray(cheb > cfg.delete_radius_cells * lattice.steps_per_cell)


def box_targets(
    q: npt.ArrayLike,
    box_xyxy: Sequence[float],
    size: Size,
    lattice: OffsetLattice,
    cfg: TargetConfig = TargetConfig(),
) -> list[Offset]:
    """Offsets for a box's corners (``q`` 2×2: top-left, bottom-right); both DELETE if either is too far."""
    x1, y1, x2, y2 = (float(v) for v in box_xyxy)
    offs = anchor_targets(q, [[x1, y1], [x2, y2]], size, lattice, cfg)
    return [None, None] if None in offs else offs


def shape_targets(
    kind: str,
    q: npt.ArrayLike,
    truth: Sequence[float],
    size: Size,
    lattice: OffsetLattice,
    cfg: TargetConfig = TargetConfig(),
) -> list[Offset]:
    """Box / point / polyline targets; ``truth`` is the shape's pixel coords (``Shape.coords`` layout)."""
    if kind == "box":
        return box_targets(q, truth, size, lattice, cfg)
    if kind in ("point", "polyline"):
        pts = np.asarray(truth, dtype=np.float64).reshape(-1, 2)
        if kind == "polyline" and len(pts) != len(np.asarray(q).reshape(-1, 2)):
            raise ValueError("polyline proposal and truth must have the same number of vertices")
        if kind == "point" and len(pts) != 1:
            raise ValueError("a point has exactly one (x, y)")
        return anchor_targets(q, pts, size, lattice, cfg)
    raise ValueError(f"no vertex targets for shape kind {kind!r} (masks use refine.classify)")
