"""Canonical records (docs/spec.md#records): builders and the checks every source shares.

A record is a plain dict (fast to build and serialise for COCO-train-sized input); these helpers build the
parts in the one canonical shape and validate geometry once, at ingest. ``schemas/record.schema.json`` is the
contract; ``verify`` and tests validate against it.
"""

from __future__ import annotations

import math
from functools import cache
from typing import Any

from gtok_cli.errors import InputError

RECORD_TASKS = ("referring", "grounded_caption", "category", "instances")


def check_box_xyxy(
    box: list[float],
    width: int,
    height: int,
    *,
    file: str | None,
    record: str | None,
    field: str,
    tolerance: float = 1.0,
) -> list[float]:
    """Validate a canonical xyxy pixel box against its image; return it as floats.

    Rejects NaN/inf, x2 <= x1 or y2 <= y1, and boxes that extend more than ``tolerance`` pixels outside the
    image (COCO has boxes that overshoot by rounding, e.g. x + w = 640.01 on a 640-wide image; those are
    clamped, anything further is an error).
    """
    if len(box) != 4:
        raise InputError(
            "box must have 4 numbers",
            file=file,
            record=record,
            field=field,
            expected="[x1, y1, x2, y2]",
            found=box,
            reason="bbox.shape",
        )
    x1, y1, x2, y2 = (float(v) for v in box)
    if not all(math.isfinite(v) for v in (x1, y1, x2, y2)):
        raise InputError(
            "box has a non-finite coordinate",
            file=file,
            record=record,
            field=field,
            expected="finite numbers",
            found=box,
            reason="bbox.nonfinite",
        )
    if x2 <= x1 or y2 <= y1:
        raise InputError(
            "box has zero or negative size",
            file=file,
            record=record,
            field=field,
            expected="x2 > x1 and y2 > y1",
            found=box,
            reason="bbox.nonpositive",
        )
    if x1 < -tolerance or y1 < -tolerance or x2 > width + tolerance or y2 > height + tolerance:
        raise InputError(
            "box lies outside the image",
            file=file,
            record=record,
            field=field,
            expected=f"within 0..{width} x 0..{height}",
            found=box,
            reason="bbox.outside",
        )
    return [max(0.0, x1), max(0.0, y1), min(float(width), x2), min(float(height), y2)]


def make_region(
    bbox: list[float],
    *,
    mask: Any = None,
    label: str | None = None,
    category_id: int | None = None,
    iscrowd: bool = False,
    ann_id: int | str | None = None,
    phrase: str | None = None,
    span: list[int] | None = None,
) -> dict[str, Any]:
    return {
        "bbox": bbox,
        "mask": mask,
        "label": label,
        "category_id": category_id,
        "iscrowd": iscrowd,
        "ann_id": ann_id,
        "phrase": phrase,
        "span": span,
    }


def make_record(
    *,
    record_id: str,
    dataset: str,
    split: str | None,
    task: str,
    text: str | None,
    image_file: str,
    width: int,
    height: int,
    image_id: int | str,
    regions: list[dict[str, Any]],
    source: dict[str, Any],
) -> dict[str, Any]:
    return {
        "id": record_id,
        "dataset": dataset,
        "split": split,
        "task": task,
        "text": text,
        "image": {"file": image_file, "width": width, "height": height, "id": image_id},
        "regions": regions,
        "source": source,
    }


@cache
def record_validator() -> Any:
    """A jsonschema validator for records (slow path: tests and `verify`, not the ingest hot loop)."""
    import jsonschema

    from gtok_cli.schemas import load_schema

    return jsonschema.Draft202012Validator(load_schema("record"))
