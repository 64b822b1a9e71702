"""SA-1B (Segment Anything 1-Billion) per-image JSON files → canonical records: the mask source GETok's mask
tokens are made for.

Layout, one ``sa_<n>.json`` beside each ``sa_<n>.jpg`` (``facebookresearch/segment-anything`` README.md,
"Dataset" section)::

    {"image": {"image_id": int, "width": int, "height": int, "file_name": str},
     "annotations": [{"id": int, "segmentation": {"size": [h, w], "counts": str},   # COCO RLE
                      "bbox": [x, y, w, h], "area": int, "predicted_iou": float, "point_coords": [[x, y]],
                      "crop_box": [x, y, w, h], "stability_score": float}, …]}

Records (docs/spec.md#records): per file one ``instances`` record ``sa1b:<image_id>``; regions in file order,
``label`` null (SA-1B masks are class-agnostic), ``ann_id`` = ``id``, ``mask`` = the RLE exactly as given
(compressed counts kept: lossless, ``pycocotools`` reads it), ``bbox`` = ``[x, y, x + w, y + h]``, and the
region keeps ``predicted_iou``, ``stability_score`` and ``point_coords``. Source ``{image_id, ann_ids,
file}``.

Checks: the RLE ``size`` is ``[height, width]`` of the image, its counts decode (as pycocotools'
``rleFrString`` reads them) and cover the image exactly, and pycocotools computes its area; the box passes
:func:`records.check_box_xyxy`; ids are integers, unique (annotation ids over the whole folder, image ids
too). A bad annotation is rejected alone (the record is marked ``incomplete``, so ``detect`` skips it); a file
that cannot be read as a whole (invalid or truncated JSON, no ``image`` or ``annotations``) is rejected as a
file. Filters, counted as excluded annotations: ``min_predicted_iou`` (``predicted_iou`` below it) and
``max_masks_per_image`` (keeps the highest ``predicted_iou`` ones, file order among them).

Counts: ``files`` (``*.json`` in the folder, in natural order: ``sa_2`` before ``sa_10``), ``annotations``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from gtok_cli.errors import InputError
from gtok_cli.ingest.coco_validate import MISSING, CocoImage, checked_rle, field_error
from gtok_cli.ingest.common import Excluded, IngestItem, Rejected, Tally
from gtok_cli.ingest.progress import read_progress
from gtok_cli.ingest.seen_ids import SeenIds
from gtok_cli.jsonio import read_input_bytes
from gtok_cli.records import check_box_xyxy, make_record

DATASET = "sa1b"


def natural_key(name: str) -> list[Any]:
    """``sa_2.json`` before ``sa_10.json``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def annotation_files(folder: str | Path) -> list[Path]:
    """The ``*.json`` files of ``folder`` (not recursive), in natural order."""
    root = Path(folder)
    if not root.is_dir():
        raise InputError("not a folder", file=str(root), reason="file.unreadable")
    return sorted(
        (p for p in root.iterdir() if p.suffix == ".json" and p.is_file()), key=lambda p: natural_key(p.name)
    )


def iter_sa1b(
    folder: str | Path,
    images_dir: str | Path | None = None,
    min_predicted_iou: float | None = None,
    max_masks_per_image: int | None = None,
) -> Iterator[IngestItem]:
    """Records (and Rejected / Excluded / Tally items) of an SA-1B folder; see the module doc."""
    files = annotation_files(folder)
    reader = _Reader(images_dir, min_predicted_iou, max_masks_per_image)
    with read_progress(len(files), "sa1b", unit="file") as update:
        for path in files:
            yield Tally("file", read=1)
            yield from reader.file_items(path)
            update(1)


def _is_number(value: Any) -> bool:
    return type(value) in (int, float) and math.isfinite(value)


