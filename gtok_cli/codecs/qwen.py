"""Qwen-family codecs: ``qwen-vl``, ``qwen2-vl``, ``qwen2.5-vl``, ``qwen3-vl`` (docs/spec.md#schemes).

Conventions, pinned (each one a row of tests/test_codec_qwen.py):

- ``qwen-vl``: ``<ref>a dog</ref><box>(234,208),(625,729)</box>``. The Qwen-VL paper normalises boxes "within
  the range [0, 1000)": q = floor(v·1000) clamped to 0..999 (the ``int(x / w * 1000)`` of its fine-tuning
  tools). Decode is the bin centre (q + 0.5)/1000, clamped to the image (its tokenizer draws at q/1000, the
  bin's left edge: biased by half a bin, and a left edge re-encodes one bin lower whenever the float product
  lands a hair under the integer). Bound 0.5/1000.
- ``qwen2-vl``: the same layout with ``<|object_ref_start|>``/``<|box_start|>`` tokens; q = round(v·1000)
  (Python round, half-even) clamped to 0..1000; decode q/1000. Bound 0.5/1000.
- ``qwen2.5-vl``: JSON ``[{"bbox_2d": [x1, y1, x2, y2], "label": …}]`` (points ``{"point_2d": [x, y], …}``) in
  absolute pixels of the image the HF processor feeds the model: ``smart_resize`` (factor 28, min_pixels
  3136, max_pixels 12845056: the ``preprocessor_config.json`` of the released Qwen2.5-VL checkpoints; the
  transformers class default is 28·28·1280), q = round(x · W'/W) half-even, clamp 0..W'; decode q·W/W'.
  Bound 0.5/W' along x and 0.5/H' along y.
- ``qwen3-vl``: the same JSON with round(v·1000) half-even, clamp 0..1000; decode q/1000.

Decoders accept 0..1000 on the 1000 scale (1000 is the right/bottom edge, which models do emit) and
0..W' for ``qwen2.5-vl``; anything else, inverted boxes and malformed spans are reported, never guessed.
"""

from __future__ import annotations

import json
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
    matched_boxes,
    ordered_within,
    quantised_shapes,
    shape_coords,
)
from gtok_cli.codecs.base import Codec, Decoded, DecodeIssue, ErrorBound, Grounding, Shape, Size
from gtok_cli.errors import InputError, UsageError
from gtok_cli.quantize import IntArray, RoundingMode, bin_centre_pixels, quantise, round_mode
from gtok_cli.trainer_images import trainer_image

SCALE = 1000
_CORNERS = re.compile(r"\s*\(\s*(\d+)\s*,\s*(\d+)\s*\)\s*,\s*\(\s*(\d+)\s*,\s*(\d+)\s*\)\s*")
QWEN25_FACTOR = 28
QWEN25_MIN_PIXELS = 56 * 56
QWEN25_MAX_PIXELS = 28 * 28 * 16384
MAX_ASPECT = 200  # smart_resize refuses images more elongated than this


# ---- smart resize (HF Qwen2-VL/Qwen2.5-VL image processor), vectorised -------------------------------------


