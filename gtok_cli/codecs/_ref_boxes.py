"""Shared layout of ``internvl`` and ``deepseek-vl2``: a phrase tag, then ONE box tag holding a nested list.

``{ref_open}a dog{ref_close}{box_open}[[x1, y1, x2, y2], [x1, y1, x2, y2]]{box_close}``: integers on a
``0..hi`` scale (``round_half_even(v·scale)``, clamped), ``", "`` between boxes and between numbers, one box
tag per phrase. Decoding: every box tag is one grounding; its label is the phrase tag that ends exactly where
the box tag starts (else None). Anything in a box tag that is not such a list of 4-integer lists, a value
beyond ``hi``, an inverted box or an unclosed tag is reported.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from gtok_cli.codecs._common import (
    batch_arrays,
    check_pinned,
    check_size,
    decode_the_rest,
    geometry_issue,
    issue,
    matched_boxes,
    ordered_within,
    shape_coords,
)
from gtok_cli.codecs.base import Codec, Decoded, ErrorBound, Grounding, Shape, Size
from gtok_cli.errors import InputError
from gtok_cli.quantize import IntArray, quantise

_BOX_LIST = re.compile(r"\s*\[\s*(\[[^\[\]]*\](?:\s*,\s*\[[^\[\]]*\])*)\s*\]\s*")
_ONE_BOX = re.compile(r"\[\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*\]")
_INNER = re.compile(r"\[[^\[\]]*\]")


class RefBoxListCodec(Codec):
    """``{ref}label{/ref}{box}[[…], […]]{/box}`` with half-even integers on ``0..hi`` (``hi = scale``)."""

    ref_open: ClassVar[str]
    ref_close: ClassVar[str]
    box_open: ClassVar[str]
    box_close: ClassVar[str]
    scale: ClassVar[int]
    """The text's integer range is ``0..scale``; decode is ``q / scale`` of the image."""
    carries_label = True

    def __init__(self, scale: int | None = None, rounding: str | None = None) -> None:
        check_pinned("scale", scale, self.scale)
        check_pinned("rounding", rounding, "half_even")
        o, c = re.escape(self.box_open), re.escape(self.box_close)
        ro, rc = re.escape(self.ref_open), re.escape(self.ref_close)
        self._span_re = re.compile(
            rf"{ro}(?P<ref>(?:(?!{ro}|{rc}).)*){rc}|{o}(?P<box>(?:(?!{o}|{c}).)*)(?P<closed>{c})?", re.S
        )
        self._fast_re = re.compile(rf"(?:{ro}([^<]*){rc})?{o}\[\[(\d+), (\d+), (\d+), (\d+)\]\]{c}")

    def params(self) -> dict[str, Any]:
        return {"scale": self.scale, "rounding": "half_even"}

    def vocab(self) -> list[str]:
        return [self.ref_open, self.ref_close, self.box_open, self.box_close]

    def bound(self, size: Size) -> ErrorBound:
        return ErrorBound(0.5 / self.scale, 0.5 / self.scale)

    # ---- encode ------------------------------------------------------------------------------------------
    def _quantise(self, boxes: npt.NDArray[np.float64], w: npt.ArrayLike, h: npt.ArrayLike) -> IntArray:
        ext = np.stack(np.broadcast_arrays(w, h, w, h), axis=-1)
        return quantise(boxes, ext, self.scale, "half_even", 0, self.scale)

    def _head(self, label: str | None) -> str:
        if label is None:
            return ""
        for tag in (self.ref_open, self.ref_close, self.box_open, self.box_close):
            if tag in label:
                raise InputError(
                    f"{self.name} label cannot contain {tag!r}",
                    field="label",
                    expected="plain text",
                    found=label,
                )
        return f"{self.ref_open}{label}{self.ref_close}"

    def _body(self, q: list[list[int]]) -> str:
        inner = ", ".join(f"[{a}, {b}, {c}, {d}]" for a, b, c, d in q)
        return f"{self.box_open}[{inner}]{self.box_close}"

    def encode(self, groundings: Sequence[Grounding], size: Size) -> str:
        w, h = check_size(size)
        parts = []
        for g in groundings:
            if not g.shapes:
                continue
            coords = np.concatenate([shape_coords(s, self.name, self.kinds) for s in g.shapes])
            parts.append(self._head(g.label) + self._body(self._quantise(coords, w, h).tolist()))
        return "".join(parts)

    def encode_boxes(
        self, boxes: npt.ArrayLike, sizes: npt.ArrayLike, labels: Sequence[str | None] | None = None
    ) -> list[str]:
        b, w, h = batch_arrays(boxes, sizes)
        bo, bc = self.box_open, self.box_close
        texts = [f"{bo}[[{a}, {b_}, {c}, {d}]]{bc}" for a, b_, c, d in self._quantise(b, w, h).tolist()]
        if labels is not None:
            texts = [self._head(lab) + t for lab, t in zip(labels, texts, strict=True)]
        return texts

    # ---- decode ------------------------------------------------------------------------------------------
    def decode(self, text: str, size: Size) -> Decoded:
        w, h = check_size(size)
        out = Decoded()
        ref: tuple[str, int, int] | None = None  # label, start, end of the last phrase tag
        for m in self._span_re.finditer(text):
            if m.group("ref") is not None:
                ref = (m.group("ref"), m.start(), m.end())
                continue
            if m.group("closed") is None:
                out.errors.append(issue(text, m.start(), m.end(), f"unclosed {self.box_open}"))
                continue
            boxes, problem = self._read_list(m.group("box"), w, h)
            if problem is not None:
                out.errors.append(issue(text, m.start(), m.end(), problem))
                continue
            labelled = ref is not None and ref[2] == m.start()
            start = ref[1] if labelled and ref is not None else m.start()
            out.groundings.append(Grounding(ref[0] if labelled and ref is not None else None, tuple(boxes)))
            out.spans.append((start, m.end()))
        return out

    def _read_list(self, body: str, w: int, h: int) -> tuple[list[Shape], str | None]:
        whole = _BOX_LIST.fullmatch(body)
        if whole is None:
            return [], "expected [[x1, y1, x2, y2], …] with integers"
        boxes = []
        for inner in _INNER.findall(whole.group(1)):
            nums = _ONE_BOX.fullmatch(inner)
            if nums is None:
                return [], f"{inner} is not [x1, y1, x2, y2] with integers"
            values = [int(v) for v in nums.groups()]
            problem = geometry_issue(values, self.scale, self.scale)
            if problem is not None:
                return [], problem
            s = self.scale
            boxes.append(
                Shape.box(values[0] * w / s, values[1] * h / s, values[2] * w / s, values[3] * h / s)
            )
        return boxes, None

    def decode_boxes(self, texts: Sequence[str], sizes: npt.ArrayLike) -> npt.NDArray[np.float64]:
        s = np.asarray(sizes).reshape(-1, 2).astype(np.float64)
        q = matched_boxes(texts, self._fast_re, 2)
        out = q * s[:, [0, 1, 0, 1]] / self.scale
        return decode_the_rest(self, texts, s, out, ordered_within(q, self.scale))


__all__ = ["RefBoxListCodec"]
