"""Shared helpers of the export / verify / shard tests: hand-made records and CLI calls."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from typer.testing import CliRunner

from gtok_cli.cli import app

RUNNER = CliRunner()


def region(bbox: list[float], **kw: Any) -> dict[str, Any]:
    base = {
        "bbox": bbox,
        "mask": None,
        "label": "person",
        "category_id": 1,
        "iscrowd": False,
        "ann_id": 1,
        "phrase": None,
        "span": None,
    }
    base.update(kw)
    return base


def referring(k: int, image_id: int | None = None, w: int = 640, h: int = 480) -> dict[str, Any]:
    """A referring record with one box that moves with k (so every line differs)."""
    iid = k // 2 if image_id is None else image_id
    x1, y1 = 10 + (k * 37) % 400, 5 + (k * 53) % 300
    return {
        "id": f"ref-{k}",
        "dataset": "refcoco",
        "split": "train",
        "task": "referring",
        "text": f"the person number {k}",
        "image": {"file": f"img-{iid}.jpg", "width": w, "height": h, "id": iid},
        "regions": [region([float(x1), float(y1), float(x1 + 120.5), float(y1 + 90.25)], ann_id=k)],
        "source": {"image_id": iid, "ann_id": k, "ref_id": k, "sent_id": k},
    }


def write_records(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    return path


def gtok(*args: str) -> Any:
    return RUNNER.invoke(app, [str(a) for a in args])


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}
