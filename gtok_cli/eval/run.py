"""``gtok eval`` as a library call: predictions + export → :class:`EvalReport` (docs/spec.md#eval)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from gtok_cli.codecs import Codec, codec_from_params
from gtok_cli.errors import InputError, UsageError
from gtok_cli.eval.report import EvalReport
from gtok_cli.eval.scored import Inputs, Scored
from gtok_cli.jsonio import iter_jsonl, open_output
from gtok_cli.parallel import gc_paused
from gtok_cli.scoring import LENIENCIES
from gtok_cli.scoring.export_index import ExportIndex, SampleMeta, open_export
from gtok_cli.scoring.matching import LISTED, Matched, match
from gtok_cli.scoring.predictions import Prediction, parse_prediction, read_predictions
from gtok_cli.shards.read import UNKNOWN, source_provenance

MASK_BACKENDS = ("cells", "sam")
MAX_GROUPS = 100
"""A breakdown with more datasets (or splits) than this is left out (it would be a list, not a summary)."""
PROVENANCE_MAX_BYTES = 64 << 20
"""Datasets and splits come from the export's source records when these are at most this large in all
(reading them would cost more than scoring a million answers); else from ``--records`` or the record id."""


@dataclass(frozen=True)
class EvalOptions:
    strict: bool = False
    """Decode exactly as ``verify`` does (no repair of messy answers)."""
    mask_backend: str = "cells"
    sam_checkpoint: str | None = None
    model_type: str = "vit_h"
    images: str | None = None
    """Images root (``--mask-backend sam``)."""
    select: str = "max-pred-iou"
    """SAM candidate rule when the truth's ``mask_tokens`` do not name one."""
    device: str = "cpu"

    def check(self, sam_given: bool = False) -> None:
        """Usage errors of the options (``sam_given``: a loaded SAM is handed in, no checkpoint needed)."""
        if self.mask_backend not in MASK_BACKENDS:
            raise UsageError(
                f"--mask-backend must be one of {', '.join(MASK_BACKENDS)}, not {self.mask_backend!r}"
            )
        if self.mask_backend == "sam" and not sam_given and not (self.sam_checkpoint and self.images):
            raise UsageError("--mask-backend sam needs --sam-checkpoint PATH and --images DIR")


def load_records(paths: list[str], wanted: set[str | None]) -> dict[str, dict[str, Any]]:
    """The records of ``paths`` whose id is wanted, kept small (dataset, split, regions' bbox and mask)."""
    out: dict[str, dict[str, Any]] = {}
    for path in paths:
        for _, rec in iter_jsonl(path):
            if not isinstance(rec, dict) or str(rec.get("id")) not in wanted:
                continue
            regions = [
                {"bbox": r.get("bbox"), "mask": r.get("mask")}
                for r in rec.get("regions") or []
                if isinstance(r, dict) and r.get("bbox") is not None
            ]
            out[str(rec["id"])] = {
                "dataset": rec.get("dataset"),
                "split": rec.get("split"),
                "regions": regions,
            }
    return out


def _scorer(index: ExportIndex, codec: Codec) -> str:
    m = index.manifest
    task = index.task
    if task == "reg":
        raise UsageError("a reg export's answers are text, not geometry: eval scores every other task")
    if task == "refine" or m.get("refine") is not None:
        return "refine"
    if task == "count":
        return "count"
    if task == "relation":
        return "relation"
    if task == "rec":
        if m.get("shape") == "polyline":
            raise UsageError("eval does not score polyline answers (rec --shape polyline)")
        kinds = {r["kind"] for k in index.metas for r in index.metas[k]["regions"]}
        if not np.isnan(index.one_box).any(axis=1).all():
            kinds.add("box")  # one-box lines are kept as columns, not metas
        if kinds and kinds <= {"point"}:
            return "points"  # a points-only scheme's rec (--box-as center): a hit inside the referred region
        return (
            "masks" if "mask" in kinds and kinds <= {"mask"} else "boxes" if "mask" not in kinds else "mixed"
        )
    return {"point": "points", "detect": "detection", "multi": "detection", "grounded-caption": "captions"}[
        task
    ]


