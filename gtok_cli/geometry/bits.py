"""Bit-packed boolean masks: packing along image rows and fast popcounts.

A mask of shape ``(..., H, W)`` is packed with ``np.packbits(axis=-1)`` (big-endian bits, rows padded to whole
bytes), so a rectangle of rows × byte-columns of a packed mask is still a packed mask of that rectangle.
"""

from __future__ import annotations

import numpy as np

_POPCOUNT_LUT = np.array([bin(v).count("1") for v in range(256)], dtype=np.uint8)
_HAS_BITWISE_COUNT = hasattr(np, "bitwise_count")  # numpy >= 2.0


def pack_rows(mask: np.ndarray) -> np.ndarray:
    """Pack a bool array ``(..., H, W)`` along its last axis → uint8 ``(..., H, ceil(W / 8))``."""
    return np.packbits(mask, axis=-1)


def unpack_rows(packed: np.ndarray, width: int) -> np.ndarray:
    """Inverse of :func:`pack_rows` → bool ``(..., H, width)``."""
    return np.unpackbits(packed, axis=-1, count=width).astype(bool)


def as_words(packed: np.ndarray) -> np.ndarray:
    """Flatten each leading item of ``(m, ...)`` uint8 to a row of uint64 words (zero padded) → ``(m, L)``."""
    m = packed.shape[0]
    flat = np.ascontiguousarray(packed.reshape(m, int(np.prod(packed.shape[1:]))))
    pad = (-flat.shape[1]) % 8
    if pad:
        flat = np.concatenate([flat, np.zeros((m, pad), dtype=np.uint8)], axis=1)
    return flat.view(np.uint64)


def popcount(words: np.ndarray, axis: int = -1) -> np.ndarray:
    """Number of set bits along ``axis`` (int64), for uint8 or uint64 arrays."""
    if _HAS_BITWISE_COUNT:
        return np.bitwise_count(words).sum(axis=axis, dtype=np.int64)
    as_bytes = words.view(np.uint8).reshape(*words.shape[:-1], -1) if axis in (-1, words.ndim - 1) else None
    if as_bytes is None:
        raise ValueError("the lookup-table popcount counts along the last axis only")
    return _POPCOUNT_LUT[as_bytes].sum(axis=-1, dtype=np.int64)
