"""`--format swift`: ms-swift's grounding rows, checked against the row shape its documentation gives and read
back with `datasets` (ms-swift itself pins datasets<4.8.5, transformers<5.20 and trl<1.0, which the test
environment's newer pins exclude, so its loader is not imported here).

The documented shape (ms-swift docs/source_en/Customization/Custom-dataset.md, "Grounding"):
``{"messages": [... "<ref-object>" ... "<bbox>" ...], "images": [path], "objects": {"ref": [...],
"bbox": [[x1, y1, x2, y2] | [x, y], ...], "bbox_type": "real" | "norm1", "image_id": [...]}}``; the
template fills ``<ref-object>`` from ``ref`` and ``<bbox>`` from ``bbox`` in order across all messages
(``Template._pre_tokenize`` in swift/template/base.py).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
import pytest
from _export_helpers import gtok, referring, region, write_records

from gtok_cli.codecs import get_codec
from gtok_cli.trainer_formats import get_format

SWIFT = get_format("swift")


def dog_record() -> dict[str, Any]:
    """The README's worked example: 640x480, the dog at [150, 100, 400, 350]."""
    return {
        "id": "dog-1",
        "dataset": "refcoco",
        "split": "val",
        "task": "referring",
        "text": "dog",
        "image": {"file": "dog.jpg", "width": 640, "height": 480, "id": 1},
        "regions": [region([150, 100, 400, 350], label="dog")],
        "source": {},
    }


def instances(k: int) -> dict[str, Any]:
    regions = [region([10.0 + k, 20.0, 110.5, 220.25], label="cat", ann_id=1)]
    regions.append(region([300.0, 40.0, 639.0, 479.0], label="dog", ann_id=2))
    regions.append(region([5.0, 300.0, 50.0, 400.0], label="cat", ann_id=3))
    return {
        "id": f"coco:{k}",
        "dataset": "coco",
        "split": "val",
        "task": "instances",
        "text": None,
        "image": {"file": f"img-{k}.jpg", "width": 640, "height": 480, "id": k},
        "regions": regions,
        "source": {},
    }


def export_swift(
    tmp_path: Path, records: list[dict[str, Any]], *args: str
) -> tuple[Path, list[dict[str, Any]]]:
    src = write_records(tmp_path / "r.jsonl", records)
    out = tmp_path / "out"
    res = gtok("export", src, "-f", "swift", "--out", out, *args)
    assert res.exit_code == 0, res.output
    shard = next(out.glob("gtok-*.jsonl"))
    return out, [orjson.loads(x) for x in shard.read_bytes().splitlines()]


def check_documented_shape(line: dict[str, Any]) -> None:
    """The row shape of ms-swift's grounding documentation, item by item."""
    assert list(line)[:3] == ["messages", "images", "objects"]
    assert all(set(m) == {"role", "content"} for m in line["messages"])
    assert line["messages"][0]["content"].startswith("<image>")
    assert len(line["images"]) == 1 and isinstance(line["images"][0], str)
    objects = line["objects"]
    assert set(objects) == {"ref", "bbox", "bbox_type", "image_id"}
    assert objects["bbox_type"] == "real"
    text = "".join(m["content"] for m in line["messages"])
    assert text.count("<ref-object>") == len(objects["ref"])
    assert text.count("<bbox>") == len(objects["bbox"])
    assert all(len(b) in (2, 4) for b in objects["bbox"])
    assert objects["image_id"] == [0] * len(objects["bbox"])


def truth_coords(meta: dict[str, Any]) -> list[list[float]]:
    return [r["point"] if r["kind"] == "point" else r["bbox"] for r in meta["regions"]]


def test_worked_example_row(tmp_path: Path) -> None:
    _, (line,) = export_swift(tmp_path, [dog_record()], "-s", "qwen2-vl", "-t", "rec")
    check_documented_shape(line)
    assert line["messages"][1] == {"role": "assistant", "content": "<ref-object><bbox>"}
    assert line["objects"] == {
        "ref": ["dog"],
        "bbox": [[150.0, 100.0, 400.0, 350.0]],
        "bbox_type": "real",
        "image_id": [0],
    }


