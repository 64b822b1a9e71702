"""`gtok verify` as a library: :func:`verify` returns a :class:`Report` (see :mod:`gtok_cli.verify.run`)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from gtok_cli.errors import InputError
from gtok_cli.verify.run import (
    Failure,
    ShardResult,
    VerifyOptions,
    auto_workers,
    check_counts,
    check_shards,
    load_manifest,
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


def _truths_from_records(
    manifest: dict[str, Any], records: list[str]
) -> tuple[dict[int, list[Any]], list[Failure]]:
    from gtok_cli.export.run import SourceInfo, WorkSpec, run_batches
    from gtok_cli.export.run import auto_workers as export_workers
    from gtok_cli.export.templates import load_templates
    from gtok_cli.refine.settings import RefineSettings

    for r in records:
        if not Path(r).is_file():
            raise InputError("no such file", file=r, reason="file.missing")
    part = manifest["partition"]
    try:
        refine = None if manifest.get("refine") is None else RefineSettings.from_json(manifest["refine"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(
            f"malformed refinement settings: {exc!r}", field="refine", reason="manifest.refine"
        ) from None
    spec = WorkSpec(
        manifest["scheme"],
        manifest["task"],
        manifest["format"],
        manifest["seed"],
        manifest["shape"],
        dict(load_templates(None).by_task),
        True,
        part["num_shards"],
        tuple(part["indices"]),
        emit="meta",
        refine=refine,
    )
    sources = [SourceInfo(r) for r in records]
    truths: dict[int, list[Any]] = {p: [] for p in part["indices"]}
    for res in run_batches(spec, records, sources, export_workers(records, 0)):
        for p, items in res.out.items():
            truths[p].extend(items)
    failures = []
    want = [s["sha256"] for s in manifest["sources"]]
    got = [s.sha256 for s in sources]
    if want != got:
        failures.append(
            Failure("sources.sha256", "--against records differ from the files the manifest lists")
        )
    return truths, failures


def verify(
    target: str | Path, against: list[str] | None = None, max_error_px: float | None = None, workers: int = 0
) -> Report:
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
        truths, more = _truths_from_records(manifest, against)
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
    opts = VerifyOptions(manifest, str(folder), max_error_px, against is None)
    results: list[ShardResult] = check_shards(opts, truths, workers or auto_workers(manifest, str(folder)))
    errors: list[npt.NDArray[np.float64]] = []
    ious: list[npt.NDArray[np.float64]] = []
    worst = []
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
    report.shards = len(results)
    if manifest.get("refine") is not None:
        report.refine = _refine_summary(results)
    report.error_px = _percentiles(np.concatenate(errors) if errors else [])
    report.iou = _percentiles(np.concatenate(ious) if ious else [])
    worst.sort(key=lambda w: (-w[0], w[1], w[2]))
    report.worst = [{"error_px": e, "shard": s, "line": ln, "id": i} for e, s, ln, i in worst[:5]]
    return report