def score(
    index: ExportIndex,
    answers: list[list[str] | None],
    options: EvalOptions,
    records: dict[str, dict[str, Any]] | None = None,
    sam: Any = None,
) -> Scored:
    """Score matched answers (one per export line, None: missing) with the export's task rule."""
    from gtok_cli.eval import captions, count, detection, points, rec, refine, relation

    codec = codec_from_params(index.manifest["scheme"])
    kind = _scorer(index, codec)
    inp = Inputs(index, answers, codec, options.strict, records)
    if kind in ("masks", "mixed"):
        mask_of = _sam_mask_of(index, options, sam) if options.mask_backend == "sam" else None
        return rec.score_masks(inp, mask_of) if kind == "masks" else _mixed(inp, mask_of)
    scorer = {
        "boxes": rec.score_boxes,
        "points": points.score_points,
        "detection": detection.score_detection,
        "captions": captions.score_captions,
        "refine": refine.score_refine,
        "count": count.score_count,
        "relation": relation.score_relation,
    }[kind]
    return scorer(inp)


def _mixed(inp: Inputs, mask_of: Any) -> Scored:
    """``rec --shape auto`` with both kinds: box metrics over the box lines, mask metrics over mask lines."""
    from gtok_cli.eval import rec

    index, answers = inp.index, inp.answers
    is_mask = np.asarray(
        [any(r["kind"] == "mask" for r in index.meta(k)["regions"]) for k in range(index.n)], dtype=bool
    )
    masked = [a if is_mask[k] else None for k, a in enumerate(answers)]
    boxed = [None if is_mask[k] else a for k, a in enumerate(answers)]
    b = rec.score_boxes(replace(inp, answers=boxed))
    m = rec.score_masks(replace(inp, answers=masked), mask_of)

    def aggregate(rows: Any) -> dict[str, float | None]:
        return {**b.aggregate(rows[~is_mask[rows]]), **m.aggregate(rows[is_mask[rows]])}

    out = Scored(index.n, aggregate, {"iou": np.where(is_mask, m.per_sample["iou"], b.per_sample["iou"])})
    out.format_error = np.where(is_mask, m.format_error, b.format_error)
    out.issues = {**b.issues, **m.issues}
    out.lenient = b.lenient + m.lenient
    out.decoded = {**m.decoded, **{k: b.decoded_of(k) for k in np.flatnonzero(~is_mask).tolist()}}
    out.info = {**m.info, "mask_lines": int(is_mask.sum()), "box_lines": int((~is_mask).sum())}
    return out


def _sam_mask_of(index: ExportIndex, options: EvalOptions, sam: Any) -> Any:
    from gtok_cli.extras import require
    from gtok_cli.scoring.sam_masks import SamAnchorMasks

    if sam is None:
        require("torch", "torchvision", "segment_anything", feature="--mask-backend sam")
        assert options.sam_checkpoint is not None and options.images is not None
        sam = SamAnchorMasks.load(
            options.sam_checkpoint,
            options.model_type,
            images_root=options.images,
            device=options.device,
            select=options.select,
        )

    def mask_of(k: int, anchors: list[tuple[int, int]], grid: int, size: tuple[int, int]) -> Any:
        rules = [(r.get("mask_tokens") or {}).get("select") for r in index.meta(k)["regions"]]
        rule = next((r for r in rules if r), None)
        return sam.mask(index.images[k], anchors, grid=grid, size=size, select=rule)

    return mask_of


def _groups(
    index: ExportIndex, records: dict[str, dict[str, Any]] | None
) -> tuple[list[str], list[str], str]:
    """Per line its dataset and split, and where they came from."""
    sources = index.manifest.get("sources", [])
    if records:
        prov = {
            rid: (str(r.get("dataset") or UNKNOWN), str(r.get("split") or UNKNOWN))
            for rid, r in records.items()
        }
        source = "--records"
    elif sum(int(s.get("bytes", 0)) for s in sources) <= PROVENANCE_MAX_BYTES:
        prov = source_provenance(index.manifest)
        source = "source records" if prov else "record id prefix (source records not found)"
    else:
        prov = {}
        source = (
            "record id prefix (the source records are too large to read for this: --records gives splits)"
        )
    datasets, splits = [], []
    for rid in index.rids:
        got = prov.get(rid or "")
        if got is None:  # gtok's record ids start with their dataset: "refcoco:unc:…", "coco:val2017:…"
            head, sep, _ = (rid or "").partition(":")
            got = (head if sep and head else UNKNOWN, UNKNOWN)
        datasets.append(got[0])
        splits.append(got[1])
    return datasets, splits, source


def _breakdown(scored: Scored, names: list[str]) -> dict[str, dict[str, Any]]:
    """The metrics per group (dataset or split); none when there are more than :data:`MAX_GROUPS`."""
    by: dict[str, list[int]] = {}
    for k, name in enumerate(names):
        by.setdefault(name, []).append(k)
        if len(by) > MAX_GROUPS:
            return {}
    out: dict[str, dict[str, Any]] = {}
    for name in sorted(by):
        rows = np.asarray(by[name], dtype=np.int64)
        out[name] = {"n": len(rows), **scored.aggregate(rows)}
    return out