def test_template_rendering_equals_the_scheme_text(tmp_path: Path) -> None:
    """ms-swift's Qwen2-VL template (swift/template/templates/qwen.py, bbox format "legacy", norm_bbox
    "norm1000"): ``replace_ref`` → ``<|object_ref_start|>ref<|object_ref_end|>``, ``replace_bbox`` →
    ``<|box_start|>(x1,y1),(x2,y2)<|box_end|>`` after ``normalize_bbox``: ``int(round(x / width * 1000))``.
    By hand for the dog: 150/640·1000 = 234.375 → 234, 100/480·1000 = 208.3 → 208, 400/640·1000 = 625,
    350/480·1000 = 729.2 → 729: the text gtok's qwen2-vl scheme writes, so a model trained on the rows answers
    in text the manifest's scheme decodes."""
    _, (line,) = export_swift(tmp_path, [dog_record()], "-s", "qwen2-vl", "-t", "rec")
    w, h = line["meta"]["image_size"]

    def bbox(b: list[float]) -> str:
        x1, y1, x2, y2 = (round(v / e * 1000) for v, e in zip(b, (w, h, w, h), strict=True))
        return f"<|box_start|>({x1},{y1}),({x2},{y2})<|box_end|>"

    turns = SWIFT.fill(line, ref=lambda r: f"<|object_ref_start|>{r}<|object_ref_end|>", bbox=bbox)
    answer = "<|object_ref_start|>dog<|object_ref_end|><|box_start|>(234,208),(625,729)<|box_end|>"
    assert turns[1] == ("assistant", answer)
    assert get_codec("qwen2-vl").encode_box([150, 100, 400, 350], (640, 480), "dog") == answer


@pytest.mark.parametrize(
    ("scheme", "task", "make", "answer"),
    [
        ("qwen2-vl", "rec", referring, re.compile(r"<ref-object><bbox>")),
        ("bins", "rec", referring, re.compile(r"<bbox>")),  # the scheme writes no label: no ref
        ("bins", "reg", referring, re.compile(r"the person number \d+")),  # the <bbox> is in the question
        ("qwen2.5-vl", "point", referring, re.compile(r"<ref-object><bbox>")),  # a point: [x, y]
        ("bins", "detect", instances, re.compile(r"cat <bbox>; dog <bbox>; cat <bbox>")),
        ("qwen2.5-vl", "detect", instances, re.compile(r"(<ref-object><bbox>){3}")),
        ("qwen2-vl", "multi", instances, re.compile(r"<ref-object><bbox><bbox>|<ref-object><bbox>")),
    ],
)
def test_rows_have_the_documented_shape_and_the_truth(
    tmp_path: Path, scheme: str, task: str, make: Any, answer: re.Pattern[str]
) -> None:
    out, lines = export_swift(tmp_path, [make(k) for k in range(4)], "-s", scheme, "-t", task)
    for line in lines:
        check_documented_shape(line)
        assert line["objects"]["bbox"] == truth_coords(line["meta"])
        assert answer.fullmatch(line["messages"][-1]["content"]), line["messages"][-1]["content"]
    res = gtok("verify", out)
    assert res.exit_code == 0, res.output
    res = gtok("stats", out, "--json")
    assert res.exit_code == 0, res.output
    stats = orjson.loads(res.output)  # the placeholders rendered with the scheme decode to the truth
    assert stats["round_trip"]["problems"] == {}
    assert stats["round_trip"]["error_px"]["count"] == sum(len(ln["objects"]["bbox"]) for ln in lines)


def test_loaded_with_datasets_objects_equal_the_truth(tmp_path: Path) -> None:
    import datasets

    records = [dog_record(), *[referring(k) for k in range(3)]]
    out, _ = export_swift(tmp_path, records, "-s", "qwen2-vl", "-t", "rec")
    shard = next(out.glob("gtok-*.jsonl"))
    ds = datasets.load_dataset("json", data_files=str(shard), split="train")
    assert len(ds) == len(records)
    for row, record in zip(ds, records, strict=True):
        assert row["images"] == [record["image"]["file"]]
        objects = row["objects"]
        assert objects["bbox"] == [[float(v) for v in r["bbox"]] for r in record["regions"]]
        assert objects["ref"] == [record["text"]]
        assert objects["bbox_type"] == "real" and objects["image_id"] == [0]
        assert [m["role"] for m in row["messages"]] == ["user", "assistant"]


