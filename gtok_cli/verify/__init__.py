"""`gtok verify` as a library: :func:`verify` returns a :class:`Report` (see :mod:`gtok_cli.verify.run`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from gtok_cli.errors import InputError, UsageError
from gtok_cli.mask_quality import OPTION as MIN_MASK_IOU
from gtok_cli.mask_quality import SolverIoUs, check_floor
from gtok_cli.shards.read import load_manifest
from gtok_cli.verify.run import (
    Failure,
    ShardResult,
    VerifyOptions,
    auto_workers,
    check_counts,
    check_shards,
)

PERCENTILES = (0, 50, 90, 99, 100)


@dataclass
class Report:
    folder: str
    scheme: dict[str, Any]
    task: str
    fmt: str
    truth_from: str
    shards: int = 0
    lines: int = 0
    regions: int = 0
    failures: list[Failure] = field(default_factory=list)
    failure_counts: Counter[str] = field(default_factory=Counter)
    error_px: dict[str, float] = field(default_factory=dict)
    iou: dict[str, float] = field(default_factory=dict)
    worst: list[dict[str, Any]] = field(default_factory=list)
    refine: dict[str, Any] | None = None
    """Refinement exports: turn / offset / convergence counts and error (px) / mask IoU before and after."""
    mask_solver_iou: dict[str, Any] | None = None
    """Mask regions: the IoU the mask solver reached (:func:`mask_iou_summary`); None without mask regions."""

    @property
    def ok(self) -> bool:
        return not self.failure_counts

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "folder": self.folder,
            "scheme": self.scheme,
            "task": self.task,
            "format": self.fmt,
            "truth_from": self.truth_from,
            "shards": self.shards,
            "lines": self.lines,
            "regions": self.regions,
            "failure_counts": dict(sorted(self.failure_counts.items())),
            "failures": [f.to_json() for f in self.failures],
            "error_px": self.error_px,
            "iou": self.iou,
            "worst": self.worst,
            "refine": self.refine,
            "mask_solver_iou": self.mask_solver_iou,
        }

    def human(self) -> str:
        out = [
            f"verify {self.folder}: scheme {self.scheme['scheme']} {self.scheme.get('params', {})}, "
            f"task {self.task}, "
            f"format {self.fmt}, truth from {self.truth_from}",
            f"  {self.shards} shard(s), {self.lines} line(s), {self.regions} region(s)",
        ]
        if self.error_px:
            out.append("  error px   " + "  ".join(f"p{k}={v:.3f}" for k, v in self.error_px.items()))
        if self.iou:
            out.append("  box IoU    " + "  ".join(f"p{k}={v:.4f}" for k, v in self.iou.items()))
        if self.worst:
            out.append(
                "  worst: "
                + "; ".join(
                    f"{w['id']} ({w['shard']}:{w['line']}) {w['error_px']:.3f} px" for w in self.worst
                )
            )
        if self.refine is not None:
            out += _refine_lines(self.refine)
        if self.mask_solver_iou is not None:
            out.append(_mask_iou_line(self.mask_solver_iou))
        if self.ok:
            out.append("OK: every check passed")
        else:
            total = sum(self.failure_counts.values())
            out.append(
                f"FAILED: {total} problem(s): "
                + ", ".join(f"{k}={v}" for k, v in sorted(self.failure_counts.items()))
            )
            out += ["  " + f.human() for f in self.failures[:50]]
            if total > 50:
                out.append(f"  … {total - 50} more (use --json for up to {len(self.failures)})")
        return "\n".join(out)


def _refine_lines(refine: dict[str, Any]) -> list[str]:
    c = refine["counts"]
    out = [
        "  refine     "
        + f"{c.get('lines', 0)} conversation(s), {c.get('shapes', 0)} shape(s), {c.get('turns', 0)} turn(s); "
        + f"offsets: {c.get('offset_tokens', 0)} ({c.get('stay', 0)} stay, {c.get('move', 0)} move, "
        + f"{c.get('delete', 0)} DELETE); shapes deleted {c.get('shapes_deleted', 0)}, "
        + f"converged {c.get('converged', 0)}, unconverged {c.get('unconverged', 0)}"
    ]
    for key, label in (("error_px_before", "proposal error px"), ("error_px_after", "refined error px")):
        if refine.get(key):
            out.append(f"  {label:<19}" + "  ".join(f"p{k}={v:.3f}" for k, v in refine[key].items()))
    for key, label in (("mask_iou_before", "proposal mask IoU"), ("mask_iou_after", "refined mask IoU")):
        if refine.get(key):
            out.append(f"  {label:<19}" + "  ".join(f"p{k}={v:.4f}" for k, v in refine[key].items()))
    return out


def mask_iou_summary(ious: SolverIoUs, floor: float | None) -> dict[str, Any]:
    """``count`` (mask regions with a solver IoU), ``not_recorded``, ``mean``, ``percentiles``, the floor
    (``min_mask_iou``, null: none) and how many are ``below`` it (null without a floor)."""
    n = len(ious.values)
    return {
        "count": n,
        "not_recorded": ious.not_recorded,
        "mean": float(np.mean(ious.values)) if n else None,
        "percentiles": _percentiles(ious.values),
        "min_mask_iou": floor,
        "below": ious.below(floor),
    }


def _mask_iou_line(m: dict[str, Any]) -> str:
    head = "  mask solver IoU  "
    if not m["count"]:
        return head + f"not recorded ({m['not_recorded']} mask region(s))"
    text = head + f"n={m['count']}  mean={m['mean']:.4f}  "
    text += "  ".join(f"p{k}={v:.4f}" for k, v in m["percentiles"].items())
    if m["not_recorded"]:
        text += f"; not recorded for {m['not_recorded']}"
    if m["min_mask_iou"] is not None:
        text += f"; {m['below']} below {MIN_MASK_IOU} {m['min_mask_iou']}"
    return text


def _refine_summary(results: list[ShardResult]) -> dict[str, Any]:
    counts: Counter[str] = Counter()
    values: dict[str, list[float]] = {}
    for r in results:
        counts.update(r.refine_counts)
        for k, v in r.refine_values.items():
            values.setdefault(k, []).extend(v)
    out: dict[str, Any] = {"counts": dict(sorted(counts.items()))}
    for key in ("error_px_before", "error_px_after", "mask_iou_before", "mask_iou_after"):
        out[key] = _percentiles(values.get(key, []))
    return out


def _percentiles(values: list[float] | npt.NDArray[np.float64]) -> dict[str, float]:
    arr = np.asarray(values, dtype=np.float64)
    if not arr.size:
        return {}
    return {str(p): float(v) for p, v in zip(PERCENTILES, np.percentile(arr, PERCENTILES), strict=True)}


SampleMeta = Callable[[dict[str, Any], list[str]], tuple[dict[int, list[Any]], list[str]]]
"""What an export with this manifest makes of these record files: ``(meta, image file)`` per sample, per part,
and each file's sha256 (the export stage's ``sample_meta``; the CLI layer passes it in, so verify does not
import the export stage)."""


def _truths_from_records(
    manifest: dict[str, Any], records: list[str], sample_meta: SampleMeta
) -> tuple[dict[int, list[Any]], list[Failure]]:
    truths, got = sample_meta(manifest, records)
    failures = []
    want = [s["sha256"] for s in manifest["sources"]]
    if want != got:
        failures.append(
            Failure("sources.sha256", "--against records differ from the files the manifest lists")
        )
    return truths, failures


def verify(
    target: str | Path,
    against: list[str] | None = None,
    max_error_px: float | None = None,
    workers: int = 0,
    sample_meta: SampleMeta | None = None,
    min_mask_iou: float | None = None,
    allow_empty: bool = False,
) -> Report:
    """Check an export; ``against`` (record files) needs ``sample_meta`` to rebuild the truth from them.
    ``min_mask_iou``: mask regions whose solver IoU is below it (or not recorded) fail. An export of 0 lines
    fails (``export.empty``) unless ``allow_empty``: "every check passed" on nothing would mislead."""
    min_mask_iou = check_floor(min_mask_iou)
    if against and sample_meta is None:
        raise UsageError("verify against records needs the export's sample_meta")
    manifest, folder = load_manifest(target)
    if against is None and not manifest["meta"]:
        raise InputError(
            "shards were exported with --no-meta: pass --against RECORDS to give the truth",
            file=str(target),
            reason="verify.no_truth",
        )
    report = Report(
        str(target),
        manifest["scheme"],
        manifest["task"],
        manifest["format"],
        "records" if against else "meta",
    )
    failures = check_counts(manifest)
    truths = None
    if against:
        assert sample_meta is not None
        truths, more = _truths_from_records(manifest, against, sample_meta)
        failures += more
        for p, items in truths.items():
            lines = sum(s["lines"] for s in manifest["shards"] if s["part"] == p)
            if len(items) != lines:
                failures.append(
                    Failure(
                        "counts.against",
                        f"part {p}: records give {len(items)} samples, shards hold {lines} lines",
                    )
                )
    opts = VerifyOptions(manifest, str(folder), max_error_px, against is None, min_mask_iou)
    results: list[ShardResult] = check_shards(opts, truths, workers or auto_workers(manifest, str(folder)))
    errors: list[npt.NDArray[np.float64]] = []
    ious: list[npt.NDArray[np.float64]] = []
    worst = []
    mask_iou = SolverIoUs()
    for f in failures:
        report.failure_counts[f.check] += 1
        report.failures.append(f)
    for r in results:
        report.lines += r.lines
        report.regions += r.regions
        report.failure_counts.update(r.failure_counts)
        report.failures += r.failures
        errors += [np.asarray(r.errors, np.float64), *r.error_arrays]
        ious += [np.asarray(r.ious, np.float64), *r.iou_arrays]
        worst += r.worst
        mask_iou.merge(r.mask_iou)
    report.shards = len(results)
    if not report.lines and not allow_empty:
        report.failures.append(
            Failure("export.empty", "the export has 0 lines (pass --allow-empty if that is meant)")
        )
        report.failure_counts["export.empty"] += 1
    if manifest.get("refine") is not None:
        report.refine = _refine_summary(results)
    report.error_px = _percentiles(np.concatenate(errors) if errors else [])
    report.iou = _percentiles(np.concatenate(ious) if ious else [])
    if mask_iou.values or mask_iou.not_recorded:
        report.mask_solver_iou = mask_iou_summary(mask_iou, min_mask_iou)
    worst.sort(key=lambda w: (-w[0], w[1], w[2]))
    report.worst = [{"error_px": e, "shard": s, "line": ln, "id": i} for e, s, ln, i in worst[:5]]
    return report
