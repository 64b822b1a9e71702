"""Read a file that is one huge top-level JSON array, one element at a time (Visual Genome's GB-sized
``region_descriptions.json`` / ``objects.json`` / ``relationships.json``).

:mod:`gtok_cli.ingest.json_chunks` slices an array held in an *object* at element boundaries it can find by
byte patterns; a top-level array of nested objects (VG: ``[{"regions": [{…}, {…}], "id": 1}, …]``) has the
same ``}, {`` inside every element, so it cannot be cut that way. Here the file is read in blocks, decoded
as UTF-8 incrementally, and each element is parsed by the C scanner of the standard ``json`` module
(``JSONDecoder.raw_decode``), which reports where the element ends: memory holds one block plus one element,
whatever the file's size. An element cut by a block's end fails to parse and is retried with the next block
appended; an element larger than :data:`MAX_ELEMENT_CHARS` (or the end of the file reached inside one) is an
error naming the element's index.

Example::

    for index, element in iter_json_array("region_descriptions.json"):
        ...
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from gtok_cli.errors import InputError
from gtok_cli.jsonio import open_input

BLOCK_BYTES = 8 << 20
MAX_ELEMENT_CHARS = 256 << 20
"""No VG element comes near this (the largest image's regions are ~100 kB); past it the file is broken."""
_WS = " \t\n\r"
_NUMBER_CHARS = frozenset("0123456789.eE+-")
_DECODER = json.JSONDecoder()


def iter_json_array(
    path: str | Path,
    *,
    block_bytes: int = BLOCK_BYTES,
    on_bytes: Callable[[int], None] | None = None,
) -> Iterator[tuple[int, Any]]:
    """``(index, element)`` for each element of the file's top-level array, in order (``.gz`` read through).

    ``on_bytes(n)`` is told of each block read (a progress bar). Errors (not an array, invalid or truncated
    JSON, bad UTF-8) are InputErrors naming the file and the element index reached.
    """
    file = str(path)
    with open_input(path) as fh:
        reader = _Reader(fh, file, block_bytes, on_bytes)
        reader.expect("[", "the file's top level", "a JSON array ([…])")
        index = 0
        if reader.peek() == "]":
            reader.pos += 1
        else:
            while True:
                yield index, reader.element(index)
                index += 1
                sep = reader.peek()
                if sep == ",":
                    reader.pos += 1
                    continue
                if sep == "]":
                    reader.pos += 1
                    break
                reader.fail(index, "',' or ']' after an element", sep or "the end of the file")
        if reader.peek() != "":
            reader.fail(index, "nothing after the array's closing ]", reader.peek())


class _Reader:
    """A text buffer over the file's blocks; ``pos`` is the next unread character of ``buf``."""

    def __init__(self, fh: Any, file: str, block_bytes: int, on_bytes: Callable[[int], None] | None) -> None:
        self.fh = fh
        self.file = file
        self.block_bytes = block_bytes
        self.on_bytes = on_bytes
        self.decoder = codecs.getincrementaldecoder("utf-8")()
        self.buf = ""
        self.pos = 0
        self.eof = False

    def more(self) -> bool:
        """Append the next block (dropping what was consumed); False at the end of the file."""
        if self.eof:
            return False
        data = self.fh.read(self.block_bytes)
        if self.on_bytes is not None and data:
            self.on_bytes(len(data))
        try:
            text = self.decoder.decode(data, final=not data)
        except UnicodeDecodeError as exc:
            raise InputError(
                f"not valid UTF-8: {exc.reason}", file=self.file, reason="text.encoding"
            ) from None
        if not data:
            self.eof = True
        self.buf = self.buf[self.pos :] + text
        self.pos = 0
        return True

    def peek(self) -> str:
        """The next non-whitespace character ("" at the end of the file), not consumed."""
        while True:
            buf, pos, n = self.buf, self.pos, len(self.buf)
            while pos < n and buf[pos] in _WS:
                pos += 1
            self.pos = pos
            if pos < n:
                return buf[pos]
            if not self.more():
                return ""

    def expect(self, char: str, where: str, expected: str) -> None:
        found = self.peek()
        if found != char:
            raise InputError(
                f"{where} is not {expected}", file=self.file, field="(top level)", expected=expected,
                found=found or "an empty file", reason="json.structure",
            )  # fmt: skip
        self.pos += 1

    def element(self, index: int) -> Any:
        self.peek()
        while True:
            try:
                value, end = _DECODER.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                if len(self.buf) - self.pos > MAX_ELEMENT_CHARS or not self.more():
                    reason = "json.truncated" if self.eof and exc.pos >= len(self.buf) - 1 else "json.invalid"
                    if self.eof and exc.msg.startswith("Unterminated"):
                        reason = "json.truncated"
                    raise InputError(
                        f"element [{index}] is not valid JSON: {exc.msg}", file=self.file,
                        record=f"[{index}]", reason=reason,
                    ) from None  # fmt: skip
                continue
            # a number read up to the buffer's end (or to a "." / "e" whose digits are in the next block) may
            # continue there
            if (
                not self.eof
                and type(value) in (int, float)
                and (end >= len(self.buf) or self.buf[end] in _NUMBER_CHARS)
            ):
                self.more()
                continue
            self.pos = end
            return value

    def fail(self, index: int, expected: str, found: str) -> None:
        truncated = found == "the end of the file"
        raise InputError(
            "file ends inside the array" if truncated else "unexpected character between elements",
            file=self.file, record=f"[{index}]", expected=expected, found=found,
            reason="json.truncated" if truncated else "json.invalid",
        )  # fmt: skip
