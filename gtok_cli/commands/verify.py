"""`gtok verify`: decode every spatial span of an export and compare with the truth (exit 0 / 1 / 2)."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import typer

VERIFY_EPILOG = (
    "Examples:\n\n"
    "  gtok verify shards/rec-bins\n\n"
    "  gtok verify shards/rec-bins-nometa --against refcoco.jsonl --json\n\n"
    "  gtok verify shards/rec-grid-mask --min-mask-iou 0.8\n\n"
    "Exit 0: every check passed; 1: some check failed; 2: unusable input."
)


def register(app: typer.Typer) -> None:
    """Add this module's command(s) to the app."""

    @app.command("verify", epilog=VERIFY_EPILOG)
    def verify_cmd(
        target: Path = typer.Argument(..., help="Export folder (its manifest.json) or a manifest file."),
        against: list[Path] | None = typer.Option(
            None, "--against", help="Take the truth from these record files (for --no-meta exports)."
        ),
        json_out: bool = typer.Option(False, "--json", help="Print the report as JSON."),
        max_error_px: float | None = typer.Option(
            None,
            "--max-error-px",
            help="Allowed error per coordinate in pixels (default: the scheme's bound).",
        ),
        workers: int = typer.Option(0, "--workers", help="Worker processes (0: automatic)."),
        min_mask_iou: float | None = typer.Option(
            None,
            "--min-mask-iou",
            help="Fail each mask region whose solver IoU (meta mask_tokens.iou) is below this, in [0, 1] "
            "(default: no floor, the distribution is only reported).",
        ),
        allow_empty: bool = typer.Option(
            False, "--allow-empty", help="Pass an export with no line (exit 1 without this flag)."
        ),
    ) -> None:
        """Validate shards and manifest; exit 0 when all holds, 1 when anything fails, 2 on unusable input."""
        import math

        import orjson

        from gtok_cli.errors import UsageError
        from gtok_cli.verify import SampleMeta, verify

        if max_error_px is not None and not (math.isfinite(max_error_px) and max_error_px >= 0):
            raise UsageError(f"--max-error-px must be a finite number >= 0, not {max_error_px}")

        records, rebuild = None, None
        if against:
            from gtok_cli.export.run import sample_meta  # --against: the truth is what export makes of them

            records, rebuild = [str(a) for a in against], cast(SampleMeta, sample_meta)
        report = verify(target, records, max_error_px, workers, rebuild, min_mask_iou, allow_empty)
        if json_out:
            typer.echo(orjson.dumps(report.to_json(), option=orjson.OPT_INDENT_2).decode())
        else:
            typer.echo(report.human())
        raise typer.Exit(0 if report.ok else 1)
