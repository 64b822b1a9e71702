"""Walk an export folder or a records file once and gather what `gtok stats` reports.

Export folder (or its manifest, or one shard file): every shard line (read with
:class:`gtok_cli.shards.read.ExportFolder`, :mod:`gtok_cli.trainer_formats`); the geometry turns
decoded with the manifest's codec and compared with ``meta`` by verify's own comparators
(:data:`gtok_cli.geometry.compare.COMPARATORS`). Dataset and split come from the source records the manifest
lists when they are still on disk (else the dataset is the record id's prefix and the split ``unknown``).

Records file: counts, regions, ``mask_tokens`` (tokens per mask, IoU the solver reached), box sizes.

The solver IoU (:mod:`gtok_cli.mask_quality`) is that of every region with ``mask_tokens`` in a records
file, and of every ``mask`` region in an export (the masks its answers draw); ``--min-mask-iou`` counts those
below a floor.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gtok_cli.codecs import TRAINER_PARAMS, Codec, codec_from_params
from gtok_cli.counting import meta_count, stated_count
from gtok_cli.errors import InputError
from gtok_cli.geometry.compare import COMPARATORS
from gtok_cli.jsonio import iter_jsonl
from gtok_cli.mask_quality import SolverIoUs, check_floor
from gtok_cli.rendered import decodable_turns
from gtok_cli.shards.read import UNKNOWN, ExportFolder, is_export, source_provenance
from gtok_cli.stats import relation_balance
from gtok_cli.stats.measure import (
    BOX_SIZES,
    MEDIUM_MAX_AREA,
    PAPER_TOKENS_PER_MASK_32,
    SMALL_MAX_AREA,
    SpatialTokenCounter,
    box_size,
    summary,
)
from gtok_cli.task_roles import carries_geometry, geometry_role
from gtok_cli.trainer_formats import get_format
from gtok_cli.trainer_images import TrainerImage


@dataclass
class Tally:
    """Everything counted; ``to_json`` turns the value lists into summaries."""

    kind: str
    source: str
    samples: int = 0
    regions: int = 0
    by_dataset: Counter[str] = field(default_factory=Counter)
    by_split: Counter[str] = field(default_factory=Counter)
    by_task: Counter[str] = field(default_factory=Counter)
    by_category: Counter[str] = field(default_factory=Counter)
    by_kind: Counter[str] = field(default_factory=Counter)
    box_sizes: Counter[str] = field(default_factory=Counter)
    tokens_per_sample: list[float] = field(default_factory=list)
    tokens_per_region: list[float] = field(default_factory=list)
    tokens_per_mask: list[float] = field(default_factory=list)
    mask_grids: Counter[int] = field(default_factory=Counter)
    mask_ious: SolverIoUs = field(default_factory=SolverIoUs)
    min_mask_iou: float | None = None
    error_px: list[float] = field(default_factory=list)
    iou: list[float] = field(default_factory=list)
    problems: Counter[str] = field(default_factory=Counter)
    extra: dict[str, Any] = field(default_factory=dict)
    image_sizes: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Each image file's size (for the trainer's budget)."""
    feed: TrainerImage = field(default_factory=lambda: TrainerImage("llamafactory"))
    """Whose resize ``trainer_resize`` counts: ``--trainer``, else the export's pinned one, else
    LLaMA-Factory's default budget (the one that shrinks images silently)."""
    feed_note: str | None = None
    count_histogram: Counter[int] = field(default_factory=Counter)
    """``--task count`` exports: lines per answer ``meta.count.n`` (0 = the negatives)."""
    relations: Counter[tuple[str, str]] = field(default_factory=Counter)
    """Relation lines by source and predicate (:mod:`.relation_balance`)."""

    def add_region(self, region: dict[str, Any]) -> None:
        self.regions += 1
        self.by_category[str(region.get("label") or UNKNOWN)] += 1
        bbox = region.get("bbox")
        if bbox is not None:
            self.box_sizes[box_size(bbox)] += 1
        mt = region.get("mask_tokens")
        if mt:
            self.mask_grids[int(mt.get("grid", 0))] += 1
        if (mt and self.kind == "records") or region.get("kind") == "mask":
            self.mask_ious.add(region)

    @property
    def mask_iou(self) -> list[float]:
        return self.mask_ious.values

    def to_json(self) -> dict[str, Any]:
        def counts(c: Counter[Any]) -> dict[str, int]:
            return {str(k): v for k, v in sorted(c.items(), key=lambda kv: (-kv[1], str(kv[0])))}

        out: dict[str, Any] = {"kind": self.kind, "input": self.source, **self.extra}
        out.update(
            samples=self.samples,
            regions=self.regions,
            by_dataset=counts(self.by_dataset),
            by_split=counts(self.by_split),
            by_task=counts(self.by_task),
            by_category=counts(self.by_category),
            box_sizes={
                "rule": f"COCO: area < {SMALL_MAX_AREA} small, < {MEDIUM_MAX_AREA} medium, else large "
                "(box area in original pixels)",
                **{k: self.box_sizes.get(k, 0) for k in BOX_SIZES},
            },
            mask_tokens={
                "grids": {str(k): v for k, v in sorted(self.mask_grids.items())},
                "tokens_per_mask": summary(self.tokens_per_mask),
                "paper_tokens_per_mask_32x32_sam": PAPER_TOKENS_PER_MASK_32,
                "solver_iou": summary(self.mask_iou),
                "solver_iou_not_recorded": self.mask_ious.not_recorded,
                "min_mask_iou": self.min_mask_iou,
                "below_min_mask_iou": self.mask_ious.below(self.min_mask_iou),
            },
        )
        out["trainer_resize"] = self.trainer_resize()
        if self.kind == "export":
            out["by_kind"] = counts(self.by_kind)
            out["tokens"] = {
                "per_sample": summary(self.tokens_per_sample),
                "per_region": summary(self.tokens_per_region),
            }
            if self.count_histogram:
                out["count_histogram"] = {str(k): v for k, v in sorted(self.count_histogram.items())}
            relations = relation_balance.balance(self.relations)
            if relations is not None:
                out["relations"] = relations
            out["round_trip"] = {
                "error_px": summary(self.error_px),
                "iou": summary(self.iou),
                "problems": counts(self.problems),
            }
        return out

    def trainer_resize(self) -> dict[str, Any]:
        """How many distinct images the trainer's budget shrinks before the model's processor sees them."""
        sizes = list(self.image_sizes.values())
        shrunk = int(self.feed.shrinks([w for w, _ in sizes], [h for _, h in sizes]).sum()) if sizes else 0
        return {
            "trainer": self.feed.trainer,
            "image_max_pixels": self.feed.budget,
            "images": len(sizes),
            "shrunk": shrunk,
            "note": self.feed_note,
        }


