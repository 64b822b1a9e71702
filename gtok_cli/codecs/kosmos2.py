"""``kosmos2``: Kosmos-2 grounding text.

``<phrase> a dog</phrase><object><patch_index_0199><patch_index_0755></object>``.

The HF transformers convention (``processing_kosmos2.coordinate_to_patch_index``): an n×n grid (n = 32),
upper-left cell ``floor(v·n)``, lower-right cell ``ceil(v·n − 1)`` (``quantize.corner_cells``, which also
clamps to ``0..n−1`` and keeps the last cell ≥ the first), patch index ``row·n + col`` written with
``str(idx).zfill(4)``. Several boxes of one phrase share one ``<object>``, joined by
``</delimiter_of_multi_objects/>``. No spaces between tags (the processor strips them); the phrase is written
with one leading space, as the model writes it. Groundings are concatenated in order.

Decoding returns the cell centres ``((col + 0.5)/n, (row + 0.5)/n)`` for both corners. (transformers'
own ``patch_index_to_coordinate`` returns cell *edges* when the two cells share a row or column; we keep
one rule.)
Bound: ``0.5/n`` per axis (normalised): the upper-left cell contains v1, the lower-right cell contains v2
(``ceil(v·n − 1) = k`` ⇔ ``k/n < v ≤ (k+1)/n``), clamping at the image edge stays within half a cell.

Points: Kosmos-2 has no point syntax, and a one-cell box would read back as a box, so points are not supported
(``encode`` raises InputError). A ``<phrase>`` that is not followed by an ``<object>`` is plain text (as in
transformers); an ``<object>`` without a phrase decodes with ``label=None``. Labels cannot contain ``<``.
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
from gtok_cli.errors import UsageError

GROUNDING = "<grounding>"
PHRASE, PHRASE_END = "<phrase>", "</phrase>"
OBJECT, OBJECT_END = "<object>", "</object>"
DELIMITER = "</delimiter_of_multi_objects/>"
TAG_TOKENS = [GROUNDING, PHRASE, PHRASE_END, OBJECT, OBJECT_END, DELIMITER]

_TAGS = re.compile(r"<grounding>|</?phrase>|</?object>|</delimiter_of_multi_objects/>|<patch_index_[^<>]*>")
_PATCH = re.compile(r"<patch_index_([^<>]*)>")


class Kosmos2Codec(BatchBoxCodec):
    name = "kosmos2"
    kinds = frozenset({"box"})
    carries_label = True

    def __init__(self, grid: int = 32, rounding: str = "corner") -> None:
        if isinstance(grid, bool) or not isinstance(grid, int) or grid < 1:
            raise UsageError(f"grid must be a positive integer, got {grid!r}")
        check_param("rounding", rounding, "corner")
        self.grid = grid
        self._tokens = [f"<patch_index_{str(k).zfill(4)}>" for k in range(grid * grid)]
        self._table = table(self._tokens)
        self._fast = re.compile(
            r"(?:<phrase>[^<]*</phrase>)?<object><patch_index_(\d{4,})><patch_index_(\d{4,})></object>"
        )

    def params(self) -> dict[str, Any]:
        return {"grid": self.grid, "rounding": "corner"}

    def vocab(self) -> list[str]:
        return [*self._tokens, *TAG_TOKENS]

    def bound(self, size: Size) -> ErrorBound:
        return ErrorBound(0.5 / self.grid, 0.5 / self.grid)

    # ---- encode ------------------------------------------------------------------------------------------
    def _pair(self, box: Shape, w: int, h: int) -> str:
        n = self.grid
        x1, y1, x2, y2 = box.coords
        c1, c2 = quantize.corner_cells(x1, x2, w, n)
        r1, r2 = quantize.corner_cells(y1, y2, h, n)
        return self._tokens[int(r1) * n + int(c1)] + self._tokens[int(r2) * n + int(c2)]

    def encode(self, groundings: Sequence[Grounding], size: Size) -> str:
        w, h = check_size(size)
        parts: list[str] = []
        for g in groundings:
            if not g.shapes:
                continue
            for s in g.shapes:
                check_shape(s, self.name, self.kinds)
            label = check_label(g.label, self.name, "<>")
            if label:
                parts.append(f"{PHRASE} {label}{PHRASE_END}")
            parts.append(OBJECT + DELIMITER.join(self._pair(s, w, h) for s in g.shapes) + OBJECT_END)
        return "".join(parts)

    # ---- decode ------------------------------------------------------------------------------------------
    def decode(self, text: str, size: Size) -> Decoded:
        w, h = check_size(size)
        out = Decoded()
        tags = list(_TAGS.finditer(text))
        i = 0
        while i < len(tags):
            t = tags[i].group(0)
            if t == GROUNDING:
                i += 1
            elif t == PHRASE:
                nxt = tags[i + 1] if i + 1 < len(tags) else None
                if nxt is None or nxt.group(0) != PHRASE_END:
                    end = nxt.start() if nxt is not None else len(text)
                    out.errors.append(issue(text, tags[i].start(), end, "<phrase> without </phrase>"))
                    i += 1
                    continue
                obj = tags[i + 2] if i + 2 < len(tags) else None
                if obj is None or obj.group(0) != OBJECT or text[nxt.end() : obj.start()].strip():
                    i += 2  # a phrase with no box: plain text
                    continue
                label = text[tags[i].end() : nxt.start()].strip() or None
                i = self._read_object(text, tags, i + 2, tags[i].start(), label, w, h, out)
            elif t == OBJECT:
                i = self._read_object(text, tags, i, tags[i].start(), None, w, h, out)
            else:
                out.errors.append(issue(text, tags[i].start(), tags[i].end(), f"{t} outside <object>"))
                i += 1
        return out

    def _read_object(
        self,
        text: str,
        tags: list[re.Match[str]],
        i: int,
        start: int,
        label: str | None,
        w: int,
        h: int,
        out: Decoded,
    ) -> int:
        """Read the ``<object>`` at ``tags[i]``; append a grounding or an issue; return the next tag index."""
        j = i + 1
        inner: list[str] = []
        while j < len(tags) and tags[j].group(0) not in (OBJECT_END, OBJECT, PHRASE, PHRASE_END, GROUNDING):
            inner.append(tags[j].group(0))
            j += 1
        if j >= len(tags) or tags[j].group(0) != OBJECT_END:
            end = tags[j].start() if j < len(tags) else len(text)
            out.errors.append(issue(text, start, end, "<object> without </object>"))
            return j
        end = tags[j].end()
        between = [text[tags[k].end() : tags[k + 1].start()] for k in range(i, j)]
        problem: str | None = None
        if any(s.strip() for s in between):
            problem = "text inside <object>"
        boxes: list[Shape] = []
        if problem is None:
            boxes, problem = self._boxes(inner, w, h)
        if problem is not None:
            out.errors.append(issue(text, start, end, problem))
        else:
            out.groundings.append(Grounding(label, tuple(boxes)))
            out.spans.append((start, end))
        return j + 1

    def _boxes(self, inner: list[str], w: int, h: int) -> tuple[list[Shape], str | None]:
        # inner must be: P P (D P P)*
        if len(inner) % 3 != 2:
            return [], f"<object> holds {len(inner)} tokens, expected pairs of patch indices"
        n = self.grid
        boxes = []
        for k in range(0, len(inner), 3):
            if k + 2 < len(inner) and inner[k + 2] != DELIMITER:
                return [], f"expected {DELIMITER} after a pair of patch indices, found {inner[k + 2]}"
            idx: list[int] = []
            for tok in inner[k : k + 2]:
                m = _PATCH.fullmatch(tok)
                if m is None:
                    return [], f"expected a patch index, found {tok}"
                raw = m.group(1)
                if not raw.isdigit() or raw != str(int(raw)).zfill(4):
                    return [], f"{tok} is not a patch index token (4-digit zero-padded)"
                if int(raw) >= n * n:
                    return [], f"{tok} is out of range 0..{n * n - 1} for grid={n}"
                idx.append(int(raw))
            (r1, c1), (r2, c2) = divmod(idx[0], n), divmod(idx[1], n)
            if c2 < c1 or r2 < r1:
                return [], "lower-right patch is above or left of the upper-left patch"
            cx = quantize.bin_centres(np.asarray([c1, c2]), n) * w
            cy = quantize.bin_centres(np.asarray([r1, r2]), n) * h
            boxes.append(Shape.box(cx[0], cy[0], cx[1], cy[1]))
        return boxes, None

    # ---- batch -------------------------------------------------------------------------------------------
    def encode_boxes(
        self,
        boxes: npt.ArrayLike,
        sizes: npt.ArrayLike,
        labels: Sequence[str | None] | None = None,
    ) -> list[str]:
        b, w, h = batch_arrays(boxes, sizes)
        n, t = self.grid, self._table
        c1, c2 = quantize.corner_cells(b[:, 0], b[:, 2], w, n)
        r1, r2 = quantize.corner_cells(b[:, 1], b[:, 3], h, n)
        body = OBJECT + t[r1 * n + c1] + t[r2 * n + c2] + OBJECT_END
        if labels is not None:
            written = [check_label(lab, self.name, "<>") for lab in labels]
            prefix = table([f"{PHRASE} {lab}{PHRASE_END}" if lab else "" for lab in written])
            body = prefix + body
        out: list[str] = body.tolist()
        return out

    def _parse_one(self, text: str) -> tuple[int, ...] | None:
        m = self._fast.fullmatch(text)
        if m is None or m[1] != str(int(m[1])).zfill(4) or m[2] != str(int(m[2])).zfill(4):
            return None
        n = self.grid
        a, b = int(m[1]), int(m[2])
        if max(a, b) >= n * n:
            return None
        (r1, c1), (r2, c2) = divmod(a, n), divmod(b, n)
        return (c1, r1, c2, r2) if c2 >= c1 and r2 >= r1 else None

    def _to_pixels(self, q: IntArray, w: FloatArray, h: FloatArray) -> FloatArray:
        return quantize.bin_centres(q, self.grid) * np.stack([w, h, w, h], axis=1)


__all__ = ["TAG_TOKENS", "Kosmos2Codec"]
