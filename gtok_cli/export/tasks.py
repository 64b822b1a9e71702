"""Records → samples: what each export task asks and answers (docs/spec.md#shards).

A :class:`Sample` is format-free: its turns are lists of pieces, each a literal string or the index of an
*encode request* (a list of :class:`Grounding`) that the scheme turns into text. Requests are encoded in
batches (:func:`encode_requests`), so the common one-box answer goes through the codec's vectorised
``encode_boxes``. ``Sample.regions`` is the ground truth written as ``meta.regions``: one entry per shape, in
the order the shapes' tokens appear in the conversation.

Which record tasks serve which export task (anything else is skipped with a counted reason):

=================  ==========================  ================================================
export task        record task                 sample
=================  ==========================  ================================================
rec                referring                   expression → its region(s)
reg                referring                   region(s) → expression
grounded-caption   grounded_caption            caption with every grounded phrase followed by its regions
multi              category / instances        "locate every <label>" → all instances (per category)
point              referring / instances       a point inside the referent / every instance + label
detect             instances                   every instance with its label
refine             referring                   ``rec`` (``point`` with ``--shape point``) + refinement turns
=================  ==========================  ================================================

Refinement (``--task refine``, or ``--refine`` on any task but ``reg``): the base task's sample with each
shape's answer replaced by a simulated proposal and K offset turns appended (:mod:`.refine_task`; which
builder serves a task: :mod:`.dispatch`).
Shapes under ``--shape``: ``box``, ``mask`` (regions with ``mask_tokens``), ``auto`` (mask where possible),
``polyline`` (regions with a ``polyline`` field; grid scheme), ``polygon`` (a region's COCO polygon mask;
``loc`` scheme, Florence-2 ``<poly>``), ``point`` (only ``--task refine``; the ``point`` task always writes
points). ``--box-as center`` writes each box as its centre point (schemes that write only points: ``molmo``).
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from gtok_cli.codecs.base import Codec, Grounding, Shape
from gtok_cli.counting import CountSettings
from gtok_cli.export.phrases import ReferringPhrases
from gtok_cli.export.points import interior_point
from gtok_cli.export.templates import Templates
from gtok_cli.task_roles import TASKS, geometry_role  # noqa: F401  (re-exported; readers use task_roles)
from gtok_cli.trainer_formats import ObjectsWriter

ShapeOption = Literal["box", "point", "polyline", "polygon", "mask", "auto"]
SHAPE_OPTIONS = ("box", "point", "polyline", "polygon", "mask", "auto")
BOX_AS_OPTIONS = ("center",)

Piece = str | int
"""A literal string, or the index of an encode request of the sample."""
BoxRequest = tuple[float, float, float, float, str | None]
"""The common request, one box with its label, kept as a plain tuple (no Shape/Grounding objects)."""
Request = list[Grounding] | BoxRequest


@dataclass(slots=True)
class Sample:
    sample_id: str
    record_id: str
    image_file: str
    size: tuple[int, int]
    turns: list[tuple[str, list[Piece]]]
    requests: list[Request]
    regions: list[dict[str, Any]]
    extra_meta: dict[str, Any] | None = None
    """More ``meta`` keys (refinement: the refine settings verify recomputes the targets with)."""


@dataclass(slots=True)
class Samples:
    """The lines a task that writes several per record makes of one record (``count``: one question per
    category; ``relation``: one line per pair), and the record's items it did not write, by reason. The
    runner counts items, not records, as read for such a task (``read = items = written + Σ skipped``:
    docs/spec.md#counting, #relations)."""

    samples: list[Sample]
    skipped: Counter[str] = field(default_factory=Counter)
    written_by: dict[str, int] = field(default_factory=dict)
    """Written lines by kind (``relation.geometry`` / ``relation.annotation``): ``counts.written_by``."""

    @property
    def items(self) -> int:
        return len(self.samples) + sum(self.skipped.values())


class Skip(Exception):
    """A record that cannot serve the task; ``reason`` is counted in the manifest."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class TaskContext:
    task: str
    seed: int
    shape: ShapeOption
    codec: Codec
    templates: Templates
    grid: int | None = field(default=None)
    """The codec's grid size when it can write masks (grid anchors must match it)."""
    truth_masks: bool = False
    """Mask regions keep the record's ``mask`` in their truth (mask refinement: verify reclassifies)."""
    box_as: str | None = None
    """``"center"``: a region written as a box is written as its centre point (``--box-as center``)."""
    count: CountSettings | None = None
    """``--task count``: negatives rate, cap and the records' category table (:mod:`.count_task`)."""
    phrases: ReferringPhrases | None = None
    """``--task relation --phrases``: referring expressions by object (:mod:`.phrases`)."""


# ---- regions -----------------------------------------------------------------------------------------------
def _truth(region: dict[str, Any], kind: str, phrase: str | None) -> dict[str, Any]:
    return {
        "kind": kind,
        "bbox": region["bbox"],
        "mask_tokens": region.get("mask_tokens"),
        "label": region.get("label"),
        "phrase": phrase,
    }


def region_shape(
    region: dict[str, Any], size: tuple[int, int], ctx: TaskContext, phrase: str | None
) -> tuple[Shape, dict[str, Any]]:
    """The shape a region is written as under ``--shape``, and its meta entry."""
    mt = region.get("mask_tokens")
    want_mask = ctx.shape == "mask" or (ctx.shape == "auto" and mt is not None and "mask" in ctx.codec.kinds)
    if ctx.shape == "polyline":
        return polyline_shape(region, phrase)
    if ctx.shape == "polygon":
        return polygon_shape(region, phrase)
    if not want_mask:
        if ctx.box_as == "center":
            return centre_point(region, phrase)
        x1, y1, x2, y2 = region["bbox"]
        return Shape.box(x1, y1, x2, y2), _truth(region, "box", phrase)
    if mt is None:
        raise Skip("region.no_mask_tokens")
    if mt.get("grid") != ctx.grid:
        raise Skip("mask_tokens.grid_mismatch")
    anchors = tuple((int(i), int(j)) for i, j in mt["anchors"])
    if not anchors:
        raise Skip("mask_tokens.empty")
    n = float(mt["grid"])
    w, h = size
    coords = tuple(v for i, j in anchors for v in ((i + 0.5) / n * w, (j + 0.5) / n * h))
    truth = _truth(region, "mask", phrase)
    if ctx.truth_masks:
        truth["mask"] = region.get("mask")
    return Shape("mask", coords, anchors), truth


def polyline_shape(region: dict[str, Any], phrase: str | None) -> tuple[Shape, dict[str, Any]]:
    """A region's optional ``polyline`` field ``[x1, y1, x2, y2, …]`` (pixels) as a polyline shape."""
    pl = region.get("polyline")
    if not pl:
        raise Skip("region.no_polyline")
    if len(pl) < 4 or len(pl) % 2:
        raise ValueError(f"polyline needs an even number (>= 4) of coordinates, found {len(pl)}")
    pts = [(float(pl[k]), float(pl[k + 1])) for k in range(0, len(pl), 2)]
    truth = _truth(region, "polyline", phrase)
    truth["polyline"] = [v for p in pts for v in p]
    return Shape.polyline(pts), truth


def polygon_shape(region: dict[str, Any], phrase: str | None) -> tuple[Shape, dict[str, Any]]:
    """A region's COCO polygon mask ``[[x1, y1, x2, y2, …], …]`` (pixels) as one polygon shape; a region
    whose mask is RLE or absent is skipped (``region.no_polygon``)."""
    mask = region.get("mask")
    if not isinstance(mask, list) or not mask:
        raise Skip("region.no_polygon")
    rings = [[float(v) for v in ring] for ring in mask]
    truth = _truth(region, "polygon", phrase)
    truth["polygon"] = rings
    return Shape.polygon(rings), truth


def centre_point(region: dict[str, Any], phrase: str | None) -> tuple[Shape, dict[str, Any]]:
    """``--box-as center``: the region's box as its centre point (truth ``point_from: box``)."""
    x1, y1, x2, y2 = (float(v) for v in region["bbox"])
    truth = _truth(region, "point", phrase)
    truth["point"] = [(x1 + x2) / 2, (y1 + y2) / 2]
    truth["point_from"] = "box"
    return Shape.point(*truth["point"]), truth


def in_written_order(
    ctx: TaskContext, size: tuple[int, int], shapes: list[Shape], truths: list[dict[str, Any]]
) -> tuple[list[Shape], list[dict[str, Any]]]:
    """One phrase's shapes and truths in the order the scheme writes them (``Codec.shape_order``: molmo sorts
    a phrase's points), so ``meta.regions`` follows the text."""
    if len(shapes) < 2:
        return shapes, truths
    order = ctx.codec.shape_order(shapes, size)
    return [shapes[k] for k in order], [truths[k] for k in order]


def point_shape(
    region: dict[str, Any], size: tuple[int, int], phrase: str | None
) -> tuple[Shape, dict[str, Any]]:
    p, source = interior_point(region, size[0], size[1])
    truth = _truth(region, "point", phrase)
    truth["point"] = p
    truth["point_from"] = source
    return Shape.point(p[0], p[1]), truth


# ---- helpers -----------------------------------------------------------------------------------------------
def _text(record: dict[str, Any]) -> str:
    text = record.get("text")
    if not isinstance(text, str) or not text.strip():
        raise Skip("record.no_text")
    return text


def _regions(record: dict[str, Any]) -> list[dict[str, Any]]:
    regions = record["regions"]
    if not regions:
        raise Skip("record.no_regions")
    return list(regions)


def _expect(record: dict[str, Any], *tasks: str) -> None:
    if record["task"] not in tasks:
        raise Skip(f"record_task.{record['task']}")


def _split_slot(template: str, slot: str, **other: str) -> list[Piece]:
    """Format ``template``; the ``slot`` becomes piece 0 (the request index) between the literal parts."""
    marker = "\x00"
    before, after = template.format(**{slot: marker}, **other).split(marker, 1)
    return [before, 0, after]


def _sample(
    record: dict[str, Any],
    size: tuple[int, int],
    user: list[Piece],
    answer: list[Piece],
    requests: Sequence[Request],
    regions: list[dict[str, Any]],
) -> Sample:
    rid = record["id"]
    return Sample(
        rid,
        rid,
        record["image"]["file"],
        size,
        [("user", user), ("assistant", answer)],
        list(requests),
        regions,
    )


def _labelled_list(
    groundings: list[Grounding], ctx: TaskContext
) -> tuple[list[Piece], list[list[Grounding]]]:
    """Several labelled groundings as one answer: the scheme's own list when it carries labels, else
    ``label <span>; label <span>``."""
    if ctx.codec.carries_label:
        return [0], [groundings]
    pieces: list[Piece] = []
    for k, g in enumerate(groundings):
        if k:
            pieces.append("; ")
        pieces += [f"{g.label or 'object'} ", k]
    return pieces, [[Grounding(None, g.shapes)] for g in groundings]


# ---- builders ----------------------------------------------------------------------------------------------
def build_rec(record: dict[str, Any], size: tuple[int, int], ctx: TaskContext) -> Sample:
    _expect(record, "referring")
    text = _text(record)
    regions = record["regions"]
    if len(regions) == 1 and ctx.shape == "box" and ctx.box_as is None:  # the hot path: one box
        r = regions[0]
        x1, y1, x2, y2 = r["bbox"]
        prompt = ctx.templates.choose("rec", ctx.seed, record["id"]).format(expression=text)
        truth = {
            "kind": "box",
            "bbox": r["bbox"],
            "mask_tokens": r.get("mask_tokens"),
            "label": r.get("label"),
            "phrase": text,
        }
        return _sample(record, size, [prompt], [0], [(x1, y1, x2, y2, text)], [truth])
    shapes, truths = [], []
    for r in _regions(record):
        s, t = region_shape(r, size, ctx, text)
        shapes.append(s)
        truths.append(t)
    shapes, truths = in_written_order(ctx, size, shapes, truths)
    prompt = ctx.templates.choose("rec", ctx.seed, record["id"]).format(expression=text)
    return _sample(record, size, [prompt], [0], [[Grounding(text, tuple(shapes))]], truths)


def build_reg(record: dict[str, Any], size: tuple[int, int], ctx: TaskContext) -> Sample:
    _expect(record, "referring")
    text = _text(record)
    shapes, truths = [], []
    for r in _regions(record):
        s, t = region_shape(r, size, ctx, None)
        shapes.append(s)
        truths.append(t)
    shapes, truths = in_written_order(ctx, size, shapes, truths)
    user = _split_slot(ctx.templates.choose("reg", ctx.seed, record["id"]), "region")
    return _sample(record, size, user, [text], [[Grounding(None, tuple(shapes))]], truths)


def build_grounded_caption(record: dict[str, Any], size: tuple[int, int], ctx: TaskContext) -> Sample:
    _expect(record, "grounded_caption")
    text = _text(record)
    by_span: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for r in _regions(record):
        span = r.get("span")
        if not span or not (0 <= span[0] < span[1] <= len(text)):
            raise Skip("region.bad_span")
        by_span.setdefault((int(span[0]), int(span[1])), []).append(r)
    spans = sorted(by_span)
    if any(a[1] > b[0] for a, b in itertools.pairwise(spans)):
        raise Skip("region.overlapping_spans")
    answer: list[Piece] = []
    requests: list[list[Grounding]] = []
    truths: list[dict[str, Any]] = []
    cursor = 0
    for start, end in spans:
        phrase = text[start:end]
        shapes, span_truths = [], []
        for r in by_span[(start, end)]:
            s, t = region_shape(r, size, ctx, phrase)
            shapes.append(s)
            span_truths.append(t)
        shapes, span_truths = in_written_order(ctx, size, shapes, span_truths)
        truths += span_truths
        if ctx.codec.carries_label:  # the span writes the phrase itself (Kosmos-2 hyperlink style)
            answer += [text[cursor:start], len(requests)]
            requests.append([Grounding(phrase, tuple(shapes))])
        else:
            answer += [text[cursor:end], " ", len(requests)]
            requests.append([Grounding(None, tuple(shapes))])
        cursor = end
    answer.append(text[cursor:])
    prompt = ctx.templates.choose("grounded-caption", ctx.seed, record["id"])
    return _sample(record, size, [prompt], answer, requests, truths)


def _category_label(record: dict[str, Any], regions: Sequence[dict[str, Any]]) -> str:
    labels = {r.get("label") for r in regions} - {None}
    if len(labels) == 1:
        return str(labels.pop())
    text = record.get("text")
    if isinstance(text, str) and text.strip():
        return text
    raise Skip("record.no_label")


def _not_exhaustive(record: dict[str, Any]) -> frozenset[int] | None:
    """The category ids whose instances the record does not list in full: None = the record claims nothing
    complete (``exhaustive: false``, e.g. Visual Genome objects); else LVIS's ``not_exhaustive_category_ids``
    (empty: every category present is complete). docs/spec.md#records."""
    if record.get("exhaustive") is False:
        return None
    return frozenset(record.get("not_exhaustive_category_ids") or ())


def _check_exhaustive(record: dict[str, Any], regions: Sequence[dict[str, Any]]) -> None:
    """Skip a record whose answer would claim "every instance" of a category the source did not exhaust."""
    partial = _not_exhaustive(record)
    if partial is None or (partial and any(r.get("category_id") in partial for r in regions)):
        raise Skip("record.not_exhaustive")


def build_multi(record: dict[str, Any], size: tuple[int, int], ctx: TaskContext) -> Sample:
    _expect(record, "category", "instances")
    regions = _regions(record)
    if record["task"] == "instances":
        partial = _not_exhaustive(record)
        if partial is None:
            raise Skip("record.not_exhaustive")
        if partial:  # "locate every X" only for the categories the source exhausted
            regions = [r for r in regions if r.get("category_id") not in partial]
            if not regions:
                raise Skip("record.not_exhaustive")
        return _multi_per_category(record, regions, size, ctx)
    _check_exhaustive(record, regions)
    label = _category_label(record, regions)
    shapes, truths = [], []
    for r in regions:
        s, t = region_shape(r, size, ctx, label)
        shapes.append(s)
        truths.append(t)
    shapes, truths = in_written_order(ctx, size, shapes, truths)
    prompt = ctx.templates.choose("multi", ctx.seed, record["id"]).format(label=label)
    return _sample(record, size, [prompt], [0], [[Grounding(label, tuple(shapes))]], truths)


def _multi_per_category(
    record: dict[str, Any], regions: list[dict[str, Any]], size: tuple[int, int], ctx: TaskContext
) -> Sample:
    """An ``instances`` record as ``multi``: one "locate every <label>" turn pair per category present
    (first-appearance order), each answered with that category's regions in record order. One sample per
    record (the runner builds one per record), so the categories are its turns."""
    by_label: dict[str, list[dict[str, Any]]] = {}
    for r in regions:
        label = r.get("label")
        if not isinstance(label, str) or not label.strip():
            raise Skip("record.no_label")
        by_label.setdefault(label, []).append(r)
    turns: list[tuple[str, list[Piece]]] = []
    requests: list[Request] = []
    truths: list[dict[str, Any]] = []
    for label, members in by_label.items():
        shapes, member_truths = [], []
        for r in members:
            shape, truth = region_shape(r, size, ctx, label)
            shapes.append(shape)
            member_truths.append(truth)
        shapes, member_truths = in_written_order(ctx, size, shapes, member_truths)
        truths += member_truths
        prompt = ctx.templates.choose("multi", ctx.seed, f"{record['id']}:{label}").format(label=label)
        turns += [("user", [prompt]), ("assistant", [len(requests)])]
        requests.append([Grounding(label, tuple(shapes))])
    rid = record["id"]
    return Sample(rid, rid, record["image"]["file"], size, turns, requests, truths)


def build_point(record: dict[str, Any], size: tuple[int, int], ctx: TaskContext) -> Sample:
    _expect(record, "referring", "instances")
    regions = _regions(record)
    if record["task"] == "referring":
        text = _text(record)
        pairs = [point_shape(r, size, text) for r in regions]
        shapes, truths = in_written_order(ctx, size, [p[0] for p in pairs], [p[1] for p in pairs])
        prompt = ctx.templates.choose("point", ctx.seed, record["id"]).format(expression=text)
        return _sample(record, size, [prompt], [0], [[Grounding(text, tuple(shapes))]], truths)
    _check_exhaustive(record, regions)  # "every object"
    groundings, truths_l = [], []
    for r in regions:
        s, t = point_shape(r, size, r.get("label"))
        groundings.append(Grounding(r.get("label"), (s,)))
        truths_l.append(t)
    answer, requests = _labelled_list(groundings, ctx)
    prompt = ctx.templates.choose("point-all", ctx.seed, record["id"])
    return _sample(record, size, [prompt], answer, requests, truths_l)


def build_detect(record: dict[str, Any], size: tuple[int, int], ctx: TaskContext) -> Sample:
    _expect(record, "instances")
    if record.get("incomplete"):  # ingest left out bad annotations: a detection target must list them all
        raise Skip("record.incomplete")
    regions = _regions(record)
    _check_exhaustive(record, regions)
    groundings, truths = [], []
    for r in regions:
        s, t = region_shape(r, size, ctx, r.get("label"))
        groundings.append(Grounding(r.get("label"), (s,)))
        truths.append(t)
    answer, requests = _labelled_list(groundings, ctx)
    prompt = ctx.templates.choose("detect", ctx.seed, record["id"])
    return _sample(record, size, [prompt], answer, requests, truths)


Builder = Callable[[dict[str, Any], tuple[int, int], TaskContext], Sample]
AnyBuilder = Callable[[dict[str, Any], tuple[int, int], TaskContext], Sample | Samples]
"""A builder that may return several lines of one record (:class:`Samples`: ``count``, ``relation``)."""
BUILDERS: dict[str, Builder] = {
    "rec": build_rec,
    "reg": build_reg,
    "grounded-caption": build_grounded_caption,
    "multi": build_multi,
    "point": build_point,
    "detect": build_detect,
}


def kinds_needed(task: str, shape: ShapeOption, box_as: str | None = None) -> set[str]:
    if task == "point" or shape == "point" or (box_as == "center" and shape == "box"):
        return {"point"}
    return {shape} if shape in ("mask", "polyline", "polygon") else {"box"}


# ---- encoding ----------------------------------------------------------------------------------------------
def encode_requests(samples: Sequence[Sample], codec: Codec) -> list[list[str]]:
    """Text of every request of every sample; single-box requests go through ``encode_boxes`` in one call."""
    texts: list[list[str]] = [[""] * len(s.requests) for s in samples]
    fast_at: list[tuple[int, int]] = []
    boxes: list[tuple[float, ...]] = []
    sizes: list[tuple[int, int]] = []
    labels: list[str | None] = []
    for si, s in enumerate(samples):
        for ri, req in enumerate(s.requests):
            if isinstance(req, tuple):
                fast_at.append((si, ri))
                boxes.append(req[:4])
                sizes.append(s.size)
                labels.append(req[4])
            elif len(req) == 1 and len(req[0].shapes) == 1 and req[0].shapes[0].kind == "box":
                fast_at.append((si, ri))
                boxes.append(req[0].shapes[0].coords)
                sizes.append(s.size)
                labels.append(req[0].label)
            else:
                texts[si][ri] = codec.encode(req, s.size)
    if fast_at:
        encoded = codec.encode_boxes(
            np.asarray(boxes, dtype=np.float64), np.asarray(sizes, dtype=np.int64), labels
        )
        for (si, ri), t in zip(fast_at, encoded, strict=True):
            texts[si][ri] = t
    return texts


def encode_placeholders(
    samples: Sequence[Sample], codec: Codec
) -> tuple[list[list[str]], list[dict[str, Any]]]:
    """``--format swift``: each request as ms-swift placeholders (``<ref-object>`` for a label the scheme
    would write, one ``<bbox>`` per shape) and, per sample, the ``objects`` they stand for, in original
    pixels.
    Requests are taken in the order the turns name them: ms-swift fills placeholders in text order."""
    texts: list[list[str]] = []
    objects: list[dict[str, Any]] = []
    for s in samples:
        writer = ObjectsWriter()
        row = [""] * len(s.requests)
        for _, pieces in s.turns:
            for p in pieces:
                if isinstance(p, int):
                    row[p] = _placeholders(s.requests[p], writer, codec.carries_label)
        texts.append(row)
        objects.append(writer.objects())
    return texts, objects


def _placeholders(req: Request, writer: ObjectsWriter, labels: bool) -> str:
    if isinstance(req, tuple):
        return writer.write(req[4] if labels else None, [req[:4]])
    out = []
    for g in req:
        bad = [sh.kind for sh in g.shapes if sh.kind not in ("box", "point")]
        if bad:
            raise ValueError(f"ms-swift objects hold boxes and points, not a {bad[0]}")
        out.append(writer.write(g.label if labels else None, [sh.coords for sh in g.shapes]))
    return "".join(out)


def render_turns(sample: Sample, texts: list[str]) -> list[tuple[str, str]]:
    out = []
    for role, pieces in sample.turns:
        if len(pieces) == 1:
            p = pieces[0]
            out.append((role, p if isinstance(p, str) else texts[p]))
        else:
            out.append((role, "".join([p if isinstance(p, str) else texts[p] for p in pieces])))
    return out