def collect(path: str | Path, min_mask_iou: float | None = None, feed: TrainerImage | None = None) -> Tally:
    """``min_mask_iou``: count the mask regions whose solver IoU is below it. ``feed``: count the images this
    trainer's budget shrinks (default: the export's pinned trainer, else LLaMA-Factory's default budget)."""
    floor = check_floor(min_mask_iou)
    p = Path(path)
    if not p.exists():
        raise InputError("no such file or folder", file=str(p), reason="file.missing")
    t = collect_export(p, feed) if is_export(p) else collect_records(p, feed)
    t.min_mask_iou = floor
    return t


# ---- records -----------------------------------------------------------------------------------------------
def collect_records(path: Path, feed: TrainerImage | None = None) -> Tally:
    t = Tally("records", str(path))
    if feed is not None:
        t.feed = feed
    for lineno, rec in iter_jsonl(path):
        if not isinstance(rec, dict) or not isinstance(rec.get("regions"), list):
            raise InputError("not a gtok record", file=str(path), record=f"line {lineno}", field="regions")
        image = rec.get("image")
        if isinstance(image, dict):
            w, h = image.get("width"), image.get("height")
            if isinstance(w, int) and isinstance(h, int):
                t.image_sizes[str(image.get("file"))] = (w, h)
        t.samples += 1
        t.by_dataset[str(rec.get("dataset") or UNKNOWN)] += 1
        t.by_split[str(rec.get("split") or UNKNOWN)] += 1
        t.by_task[str(rec.get("task") or UNKNOWN)] += 1
        for r in rec["regions"]:
            t.add_region(r)
            mt = r.get("mask_tokens")
            if mt and mt.get("anchors") is not None:
                t.tokens_per_mask.append(float(len(mt["anchors"])))
    return t


