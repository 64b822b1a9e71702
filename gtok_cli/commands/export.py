"""`gtok export` and `gtok merge-manifests`: records → instruction-tuning shards (docs/spec.md#shards)."""

from __future__ import annotations

from pathlib import Path

import typer

from gtok_cli.task_roles import TASKS
from gtok_cli.trainer_formats import NAMES as FORMAT_NAMES

EXPORT_EPILOG = (
    "Examples:\n\n"
    "  gtok export refcoco.jsonl --scheme bins --task rec --out shards/rec-bins\n\n"
    "  gtok export refcoco.masks.jsonl --scheme grid --task rec --shape mask --format messages "
    "--out shards/rec-grid\n\n"
    "  gtok export refcoco.jsonl --scheme grid --task refine --refine-turns 2 --out shards/refine\n\n"
    "  gtok ingest coco --instances instances_val2017.json --out - | gtok export - --scheme qwen2.5-vl "
    "--task detect --format messages --out shards/detect"
)
MERGE_EPILOG = (
    "Example (a job array of 4, then the join):\n\n"
    "  gtok export coco.jsonl --scheme loc --task detect --num-shards 4 --shard-index $I --out shards/det\n\n"
    "  gtok merge-manifests shards/det"
)


def register(app: typer.Typer) -> None:
    """Add this module's command(s) to the app."""

    @app.command("export", epilog=EXPORT_EPILOG)
    def export_cmd(
        records: list[Path] = typer.Argument(
            ..., help="Record JSONL file(s) (.gz read transparently), or - for stdin."
        ),
        scheme: str = typer.Option(
            ...,
            "--scheme",
            "-s",
            help="Token scheme: bins, loc, kosmos2, paligemma, qwen-vl, qwen2-vl, qwen2.5-vl, qwen3-vl, "
            "shikra, ferret, grid, internvl, deepseek-vl2, gemini, molmo, cogvlm, minigpt-v2.",
        ),
        task: str = typer.Option(..., "--task", "-t", help=" | ".join(TASKS)),
        fmt: str = typer.Option("llava", "--format", "-f", help=" | ".join(FORMAT_NAMES)),
        out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
        shard_size: int = typer.Option(100_000, "--shard-size", help="Lines per shard."),
        seed: int = typer.Option(
            0, "--seed", help="Chooses the phrasing of each sample (with its record id)."
        ),
        num_shards: int = typer.Option(1, "--num-shards", help="Split the work into N parts by image."),
        shard_index: int | None = typer.Option(
            None,
            "--shard-index",
            help="Process only part I of --num-shards (job arrays); join with merge-manifests.",
        ),
        templates: Path | None = typer.Option(
            None, "--templates", help="JSON file replacing task phrasings."
        ),
        prefix: str = typer.Option("gtok", "--prefix", help="Shard file-name prefix."),
        gzip_out: bool = typer.Option(False, "--gzip", help="Write .jsonl.gz shards."),
        no_meta: bool = typer.Option(
            False, "--no-meta", help="Leave out the meta object (verify --against)."
        ),
        shape: str = typer.Option(
            "box",
            "--shape",
            help="box | mask (grid scheme, regions with mask_tokens) | auto (mask where possible) | "
            "polyline (grid scheme, regions with a polyline) | polygon (loc scheme, regions with a COCO "
            "polygon mask) | point (--task refine, count).",
        ),
        refine: bool = typer.Option(
            False, "--refine", help="Grid scheme: answer with a simulated proposal, then refinement turns."
        ),
        refine_turns: int | None = typer.Option(
            None, "--refine-turns", help="Refinement turns K, each refining the previous answer [1]."
        ),
        refine_steps: str | None = typer.Option(
            None,
            "--refine-steps",
            help="Proposal error: P(an axis is off by k cells), k = 0, 1, …, summing to 1 "
            "[0.5,0.35,0.1,0.025,0.025].",
        ),
        refine_extra_rate: float | None = typer.Option(
            None,
            "--refine-extra-rate",
            help="Masks: expected extra proposal anchors per solver anchor [0.5].",
        ),
        delete_radius: float | None = typer.Option(
            None,
            "--delete-radius",
            help="Boxes/points/polylines: DELETE an anchor farther than this many cells (Chebyshev; inf: "
            "never) [3].",
        ),
        erode_steps: float | None = typer.Option(
            None, "--erode-steps", help="Masks: erosion radius (offset steps) of the Inside class [1]."
        ),
        dilate_steps: float | None = typer.Option(
            None, "--dilate-steps", help="Masks: dilation radius (offset steps) beyond which Far [1]."
        ),
        class_ratios: str | None = typer.Option(
            None,
            "--class-ratios",
            help="Masks: sampling ratios inside,ring,far,hard of extra proposal anchors [0.4,0.4,0.1,0.1].",
        ),
        workers: int = typer.Option(0, "--workers", help="Worker processes (0: automatic)."),
        allow_empty: bool = typer.Option(
            False,
            "--allow-empty",
            help="Write an export with no line (every record skipped) instead of failing with exit 2.",
        ),
        box_as: str | None = typer.Option(
            None, "--box-as", help="center: write each box as its centre point (points-only schemes: molmo)."
        ),
        negatives: float | None = typer.Option(
            None,
            "--negatives",
            help="--task count: zero-count questions (categories verified absent) per positive question [0].",
        ),
        max_count: int | None = typer.Option(
            None, "--max-count", help="--task count: skip a category with more instances than this."
        ),
        phrases: str | None = typer.Option(
            None,
            "--phrases",
            help="--task relation: referring records (gtok ingest refcoco …) naming objects by expression.",
        ),
        bins: int | None = typer.Option(None, "--bins", help="Scheme parameter: number of bins."),
        grid: int | None = typer.Option(None, "--grid", help="Scheme parameter: grid size n."),
        offset_step: float | None = typer.Option(None, "--offset-step", help="Scheme parameter (grid)."),
        min_pixels: int | None = typer.Option(None, "--min-pixels", help="Scheme parameter (qwen2.5-vl)."),
        max_pixels: int | None = typer.Option(None, "--max-pixels", help="Scheme parameter (qwen2.5-vl)."),
        trainer: str | None = typer.Option(
            None,
            "--trainer",
            help="Who feeds the images: hf (default) | llamafactory | swift; qwen2.5-vl writes pixels of "
            "the image that trainer feeds (pinned in the manifest); the other schemes are immune.",
        ),
        image_max_pixels: int | None = typer.Option(
            None,
            "--image-max-pixels",
            help="The trainer's image budget [llamafactory: 589824 = 768*768; swift: none].",
        ),
    ) -> None:
        """Render records into conversation shards with spatial tokens, plus a manifest."""
        from gtok_cli.codecs import get_codec
        from gtok_cli.export.options import ExportOptions, refine_settings
        from gtok_cli.export.run import export
        from gtok_cli.limits import check_all
        from gtok_cli.paths import files_written_in, refuse_overwrite

        check_all(
            {
                "shard_size": shard_size,
                "num_shards": num_shards,
                "workers": workers,
                "refine_turns": refine_turns,
            }
        )
        # the folder itself, and every file in it this export may replace (shards, markers, temps, manifests)
        written = files_written_in(
            out, (f"{prefix}-*", f".{prefix}-*", "manifest*.json", "dataset_info.json")
        )
        refuse_overwrite({"RECORDS": records, "--templates": templates}, {"--out": [out, *written]})
        params = {
            "bins": bins,
            "grid": grid,
            "offset_step": offset_step,
            "min_pixels": min_pixels,
            "max_pixels": max_pixels,
            "trainer": trainer,
            "image_max_pixels": image_max_pixels,
        }
        codec = get_codec(scheme, **{k: v for k, v in params.items() if v is not None})
        if trainer not in (None, "hf") and not codec.fed_image:
            typer.echo(
                f"gtok export: scheme {scheme!r} writes fractions of the image: --trainer {trainer} "
                "does not change its text (immune to the trainer's resize)",
                err=True,
            )
        settings = refine_settings(
            codec,
            task,
            refine,
            turns=refine_turns,
            steps=refine_steps,
            extra_rate=refine_extra_rate,
            delete_radius=delete_radius,
            erode_steps=erode_steps,
            dilate_steps=dilate_steps,
            class_ratios=class_ratios,
        )
        opts = ExportOptions(
            records=tuple(str(r) for r in records),
            scheme=codec.describe(),
            task=task,
            fmt=fmt,
            out_dir=str(out),
            shard_size=shard_size,
            seed=seed,
            num_shards=num_shards,
            shard_index=shard_index,
            templates_file=str(templates) if templates is not None else None,
            prefix=prefix,
            compress=gzip_out,
            meta=not no_meta,
            shape=shape,  # type: ignore[arg-type]  # checked in check_options
            workers=workers,
            refine=settings,
            allow_empty=allow_empty,
            box_as=box_as,
            negatives=negatives,
            max_count=max_count,
            phrases=phrases,
        )
        manifest = export(opts)
        c = manifest["counts"]
        skipped = ", ".join(f"{k}={v}" for k, v in c["skipped"].items()) or "none"
        typer.echo(
            f"read {c['read']}, written {c['written']} in {len(manifest['shards'])} shard(s), "
            f"skipped {skipped}",
            err=True,
        )

    @app.command("merge-manifests", epilog=MERGE_EPILOG)
    def merge_cmd(
        out: Path = typer.Argument(..., help="Folder holding the parts' shards and manifest-part-*.json."),
    ) -> None:
        """Join job-array part manifests into the manifest.json one run would write."""
        from gtok_cli.export.manifest import merge_dir
        from gtok_cli.paths import files_written_in, refuse_overwrite

        refuse_overwrite(
            {"part manifest": files_written_in(out, ["manifest-part-*-of-*.json"])},
            {"OUT": [out / "manifest.json", out / "dataset_info.json"]},
        )
        typer.echo(str(merge_dir(out)))