def evaluate(
    predictions: str | Path | Iterable[Prediction | dict[str, Any]],
    against: str | Path,
    *,
    records: list[str] | None = None,
    options: EvalOptions | None = None,
    rebuild: SampleMeta | None = None,
    per_sample: str | Path | None = None,
    sam: Any = None,
) -> EvalReport:
    """Score ``predictions`` (a JSONL path, ``-`` for stdin, or prediction objects / dicts) against the export
    folder ``against``. ``records``: the truth of a ``--no-meta`` export (with ``rebuild``, the export stage's
    ``sample_meta``), real masks for mask and point truths, datasets and splits. ``per_sample``: write one
    JSON line per export line. ``sam``: a ready :class:`~gtok_cli.scoring.sam_masks.SamAnchorMasks`."""
    opts = options or EvalOptions()
    opts.check(sam_given=sam is not None)
    with gc_paused():  # millions of small objects, no cycles: the collector would only rescan them
        return _evaluate(predictions, against, records, opts, rebuild, per_sample, sam)


def _evaluate(
    predictions: str | Path | Iterable[Prediction | dict[str, Any]],
    against: str | Path,
    records: list[str] | None,
    opts: EvalOptions,
    rebuild: SampleMeta | None,
    per_sample: str | Path | None,
    sam: Any,
) -> EvalReport:
    index = open_export(against, records=records, rebuild=rebuild, keep_images=opts.mask_backend == "sam")
    if not index.n:
        raise InputError(
            "the export has no line: nothing to score against", file=str(against), reason="export.empty"
        )
    source = str(predictions) if isinstance(predictions, str | Path) else "predictions"
    matched = match(_predictions(predictions), index.ids, source)
    recs = load_records(records, set(index.rids)) if records else None
    scored = score(index, matched.answers, opts, recs, sam)
    datasets, splits, prov = _groups(index, recs)
    report = _report(index, matched, scored, opts)
    report.breakdown = {"dataset": _breakdown(scored, datasets), "split": _breakdown(scored, splits)}
    report.info["datasets_and_splits_from"] = prov
    if per_sample is not None:
        write_per_sample(per_sample, index, matched, scored)
    return report


def _predictions(src: str | Path | Iterable[Prediction | dict[str, Any]]) -> Iterable[Prediction]:
    if isinstance(src, str | Path):
        yield from read_predictions(src)
        return
    for k, p in enumerate(src, 1):
        yield p if isinstance(p, Prediction) else parse_prediction(p, "predictions", k)


def _report(index: ExportIndex, matched: Matched, scored: Scored, opts: EvalOptions) -> EvalReport:
    n = index.n
    rows = np.arange(n, dtype=np.int64)
    metrics = scored.aggregate(rows) if n else {}
    fe = np.flatnonzero(scored.format_error)
    counts: dict[str, Any] = {
        k: int(matched.counts.get(k, 0)) for k in ("missing", "unknown_id", "duplicate")
    }
    counts["format_error"] = len(fe)
    lenient: Counter[str] = Counter({name: 0 for name in LENIENCIES})
    lenient.update(scored.lenient)
    counts["lenient"] = dict(lenient)
    listed = {k: v for k, v in matched.listed.items() if v}
    if len(fe):
        listed["format_error"] = [
            f"{index.ids[k] or f'line {k}'} ({scored.issues.get(int(k), 'no shape')})"
            for k in fe[:LISTED].tolist()
        ]
    return EvalReport(
        index.task,
        index.manifest["scheme"],
        n,
        metrics,
        counts,
        opts.strict,
        listed=listed,
        info=dict(scored.info),
    )


def write_per_sample(path: str | Path, index: ExportIndex, matched: Matched, scored: Scored) -> None:
    """One JSON line per export line: line, id, status, the per-line values, the decoded geometry."""
    keys = list(scored.per_sample)
    columns = {k: scored.per_sample[k].tolist() for k in keys}
    with open_output(path) as fh:
        for k in range(index.n):
            status = (
                "missing"
                if matched.answers[k] is None
                else "format_error"
                if scored.format_error[k]
                else "ok"
            )
            row: dict[str, Any] = {"line": k, "id": index.ids[k], "status": status}
            for key in keys:
                v = columns[key][k]
                row[key] = None if v != v else v
            if status == "format_error":
                row["issue"] = scored.issues.get(k, "no shape")
            row["decoded"] = scored.decoded_of(k)
            fh.write(orjson.dumps(row) + b"\n")
