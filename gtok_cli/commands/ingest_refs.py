"""`gtok ingest refcoco` and `gtok ingest flickr30k`: thin wrappers over the library readers.

The readers live in :mod:`gtok_cli.ingest.refcoco` and :mod:`gtok_cli.ingest.flickr30k`; writing, rejects
and the reconciling summary are the shared :func:`~gtok_cli.commands.ingest_run.run_and_report`.
"""

from __future__ import annotations

import typer

from gtok_cli.commands.ingest_run import (
    ALLOW_EMPTY_OPTION,
    JSON_OPTION,
    ON_ERROR_OPTION,
    OUT_OPTION,
    REJECTS_OPTION,
    rejects_path,
    run_and_report,
)
from gtok_cli.ingest.common import IngestStats

REFCOCO_EPILOG = (
    "Examples:\n\n"
    "  gtok ingest refcoco --dataset refcoco --refs 'refcoco/refs(unc).p' --instances refcoco/instances.json "
    "--images train2014 --out refcoco.jsonl\n\n"
    "  gtok ingest refcoco --dataset refcocog --refs 'refcocog/refs(umd).p' "
    "--instances refcocog/instances.json --split val --exclusions leaked_ids.txt --out refcocog_val.jsonl"
)
FLICKR30K_EPILOG = (
    "Examples:\n\n"
    "  gtok ingest flickr30k --annotations Annotations --sentences Sentences --split-file val.txt "
    "--images flickr30k-images --out f30k_val.jsonl\n\n"
    "  gtok ingest flickr30k --annotations Annotations --sentences Sentences --boxes merged "
    "--on-error skip --out f30k.jsonl.gz"
)


def register(ingest_app: typer.Typer) -> None:
    """Add the refcoco and flickr30k subcommands to the `ingest` group."""
    ingest_app.command("refcoco", epilog=REFCOCO_EPILOG)(refcoco)
    ingest_app.command("flickr30k", epilog=FLICKR30K_EPILOG)(flickr30k)


def refcoco(
    dataset: str = typer.Option(..., "--dataset", help="refcoco, refcoco+ or refcocog."),
    refs: str = typer.Option(
        ..., "--refs", help='The refer pickle, e.g. "refs(unc).p" (splitBy from its name).'
    ),
    instances: str = typer.Option(..., "--instances", help="The instances.json beside the refs file."),
    split: str | None = typer.Option(
        None, "--split", help="Keep one split, as refer.py selects: train, val, test, testA, testB."
    ),
    split_by: str | None = typer.Option(
        None, "--split-by", help="unc, google or umd (default: read from refs(<splitBy>).p)."
    ),
    images: str | None = typer.Option(
        None, "--images", help="Image folder: each image must exist with the annotated size."
    ),
    exclusions: str | None = typer.Option(
        None,
        "--exclusions",
        help="Write the COCO image ids of every non-train ref (one id per line, ascending) to this file.",
    ),
    out: str = OUT_OPTION,
    on_error: str = ON_ERROR_OPTION,
    rejects: str | None = REJECTS_OPTION,
    json_summary: bool = JSON_OPTION,
    allow_empty: bool = ALLOW_EMPTY_OPTION,
) -> None:
    """RefCOCO / RefCOCO+ / RefCOCOg (lichengunc/refer format) → one referring record per sentence."""
    from gtok_cli.ingest.refcoco import exclusions as excluded_ids
    from gtok_cli.ingest.refcoco import format_exclusions, iter_refcoco, load_refs, splits_present
    from gtok_cli.jsonio import atomic_path
    from gtok_cli.paths import refuse_overwrite

    # usage errors before any file is written
    refuse_overwrite(
        {"--refs": refs, "--instances": instances, "--images": images},
        {"--out": out, "--rejects": rejects_path(out, on_error, rejects), "--exclusions": exclusions},
    )
    refs_list = load_refs(refs)
    if exclusions is not None:
        # written first: the leakage list is valid whatever the per-sentence outcome
        with atomic_path(exclusions) as tmp:
            tmp.write_bytes(format_exclusions(excluded_ids(refs_list)))
    items = iter_refcoco(
        dataset, refs, instances, split=split, images_dir=images, split_by=split_by, refs=refs_list
    )

    def hint(stats: IngestStats) -> str:
        if split is None or ("refs" in stats.units and stats.units["refs"].read):
            return ""
        present = splits_present(refs_list)
        return f"--split {split}: no refs with that split; splits present: {', '.join(present) or 'none'}"

    run_and_report(
        items, out, on_error, rejects, json_summary, what=refs, allow_empty=allow_empty, empty_hint=hint
    )


def flickr30k(
    annotations: str = typer.Option(..., "--annotations", help="The Annotations/ folder (<id>.xml)."),
    sentences: str = typer.Option(..., "--sentences", help="The Sentences/ folder (<id>.txt)."),
    split_file: str | None = typer.Option(
        None, "--split-file", help="Keep the image ids listed in this file (train.txt / val.txt / test.txt)."
    ),
    boxes: str = typer.Option(
        "separate", "--boxes", help="separate: one region per box; merged: one union box per phrase."
    ),
    images: str | None = typer.Option(
        None, "--images", help="Image folder: each image must exist with the annotated size."
    ),
    out: str = OUT_OPTION,
    on_error: str = ON_ERROR_OPTION,
    rejects: str | None = REJECTS_OPTION,
    json_summary: bool = JSON_OPTION,
    allow_empty: bool = ALLOW_EMPTY_OPTION,
) -> None:
    """Flickr30k Entities (Sentences + Annotations) → one grounded_caption record per caption."""
    from gtok_cli.errors import UsageError
    from gtok_cli.ingest.flickr30k import iter_flickr30k
    from gtok_cli.paths import refuse_overwrite

    refuse_overwrite(
        {
            "--annotations": annotations,
            "--sentences": sentences,
            "--split-file": split_file,
            "--images": images,
        },
        {"--out": out, "--rejects": rejects_path(out, on_error, rejects)},
    )
    if boxes not in ("separate", "merged"):
        raise UsageError(f"--boxes must be separate or merged, not {boxes!r}")
    items = iter_flickr30k(
        annotations,
        sentences,
        split_file=split_file,
        boxes="merged" if boxes == "merged" else "separate",
        images_dir=images,
    )

    def hint(stats: IngestStats) -> str:
        if stats.units["images"].read:
            return ""
        listed = f" listed in {split_file}" if split_file is not None else ""
        return f"no <id>.txt files in {sentences}{listed}"

    run_and_report(
        items, out, on_error, rejects, json_summary, what=sentences, allow_empty=allow_empty, empty_hint=hint
    )
