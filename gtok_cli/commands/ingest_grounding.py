"""`gtok ingest mdetr`, `gtok ingest refcoco-hf`, `gtok ingest grit`: thin wrappers over the library readers.

The readers are :mod:`gtok_cli.ingest.mdetr`, :mod:`gtok_cli.ingest.refcoco_hf` and
:mod:`gtok_cli.ingest.grit`; writing, rejects and the reconciling summary are the shared
:func:`~gtok_cli.commands.ingest_run.run_and_report`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
from gtok_cli.errors import InputError, UsageError
from gtok_cli.ingest.common import IngestStats

MDETR_EPILOG = (
    "Examples:\n\n"
    "  gtok ingest mdetr --annotations mdetr_annotations/finetune_refcoco_testA.json --images train2014 "
    "--out refcoco_testA.jsonl\n\n"
    "  gtok ingest mdetr --annotations mdetr_annotations/final_flickr_separateGT_train.json "
    "--on-error skip --out flickr_mdetr.jsonl.gz"
)
REFCOCO_HF_EPILOG = (
    "Examples:\n\n"
    "  gtok ingest refcoco-hf --layout lmms-lab --dataset refcoco --parquet RefCOCO/data "
    "--extract-images refcoco_images --out refcoco_eval.jsonl\n\n"
    "  gtok ingest refcoco-hf --layout jxu124 --dataset refcocog --parquet refcocog/data "
    "--images train2014 --out refcocog_train.jsonl"
)
GRIT_EPILOG = (
    "Examples:\n\n"
    "  gtok ingest grit --parquet grit-20m/coyo_0_snappy.parquet --min-conf 0.65 --out grit0.jsonl.gz\n\n"
    "  gtok ingest grit --parquet grit-20m --spans both --on-error skip --out grit.jsonl.gz"
)
PARQUET_HELP = "A parquet file, or a folder of them (*.parquet, sorted); repeat for more."
EXTRACT_HELP = "Write the images embedded in the parquet rows to this folder, under each row's file name."


def register(ingest_app: typer.Typer) -> None:
    """Add the mdetr, refcoco-hf and grit subcommands to the `ingest` group."""
    ingest_app.command("mdetr", epilog=MDETR_EPILOG)(mdetr)
    ingest_app.command("refcoco-hf", epilog=REFCOCO_HF_EPILOG)(refcoco_hf)
    ingest_app.command("grit", epilog=GRIT_EPILOG)(grit)


def parquet_files(values: list[str]) -> list[str]:
    """Each ``--parquet`` value as files: a folder gives its ``*.parquet`` files in name order."""
    files: list[str] = []
    for value in values:
        path = Path(value)
        if path.is_dir():
            found = sorted(str(p) for p in path.glob("*.parquet"))
            if not found:
                raise InputError("folder holds no *.parquet file", file=value, reason="file.missing")
            files += found
        else:
            files.append(value)
    if len(set(files)) < len(files):
        raise UsageError("--parquet names a file twice")
    return files


def mdetr(
    annotations: str = typer.Option(
        ...,
        "--annotations",
        help="An MDETR annotation JSON (finetune_refcoco*_*.json, final_flickr_*GT_*.json, "
        "final_mixed_train*.json; .gz ok).",
    ),
    images: str | None = typer.Option(
        None, "--images", help="Image folder: each image must exist with the annotated size."
    ),
    split: str | None = typer.Option(None, "--split", help="Split name (default: from the file name)."),
    out: str = OUT_OPTION,
    on_error: str = ON_ERROR_OPTION,
    rejects: str | None = REJECTS_OPTION,
    json_summary: bool = JSON_OPTION,
    allow_empty: bool = ALLOW_EMPTY_OPTION,
) -> None:
    """MDETR's pre-processed JSONs → one referring (RefCOCO family) or grounded_caption record per caption."""
    from gtok_cli.ingest.mdetr import iter_mdetr
    from gtok_cli.paths import refuse_overwrite

    refuse_overwrite(
        {"--annotations": annotations, "--images": images},
        {"--out": out, "--rejects": rejects_path(out, on_error, rejects)},
    )
    items = iter_mdetr(annotations, images_dir=images, split=split)
    run_and_report(items, out, on_error, rejects, json_summary, what=annotations, allow_empty=allow_empty)


