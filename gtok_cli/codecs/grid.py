"""``grid``: GETok grid and offset tokens (docs/spec.md#getok-v1). The one module that fixes these strings.

Grid n×n (default 32). ``<grid_i_j>``: i = column (x, left→right), j = row (y, top→bottom), ``0..n−1``;
anchor (i, j) stands for the cell centre ``((i + 0.5)/n, (j + 0.5)/n)``.

- point ``<point><grid_i_j></point>``: the cell containing the point, ``floor(v·n)`` clamped.
- box ``<box><grid_TL><grid_BR></box>``: the Kosmos-2 corner rule (``quantize.corner_cells``): TL
  ``floor(v·n)``, BR ``ceil(v·n − 1)``, clamped to ``0..n−1``, BR never before TL.
- polyline ``<pl>…</pl>``: the floor cell of each vertex, in order (at least 2 vertices).
- mask ``<seg>…</seg>``: ``Shape(kind="mask", anchors=((i, j), …))`` written in the given order (the solver's
  point set; when ``anchors`` is None the floor cells of ``coords`` are used).
- several shapes: ``", "``-separated. The scheme carries no label (``decode`` returns ``label=None``).

Decoding returns cell centres in pixels; mask shapes keep their ``anchors``. ``<offset>`` regions are a
refinement turn, not an answer: ``decode`` skips them and ``decode_refinement`` reads them.

Offsets: ``<OFF_du_dv>`` (du along x, dv along y, each in {−1, 0, 1}, positive = right/down) and ``<DELETE>``.
A refinement turn has one offset token per anchor of the previous answer, in order, each shape wrapped like
that shape and in ``<offset>``: ``<offset><box><OFF_1_0><OFF_0_-1></box></offset>``; several shapes
``", "``-separated (``decode_refinement`` also accepts several wrapped shapes inside one ``<offset>``).
``apply_refinement`` moves every anchor by ``(du, dv)·offset_step`` cells (default half a cell, so 32×32 +
offsets reaches a 64×64 lattice); positions are continuous from then on, so turns compose. A box's corners
move independently; DELETE removes an anchor (a box losing one corner is invalid and reported).

Bounds (per axis, normalised; s = offset_step in cells):

- the answer: ``0.5/n`` (the anchor cell contains the coordinate; see ``kosmos2`` for the corner rule);
- after t refinement turns with the best offsets (``refinement_offsets``): the reachable positions are
  ``c + k·s/n``, |k| ≤ t, around the answer's cell centre c, and the truth is within ``0.5/n`` of c, so the
  error is at most ``max(s/2, 1/2 − t·s)/n`` (``refined_bound``). Default s = 1/2: one turn gives
  ``0.25/n`` (the 2n×2n lattice bound) and further turns cannot go below it; s = 1 gains nothing; the best
  single-turn step is s = 1/3 (bound ``(1/6)/n``). Clamping to the image only shortens distances.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from gtok_cli import quantize
from gtok_cli.codecs._common import (
    BatchBoxCodec,
    FloatArray,
    IntArray,
    batch_arrays,
    check_param,
    check_shape,
    check_size,
    issue,
    table,
)
from gtok_cli.codecs.base import Decoded, DecodeIssue, ErrorBound, Grounding, Shape, ShapeKind, Size
from gtok_cli.errors import InputError, UsageError

Offset = tuple[int, int]

WRAPPER: dict[ShapeKind, str] = {"box": "box", "point": "point", "polyline": "pl", "mask": "seg"}
KIND_OF: dict[str, ShapeKind] = {tag: kind for kind, tag in WRAPPER.items()}
OFFSET_TAG = "offset"
DELETE = "<DELETE>"
OFFSETS: list[Offset] = [(du, dv) for du in (-1, 0, 1) for dv in (-1, 0, 1)]
OFFSET_TOKENS = [f"<OFF_{du}_{dv}>" for du, dv in OFFSETS]
WRAPPER_TOKENS = [t for tag in (*WRAPPER.values(), OFFSET_TAG) for t in (f"<{tag}>", f"</{tag}>")]
_OFFSET_OF: dict[str, Offset | None] = {**dict(zip(OFFSET_TOKENS, OFFSETS, strict=True)), DELETE: None}

_TAGS = re.compile(r"</?(?:box|point|pl|seg|offset)>|<grid_[^<>]*>|<OFF_[^<>]*>|<DELETE>")
_GRID = re.compile(r"<grid_(0|[1-9]\d*)_(0|[1-9]\d*)>")
_ARITY = {"box": (2, 2), "point": (1, 1), "polyline": (2, None), "mask": (1, None)}


@dataclass(frozen=True)
class ShapeOffsets:
    """One shape's part of a refinement turn: its kind and one offset per anchor (None = DELETE)."""

    kind: ShapeKind
    offsets: tuple[Offset | None, ...]


