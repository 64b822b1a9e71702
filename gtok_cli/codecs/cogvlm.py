"""``cogvlm``: CogVLM grounding, ``[[234,208,625,729]]``: three-digit zero-padded integers, no spaces.

Conventions, from CogVLM's own grounding parser (THUDM/CogVLM, ``utils/utils/grounding_parser.py``, also
``docs/src/utils/utils/grounding_parser.py``): spans match ``\\[\\[(.*?)\\]\\]``, boxes inside one span
are split on ``;`` and each number is read as ``int(y) / 1000`` of the image (``boxstr_to_boxes``); the
model card and paper state coordinates "normalized to [000, 999]" with three digits.

- quantisation ``q = floor(v·1000)`` clamped to ``0..999`` (the "[000, 999]" range; the parser's
  ``q/1000`` is the lower edge of bin q), written ``f"{q:03d}"``; decode the bin centre ``(q + 0.5)/1000``
  (the lower edge is half a bin biased and re-encodes a bin lower whenever the float product lands a hair
  under the integer; same choice as ``qwen-vl`` and ``ferret``), clamped to the image. Bound ``0.5/1000``;
- several boxes of one phrase share one span: ``[[a,b,c,d;e,f,g,h]]``; a point is ``[[x,y]]``; boxes and
  points never share a span;
- no label in the span (CogVLM writes the phrase in the surrounding prose, its parser finds it with spaCy
  noun chunks), so decode returns ``label=None``; several spans are joined by ``" "``.

Decode reports spans whose numbers are not three digits, groups that are neither 2 nor 4 numbers, and
inverted boxes. Brackets holding anything but digits, commas and semicolons are prose, not spans.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

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
from gtok_cli.quantize import IntArray, bin_centre_pixels, quantise

SCALE = 1000
_SPAN = re.compile(r"\[\[([^\[\]]*)\]\]")
_NUMERIC = re.compile(r"[\d,;\s]*\d[\d,;\s]*")
_THREE = re.compile(r"\d{3}")


class CogVLMCodec(Codec):
    name = "cogvlm"
    kinds = frozenset({"box", "point"})
    carries_label = False
    _fast_re = re.compile(r"\[\[(\d{3}),(\d{3}),(\d{3}),(\d{3})\]\]")

    def __init__(self, scale: int | None = None, rounding: str | None = None) -> None:
        check_pinned("scale", scale, SCALE)
        check_pinned("rounding", rounding, "floor")

    def params(self) -> dict[str, Any]:
        return {"scale": SCALE, "rounding": "floor"}

    def vocab(self) -> list[str]:
        return []

    def bound(self, size: Size) -> ErrorBound:
        return ErrorBound(0.5 / SCALE, 0.5 / SCALE)

    @staticmethod
    def _quantise(coords: npt.NDArray[np.float64], w: npt.ArrayLike, h: npt.ArrayLike) -> IntArray:
        n = coords.shape[-1] // 2
        ext = np.tile(np.stack(np.broadcast_arrays(w, h), axis=-1), n)
        return quantise(coords, ext, SCALE, "floor", 0, SCALE - 1)

    # ---- encode ------------------------------------------------------------------------------------------
    def encode(self, groundings: Sequence[Grounding], size: Size) -> str:
        w, h = check_size(size)
        spans = []
        for g in groundings:
            run: list[str] = []
            kind = None
            for s in g.shapes:
                if kind is not None and s.kind != kind:  # boxes and points never share a span
                    spans.append("[[" + ";".join(run) + "]]")
                    run = []
                kind = s.kind
                q = self._quantise(shape_coords(s, self.name, self.kinds), w, h)[0].tolist()
                run.append(",".join(f"{v:03d}" for v in q))
            if run:
                spans.append("[[" + ";".join(run) + "]]")
        return " ".join(spans)

    def encode_boxes(
        self, boxes: npt.ArrayLike, sizes: npt.ArrayLike, labels: Sequence[str | None] | None = None
    ) -> list[str]:
        b, w, h = batch_arrays(boxes, sizes)
        return [f"[[{a:03d},{b_:03d},{c:03d},{d:03d}]]" for a, b_, c, d in self._quantise(b, w, h).tolist()]

    # ---- decode ------------------------------------------------------------------------------------------
    def decode(self, text: str, size: Size) -> Decoded:
        w, h = check_size(size)
        out = Decoded()
        for m in _SPAN.finditer(text):
            body = m.group(1)
            if not _NUMERIC.fullmatch(body):
                continue  # prose in double brackets
            shapes, problem = self._read(body, w, h)
            if problem is not None:
                out.errors.append(issue(text, m.start(), m.end(), problem))
                continue
            out.groundings.append(Grounding(None, tuple(shapes)))
            out.spans.append((m.start(), m.end()))
        return out

    def _read(self, body: str, w: int, h: int) -> tuple[list[Shape], str | None]:
        groups = [part.split(",") for part in body.split(";")]
        widths = {len(g) for g in groups}
        if len(widths) != 1 or widths.pop() not in (2, 4):
            return [], "expected x,y or x1,y1,x2,y2 (';' between several)"
        shapes = []
        for group in groups:
            if not all(_THREE.fullmatch(f) for f in group):
                return [], "coordinates must be three digits 000..999"
            values = [int(f) for f in group]
            problem = geometry_issue(values, SCALE - 1, SCALE - 1)
            if problem is not None:
                return [], problem
            n = len(values) // 2
            px = bin_centre_pixels(values, SCALE, np.tile([w, h], n).astype(np.float64)).tolist()
            shapes.append(Shape.box(*px) if n == 2 else Shape.point(*px))
        return shapes, None

    def decode_boxes(self, texts: Sequence[str], sizes: npt.ArrayLike) -> npt.NDArray[np.float64]:
        s = np.asarray(sizes).reshape(-1, 2)
        q = matched_boxes(texts, self._fast_re, 1)
        out = bin_centre_pixels(q, SCALE, s[:, [0, 1, 0, 1]].astype(np.float64))
        return decode_the_rest(self, texts, s, out, ordered_within(q, SCALE - 1))


__all__ = ["SCALE", "CogVLMCodec"]
