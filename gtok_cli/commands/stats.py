"""`gtok stats`: counts and distributions of an export folder or a records file (issue 7)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer


def stats(
    source: str = typer.Argument(..., help="Export folder (or its manifest.json), or a records JSONL."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of the human summary."),
    plots: Path | None = typer.Option(None, "--plots", help="Write PNG histograms into this folder."),
    min_mask_iou: float | None = typer.Option(
        None, "--min-mask-iou", help="Count the masks whose solver IoU is below this, in [0, 1]."
    ),
    trainer: str | None = typer.Option(
        None,
        "--trainer",
        help="Count the images this trainer's budget shrinks: llamafactory | swift | hf [the export's pinned "
        "trainer, else llamafactory].",
    ),
    image_max_pixels: int | None = typer.Option(
        None, "--image-max-pixels", help="The trainer's image budget [its default]."
    ),
) -> None:
    """Counts by dataset, split, task, category; spatial tokens; round-trip error and IoU; box sizes."""
    from gtok_cli.jsonio import dumps
    from gtok_cli.paths import files_written_in, refuse_overwrite, source_files
    from gtok_cli.stats import collect, human, write_plots

    if plots is not None:
        refuse_overwrite(
            {"SOURCE": source_files(source)}, {"--plots": [plots, *files_written_in(plots, ["*.png"])]}
        )
    from gtok_cli.trainer_images import trainer_image

    feed = trainer_image(trainer, image_max_pixels) if trainer or image_max_pixels else None
    tally = collect(source, min_mask_iou, feed)
    report = tally.to_json()
    if as_json:
        sys.stdout.buffer.write(dumps(report) + b"\n")
    else:
        print(human(report))
    if plots is not None:
        files = write_plots(tally, plots)
        print(f"gtok stats: wrote {len(files)} plot(s) to {plots}", file=sys.stderr)


STATS_EPILOG = "Examples:\n\n  gtok stats shards/rec-grid\n\n  gtok stats coco.jsonl --json --plots plots/"


def register(app: typer.Typer) -> None:
    """Add this module's command(s) to the app."""
    app.command("stats", epilog=STATS_EPILOG)(stats)
