"""Binary erosion and dilation with a rectangular structuring element, in numpy only.

The rectangle has half-sizes ``(rx, ry)`` pixels, i.e. it is ``(2·rx + 1) × (2·ry + 1)``. Both operations are
separable (a rectangle is the product of two intervals), and each 1-D pass counts the ones in a sliding window
with a cumulative sum, so the cost is O(H·W) whatever the radius and there is no per-pixel Python loop.

Windows are truncated at the image border: pixels outside the image are ignored, not treated as background.
So a mask that touches the border is not eroded from that side (a clamped offset move cannot leave the
image either). This equals ``scipy.ndimage.binary_erosion(..., border_value=1)`` and ``binary_dilation``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]


def _window_bounds(length: int, radius: int) -> tuple[IntArray, IntArray]:
    idx = np.arange(length, dtype=np.int64)
    return np.maximum(idx - radius, 0), np.minimum(idx + radius, length - 1) + 1


def _window_counts(mask: BoolArray, radius: int, axis: int) -> tuple[IntArray, IntArray]:
    """Ones in each sliding window along ``axis`` and the window's in-image length."""
    length = mask.shape[axis]
    m = np.moveaxis(mask, axis, 0)
    # ext[radius + k] = ones among the first k (k = 0..length), 0 before, the total after: window i is
    # ext[2·radius + 1 + i] − ext[i], two slices instead of two gathers (int32: counts ≤ length)
    ext = np.zeros((length + 1 + 2 * radius, *m.shape[1:]), dtype=np.int32)
    np.cumsum(m, axis=0, dtype=np.int32, out=ext[radius + 1 : radius + 1 + length])
    ext[radius + 1 + length :] = ext[radius + length]
    counts = ext[2 * radius + 1 : 2 * radius + 1 + length] - ext[:length]
    lo, hi = _window_bounds(length, radius)
    return np.moveaxis(counts, 0, axis), hi - lo


def dilate(mask: npt.ArrayLike, rx: int, ry: int) -> BoolArray:
    """Pixels with at least one mask pixel within ``|dx| ≤ rx, |dy| ≤ ry``."""
    out = np.asarray(mask, dtype=bool)
    if rx > 0:
        out = _window_counts(out, rx, axis=1)[0] > 0
    if ry > 0:
        out = _window_counts(out, ry, axis=0)[0] > 0
    return out


def erode(mask: npt.ArrayLike, rx: int, ry: int) -> BoolArray:
    """Pixels whose whole ``|dx| ≤ rx, |dy| ≤ ry`` neighbourhood (inside the image) is mask."""
    out = np.asarray(mask, dtype=bool)
    if rx > 0:
        counts, lengths = _window_counts(out, rx, axis=1)
        out = counts == lengths[None, :]
    if ry > 0:
        counts, lengths = _window_counts(out, ry, axis=0)
        out = counts == lengths[:, None]
    return out
