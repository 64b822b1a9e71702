"""``molmo``: Molmo (v1) pointing, ``<point x="43.0" y="46.9" alt="dog">dog</point>``.

Conventions, from Molmo's own code (allenai/molmo; read in its forks, e.g. BennoKrojer/molmo):

- ``olmo/data/data_formatter.py`` ``DataFormatter.points_to_text``: each point as a percent of the image
  width / height, ``round(x, 1)``, sorted by ``x*10000 + y`` (x, then y), written ``f"{x:0.1f}"``; one point
  ``<point x="…" y="…" alt="{alt}">{label}</point>``, several ``<points x1="…" y1="…" x2="…" y2="…" …
  alt="{alt}">{label}</points>`` (numbered from 1);
- ``olmo/util.py`` ``extract_points`` reads them back with
  ``x\\d*="\\s*([0-9]+(?:\\.[0-9]+)?)"\\s+y\\d*="\\s*([0-9]+(?:\\.[0-9]+)?)"``, drops a point above 100
  and maps ``/ 100 * (W, H)``.

Quantisation: ``p = x·100/W`` (``quantize.ratio``), Python's ``round(p, 1)`` reproduced exactly by
``quantize.round_decimals`` → tenths of a percent ``0..1000``; decode ``q/1000`` of the image. Bound
``0.05/100 = 0.0005`` per axis. ``alt`` and the element text are both the label (an unlabelled grounding
writes ``alt=""`` and no text); decode takes the text, else ``alt``. Groundings are joined by ``" "``.

Points only: Molmo has no box syntax, so a box is refused here (the CLI and export turn boxes into their
centres with ``--box-as center``). Because the format sorts a phrase's points, :meth:`shape_order` says in
which order :meth:`encode` writes them (export keeps its truth in that order). Decode reports tags whose
attributes are not ``x``/``y`` (or ``x1``/``y1``…, numbered from 1) with values ``d.d`` in 0.0..100.0.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from gtok_cli.codecs._common import check_label, check_pinned, check_size, issue, shape_coords
from gtok_cli.codecs.base import Codec, Decoded, ErrorBound, Grounding, Shape, Size
from gtok_cli.errors import InputError
from gtok_cli.quantize import IntArray, ratio, round_decimals

UNIT = 1000  # tenths of a percent
_FORBIDDEN = '<>"'
_TAG = re.compile(r"<(?P<tag>points?)(?P<attrs>(?:\s[^<>]*)?)>(?P<text>[^<]*)(?P<close></(?P=tag)>)?")
_ATTR = re.compile(r'\s*([A-Za-z]\w*)="([^"]*)"')
_VALUE = re.compile(r"\d{1,3}\.\d")


class MolmoCodec(Codec):
    name = "molmo"
    kinds = frozenset({"point"})
    carries_label = True

    def __init__(self, precision: int | None = None, rounding: str | None = None) -> None:
        check_pinned("precision", precision, 1)
        check_pinned("rounding", rounding, "python_format")

    def params(self) -> dict[str, Any]:
        return {"precision": 1, "rounding": "python_format"}

    def vocab(self) -> list[str]:
        return []

    def bound(self, size: Size) -> ErrorBound:
        return ErrorBound(0.5 / UNIT, 0.5 / UNIT)

    # ---- encode ------------------------------------------------------------------------------------------
    def _tenths(self, shapes: Sequence[Shape], w: int, h: int) -> IntArray:
        for s in shapes:
            if s.kind == "box":
                raise InputError(
                    "molmo writes points, not boxes: ask for --box-as center to write a box as its centre",
                    field="shape.kind",
                    expected="point",
                    found="box",
                )
        xy = np.concatenate([shape_coords(s, self.name, self.kinds) for s in shapes])
        return round_decimals(ratio(xy, np.asarray([w, h], dtype=np.float64), 100.0), 1)

    def shape_order(self, shapes: Sequence[Shape], size: Size) -> list[int]:
        """Molmo sorts a phrase's points by x, then y (after rounding): the order :meth:`encode` writes."""
        w, h = check_size(size)
        if len(shapes) < 2:
            return list(range(len(shapes)))
        q = self._tenths(shapes, w, h).tolist()
        return sorted(range(len(shapes)), key=lambda k: (q[k][0], q[k][1]))

    @staticmethod
    def _fmt(q: int) -> str:
        whole, tenth = divmod(q, 10)
        return f"{whole}.{tenth}"

    def encode(self, groundings: Sequence[Grounding], size: Size) -> str:
        w, h = check_size(size)
        parts = []
        for g in groundings:
            if not g.shapes:
                continue
            label = check_label(g.label, self.name, _FORBIDDEN)
            q = sorted((int(x), int(y)) for x, y in self._tenths(g.shapes, w, h).tolist())
            if len(q) == 1:
                coords = f'x="{self._fmt(q[0][0])}" y="{self._fmt(q[0][1])}"'
                parts.append(f'<point {coords} alt="{label}">{label}</point>')
            else:
                coords = " ".join(
                    f'x{k}="{self._fmt(x)}" y{k}="{self._fmt(y)}"' for k, (x, y) in enumerate(q, start=1)
                )
                parts.append(f'<points {coords} alt="{label}">{label}</points>')
        return " ".join(parts)

    # ---- decode ------------------------------------------------------------------------------------------
    def decode(self, text: str, size: Size) -> Decoded:
        w, h = check_size(size)
        out = Decoded()
        for m in _TAG.finditer(text):
            if m.group("close") is None:
                out.errors.append(
                    issue(text, m.start(), m.end(), f"<{m.group('tag')}> without its closing tag")
                )
                continue
            points, alt, problem = self._read_attrs(m.group("tag"), m.group("attrs"))
            if problem is not None:
                out.errors.append(issue(text, m.start(), m.end(), problem))
                continue
            label = m.group("text").strip() or alt or None
            shapes = tuple(Shape.point(x * w / UNIT, y * h / UNIT) for x, y in points)
            out.groundings.append(Grounding(label, shapes))
            out.spans.append((m.start(), m.end()))
        return out

    @staticmethod
    def _read_attrs(tag: str, attrs: str) -> tuple[list[tuple[int, int]], str | None, str | None]:
        pairs = _ATTR.findall(attrs)
        if _ATTR.sub("", attrs).strip():
            return [], None, 'attributes must be name="value" pairs'
        values = dict(pairs)
        if len(values) != len(pairs):
            return [], None, "repeated attribute"
        alt = values.pop("alt", None)
        n = len(values) // 2
        names = ["x", "y"] if tag == "point" else [f"{a}{k}" for k in range(1, n + 1) for a in "xy"]
        if (tag == "points" and n < 1) or sorted(values) != sorted(names):
            want = 'x="…" y="…"' if tag == "point" else 'x1="…" y1="…" x2="…" y2="…" …'
            return [], None, f"<{tag}> needs {want}"
        q = []
        for name in names:
            raw = values[name]
            if not _VALUE.fullmatch(raw) or int(raw.replace(".", "")) > UNIT:
                return [], None, f'{name}="{raw}" is not a percentage 0.0..100.0 with one decimal'
            q.append(int(raw.replace(".", "")))
        return [(q[k], q[k + 1]) for k in range(0, len(q), 2)], alt or None, None


__all__ = ["UNIT", "MolmoCodec"]
