"""The one quantiser: every scheme's rounding, clamping and denominator lives here.

All functions take *pixel* coordinates and the image extent along that axis and are vectorised over numpy
arrays (scalars work too). The ratio is computed as ``x * scale / extent`` (multiply first): for integer pixel
coordinates ``x * scale`` is exact, so a coordinate that lies exactly on a bin boundary lands on it instead of
one ulp below (``150 / 640 * 1000`` is fine, but ``x / w * n`` is not in general).

Rounding modes are named, never implied:

- ``floor``: ``floor(v·n)`` clamped to ``0..n−1`` (bins, Florence-2 ``loc``).
- ``half_even``: Python/numpy ``round`` (banker's rounding), used where the reference uses Python ``round``.
- ``half_up``: ``floor(v·s + 0.5)``.
- corner rule (Kosmos-2 and GETok grid): upper-left ``floor(v·n)``, lower-right ``ceil(v·n − 1)``, clamped.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
ArrayLike = npt.ArrayLike

RoundingMode = Literal["floor", "half_even", "half_up"]


def ratio(coord: ArrayLike, extent: ArrayLike, scale: ArrayLike = 1.0) -> FloatArray:
    """``coord * scale / extent`` in float64, clamped to ``[0, scale]`` (normalised form × scale).

    ``scale`` may be an array (one scale per item, e.g. a resized image's extent).
    """
    c = np.asarray(coord, dtype=np.float64)
    e = np.asarray(extent, dtype=np.float64)
    s = np.asarray(scale, dtype=np.float64)
    return np.clip(c * s / e, 0.0, s)


def normalise(coord: ArrayLike, extent: ArrayLike) -> FloatArray:
    """Normalised coordinate: divide by the extent, clamp to [0, 1] (docs/spec.md#coordinates)."""
    return ratio(coord, extent, 1.0)


def round_mode(values: ArrayLike, mode: RoundingMode) -> IntArray:
    v = np.asarray(values, dtype=np.float64)
    if mode == "floor":
        out = np.floor(v)
    elif mode == "half_even":
        out = np.rint(v)  # IEEE round-half-to-even, same as Python's round()
    elif mode == "half_up":
        out = np.floor(v + 0.5)
    else:  # pragma: no cover - Literal guards this
        raise ValueError(f"unknown rounding mode {mode!r}")
    return out.astype(np.int64)


def quantise(
    coord: ArrayLike,
    extent: ArrayLike,
    scale: ArrayLike,
    mode: RoundingMode,
    lo: ArrayLike,
    hi: ArrayLike,
) -> IntArray:
    """Quantise pixel coordinates: ``mode(coord * scale / extent)`` clamped to ``lo..hi`` (inclusive)."""
    return np.clip(round_mode(ratio(coord, extent, scale), mode), lo, hi)


def round_decimals(values: ArrayLike, places: int) -> IntArray:
    """``round(v, places) · 10**places`` exactly as Python's ``round``/``format`` do for each float ``v``.

    Python rounds the *exact binary value* of ``v`` to ``places`` decimals (ties, which are rare, to even):
    ``round(0.0125, 3)`` is 0.013 because the float 0.0125 lies just above the tie, while ``rint(0.0125 *
    1000)`` gives 12. Shikra-style decimal text is defined by Python formatting, so it is reproduced exactly:
    the product ``v · 10**places`` is formed with its exact rounding error (Dekker's two-product;
    ``5**places`` fits in 26 bits for ``places <= 11``) and a computed tie is resolved by the sign of that
    error.
    """
    if not 0 <= places <= 11:
        raise ValueError(f"places must be 0..11, got {places}")
    v = np.asarray(values, dtype=np.float64)
    m = float(10**places)
    p = v * m
    split = v * 134217729.0  # 2**27 + 1: Veltkamp split of v into 26-bit halves
    hi = split - (split - v)
    lo = v - hi
    err = (hi * m - p) + lo * m  # exact: p + err == v * m
    below = np.floor(p)
    tie = (p - below) == 0.5
    q = np.where(tie & (err > 0), below + 1.0, np.where(tie & (err < 0), below, np.rint(p)))
    return q.astype(np.int64)


def floor_bins(coord: ArrayLike, extent: ArrayLike, n: int) -> IntArray:
    """Bin index ``floor(v·n)`` clamped to ``0..n−1``: bin k covers ``[k/n, (k+1)/n)``."""
    return quantise(coord, extent, n, "floor", 0, n - 1)


def bin_centres(index: ArrayLike, n: int) -> FloatArray:
    """Normalised centre ``(k + 0.5) / n`` of bin k."""
    return (np.asarray(index, dtype=np.float64) + 0.5) / n


def bin_centre_pixels(index: ArrayLike, n: int, extent: ArrayLike) -> FloatArray:
    """Bin k of n → the pixel at its centre, clamped to the image extent (how the floor-quantised schemes
    decode: a bin's lower edge is what was written, its centre is the least-error reading)."""
    return np.minimum(to_pixels(bin_centres(index, n), extent), np.asarray(extent, dtype=np.float64))


def corner_cells(x1: ArrayLike, x2: ArrayLike, extent: ArrayLike, n: int) -> tuple[IntArray, IntArray]:
    """Kosmos-2 / GETok corner rule along one axis: first cell ``floor(v1·n)``, last cell ``ceil(v2·n − 1)``.

    Both clamped to ``0..n−1``. A box edge exactly on a cell boundary therefore does not spill into the next
    cell (``v2 = 0.5, n = 32`` gives last cell 15, not 16). The last cell is never before the first one
    (a zero-width box gives one cell).
    """
    first = np.clip(np.floor(ratio(x1, extent, n)), 0, n - 1).astype(np.int64)
    last = np.clip(np.ceil(ratio(x2, extent, n) - 1.0), 0, n - 1).astype(np.int64)
    return first, np.maximum(last, first)


def to_pixels(normalised: ArrayLike, extent: ArrayLike) -> FloatArray:
    """Normalised coordinate → pixels of the original image."""
    return np.asarray(normalised, dtype=np.float64) * np.asarray(extent, dtype=np.float64)
