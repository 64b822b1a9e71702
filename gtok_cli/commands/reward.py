"""`gtok reward`: score sampled answers with GETok's rewards, one output line per sample (exit 0 / 2)."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import typer

REWARD_EPILOG = (
    "Examples:\n\n"
    "  gtok reward samples.jsonl --against shards/rec-grid --reward format,box --out rewards.jsonl\n\n"
    "  gtok reward samples.jsonl --against shards/refine-grid --reward box_refine --out r.jsonl --json\n\n"
    "  cat samples.jsonl | gtok reward - --against shards/rec-grid-mask --reward mask_iou --out r.jsonl\n\n"
    "PREDICTIONS: the file gtok eval reads; several lines may name one export line (best-of-n samples). "
    "Rewards: format, non_repetition, box, mask_iou, point, point_refine, box_refine, mask_refine "
    "(docs/rewards.md). Exit 0: written; 2: unusable input or nothing scored."
)


def reward_cmd(
    predictions: str = typer.Argument(..., help="Sampled answers, JSONL ('-': stdin)."),
    against: Path = typer.Option(..., "--against", help="The export folder (or its manifest) they answer."),
    reward: list[str] = typer.Option(
        ..., "--reward", help="Reward name(s), comma-separated or repeated: format,box (see docs/rewards.md)."
    ),
    out: Path = typer.Option(..., "--out", help="Write one JSON line per prediction with its rewards."),
    records: list[Path] | None = typer.Option(
        None, "--records", help="The truth of a --no-meta export: the records it was made from."
    ),
    strict: bool = typer.Option(
        False, "--strict", help="Read answers exactly as verify does: no repair of fenced or cut-off answers."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
    mask_backend: str = typer.Option(
        "cells", "--mask-backend", help="Predicted masks: cells (the anchors' cells) | sam (their SAM masks)."
    ),
    sam_checkpoint: Path | None = typer.Option(None, "--sam-checkpoint", help="Local SAM weights (.pth)."),
    model_type: str = typer.Option(
        "vit_h", "--model-type", help="vit_h | vit_l | vit_b (must match weights)."
    ),
    images: Path | None = typer.Option(None, "--images", help="Images root (--mask-backend sam)."),
    device: str = typer.Option("cpu", "--device", help="cpu | cuda[:i] (SAM only)."),
) -> None:
    """Score sampled answers against an export with GETok's rewards: one line per sample, for filtering."""
    import orjson

    from gtok_cli.errors import UsageError
    from gtok_cli.paths import refuse_overwrite
    from gtok_cli.rewards.offline import CandidatesFor, score_predictions
    from gtok_cli.scoring.export_index import SampleMeta

    refuse_overwrite(
        {"PREDICTIONS": predictions, "--against": against, "--records": records or []}, {"--out": out}
    )
    candidates_for: CandidatesFor | None = None
    if mask_backend == "sam":
        if sam_checkpoint is None or images is None:
            raise UsageError("--mask-backend sam needs --sam-checkpoint and --images")
        from gtok_cli.extras import require

        require("torch", "segment_anything", feature="--mask-backend sam")
        from gtok_cli.scoring.sam_masks import SamAnchorMasks

        sam = SamAnchorMasks.load(sam_checkpoint, model_type, images_root=images, device=device)
        candidates_for = sam.candidates
    elif mask_backend != "cells":
        raise UsageError(f"--mask-backend must be cells or sam, not {mask_backend!r}")
    rebuild = None
    if records:
        from gtok_cli.export.run import sample_meta  # a --no-meta export: the truth is what export makes

        rebuild = cast(SampleMeta, sample_meta)
    report = score_predictions(
        predictions,
        against,
        reward,
        out,
        strict=strict,
        candidates_for=candidates_for,
        records=[str(r) for r in records] if records else None,
        rebuild=rebuild,
    )
    if json_out:
        typer.echo(orjson.dumps(report.to_json(), option=orjson.OPT_INDENT_2).decode())
    else:
        typer.echo(report.human(), err=True)


def register(app: typer.Typer) -> None:
    """Add `gtok reward` to the app."""
    app.command("reward", epilog=REWARD_EPILOG)(reward_cmd)
