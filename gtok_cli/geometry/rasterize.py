"""Record region masks (COCO polygons or RLE, docs/spec.md#records) → bool ``(H, W)`` arrays: THE one
rasteriser.

Uses pycocotools exactly as the COCO API does (``frPyObjects`` → ``merge`` → ``decode``), so a mask means
here what it means in COCO evaluation.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from gtok_cli.errors import InputError


def _bad(
    message: str, file: str | None, record: str | None, field: str, expected: str, found: Any
) -> InputError:
    return InputError(
        message, file=file, record=record, field=field, expected=expected, found=found, reason="mask.invalid"
    )


def region_mask_rle(
    mask: Any,
    width: int,
    height: int,
    *,
    file: str | None = None,
    record: str | None = None,
    field: str = "mask",
) -> dict[str, Any]:
    """A record mask as one compressed COCO RLE of size ``[height, width]`` (polygons merged)."""
    if isinstance(mask, dict):
        size = mask.get("size")
        counts = mask.get("counts")
        if not (
            isinstance(size, list | tuple) and len(size) == 2 and [int(v) for v in size] == [height, width]
        ):
            raise _bad("RLE size disagrees with the image", file, record, field, f"[{height}, {width}]", size)
        if isinstance(counts, list):
            if not all(isinstance(c, int) and c >= 0 for c in counts) or sum(counts) != height * width:
                raise _bad(
                    "uncompressed RLE counts must be non-negative integers summing to h*w",
                    file,
                    record,
                    field,
                    f"sum {height * width}",
                    f"sum {sum(c for c in counts if isinstance(c, int))}",
                )
            rle: dict[str, Any] = mask_utils.frPyObjects(
                {"size": [height, width], "counts": counts}, height, width
            )
            return rle
        if isinstance(counts, str | bytes):
            raw = counts.encode("ascii") if isinstance(counts, str) else counts
            rle = {"size": [height, width], "counts": raw}
            try:
                total = int(mask_utils.area(rle)) if raw else -1
            except Exception:  # pycocotools raises plain exceptions on garbage strings
                total = -1
            if total < 0:
                raise _bad(
                    "compressed RLE counts do not decode", file, record, field, "a COCO RLE string", counts
                )
            return rle
        raise _bad("RLE counts must be a list or a string", file, record, field, "list[int] | str", counts)
    if isinstance(mask, list) and mask:
        for k, poly in enumerate(mask):
            ok = (
                isinstance(poly, list)
                and len(poly) >= 6
                and len(poly) % 2 == 0
                and all(
                    isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in poly
                )
            )
            if not ok:
                raise _bad(
                    "polygon must have an even number (>= 6) of finite coordinates",
                    file,
                    record,
                    f"{field}[{k}]",
                    "[x1, y1, x2, y2, x3, y3, ...]",
                    poly,
                )
        rles = mask_utils.frPyObjects([[float(v) for v in p] for p in mask], height, width)
        merged: dict[str, Any] = mask_utils.merge(rles)
        return merged
    raise _bad(
        "mask must be COCO RLE or a list of polygons", file, record, field, "RLE dict | polygons", mask
    )


def region_mask_to_bool(
    mask: Any,
    width: int,
    height: int,
    *,
    file: str | None = None,
    record: str | None = None,
    field: str = "mask",
) -> np.ndarray:
    """A record mask (RLE dict with list/str counts, or polygons) → bool ``(height, width)`` array."""
    rle = region_mask_rle(mask, width, height, file=file, record=record, field=field)
    with warnings.catch_warnings():  # pycocotools' decode trips numpy 2's __array__(copy=) deprecation
        warnings.simplefilter("ignore", DeprecationWarning)
        return np.asarray(mask_utils.decode(rle), dtype=bool)
