"""What grid anchors at continuous positions stand for: the mask of anchors after offset turns.

An offset turn moves an anchor by ``offset_step`` cells (docs/spec.md#getok-v1), so a refined mask's anchors
sit between cells. With the ``cells`` backend an anchor stands for its cell; a moved anchor stands for the
same cell-sized square moved with it: the pixels whose centre lies in ``[x − W/2n, x + W/2n) × [y − H/2n, y +
H/2n)`` around its position ``(x, y)``. For an unmoved anchor (a cell centre) that is exactly its cell, the
same pixels as :func:`gtok_cli.scoring.cells_mask` (a pixel belongs to the cell its centre falls in).

Example:

    >>> m = positions_mask([(15.0, 2.5)], 2, (20, 10))  # the centre of cell (1, 0) of a 2×2 grid on 20×10
    >>> int(m.sum()), bool(m[:5, 10:].all())
    (50, True)
    >>> int(positions_mask([(10.0, 2.5)], 2, (20, 10)).sum())  # half a cell left: columns 5..14
    50
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

BoolArray = npt.NDArray[np.bool_]

_TIE = 1e-9
"""Positions come from float sums of half cells; a pixel centre within this (in cells) of a square's edge is
on the edge (the half-open rule then decides)."""


def _span(centre_px: float, extent: int, n: int) -> tuple[int, int]:
    """Pixels ``[a, b)`` along one axis whose centre lies in the cell-sized interval around ``centre_px``."""
    u = centre_px * n / extent  # the position in cells
    # pixel p is in iff lo <= (2p + 1)·n / (2·extent) < hi, with lo, hi = u ∓ 1/2 (in cells)
    scale = 2.0 * extent / n

    def first_at(bound: float) -> int:
        return max(0, min(extent, math.ceil(((bound - _TIE) * scale - 1.0) / 2.0)))

    return first_at(u - 0.5), first_at(u + 0.5)


def positions_mask(points: Iterable[Sequence[float]], grid: int, size: tuple[int, int]) -> BoolArray:
    """The union of the cell-sized squares centred at ``points`` (``(x, y)`` pixels), bool ``(H, W)``."""
    w, h = size
    out = np.zeros((h, w), dtype=bool)
    for x, y in points:
        c0, c1 = _span(float(x), w, grid)
        r0, r1 = _span(float(y), h, grid)
        out[r0:r1, c0:c1] = True
    return out


__all__ = ["positions_mask"]
