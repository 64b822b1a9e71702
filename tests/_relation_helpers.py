"""Hand-built scenes of the relation tests (docs/spec.md#relations) and reading an export's lines back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from _export_helpers import region


def lines_of(out: Path) -> list[dict[str, Any]]:
    return [orjson.loads(x) for p in sorted(out.glob("*.jsonl")) for x in p.read_bytes().splitlines()]


def manifest(out: Path) -> dict[str, Any]:
    return orjson.loads((out / "manifest.json").read_bytes())


def scene(rid: str, boxes: dict[str, list[float]], **extra: Any) -> dict[str, Any]:
    """An instances record on a 200x100 image, one region per named box."""
    regions = [region(b, label=name, ann_id=k) for k, (name, b) in enumerate(boxes.items())]
    return {
        "id": rid,
        "dataset": "hand",
        "split": "test",
        "task": "instances",
        "text": None,
        "image": {"file": f"{rid}.jpg", "width": 200, "height": 100, "id": rid},
        "regions": regions,
        "source": {},
        **extra,
    }


# five equal 10x10 boxes in one row, 30 px apart: x order known, nothing else holds
ROW = {"apple": [0, 40, 10, 50], "bowl": [40, 40, 50, 50], "cup": [80, 40, 90, 50]}
ROW.update(dish=[120, 40, 130, 50], egg=[160, 40, 170, 50])
X = {name: box[0] for name, box in ROW.items()}
