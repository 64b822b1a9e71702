"""gtok ingest sa1b on files in the SA-1B layout (tests/data/sa1b: COCO val2017 masks as compressed RLE in
SA-1B's per-image JSON, see tests/data/README.md); masks and boxes read back with pycocotools."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from _source_helpers import DATA, export_and_verify, ingest, reconciles, rejects
from pycocotools import mask as mask_utils

SA = DATA / "sa1b"


def files() -> list[dict[str, Any]]:
    return [json.loads((SA / f"sa_{n}.json").read_text()) for n in (1, 2, 3)]


def test_records_equal_an_independent_reading(tmp_path: Path) -> None:
    code, output, records, summary = ingest("sa1b", "--annotations", SA, "--out", tmp_path / "o.jsonl")
    assert code == 0, output
    assert summary is not None and reconciles(summary)
    assert [r["id"] for r in records] == ["sa1b:1", "sa1b:2", "sa1b:3"]
    for rec, doc in zip(records, files(), strict=True):
        assert rec["image"]["file"] == doc["image"]["file_name"]
        for region, ann in zip(rec["regions"], doc["annotations"], strict=True):
            assert region["mask"] == ann["segmentation"]  # the RLE kept as given
            x, y, w, h = ann["bbox"]
            assert region["bbox"] == [x, y, x + w, y + h]
            rle = {"size": region["mask"]["size"], "counts": region["mask"]["counts"].encode()}
            assert list(mask_utils.toBbox(rle)) == ann["bbox"]  # this sample's boxes are the masks' own
            assert int(mask_utils.area(rle)) == ann["area"]
            assert region["predicted_iou"] == ann["predicted_iou"]
            assert region["point_coords"] == ann["point_coords"]


def test_filters_are_counted(tmp_path: Path) -> None:
    anns = [a for doc in files() for a in doc["annotations"]]
    low = sum(a["predicted_iou"] < 0.9 for a in anns)
    code, _, records, summary = ingest(
        "sa1b",
        "--annotations",
        SA,
        "--min-predicted-iou",
        "0.9",
        "--max-masks-per-image",
        "3",
        "--out",
        tmp_path / "o.jsonl",
    )
    assert code == 0 and summary is not None and reconciles(summary)
    by_doc = [
        sorted(
            (a for a in doc["annotations"] if a["predicted_iou"] >= 0.9), key=lambda a: -a["predicted_iou"]
        )[:3]
        for doc in files()
    ]
    kept = sum(len(b) for b in by_doc)
    excluded = summary["units"]["annotations"]["excluded_by_reason"]
    assert excluded["predicted_iou"] == low
    assert excluded["max_masks_per_image"] == len(anns) - low - kept
    got = {r["ann_id"] for rec in records for r in rec["regions"]}
    assert got == {a["id"] for b in by_doc for a in b}


def test_exports_and_verifies(tmp_path: Path) -> None:
    out = tmp_path / "o.jsonl"
    assert ingest("sa1b", "--annotations", SA, "--max-masks-per-image", "4", "--out", out)[0] == 0
    export_and_verify(out, tmp_path, "detect", ("bins", "grid"))


def _copy(tmp_path: Path, change: Any | None = None) -> Path:
    folder = tmp_path / "sa"
    shutil.copytree(SA, folder)
    if change is not None:
        doc = json.loads((folder / "sa_2.json").read_text())
        change(doc)
        (folder / "sa_2.json").write_text(json.dumps(doc))
    return folder


def _ann(key: str, value: Any) -> Any:
    return lambda d: d["annotations"][0].__setitem__(key, value)


BAD = [
    ("wrong type", _ann("predicted_iou", "high"), "field.type", "predicted_iou"),
    ("missing key", lambda d: d["annotations"][0].pop("segmentation"), "field.missing", "segmentation"),
    ("box outside", _ann("bbox", [10, 10, 5000, 5]), "bbox.outside", "bbox"),
    (
        "rle size",
        lambda d: d["annotations"][0]["segmentation"].__setitem__("size", [1, 1]),
        "rle.size_mismatch",
        "segmentation.size",
    ),
    (
        "duplicate id",
        lambda d: d["annotations"][1].__setitem__("id", d["annotations"][0]["id"]),
        "id.duplicate",
        "field id",
    ),
]


@pytest.mark.parametrize(("case", "change", "reason", "named"), BAD, ids=[b[0] for b in BAD])
def test_bad_annotation_fails_or_is_a_counted_reject(
    tmp_path: Path, case: str, change: Any, reason: str, named: str
) -> None:
    folder = _copy(tmp_path, change)
    code, output, _, _ = ingest("sa1b", "--annotations", folder, "--out", tmp_path / "f.jsonl")
    assert code == 2 and named in output and "sa_2.json" in output and "Traceback" not in output
    code, output, records, summary = ingest(
        "sa1b", "--annotations", folder, "--out", tmp_path / "s.jsonl", "--on-error", "skip"
    )
    assert code == 0, output
    assert summary is not None and reconciles(summary)
    assert summary["units"]["annotations"]["rejected_by_reason"] == {reason: 1}
    assert rejects(tmp_path / "s.jsonl.rejects.jsonl")[0]["reason"] == reason
    assert records[1]["incomplete"] == {"rejected_annotations": 1}


def test_truncated_file_and_duplicate_image(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    text = (folder / "sa_2.json").read_text()
    (folder / "sa_2.json").write_text(text[:-100])
    (folder / "sa_9.json").write_text((folder / "sa_1.json").read_text())  # image_id 1 again, ann ids again
    code, output, _, _ = ingest("sa1b", "--annotations", folder, "--out", tmp_path / "f.jsonl")
    assert code == 2 and "sa_2.json" in output and "ends early" in output
    code, output, records, summary = ingest(
        "sa1b", "--annotations", folder, "--out", tmp_path / "s.jsonl", "--on-error", "skip"
    )
    assert code == 0, output
    assert summary is not None and reconciles(summary)
    assert summary["units"]["files"]["rejected_by_reason"] == {"json.truncated": 1, "id.duplicate": 1}
    assert [r["id"] for r in records] == ["sa1b:1", "sa1b:3"]


def test_masks_then_grid_mask_export_verifies(tmp_path: Path) -> None:
    """SA-1B's RLE masks through the rest of the pipeline: mask tokens (cells backend), grid mask answers."""
    from _export_helpers import gtok

    records = tmp_path / "sa.jsonl"
    assert ingest("sa1b", "--annotations", SA, "--max-masks-per-image", "2", "--out", records)[0] == 0
    masked = tmp_path / "sa.masks.jsonl"
    res = gtok("masks", records, "--out", masked)
    assert res.exit_code == 0, res.output
    out = tmp_path / "ex"
    res = gtok("export", masked, "--scheme", "grid", "--task", "detect", "--shape", "mask", "--out", out)
    assert res.exit_code == 0, res.output
    res = gtok("verify", out)
    assert res.exit_code == 0, res.output
    kept = [json.loads(line) for line in masked.read_text().splitlines()]
    assert all(r["mask_tokens"] and r["predicted_iou"] for rec in kept for r in rec["regions"])
