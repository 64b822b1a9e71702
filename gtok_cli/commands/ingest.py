"""`gtok ingest SOURCE …`: source files → canonical records (JSONL), with a reconciling summary.

The `ingest` group and its coco command; refcoco and flickr30k are in ``ingest_refs``. What the commands
share (option help, rejects, :func:`~gtok_cli.commands.ingest_run.run_and_report`) is in ``ingest_run``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from gtok_cli.commands import ingest_grounding, ingest_refs, ingest_sources
from gtok_cli.commands.ingest_run import (
    ALLOW_EMPTY_OPTION,
    JSON_OPTION,
    ON_ERROR_OPTION,
    OUT_OPTION,
    REJECTS_OPTION,
    rejects_path,
    run_and_report,
)
from gtok_cli.errors import UsageError
from gtok_cli.ingest.common import IngestStats

INGEST_EPILOG = (
    "Examples:\n\n"
    "  gtok ingest coco --instances instances_val2017.json --images val2017 --out coco.jsonl\n\n"
    "  gtok ingest refcoco --dataset refcoco --refs 'refs(unc).p' --instances instances.json "
    "--out refcoco.jsonl\n\n"
    "  gtok ingest flickr30k --annotations Annotations --sentences Sentences --out f30k.jsonl"
)
COCO_EPILOG = (
    "Examples:\n\n"
    "  gtok ingest coco --instances annotations/instances_val2017.json --captions "
    "annotations/captions_val2017.json --images val2017 --out coco.jsonl\n\n"
    "  gtok ingest coco --instances instances_train2017.json --tasks instances,category "
    "--on-error skip --out coco.jsonl.gz\n\n"
    "  gtok ingest coco --instances instances_val2017.json --out - | gtok masks - --out coco.masks.jsonl\n\n"
    "  gtok ingest coco --flavor lvis --instances lvis_v1_val.json --images coco2017 --out lvis.jsonl\n\n"
    "  gtok ingest coco --flavor objects365 --instances zhiyuan_objv2_val.json --images val --out o365.jsonl"
)

ingest_app = typer.Typer(
    name="ingest",
    help="Read a source dataset and write canonical records (JSONL, one schema).",
    no_args_is_help=True,
    epilog=INGEST_EPILOG,
)


@ingest_app.command("coco", epilog=COCO_EPILOG)
def coco(
    instances: Path = typer.Option(..., "--instances", help="COCO instances_*.json.", dir_okay=False),
    captions: Optional[Path] = typer.Option(  # noqa: UP045 - typer reads the annotation at runtime
        None, "--captions", help="COCO captions_*.json (attached to instances records).", dir_okay=False
    ),
    images: Optional[Path] = typer.Option(  # noqa: UP045
        None, "--images", help="Image folder: check each image's real size (EXIF applied).", file_okay=False
    ),
    split: Optional[str] = typer.Option(  # noqa: UP045
        None, "--split", help="Split name (default: from the file name, e.g. val2017)."
    ),
    include_crowd: bool = typer.Option(
        False,
        "--include-crowd",
        help="Keep iscrowd regions (marked iscrowd: true) instead of excluding them.",
    ),
    tasks: str = typer.Option(
        "instances",
        "--tasks",
        help="Record kinds, comma-separated: instances (one per image), category (one per image and "
        "category present; repeats every mask, so opt-in).",
    ),
    flavor: str = typer.Option(
        "coco",
        "--flavor",
        help="coco; lvis (LVIS v1: file from coco_url, no iscrowd, exhaustiveness lists kept); objects365 "
        "(Objects365 v2: patch folders, boxes only).",
    ),
    out: str = OUT_OPTION,
    on_error: str = ON_ERROR_OPTION,
    rejects: Optional[str] = REJECTS_OPTION,  # noqa: UP045
    json_summary: bool = JSON_OPTION,
    allow_empty: bool = ALLOW_EMPTY_OPTION,
) -> None:
    """COCO instances (+ captions): per image an `instances` record (+ `category` records with --tasks)."""
    from gtok_cli.ingest.coco import TASKS, iter_coco
    from gtok_cli.ingest.coco_flavors import FLAVORS
    from gtok_cli.paths import refuse_overwrite

    refuse_overwrite(
        {"--instances": instances, "--captions": captions, "--images": images},
        {"--out": out, "--rejects": rejects_path(out, on_error, rejects)},
    )
    chosen = tuple(dict.fromkeys(t.strip() for t in tasks.split(",") if t.strip()))
    if not chosen or set(chosen) - set(TASKS):
        raise UsageError(f"--tasks must be a comma-separated subset of {', '.join(TASKS)}, not {tasks!r}")
    if flavor not in FLAVORS:
        raise UsageError(f"--flavor must be one of {', '.join(FLAVORS)}, not {flavor!r}")
    items = iter_coco(
        instances,
        captions_path=captions,
        images_dir=images,
        include_crowd=include_crowd,
        tasks=chosen,
        split=split,
        as_bytes=True,
        flavor=flavor,
    )
    run_and_report(
        items, out, on_error, rejects, json_summary, what=str(instances), allow_empty=allow_empty,
        empty_hint=_coco_hint,
    )  # fmt: skip


def _coco_hint(stats: IngestStats) -> str:
    images = stats.units.get("images")
    if images is None or not images.read:
        return "the file has no images"
    return ""


def register(app: typer.Typer) -> None:
    """Add the `ingest` group (coco here; refcoco and flickr30k from ``ingest_refs``)."""
    ingest_refs.register(ingest_app)
    ingest_grounding.register(ingest_app)  # mdetr, refcoco-hf, grit
    ingest_sources.register(ingest_app)
    app.add_typer(ingest_app, name="ingest")
