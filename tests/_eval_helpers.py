"""Shared helpers of the eval tests: hand-made records, their exports, predictions files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from _export_helpers import gtok, region, write_records


def ref_record(k: int, bbox: list[float], w: int = 1000, h: int = 1000, **extra: Any) -> dict[str, Any]:
    """A referring record ``r<k>`` with one region."""
    return {
        "id": f"r{k}",
        "dataset": "refcoco" if k % 2 == 0 else "refcocog",
        "split": "val" if k < 4 else "testA",
        "task": "referring",
        "text": f"object number {k}",
        "image": {"file": f"img{k}.jpg", "width": w, "height": h, "id": k},
        "regions": [region(bbox, ann_id=k, **extra)],
        "source": {"image_id": k, "ann_id": k, "ref_id": k, "sent_id": k},
    }


def export_of(tmp: Path, records: list[dict[str, Any]], *args: str, name: str = "export") -> Path:
    src = write_records(tmp / f"{name}.records.jsonl", records)
    out = tmp / name
    res = gtok("export", src, "--out", out, *args)
    assert res.exit_code == 0, res.output
    return out


def write_predictions(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return path


def qwen3(*boxes: tuple[float, float, float, float]) -> str:
    """A qwen3-vl answer (0..1000 scale: on a 1000x1000 image the numbers are pixels)."""
    items = ", ".join(f'{{"bbox_2d": [{a}, {b}, {c}, {d}]}}' for a, b, c, d in boxes)
    return f"[{items}]"
