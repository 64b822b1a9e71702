"""gtok ingest coco --flavor lvis|objects365 on files in those layouts (tests/data/lvis,
tests/data/objects365: COCO val2017 records re-expressed, see tests/data/README.md)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from _export_helpers import gtok
from _source_helpers import DATA, export_and_verify, ingest, reconciles

LVIS = DATA / "lvis" / "lvis_v1_val_sample.json"
O365 = DATA / "objects365" / "zhiyuan_objv2_val_sample.json"


def test_lvis_records_equal_an_independent_reading(tmp_path: Path) -> None:
    code, output, records, summary = ingest(
        "coco", "--flavor", "lvis", "--instances", LVIS, "--out", tmp_path / "o.jsonl"
    )
    assert code == 0, output
    assert summary is not None and reconciles(summary)
    doc = json.loads(LVIS.read_text())
    names = {c["id"]: c["name"] for c in doc["categories"]}
    for rec, img in zip(records, sorted(doc["images"], key=lambda i: i["id"]), strict=True):
        assert rec["id"] == f"lvis:val:{img['id']}:instances" and rec["dataset"] == "lvis"
        assert rec["image"]["file"] == "/".join(img["coco_url"].split("/")[-2:])  # no file_name in LVIS
        assert rec["not_exhaustive_category_ids"] == sorted(img["not_exhaustive_category_ids"])
        assert rec["neg_category_ids"] == sorted(img["neg_category_ids"])
        anns = sorted((a for a in doc["annotations"] if a["image_id"] == img["id"]), key=lambda a: a["id"])
        assert "iscrowd" not in anns[0]
        assert [(r["ann_id"], r["bbox"], r["mask"], r["label"], r["iscrowd"]) for r in rec["regions"]] == [
            (
                a["id"],
                [a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]],
                a["segmentation"],
                names[a["category_id"]],
                False,
            )
            for a in anns
        ]


def _images_as_lvis_expects(tmp_path: Path, coco_fixtures: Path) -> Path:
    root = tmp_path / "coco2017"
    (root / "val2017").mkdir(parents=True)
    for jpg in (coco_fixtures / "val2017").glob("*.jpg"):
        shutil.copyfile(jpg, root / "val2017" / jpg.name)
    return root


def test_lvis_images_resolve_and_exports_honour_exhaustiveness(tmp_path: Path, coco_fixtures: Path) -> None:
    out = tmp_path / "lvis.jsonl"
    root = _images_as_lvis_expects(tmp_path, coco_fixtures)
    code, output, records, _ = ingest(
        "coco", "--flavor", "lvis", "--instances", LVIS, "--images", root, "--out", out
    )
    assert code == 0, output
    export_and_verify(out, tmp_path, "multi", ("bins", "grid"))
    # multi leaves each image's non-exhaustive category out; detect skips every record holding one
    res = gtok("export", out, "--scheme", "bins", "--task", "multi", "--out", tmp_path / "m")
    assert res.exit_code == 0, res.output
    labels_asked = set()
    for shard in (tmp_path / "m").glob("*.jsonl"):
        for line in shard.read_text().splitlines():
            labels_asked |= {
                (json.loads(line)["meta"]["record_id"], g["label"])
                for g in json.loads(line)["meta"]["regions"]
            }
    for rec in records:
        partial = set(rec["not_exhaustive_category_ids"])
        for r in rec["regions"]:
            assert ((rec["id"], r["label"]) in labels_asked) == (r["category_id"] not in partial)
    res = gtok(
        "export", out, "--scheme", "bins", "--task", "detect", "--out", tmp_path / "d", "--allow-empty"
    )
    assert res.exit_code == 0, res.output
    manifest = json.loads((tmp_path / "d" / "manifest.json").read_text())
    assert manifest["counts"]["skipped"] == {"record.not_exhaustive": len(records)}


def test_objects365_patch_folders_and_boxes_only(tmp_path: Path, coco_fixtures: Path) -> None:
    doc = json.loads(O365.read_text())
    images = tmp_path / "train"
    for img in doc["images"]:
        patch, name = img["file_name"].split("/")[-2:]
        (images / patch).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(coco_fixtures / "val2017" / f"{img['id']:012d}.jpg", images / patch / name)
    out = tmp_path / "o365.jsonl"
    code, output, records, summary = ingest(
        "coco", "--flavor", "objects365", "--instances", O365, "--images", images, "--out", out
    )
    assert code == 0, output
    assert summary is not None and reconciles(summary)
    assert [r["image"]["file"] for r in records] == [
        "/".join(i["file_name"].split("/")[-2:]) for i in sorted(doc["images"], key=lambda i: i["id"])
    ]
    assert all(r["mask"] is None for rec in records for r in rec["regions"])
    boxes = {a["id"]: a["bbox"] for a in doc["annotations"]}
    for rec in records:
        for r in rec["regions"]:
            x, y, w, h = boxes[r["ann_id"]]
            assert r["bbox"] == [x, y, x + w, y + h]
    export_and_verify(out, tmp_path, "detect", ("loc", "qwen2.5-vl"))


def _bad(src: Path, tmp_path: Path, change: Any) -> Path:
    doc = json.loads(src.read_text())
    change(doc)
    path = tmp_path / src.name
    path.write_text(json.dumps(doc))
    return path


BAD = [
    ("lvis", "no coco_url", lambda d: d["images"][0].pop("coco_url"), "image", "coco_url"),
    (
        "lvis",
        "wrong type",
        lambda d: d["images"][0].__setitem__("neg_category_ids", "1,2"),
        "image",
        "neg_category_ids",
    ),
    (
        "lvis",
        "missing key",
        lambda d: d["images"][0].pop("not_exhaustive_category_ids"),
        "image",
        "not_exhaustive_category_ids",
    ),
    (
        "lvis",
        "box outside",
        lambda d: d["annotations"][0].__setitem__("bbox", [0, 0, 9000, 4]),
        "annotation",
        "bbox",
    ),
    (
        "objects365",
        "duplicate id",
        lambda d: d["annotations"][1].__setitem__("id", d["annotations"][0]["id"]),
        "annotation",
        "field id",
    ),
]


@pytest.mark.parametrize(
    ("flavor", "case", "change", "unit", "named"), BAD, ids=[f"{b[0]}-{b[1]}" for b in BAD]
)
def test_bad_input_fails_or_is_a_counted_reject(
    tmp_path: Path, flavor: str, case: str, change: Any, unit: str, named: str
) -> None:
    path = _bad(LVIS if flavor == "lvis" else O365, tmp_path, change)
    args = ("coco", "--flavor", flavor, "--instances", path)
    code, output, _, _ = ingest(*args, "--out", tmp_path / "f.jsonl")
    assert code == 2 and named in output and path.name in output and "Traceback" not in output
    code, output, _, summary = ingest(*args, "--out", tmp_path / "s.jsonl", "--on-error", "skip")
    assert code == 0, output
    assert summary is not None and reconciles(summary)
    assert summary["units"][unit + "s"]["rejected"] >= 1


def test_truncated_file(tmp_path: Path) -> None:
    path = tmp_path / "lvis_v1_val.json"
    text = LVIS.read_text()
    path.write_text(text[: len(text) // 2])
    code, output, _, _ = ingest(
        "coco", "--flavor", "lvis", "--instances", path, "--out", tmp_path / "o.jsonl", "--on-error", "skip"
    )
    assert code == 2 and "not valid JSON" in output and path.name in output
