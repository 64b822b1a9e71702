"""Parse one big top-level array of a JSON object in chunks (COCO ``annotations``: ~860k objects, ~450 MB).

``orjson.loads`` of the whole file holds the input, orjson's internal document and every Python object at
once. Parsing the array in slices of ~16 MB keeps one slice's worth of that alive at a time, and lets the
caller turn each slice into compact output and drop it.

Correctness does not rest on the byte patterns used to find the slices: each slice is parsed by orjson as
``[ slice ]`` and must give a list; the rest of the document, with the array replaced by a one-off sentinel,
must parse to an object whose ``key`` is that sentinel. A slice boundary inside a string or a nested value
cannot pass both checks (the slice would hold an unterminated string or unbalanced brackets), so when they
pass the slices are exactly the array's elements. When anything does not fit (pretty-printed files, odd
layouts, invalid JSON), :class:`NotChunkable` is raised and the caller parses the whole document instead,
which also gives orjson's exact error for invalid input.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

CHUNK_BYTES = 16 << 20
WINDOW_BYTES = 4 << 20
"""How far past a chunk's nominal end to look for an element boundary (else: whole-document parse)."""
TAIL_BYTES = 1 << 20
"""How much of the file's end to search for the array's end first."""
_SEPARATORS = (b"},{", b"}, {")
_KEY_TAIL = re.compile(rb"\s*:\s*\[")


class NotChunkable(Exception):
    """The document cannot be split safely; parse it whole."""


@dataclass
class ChunkedDocument:
    data: bytes
    head: dict[str, Any]
    """The document without the array (``head[key]`` is None)."""
    bounds: list[tuple[int, int]]
    """Each slice as ``data[start:end]``: whole elements and the separators between them (not yet proven)."""

    @property
    def chunks(self) -> Iterator[list[Any]]:
        """The array's elements, slice by slice; raises NotChunkable if a slice turns out not to be one."""
        for start, end in self.bounds:
            yield parse_slice(self.data, start, end)


def split_array(data: bytes, key: str, chunk_bytes: int | None = None) -> ChunkedDocument:
    """Parse ``data`` (a JSON object) with ``data[key]`` (an array of objects) delivered in chunks."""
    chunk_bytes = chunk_bytes or CHUNK_BYTES
    start = _array_start(data, key)
    end = _array_end(data, start)
    sentinel = "gtok-chunked-" + os.urandom(8).hex()
    try:
        head = orjson.loads(data[: start - 1] + orjson.dumps(sentinel) + data[end + 1 :])
    except orjson.JSONDecodeError:
        raise NotChunkable("the document around the array is not valid on its own") from None
    if type(head) is not dict or head.get(key) != sentinel:
        raise NotChunkable(f"{key!r} found is not the top-level array")
    head[key] = None
    return ChunkedDocument(data, head, _slice_bounds(data, start, end, chunk_bytes))


def _array_start(data: bytes, key: str) -> int:
    """Index just after the ``[`` that opens the array of ``"key":`` (its first occurrence)."""
    at = data.find(f'"{key}"'.encode())
    match = _KEY_TAIL.match(data, at + len(key) + 2) if at >= 0 else None
    if match is None:
        raise NotChunkable(f"no {key!r} array")
    return match.end()


def _array_end(data: bytes, start: int) -> int:
    """Index of the ``]`` that closes the array (a guess, checked later by parsing).

    COCO puts only the small ``categories`` after ``annotations``, so the end is looked for from the back of
    the file first: the earliest ``}]`` in the last MB after which the document continues validly. Else the
    first ``}]`` after the start (a scan of the whole array).
    """
    if data[start : start + 1] == b"]":
        return start
    lo, hi = max(start, len(data) - TAIL_BYTES), len(data)
    best = -1
    for _ in range(16):
        at = data.rfind(b"}]", lo, hi)
        if at < 0:
            break
        try:
            orjson.loads(b'{"":0' + data[at + 2 :])
            best = at
        except orjson.JSONDecodeError:
            pass
        hi = at + 1
    if best < 0:
        best = data.find(b"}]", start)
    if best < 0:
        raise NotChunkable("array end not found")
    return best + 1


def _slice_bounds(data: bytes, start: int, end: int, chunk_bytes: int) -> list[tuple[int, int]]:
    """Cut ``data[start:end]`` (the array's inside) after an element's ``}`` about every ``chunk_bytes``."""
    separators: tuple[bytes, ...] = _SEPARATORS
    window = WINDOW_BYTES
    bounds: list[tuple[int, int]] = []
    pos = start
    while pos < end:
        cut = end
        if end - pos > chunk_bytes + window:
            lo, hi = pos + chunk_bytes, pos + chunk_bytes + window
            hits = [(i, sep) for sep in separators if (i := data.find(sep, lo, hi)) >= 0]
            if not hits:
                raise NotChunkable("no element boundary near the chunk end")
            at, sep = min(hits)
            separators = (sep,)  # a file keeps one style; don't scan for the other each time
            cut = at + 1  # just after the "}"
        bounds.append((pos, cut))
        pos = data.index(b"{", cut) if cut < end else end
    return bounds


def parse_slice(data: bytes, start: int, end: int) -> list[Any]:
    """The elements in ``data[start:end]``, parsed as ``[ slice ]``; NotChunkable if that is not a list."""
    text = bytearray(b"[")
    text += memoryview(data)[start:end]
    text += b"]"
    try:
        items = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise NotChunkable("a chunk is not a sequence of whole elements") from None
    if type(items) is not list:
        raise NotChunkable("a chunk is not a sequence of whole elements")
    return items