@dataclass
class DecodedRefinement:
    shapes: list[ShapeOffsets] = field(default_factory=list)
    errors: list[DecodeIssue] = field(default_factory=list)
    spans: list[tuple[int, int]] = field(default_factory=list)


@dataclass
class Refined:
    """The answer after a refinement turn; ``errors`` name the shapes that could not be refined."""

    shapes: list[Shape] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass
class _Wrapped:
    kind: ShapeKind
    tokens: list[str]
    start: int
    end: int


class GridCodec(BatchBoxCodec):
    name = "grid"
    kinds = frozenset({"box", "point", "polyline", "mask"})
    carries_label = False

    def __init__(self, grid: int = 32, offset_step: float = 0.5, rounding: str = "corner") -> None:
        if isinstance(grid, bool) or not isinstance(grid, int) or grid < 1:
            raise UsageError(f"grid must be a positive integer, got {grid!r}")
        if not 0.0 < float(offset_step) <= 1.0:
            raise UsageError(f"offset_step must be in (0, 1] cells, got {offset_step!r}")
        check_param("rounding", rounding, "corner")
        self.grid = grid
        self.offset_step = float(offset_step)
        n = grid
        # index j·n + i (row-major) → "<grid_i_j>"
        self._tokens = [f"<grid_{i}_{j}>" for j in range(n) for i in range(n)]
        self._table = table(self._tokens)
        self._fast = re.compile(r"<box><grid_(\d+)_(\d+)><grid_(\d+)_(\d+)></box>")

    # ---- description -------------------------------------------------------------------------------------
    def params(self) -> dict[str, Any]:
        return {"grid": self.grid, "offset_step": self.offset_step, "rounding": "corner"}

    def vocab(self) -> list[str]:
        return [*self._tokens, *OFFSET_TOKENS, DELETE, *WRAPPER_TOKENS]

    def bound(self, size: Size) -> ErrorBound:
        return ErrorBound(0.5 / self.grid, 0.5 / self.grid)

    def refined_bound(self, size: Size, turns: int = 1) -> ErrorBound:
        """Worst-case error after ``turns`` refinement turns with the best offsets (box and point anchors)."""
        s = self.offset_step
        b = max(s / 2.0, 0.5 - turns * s) / self.grid
        return ErrorBound(b, b)

    def token(self, i: int, j: int) -> str:
        return self._tokens[j * self.grid + i]

    # ---- encode ------------------------------------------------------------------------------------------
    def anchors(self, shape: Shape, size: Size) -> list[tuple[int, int]]:
        """The grid anchors (i, j) a shape is written with."""
        w, h = check_size(size)
        check_shape(shape, self.name, self.kinds)
        n = self.grid
        if shape.kind == "box":
            x1, y1, x2, y2 = shape.coords
            i1, i2 = quantize.corner_cells(x1, x2, w, n)
            j1, j2 = quantize.corner_cells(y1, y2, h, n)
            return [(int(i1), int(j1)), (int(i2), int(j2))]
        if shape.kind == "mask" and shape.anchors is not None:
            bad = [a for a in shape.anchors if not (0 <= a[0] < n and 0 <= a[1] < n)]
            if bad or not shape.anchors:
                raise InputError(
                    "mask anchors must be grid cells",
                    field="anchors",
                    expected=f"0..{n - 1}",
                    found=bad or shape.anchors,
                )
            return [(int(i), int(j)) for i, j in shape.anchors]
        pts = np.asarray(shape.coords, dtype=np.float64).reshape(-1, 2)
        low = _ARITY[shape.kind][0]
        if len(pts) < low or len(shape.coords) % 2:
            raise InputError(
                f"a {shape.kind} needs at least {low} points", field="shape.coords", found=shape.coords
            )
        i = quantize.floor_bins(pts[:, 0], w, n)
        j = quantize.floor_bins(pts[:, 1], h, n)
        return [(int(a), int(b)) for a, b in zip(i, j, strict=True)]

    def encode_shape(self, shape: Shape, size: Size) -> str:
        tag = WRAPPER[shape.kind]
        return f"<{tag}>" + "".join(self.token(i, j) for i, j in self.anchors(shape, size)) + f"</{tag}>"

    def encode(self, groundings: Sequence[Grounding], size: Size) -> str:
        check_size(size)
        return ", ".join(self.encode_shape(s, size) for g in groundings for s in g.shapes)

    # ---- decode ------------------------------------------------------------------------------------------
    def _centre(self, i: int, j: int, w: int, h: int) -> tuple[float, float]:
        c = quantize.bin_centres(np.asarray([i, j]), self.grid)
        return float(c[0] * w), float(c[1] * h)

    def decode(self, text: str, size: Size) -> Decoded:
        w, h = check_size(size)
        out = Decoded()
        tags = list(_TAGS.finditer(text))
        i = 0
        while i < len(tags):
            t = tags[i].group(0)
            if t == f"<{OFFSET_TAG}>":  # a refinement turn: read by decode_refinement
                j = i + 1
                while j < len(tags) and tags[j].group(0) not in (f"</{OFFSET_TAG}>", f"<{OFFSET_TAG}>"):
                    j += 1
                if j >= len(tags) or tags[j].group(0) != f"</{OFFSET_TAG}>":
                    end = tags[j].start() if j < len(tags) else len(text)
                    out.errors.append(issue(text, tags[i].start(), end, "<offset> without </offset>"))
                    i = j
                else:
                    i = j + 1
                continue
            if t[1:-1] not in KIND_OF:
                out.errors.append(issue(text, tags[i].start(), tags[i].end(), f"{t} outside a shape"))
                i += 1
                continue
            i, wrapped, problem = _read_wrapped(text, tags, i)
            if problem is None:
                shape, problem = self._shape(wrapped, w, h)
                if shape is not None:
                    out.groundings.append(Grounding(None, (shape,)))
                    out.spans.append((wrapped.start, wrapped.end))
                    continue
            out.errors.append(issue(text, wrapped.start, wrapped.end, problem or "malformed span"))
        return out

    def _shape(self, wrapped: _Wrapped, w: int, h: int) -> tuple[Shape | None, str | None]:
        kind, n = wrapped.kind, self.grid
        cells: list[tuple[int, int]] = []
        for tok in wrapped.tokens:
            m = _GRID.fullmatch(tok)
            if m is None:
                return None, f"{tok} is not a grid token"
            i, j = int(m[1]), int(m[2])
            if i >= n or j >= n:
                return None, f"{tok} is out of range 0..{n - 1} for grid={n}"
            cells.append((i, j))
        low, high = _ARITY[kind]
        if len(cells) < low or (high is not None and len(cells) > high):
            want = str(low) if low == high else f"at least {low}"
            return None, f"<{WRAPPER[kind]}> needs {want} grid tokens, found {len(cells)}"
        if kind == "box" and (cells[1][0] < cells[0][0] or cells[1][1] < cells[0][1]):
            return None, "bottom-right cell is above or left of the top-left cell"
        pts = [self._centre(i, j, w, h) for i, j in cells]
        flat = tuple(v for p in pts for v in p)
        if kind == "mask":
            return Shape("mask", flat, tuple(cells)), None
        return Shape(kind, flat), None

    # ---- refinement --------------------------------------------------------------------------------------
    def encode_refinement(self, shapes_offsets: Sequence[ShapeOffsets]) -> str:
        """Text of one refinement turn: each shape's offsets wrapped like the shape and in ``<offset>``."""
        parts = []
        for so in shapes_offsets:
            if so.kind not in WRAPPER:
                raise InputError(
                    "unknown shape kind", field="kind", expected="/".join(WRAPPER), found=so.kind
                )
            toks = []
            for off in so.offsets:
                if off is None:
                    toks.append(DELETE)
                elif tuple(off) in OFFSETS:
                    toks.append(f"<OFF_{off[0]}_{off[1]}>")
                else:
                    raise InputError("offsets are in {-1, 0, 1}", field="offsets", found=off)
            tag = WRAPPER[so.kind]
            parts.append(f"<{OFFSET_TAG}><{tag}>{''.join(toks)}</{tag}></{OFFSET_TAG}>")
        return ", ".join(parts)

    def decode_refinement(self, text: str) -> DecodedRefinement:
        """Every ``<offset>`` region: per shape, its offsets (None = DELETE), plus what could not be read."""
        out = DecodedRefinement()
        tags = list(_TAGS.finditer(text))
        i = 0
        while i < len(tags):
            if tags[i].group(0) != f"<{OFFSET_TAG}>":
                i += 1  # answer shapes and prose are not part of a refinement turn
                continue
            open_i, region_start = i, tags[i].start()
            i += 1
            found: list[_Wrapped] = []
            problem: str | None = None
            while i < len(tags) and tags[i].group(0) != f"</{OFFSET_TAG}>":
                if tags[i].group(0)[1:-1] not in KIND_OF:
                    problem = f"{tags[i].group(0)} inside <offset> outside a shape"
                    break
                if found and text[found[-1].end : tags[i].start()].strip(" ,\t\n"):
                    problem = "text between shapes inside <offset>"
                    break
                i, wrapped, problem = _read_wrapped(text, tags, i)
                if problem is not None:
                    break
                found.append(wrapped)
            if problem is None and i >= len(tags):
                problem = "<offset> without </offset>"
            if problem is None and not found:
                problem = "<offset> holds no wrapped shape"
            if problem is None and text[tags[open_i].end() : found[0].start].strip():
                problem = "text inside <offset>"
            if problem is None and text[found[-1].end : tags[i].start()].strip():
                problem = "text inside <offset>"
            items: list[ShapeOffsets] = []
            if problem is None:
                for wrapped in found:
                    offs: list[Offset | None] = []
                    for tok in wrapped.tokens:
                        if tok not in _OFFSET_OF:
                            problem = f"{tok} is not an offset token"
                            break
                        offs.append(_OFFSET_OF[tok])
                    if problem is not None:
                        break
                    if not offs:
                        problem = f"<{WRAPPER[wrapped.kind]}> inside <offset> holds no offset token"
                        break
                    items.append(ShapeOffsets(wrapped.kind, tuple(offs)))
            if problem is not None:
                end = tags[i].end() if i < len(tags) else len(text)
                out.errors.append(issue(text, region_start, end, problem))
                # resume after this region (or at the next <offset>)
                while i < len(tags) and tags[i].group(0) not in (f"</{OFFSET_TAG}>", f"<{OFFSET_TAG}>"):
                    i += 1
                if i < len(tags) and tags[i].group(0) == f"</{OFFSET_TAG}>":
                    i += 1
                continue
            out.shapes.extend(items)
            out.spans.extend((wr.start, wr.end) for wr in found)
            i += 1
        return out

    def apply_refinement(
        self, previous: Sequence[Shape], offsets: Sequence[ShapeOffsets], size: Size
    ) -> Refined:
        """Move each anchor of the previous answer (decoded, continuous pixels) by its offset.

        A turn whose shape count differs from the previous answer's is not applied (the pairing would be a
        guess); a shape whose kind or anchor count differs is kept unrefined and reported. DELETE removes an
        anchor; a shape with every anchor deleted is removed; a box with one corner deleted, a polyline left
        with one vertex, or a box whose corners cross is dropped and reported. Positions are clamped to the
        image.
        """
        w, h = check_size(size)
        if len(previous) != len(offsets):
            msg = f"refinement has {len(offsets)} shapes, the previous answer {len(previous)}: not applied"
            return Refined(list(previous), [msg])
        sx, sy = self.offset_step * w / self.grid, self.offset_step * h / self.grid
        out = Refined()
        for k, (shape, so) in enumerate(zip(previous, offsets, strict=True)):
            pts = shape.points()
            if so.kind != shape.kind or len(so.offsets) != len(pts):
                out.errors.append(
                    f"shape {k}: offsets for a {so.kind} with {len(so.offsets)} anchors, "
                    f"previous is a {shape.kind} with {len(pts)}: kept unrefined"
                )
                out.shapes.append(shape)
                continue
            anchors = shape.anchors if shape.anchors is not None else (None,) * len(pts)
            moved: list[tuple[float, float]] = []
            kept: list[tuple[int, int]] = []
            for (x, y), off, anchor in zip(pts, so.offsets, anchors, strict=True):
                if off is None:
                    continue
                moved.append((min(max(x + off[0] * sx, 0.0), w), min(max(y + off[1] * sy, 0.0), h)))
                if anchor is not None:
                    kept.append(anchor)
            if not moved:
                continue  # every anchor deleted: the shape is removed
            problem = None
            if shape.kind == "box" and len(moved) == 1:
                problem = "DELETE of one box corner leaves no box"
            elif shape.kind == "box" and (moved[1][0] < moved[0][0] or moved[1][1] < moved[0][1]):
                problem = "refined box corners cross"
            elif shape.kind == "polyline" and len(moved) < 2:
                problem = "a polyline needs 2 vertices"
            if problem:
                out.errors.append(f"shape {k} ({shape.kind}): {problem}: dropped")
                continue
            flat = tuple(v for p in moved for v in p)
            out.shapes.append(Shape(shape.kind, flat, tuple(kept) if shape.anchors is not None else None))
        return out

    def refinement_offsets(
        self, previous: Sequence[Shape], targets: Sequence[Shape], size: Size
    ) -> list[ShapeOffsets]:
        """The best offsets (per axis the nearest of the three moves) taking each anchor to its target."""
        w, h = check_size(size)
        if len(previous) != len(targets):
            raise InputError(
                "one target per shape", field="targets", expected=str(len(previous)), found=len(targets)
            )
        sx, sy = self.offset_step * w / self.grid, self.offset_step * h / self.grid
        out = []
        for shape, target in zip(previous, targets, strict=True):
            if shape.kind != target.kind or len(shape.coords) != len(target.coords):
                raise InputError(
                    "target differs from the shape", field="targets", expected=shape.kind, found=target.kind
                )
            p = np.asarray(shape.coords, dtype=np.float64).reshape(-1, 2)
            t = np.asarray(target.coords, dtype=np.float64).reshape(-1, 2)
            du = np.clip(np.rint((t[:, 0] - p[:, 0]) / sx), -1, 1).astype(int)
            dv = np.clip(np.rint((t[:, 1] - p[:, 1]) / sy), -1, 1).astype(int)
            out.append(ShapeOffsets(shape.kind, tuple((int(a), int(b)) for a, b in zip(du, dv, strict=True))))
        return out

    # ---- batch -------------------------------------------------------------------------------------------
    def encode_boxes(
        self,
        boxes: npt.ArrayLike,
        sizes: npt.ArrayLike,
        labels: Sequence[str | None] | None = None,
    ) -> list[str]:
        b, w, h = batch_arrays(boxes, sizes)
        n, t = self.grid, self._table
        i1, i2 = quantize.corner_cells(b[:, 0], b[:, 2], w, n)
        j1, j2 = quantize.corner_cells(b[:, 1], b[:, 3], h, n)
        out: list[str] = ("<box>" + t[j1 * n + i1] + t[j2 * n + i2] + "</box>").tolist()
        return out

    def _parse_one(self, text: str) -> tuple[int, ...] | None:
        m = self._fast.fullmatch(text)
        if m is None:
            return None
        q = (int(m[1]), int(m[2]), int(m[3]), int(m[4]))
        if any(str(v) != s for v, s in zip(q, m.groups(), strict=True)) or max(q) >= self.grid:
            return None
        return q if q[2] >= q[0] and q[3] >= q[1] else None

    def _to_pixels(self, q: IntArray, w: FloatArray, h: FloatArray) -> FloatArray:
        return quantize.bin_centres(q, self.grid) * np.stack([w, h, w, h], axis=1)


