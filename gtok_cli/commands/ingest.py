"""`gtok ingest SOURCE …`: source files → canonical records (JSONL), with a reconciling summary.

:func:`run_and_report` is the part every source command shares (the RefCOCO / Flickr30k commands in
``ingest_refs`` call it too): write the records, handle rejects, print the summary.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Optional

import typer

from gtok_cli.errors import UsageError
from gtok_cli.ingest.common import IngestItem, run_ingest
from gtok_cli.jsonio import STDIO, dumps

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
    "  gtok ingest coco --instances instances_val2017.json --out - | gtok masks - --out coco.masks.jsonl"
)

ingest_app = typer.Typer(
    name="ingest",
    help="Read a source dataset and write canonical records (JSONL, one schema).",
    no_args_is_help=True,
    epilog=INGEST_EPILOG,
)

ON_ERROR_HELP = "fail: stop at the first bad item (exit 2); skip: write bad items to the rejects file."
REJECTS_HELP = "Rejects file for --on-error skip (default: OUT.rejects.jsonl)."


def rejects_path(out: str, on_error: str, rejects: str | None) -> str | None:
    """Where rejected items go: ``--rejects``, else ``OUT.rejects.jsonl`` under skip (never dropped)."""
    if on_error not in ("fail", "skip"):
        raise UsageError(f"--on-error must be fail or skip, not {on_error!r}")
    if on_error == "fail":
        return rejects
    if rejects is None:
        if out == STDIO:
            raise UsageError(
                "--on-error skip with --out - needs --rejects FILE (rejected items are never dropped)"
            )
        rejects = out + ".rejects.jsonl"
    if rejects != STDIO and out != STDIO and Path(rejects).resolve() == Path(out).resolve():
        raise UsageError("--rejects must differ from --out")
    return rejects


def run_and_report(
    items: Iterable[IngestItem], out: str, on_error: str, rejects: str | None, json_summary: bool
) -> None:
    """Write ``items`` to ``out`` and print the summary.

    The summary goes to stderr as text, or as one JSON object with ``json_summary`` (to stdout, or to stderr
    when the records themselves go to stdout). Bad input under ``fail`` raises InputError (exit 2).
    """
    rejects = rejects_path(out, on_error, rejects)
    stats = run_ingest(items, out, on_error="skip" if on_error == "skip" else "fail", rejects=rejects)
    if on_error == "skip":
        stats.extra["rejects_file"] = rejects
    if json_summary:
        stream = sys.stderr if out == STDIO else sys.stdout
        stream.write(dumps(stats.to_json()).decode() + "\n")
        stream.flush()
    else:
        text = f"gtok ingest: {stats.human()}"
        if stats.rejected:
            text += f"\n  rejects written to {rejects}"
        typer.echo(text, err=True)


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
    out: str = typer.Option(..., "--out", "-o", help="Output JSONL (.gz ok), or - for stdout."),
    on_error: str = typer.Option("fail", "--on-error", help=ON_ERROR_HELP),
    rejects: Optional[str] = typer.Option(None, "--rejects", help=REJECTS_HELP),  # noqa: UP045
    json_summary: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """COCO instances (+ captions): per image an `instances` record (+ `category` records with --tasks)."""
    from gtok_cli.ingest.coco import TASKS, iter_coco

    chosen = tuple(dict.fromkeys(t.strip() for t in tasks.split(",") if t.strip()))
    if not chosen or set(chosen) - set(TASKS):
        raise UsageError(f"--tasks must be a comma-separated subset of {', '.join(TASKS)}, not {tasks!r}")
    items = iter_coco(
        instances,
        captions_path=captions,
        images_dir=images,
        include_crowd=include_crowd,
        tasks=chosen,
        split=split,
        as_bytes=True,
    )
    run_and_report(items, out, on_error, rejects, json_summary)


def register(app: typer.Typer) -> None:
    """Add the `ingest` group (coco here; refcoco and flickr30k from ``ingest_refs``)."""
    from gtok_cli.commands import ingest_refs

    ingest_refs.register(ingest_app)
    app.add_typer(ingest_app, name="ingest")