def smart_resize(
    width: npt.ArrayLike,
    height: npt.ArrayLike,
    factor: int = QWEN25_FACTOR,
    min_pixels: int = QWEN25_MIN_PIXELS,
    max_pixels: int = QWEN25_MAX_PIXELS,
    qwen_vl_utils: bool = False,
) -> tuple[IntArray, IntArray]:
    """``(W', H')`` exactly as ``transformers``' ``smart_resize`` computes them (it takes height first).

    The same float64 operations in the same order, so the result is identical; images with an aspect ratio
    above 200 are refused like the processor refuses them. ``qwen_vl_utils``: the variant of
    ``qwen_vl_utils.vision_process.smart_resize`` (0.0.14, which ms-swift's Qwen2.5-VL template calls), whose
    first rounding keeps each side at least ``factor`` (it differs only for sides under factor/2).
    """
    w = np.asarray(width, dtype=np.float64)
    h = np.asarray(height, dtype=np.float64)
    if np.any(np.maximum(w, h) / np.minimum(w, h) > MAX_ASPECT):
        raise InputError(
            "Qwen2.5-VL's processor refuses this image",
            field="size",
            expected=f"aspect ratio <= {MAX_ASPECT}",
            found=f"{np.asarray(width).tolist()}x{np.asarray(height).tolist()}",
        )
    f = float(factor)
    h_bar = round_mode(h / f, "half_even") * f
    w_bar = round_mode(w / f, "half_even") * f
    if qwen_vl_utils:
        h_bar, w_bar = np.maximum(h_bar, factor), np.maximum(w_bar, factor)
    area = h_bar * w_bar
    big = area > max_pixels
    small = ~big & (area < min_pixels)
    with np.errstate(divide="ignore"):
        beta_big = np.sqrt((h * w) / max_pixels)
        beta_small = np.sqrt(min_pixels / (h * w))
    h_big = np.maximum(f, np.floor(h / beta_big / f) * f)
    w_big = np.maximum(f, np.floor(w / beta_big / f) * f)
    h_small = np.ceil(h * beta_small / f) * f
    w_small = np.ceil(w * beta_small / f) * f
    h_out = np.where(big, h_big, np.where(small, h_small, h_bar))
    w_out = np.where(big, w_big, np.where(small, w_small, w_bar))
    return w_out.astype(np.int64), h_out.astype(np.int64)


# ---- tagged layouts: qwen-vl, qwen2-vl --------------------------------------------------------------------


