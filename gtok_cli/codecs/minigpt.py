"""``minigpt-v2``: MiniGPT-v2 grounding, ``<p>a dog</p> {<23><20><62><72>}``.

Conventions, from MiniGPT-v2's own code (Vision-CAIR/MiniGPT-4):

- training targets (``minigpt4/datasets/datasets/coco_dataset.py`` ``ReferCOCODataset.preprocess``): each
  corner ``x / W * 100`` then ``int(…)``, written ``"{{<{}><{}><{}><{}>}}"``: truncation onto 0..100;
  a phrase is ``"<p>" + phrase + "</p> " + bbox`` (``flickr.py`` ``PhraseToObjectDataset``);
- several boxes of one phrase are joined by ``<delim>``: ``{<…>…}<delim>{<…>…}`` (``demo_v2.py``
  ``visualize_all_bbox_together`` splits on ``<delim>`` after matching ``<p>(.*?)\\}(?!<)``);
- evaluation (``eval_scripts/eval_ref.py``) accepts ``\\{<\\d{1,3}><\\d{1,3}><\\d{1,3}><\\d{1,3}>\\}`` and
  maps ``q / 100 * W``.

Quantisation: ``q = floor(v·100)`` clamped to ``0..100`` (``quantize.quantise(…, "floor", 0, 100)``;
computed as ``x·100/W``, multiply first, so a coordinate exactly on a bin edge lands on it where MiniGPT-v2's
``x / W * 100`` can fall one ulp short). Decode is the bin centre ``(q + 0.5)/100`` clamped to the image
(their ``q/100`` is the bin's lower edge, half a bin biased). Bound ``0.5/100`` per axis. Boxes only; no
added tokens (the numbers are plain text for LLaMA-2's tokenizer). Labels cannot contain ``<``, ``>``,
``{`` or ``}``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from gtok_cli.codecs._common import (
    batch_arrays,
    check_label,
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

SCALE = 100
DELIM = "<delim>"
_FORBIDDEN = "<>{}"
# an optional phrase, then one or more {…} groups joined by <delim>
_SPAN = re.compile(r"(?:<p>(?P<label>[^<>]*)</p>\s*)?(?P<boxes>\{<[^{}]*\}(?:<delim>\{<[^{}]*\})*)")
_GROUP = re.compile(r"\{([^{}]*)\}")
_BOX = re.compile(r"<(\d{1,3})><(\d{1,3})><(\d{1,3})><(\d{1,3})>")


class MiniGPTv2Codec(Codec):
    name = "minigpt-v2"
    kinds = frozenset({"box"})
    carries_label = True
    _fast_re = re.compile(r"(?:<p>([^<>]*)</p> )?\{<(\d{1,3})><(\d{1,3})><(\d{1,3})><(\d{1,3})>\}")

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
    def _quantise(boxes: npt.NDArray[np.float64], w: npt.ArrayLike, h: npt.ArrayLike) -> IntArray:
        ext = np.stack(np.broadcast_arrays(w, h, w, h), axis=-1)
        return quantise(boxes, ext, SCALE, "floor", 0, SCALE)

    def _head(self, label: str | None) -> str:
        text = check_label(label, self.name, _FORBIDDEN)
        return f"<p>{text}</p> " if text else ""

    # ---- encode ------------------------------------------------------------------------------------------
    def encode(self, groundings: Sequence[Grounding], size: Size) -> str:
        w, h = check_size(size)
        parts = []
        for g in groundings:
            if not g.shapes:
                continue
            coords = np.concatenate([shape_coords(s, self.name, self.kinds) for s in g.shapes])
            q = self._quantise(coords, w, h).tolist()
            boxes = DELIM.join(f"{{<{a}><{b}><{c}><{d}>}}" for a, b, c, d in q)
            parts.append(self._head(g.label) + boxes)
        return " ".join(parts)

    def encode_boxes(
        self, boxes: npt.ArrayLike, sizes: npt.ArrayLike, labels: Sequence[str | None] | None = None
    ) -> list[str]:
        b, w, h = batch_arrays(boxes, sizes)
        texts = [f"{{<{a}><{b_}><{c}><{d}>}}" for a, b_, c, d in self._quantise(b, w, h).tolist()]
        if labels is not None:
            texts = [self._head(lab) + t for lab, t in zip(labels, texts, strict=True)]
        return texts

    # ---- decode ------------------------------------------------------------------------------------------
    def decode(self, text: str, size: Size) -> Decoded:
        w, h = check_size(size)
        out = Decoded()
        ext = np.asarray([w, h, w, h], dtype=np.float64)
        for m in _SPAN.finditer(text):
            shapes: list[Shape] = []
            problem = None
            for body in _GROUP.findall(m.group("boxes")):
                nums = _BOX.fullmatch(body)
                if nums is None:
                    problem = "expected {<x1><y1><x2><y2>} with integers 0..100"
                    break
                values = [int(v) for v in nums.groups()]
                problem = geometry_issue(values, SCALE, SCALE)
                if problem is not None:
                    break
                shapes.append(Shape.box(*bin_centre_pixels(values, SCALE, ext).tolist()))
            if problem is not None:
                out.errors.append(issue(text, m.start(), m.end(), problem))
                continue
            label = m.group("label")
            out.groundings.append(
                Grounding(label.strip() or None if label is not None else None, tuple(shapes))
            )
            out.spans.append((m.start(), m.end()))
        return out

    def decode_boxes(self, texts: Sequence[str], sizes: npt.ArrayLike) -> npt.NDArray[np.float64]:
        s = np.asarray(sizes).reshape(-1, 2)
        q = matched_boxes(texts, self._fast_re, 2)
        out = bin_centre_pixels(q, SCALE, s[:, [0, 1, 0, 1]].astype(np.float64))
        return decode_the_rest(self, texts, s, out, ordered_within(q, SCALE))


__all__ = ["DELIM", "SCALE", "MiniGPTv2Codec"]
