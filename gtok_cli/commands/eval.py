"""`gtok eval`: score a model's answers against an export (exit 0; 1 below a --min floor; 2 bad input)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import cast

import typer

EVAL_EPILOG = (
    "Examples:\n\n"
    "  gtok eval preds.jsonl --against shards/rec-qwen3\n\n"
    "  gtok eval preds.jsonl --against shards/rec-grid-mask --records refcoco.masks.jsonl --json\n\n"
    "  cat preds.jsonl | gtok eval - --against shards/rec-bins --min acc@0.5=0.8 --per-sample s.jsonl\n\n"
    'PREDICTIONS: JSONL, one {"id": ..., "text": ...} per line ("turns": [...] for multi-turn answers, '
    '{"line": N} instead of "id"). Exit 0: scored; 1: a --min floor not met; 2: unusable input.'
)


def eval_cmd(
    predictions: str = typer.Argument(..., help="Predictions JSONL ('-': stdin)."),
    against: Path = typer.Option(
        ..., "--against", help="The export folder (or its manifest) to score against."
    ),
    records: list[Path] | None = typer.Option(
        None,
        "--records",
        help="Records: the truth of a --no-meta export, real masks (RES, points), datasets and splits.",
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    per_sample: Path | None = typer.Option(
        None, "--per-sample", help="Write one JSON line per export line (id, IoU or hit, decoded geometry)."
    ),
    floors: list[str] | None = typer.Option(
        None,
        "--min",
        help="NAME=VALUE: exit 1 when metric NAME is below VALUE (repeatable), e.g. acc@0.5=0.8.",
    ),
    strict: bool = typer.Option(
        False,
        "--strict",
        help="Decode exactly as verify does: no repair of fenced, cut-off or messy answers.",
    ),
    mask_backend: str = typer.Option(
        "cells", "--mask-backend", help="Predicted masks: cells (the anchors' cells) | sam (their SAM masks)."
    ),
    sam_checkpoint: Path | None = typer.Option(None, "--sam-checkpoint", help="Local SAM weights (.pth)."),
    model_type: str = typer.Option(
        "vit_h", "--model-type", help="vit_h | vit_l | vit_b (must match weights)."
    ),
    images: Path | None = typer.Option(None, "--images", help="Images root (--mask-backend sam)."),
    select: str = typer.Option(
        "max-pred-iou",
        "--select",
        help="SAM output per point when the truth does not say: max-pred-iou | single.",
    ),
    device: str = typer.Option("cpu", "--device", help="cpu | cuda[:i] (SAM only)."),
) -> None:
    """Score model answers against an export's truth: the task's metrics, counts of what did not match."""
    import orjson

    from gtok_cli.eval import EvalOptions, evaluate, parse_floors
    from gtok_cli.paths import refuse_overwrite
    from gtok_cli.scoring.export_index import SampleMeta

    mins = parse_floors(floors)
    if per_sample is not None:
        refuse_overwrite(
            {"PREDICTIONS": predictions, "--against": against, "--records": records or []},
            {"--per-sample": per_sample},
        )
    rebuild = None
    if records:
        from gtok_cli.export.run import (
            sample_meta,
        )  # a --no-meta export: the truth is what export makes of them

        rebuild = cast(SampleMeta, sample_meta)
    options = EvalOptions(
        strict=strict,
        mask_backend=mask_backend,
        sam_checkpoint=str(sam_checkpoint) if sam_checkpoint else None,
        model_type=model_type,
        images=str(images) if images else None,
        select=select,
        device=device,
    )
    report = evaluate(
        predictions,
        against,
        records=[str(r) for r in records] if records else None,
        options=options,
        rebuild=rebuild,
        per_sample=per_sample,
    )
    parse_floors(floors, list(report.metrics))  # a floor naming no metric of this task: exit 2
    if json_out:
        typer.echo(orjson.dumps(report.to_json(), option=orjson.OPT_INDENT_2).decode())
    else:
        typer.echo(report.human())
    below = report.below(mins)
    for line in below:
        print(f"gtok eval: {line}", file=sys.stderr)
    raise typer.Exit(1 if below else 0)


def register(app: typer.Typer) -> None:
    """Add this module's command(s) to the app."""
    app.command("eval", epilog=EVAL_EPILOG)(eval_cmd)