class _TaggedCodec(Codec):
    """``{ref_open}label{ref_close}{box_open}(x1,y1),(x2,y2){box_close}…`` on the 0..1000 scale."""

    ref_open: ClassVar[str]
    ref_close: ClassVar[str]
    box_open: ClassVar[str]
    box_close: ClassVar[str]
    rounding: ClassVar[RoundingMode]
    hi: ClassVar[int]
    carries_label = True

    def _to_pixels(self, q: npt.ArrayLike, extent: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Integers on the 0..1000 scale → pixels: bin centres for floor, the value itself for round."""
        if self.rounding == "floor":
            return bin_centre_pixels(q, SCALE, extent)
        return np.asarray(q, dtype=np.float64) * extent / SCALE

    def __init__(self, scale: int | None = None, rounding: str | None = None) -> None:
        check_pinned("scale", scale, SCALE)
        check_pinned("rounding", rounding, self.rounding)
        o, c = re.escape(self.box_open), re.escape(self.box_close)
        ro, rc = re.escape(self.ref_open), re.escape(self.ref_close)
        # a ref or a box tag, content up to the next tag of the same kind (an unclosed one is reported)
        self._span_re = re.compile(
            rf"{ro}(?P<ref>(?:(?!{ro}|{rc}).)*){rc}|{o}(?P<box>(?:(?!{o}|{c}).)*)(?P<closed>{c})?", re.S
        )
        self._fast_re = re.compile(rf"(?:{ro}([^<]*){rc})?{o}\((\d+),(\d+)\),\((\d+),(\d+)\){c}")

    def params(self) -> dict[str, Any]:
        return {"scale": SCALE, "rounding": self.rounding}

    def vocab(self) -> list[str]:
        return [self.ref_open, self.ref_close, self.box_open, self.box_close]

    def bound(self, size: Size) -> ErrorBound:
        # floor decoded at the bin centre and half-even decoded at q/1000: both ≤ 0.5/1000
        return ErrorBound(0.5 / SCALE, 0.5 / SCALE)

    def _quantise(self, boxes: npt.NDArray[np.float64], w: npt.ArrayLike, h: npt.ArrayLike) -> IntArray:
        ext = np.stack(np.broadcast_arrays(w, h, w, h), axis=-1)
        return quantise(boxes, ext, SCALE, self.rounding, 0, self.hi)

    def _check_label(self, label: str) -> None:
        for tag in (self.ref_open, self.ref_close, self.box_open, self.box_close):
            if tag in label:
                raise InputError(
                    f"{self.name} label cannot contain {tag!r}",
                    field="label",
                    expected="plain text",
                    found=label,
                )

    def _head(self, label: str | None) -> str:
        if label is None:
            return ""
        self._check_label(label)
        return f"{self.ref_open}{label}{self.ref_close}"

    def encode(self, groundings: Sequence[Grounding], size: Size) -> str:
        w, h = check_size(size)
        parts = []
        for g in groundings:
            rows = [shape_coords(sh, self.name, self.kinds) for sh in g.shapes]
            coords = np.concatenate(rows) if rows else np.empty((0, 4))
            q = self._quantise(coords, w, h).tolist()
            bo, bc = self.box_open, self.box_close
            parts.append(self._head(g.label) + "".join(f"{bo}({a},{b}),({c},{d}){bc}" for a, b, c, d in q))
        return "".join(parts)

    def encode_boxes(
        self, boxes: npt.ArrayLike, sizes: npt.ArrayLike, labels: Sequence[str | None] | None = None
    ) -> list[str]:
        b, w, h = batch_arrays(boxes, sizes)
        q = self._quantise(b, w, h).tolist()
        bo, bc = self.box_open, self.box_close
        texts = [f"{bo}({a},{b_}),({c},{d}){bc}" for a, b_, c, d in q]
        if labels is not None:
            texts = [self._head(lab) + t for lab, t in zip(labels, texts, strict=True)]
        return texts

    def decode(self, text: str, size: Size) -> Decoded:
        w, h = check_size(size)
        out = Decoded()
        ref: tuple[str, int, int] | None = None  # label, start, end of the last <ref>
        group: tuple[str | None, int, list[Shape]] | None = None  # label, start, shapes
        group_end = -1

        def close() -> None:
            nonlocal group
            if group is not None and group[2]:
                out.groundings.append(Grounding(group[0], tuple(group[2])))
                out.spans.append((group[1], group_end))
            group = None

        for m in self._span_re.finditer(text):
            if m.group("ref") is not None:
                ref = (m.group("ref"), m.start(), m.end())
                continue
            if m.group("closed") is None:
                close()
                out.errors.append(DecodeIssue(m.start(), m.end(), m.group(0), f"unclosed {self.box_open}"))
                continue
            nums = _CORNERS.fullmatch(m["box"])
            problem = "expected (x1,y1),(x2,y2) with integers" if nums is None else None
            values = [int(v) for v in nums.groups()] if nums is not None else []
            problem = problem or geometry_issue(values, SCALE, SCALE)
            if problem is not None:
                close()
                out.errors.append(DecodeIssue(m.start(), m.end(), m.group(0), problem))
                continue
            if group is None or group_end != m.start():
                close()
                if ref is not None and ref[2] == m.start():
                    group = (ref[0], ref[1], [])
                else:
                    group = (None, m.start(), [])
            x1, y1, x2, y2 = self._to_pixels(values, np.asarray([w, h, w, h], dtype=np.float64)).tolist()
            group[2].append(Shape.box(x1, y1, x2, y2))
            group_end = m.end()
        close()
        return out

    def decode_boxes(self, texts: Sequence[str], sizes: npt.ArrayLike) -> npt.NDArray[np.float64]:
        s = np.asarray(sizes).reshape(-1, 2).astype(np.float64)
        q = matched_boxes(texts, self._fast_re, 2)
        out = self._to_pixels(q, s[:, [0, 1, 0, 1]])
        return decode_the_rest(self, texts, s, out, ordered_within(q, SCALE))


class QwenVLCodec(_TaggedCodec):
    name = "qwen-vl"
    ref_open, ref_close, box_open, box_close = "<ref>", "</ref>", "<box>", "</box>"
    rounding = "floor"
    hi = SCALE - 1  # the paper's range is [0, 1000)


class Qwen2VLCodec(_TaggedCodec):
    name = "qwen2-vl"
    ref_open, ref_close = "<|object_ref_start|>", "<|object_ref_end|>"
    box_open, box_close = "<|box_start|>", "<|box_end|>"
    rounding = "half_even"
    hi = SCALE


# ---- JSON layouts: qwen2.5-vl, qwen3-vl -------------------------------------------------------------------

_JSON_START = re.compile(r"\[\s*\{")
_DECODER = json.JSONDecoder()


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


class _JsonCodec(Codec):
    """``[{"bbox_2d": [x1, y1, x2, y2], "label": "dog"}, {"point_2d": [x, y], "label": …}]``."""

    kinds = frozenset({"box", "point"})
    carries_label = True
    _fast_re = re.compile(r'\[\{"bbox_2d": \[(\d+), (\d+), (\d+), (\d+)\](?:, "label": "[^"\\]*")?\}\]')

    def vocab(self) -> list[str]:
        return []

    def _extents(self, w: npt.ArrayLike, h: npt.ArrayLike) -> tuple[npt.ArrayLike, npt.ArrayLike]:
        """The integer range of x and y in the text (the scale coordinates are written on)."""
        raise NotImplementedError

    def _quantise(self, coords: npt.NDArray[np.float64], w: npt.ArrayLike, h: npt.ArrayLike) -> IntArray:
        """Pixels (…, 2k: x, y, x, y…) → integers on the scheme's scale, half-even, clamped."""
        sx, sy = self._extents(w, h)
        n = coords.shape[-1] // 2
        ext = np.tile(np.stack(np.broadcast_arrays(w, h), axis=-1), n)  # x, y, x, y… extents per item
        scl = np.tile(np.stack(np.broadcast_arrays(sx, sy), axis=-1), n)
        return quantise(coords, ext, scl, "half_even", 0, scl)

    @staticmethod
    def _item(key: str, values: Sequence[int], label: str | None) -> str:
        lab = "" if label is None else f', "label": {json.dumps(label, ensure_ascii=False)}'
        return f'{{"{key}": [{", ".join(str(v) for v in values)}]{lab}}}'

    def encode(self, groundings: Sequence[Grounding], size: Size) -> str:
        w, h = check_size(size)
        shapes = [(s, g.label) for g in groundings for s in g.shapes]
        values = quantised_shapes(
            [s for s, _ in shapes], self.name, self.kinds, lambda c: self._quantise(c, w, h)
        )
        items = [
            self._item("bbox_2d" if s.kind == "box" else "point_2d", q, label)
            for (s, label), q in zip(shapes, values, strict=True)
        ]
        return "[" + ", ".join(items) + "]"

    def encode_boxes(
        self, boxes: npt.ArrayLike, sizes: npt.ArrayLike, labels: Sequence[str | None] | None = None
    ) -> list[str]:
        b, w, h = batch_arrays(boxes, sizes)
        q = self._quantise(b, w, h).tolist()
        if labels is None:
            return [f'[{{"bbox_2d": [{a}, {b_}, {c}, {d}]}}]' for a, b_, c, d in q]
        return ["[" + self._item("bbox_2d", row, lab) + "]" for row, lab in zip(q, labels, strict=True)]

    def decode(self, text: str, size: Size) -> Decoded:
        w, h = check_size(size)
        sx, sy = (float(np.asarray(v)) for v in self._extents(w, h))
        out = Decoded()
        pos = 0
        while (m := _JSON_START.search(text, pos)) is not None:
            start = m.start()
            try:
                value, end = _DECODER.raw_decode(text, start)
            except json.JSONDecodeError as exc:
                snippet = text[start : start + 80]
                problem = f"malformed JSON: {exc.msg}"
                out.errors.append(DecodeIssue(start, start + len(snippet), snippet, problem))
                pos = start + 1
                continue
            pos = end
            if not any(isinstance(it, dict) and ("bbox_2d" in it or "point_2d" in it) for it in value):
                continue  # some other JSON list in the text
            for item in value:
                g = self._read_item(item, sx, sy, w, h)
                if isinstance(g, str):
                    snippet = json.dumps(item, ensure_ascii=False)
                    out.errors.append(DecodeIssue(start, end, snippet, g))
                else:
                    out.groundings.append(g)
                    out.spans.append((start, end))
        return out

    def _read_item(self, item: Any, sx: float, sy: float, w: int, h: int) -> Grounding | str:
        if not isinstance(item, dict):
            return "list item is not an object"
        label = item.get("label")
        if label is not None and not isinstance(label, str):
            return "label is not a string"
        has_box, has_point = "bbox_2d" in item, "point_2d" in item
        if has_box == has_point:
            return "expected exactly one of bbox_2d, point_2d"
        key, n = ("bbox_2d", 4) if has_box else ("point_2d", 2)
        values = item[key]
        if not isinstance(values, list) or len(values) != n or not all(_is_int(v) for v in values):
            return f"{key} must be a list of {n} integers"
        problem = geometry_issue(values, sx, sy)
        if problem is not None:
            return problem
        v = np.asarray(values, dtype=np.float64)
        px = (v * np.tile([w, h], n // 2) / np.tile([sx, sy], n // 2)).tolist()
        shape = Shape.box(*px) if has_box else Shape.point(*px)
        return Grounding(label, (shape,))

    def decode_boxes(self, texts: Sequence[str], sizes: npt.ArrayLike) -> npt.NDArray[np.float64]:
        s = np.asarray(sizes).reshape(-1, 2)
        sx, sy = self._extents(s[:, 0], s[:, 1])
        scale = np.stack([sx, sy, sx, sy], axis=-1).astype(np.float64).reshape(-1, 4)
        q = matched_boxes(texts, self._fast_re, 1)
        out = q * s[:, [0, 1, 0, 1]].astype(np.float64) / scale
        return decode_the_rest(self, texts, s, out, ordered_within(q, scale))


class Qwen3VLCodec(_JsonCodec):
    name = "qwen3-vl"

    def __init__(self, scale: int | None = None, rounding: str | None = None) -> None:
        check_pinned("scale", scale, SCALE)
        check_pinned("rounding", rounding, "half_even")

    def params(self) -> dict[str, Any]:
        return {"scale": SCALE, "rounding": "half_even"}

    def bound(self, size: Size) -> ErrorBound:
        return ErrorBound(0.5 / SCALE, 0.5 / SCALE)

    def _extents(self, w: npt.ArrayLike, h: npt.ArrayLike) -> tuple[npt.ArrayLike, npt.ArrayLike]:
        return np.full(np.shape(w), SCALE), np.full(np.shape(h), SCALE)


class Qwen25VLCodec(_JsonCodec):
    """Pixels of the image the model sees: the trainer's resize (``trainer``, ``image_max_pixels``:
    :mod:`gtok_cli.trainer_images`), then the processor's smart_resize. Under ``--trainer llamafactory`` a
    1920×1080 image is fed as 1024×576 and smart-resized to 1036×588, so a box is written on 1036×588, not on
    1932×1092 (the smart_resize of the original)."""

    name = "qwen2.5-vl"
    fed_image = True

    def __init__(
        self,
        min_pixels: int = QWEN25_MIN_PIXELS,
        max_pixels: int = QWEN25_MAX_PIXELS,
        factor: int = QWEN25_FACTOR,
        rounding: str | None = None,
        trainer: str | None = None,
        image_max_pixels: int | None = None,
    ) -> None:
        check_pinned("rounding", rounding, "half_even")
        self.feed = trainer_image(trainer, image_max_pixels)
        if not (int(factor) > 0 and 0 < int(min_pixels) <= int(max_pixels)):
            raise UsageError(
                f"scheme {self.name!r}: need factor > 0 and 0 < min_pixels <= max_pixels, "
                f"got factor={factor}, min_pixels={min_pixels}, max_pixels={max_pixels}"
            )
        self.min_pixels, self.max_pixels, self.factor = int(min_pixels), int(max_pixels), int(factor)

    def params(self) -> dict[str, Any]:
        return {
            "min_pixels": self.min_pixels,
            "max_pixels": self.max_pixels,
            "factor": self.factor,
            "rounding": "half_even",
            **self.feed.params(),
        }

    def resized(self, size: Size) -> tuple[int, int]:
        """The ``(W', H')`` the model sees for an image of ``size`` (the trainer's resize, then the
        processor's)."""
        w, h = check_size(size)
        rw, rh = self._extents(w, h)
        return int(np.asarray(rw)), int(np.asarray(rh))

    def bound(self, size: Size) -> ErrorBound:
        rw, rh = self.resized(size)
        return ErrorBound(0.5 / rw, 0.5 / rh)

    def _extents(self, w: npt.ArrayLike, h: npt.ArrayLike) -> tuple[npt.ArrayLike, npt.ArrayLike]:
        fw, fh = self.feed.fed_sizes(w, h, qwen_plugin=True)
        utils = self.feed.trainer == "swift"  # ms-swift resizes with qwen_vl_utils, not the HF processor
        return smart_resize(fw, fh, self.factor, self.min_pixels, self.max_pixels, qwen_vl_utils=utils)
