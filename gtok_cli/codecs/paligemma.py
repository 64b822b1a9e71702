"""``paligemma``: PaliGemma detection text, ``<loc0213><loc0240><loc0746><loc0639> dog``.

Order y1 x1 y2 x2. Quantisation ``q = round(v·1023)`` clamped to ``0..1023``, decode ``q/1023``.

Rounding mode: **half-to-even**. big_vision builds PaliGemma's RefCOCO training targets in
``big_vision/pp/proj/paligemma/segmentation.py`` (``refcoco_mask2str``) as
``tf.cast(tf.round(bbox * 1023), tf.int32)`` then ``tf.clip_by_value(…, 0, 1023)``, and ``tf.round`` rounds
half to even (banker's rounding). So ``v·1023 = 0.5`` gives ``<loc0000>`` and ``1.5`` gives ``<loc0002>``
(a 2046-pixel axis puts pixels 1 and 3 exactly on those ties).

Bound: ``0.5/1023`` per axis (normalised): rounding to the nearest of the 1024 points ``q/1023`` that span
``[0, 1]`` exactly.

Text: objects separated by ``" ; "`` as PaliGemma's detection output; a phrase with several boxes writes one
object per box with the same label; an object without a label is just its loc tokens. Points (not a PaliGemma
output format; our definition, same y-first order): ``<locY><locX> label``.

Decoding: every maximal run of ``<locNNNN>`` tokens (whitespace between tokens allowed) is one object;
4 tokens are a box, 2 a point, anything else is reported; its label is the text after the run up to the
next ``;``, newline or run, stripped (None when empty). Labels cannot contain ``<``, ``;`` or a newline.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from gtok_cli import quantize
from gtok_cli.codecs._common import (
    BatchBoxCodec,
    FloatArray,
    IntArray,
    batch_arrays,
    check_label,
    check_param,
    check_shape,
    check_size,
    issue,
    table,
)
from gtok_cli.codecs.base import Decoded, ErrorBound, Grounding, Shape, Size

SCALE = 1023
_TOKEN = r"<loc[^<>_]*>"  # not <loc_…> (Florence-2)
_RUN = re.compile(rf"{_TOKEN}(?:[ \t]*{_TOKEN})*")
_INNER = re.compile(r"<loc([^<>_]*)>")
_LABEL_END = re.compile(r"[;\n]")
_FORBIDDEN = "<;\n"


class PaliGemmaCodec(BatchBoxCodec):
    name = "paligemma"
    kinds = frozenset({"box", "point"})
    carries_label = True

    def __init__(self, bins: int = 1024, rounding: str = "half_even") -> None:
        check_param("bins", bins, 1024)
        check_param("rounding", rounding, "half_even")
        self._tokens = [f"<loc{k:04d}>" for k in range(SCALE + 1)]
        self._table = table(self._tokens)
        self._fast = re.compile(r"<loc(\d{4})><loc(\d{4})><loc(\d{4})><loc(\d{4})>(?: [^<;\n]*)?")

    def params(self) -> dict[str, Any]:
        return {"bins": 1024, "rounding": "half_even"}

    def vocab(self) -> list[str]:
        return list(self._tokens)

    def bound(self, size: Size) -> ErrorBound:
        return ErrorBound(0.5 / SCALE, 0.5 / SCALE)

    @staticmethod
    def quantise(coord: npt.ArrayLike, extent: npt.ArrayLike) -> IntArray:
        """``round_half_even(coord·1023/extent)`` clamped to ``0..1023``."""
        return quantize.quantise(coord, extent, SCALE, "half_even", 0, SCALE)

    # ---- encode ------------------------------------------------------------------------------------------
    def _object(self, shape: Shape, label: str, w: int, h: int) -> str:
        check_shape(shape, self.name, self.kinds)
        xy = np.asarray(shape.coords)
        yx = xy.reshape(-1, 2)[:, ::-1].ravel()  # PaliGemma writes y before x
        q = self.quantise(yx, np.asarray([h, w] * (len(xy) // 2)))
        return "".join(self._tokens[int(k)] for k in q) + (f" {label}" if label else "")

    def encode(self, groundings: Sequence[Grounding], size: Size) -> str:
        w, h = check_size(size)
        objects: list[str] = []
        for g in groundings:
            label = check_label(g.label, self.name, _FORBIDDEN)
            objects.extend(self._object(s, label, w, h) for s in g.shapes)
        return " ; ".join(objects)

    # ---- decode ------------------------------------------------------------------------------------------
    def decode(self, text: str, size: Size) -> Decoded:
        w, h = check_size(size)
        out = Decoded()
        runs = list(_RUN.finditer(text))
        for k, m in enumerate(runs):
            stop = runs[k + 1].start() if k + 1 < len(runs) else len(text)
            tail = text[m.end() : stop]
            cut = _LABEL_END.search(tail)
            raw_label = tail[: cut.start()] if cut else tail
            label = raw_label.strip() or None
            end = m.end() + len(raw_label.rstrip())
            values, problem = self._read_run(m.group(0))
            if problem:
                out.errors.append(issue(text, m.start(), m.end(), problem))
                continue
            q = np.asarray(values, dtype=np.float64) / SCALE
            if len(values) == 2:
                shape = Shape.point(q[1] * w, q[0] * h)
            else:
                shape = Shape.box(q[1] * w, q[0] * h, q[3] * w, q[2] * h)
            out.groundings.append(Grounding(label, (shape,)))
            out.spans.append((m.start(), end))
        return out

    @staticmethod
    def _read_run(run: str) -> tuple[list[int], str | None]:
        values: list[int] = []
        for raw in _INNER.findall(run):
            if len(raw) != 4 or not raw.isdigit():
                return [], f"<loc{raw}> is not a PaliGemma loc token (4 digits)"
            if int(raw) > SCALE:
                return [], f"<loc{raw}> is out of range 0000..{SCALE}"
            values.append(int(raw))
        if len(values) not in (2, 4):
            return [], f"a run of {len(values)} loc tokens is neither a box (4) nor a point (2)"
        if len(values) == 4 and (values[2] < values[0] or values[3] < values[1]):
            return [], "box corners out of order"
        return values, None

    # ---- batch -------------------------------------------------------------------------------------------
    def encode_boxes(
        self,
        boxes: npt.ArrayLike,
        sizes: npt.ArrayLike,
        labels: Sequence[str | None] | None = None,
    ) -> list[str]:
        b, w, h = batch_arrays(boxes, sizes)
        t = self._table
        y1, x1 = self.quantise(b[:, 1], h), self.quantise(b[:, 0], w)
        y2, x2 = self.quantise(b[:, 3], h), self.quantise(b[:, 2], w)
        body = t[y1] + t[x1] + t[y2] + t[x2]
        if labels is not None:
            written = [check_label(lab, self.name, _FORBIDDEN) for lab in labels]
            body = body + table([f" {lab}" if lab else "" for lab in written])
        out: list[str] = body.tolist()
        return out

    def _parse_one(self, text: str) -> tuple[int, ...] | None:
        m = self._fast.fullmatch(text)
        if m is None:
            return None
        y1, x1, y2, x2 = int(m[1]), int(m[2]), int(m[3]), int(m[4])
        if max(y1, x1, y2, x2) > SCALE or y2 < y1 or x2 < x1:
            return None
        return (x1, y1, x2, y2)

    def _to_pixels(self, q: IntArray, w: FloatArray, h: FloatArray) -> FloatArray:
        return (q.astype(np.float64) / SCALE) * np.stack([w, h, w, h], axis=1)


__all__ = ["SCALE", "PaliGemmaCodec"]
