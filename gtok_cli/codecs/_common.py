"""Checks and batch helpers shared by the codecs.

Kept private: the codec contract is ``base.py``; this module only avoids writing the same validation and
the same batch-decoding loop in every codec. :class:`BatchBoxCodec` is the ``decode_boxes`` of the codecs
whose canonical one-box text one regex recognises (bins, loc, kosmos2, paligemma, grid).
"""

from __future__ import annotations

import math
import re
from abc import abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from gtok_cli.codecs.base import Codec, DecodeIssue, Grounding, Shape, Size
from gtok_cli.errors import InputError, UsageError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def check_size(size: Size) -> tuple[int, int]:
    """``(width, height)`` as positive ints, or an InputError naming what was found."""
    try:
        w, h = size
    except (TypeError, ValueError):
        raise InputError("image size must be (width, height)", field="size", found=size) from None
    if int(w) != w or int(h) != h or w <= 0 or h <= 0:
        raise InputError(
            "image size must be positive integers", field="size", expected="w > 0, h > 0", found=size
        )
    return int(w), int(h)


def check_shape(shape: Shape, scheme: str, kinds: frozenset[str]) -> None:
    """Reject shapes the scheme cannot write and geometry that is not finite or not ordered."""
    if shape.kind not in kinds:
        raise InputError(
            f"scheme {scheme!r} cannot write a {shape.kind}",
            field="shape.kind",
            expected=" or ".join(sorted(kinds)),
            found=shape.kind,
        )
    if not all(math.isfinite(v) for v in shape.coords):
        raise InputError("coordinates must be finite", field="shape.coords", found=shape.coords)
    expected_len = {"box": 4, "point": 2}.get(shape.kind)
    if expected_len is not None and len(shape.coords) != expected_len:
        raise InputError(
            f"a {shape.kind} has {expected_len} coordinates",
            field="shape.coords",
            expected=str(expected_len),
            found=len(shape.coords),
        )
    if shape.kind == "box":
        x1, y1, x2, y2 = shape.coords
        if x2 < x1 or y2 < y1:
            raise InputError(
                "box corners out of order",
                field="shape.coords",
                expected="x1<=x2, y1<=y2",
                found=shape.coords,
            )


def check_label(label: str | None, scheme: str, forbidden: str) -> str:
    """The label as written (stripped; "" for none). ``forbidden`` characters would break decoding."""
    if label is None:
        return ""
    text = label.strip()
    bad = [c for c in forbidden if c in text]
    if bad:
        raise InputError(
            f"scheme {scheme!r} cannot carry a label containing {''.join(bad)!r}", field="label", found=label
        )
    return text


def check_param(name: str, value: object, allowed: object) -> None:
    if value != allowed:
        raise UsageError(f"parameter {name} must be {allowed!r}, got {value!r}")


def check_pinned(name: str, given: Any, expected: Any) -> None:
    """Parameters that a scheme fixes are still recorded; a manifest asking for another value is refused."""
    if given is not None:
        check_param(name, given, expected)


def shape_coords(shape: Shape, scheme: str, kinds: frozenset[str]) -> npt.NDArray[np.float64]:
    """One shape's coordinates as a 1×k array, after the shared validity checks."""
    check_shape(shape, scheme, kinds)
    return np.asarray([shape.coords], dtype=np.float64)


def quantised_shapes(
    shapes: Sequence[Shape],
    scheme: str,
    kinds: frozenset[str],
    quantise_rows: Callable[[npt.NDArray[np.float64]], npt.NDArray[Any]],
) -> list[list[int]]:
    """Each shape's coordinates quantised, in order: every shape checked first, then all shapes of one kind
    (one coordinate count) quantised in one call (a call per shape cost ~80 % of a detect export)."""
    coords = [shape_coords(s, scheme, kinds) for s in shapes]
    by_kind = {
        kind: iter(quantise_rows(np.concatenate(rows)).tolist())
        for kind in kinds
        if (rows := [c for s, c in zip(shapes, coords, strict=True) if s.kind == kind])
    }
    return [next(by_kind[s.kind]) for s in shapes]


def geometry_issue(values: Sequence[float], hi_x: float, hi_y: float, lo: float = 0) -> str | None:
    """Why decoded integer/decimal coordinates are unusable (out of range, inverted box), or None."""
    xs, ys = values[0::2], values[1::2]
    if any(not lo <= x <= hi_x for x in xs) or any(not lo <= y <= hi_y for y in ys):
        return f"coordinate out of range (x in {lo:g}..{hi_x:g}, y in {lo:g}..{hi_y:g})"
    if len(values) == 4 and (values[2] < values[0] or values[3] < values[1]):
        return "inverted box (x2 < x1 or y2 < y1)"
    return None


