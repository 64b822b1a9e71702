"""`gtok show`: draw what a sample's spatial tokens say over its image, beside the ground truth (issue 7)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer


def show(
    source: str = typer.Argument(..., help="Export folder (or its manifest.json), or a records JSONL."),
    images: Path = typer.Option(..., "--images", help="Images root the samples' file names are under."),
    out: Path = typer.Option(..., "--out", "-o", help="Output picture: .png, or .jpg / .jpeg (JPEG)."),
    index: int | None = typer.Option(None, "--index", help="Draw item K (0-based over the whole input)."),
    sample_id: str | None = typer.Option(None, "--id", help="Draw the item with this id / record id."),
    sample: int | None = typer.Option(None, "--sample", help="A contact sheet of N random items."),
    seed: int = typer.Option(0, "--seed", help="Random seed for --sample."),
    grid_overlay: bool = typer.Option(
        False,
        "--grid-overlay",
        help="Draw the scheme's lattice: cell lines (grid, kosmos2), ticks on the edges (bins, loc, …).",
    ),
    records: Path | None = typer.Option(
        None, "--records", help="Records file: add the real masks to an export's ground truth."
    ),
    sam_checkpoint: Path | None = typer.Option(
        None, "--sam-checkpoint", help="Local SAM weights: draw sam-solved mask tokens as SAM's union mask."
    ),
    model_type: str = typer.Option(
        "vit_h", "--model-type", help="vit_h | vit_l | vit_b (must match weights)."
    ),
    device: str = typer.Option("cpu", "--device", help="cpu | cuda[:i] (SAM only)."),
    max_turn_lines: int = typer.Option(12, "--max-turn-lines", help="Wrap each turn to at most K lines."),
    palette: bool = typer.Option(False, "--palette", help="Write a 256-colour PNG (about 3x smaller)."),
) -> None:
    """Draw decoded regions (solid) and ground truth (dashed), labelled, with the conversation under it."""
    from gtok_cli.limits import check
    from gtok_cli.paths import refuse_overwrite, source_files
    from gtok_cli.show import ShowOptions, image_format, save_image
    from gtok_cli.show import show as render

    check("sample", sample)
    refuse_overwrite(
        {
            "SOURCE": source_files(source),
            "--images": images,
            "--records": records,
            "--sam-checkpoint": sam_checkpoint,
        },
        {"--out": out},
    )
    image_format(out, palette)  # a bad --out suffix is refused before drawing
    if sam_checkpoint is not None:
        from gtok_cli.extras import require

        require("torch", "torchvision", "segment_anything", feature="--sam-checkpoint (SAM)")
    image = render(
        ShowOptions(
            source=source,
            images=str(images),
            index=index,
            sample_id=sample_id,
            sample=sample,
            seed=seed,
            grid_overlay=grid_overlay,
            truth_records=str(records) if records else None,
            sam_checkpoint=str(sam_checkpoint) if sam_checkpoint else None,
            model_type=model_type,
            device=device,
            max_turn_lines=max_turn_lines,
        )
    )
    save_image(image, out, palette=palette)
    print(f"gtok show: wrote {out} ({image.width}x{image.height})", file=sys.stderr)


SHOW_EPILOG = (
    "Examples:\n\n"
    "  gtok show shards/rec-grid --images train2014 --index 0 --out sample.png\n\n"
    "  gtok show refcoco.masks.jsonl --images train2014 --sample 9 --seed 1 --grid-overlay --out sheet.png"
)


def register(app: typer.Typer) -> None:
    """Add this module's command(s) to the app."""
    app.command("show", epilog=SHOW_EPILOG)(show)