# ---- export folders ----------------------------------------------------------------------------------------
def _feed_of(codec: Codec, fmt: str, feed: TrainerImage | None) -> tuple[TrainerImage, str]:
    """The trainer whose budget is counted, and what it means for this export's boxes."""
    pinned = TrainerImage(**{k: v for k, v in codec.params().items() if k in TRAINER_PARAMS})
    if get_format(fmt).objects_key is not None:
        return feed or TrainerImage("llamafactory"), "immune: ms-swift rescales objects to the image it feeds"
    if not codec.fed_image:
        return feed or TrainerImage("llamafactory"), f"scheme {codec.name}: immune (fractions of the image)"
    if feed is None or feed == pinned:
        if pinned.trainer != "hf":
            return pinned, "the export writes pixels of the image this trainer feeds"
        feed = TrainerImage("llamafactory")
    return feed, (
        f"scheme {codec.name} was exported for --trainer {pinned.trainer}: fed by {feed.trainer}, each image "
        f"the two feed at different sizes gets wrong boxes (export with --trainer {feed.trainer})"
    )


def collect_export(path: Path, feed: TrainerImage | None = None) -> Tally:
    src = ExportFolder.open(path)
    m = src.manifest
    codec = codec_from_params(m["scheme"])
    counter = SpatialTokenCounter(codec)
    role = geometry_role(m["task"])
    prov = source_provenance(m)
    t = Tally("export", str(path))
    t.feed, t.feed_note = _feed_of(codec, m["format"], feed)
    t.extra = {
        "scheme": m["scheme"],
        "task": m["task"],
        "format": m["format"],
        "manifest_counts": m["counts"],
        "tokens_definition": counter.definition(),
        "provenance": "source records" if prov else "record id prefix (source records not found)",
    }
    bounds: dict[tuple[int, int], tuple[float, float]] = {}
    for _, _, line in src.lines():
        t.samples += 1
        t.by_task[m["task"]] += 1
        meta = line.get("meta")
        if not meta:
            t.problems["no_meta"] += 1
            if m["task"] == "count":  # --no-meta: the histogram from the numbers the answers state
                answers = get_format(m["format"]).assistant_texts(line)
                stated = stated_count(answers[0]) if answers else None
                if stated is not None:
                    t.count_histogram[stated] += 1
            continue
        counted = meta_count(meta)
        if counted is not None:
            t.count_histogram[counted[1]] += 1
        rid = str(meta["record_id"])
        dataset, split = prov.get(rid, (rid.split(":", 1)[0] or UNKNOWN, UNKNOWN))
        t.by_dataset[dataset] += 1
        t.by_split[split] += 1
        size = (int(meta["image_size"][0]), int(meta["image_size"][1]))
        with contextlib.suppress(KeyError, TypeError, IndexError):
            t.image_sizes[get_format(m["format"]).image(line)] = size
        turns = decodable_turns(get_format(m["format"]), line, codec, size)
        regions = meta["regions"]
        rel = relation_balance.relation_key(meta.get("relation"))
        if rel is not None:
            t.relations[rel] += 1
        for r in regions:
            t.add_region(r)
            t.by_kind[r["kind"]] += 1
        shapes = []
        sample_tokens = 0
        for r_role, text in turns:
            if not carries_geometry(role, r_role):
                continue
            dec = codec.decode(text, size)
            t.problems.update("span.invalid" for _ in dec.errors)
            n, per_shape = counter.count(text, dec)
            sample_tokens += n
            t.tokens_per_region += per_shape
            shapes += dec.shapes()
        t.tokens_per_sample.append(float(sample_tokens))
        t.tokens_per_mask += [float(len(s.anchors or ())) for s in shapes if s.kind == "mask"]
        if len(shapes) != len(regions):
            t.problems["regions.count"] += 1
            continue
        allowed = bounds.get(size)
        if allowed is None:
            allowed = bounds[size] = codec.bound(size).pixels(size)
        for shape, region in zip(shapes, regions, strict=True):
            if shape.kind != region["kind"] or region["kind"] not in COMPARATORS:
                t.problems["region.kind"] += 1
                continue
            err, iou, problem = COMPARATORS[region["kind"]](shape, region, allowed)
            if problem is not None:
                t.problems["region.error"] += 1
            if err == err:  # not NaN (mask anchors that differ give NaN)
                t.error_px.append(err)
            if iou is not None:
                t.iou.append(iou)
    return t
