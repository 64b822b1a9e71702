"""`gtok ingest mdetr | refcoco-hf | grit` on small files in the published layouts (tests/data/README.md).

Expected boxes, spans and ids are read here from the same files with plain ``json`` / ``pyarrow`` and
converted by hand (COCO ``[x, y, w, h]`` → ``[x, y, x + w, y + h]``; GRIT ``x · width``, ``y · height``),
never taken from gtok's output. Each source's records are exported in two schemes and verified.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow.parquet as pq
import pytest
from _export_helpers import gtok

from gtok_cli.records import record_validator

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"
MDETR = DATA / "mdetr"
LMMS = DATA / "refcoco_hf" / "lmms-lab"
JXU = DATA / "refcoco_hf" / "jxu124" / "train-00000-of-00001.parquet"
GRIT = DATA / "grit" / "coyo_0_snappy.parquet"
VAL2017 = REPO / "sample_data" / "coco" / "val2017"
FLICKR = REPO / "sample_data" / "flickr30k"


def ingest(
    tmp_path: Path, *args: Any, name: str = "out.jsonl"
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    out = tmp_path / name
    res = gtok("ingest", *args, "--out", out, "--json")
    assert res.exit_code == 0, res.output
    records = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    validator = record_validator()
    for r in records:
        validator.validate(r)
    return records, orjson.loads(res.stdout)


def xyxy(box: list[float]) -> list[float]:
    x, y, w, h = box
    return [x, y, x + w, y + h]


# ---------------------------------------------------------------------------------------------- MDETR


def test_mdetr_refcoco_finetune_matches_the_file(tmp_path: Path) -> None:
    path = MDETR / "finetune_refcoco_testA.json"
    doc = json.loads(path.read_text())
    records, summary = ingest(tmp_path, "mdetr", "--annotations", path, "--images", VAL2017)
    assert summary["units"]["images"]["read"] == summary["units"]["images"]["kept"] == 6
    assert len(records) == len(doc["images"]) == 6
    anns = {a["image_id"]: a for a in doc["annotations"]}
    for rec, img in zip(records, doc["images"], strict=True):
        ann = anns[img["id"]]
        assert rec["id"] == f"mdetr:finetune_refcoco_testA:{img['id']}"
        assert (rec["task"], rec["dataset"], rec["split"], rec["text"]) == (
            "referring", "refcoco", "testA", img["caption"],
        )  # fmt: skip
        assert rec["image"] == {"file": img["file_name"], "width": 640, "height": 427, "id": 311002}
        (region,) = rec["regions"]
        assert region["bbox"] == xyxy(ann["bbox"])
        assert region["ann_id"] == ann["original_id"]  # the COCO annotation id, not MDETR's
        assert region["span"] == ann["tokens_positive"][0]
        assert region["phrase"] == img["caption"][slice(*ann["tokens_positive"][0])]
        assert region["label"] == "person"
        assert rec["source"]["sentence_id"] == img["sentence_id"]
        assert rec["source"]["image_id"] == img["original_img_id"]
    # by hand: "batter in red" (sentence 11) → root "batter", box 35.5,148.97 + 220.7x273.47 (ann 450473)
    assert records[0]["regions"][0]["phrase"] == "batter"
    assert records[0]["regions"][0]["bbox"] == [35.5, 148.97, 35.5 + 220.7, 148.97 + 273.47]


def test_mdetr_flickr_sizes_are_strings_and_boxes_sit_one_pixel_off_the_xml_reading(tmp_path: Path) -> None:
    path = MDETR / "final_flickr_separateGT_val.json"
    doc = json.loads(path.read_text())
    assert all(type(img["width"]) is str for img in doc["images"])  # the quirk under test
    records, _ = ingest(tmp_path, "mdetr", "--annotations", path)
    assert [r["task"] for r in records] == ["grounded_caption"] * 5
    assert all((r["image"]["width"], r["image"]["height"]) == (333, 500) for r in records)
    for rec, img in zip(records, doc["images"], strict=True):
        expected = sorted(
            (span, xyxy(a["bbox"]))
            for a in doc["annotations"]
            if a["image_id"] == img["id"]
            for span in a["tokens_positive"]
        )
        assert sorted((r["span"], r["bbox"]) for r in rec["regions"]) == expected
        assert all(r["phrase"] == rec["text"][r["span"][0] : r["span"][1]] for r in rec["regions"])
    # the same phrases read by `gtok ingest flickr30k` from the XML: x1, y1 one pixel less, x2, y2 equal
    f30k, _ = ingest(
        tmp_path, "flickr30k", "--annotations", FLICKR / "Annotations", "--sentences", FLICKR / "Sentences",
        name="f30k.jsonl",
    )  # fmt: skip
    for ours, theirs in zip(records, f30k, strict=True):
        assert ours["text"] == theirs["text"]
        a = sorted((r["span"], r["bbox"]) for r in ours["regions"])
        b = sorted((r["span"], r["bbox"]) for r in theirs["regions"])
        assert [s for s, _ in a] == [s for s, _ in b]
        assert [[x1 - 1, y1 - 1, x2, y2] for _, (x1, y1, x2, y2) in a] == [box for _, box in b]


def test_mdetr_mixed_keeps_data_source_and_needs_no_categories(tmp_path: Path) -> None:
    records, _ = ingest(tmp_path, "mdetr", "--annotations", MDETR / "final_mixed_train.json")
    coco, vg = records
    assert coco["split"] == vg["split"] == "train"
    assert (coco["source"]["data_source"], vg["source"]["data_source"]) == ("coco", "vg")
    assert [r["phrase"] for r in coco["regions"]] == ["A man", "a white sink"]
    assert coco["regions"][1]["bbox"] == [305.76, 360.41, 305.76 + 250.12, 360.41 + 60.65]
    assert vg["image"] == {"file": "1.jpg", "width": 800, "height": 600, "id": 1}
    assert vg["regions"][0]["bbox"] == [421.0, 91.0, 461.0, 151.0]


# ---------------------------------------------------------------------------------------------- refcoco-hf


def test_lmms_lab_rows_one_record_per_answer(tmp_path: Path) -> None:
    table = pq.read_table(LMMS / "testA-00000-of-00001.parquet").to_pylist()
    extracted = tmp_path / "images"
    records, summary = ingest(
        tmp_path, "refcoco-hf", "--layout", "lmms-lab", "--dataset", "refcoco", "--parquet", LMMS,
        "--images", VAL2017, "--extract-images", extracted,
    )  # fmt: skip
    assert summary["units"]["files"]["read"] == 2 and summary["images_extracted"] == 1
    assert summary["units"]["expressions"]["read"] == 8  # 6 answers in testA, 2 in val
    test_a = [r for r in records if r["split"] == "testA"]
    assert [r["text"] for r in test_a] == [a for row in table for a in row["answer"]]
    by_qid = {row["question_id"]: row for row in table}
    for rec in test_a:
        row = by_qid[rec["source"]["question_id"]]
        (region,) = rec["regions"]
        # the file's float32 values, read independently: ours equal them as float32
        x, y, w, h = row["bbox"]
        assert np.float32(region["bbox"][0]) == np.float32(x) and np.float32(region["bbox"][1]) == np.float32(
            y
        )
        assert region["bbox"][2] == pytest.approx(x + w, abs=1e-4)
        assert region["bbox"][3] == pytest.approx(y + h, abs=1e-4)
        assert np.array_equal(np.float32(region["mask"][0]), np.float32(row["segmentation"]))
        assert rec["image"] == {"file": row["file_name"], "width": 640, "height": 427, "id": 311002}
    # shortest decimals: the COCO annotation's own numbers come back (ann 450473: bbox 35.5, 148.97, ...)
    assert test_a[0]["regions"][0]["bbox"][:2] == [35.5, 148.97]
    (image,) = extracted.iterdir()
    assert image.name == "COCO_train2014_000000311002.jpg"
    assert image.read_bytes() == table[0]["image"]["bytes"]
    # the val row embeds no image: its size is read from --images (000000255165.jpg is 640x480)
    val = [r for r in records if r["split"] == "val"]
    assert [r["image"] for r in val] == [{"file": "000000255165.jpg", "width": 640, "height": 480,
                                          "id": "000000255165.jpg"}] * 2  # fmt: skip


def test_lmms_lab_row_without_image_needs_images(tmp_path: Path) -> None:
    res = gtok(
        "ingest", "refcoco-hf", "--layout", "lmms-lab", "--dataset", "refcoco", "--parquet",
        LMMS / "val-00000-of-00001.parquet", "--out", tmp_path / "o.jsonl",
    )  # fmt: skip
    assert res.exit_code == 2
    assert "field image" in res.stderr and "no embedded image" in res.stderr
    records, _ = ingest(
        tmp_path, "refcoco-hf", "--layout", "lmms-lab", "--dataset", "refcoco", "--parquet",
        LMMS / "val-00000-of-00001.parquet", "--images", VAL2017,
    )  # fmt: skip
    assert {(r["image"]["width"], r["image"]["height"]) for r in records} == {(640, 480)}  # 000000255165.jpg


def test_jxu124_rows_match_raw_anns(tmp_path: Path) -> None:
    rows = pq.read_table(JXU).to_pylist()
    records, summary = ingest(
        tmp_path,
        "refcoco-hf",
        "--layout",
        "jxu124",
        "--dataset",
        "refcoco",
        "--parquet",
        JXU,
        "--images",
        VAL2017,
    )
    assert summary["units"]["rows"]["kept"] == 12 and len(records) == sum(len(r["sentences"]) for r in rows)
    by_ref = {row["ref_id"]: row for row in rows}
    for rec in records:
        row = by_ref[rec["source"]["ref_id"]]
        ann = json.loads(row["raw_anns"])
        info = json.loads(row["raw_image_info"])
        (region,) = rec["regions"]
        assert region["bbox"] == row["bbox"] == xyxy(ann["bbox"])
        assert region["mask"] == ann["segmentation"]
        assert region["ann_id"] == row["ann_id"]
        assert rec["image"] == {"file": info["file_name"], "width": info["width"], "height": info["height"],
                                "id": row["image_id"]}  # fmt: skip
        assert rec["split"] == row["split"]
        sent = next(s for s in row["sentences"] if s["sent_id"] == rec["source"]["sent_id"])
        assert rec["text"] == sent["sent"] and rec["source"]["raw"] == sent["raw"]
    # --split keeps one refer split
    val, _ = ingest(
        tmp_path, "refcoco-hf", "--layout", "jxu124", "--dataset", "refcoco", "--parquet", JXU,
        "--split", "val",
        name="val.jsonl",
    )  # fmt: skip
    assert {r["split"] for r in val} == {"val"} and len(val) == 5


# ---------------------------------------------------------------------------------------------- GRIT


def test_grit_card_instance_normalised_boxes(tmp_path: Path) -> None:
    rows = pq.read_table(GRIT).to_pylist()
    records, summary = ingest(tmp_path, "grit", "--parquet", GRIT)
    assert summary["units"]["spans"] == {**summary["units"]["spans"], "read": 4, "kept": 4}
    card = records[0]
    row = rows[0]
    assert card["id"] == "grit:000373938:noun_chunks"
    assert card["image"] == {"file": "00037/000373938.jpg", "width": 1024, "height": 693, "id": 1795296605919}
    expected = sorted(
        ([int(s), int(e)], [x1 * 1024, y1 * 693, x2 * 1024, y2 * 693], conf)
        for s, e, x1, y1, x2, y2, conf in row["noun_chunks"]
    )
    assert [(r["span"], r["bbox"], r["conf"]) for r in card["regions"]] == expected
    assert [r["phrase"] for r in card["regions"]] == ["a wire hanger", "a paper cover"]


def test_grit_min_conf_and_both_span_lists(tmp_path: Path) -> None:
    records, summary = ingest(tmp_path, "grit", "--parquet", GRIT, "--spans", "both", "--min-conf", "0.5")
    assert [r["id"] for r in records] == [
        "grit:000373938:noun_chunks", "grit:000373938:ref_exps", "grit:000000001:noun_chunks",
        "grit:000000001:ref_exps",
    ]  # fmt: skip
    spans = summary["units"]["spans"]
    assert (spans["read"], spans["kept"], spans["excluded_by_reason"]) == (7, 6, {"low_conf": 1})  # hair: 0.4
    flickr = records[2]
    assert [r["phrase"] for r in flickr["regions"]] == ["A girl"]
    assert flickr["regions"][0]["bbox"] == pytest.approx([106.0, 154.0, 287.0, 376.0])


# ------------------------------------------------------------------------------------------ export + verify


@pytest.mark.parametrize(
    ("args", "task", "schemes"),
    [
        (["mdetr", "--annotations", MDETR / "finetune_refcoco_testA.json"], "rec", ("grid", "qwen2-vl")),
        (["mdetr", "--annotations", MDETR / "final_flickr_separateGT_val.json"], "grounded-caption",
         ("kosmos2", "loc")),
        (["refcoco-hf", "--layout", "lmms-lab", "--dataset", "refcoco", "--parquet",
          LMMS / "testA-00000-of-00001.parquet"], "rec", ("bins", "shikra")),
        (["refcoco-hf", "--layout", "jxu124", "--dataset", "refcoco", "--parquet", JXU], "reg",
         ("grid", "ferret")),
        (["grit", "--parquet", GRIT], "grounded-caption", ("kosmos2", "qwen-vl")),
    ],
)  # fmt: skip
def test_records_export_and_verify(
    tmp_path: Path, args: list[Any], task: str, schemes: tuple[str, str]
) -> None:
    records = tmp_path / "records.jsonl"
    assert gtok("ingest", *args, "--out", records).exit_code == 0
    for scheme in schemes:
        out = tmp_path / scheme
        res = gtok("export", records, "--scheme", scheme, "--task", task, "--out", out)
        assert res.exit_code == 0, res.output
        manifest = orjson.loads((out / "manifest.json").read_bytes())
        assert manifest["counts"]["written"] == manifest["counts"]["read"] > 0, manifest["counts"]
        res = gtok("verify", out, "--json")
        assert res.exit_code == 0, res.output
        assert orjson.loads(res.output)["ok"]


# ------------------------------------------------------------------------------------------ reading paths


def test_mdetr_sliced_reading_equals_the_whole_document(monkeypatch: pytest.MonkeyPatch) -> None:
    """Slices of a few hundred bytes (many per file) give exactly what one parse of the file gives."""
    import gtok_cli.ingest.json_chunks as json_chunks
    from gtok_cli.ingest import mdetr

    path = MDETR / "final_flickr_separateGT_val.json"
    whole = list(mdetr.iter_mdetr(path))
    monkeypatch.setattr(json_chunks, "CHUNK_BYTES", 300)
    monkeypatch.setattr(json_chunks, "WINDOW_BYTES", 200)
    doc = json_chunks.split_array(path.read_bytes(), "annotations")
    assert len(doc.bounds) > 3  # really sliced
    assert list(mdetr.iter_mdetr(path)) == whole
    monkeypatch.setattr(mdetr, "split_array", lambda *a: (_ for _ in ()).throw(json_chunks.NotChunkable("x")))
    assert list(mdetr.iter_mdetr(path)) == whole


def test_parquet_sources_without_pyarrow_name_the_extra(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    for args in (["grit", "--parquet", GRIT], ["refcoco-hf", "--layout", "jxu124", "--dataset", "refcoco",
                                                "--parquet", JXU]):  # fmt: skip
        res = gtok("ingest", *args, "--out", tmp_path / "o.jsonl")
        assert res.exit_code == 2, res.output
        line = res.stderr.strip()
        assert line.startswith(f"gtok: error: gtok ingest {args[0]} ") and "\n" not in line
        assert line.endswith("needs the [parquet] extra (cannot import pyarrow): pip install -e '.[parquet]'")
        assert not (tmp_path / "o.jsonl").exists()


def test_extract_images_never_replaces_a_different_file(tmp_path: Path) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "COCO_train2014_000000311002.jpg").write_bytes(b"another image")
    res = gtok(
        "ingest", "refcoco-hf", "--layout", "lmms-lab", "--dataset", "refcoco", "--parquet",
        LMMS / "testA-00000-of-00001.parquet", "--extract-images", folder, "--out", tmp_path / "o.jsonl",
    )  # fmt: skip
    assert res.exit_code == 2
    assert "a different image of this name is already in --extract-images" in res.stderr
    assert (folder / "COCO_train2014_000000311002.jpg").read_bytes() == b"another image"


EDGE_ANNOTATIONS = [
    {
        "id": 7,
        "category_id": 1,
        "bbox": [-0.5, 0, 10, 10],
        "tokens_positive": [[0, 3]],
    },  # clamped by the check
    {"id": 7, "category_id": 1, "bbox": [0, 0, 10, 10], "tokens_positive": [(0, 3)]},
    {"id": 7, "category_id": 1, "bbox": [0, 0, 10, 10], "tokens_positive": [[0, 3]], "segmentation": []},
    {"id": 7, "category_id": 1, "bbox": [0, 0, 10, 10], "tokens_positive": [], "iscrowd": True},
    {"id": 7, "category_id": 1, "bbox": [0, 0, 10, 10], "tokens_positive": [[0, 3]], "original_id": 9},
]


def test_mdetr_fast_annotation_agrees_with_the_field_by_field_check() -> None:
    from gtok_cli.errors import InputError
    from gtok_cli.ingest.mdetr import check_annotation, check_entry, fast_annotation

    pairs = []
    for path in sorted(MDETR.glob("*.json")):
        doc = json.loads(path.read_text())
        entries = {img["id"]: check_entry(img, k, str(path)) for k, img in enumerate(doc["images"])}
        pairs += [(ann, entries[ann["image_id"]]) for ann in doc["annotations"]]
    entry = next(iter(entries.values()))
    pairs += [(ann, entry) for ann in EDGE_ANNOTATIONS]
    fast_taken = 0
    for ann, entry in pairs:
        fast = fast_annotation(ann, entry)
        try:
            checked = check_annotation(ann, entry, "f")
        except InputError:
            assert fast is None
            continue
        if fast is not None:
            fast_taken += 1
            assert fast == checked
    assert fast_taken >= len(pairs) - len(EDGE_ANNOTATIONS)  # every genuine-layout annotation took it


def test_lmms_lab_split_comes_from_the_shard_name_or_split(tmp_path: Path) -> None:
    renamed = tmp_path / "refcoco.parquet"
    renamed.write_bytes((LMMS / "testA-00000-of-00001.parquet").read_bytes())
    args = ["refcoco-hf", "--layout", "lmms-lab", "--dataset", "refcoco", "--parquet", renamed]
    res = gtok("ingest", *args, "--out", tmp_path / "o.jsonl")
    assert res.exit_code == 2 and "cannot tell the split from the name 'refcoco.parquet'" in res.stderr
    records, _ = ingest(tmp_path, *args, "--split", "testA")
    assert {r["split"] for r in records} == {"testA"}
    assert records[0]["id"] == "refcoco:lmms-lab:testA:450473:0"


def test_progress_bar_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import sys

    from gtok_cli.ingest.progress import progress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    for stream, drawn in ((io.StringIO(), False), (Terminal(), True)):
        monkeypatch.setattr(sys, "stderr", stream)
        assert list(progress(iter(range(5)), total=5, desc="rows", unit=" rows")) == [0, 1, 2, 3, 4]
        assert ("rows" in stream.getvalue()) is drawn


def test_extract_images_needs_embedded_images(tmp_path: Path) -> None:
    for args in (["grit", "--parquet", GRIT], ["refcoco-hf", "--layout", "jxu124", "--dataset", "refcoco",
                                                "--parquet", JXU]):  # fmt: skip
        res = gtok("ingest", *args, "--extract-images", tmp_path / "imgs", "--out", tmp_path / "o.jsonl")
        assert res.exit_code == 2 and "--extract-images:" in res.stderr, res.output
        assert not (tmp_path / "imgs").exists()
