"""Field checks the caption-and-span sources share (MDETR JSON, the Hugging Face parquet copies, GRIT).

Each check returns the value in canonical form or raises an InputError naming the file, the record and the
field, with what was expected and found (``reason`` ``field.missing`` / ``field.type`` as in
:mod:`gtok_cli.ingest.coco_validate`, or a specific one such as ``span.outside``).

Integers may arrive as integral floats (GRIT stores span offsets in ``list<double>`` columns) or as decimal
strings (MDETR's Flickr30k files keep the XML's ``"500"`` for ``width`` / ``height``); each check says which
it accepts, nothing else is coerced.

    >>> span_of([0, 5], "a dog", file="f", record="r", field="tokens_positive[0]")
    (0, 5)
"""

from __future__ import annotations

import math
from typing import Any, TypedDict

from gtok_cli.errors import InputError
from gtok_cli.ingest.coco_validate import MISSING, field_error

__all__ = ["MISSING", "Where", "int_of", "number_list", "plain_span", "size_of", "span_of", "text_of"]


class Where(TypedDict):
    """The file and record an error names (``**where`` into the checks)."""

    file: str
    record: str


def _is_int(value: Any) -> bool:
    return type(value) is int


def int_of(
    value: Any, *, file: str, record: str, field: str, integral_float: bool = False, digits: bool = False
) -> int:
    """An integer (never a bool); with ``integral_float`` also ``19.0``, with ``digits`` also ``"19"``."""
    if _is_int(value):
        return int(value)
    if integral_float and type(value) is float and math.isfinite(value) and value.is_integer():
        return int(value)
    if digits and type(value) is str and value.isascii() and value.isdigit():
        return int(value)
    kinds = "an integer" + (" (or an integral float)" if integral_float else "")
    kinds += " (or a string of digits)" if digits else ""
    raise field_error(file, record, field, kinds, value)


def size_of(value: Any, *, file: str, record: str, field: str, digits: bool = False) -> int:
    """A positive image dimension."""
    n = int_of(value, file=file, record=record, field=field, digits=digits)
    if n < 1:
        raise field_error(file, record, field, "a positive integer", value)
    return n


def text_of(value: Any, *, file: str, record: str, field: str) -> str:
    """A string with something in it."""
    if type(value) is not str or not value.strip():
        raise field_error(file, record, field, "a non-empty string", value)
    return value


def number_list(value: Any, n: int, *, file: str, record: str, field: str, what: str) -> list[float]:
    """Exactly ``n`` finite numbers (ints or floats, not bools), as floats."""
    if (
        type(value) is not list
        or len(value) != n
        or not all(type(v) in (int, float) and math.isfinite(v) for v in value)
    ):
        raise field_error(file, record, field, what, value)
    return [float(v) for v in value]


def plain_span(span: Any, n: int) -> bool:
    """``span`` is a list ``[start, end]`` of ints with ``0 <= start < end <= n`` (the fast yes; a no goes
    to :func:`span_of` for its error)."""
    return (
        type(span) is list
        and len(span) == 2
        and type(span[0]) is int
        and type(span[1]) is int
        and 0 <= span[0] < span[1] <= n
    )


def span_of(
    value: Any, text: str, *, file: str, record: str, field: str, integral_float: bool = False
) -> tuple[int, int]:
    """A ``[start, end)`` character span inside ``text`` with ``start < end``."""
    if type(value) not in (list, tuple) or len(value) != 2:
        raise field_error(file, record, field, "[start, end] character offsets", value)
    start, end = (
        int_of(v, file=file, record=record, field=field, integral_float=integral_float) for v in value
    )
    if not 0 <= start < end <= len(text):
        raise InputError(
            "span lies outside the caption",
            file=file,
            record=record,
            field=field,
            expected=f"0 <= start < end <= {len(text)} (the caption's length)",
            found=list(value),
            reason="span.outside",
        )
    return start, end
