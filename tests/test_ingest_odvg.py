"""gtok ingest odvg on a file in the ODVG layout (tests/data/odvg: COCO val2017 boxes and captions
re-expressed as ODVG detection and grounding lines, see tests/data/README.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from _source_helpers import DATA, export_and_verify, ingest, reconciles, rejects

ODVG = DATA / "odvg"
ANN = ODVG / "coco_val_sample_odvg.jsonl"
LABELS = ODVG / "label_map.json"


def lines() -> list[dict[str, Any]]:
    return [json.loads(line) for line in ANN.read_text().splitlines()]


def test_records_equal_an_independent_reading(tmp_path: Path) -> None:
    code, output, records, summary = ingest(
        "odvg", "--annotations", ANN, "--label-map", LABELS, "--out", tmp_path / "o.jsonl"
    )
    assert code == 0, output
    assert summary is not None and reconciles(summary)
    names = json.loads(LABELS.read_text())
    by_id = {r["id"]: r for r in records}
    for n, line in enumerate(lines(), 1):
        if "detection" in line:
            rec = by_id[f"odvg:coco_val_sample_odvg:{n}:detection"]
            assert rec["task"] == "instances" and rec["image"]["file"] == line["filename"]
            assert [(r["bbox"], r["label"], r["category_id"]) for r in rec["regions"]] == [
                (i["bbox"], names[str(i["label"])], i["label"]) for i in line["detection"]["instances"]
            ]
        if "grounding" in line:
            rec = by_id[f"odvg:coco_val_sample_odvg:{n}:grounding"]
            g = line["grounding"]
            assert rec["task"] == "grounded_caption" and rec["text"] == g["caption"]
            want = []
            for region in g["regions"]:
                boxes = region["bbox"] if isinstance(region["bbox"][0], list) else [region["bbox"]]
                want += [(b, region["phrase"], region["tokens_positive"][0]) for b in boxes]
            assert [(r["bbox"], r["phrase"], r["span"]) for r in rec["regions"]] == want
            for r in rec["regions"]:
                assert g["caption"][r["span"][0] : r["span"][1]] == r["phrase"]


def test_category_names_without_label_map(tmp_path: Path) -> None:
    code, _, records, _ = ingest("odvg", "--annotations", ANN, "--out", tmp_path / "o.jsonl")
    assert code == 0
    first = lines()[0]["detection"]["instances"]
    assert [r["label"] for r in records[0]["regions"]] == [i["category"] for i in first]


def test_span_found_when_tokens_positive_is_absent(tmp_path: Path) -> None:
    line = {
        "filename": "a.jpg",
        "height": 100,
        "width": 100,
        "grounding": {
            "caption": "a dog and a cat",
            "regions": [
                {"bbox": [1, 2, 30, 40], "phrase": "a cat"},
                {"bbox": [5, 5, 9, 9], "phrase": "a bird"},
            ],
        },
    }
    path = tmp_path / "g.jsonl"
    path.write_text(json.dumps(line) + "\n")
    code, _, [rec], _ = ingest("odvg", "--annotations", path, "--out", tmp_path / "o.jsonl")
    assert code == 0
    assert [r["span"] for r in rec["regions"]] == [[10, 15], None]


def test_exports_and_verifies(tmp_path: Path) -> None:
    out = tmp_path / "o.jsonl"
    assert ingest("odvg", "--annotations", ANN, "--label-map", LABELS, "--out", out)[0] == 0
    export_and_verify(out, tmp_path, "detect", ("bins", "qwen2.5-vl"))
    export_and_verify(out, tmp_path, "grounded-caption", ("kosmos2", "grid"))


def _edit(n: int, change: Any) -> Any:
    def run(data: list[dict[str, Any]]) -> None:
        change(data[n])

    return run


BAD = [
    ("wrong type", _edit(0, lambda d: d.__setitem__("width", "640")), "field.type", "width"),
    (
        "missing key",
        _edit(0, lambda d: d["detection"]["instances"][0].pop("label")),
        "field.missing",
        "label",
    ),
    (
        "span outside",
        _edit(3, lambda d: d["grounding"]["regions"][0].__setitem__("tokens_positive", [[40, 400]])),
        "span.outside",
        "tokens_positive",
    ),
    (
        "box outside",
        _edit(0, lambda d: d["detection"]["instances"][0].__setitem__("bbox", [0, 0, 900, 10])),
        "bbox.outside",
        "bbox",
    ),
    (
        "duplicate id",
        _edit(1, lambda d: d.__setitem__("filename", "000000000139.jpg")),
        "id.duplicate",
        "filename",
    ),
    (
        "unknown label",
        _edit(0, lambda d: d["detection"]["instances"][0].__setitem__("label", 999)),
        "label.unknown",
        "label",
    ),
]


@pytest.mark.parametrize(("case", "change", "reason", "named"), BAD, ids=[b[0] for b in BAD])
def test_bad_line_fails_or_is_a_counted_reject(
    tmp_path: Path, case: str, change: Any, reason: str, named: str
) -> None:
    data = lines()
    assert "grounding" in data[3]
    change(data)
    path = tmp_path / "bad.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in data))
    args = ("odvg", "--annotations", path, "--label-map", LABELS)
    code, output, _, _ = ingest(*args, "--out", tmp_path / "f.jsonl")
    assert code == 2 and named in output and "bad.jsonl" in output and "Traceback" not in output
    code, output, records, summary = ingest(*args, "--out", tmp_path / "s.jsonl", "--on-error", "skip")
    assert code == 0, output
    assert summary is not None and reconciles(summary)
    assert summary["units"]["lines"]["rejected_by_reason"] == {reason: 1}
    [line] = rejects(tmp_path / "s.jsonl.rejects.jsonl")
    assert line["reason"] == reason and line["item"] == "line"
    assert len(records) == len(data) - 1


def test_truncated_file(tmp_path: Path) -> None:
    text = ANN.read_text()
    path = tmp_path / "t.jsonl"
    path.write_text(text[: len(text) - 40])
    code, output, _, _ = ingest("odvg", "--annotations", path, "--out", tmp_path / "f.jsonl")
    assert code == 2 and "ends inside this line" in output
    code, _, records, summary = ingest(
        "odvg", "--annotations", path, "--out", tmp_path / "s.jsonl", "--on-error", "skip"
    )
    assert code == 0 and summary is not None and reconciles(summary)
    assert summary["units"]["lines"]["rejected_by_reason"] == {"json.truncated": 1}
    assert len(records) == len(text.splitlines()) - 1


def test_bad_label_map(tmp_path: Path) -> None:
    path = tmp_path / "labels.json"
    path.write_text(json.dumps({"zero": "person"}))
    code, output, _, _ = ingest(
        "odvg", "--annotations", ANN, "--label-map", path, "--out", tmp_path / "o.jsonl"
    )
    assert code == 2 and "labels.json" in output