def test_verify_catches_objects_that_differ(tmp_path: Path) -> None:
    out, _ = export_swift(tmp_path, [referring(k) for k in range(3)], "-s", "qwen2-vl", "-t", "rec")
    shard = next(out.glob("gtok-*.jsonl"))
    manifest = orjson.loads((out / "manifest.json").read_bytes())
    cases = {
        "moved box": lambda ln: ln["objects"]["bbox"][0].__setitem__(0, ln["objects"]["bbox"][0][0] + 0.5),
        "extra placeholder": lambda ln: ln["messages"][1].__setitem__("content", "<ref-object><bbox><bbox>"),
        "image_id": lambda ln: ln["objects"].__setitem__("image_id", []),
    }
    expected = {
        "moved box": "region.error",
        "extra placeholder": "objects.placeholders",
        "image_id": "objects",
    }
    original = shard.read_bytes()
    for name, change in cases.items():
        lines = [orjson.loads(x) for x in original.splitlines()]
        change(lines[1])
        data = b"".join(orjson.dumps(x) + b"\n" for x in lines)
        shard.write_bytes(data)
        res = gtok("verify", out, "--json")
        assert res.exit_code == 1, name
        report = orjson.loads(res.output)
        checks = {f["check"] for f in report["failures"] if f["line"] == 2}
        assert any(c.startswith(expected[name]) for c in checks), (name, checks)
    shard.write_bytes(original)
    (out / "manifest.json").write_bytes(orjson.dumps(manifest))
    assert gtok("verify", out).exit_code == 0


def test_placeholder_in_a_record_text_is_refused(tmp_path: Path) -> None:
    record = referring(0)
    record["text"] = "the <bbox> on the left"
    src = write_records(tmp_path / "r.jsonl", [record])
    res = gtok("export", src, "-s", "bins", "-t", "rec", "-f", "swift", "--out", tmp_path / "o")
    assert res.exit_code == 2
    assert "record ref-0" in res.output and "<bbox>" in res.output


@pytest.mark.parametrize("args", [("--shape", "mask", "-s", "grid"), ("--refine", "-s", "grid")])
def test_masks_and_refinement_are_not_swift_objects(tmp_path: Path, args: tuple[str, ...]) -> None:
    src = write_records(tmp_path / "r.jsonl", [referring(0)])
    res = gtok("export", src, "-t", "rec", "-f", "swift", "--out", tmp_path / "o", *args)
    assert res.exit_code == 2
    assert "ms-swift objects" in res.output


def test_object_shapes_by_role_and_problems() -> None:
    line = {
        "messages": [
            {"role": "user", "content": "<image>What is <bbox>?"},
            {"role": "assistant", "content": "<ref-object> at <bbox> and <bbox>"},
        ],
        "images": ["a.jpg"],
        "objects": {"ref": ["dog"], "bbox": [[1, 2, 3, 4], [5, 6], [7, 8, 9, 10]], "bbox_type": "real",
                    "image_id": [0, 0, 0]},
    }  # fmt: skip
    assert SWIFT.object_shapes(line, "user") == ([(1.0, 2.0, 3.0, 4.0)], [])
    assert SWIFT.object_shapes(line, "assistant") == ([(5.0, 6.0), (7.0, 8.0, 9.0, 10.0)], [])
    line["objects"]["bbox_type"] = "norm1"
    line["objects"]["ref"] = []
    _, problems = SWIFT.object_shapes(line, "assistant")
    assert len(problems) == 2 and "norm1" in problems[1] and "1 <ref-object>" in problems[0]


def test_decodable_turns_render_each_ref_and_its_boxes_as_one_grounding() -> None:
    from gtok_cli.rendered import decodable_turns

    line = {
        "messages": [
            {"role": "user", "content": "<image>Where is <ref-object>?"},
            {"role": "assistant", "content": "<ref-object><bbox><bbox> and <bbox>"},
        ],
        "images": ["a.jpg"],
        "objects": {"ref": ["dogs", "dog"],
                    "bbox": [[150, 100, 400, 350], [0, 0, 64, 48], [320, 240, 321, 241]],
                    "bbox_type": "real", "image_id": [0, 0, 0]},
    }  # fmt: skip
    codec = get_codec("qwen2-vl")
    turns = decodable_turns(SWIFT, line, codec, (640, 480))
    # a lone ref is its label; ref + 2 boxes one grounding: 0/640 → 0, 64/640·1000 = 100, 48/480·1000 = 100
    two = "<|object_ref_start|>dog<|object_ref_end|><|box_start|>(234,208),(625,729)<|box_end|>"
    two += "<|box_start|>(0,0),(100,100)<|box_end|>"
    assert turns[0] == ("user", "Where is dogs?")
    # 320/640·1000 = 500, 240/480·1000 = 500, 321/640·1000 = 501.56 → 502, 241/480·1000 = 502.08 → 502
    assert turns[1] == ("assistant", two + " and <|box_start|>(500,500),(502,502)<|box_end|>")
    messages = get_format("messages")
    assert decodable_turns(messages, line, codec, (640, 480)) == messages.turns(line)  # other formats: as is
