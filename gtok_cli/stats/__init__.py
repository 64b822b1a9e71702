"""`gtok stats` as a library: ``stats(path)`` → a JSON-ready dict; ``human(report)``; ``write_plots``.

Definitions (spatial tokens, COCO box sizes) live in :mod:`.measure`; the walk over an export folder or a
records file in :mod:`.collect`; PNG charts in :mod:`.plots`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gtok_cli.stats import relation_balance
from gtok_cli.stats.collect import Tally, collect
from gtok_cli.stats.measure import PAPER_TOKENS_PER_MASK_32, box_size
from gtok_cli.trainer_images import TrainerImage


def stats(
    path: str | Path, min_mask_iou: float | None = None, feed: TrainerImage | None = None
) -> dict[str, Any]:
    return collect(path, min_mask_iou, feed).to_json()


def _dist(name: str, s: dict[str, Any], unit: str = "", digits: int = 2) -> str:
    if not s.get("count"):
        return f"  {name:<20} -"
    keys = ("mean", "min", "p50", "p90", "p99", "max")
    return f"  {name:<20} n={s['count']}  " + "  ".join(f"{k}={s[k]:.{digits}f}{unit}" for k in keys)


def _top(counts: dict[str, int], limit: int = 12) -> str:
    items = list(counts.items())
    text = ", ".join(f"{k}={v}" for k, v in items[:limit])
    return text + (f", … ({len(items) - limit} more)" if len(items) > limit else "") if items else "-"


def human(r: dict[str, Any]) -> str:
    out = [f"stats {r['input']} ({r['kind']})"]
    if r["kind"] == "export":
        mc = r["manifest_counts"]
        out.append(
            f"  scheme {r['scheme']['scheme']} {r['scheme'].get('params', {})}, task {r['task']}, "
            f"format {r['format']}; manifest: read {mc['read']}, written {mc['written']}"
        )
    out.append(f"  samples {r['samples']}, regions {r['regions']}")
    for key in ("by_dataset", "by_split", "by_task", "by_kind", "by_category"):
        if key in r:
            out.append(f"  {key.replace('_', ' '):<12} {_top(r[key])}")
    tr = r["trainer_resize"]
    budget = "no resize" if tr["image_max_pixels"] is None else f"image_max_pixels {tr['image_max_pixels']}"
    line = f"  trainer resize {tr['trainer']} ({budget}): {tr['shrunk']} of {tr['images']} images shrunk"
    out.append(line + (f"; {tr['note']}" if tr["note"] else ""))
    b = r["box_sizes"]
    out.append(f"  box sizes    small={b['small']}  medium={b['medium']}  large={b['large']}  ({b['rule']})")
    if r["kind"] == "export":
        out.append(f"  spatial tokens: {r['tokens_definition']}")
        out.append(_dist("per sample", r["tokens"]["per_sample"]))
        out.append(_dist("per region", r["tokens"]["per_region"]))
        if r.get("count_histogram"):
            hist = r["count_histogram"]
            out.append(f"  count histogram (n: lines) {', '.join(f'{k}: {v}' for k, v in hist.items())}")
    mt = r["mask_tokens"]
    if mt["tokens_per_mask"].get("count"):
        out.append(
            _dist("tokens per mask", mt["tokens_per_mask"])
            + f"   (GETok paper: {mt['paper_tokens_per_mask_32x32_sam']} at 32x32 with SAM;"
            + f" grids {mt['grids']})"
        )
    if mt["solver_iou"].get("count"):
        line = _dist("mask solver IoU", mt["solver_iou"], digits=4)
        if mt["solver_iou_not_recorded"]:
            line += f"   (not recorded for {mt['solver_iou_not_recorded']})"
        if mt["min_mask_iou"] is not None:
            line += f"   {mt['below_min_mask_iou']} below --min-mask-iou {mt['min_mask_iou']}"
        out.append(line)
    elif mt["solver_iou_not_recorded"]:
        out.append(f"  {'mask solver IoU':<20} not recorded ({mt['solver_iou_not_recorded']} mask region(s))")
    if r["kind"] == "export":
        rt = r["round_trip"]
        out.append(_dist("round-trip error", rt["error_px"], " px", 3))
        out.append(_dist("round-trip box IoU", rt["iou"], digits=4))
        if rt["problems"]:
            out.append(f"  problems     {_top(rt['problems'])}")
        if r.get("relations"):
            out += relation_balance.human(r["relations"])
    return "\n".join(out)


def write_plots(t: Tally, folder: str | Path) -> list[Path]:
    """PNG charts of ``collect(path)``'s non-empty distributions and box sizes; returns the files."""
    from gtok_cli.stats import plots

    d = Path(folder)
    d.mkdir(parents=True, exist_ok=True)
    written = []
    hists = [
        ("tokens_per_sample", t.tokens_per_sample, "spatial tokens per sample", "tokens", None),
        ("tokens_per_region", t.tokens_per_region, "spatial tokens per region", "tokens", None),
        ("tokens_per_mask", t.tokens_per_mask, "grid tokens per mask", "tokens", PAPER_TOKENS_PER_MASK_32),
        ("mask_solver_iou", t.mask_iou, "mask tokens: IoU the solver reached", "IoU", None),
        ("round_trip_error_px", t.error_px, "round-trip error (decoded vs truth)", "pixels", None),
        ("round_trip_iou", t.iou, "round-trip box IoU (decoded vs truth)", "IoU", None),
    ]
    for name, values, title, xlabel, mark in hists:
        if values:
            path = d / f"{name}.png"
            plots.histogram(values, title, xlabel, path, mark=mark)
            written.append(path)
    if t.count_histogram:
        path = d / "count_histogram.png"
        hist = {str(k): v for k, v in sorted(t.count_histogram.items())}
        plots.bars(hist, "count answers (lines per n)", path)
        written.append(path)
    if t.regions:
        path = d / "box_sizes.png"
        plots.bars({k: t.box_sizes.get(k, 0) for k in ("small", "medium", "large")}, "box sizes (COCO)", path)
        written.append(path)
    return written


__all__ = ["Tally", "box_size", "collect", "human", "stats", "write_plots"]
