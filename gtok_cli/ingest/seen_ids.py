"""Which ids were seen already, for duplicate-id checks over millions of items in little memory.

A Python ``set`` of 5.4M ints (Visual Genome's region ids) costs ~300 MB; ids in ``[0, 2**32)`` are kept as
bits of a growing ``bytearray`` instead (the range VG, COCO-style and SA-1B ids use: ~1 MB for ids up to
10M). Other ids (negative, huge, strings) fall back to a set.

Example::

    seen = SeenIds()
    seen.add(7)        # False: new
    seen.add(7)        # True: seen before
"""

from __future__ import annotations

from collections.abc import Hashable

_BITMAP_LIMIT = 1 << 32


class SeenIds:
    __slots__ = ("_bits", "_other")

    def __init__(self) -> None:
        self._bits = bytearray()
        self._other: set[Hashable] = set()

    def add(self, key: Hashable) -> bool:
        """Record ``key``; True when it had been added before."""
        if type(key) is int and 0 <= key < _BITMAP_LIMIT:
            byte, bit = key >> 3, 1 << (key & 7)
            bits = self._bits
            if byte >= len(bits):
                bits.extend(bytes(max(byte + 1 - len(bits), len(bits))))  # doubling: amortised O(1)
            if bits[byte] & bit:
                return True
            bits[byte] |= bit
            return False
        if key in self._other:
            return True
        self._other.add(key)
        return False