def refcoco_hf(
    parquet: list[str] = typer.Option(..., "--parquet", help=PARQUET_HELP),
    layout: str = typer.Option(
        ..., "--layout", help="lmms-lab (lmms-lab/RefCOCO*) or jxu124 (jxu124/refcoco*)."
    ),
    dataset: str = typer.Option(..., "--dataset", help="refcoco, refcoco+ or refcocog."),
    split: str | None = typer.Option(
        None,
        "--split",
        help="lmms-lab: the split name (default: from the file name); jxu124: keep this split.",
    ),
    images: str | None = typer.Option(
        None,
        "--images",
        help="COCO train2014 folder. jxu124: check each image's size; lmms-lab: read the size of rows "
        "that embed no image.",
    ),
    extract_images: str | None = typer.Option(None, "--extract-images", help=EXTRACT_HELP),
    out: str = OUT_OPTION,
    on_error: str = ON_ERROR_OPTION,
    rejects: str | None = REJECTS_OPTION,
    json_summary: bool = JSON_OPTION,
    allow_empty: bool = ALLOW_EMPTY_OPTION,
) -> None:
    """RefCOCO / + / g as Hugging Face parquet (lmms-lab or jxu124) → one referring record per expression."""
    from gtok_cli.ingest.embedded_images import ImageWriter
    from gtok_cli.ingest.refcoco_hf import DATASETS, LAYOUTS, iter_refcoco_hf
    from gtok_cli.paths import refuse_overwrite

    if layout not in LAYOUTS:
        raise UsageError(f"--layout must be one of {', '.join(LAYOUTS)}, not {layout!r}")
    if dataset not in DATASETS:
        raise UsageError(f"--dataset must be one of {', '.join(DATASETS)}, not {dataset!r}")
    files = parquet_files(parquet)
    refuse_overwrite(
        {"--parquet": files, "--images": images},
        {"--out": out, "--rejects": rejects_path(out, on_error, rejects), "--extract-images": extract_images},
    )
    writer = ImageWriter(Path(extract_images)) if extract_images is not None else None
    items = iter_refcoco_hf(
        files, "jxu124" if layout == "jxu124" else "lmms-lab", dataset, split=split, images_dir=images,
        image_writer=writer,
    )  # fmt: skip
    run_and_report(
        items, out, on_error, rejects, json_summary, what=", ".join(files), allow_empty=allow_empty,
        empty_hint=_files_hint, extra=_extracted(writer),
    )  # fmt: skip


def grit(
    parquet: list[str] = typer.Option(..., "--parquet", help=PARQUET_HELP),
    spans: str = typer.Option(
        "noun_chunks",
        "--spans",
        help="Which span list grounds the caption: noun_chunks, ref_exps or both (one record each).",
    ),
    min_conf: float = typer.Option(
        0.0, "--min-conf", help="Leave out spans whose confidence (7th number) is below this (counted)."
    ),
    extract_images: str | None = typer.Option(None, "--extract-images", help=EXTRACT_HELP),
    out: str = OUT_OPTION,
    on_error: str = ON_ERROR_OPTION,
    rejects: str | None = REJECTS_OPTION,
    json_summary: bool = JSON_OPTION,
    allow_empty: bool = ALLOW_EMPTY_OPTION,
) -> None:
    """GRIT-20M parquet (Kosmos-2) → one grounded_caption record per row (and span list)."""
    from gtok_cli.ingest.embedded_images import ImageWriter
    from gtok_cli.ingest.grit import iter_grit, kinds_of
    from gtok_cli.paths import refuse_overwrite

    kinds_of(spans)
    if not 0.0 <= min_conf <= 1.0:
        raise UsageError(f"--min-conf must be within 0..1, not {min_conf}")
    files = parquet_files(parquet)
    refuse_overwrite(
        {"--parquet": files},
        {"--out": out, "--rejects": rejects_path(out, on_error, rejects), "--extract-images": extract_images},
    )
    writer = ImageWriter(Path(extract_images)) if extract_images is not None else None
    items = iter_grit(files, spans=spans, min_conf=min_conf, image_writer=writer)
    run_and_report(
        items, out, on_error, rejects, json_summary, what=", ".join(files), allow_empty=allow_empty,
        empty_hint=_files_hint, extra=_extracted(writer),
    )  # fmt: skip


def _extracted(writer: Any) -> Any:
    if writer is None:
        return None
    return lambda: {"images_extracted": writer.written}


def _files_hint(stats: IngestStats) -> str:
    files = stats.units.get("files")
    if files is not None and files.read and not files.kept:
        return "no parquet file could be read"
    return ""