def _read_wrapped(text: str, tags: list[re.Match[str]], i: int) -> tuple[int, _Wrapped, str | None]:
    """Read the wrapper opened at ``tags[i]`` up to its closing tag.

    Returns (next tag index, the wrapped tokens, problem). Only token tags (grid, offset, DELETE) and
    whitespace may stand between the wrappers; anything else closes it as unclosed.
    """
    open_tag = tags[i].group(0)
    tag = open_tag[1:-1]
    kind = KIND_OF[tag]
    j = i + 1
    while j < len(tags) and not tags[j].group(0).startswith(
        ("</", "<box>", "<point>", "<pl>", "<seg>", "<offset>")
    ):
        j += 1
    if j >= len(tags) or tags[j].group(0) != f"</{tag}>":
        end = tags[j].start() if j < len(tags) else len(text)
        return j, _Wrapped(kind, [], tags[i].start(), end), f"{open_tag} without </{tag}>"
    wrapped = _Wrapped(kind, [tags[k].group(0) for k in range(i + 1, j)], tags[i].start(), tags[j].end())
    if any(text[tags[k].end() : tags[k + 1].start()].strip() for k in range(i, j)):
        return j + 1, wrapped, f"text inside {open_tag}"
    return j + 1, wrapped, None


__all__ = [
    "DELETE",
    "OFFSETS",
    "OFFSET_TOKENS",
    "WRAPPER",
    "WRAPPER_TOKENS",
    "DecodedRefinement",
    "GridCodec",
    "Offset",
    "Refined",
    "ShapeOffsets",
]
