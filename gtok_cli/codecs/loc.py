"""``loc``: Florence-2 location tokens, ``dog<loc_234><loc_208><loc_625><loc_729>``.

Quantisation: ``q = floor(v·1000)`` clamped to ``0..999`` (``quantize.floor_bins``);
decode ``(q + 0.5)/1000``.
Bound: ``0.5/1000`` per axis (normalised). Tokens are written without zero padding (``<loc_7>``), as
Florence-2's tokenizer has them; a padded or out-of-range token (``<loc_07>``, ``<loc_1000>``) is reported.

Text, as Florence-2 writes grounding output: the phrase, then its boxes' loc tokens, with nothing between
(``dog<loc…>×4<loc…>×4cat<loc…>×4``). A phrase with several boxes writes its run of 4k tokens once. Points
(not a Florence-2 output format; our definition): the phrase, then two tokens ``<loc_x><loc_y>``.

Polygons (a region's COCO polygon, ``export --shape polygon``), as Florence-2 writes segmentation and
``<OPEN_VOCABULARY_DETECTION>`` polygons and as transformers' ``Florence2PostProcessor.
parse_description_with_polygons_from_text_and_spans`` (``models/florence2/processing_florence2.py``) reads
them: the phrase, then per region ``<poly>`` … ``</poly>`` holding one ``<loc_x><loc_y>`` pair per vertex
(same floor quantiser), the rings of a multi-part polygon separated by ``<sep>``:
``dog<poly><loc_…><loc_…>…<sep><loc_…>…</poly>``. A ring has at least 3 vertices. ``<poly>``, ``</poly>``
and ``<sep>`` are Florence-2 tokens, so :meth:`vocab` lists them after the 1000 loc tokens.

Decoding: every maximal run of loc tokens (whitespace between tokens allowed) is one grounding; its label is
the text between the previous run (or the start) and this run, stripped, or None when empty. A run of 4k
tokens is k boxes, a run of 2 tokens is one point; any other length is reported. A ``<poly>`` span is one
polygon; a span (run or ``<poly>``) with nothing but whitespace before it joins the previous phrase unless
either is a point. Because consecutive
groundings are only told apart by their labels, ``encode`` refuses inputs that would read back differently:
a point must be its grounding's only shape, and an unlabelled grounding cannot follow another one when either
of them is a point (two boxes without a label in between simply read back as one phrase with two boxes).
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
from gtok_cli.errors import InputError, UsageError

_TOKEN = r"<loc_[^<>]*>"
_INNER = re.compile(r"<loc_([^<>]*)>")
POLY, POLY_END, SEP = "<poly>", "</poly>", "<sep>"
# a <poly> span up to its </poly> (an unclosed one is reported), a run of loc tokens, or a stray tag
_SPAN = re.compile(
    rf"<poly>(?P<poly>(?:(?!<poly>|</poly>).)*)(?P<closed></poly>)?|(?P<run>{_TOKEN}(?:\s*{_TOKEN})*)"
    r"|(?P<stray></poly>|<sep>)",
    re.S,
)
_RING = re.compile(rf"\s*{_TOKEN}(?:\s*{_TOKEN})*\s*")


class LocCodec(BatchBoxCodec):
    name = "loc"
    kinds = frozenset({"box", "point", "polygon"})
    carries_label = True

    def __init__(self, bins: int = 1000, rounding: str = "floor") -> None:
        if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
            raise UsageError(f"bins must be a positive integer, got {bins!r}")
        check_param("rounding", rounding, "floor")
        self.bins = bins
        self._tokens = [f"<loc_{k}>" for k in range(bins)]
        self._table = table(self._tokens)
        self._fast = re.compile(
            r"([^<]*)<loc_(0|[1-9]\d*)><loc_(0|[1-9]\d*)><loc_(0|[1-9]\d*)><loc_(0|[1-9]\d*)>"
        )

    def params(self) -> dict[str, Any]:
        return {"bins": self.bins, "rounding": "floor"}

    def vocab(self) -> list[str]:
        return [*self._tokens, POLY, POLY_END, SEP]

    def bound(self, size: Size) -> ErrorBound:
        return ErrorBound(0.5 / self.bins, 0.5 / self.bins)

    # ---- encode ------------------------------------------------------------------------------------------
    def encode(self, groundings: Sequence[Grounding], size: Size) -> str:
        w, h = check_size(size)
        parts: list[str] = []
        previous: str | None = None  # kind of the last written grounding
        for g in groundings:
            if not g.shapes:
                continue
            for s in g.shapes:
                check_shape(s, self.name, self.kinds)
            kinds = {s.kind for s in g.shapes}
            if "point" in kinds and len(g.shapes) > 1:
                raise InputError(
                    "loc: a point must be the only shape of its grounding (4 loc tokens read as a box)",
                    field="shapes",
                    found=[s.kind for s in g.shapes],
                )
            label = check_label(g.label, self.name, "<>")
            kind = "point" if "point" in kinds else "box"
            if not label and previous is not None and "point" in (kind, previous):
                raise InputError(
                    "loc: an unlabelled grounding next to a point would merge with it",
                    field="label",
                    found=None,
                )
            parts.append(label)
            for s in g.shapes:
                if s.kind == "polygon":
                    parts.append(self._polygon(s, w, h))
                    continue
                ext = np.asarray([w, h] * (len(s.coords) // 2))
                q = quantize.floor_bins(np.asarray(s.coords), ext, self.bins)
                parts.extend(self._tokens[int(k)] for k in q)
            previous = kind
        return "".join(parts)

    def _polygon(self, shape: Shape, w: int, h: int) -> str:
        """``<poly>`` + each ring's vertex tokens, rings joined by ``<sep>``, + ``</poly>``."""
        rings = shape.rings()
        if not rings or any(len(r) < 6 or len(r) % 2 for r in rings):
            raise InputError(
                "loc: every polygon ring needs at least 3 vertices (x, y pairs)",
                field="shape.coords",
                found=[len(r) for r in rings],
            )
        texts = []
        for ring in rings:
            q = quantize.floor_bins(np.asarray(ring), np.asarray([w, h] * (len(ring) // 2)), self.bins)
            texts.append("".join(self._tokens[int(k)] for k in q))
        return POLY + SEP.join(texts) + POLY_END

    # ---- decode ------------------------------------------------------------------------------------------
    def decode(self, text: str, size: Size) -> Decoded:
        w, h = check_size(size)
        out = Decoded()
        label_start = 0
        for m in _SPAN.finditer(text):
            gap = text[label_start : m.start()]
            label = gap.strip() or None
            label_start = m.end()
            if m.group("stray") is not None:
                out.errors.append(issue(text, m.start(), m.end(), f"{m.group('stray')} outside <poly>"))
                continue
            if m.group("run") is not None:
                values, problem = self._read_run(m.group("run"))
                shapes = () if problem else self._run_shapes(values, w, h)
            elif m.group("closed") is None:
                shapes, problem = (), "unclosed <poly>"
            else:
                shapes, problem = self._read_polygon(m.group("poly"), w, h)
            if problem:
                out.errors.append(issue(text, m.start(), m.end(), problem))
                continue
            prev = out.groundings[-1] if out.groundings else None
            joins = (
                label is None
                and prev is not None
                and out.spans[-1][1] + len(gap) == m.start()
                and "point" not in (prev.shapes[-1].kind, shapes[0].kind)
            )
            if joins and prev is not None:  # the same phrase goes on (a polygon after its boxes, …)
                out.groundings[-1] = Grounding(prev.label, prev.shapes + shapes)
                out.spans[-1] = (out.spans[-1][0], m.end())
            else:
                out.groundings.append(Grounding(label, shapes))
                out.spans.append((m.start(), m.end()))
        return out

    def _run_shapes(self, values: list[int], w: int, h: int) -> tuple[Shape, ...]:
        centres = quantize.bin_centres(np.asarray(values), self.bins)
        if len(values) == 2:
            return (Shape.point(centres[0] * w, centres[1] * h),)
        return tuple(
            Shape.box(centres[k] * w, centres[k + 1] * h, centres[k + 2] * w, centres[k + 3] * h)
            for k in range(0, len(values), 4)
        )

    def _read_polygon(self, body: str, w: int, h: int) -> tuple[tuple[Shape, ...], str | None]:
        rings = []
        for part in body.split(SEP):
            if not _RING.fullmatch(part):
                return (), "expected <loc_x><loc_y> pairs, rings separated by <sep>"
            values: list[int] = []
            for raw in _INNER.findall(part):
                problem = self._token_problem(raw)
                if problem:
                    return (), problem
                values.append(int(raw))
            if len(values) % 2 or len(values) < 6:
                return (), f"a polygon ring of {len(values)} loc tokens is not 3 or more x, y pairs"
            centres = quantize.bin_centres(np.asarray(values), self.bins)
            rings.append((centres * np.asarray([w, h] * (len(values) // 2))).tolist())
        return (Shape.polygon(rings),), None

    def _token_problem(self, raw: str) -> str | None:
        if not raw.isdigit() or str(int(raw)) != raw:
            return f"<loc_{raw}> is not a loc token (decimal without leading zeros)"
        if int(raw) >= self.bins:
            return f"<loc_{raw}> is out of range 0..{self.bins - 1}"
        return None

    def _read_run(self, run: str) -> tuple[list[int], str | None]:
        values: list[int] = []
        for raw in _INNER.findall(run):
            problem = self._token_problem(raw)
            if problem:
                return [], problem
            values.append(int(raw))
        if len(values) != 2 and len(values) % 4:
            return [], f"a run of {len(values)} loc tokens is neither a point (2) nor boxes (4 each)"
        for k in range(0, len(values) - 3, 4):
            if values[k + 2] < values[k] or values[k + 3] < values[k + 1]:
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
        q = [quantize.floor_bins(b[:, c], w if c % 2 == 0 else h, self.bins) for c in range(4)]
        body = t[q[0]] + t[q[1]] + t[q[2]] + t[q[3]]
        if labels is not None:
            prefix = table([check_label(lab, self.name, "<>") for lab in labels])
            body = prefix + body
        out: list[str] = body.tolist()
        return out

    def _parse_one(self, text: str) -> tuple[int, ...] | None:
        m = self._fast.fullmatch(text)
        if m is None:
            return None
        q = (int(m[2]), int(m[3]), int(m[4]), int(m[5]))
        if max(q) >= self.bins or q[2] < q[0] or q[3] < q[1]:
            return None
        return q

    def _to_pixels(self, q: IntArray, w: FloatArray, h: FloatArray) -> FloatArray:
        return quantize.bin_centres(q, self.bins) * np.stack([w, h, w, h], axis=1)


__all__ = ["LocCodec"]
