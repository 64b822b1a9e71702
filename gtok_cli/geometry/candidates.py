"""Candidate masks: one per grid point, indexed ``k = j * n + i`` (row-major; i = column, j = row).

Grid geometry shared with the grid codec (docs/spec.md#getok-v1): anchor ``(i, j)`` stands for the cell centre
``((i + 0.5) / n, (j + 0.5) / n)``; in pixels ``((i + 0.5) * W / n, (j + 0.5) * H / n)`` — the same points as
``segment_anything.utils.amg.build_point_grid(n)`` scaled by ``(W, H)``.

A pixel belongs to the cell its centre falls in: pixel column ``x`` is in cell column
``floor((x + 0.5) * n / W)`` (the codec's ``floor(v * n)`` applied to the pixel centre ``v = (x + 0.5) / W``),
likewise rows with ``H``. Every pixel is in exactly one cell; when ``W < n`` some cells hold no pixel.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from gtok_cli.geometry.bits import pack_rows, popcount, unpack_rows

if TYPE_CHECKING:  # torch only on the sam / GPU path
    import torch


def cell_edges(extent: int, n: int) -> np.ndarray:
    """Pixel edges ``e`` (n + 1 of them) of the n cells along an axis: cell c is pixels [e[c], e[c+1]).

    ``e[c]`` is the first pixel p with ``floor((p + 0.5) * n / extent) >= c``, that is
    ``ceil((2 c extent - n) / 2n)`` clamped at 0: exact integer arithmetic, no float rounding.
    """
    c = np.arange(n + 1, dtype=np.int64)
    return np.maximum(0, -((n - 2 * c * extent) // (2 * n)))


def cell_of_pixel(extent: int, n: int) -> np.ndarray:
    """Cell index of each pixel along an axis: ``floor((2p + 1) n / (2 extent))``."""
    p = np.arange(extent, dtype=np.int64)
    return ((2 * p + 1) * n) // (2 * extent)


def grid_points_px(n: int, width: int, height: int) -> np.ndarray:
    """The n² prompt points ``(x, y)`` in pixels, row ``k = j * n + i`` (cell centres)."""
    centres = (np.arange(n, dtype=np.float64) + 0.5) / n
    xs = np.tile(centres[None, :], (n, 1)) * width
    ys = np.tile(centres[:, None], (1, n)) * height
    return np.stack([xs, ys], axis=-1).reshape(-1, 2)


def grid_index(i: int, j: int, n: int) -> int:
    return j * n + i


def anchor_of_index(k: int, n: int) -> tuple[int, int]:
    """Grid index → anchor ``(i, j)`` (column, row)."""
    return k % n, k // n


@dataclass(frozen=True)
class CandidateStats:
    """Per candidate: pixel count and bbox in packed coordinates (rows [y0, y1), byte columns [b0, b1));
    an empty candidate has y0 = H, y1 = 0, b0 = Wb, b1 = 0 (meets nothing)."""

    areas: np.ndarray
    y0: np.ndarray
    y1: np.ndarray
    b0: np.ndarray
    b1: np.ndarray


def candidate_stats(packed: np.ndarray) -> CandidateStats:
    """:class:`CandidateStats` of packed candidates ``(K, H, Wb)``."""
    areas = popcount(packed.reshape(packed.shape[0], -1))
    rows_any = np.bitwise_or.reduce(packed, axis=2) != 0  # (K, H); much faster than .any() on uint8
    cols_any = np.bitwise_or.reduce(packed, axis=1) != 0  # (K, Wb)
    h, wb = rows_any.shape[1], cols_any.shape[1]
    nonempty = areas > 0
    return CandidateStats(
        areas=areas,
        y0=np.where(nonempty, rows_any.argmax(axis=1), h),
        y1=np.where(nonempty, h - rows_any[:, ::-1].argmax(axis=1), 0),
        b0=np.where(nonempty, cols_any.argmax(axis=1), wb),
        b1=np.where(nonempty, wb - cols_any[:, ::-1].argmax(axis=1), 0),
    )


class Candidates:
    """The n² candidate masks of one image (bool, full image resolution).

    Held bit-packed along rows (``packed``: uint8 ``(n², H, ceil(W / 8))``) for the numpy greedy, and/or as a
    torch bool tensor ``(n², H, W)`` on a device for the torch greedy; each form is made from the other on
    demand.
    """

    def __init__(
        self,
        grid: int,
        width: int,
        height: int,
        *,
        packed: np.ndarray | None = None,
        dense: torch.Tensor | None = None,
        stats: CandidateStats | None = None,
        source: str = "",
    ) -> None:
        if packed is None and dense is None:
            raise ValueError("Candidates need packed or dense masks")
        k = grid * grid
        if packed is not None and packed.shape != (k, height, (width + 7) // 8):
            raise ValueError(
                f"packed candidates have shape {packed.shape}, expected {(k, height, (width + 7) // 8)}"
            )
        if dense is not None and tuple(dense.shape) != (k, height, width):
            raise ValueError(
                f"dense candidates have shape {tuple(dense.shape)}, expected {(k, height, width)}"
            )
        self.grid = grid
        self.width = width
        self.height = height
        self.source = source
        self._packed = packed
        self._dense = dense
        self._stats = stats

    def __len__(self) -> int:
        return self.grid * self.grid

    @property
    def packed(self) -> np.ndarray:
        if self._packed is None:
            assert self._dense is not None
            self._packed = pack_rows_torch(self._dense)
        return self._packed

    @property
    def stats(self) -> CandidateStats:
        if self._stats is None:
            self._stats = candidate_stats(self.packed)
        return self._stats

    def dense_torch(self, device: Any = "cpu") -> torch.Tensor:
        import torch

        if self._dense is None or str(self._dense.device) != str(torch.device(device)):
            if self._dense is not None:
                return self._dense.to(device)
            return torch.from_numpy(unpack_rows(self.packed, self.width)).to(device)
        return self._dense

    def mask(self, k: int) -> np.ndarray:
        """Candidate ``k`` as a bool ``(H, W)`` array."""
        return unpack_rows(self.packed[k], self.width)


def anchors_to_mask(anchors: Iterable[Sequence[int]], candidates: Candidates) -> np.ndarray:
    """The union of the candidate masks at ``anchors`` (``[[i, j], …]``) → bool ``(H, W)``.

    Turning tokens back into a mask must use the candidates built with the same backend and ``select`` rule
    the tokens were solved with; this is the one place that union is formed.
    """
    n = candidates.grid
    union = np.zeros((candidates.height, (candidates.width + 7) // 8), dtype=np.uint8)
    for i, j in anchors:
        if not (0 <= i < n and 0 <= j < n):
            raise ValueError(f"anchor ({i}, {j}) outside the {n}x{n} grid")
        union |= candidates.packed[grid_index(int(i), int(j), n)]
    return unpack_rows(union, candidates.width)


def pack_rows_torch(dense: torch.Tensor) -> np.ndarray:
    """Pack a torch bool ``(..., H, W)`` on its own device (8× less to copy back) → like ``pack_rows``."""
    import torch

    if dense.device.type == "cpu":
        return pack_rows(dense.numpy())
    width = dense.shape[-1]
    pad = (-width) % 8
    x = torch.nn.functional.pad(dense.to(torch.uint8), (0, pad))
    x = x.reshape(*x.shape[:-1], -1, 8)
    weights = torch.tensor([128, 64, 32, 16, 8, 4, 2, 1], dtype=torch.uint8, device=dense.device)
    packed = (x * weights).sum(dim=-1, dtype=torch.uint8)
    return np.ascontiguousarray(packed.cpu().numpy())
