"""The offset lattice of a grid (docs/spec.md#refinement), in exact integer indices.

Grid ``n`` (default 32); offset step ``s = 1 / m`` cell with ``m = steps_per_cell`` (default 2, half a cell,
so 32×32 + offsets reaches 64×64 precision). Anchor ``(i, j)`` (i = column/x, j = row/y) stands for the cell
centre ``((i + 0.5) / n, (j + 0.5) / n)``; an offset ``(du, dv) ∈ {−1, 0, 1}²`` moves it ``s / n`` per axis.

Representation chosen here: a position on the offset lattice is a pair of **integer lattice indices**
``q = (qx, qy)`` counted in offset steps from the centre of cell 0, so

    grid anchor (i, j)      →  q = (m·i, m·j)
    normalised coordinate   =  (q + m/2) / (m·n)
    one offset (du, dv)     →  q + (du, dv)

Integers keep every chain of turns exact (no float drift) and make "one step" literally ``±1``. Positions are
clamped to the image: ``q ∈ [lo, hi]`` with ``lo = −⌊m/2⌋`` and ``hi = m·n − 1 − ⌊(m−1)/2⌋`` (for ``m = 2``:
−1..63, i.e. normalised 0/64 .. 64/64).

An offset is ``(du, dv)`` or ``None`` for ``<DELETE>``; the token strings live in the grid codec
(:mod:`gtok_cli.codecs.grid`), whose ``apply_refinement`` moves decoded pixel positions by the same steps:
``to_pixels(apply(q, offs))`` equals it (tested), this module only keeps the positions exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from gtok_cli.codecs.base import Size
from gtok_cli.quantize import ratio

if TYPE_CHECKING:
    from gtok_cli.codecs.grid import GridCodec

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

Offset = tuple[int, int] | None
"""One refinement token: ``(du, dv)`` with du, dv ∈ {−1, 0, 1}, or ``None`` for ``<DELETE>``."""

MOVES: tuple[tuple[int, int], ...] = tuple((du, dv) for dv in (-1, 0, 1) for du in (-1, 0, 1))
"""The nine one-step moves, ``(0, 0)`` included, in a fixed order (row-major over dv, du)."""


@dataclass(frozen=True)
class OffsetLattice:
    """Grid ``grid``×``grid`` with ``steps_per_cell`` offset steps per cell (step = 1/steps_per_cell cell)."""

    grid: int = 32
    steps_per_cell: int = 2

    def __post_init__(self) -> None:
        if self.grid < 1 or self.steps_per_cell < 1:
            raise ValueError(f"grid and steps_per_cell must be >= 1, got {self.grid}, {self.steps_per_cell}")

    @staticmethod
    def from_codec(codec: GridCodec) -> OffsetLattice:
        """The lattice of a grid codec (its ``grid`` and ``offset_step``; the step must be 1/m of a cell)."""
        m = round(1.0 / codec.offset_step)
        if m < 1 or abs(m * codec.offset_step - 1.0) > 1e-9:
            raise ValueError(f"offset_step {codec.offset_step} is not 1/m of a cell; refinement needs that")
        return OffsetLattice(codec.grid, m)

    # ---- extent ------------------------------------------------------------------------------------------
    @property
    def step_cells(self) -> float:
        return 1.0 / self.steps_per_cell

    @property
    def lo(self) -> int:
        return -(self.steps_per_cell // 2)

    @property
    def hi(self) -> int:
        m = self.steps_per_cell
        return m * self.grid - 1 - (m - 1) // 2

    @property
    def denominator(self) -> int:
        """``m·n``: lattice steps across the image."""
        return self.steps_per_cell * self.grid

    def step_pixels(self, size: Size) -> tuple[float, float]:
        """One offset step in pixels along x and y."""
        w, h = size
        return (w / self.denominator, h / self.denominator)

    def bound_pixels(self, size: Size) -> tuple[float, float]:
        """Worst-case error of the nearest lattice point: half a step per axis, in pixels."""
        sx, sy = self.step_pixels(size)
        return (sx / 2, sy / 2)

    # ---- conversions -------------------------------------------------------------------------------------
    def from_anchors(self, anchors: npt.ArrayLike) -> IntArray:
        """Grid anchors ``(i, j)`` (k×2) → lattice indices of their cell centres."""
        a = np.asarray(anchors, dtype=np.int64).reshape(-1, 2)
        return a * self.steps_per_cell

    def clamp(self, q: npt.ArrayLike) -> IntArray:
        return np.clip(np.asarray(q, dtype=np.int64), self.lo, self.hi)

    def to_normalised(self, q: npt.ArrayLike) -> FloatArray:
        m = self.steps_per_cell
        return (np.asarray(q, dtype=np.float64) + m / 2) / self.denominator

    def to_pixels(self, q: npt.ArrayLike, size: Size) -> FloatArray:
        """Lattice indices (…×2, x then y) → continuous pixel coordinates of the original image."""
        return self.to_normalised(q) * np.asarray(size, dtype=np.float64)

    def to_pixel_index(self, q: npt.ArrayLike, size: Size) -> IntArray:
        """The pixel (column, row) a lattice position falls in, clamped to the image."""
        px = np.floor(self.to_pixels(q, size)).astype(np.int64)
        return np.minimum(np.maximum(px, 0), np.asarray(size, dtype=np.int64) - 1)

    def continuous_index(self, xy: npt.ArrayLike, size: Size) -> FloatArray:
        """Pixel coordinates (…×2) → continuous lattice coordinate ``v·m·n − m/2`` (multiply first)."""
        p = np.asarray(xy, dtype=np.float64)
        ext = np.asarray(size, dtype=np.float64)
        return ratio(p, ext, float(self.denominator)) - self.steps_per_cell / 2

    def nearest_index(self, xy: npt.ArrayLike, size: Size) -> IntArray:
        """The lattice point nearest to pixel coordinates (ties to the even index), clamped."""
        return self.clamp(np.rint(self.continuous_index(xy, size)).astype(np.int64))

    # ---- offsets -----------------------------------------------------------------------------------------
    def apply(self, q: npt.ArrayLike, offsets: Sequence[Offset]) -> tuple[IntArray, BoolArray]:
        """Apply one offset per position: moved positions of the kept anchors, and the keep mask.

        ``q`` is k×2; ``offsets`` must have exactly k entries (``None`` = DELETE). Moves are clamped to the
        image. Raises ``ValueError`` on a count mismatch or a component outside {−1, 0, 1}.
        """
        pos = np.asarray(q, dtype=np.int64).reshape(-1, 2)
        if len(offsets) != len(pos):
            raise ValueError(f"{len(offsets)} offset tokens for {len(pos)} anchors")
        keep = np.array([o is not None for o in offsets], dtype=bool)
        delta = np.zeros_like(pos)
        for k, off in enumerate(offsets):
            if off is None:
                continue
            du, dv = off
            if du not in (-1, 0, 1) or dv not in (-1, 0, 1):
                raise ValueError(f"offset {off!r} has a component outside {{-1, 0, 1}}")
            delta[k] = (du, dv)
        return self.clamp(pos + delta)[keep], keep