@dataclass
class _Reader:
    images_dir: str | Path | None
    min_predicted_iou: float | None
    max_masks: int | None
    seen_images: SeenIds = field(default_factory=SeenIds)
    seen_annotations: SeenIds = field(default_factory=SeenIds)

    def file_items(self, path: Path) -> Iterator[IngestItem]:
        file = str(path)
        try:
            image, anns = self._read(path)
        except InputError as err:
            yield Rejected(err, "file", {"file": path.name})
            return
        yield Tally("annotation", read=len(anns))
        regions: list[tuple[int, dict[str, Any]]] = []
        rejected = 0
        for k, ann in enumerate(anns):
            try:
                regions.append((k, self._region(ann, k, image, file)))
            except InputError as err:
                rejected += 1
                aid = ann.get("id") if type(ann) is dict else None
                ids = {
                    "file": path.name,
                    "image_id": image.id,
                    **({"ann_id": aid} if type(aid) is int else {}),
                }
                yield Rejected(err, "annotation", ids)
        if self.min_predicted_iou is not None:
            kept = [(k, r) for k, r in regions if r["predicted_iou"] >= self.min_predicted_iou]
            if len(kept) < len(regions):
                yield Excluded("predicted_iou", "annotation", len(regions) - len(kept))
            regions = kept
        if self.max_masks is not None and len(regions) > self.max_masks:
            best = sorted(regions, key=lambda kr: (-kr[1]["predicted_iou"], kr[0]))[: self.max_masks]
            yield Excluded("max_masks_per_image", "annotation", len(regions) - len(best))
            regions = sorted(best, key=lambda kr: kr[0])
        if not regions:
            yield Excluded("annotations.rejected" if rejected else "no_regions", "file")
            return
        yield Tally("annotation", kept=len(regions))
        yield Tally("file", kept=1)
        record = make_record(
            record_id=f"{DATASET}:{image.id}",
            dataset=DATASET,
            split=None,
            task="instances",
            text=None,
            image_file=image.file_name,
            width=image.width,
            height=image.height,
            image_id=image.id,
            regions=[r for _, r in regions],
            source={"image_id": image.id, "ann_ids": [r["ann_id"] for _, r in regions], "file": path.name},
        )
        if rejected:
            record["incomplete"] = {"rejected_annotations": rejected}
        yield record

    def _read(self, path: Path) -> tuple[CocoImage, list[Any]]:
        file = str(path)
        data = read_input_bytes(path)
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            truncated = exc.pos >= len(data.rstrip()) - 1
            raise InputError(
                f"not valid JSON{' (the file ends early)' if truncated else ''}: {exc}", file=file,
                reason="json.truncated" if truncated else "json.invalid",
            ) from None  # fmt: skip
        if type(doc) is not dict:
            raise field_error(
                file, "(file)", "(top level)", "an object with image and annotations", type(doc).__name__
            )
        img = doc.get("image", MISSING)
        if type(img) is not dict:
            raise field_error(file, "(file)", "image", "an object", img)
        iid = img.get("image_id", MISSING)
        if type(iid) is not int:
            raise field_error(file, "image", "image_id", "an integer", iid)
        record = f"image {iid}"
        for key in ("width", "height"):
            value = img.get(key, MISSING)
            if type(value) is not int or value < 1:
                raise field_error(file, record, key, "a positive integer", value)
        name = img.get("file_name", MISSING)
        if type(name) is not str or not name:
            raise field_error(file, record, "file_name", "a non-empty string", name)
        anns = doc.get("annotations", MISSING)
        if type(anns) is not list:
            raise field_error(file, record, "annotations", "a list", anns)
        image = CocoImage(iid, name, img["width"], img["height"])
        if self.images_dir is not None:
            from gtok_cli.images import check_image_size  # PIL only when images are checked

            check_image_size(self.images_dir, name, image.width, image.height, file=file, record=record)
        if self.seen_images.add(iid):
            raise InputError(
                "duplicate image id (another file has it)", file=file, record=record, field="image.image_id",
                expected="unique ids", found=iid, reason="id.duplicate",
            )  # fmt: skip
        return image, anns

    def _region(self, ann: Any, k: int, image: CocoImage, file: str) -> dict[str, Any]:
        record = f"image {image.id} annotations[{k}]"
        if type(ann) is not dict:
            raise field_error(file, record, "(annotation)", "an object", type(ann).__name__)
        aid = ann.get("id", MISSING)
        if type(aid) is not int:
            raise field_error(file, record, "id", "an integer", aid)
        record = f"annotation {aid} (image {image.id})"
        bbox = ann.get("bbox", MISSING)
        if type(bbox) is not list or len(bbox) != 4 or not all(_is_number(v) for v in bbox):
            raise field_error(file, record, "bbox", "[x, y, w, h] numbers", bbox)
        x, y, w, h = bbox
        box = check_box_xyxy(
            [x, y, x + w, y + h], image.width, image.height, file=file, record=record, field="bbox"
        )
        seg = ann.get("segmentation", MISSING)
        if type(seg) is not dict:
            raise field_error(file, record, "segmentation", "COCO RLE {size, counts}", seg)
        mask = checked_rle(seg, image, file, record)
        _pycocotools_area(mask, file, record)
        quality = {}
        for key in ("predicted_iou", "stability_score"):
            value = ann.get(key, MISSING)
            if not _is_number(value):
                raise field_error(file, record, key, "a finite number", value)
            quality[key] = value
        points = ann.get("point_coords", MISSING)
        if type(points) is not list or not all(
            type(p) is list and len(p) == 2 and all(_is_number(v) for v in p) for p in points
        ):
            raise field_error(file, record, "point_coords", "[[x, y], …] numbers", points)
        if self.seen_annotations.add(aid):
            raise InputError(
                "duplicate annotation id", file=file, record=record, field="id", expected="unique ids",
                found=aid, reason="id.duplicate",
            )  # fmt: skip
        return {
            "bbox": box, "mask": mask, "label": None, "category_id": None, "iscrowd": False, "ann_id": aid,
            "phrase": None, "span": None, **quality, "point_coords": points,
        }  # fmt: skip


def _pycocotools_area(mask: dict[str, Any], file: str, record: str) -> int:
    """The mask's area as pycocotools reads it (the RLE must be one pycocotools accepts)."""
    from pycocotools import mask as mask_utils

    counts = mask["counts"]
    rle = {"size": mask["size"], "counts": counts.encode("ascii") if type(counts) is str else counts}
    try:
        if type(counts) is list:
            rle = mask_utils.frPyObjects(rle, *mask["size"])
        return int(mask_utils.area(rle))
    except Exception as exc:  # pycocotools raises plain exceptions on input it cannot read
        raise field_error(file, record, "segmentation", f"RLE pycocotools reads ({exc})", mask) from None
