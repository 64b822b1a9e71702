"""What `gtok show` draws: a :class:`View` (image, decoded shapes, truth regions, conversation) per sample.

Sources:

- an export folder (or its ``manifest.json``, or one shard file): every shard line, in shard-name order,
  read with :class:`gtok_cli.shards.read.ExportFolder`; turns via :mod:`gtok_cli.trainer_formats`; the
  spans of the turns that carry geometry (:func:`gtok_cli.task_roles.geometry_role`) decoded with the
  manifest's codec; truth from the line's ``meta`` (boxes, points, mask-token anchors). ``truth_records``
  adds the records' real masks to the truth, matched to meta regions by record id and bbox.
- a records JSONL: the record's boxes and masks are the truth; its ``mask_tokens`` (if any) are what the
  tokens say.

Selection: ``index`` (0-based over the whole input), ``sample_id`` (a line's ``id`` or its
``meta.record_id``, or a record's ``id``), or ``sample`` N items drawn with ``random.Random(seed)``.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gtok_cli.codecs import Codec, Shape, codec_from_params
from gtok_cli.counting import meta_count
from gtok_cli.errors import InputError, UsageError
from gtok_cli.jsonio import iter_jsonl
from gtok_cli.scoring.measures import anchors_mask
from gtok_cli.scoring.truth import TruthRegion, attach_record_masks, meta_region
from gtok_cli.shards.read import ExportFolder, is_export
from gtok_cli.task_roles import carries_geometry, geometry_role
from gtok_cli.trainer_formats import get_format


@dataclass
class View:
    """One sample, ready to draw."""

    title: str
    image_file: str
    size: tuple[int, int] | None
    """(width, height) the geometry refers to (None: take the image's own)"""
    turns: list[tuple[str, str]]
    decoded: list[Shape] = field(default_factory=list)
    decoded_labels: list[str | None] = field(default_factory=list)
    decoded_region: list[int] = field(default_factory=list)
    """Per decoded shape: the index of the truth region it stands for (its colour)."""
    decode_errors: list[str] = field(default_factory=list)
    truth: list[TruthRegion] = field(default_factory=list)
    mask_tokens: list[dict[str, Any] | None] = field(default_factory=list)
    """Per decoded shape: the truth region's ``mask_tokens`` (backend / select used to solve it)."""
    grid: int | None = None
    """The scheme's grid size (grid overlay, mask cells)."""
    scheme: dict[str, Any] | None = None
    """The export's scheme (``Codec.describe()``): its lattice is the grid overlay (None: records)."""
    refined: list[Shape] = field(default_factory=list)
    """A refinement conversation's answer after its last offset turn (``decoded`` is then the proposal)."""
    refined_region: list[int] = field(default_factory=list)
    refine_turns: int = 0
    """Offset turns read (> 0: a propose-and-refine picture)."""
    info: str = ""
    tokens_from: str = "tokens"
    truth_from: str = "meta"


# ---- sources -----------------------------------------------------------------------------------------------
@dataclass
class ExportSource:
    export: ExportFolder
    codec: Codec
    truth_records: dict[str, dict[str, Any]] | None = None
    images: str | Path | None = None
    """Images root: with ``--no-meta`` shards the image's own size is the size the tokens refer to."""

    @staticmethod
    def open(path: Path) -> ExportSource:
        export = ExportFolder.open(path)
        return ExportSource(export, codec_from_params(export.manifest["scheme"]))

    @property
    def manifest(self) -> dict[str, Any]:
        return self.export.manifest

    @property
    def folder(self) -> Path:
        return self.export.folder

    def items(self) -> Iterator[dict[str, Any]]:
        for _, _, line in self.export.lines():
            yield line

    def ids(self, line: dict[str, Any]) -> set[str]:
        meta = line.get("meta") or {}
        return {str(x) for x in (line.get("id"), meta.get("record_id")) if x is not None}

    def view(self, line: dict[str, Any], where: str) -> View:
        m = self.manifest
        fmt, task = m["format"], m["task"]
        try:
            turns = get_format(fmt).turns(line)
            image = get_format(fmt).image(line)
        except (KeyError, TypeError, IndexError):
            raise InputError(f"line is not a {fmt} line", file=where, reason="line.format") from None
        meta = line.get("meta")
        size = tuple(meta["image_size"]) if meta else None
        rid = str(meta["record_id"]) if meta else str(line.get("id", where))
        params = m["scheme"].get("params", {})
        if get_format(fmt).objects_key is not None and size is not None:  # ms-swift placeholders
            from gtok_cli.codecs import codec_from_params
            from gtok_cli.rendered import decodable_turns

            codec = codec_from_params(m["scheme"])
            turns = decodable_turns(get_format(fmt), line, codec, (int(size[0]), int(size[1])))
        view = View(
            title=rid,
            image_file=image,
            size=(int(size[0]), int(size[1])) if size else None,
            turns=turns,
            grid=params.get("grid") if m["scheme"]["scheme"] == "grid" else None,
            scheme=m["scheme"],
            info=f"{m['scheme']['scheme']} {_params_text(params)} · task {task} · {fmt}",
        )
        counted = meta_count(meta)
        if counted is not None:  # --task count: the question's answer, beside the shapes drawn
            view.info += f" · meta.count: {counted[0]} = {counted[1]}"
        if meta and isinstance(meta.get("relation"), dict):
            view.info += " · " + relation_caption(meta["relation"], meta["regions"])
        if meta:
            view.truth = [meta_region(r) for r in meta["regions"]]
            view.mask_tokens = [r.get("mask_tokens") for r in meta["regions"]]
            if self.truth_records is not None:
                _add_record_masks(view, self.truth_records.get(rid))
                view.truth_from = "meta + records"
        else:
            view.truth_from = "none (no meta)"
            if self.images is not None:
                from gtok_cli.images import image_size, safe_image_path

                path = safe_image_path(self.images, image, file=where, record=rid)
                if path.is_file():
                    view.size = image_size(path)
        if view.size is not None:
            _decode_into(view, self.codec, geometry_role(task))
        return view


def relation_caption(rel: dict[str, Any], regions: list[dict[str, Any]]) -> str:
    """``relation: dog left of cat = no (geometry, yesno)``: what a relation line's meta says."""

    def name(k: Any) -> str:
        ok = isinstance(k, int) and 0 <= k < len(regions)
        return str((regions[k].get("label") or regions[k].get("phrase")) if ok else "?")

    answer = "stated" if rel.get("answer") is None else ("yes" if rel["answer"] else "no")
    return (
        f"relation: {name(rel.get('subject'))} {rel.get('predicate')} {name(rel.get('object'))} = {answer} "
        f"({rel.get('source')}, {rel.get('form')})"
    )


def _params_text(params: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(params.items()))


def _add_record_masks(view: View, record: dict[str, Any] | None) -> None:
    """Give each truth region the mask of the record region with the same bbox (each used once)."""
    attach_record_masks(view.truth, record)


def _decode_into(view: View, codec: Codec, role: str) -> None:
    from gtok_cli.refine import replay as refined

    assert view.size is not None
    offset_turns: list[str] = []
    for r, text in view.turns:
        if not carries_geometry(role, r):
            continue
        if refined.is_refinement(codec, text):
            offset_turns.append(text)
            continue
        dec = codec.decode(text, view.size)
        view.decode_errors += [f"{e.message}: {e.text!r}" for e in dec.errors]
        for g in dec.groundings:
            for s in g.shapes:
                view.decoded_region.append(len(view.decoded))
                view.decoded.append(s)
                view.decoded_labels.append(g.label)
    for k in range(len(view.decoded_labels)):
        if view.decoded_labels[k] is None and k < len(view.truth):
            view.decoded_labels[k] = view.truth[k].label
    if offset_turns:
        proposal = list(zip(view.decoded_region, view.decoded, strict=True))
        after = refined.replay(codec, proposal, offset_turns, view.size)
        view.refined = [s for _, s in after.shapes]
        view.refined_region = [k for k, _ in after.shapes]
        view.refine_turns = after.turns
        view.decode_errors += after.errors


@dataclass
class RecordSource:
    path: Path

    def items(self) -> Iterator[dict[str, Any]]:
        for _, rec in iter_jsonl(self.path):
            yield rec

    def ids(self, rec: dict[str, Any]) -> set[str]:
        return {str(rec.get("id"))}

    def view(self, rec: dict[str, Any], where: str) -> View:
        try:
            img = rec["image"]
            regions = rec.get("regions") or []
            size = (int(img["width"]), int(img["height"]))
            file = str(img["file"])
        except (KeyError, TypeError, ValueError):
            raise InputError("not a gtok record", file=where, field="image", reason="record.format") from None
        text = rec.get("text")
        split = rec.get("split")
        view = View(
            title=str(rec.get("id")),
            image_file=file,
            size=size,
            turns=[("text", text)] if isinstance(text, str) else [],
            info=f"record · {rec.get('dataset')} {split or ''} · task {rec.get('task')}",
            tokens_from="mask_tokens",
            truth_from="record",
        )
        for k, r in enumerate(regions):
            # a referring record's expression names its region better than the category does
            said = text if rec.get("task") == "referring" and isinstance(text, str) else None
            lab = r.get("phrase") or said or r.get("label")
            view.truth.append(
                TruthRegion(
                    kind="mask" if r.get("mask") is not None else "box",
                    bbox=(float(r["bbox"][0]), float(r["bbox"][1]), float(r["bbox"][2]), float(r["bbox"][3])),
                    label=lab,
                    mask=r.get("mask"),
                )
            )
            mt = r.get("mask_tokens")
            if mt and mt.get("anchors"):
                n = int(mt["grid"])
                anchors = tuple((int(i), int(j)) for i, j in mt["anchors"])
                w, h = size
                coords = tuple(v for i, j in anchors for v in ((i + 0.5) / n * w, (j + 0.5) / n * h))
                view.decoded.append(Shape("mask", coords, anchors))
                view.decoded_labels.append(lab)
                view.decoded_region.append(k)
                view.grid = n
            view.mask_tokens.append(mt)
        return view


Source = ExportSource | RecordSource


def open_source(
    path: str | Path, truth_records: str | Path | None = None, images: str | Path | None = None
) -> Source:
    p = Path(path)
    if not p.exists():
        raise InputError("no such file or folder", file=str(p), reason="file.missing")
    if is_export(p):
        src = ExportSource.open(p)
        src.images = images
        if truth_records is not None:
            src.truth_records = {str(r.get("id")): r for _, r in iter_jsonl(truth_records)}
        return src
    return RecordSource(p)


# ---- selection ---------------------------------------------------------------------------------------------
def select_views(
    source: Source,
    *,
    index: int | None = None,
    sample_id: str | None = None,
    sample: int | None = None,
    seed: int = 0,
) -> list[View]:
    """The views asked for (default: the first item)."""
    where = str(getattr(source, "folder", None) or getattr(source, "path", ""))
    if sum(x is not None for x in (index, sample_id, sample)) > 1:
        raise UsageError("give only one of --index, --id, --sample")
    if sample_id is not None:
        for k, item in enumerate(source.items()):
            if sample_id in source.ids(item):
                return [source.view(item, f"{where} item {k}")]
        raise InputError(
            "no sample with this id", file=where, field="--id", expected="an id in the input", found=sample_id
        )
    total: int | None = None
    if sample is not None:
        if sample < 1:
            raise UsageError(f"--sample must be at least 1, got {sample}")
        total = sum(1 for _ in source.items())
        wanted = set(random.Random(seed).sample(range(total), min(sample, total)))
    else:
        k0 = 0 if index is None else index
        if k0 < 0:
            raise InputError("bad index", file=where, field="--index", expected=">= 0", found=k0)
        wanted = {k0}
    views = []
    seen = 0
    for k, item in enumerate(source.items()):
        seen = k + 1
        if k in wanted:
            views.append(source.view(item, f"{where} item {k}"))
            if len(views) == len(wanted):
                break
    if not views or len(views) < len(wanted):
        raise InputError(
            "index out of range",
            file=where,
            field="--index",
            expected=f"0..{seen - 1}" if seen else "a non-empty input",
            found=min(wanted) if index is None else index,
        )
    return views


def bool_mask(anchors: Any, grid: int, size: tuple[int, int], candidates: Any = None) -> np.ndarray:
    """The pixels that mask tokens stand for: the union of their grid cells (``cells``), or with SAM
    candidates of the image the union of those candidate masks (``scoring.measures.anchors_mask``)."""
    return anchors_mask(anchors, grid, size, candidates)
