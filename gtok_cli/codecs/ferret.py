"""Ferret: integers on a virtual 1000×1000 canvas after the phrase: ``a dog [234, 208, 625, 729]`` (§3).

Pinned to Ferret's data code: q = int(clamp(x, 0, W − 1) · 1000 / W) (``floor``; the clamp treats x as a pixel
index, so the right edge x = W writes the cell of pixel W − 1). Decode is the bin centre (q + 0.5) · W / 1000,
clamped to the image (Ferret's evaluation uses the left edge q · W / 1000: biased by half a bin, and a left
edge re-encodes one bin lower whenever the float product lands a hair under the integer). Points: ``[x, y]``.

Layout written by :meth:`FerretCodec.encode`: ``label [box], [box], label2 [box]`` (groundings joined by
``", "``; no label → just the brackets). Decode takes as a box's label the text run before it since the
previous span, stripped of spaces and commas; a box preceded only by ``", "`` belongs to the previous phrase.
Bound along x: 0.5/1000 + 1/W (half a bin plus the W − 1 clamp), same along y with H.
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
    matched_boxes,
    ordered_within,
    shape_coords,
)
from gtok_cli.codecs.base import Codec, Decoded, DecodeIssue, ErrorBound, Grounding, Shape, Size
from gtok_cli.errors import InputError
from gtok_cli.quantize import IntArray, bin_centre_pixels, quantise

SCALE = 1000
_BRACKET = re.compile(r"\[([^\[\]]*)\]")
_NUMERIC = re.compile(r"[\d.\s+\-]*,[\d.,\s+\-]*")
_INT = re.compile(r"\d+")
_SEPARATORS = " ,\n\t"


class FerretCodec(Codec):
    name = "ferret"
    kinds = frozenset({"box", "point"})
    carries_label = True
    _fast_re = re.compile(r"(?:([^\[\]]*?) )?\[(\d+), (\d+), (\d+), (\d+)\]")

    def __init__(self, scale: int | None = None, rounding: str | None = None) -> None:
        check_pinned("scale", scale, SCALE)
        check_pinned("rounding", rounding, "floor")

    def params(self) -> dict[str, Any]:
        return {"scale": SCALE, "rounding": "floor"}

    def vocab(self) -> list[str]:
        return []

    def bound(self, size: Size) -> ErrorBound:
        w, h = check_size(size)
        return ErrorBound(0.5 / SCALE + 1 / w, 0.5 / SCALE + 1 / h)

    def _quantise(self, coords: npt.NDArray[np.float64], w: npt.ArrayLike, h: npt.ArrayLike) -> IntArray:
        n = coords.shape[-1] // 2
        ext = np.tile(np.stack(np.broadcast_arrays(w, h), axis=-1), n).astype(np.float64)
        index = np.clip(coords, 0.0, ext - 1.0)  # Ferret clamps to the last pixel index
        return quantise(index, ext, SCALE, "floor", 0, SCALE - 1)

    def _check_label(self, label: str) -> str | None:
        clean = label.strip(_SEPARATORS)
        if not clean:
            return None
        if "[" in label or "]" in label or clean != label:
            raise InputError(
                "ferret label must not contain brackets or start/end with spaces or commas",
                field="label",
                expected="plain phrase",
                found=label,
            )
        return label

    def encode(self, groundings: Sequence[Grounding], size: Size) -> str:
        w, h = check_size(size)
        parts = []
        for g in groundings:
            spans = []
            for s in g.shapes:
                q = self._quantise(shape_coords(s, self.name, self.kinds), w, h)[0].tolist()
                spans.append("[" + ", ".join(str(v) for v in q) + "]")
            label = None if g.label is None else self._check_label(g.label)
            text = ", ".join(spans)
            parts.append(text if label is None else f"{label} {text}")
        return ", ".join(parts)

    def encode_boxes(
        self, boxes: npt.ArrayLike, sizes: npt.ArrayLike, labels: Sequence[str | None] | None = None
    ) -> list[str]:
        b, w, h = batch_arrays(boxes, sizes)
        texts = [f"[{a}, {b_}, {c}, {d}]" for a, b_, c, d in self._quantise(b, w, h).tolist()]
        if labels is not None:
            heads = [None if lab is None else self._check_label(lab) for lab in labels]
            texts = [t if lab is None else f"{lab} {t}" for lab, t in zip(heads, texts, strict=True)]
        return texts

    def decode(self, text: str, size: Size) -> Decoded:
        w, h = check_size(size)
        out = Decoded()
        prev_end = 0
        current: tuple[str | None, int, list[Shape]] | None = None
        current_end = 0

        def close() -> None:
            nonlocal current
            if current is not None:
                out.groundings.append(Grounding(current[0], tuple(current[2])))
                out.spans.append((current[1], current_end))
            current = None

        for m in _BRACKET.finditer(text):
            body = m.group(1)
            if not _NUMERIC.fullmatch(body):
                continue  # prose in brackets
            fields = [f.strip() for f in body.split(",")]
            problem = None
            if len(fields) not in (2, 4):
                problem = "expected [x, y] or [x1, y1, x2, y2]"
            elif not all(_INT.fullmatch(f) for f in fields):
                problem = "coordinates must be integers 0..1000"
            values = [int(f) for f in fields] if problem is None else []
            problem = problem or geometry_issue(values, SCALE, SCALE)
            before = text[prev_end : m.start()]
            prev_end = m.end()
            if problem is not None:
                close()
                out.errors.append(DecodeIssue(m.start(), m.end(), m.group(0), problem))
                continue
            n = len(values) // 2
            px = bin_centre_pixels(values, SCALE, np.tile([w, h], n).astype(np.float64)).tolist()
            shape = Shape.box(*px) if n == 2 else Shape.point(*px)
            label = before.strip(_SEPARATORS)
            if current is not None and not label:
                current[2].append(shape)
            else:
                close()
                start = m.start() - len(before.lstrip(_SEPARATORS)) if label else m.start()
                current = (label or None, start, [shape])
            current_end = m.end()
        close()
        return out

    def decode_boxes(self, texts: Sequence[str], sizes: npt.ArrayLike) -> npt.NDArray[np.float64]:
        s = np.asarray(sizes).reshape(-1, 2)
        q = matched_boxes(texts, self._fast_re, 2)
        out = bin_centre_pixels(q, SCALE, s[:, [0, 1, 0, 1]].astype(np.float64))
        return decode_the_rest(self, texts, s, out, ordered_within(q, SCALE))
