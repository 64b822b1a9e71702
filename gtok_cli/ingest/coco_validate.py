"""Checks for the parts of a COCO instances file: categories, images, annotations → canonical regions.

Two ways to turn an annotation into a region, which must agree (a test checks it on genuine data):

- :func:`fast_region`: an optimistic path for the common valid shape (int ids, 0/1 ``iscrowd``, a box inside
  the image, polygons); it returns None for anything else, never an error.
- :func:`checked_region`: field by field, raising an InputError that names the file, the annotation, the
  field, and what was expected and found.

What is checked: ids and ``category_id`` are integers (not booleans), the category exists, ``iscrowd``
is 0/1, the box ``[x, y, w, h]`` has 4 numbers and as xyxy passes :func:`records.check_box_xyxy`; polygons
are lists of >= 6 numbers (an even count), finite; RLE has ``size == [height, width]`` of its image and
counts (a list of non-negative integers, or a compressed string) that sum to ``height * width``. Polygon
vertices are not bounds-checked (COCO has vertices on or just past the border; rasterising clips them): the
box is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from gtok_cli.errors import InputError
from gtok_cli.records import check_box_xyxy, make_region

MISSING: Any = object()
"""Stands for an absent key in error messages."""


def type_name(value: Any) -> str:
    return "missing" if value is MISSING else type(value).__name__


def field_error(file: str, record: str, field: str, expected: str, found: Any) -> InputError:
    missing = found is MISSING
    return InputError(
        f"{field} is missing" if missing else f"{field} has the wrong type or value",
        file=file,
        record=record,
        field=field,
        expected=expected,
        found="(missing)" if missing else found,
        reason="field.missing" if missing else "field.type",
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float))


# ---------------------------------------------------------------------------------------------- tables


def load_categories(categories: list[Any], file: str) -> dict[int, str]:
    """``{category_id: name}``; a bad category table stops the run (every annotation depends on it)."""
    names: dict[int, str] = {}
    for index, cat in enumerate(categories):
        record = f"categories[{index}]"
        if type(cat) is not dict:
            raise field_error(file, record, "(category)", "an object", type_name(cat))
        cid = cat.get("id", MISSING)
        if type(cid) is not int:
            raise field_error(file, record, "id", "an integer", cid)
        name = cat.get("name", MISSING)
        if type(name) is not str or not name:
            raise field_error(file, f"category {cid}", "name", "a non-empty string", name)
        if cid in names:
            raise InputError(
                "duplicate category id", file=file, record=f"category {cid}", field="id",
                expected="unique ids", found=cid, reason="id.duplicate",
            )  # fmt: skip
        names[cid] = name
    return names


@dataclass(frozen=True)
class CocoImage:
    id: int
    file_name: str
    width: int
    height: int
    extra: dict[str, Any] | None = None
    """Record fields the image carries (LVIS: ``neg_category_ids``, ``not_exhaustive_category_ids``)."""


def check_image_entry(img: Any, index: int, file: str, flavor: str = "coco") -> CocoImage:
    """One ``images[]`` entry, validated (``flavor``: see :mod:`gtok_cli.ingest.coco_flavors`)."""
    if type(img) is not dict:
        raise field_error(file, f"images[{index}]", "(image)", "an object", type_name(img))
    iid = img.get("id", MISSING)
    if type(iid) is not int:
        raise field_error(file, f"images[{index}]", "id", "an integer", iid)
    record = f"image {iid}"
    if flavor != "coco":
        from gtok_cli.ingest.coco_flavors import flavored_image

        file_name, extra = flavored_image(img, flavor, file, record)
    else:
        file_name, extra = img.get("file_name", MISSING), None
    if type(file_name) is not str or not file_name:
        raise field_error(file, record, "file_name", "a non-empty string", file_name)
    for key in ("width", "height"):
        value = img.get(key, MISSING)
        if type(value) is not int or value < 1:
            raise field_error(file, record, key, "a positive integer", value)
    return CocoImage(iid, file_name, img["width"], img["height"], extra)


# ---------------------------------------------------------------------------------------------- annotations


def fast_region(ann: Any, width: int, height: int, names: dict[int, str]) -> dict[str, Any] | None:
    """The region of a plainly valid annotation, else None (then :func:`checked_region` decides)."""
    try:
        aid = ann["id"]
        cid = ann["category_id"]
        crowd = ann["iscrowd"]
        seg = ann["segmentation"]
        x, y, w, h = ann["bbox"]
        x2 = x + w
        y2 = y + h
        if not (
            type(aid) is int
            and type(cid) is int
            and type(crowd) is int
            and (crowd == 0 or crowd == 1)
            and x >= 0
            and y >= 0
            and x2 > x
            and y2 > y
            and x2 <= width
            and y2 <= height
            and type(seg) is list
            and seg
        ):
            return None
        label = names.get(cid)
        if label is None:
            return None
        for part in seg:
            # sum() raises TypeError on a non-number and gives inf/nan for non-finite values, at C speed
            if type(part) is not list or len(part) < 6 or len(part) & 1 or not math.isfinite(sum(part)):
                return None
    except (KeyError, TypeError, ValueError):
        return None
    # make_region's dict, written out: this runs 860k times on COCO-train (a test checks both are identical)
    return {
        "bbox": [float(x), float(y), float(x2), float(y2)],
        "mask": seg,
        "label": label,
        "category_id": cid,
        "iscrowd": crowd == 1,
        "ann_id": aid,
        "phrase": None,
        "span": None,
    }


def annotation_record(ann: Any, image_id: int) -> str:
    aid = ann.get("id") if type(ann) is dict else None
    return (
        f"annotation {aid} (image {image_id})"
        if type(aid) is int
        else f"annotation id={aid!r} (image {image_id})"
    )


def duplicate_annotation_error(file: str, ann_id: int, image_id: int) -> InputError:
    return InputError(
        "duplicate annotation id", file=file, record=f"annotation {ann_id} (image {image_id})", field="id",
        expected="unique ids", found=ann_id, reason="id.duplicate",
    )  # fmt: skip


@dataclass(frozen=True)
class AnnotationContext:
    """What checking an annotation needs besides its image: the file (named in errors), the category table."""

    file: str
    names: dict[int, str]


def checked_region(ann: Any, image: CocoImage, ctx: AnnotationContext) -> dict[str, Any]:
    """Validate one annotation of ``image`` field by field; its region, or a precise InputError.

    Duplicate annotation ids are the caller's to find (that needs the whole file).
    """
    file, names = ctx.file, ctx.names
    record = annotation_record(ann, image.id)
    if type(ann) is not dict:
        raise field_error(file, record, "(annotation)", "an object", type_name(ann))
    aid = ann.get("id", MISSING)
    if type(aid) is not int:
        raise field_error(file, record, "id", "an integer", aid)
    cid = ann.get("category_id", MISSING)
    if type(cid) is not int:
        raise field_error(file, record, "category_id", "an integer", cid)
    label = names.get(cid)
    if label is None:
        raise InputError(
            "unknown category", file=file, record=record, field="category_id",
            expected="an id from the file's categories", found=cid, reason="category.unknown",
        )  # fmt: skip
    crowd = ann.get("iscrowd", MISSING)
    if type(crowd) not in (int, bool) or crowd not in (0, 1):
        raise field_error(file, record, "iscrowd", "0 or 1", crowd)
    bbox = ann.get("bbox", MISSING)
    if type(bbox) is not list or len(bbox) != 4 or not all(_is_number(v) for v in bbox):
        raise field_error(file, record, "bbox", "[x, y, w, h] numbers", bbox)
    x, y, w, h = bbox
    # the one place COCO's [x, y, w, h] becomes xyxy (docs/spec.md#coordinates)
    box = check_box_xyxy(
        [x, y, x + w, y + h], image.width, image.height, file=file, record=record, field="bbox"
    )
    mask = _checked_mask(ann.get("segmentation", MISSING), image, file, record)
    return make_region(box, mask=mask, label=label, category_id=cid, iscrowd=crowd == 1, ann_id=aid)


def _checked_mask(seg: Any, image: CocoImage, file: str, record: str) -> Any:
    if type(seg) is list:
        return _checked_polygons(seg, file, record) if seg else None  # [] = no mask
    if type(seg) is dict:
        return checked_rle(seg, image, file, record)
    raise field_error(file, record, "segmentation", "polygons (a list) or RLE (an object)", seg)


def _checked_polygons(seg: list[Any], file: str, record: str) -> list[Any]:
    for k, part in enumerate(seg):
        field = f"segmentation[{k}]"
        if type(part) is not list or not all(_is_number(v) for v in part):
            raise field_error(file, record, field, "a list of numbers [x1, y1, x2, y2, ...]", part)
        if len(part) < 6 or len(part) % 2:
            raise InputError(
                "polygon needs at least 3 points (an even count of at least 6 numbers)",
                file=file, record=record, field=field, expected="[x1, y1, x2, y2, x3, y3, ...]",
                found=f"{len(part)} numbers", reason="polygon.too_few_points",
            )  # fmt: skip
        if not math.isfinite(sum(part)):
            raise InputError(
                "polygon has a non-finite coordinate", file=file, record=record, field=field,
                expected="finite numbers", found=part, reason="polygon.nonfinite",
            )  # fmt: skip
    return seg


def checked_rle(seg: dict[str, Any], image: CocoImage, file: str, record: str) -> dict[str, Any]:
    size = seg.get("size", MISSING)
    if type(size) is not list or len(size) != 2 or not all(type(v) is int for v in size):
        raise field_error(file, record, "segmentation.size", "[height, width] integers", size)
    if size != [image.height, image.width]:
        raise InputError(
            "RLE size disagrees with the image", file=file, record=record, field="segmentation.size",
            expected=f"[{image.height}, {image.width}] (image height, width)", found=size,
            reason="rle.size_mismatch",
        )  # fmt: skip
    counts = seg.get("counts", MISSING)
    if type(counts) is list:
        # sum() is an int only when every count is an int (C speed; crowd RLE has thousands of counts)
        try:
            total = sum(counts)
            ok = type(total) is int and (not counts or min(counts) >= 0)
        except TypeError:
            ok = False
        if not ok:
            raise field_error(file, record, "segmentation.counts", "non-negative integers", counts)
    elif type(counts) is str:
        try:
            total = sum(decode_rle_string(counts))
        except ValueError as exc:
            raise field_error(
                file, record, "segmentation.counts", f"compressed COCO RLE ({exc})", counts
            ) from None
    else:
        raise field_error(
            file, record, "segmentation.counts", "a list of integers or a compressed string", counts
        )
    if total != image.height * image.width:
        raise InputError(
            "RLE counts do not cover the image", file=file, record=record, field="segmentation.counts",
            expected=f"counts summing to {image.height * image.width} (height x width)", found=f"sum {total}",
            reason="rle.counts",
        )  # fmt: skip
    return seg


def decode_rle_string(text: str) -> list[int]:
    """The run lengths of a compressed COCO RLE string (read as pycocotools ``rleFrString`` does), checked."""
    counts: list[int] = []
    pos, n = 0, len(text)
    while pos < n:
        value, shift, more = 0, 0, True
        while more:
            if pos >= n:
                raise ValueError("string ends inside a number")
            c = ord(text[pos]) - 48
            if not 0 <= c < 64:
                raise ValueError(f"character {text[pos]!r} out of range")
            value |= (c & 0x1F) << shift
            more = bool(c & 0x20)
            pos += 1
            shift += 5
            if not more and c & 0x10:
                value |= -1 << shift
        if len(counts) > 2:
            value += counts[-2]
        if value < 0:
            raise ValueError("negative run length")
        counts.append(value)
    return counts


def annotation_ids(ann: Any) -> dict[str, Any]:
    """An annotation's integer ids (``image_id``, ``ann_id``) where they can be read, for its reject line."""
    if type(ann) is not dict:
        return {}
    ids = {"image_id": ann.get("image_id"), "ann_id": ann.get("id")}
    return {k: v for k, v in ids.items() if type(v) is int}


def orphan_error(ann: Any, index: int, file: str) -> InputError:
    """An annotation whose image is not in the file: the one line that names it (or why it cannot)."""
    record = f"annotations[{index}]"
    if type(ann) is not dict:
        return field_error(file, record, "(annotation)", "an object", type_name(ann))
    if type(ann.get("id")) is int:
        record = f"annotation {ann['id']}"
    iid = ann.get("image_id", MISSING)
    if type(iid) is not int:
        return field_error(file, record, "image_id", "an integer", iid)
    return InputError(
        "annotation for an image not in the file", file=file, record=record, field="image_id",
        expected="an id from the file's images", found=iid, reason="image.unknown",
    )  # fmt: skip
