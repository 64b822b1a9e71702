"""`gtok ingest odvg`, `gtok ingest vg` and `gtok ingest sa1b`: thin wrappers over the library readers.

The readers live in :mod:`gtok_cli.ingest.odvg`, :mod:`gtok_cli.ingest.vg` and
:mod:`gtok_cli.ingest.sa1b`; writing, rejects and the reconciling summary are the shared
:func:`~gtok_cli.commands.ingest_run.run_and_report`.
"""

from __future__ import annotations

import typer

from gtok_cli.commands.ingest_run import (
    ALLOW_EMPTY_OPTION,
    JSON_OPTION,
    ON_ERROR_OPTION,
    OUT_OPTION,
    REJECTS_OPTION,
    EmptyHint,
    rejects_path,
    run_and_report,
)
from gtok_cli.errors import UsageError
from gtok_cli.ingest.common import IngestStats

ODVG_EPILOG = (
    "Examples:\n\n"
    "  gtok ingest odvg --annotations coco2017_train_odvg.jsonl --label-map coco2017_label_map.json "
    "--images train2017 --out odvg.jsonl\n\n"
    "  gtok ingest odvg --annotations final_flickr_separateGT_train_vg.json --on-error skip --out f30k.jsonl"
)
VG_EPILOG = (
    "Examples:\n\n"
    "  gtok ingest vg --image-data image_data.json --regions region_descriptions.json "
    "--out vg_regions.jsonl\n\n"
    "  gtok ingest vg --image-data image_data.json --objects objects.json --relationships relationships.json "
    "--images VG --out vg_objects.jsonl"
)
SA1B_EPILOG = (
    "Examples:\n\n"
    "  gtok ingest sa1b --annotations sa_000000 --images sa_000000 --out sa1b.jsonl\n\n"
    "  gtok ingest sa1b --annotations sa_000000 --min-predicted-iou 0.9 --max-masks-per-image 50 "
    "--out sa1b.jsonl.gz"
)


def register(ingest_app: typer.Typer) -> None:
    """Add the odvg, vg and sa1b subcommands to the `ingest` group."""
    ingest_app.command("odvg", epilog=ODVG_EPILOG)(odvg)
    ingest_app.command("vg", epilog=VG_EPILOG)(vg)
    ingest_app.command("sa1b", epilog=SA1B_EPILOG)(sa1b)


def odvg(
    annotations: str = typer.Option(..., "--annotations", help="The ODVG .jsonl file (one image per line)."),
    label_map: str | None = typer.Option(
        None, "--label-map", help='Label map JSON {"0": "person", …}: names detection labels (else category).'
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
    """GroundingDINO ODVG jsonl → `instances` (detection) and `grounded_caption` (grounding) records."""
    from gtok_cli.ingest.odvg import iter_odvg, load_label_map
    from gtok_cli.paths import refuse_overwrite

    refuse_overwrite(
        {"--annotations": annotations, "--label-map": label_map, "--images": images},
        {"--out": out, "--rejects": rejects_path(out, on_error, rejects)},
    )
    names = load_label_map(label_map) if label_map is not None else None
    items = iter_odvg(annotations, label_map=names, images_dir=images)
    run_and_report(
        items, out, on_error, rejects, json_summary, what=annotations, allow_empty=allow_empty,
        empty_hint=_hint("lines", "the file has no non-blank lines"),
    )  # fmt: skip


def vg(
    image_data: str = typer.Option(..., "--image-data", help="Visual Genome image_data.json."),
    regions: str | None = typer.Option(
        None, "--regions", help="region_descriptions.json: one referring record per region."
    ),
    objects: str | None = typer.Option(
        None, "--objects", help="objects.json: one instances record per image."
    ),
    relationships: str | None = typer.Option(
        None, "--relationships", help="relationships.json: kept as `relations` on the objects records."
    ),
    images: str | None = typer.Option(
        None, "--images", help="Folder holding VG_100K/ and VG_100K_2/: each image must exist with its size."
    ),
    out: str = OUT_OPTION,
    on_error: str = ON_ERROR_OPTION,
    rejects: str | None = REJECTS_OPTION,
    json_summary: bool = JSON_OPTION,
    allow_empty: bool = ALLOW_EMPTY_OPTION,
) -> None:
    """Visual Genome v1.2 → `referring` records (regions) and `instances` records (objects + relations)."""
    from gtok_cli.ingest.vg import iter_vg
    from gtok_cli.paths import refuse_overwrite

    refuse_overwrite(
        {
            "--image-data": image_data,
            "--regions": regions,
            "--objects": objects,
            "--relationships": relationships,
            "--images": images,
        },
        {"--out": out, "--rejects": rejects_path(out, on_error, rejects)},
    )
    if regions is None and objects is None:
        raise UsageError("give --regions and/or --objects (image_data alone makes no records)")
    if relationships is not None and objects is None:
        raise UsageError("--relationships needs --objects (relations ride on each image's objects record)")
    items = iter_vg(image_data, regions, objects, relationships, images_dir=images)
    run_and_report(
        items, out, on_error, rejects, json_summary, what=regions or objects or image_data,
        allow_empty=allow_empty, empty_hint=_hint("images", f"{image_data} lists no images"),
    )  # fmt: skip


def sa1b(
    annotations: str = typer.Option(
        ..., "--annotations", help="Folder of SA-1B per-image JSON files (sa_<n>.json)."
    ),
    images: str | None = typer.Option(
        None, "--images", help="Image folder (sa_<n>.jpg): each image must exist with the annotated size."
    ),
    min_predicted_iou: float | None = typer.Option(
        None, "--min-predicted-iou", help="Leave out masks whose predicted_iou is below this (counted)."
    ),
    max_masks_per_image: int | None = typer.Option(
        None, "--max-masks-per-image", help="Keep at most N masks per image, highest predicted_iou first."
    ),
    out: str = OUT_OPTION,
    on_error: str = ON_ERROR_OPTION,
    rejects: str | None = REJECTS_OPTION,
    json_summary: bool = JSON_OPTION,
    allow_empty: bool = ALLOW_EMPTY_OPTION,
) -> None:
    """SA-1B per-image JSONs → one `instances` record per image, masks kept as COCO RLE."""
    from gtok_cli.ingest.sa1b import iter_sa1b
    from gtok_cli.paths import refuse_overwrite

    refuse_overwrite(
        {"--annotations": annotations, "--images": images},
        {"--out": out, "--rejects": rejects_path(out, on_error, rejects)},
    )
    if min_predicted_iou is not None and not 0.0 <= min_predicted_iou <= 1.0:
        raise UsageError(f"--min-predicted-iou must be in [0, 1], not {min_predicted_iou}")
    if max_masks_per_image is not None and max_masks_per_image < 1:
        raise UsageError(f"--max-masks-per-image must be at least 1, not {max_masks_per_image}")
    items = iter_sa1b(
        annotations,
        images_dir=images,
        min_predicted_iou=min_predicted_iou,
        max_masks_per_image=max_masks_per_image,
    )
    run_and_report(
        items, out, on_error, rejects, json_summary, what=annotations, allow_empty=allow_empty,
        empty_hint=_hint("files", f"no *.json files in {annotations}"),
    )  # fmt: skip


def _hint(unit: str, text: str) -> EmptyHint:
    def hint(stats: IngestStats) -> str:
        counts = stats.units.get(unit)
        return "" if counts is not None and counts.read else text

    return hint