def batch_arrays(boxes: npt.ArrayLike, sizes: npt.ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Validated ``(boxes N×4, widths N, heights N)`` for the vectorised encoders."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    s = np.asarray(sizes, dtype=np.float64).reshape(-1, 2)
    if len(s) == 1 and len(b) != 1:
        s = np.broadcast_to(s, (len(b), 2))
    if len(s) != len(b):
        raise InputError("one size per box", field="sizes", expected=str(len(b)), found=len(s))
    bad = ~np.isfinite(b).all(axis=1) | (b[:, 2] < b[:, 0]) | (b[:, 3] < b[:, 1])
    if bad.any():
        k = int(np.argmax(bad))
        raise InputError(
            f"box {k} is not finite or its corners are out of order", field="boxes", found=b[k].tolist()
        )
    w, h = s[:, 0], s[:, 1]
    if ((w <= 0) | (h <= 0) | (w != np.floor(w)) | (h != np.floor(h))).any():
        k = int(np.argmax((w <= 0) | (h <= 0) | (w != np.floor(w)) | (h != np.floor(h))))
        raise InputError(f"size {k} must be positive integers", field="sizes", found=s[k].tolist())
    return b, w, h


def table(strings: Sequence[str]) -> npt.NDArray[np.object_]:
    """Token strings as an object array, so ``table[index_array]`` is one vectorised gather."""
    out = np.empty(len(strings), dtype=object)
    out[:] = list(strings)
    return out


def batch_decode(
    texts: Sequence[str],
    sizes: npt.ArrayLike,
    parse: Callable[[str], tuple[int, ...] | None],
    to_pixels: Callable[[IntArray, FloatArray, FloatArray], FloatArray],
    slow: Callable[[str, Size], npt.NDArray[np.float64]],
) -> FloatArray:
    """First box of each text, fast for canonical single-box texts.

    ``parse`` returns the quantised indices of a text that is exactly one well-formed box (else None);
    those rows are converted in one vectorised ``to_pixels`` call. Every other text goes through the full
    decoder (``slow``), so the result is the same as ``Codec.decode_boxes`` item by item.
    """
    s = np.asarray(sizes, dtype=np.float64).reshape(-1, 2)
    if len(s) == 1 and len(texts) != 1:
        s = np.broadcast_to(s, (len(texts), 2))
    out = np.full((len(texts), 4), math.nan)
    rows: list[int] = []
    indices: list[tuple[int, ...]] = []
    for k, text in enumerate(texts):
        q = parse(text)
        if q is None:
            out[k] = slow(text, (int(s[k, 0]), int(s[k, 1])))
        else:
            rows.append(k)
            indices.append(q)
    if rows:
        r = np.asarray(rows, dtype=np.int64)
        out[r] = to_pixels(np.asarray(indices, dtype=np.int64), s[r, 0], s[r, 1])
    return out


def matched_boxes(
    texts: Sequence[str], pattern: re.Pattern[str], first: int, cast: Callable[[str], float] = int
) -> FloatArray:
    """Per text, the four numbers of groups ``first`` … ``first + 3`` when ``pattern`` matches the whole text,
    else -1 (n×4): the canonical single-box texts of a plain-text scheme (qwen, ferret, shikra)."""
    q = np.full((len(texts), 4), -1.0)
    fast = pattern.fullmatch
    a, b, c, d = first, first + 1, first + 2, first + 3
    for k, text in enumerate(texts):
        m = fast(text)
        if m is not None:
            q[k] = (cast(m[a]), cast(m[b]), cast(m[c]), cast(m[d]))
    return q


def ordered_within(q: FloatArray, hi: float | FloatArray) -> npt.NDArray[np.bool_]:
    """Rows of :func:`matched_boxes` that are a box: every value in ``0..hi``, corners in order."""
    return (q >= 0).all(1) & (q <= hi).all(1) & (q[:, 2] >= q[:, 0]) & (q[:, 3] >= q[:, 1])


def decode_the_rest(
    codec: Codec, texts: Sequence[str], sizes: npt.ArrayLike, out: FloatArray, ok: npt.NDArray[np.bool_]
) -> FloatArray:
    """``out`` with every row not ``ok`` (anything but the canonical single box) from the full decoder."""
    s = np.asarray(sizes).reshape(-1, 2)
    for k in np.flatnonzero(~ok).tolist():
        out[k] = Codec.decode_boxes(codec, [texts[k]], s[k : k + 1])[0]
    return out


def joined_groups(texts: Sequence[str], line_pattern: re.Pattern[str]) -> list[tuple[str, ...]] | None:
    """The groups of ``line_pattern`` for each text, from ONE ``findall`` over all texts joined by newlines.

    ``line_pattern`` (``re.M``) must match every line exactly once, e.g. ``^(?:<box> (\\S+)$)?.*$``: a
    text that is not canonical gets empty groups. None when a text holds a newline itself (then the caller
    goes text by text).
    """
    if not texts:
        return []
    joined = "\n".join(texts)
    if joined.count("\n") != len(texts) - 1:
        return None
    rows: list[tuple[str, ...]] = line_pattern.findall(joined)
    return rows if len(rows) == len(texts) else None


def first_box(groundings: list[Grounding], errors: list[DecodeIssue]) -> FloatArray:
    """The ``decode_boxes`` rule of ``Codec``: the first box, NaN when none or when anything was reported."""
    boxes = [sh for g in groundings for sh in g.shapes if sh.kind == "box"]
    if boxes and not errors:
        return np.asarray(boxes[0].coords, dtype=np.float64)
    return np.full(4, math.nan)


def issue(text: str, start: int, end: int, message: str) -> DecodeIssue:
    return DecodeIssue(start, end, text[start:end], message)


class BatchBoxCodec(Codec):
    """A codec whose canonical single-box text :meth:`_parse_one` recognises: ``decode_boxes`` converts those
    texts in one vectorised :meth:`_to_pixels` call and sends every other text through ``decode``
    (:func:`batch_decode`)."""

    @abstractmethod
    def _parse_one(self, text: str) -> tuple[int, ...] | None:
        """The indices ``(x1, y1, x2, y2)`` of a text that is exactly one well-formed box, else None."""

    @abstractmethod
    def _to_pixels(self, q: IntArray, w: FloatArray, h: FloatArray) -> FloatArray:
        """Indices (n×4) → pixel boxes for images of widths ``w`` and heights ``h``."""

    def decode_boxes(self, texts: Sequence[str], sizes: npt.ArrayLike) -> FloatArray:
        return batch_decode(texts, sizes, self._parse_one, self._to_pixels, self._slow_first)

    def _slow_first(self, text: str, size: Size) -> FloatArray:
        dec = self.decode(text, size)
        return first_box(dec.groundings, dec.errors)
