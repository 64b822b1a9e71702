"""Shikra: decimals on the expand-to-square canvas, ``[0.234,0.281,0.625,0.672]`` (docs/spec.md#schemes).

Pinned to Shikra's own code (``mllm/dataset/utils/transform.py`` and ``PlainBoxFormatter``):

- the image is pasted on a square canvas of side S = max(W, H), the shorter axis shifted by (S − min)//2;
- v = clamp((x + shift) / S, 0, 1) (float division), written with ``f"{v:.3f}"``: Python's rounding of the
  float's exact value to 3 decimals, reproduced by :func:`gtok_cli.quantize.round_decimals`;
- several boxes of one phrase share a bracket, separated by ``;``: ``[x1,y1,x2,y2;x1,y1,x2,y2]``; points are
  ``[x,y]``. The label is not written (Shikra's answers carry the phrase in the surrounding prose).

Pixel coordinates are clamped to the image before shifting; decode maps back to original pixels
(d·S − shift, clamped to the image). Bound: 0.5·10^-precision · S/W along x, · S/H along y.
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
    matched_boxes,
    ordered_within,
    shape_coords,
)
from gtok_cli.codecs.base import Codec, Decoded, DecodeIssue, ErrorBound, Grounding, Shape, Size
from gtok_cli.errors import UsageError
from gtok_cli.quantize import IntArray, ratio, round_decimals

_BRACKET = re.compile(r"\[([^\[\]]*)\]")
_NUMERIC = re.compile(r"[\d.,;\s+\-]*,[\d.,;\s+\-]*")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def square_canvas(w: npt.ArrayLike, h: npt.ArrayLike) -> tuple[IntArray, IntArray, IntArray]:
    """Side S = max(W, H) and the (x, y) shift of the image on the expand-to-square canvas."""
    wa, ha = np.asarray(w, dtype=np.int64), np.asarray(h, dtype=np.int64)
    side = np.maximum(wa, ha)
    return side, (side - wa) // 2, (side - ha) // 2


class ShikraCodec(Codec):
    name = "shikra"
    kinds = frozenset({"box", "point"})
    carries_label: ClassVar[bool] = False

    def __init__(self, precision: int = 3, rounding: str | None = None) -> None:
        check_pinned("rounding", rounding, "python_format")
        if not 1 <= int(precision) <= 9:
            raise UsageError(f"scheme {self.name!r}: precision must be 1..9, got {precision}")
        self.precision = int(precision)
        self._unit = 10**self.precision
        self._table: np.ndarray | None = None
        d = r"(\d\.\d{" + str(self.precision) + "})"
        self._fast_re = re.compile(rf"\[{d},{d},{d},{d}\]")

    def params(self) -> dict[str, Any]:
        return {"precision": self.precision, "rounding": "python_format"}

    def vocab(self) -> list[str]:
        return []

    def bound(self, size: Size) -> ErrorBound:
        w, h = check_size(size)
        side = max(w, h)
        half = 0.5 / self._unit
        return ErrorBound(half * side / w, half * side / h)

    # ---- encode ------------------------------------------------------------------------------------------
    def _quantise(self, coords: npt.NDArray[np.float64], w: npt.ArrayLike, h: npt.ArrayLike) -> IntArray:
        """Pixels (…, 2k: x, y, …) → integer units of 10^-precision on the square canvas."""
        n = coords.shape[-1] // 2
        side, dx, dy = square_canvas(w, h)
        ext = np.tile(np.stack(np.broadcast_arrays(w, h), axis=-1), n)
        shift = np.tile(np.stack(np.broadcast_arrays(dx, dy), axis=-1), n)
        inside = np.clip(coords, 0.0, ext)
        v = ratio(inside + shift, np.asarray(side)[..., None] if np.ndim(side) else side)
        return round_decimals(v, self.precision)

    def _fmt(self, q: int) -> str:
        whole, frac = divmod(q, self._unit)
        return f"{whole}.{frac:0{self.precision}d}"

    def encode(self, groundings: Sequence[Grounding], size: Size) -> str:
        w, h = check_size(size)
        brackets = []
        for g in groundings:
            run: list[str] = []
            kind = None
            for s in g.shapes:
                if kind is not None and s.kind != kind:  # boxes and points never share a bracket
                    brackets.append("[" + ";".join(run) + "]")
                    run = []
                kind = s.kind
                q = self._quantise(shape_coords(s, self.name, self.kinds), w, h)[0].tolist()
                run.append(",".join(self._fmt(v) for v in q))
            if run:
                brackets.append("[" + ";".join(run) + "]")
        return " ".join(brackets)

    def encode_boxes(
        self, boxes: npt.ArrayLike, sizes: npt.ArrayLike, labels: Sequence[str | None] | None = None
    ) -> list[str]:
        b, w, h = batch_arrays(boxes, sizes)
        q = self._quantise(b, w, h)
        if self.precision <= 4:  # one gather from the table of every decimal string
            if self._table is None:
                self._table = np.asarray([self._fmt(k) for k in range(self._unit + 1)], dtype=object)
            return [f"[{a},{b_},{c},{d}]" for a, b_, c, d in self._table[q].tolist()]
        return ["[" + ",".join(self._fmt(v) for v in row) + "]" for row in q.tolist()]

    # ---- decode ------------------------------------------------------------------------------------------
    def decode(self, text: str, size: Size) -> Decoded:
        w, h = check_size(size)
        side, dx, dy = (int(v) for v in square_canvas(w, h))
        out = Decoded()
        for m in _BRACKET.finditer(text):
            body = m.group(1)
            if not _NUMERIC.fullmatch(body):
                continue  # prose in brackets, not a coordinate span
            shapes: list[Shape] = []
            problem = None
            groups = [part.split(",") for part in body.split(";")]
            widths = {len(g) for g in groups}
            if len(widths) != 1 or widths.pop() not in (2, 4):
                problem = "expected x,y or x1,y1,x2,y2 (';' between several)"
            for group in groups if problem is None else []:
                fields = [f.strip() for f in group]
                if not all(_NUMBER.fullmatch(f) for f in fields):
                    problem = "coordinates must be decimals like 0.234"
                    break
                values = [float(f) for f in fields]
                problem = geometry_issue(values, 1.0, 1.0)
                if problem is not None:
                    break
                shapes.append(self._to_shape(values, w, h, side, dx, dy))
            if problem is not None:
                out.errors.append(DecodeIssue(m.start(), m.end(), m.group(0), problem))
                continue
            out.groundings.append(Grounding(None, tuple(shapes)))
            out.spans.append((m.start(), m.end()))
        return out

    @staticmethod
    def _to_shape(values: list[float], w: int, h: int, side: int, dx: int, dy: int) -> Shape:
        n = len(values) // 2
        v = np.asarray(values, dtype=np.float64) * side - np.tile([dx, dy], n)
        px = np.clip(v, 0.0, np.tile([w, h], n)).tolist()
        return Shape.box(*px) if n == 2 else Shape.point(*px)

    def decode_boxes(self, texts: Sequence[str], sizes: npt.ArrayLike) -> npt.NDArray[np.float64]:
        s = np.asarray(sizes).reshape(-1, 2)
        v = matched_boxes(texts, self._fast_re, 1, float)
        side, dx, dy = square_canvas(s[:, 0], s[:, 1])
        shift = np.stack([dx, dy, dx, dy], axis=1)
        ext = s[:, [0, 1, 0, 1]].astype(np.float64)
        out = np.clip(v * side[:, None] - shift, 0.0, ext)
        return decode_the_rest(self, texts, s, out, ordered_within(v, 1))
