"""``gemini``: Google Gemini's detection JSON, ``[{"box_2d": [208, 234, 729, 625], "label": "dog"}]``.

Conventions (Gemini API vision guide; supervision's ``from_google_gemini_2_0`` / ``from_google_gemini_2_5``
in ``supervision/detection/vlm.py`` read it):

- boxes ``"box_2d": [ymin, xmin, ymax, xmax]``, **y first**, on a 0..1000 scale of the original image
  (supervision: ``denormalize_boxes(…, normalization_factor=1000)`` after swapping to x first);
- points ``"point": [y, x]`` on the same scale (Gemini Robotics-ER pointing output);
- every item carries ``"label"`` (supervision skips items without one): a grounding without a label writes
  ``"label": ""``, which decodes to no label;
- the model wraps its answer in a markdown fence (```` ```json … ``` ````); decode finds the JSON list
  inside free text, fence or not.

Quantisation: ``q = round_half_even(v·1000)`` clamped to ``0..1000``; decode ``q/1000``. Bound ``0.5/1000``.
A phrase with several shapes writes one item per shape, each with the phrase as its label. Decode reports
items that are not one of the two shapes with integers in range, and lists that are not valid JSON.
"""

from __future__ import annotations

import json
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
    quantised_shapes,
)
from gtok_cli.codecs.base import Codec, Decoded, DecodeIssue, ErrorBound, Grounding, Shape, Size
from gtok_cli.quantize import IntArray, quantise

SCALE = 1000
_JSON_START = re.compile(r"\[\s*\{")
_DECODER = json.JSONDecoder()
_KEYS = {"box_2d": 4, "point": 2}


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


class GeminiCodec(Codec):
    name = "gemini"
    kinds = frozenset({"box", "point"})
    carries_label = True
    _fast_re = re.compile(r'\[\{"box_2d": \[(\d+), (\d+), (\d+), (\d+)\], "label": "[^"\\]*"\}\]')

    def __init__(self, scale: int | None = None, rounding: str | None = None) -> None:
        check_pinned("scale", scale, SCALE)
        check_pinned("rounding", rounding, "half_even")

    def params(self) -> dict[str, Any]:
        return {"scale": SCALE, "rounding": "half_even"}

    def vocab(self) -> list[str]:
        return []

    def bound(self, size: Size) -> ErrorBound:
        return ErrorBound(0.5 / SCALE, 0.5 / SCALE)

    # ---- encode ------------------------------------------------------------------------------------------
    @staticmethod
    def _yx(coords: npt.NDArray[np.float64], w: npt.ArrayLike, h: npt.ArrayLike) -> IntArray:
        """Pixels (…, x, y, x, y…) → the 0..1000 integers in Gemini's order (y, x, y, x…)."""
        n = coords.shape[-1] // 2
        ext = np.tile(np.stack(np.broadcast_arrays(w, h), axis=-1), n)
        q = quantise(coords, ext, SCALE, "half_even", 0, SCALE)
        return q.reshape(*q.shape[:-1], n, 2)[..., ::-1].reshape(q.shape)

    @staticmethod
    def _item(key: str, values: Sequence[int], label: str | None) -> str:
        lab = json.dumps(label or "", ensure_ascii=False)
        return f'{{"{key}": [{", ".join(str(v) for v in values)}], "label": {lab}}}'

    def encode(self, groundings: Sequence[Grounding], size: Size) -> str:
        w, h = check_size(size)
        shapes = [(s, g.label) for g in groundings for s in g.shapes]
        values = quantised_shapes([s for s, _ in shapes], self.name, self.kinds, lambda c: self._yx(c, w, h))
        items = [
            self._item("box_2d" if s.kind == "box" else "point", q, label)
            for (s, label), q in zip(shapes, values, strict=True)
        ]
        return "[" + ", ".join(items) + "]"

    def encode_boxes(
        self, boxes: npt.ArrayLike, sizes: npt.ArrayLike, labels: Sequence[str | None] | None = None
    ) -> list[str]:
        b, w, h = batch_arrays(boxes, sizes)
        q = self._yx(b, w, h).tolist()
        if labels is None:
            return [f'[{{"box_2d": [{a}, {b_}, {c}, {d}], "label": ""}}]' for a, b_, c, d in q]
        return ["[" + self._item("box_2d", row, lab) + "]" for row, lab in zip(q, labels, strict=True)]

    # ---- decode ------------------------------------------------------------------------------------------
    def decode(self, text: str, size: Size) -> Decoded:
        w, h = check_size(size)
        out = Decoded()
        pos = 0
        while (m := _JSON_START.search(text, pos)) is not None:
            start = m.start()
            try:
                value, end = _DECODER.raw_decode(text, start)
            except json.JSONDecodeError as exc:
                snippet = text[start : start + 80]
                out.errors.append(
                    DecodeIssue(start, start + len(snippet), snippet, f"malformed JSON: {exc.msg}")
                )
                pos = start + 1
                continue
            pos = end
            if not any(isinstance(it, dict) and any(k in it for k in _KEYS) for it in value):
                continue  # some other JSON list in the text
            for item in value:
                g = self._read_item(item, w, h)
                if isinstance(g, str):
                    out.errors.append(DecodeIssue(start, end, json.dumps(item, ensure_ascii=False), g))
                else:
                    out.groundings.append(g)
                    out.spans.append((start, end))
        return out

    @staticmethod
    def _read_item(item: Any, w: int, h: int) -> Grounding | str:
        if not isinstance(item, dict):
            return "list item is not an object"
        label = item.get("label")
        if label is not None and not isinstance(label, str):
            return "label is not a string"
        keys = [k for k in _KEYS if k in item]
        if len(keys) != 1:
            return "expected exactly one of box_2d, point"
        key, n = keys[0], _KEYS[keys[0]]
        yx = item[key]
        if not isinstance(yx, list) or len(yx) != n or not all(_is_int(v) for v in yx):
            return f"{key} must be a list of {n} integers"
        xy = [yx[k + 1 - 2 * (k % 2)] for k in range(n)]  # [y, x, …] → [x, y, …]
        problem = geometry_issue(xy, SCALE, SCALE)
        if problem is not None:
            return problem
        px = (np.asarray(xy, dtype=np.float64) * np.tile([w, h], n // 2) / SCALE).tolist()
        shape = Shape.box(*px) if key == "box_2d" else Shape.point(*px)
        return Grounding(label or None, (shape,))

    def decode_boxes(self, texts: Sequence[str], sizes: npt.ArrayLike) -> npt.NDArray[np.float64]:
        s = np.asarray(sizes).reshape(-1, 2)
        yx = matched_boxes(texts, self._fast_re, 1)
        q = yx[:, [1, 0, 3, 2]]
        out = q * s[:, [0, 1, 0, 1]].astype(np.float64) / SCALE
        return decode_the_rest(self, texts, s, out, ordered_within(q, SCALE))


__all__ = ["SCALE", "GeminiCodec"]
