"""Units of export/verify: interior points, phrasing choice, the compiled schema, trainer loaders."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from _export_helpers import gtok, referring, write_records
from hypothesis import given, settings
from hypothesis import strategies as st

from gtok_cli.export.points import _squared_edt_numpy, interior_point, pole_of_inaccessibility, squared_edt
from gtok_cli.export.templates import choice_index, load_templates
from gtok_cli.schemas import load_schema
from gtok_cli.verify.fastschema import compile_schema


# ---- interior point ----------------------------------------------------------------------------------------
def _rect(h: int, w: int, rows: slice, cols: slice) -> np.ndarray:
    m = np.zeros((h, w), dtype=bool)
    m[rows, cols] = True
    return m


@pytest.mark.parametrize(
    ("mask", "expected"),
    [
        # 3×5 block at rows 1..3, cols 1..5 of 5×7: depth 2 at row 2, cols 2..4; first (row-major) is col 2
        (_rect(5, 7, slice(1, 4), slice(1, 6)), (2.5, 2.5)),
        # one pixel
        (_rect(4, 4, slice(2, 3), slice(1, 2)), (1.5, 2.5)),
        # touching the image border: the border counts as boundary, so the 3×3 block's centre wins
        (_rect(3, 3, slice(0, 3), slice(0, 3)), (1.5, 1.5)),
        # L shape: a 5×5 block plus a 1-px arm along row 4; deepest is pixel (2, 2) of the block (d = 3)
        (_rect(5, 9, slice(0, 5), slice(0, 5)) | _rect(5, 9, slice(4, 5), slice(0, 9)), (2.5, 2.5)),
    ],
)
def test_pole_of_inaccessibility_table(mask: np.ndarray, expected: tuple[float, float]) -> None:
    assert pole_of_inaccessibility(mask) == expected


def test_pole_of_empty_mask_is_none() -> None:
    assert pole_of_inaccessibility(np.zeros((3, 3), dtype=bool)) is None


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.booleans(), min_size=6, max_size=6), min_size=1, max_size=7))
def test_numpy_edt_equals_scipy(rows: list[list[bool]]) -> None:
    m = np.asarray(rows, dtype=bool)
    assert np.array_equal(_squared_edt_numpy(m), squared_edt(m))


def test_interior_point_from_polygon_and_box() -> None:
    # polygon covering x 10..20, y 10..30 (pixels 10..19 × 10..29): deepest at the centre column/row
    reg = {"bbox": [10, 10, 20, 30], "mask": [[10, 10, 20, 10, 20, 30, 10, 30]]}
    p, src = interior_point(reg, 40, 40)
    assert src == "mask" and 10 < p[0] < 20 and 14 < p[1] < 26
    p, src = interior_point({"bbox": [0, 0, 10, 20], "mask": None}, 40, 40)
    assert (p, src) == ([5.0, 10.0], "box")


# ---- phrasing ----------------------------------------------------------------------------------------------
def test_choice_is_stable_and_spreads() -> None:
    picks = [choice_index(0, "rec", f"id-{k}", 5) for k in range(500)]
    assert picks == [choice_index(0, "rec", f"id-{k}", 5) for k in range(500)]
    assert set(picks) == set(range(5))
    assert picks != [choice_index(1, "rec", f"id-{k}", 5) for k in range(500)]  # the seed matters


def test_user_templates_replace_defaults(tmp_path: Path) -> None:
    t = tmp_path / "t.json"
    t.write_bytes(orjson.dumps({"rec": ["Box for: {expression}"]}))
    src = write_records(tmp_path / "r.jsonl", [referring(k) for k in range(3)])
    out = tmp_path / "o"
    assert (
        gtok("export", src, "--scheme", "bins", "--task", "rec", "--out", out, "--templates", t).exit_code
        == 0
    )
    first = orjson.loads((out / "gtok-00000.jsonl").read_bytes().splitlines()[0])
    assert first["conversations"][0]["value"] == "<image>\nBox for: the person number 0"
    assert load_templates(t).by_task["reg"] == load_templates(None).by_task["reg"]


@pytest.mark.parametrize(
    ("content", "reason"),
    [({"rec": ["no slot here"]}, "slots"), ({"nope": ["x"]}, "unknown task"), ({"rec": []}, "non-empty")],
)
def test_bad_templates_exit_2(tmp_path: Path, content: Any, reason: str) -> None:
    t = tmp_path / "t.json"
    t.write_bytes(orjson.dumps(content))
    src = write_records(tmp_path / "r.jsonl", [referring(0)])
    res = gtok("export", src, "--scheme", "bins", "--task", "rec", "--out", tmp_path / "o", "--templates", t)
    assert res.exit_code == 2 and reason in res.output


def test_malformed_record_names_file_line_and_record(tmp_path: Path) -> None:
    bad = referring(1)
    del bad["image"]["width"]
    src = write_records(tmp_path / "r.jsonl", [referring(0), bad])
    res = gtok("export", src, "--scheme", "bins", "--task", "rec", "--out", tmp_path / "o")
    assert res.exit_code == 2
    assert "r.jsonl" in res.output and "ref-1" in res.output and "line 2" in res.output


# ---- compiled schema agrees with jsonschema ----------------------------------------------------------------
def _sample_lines(tmp_path: Path, fmt: str) -> list[dict[str, Any]]:
    src = write_records(tmp_path / "r.jsonl", [referring(k) for k in range(3)])
    out = tmp_path / fmt
    assert (
        gtok("export", src, "--scheme", "grid", "--task", "point", "--format", fmt, "--out", out).exit_code
        == 0
    )
    return [orjson.loads(x) for x in (out / "gtok-00000.jsonl").read_bytes().splitlines()]


def _mutations(line: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for path, value in [
        (("meta", "image_size", 0), True),
        (("meta", "image_size", 0), 0),
        (("meta", "regions", 0, "kind"), "blob"),
        (("meta", "regions", 0, "bbox"), [1, 2, 3]),
        (("meta", "regions", 0, "mask_tokens"), {"grid": 3}),
        (("meta", "regions", 0, "mask_tokens"), {"grid": 3, "anchors": [], "iou": 1}),
        (("meta", "regions", 0, "mask_tokens"), {"grid": 3, "anchors": [], "iou": 1.0001}),
        (("meta", "regions", 0, "mask_tokens"), {"grid": 3, "anchors": [], "iou": -0.1}),
        (("meta", "regions", 0, "mask_tokens"), {"grid": 3, "anchors": [], "iou": "0.5"}),
        (("meta", "regions", 0, "label"), 5),
        (("meta", "record_id"), ""),
        (("meta",), []),
    ]:
        m = copy.deepcopy(line)
        target = m
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        out.append(m)
    for key in list(line):
        m = copy.deepcopy(line)
        del m[key]
        out.append(m)
    extra = copy.deepcopy(line)
    extra["unexpected"] = 1
    out.append(extra)
    return out


@pytest.mark.parametrize("fmt", ["llava", "messages", "conversations"])
def test_fastschema_agrees_with_jsonschema(tmp_path: Path, fmt: str) -> None:
    import jsonschema

    root = load_schema("shard_line")
    fast = compile_schema(root, fmt)
    slow = jsonschema.Draft202012Validator({"$defs": root["$defs"], "$ref": f"#/$defs/{fmt}"})
    for line in _sample_lines(tmp_path, fmt):
        assert fast(line) and slow.is_valid(line)
        for m in _mutations(line):
            assert fast(m) == slow.is_valid(m), m


def test_fastschema_rejects_unknown_keywords() -> None:
    with pytest.raises(NotImplementedError):
        compile_schema({"type": "string", "pattern": "^a"})


# ---- trainers' loaders -------------------------------------------------------------------------------------
@pytest.mark.interop
@pytest.mark.parametrize("fmt", ["llava", "messages", "conversations"])
def test_shards_load_with_datasets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str) -> None:
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    import datasets

    src = write_records(tmp_path / "r.jsonl", [referring(k) for k in range(12)])
    out = tmp_path / "o"
    assert (
        gtok(
            "export",
            src,
            "--scheme",
            "qwen2-vl",
            "--task",
            "rec",
            "--format",
            fmt,
            "--out",
            out,
            "--shard-size",
            "5",
        ).exit_code
        == 0
    )
    files = sorted(str(p) for p in out.glob("gtok-*.jsonl"))
    ds = datasets.load_dataset("json", data_files=files, split="train", cache_dir=str(tmp_path / "cache"))
    assert len(ds) == 12
    assert ds[0]["meta"]["record_id"] == "ref-0"


def test_messages_match_llamafactory_sharegpt_contract(tmp_path: Path) -> None:
    """LLaMA-Factory's documented sharegpt/messages rules (SharegptDatasetConverter, mm_plugin): the
    dataset_info entry maps columns/tags; user/assistant alternate starting with user; one ``<image>`` per
    entry of ``images``. (LLaMA-Factory itself needs torch/transformers/peft/trl to import, so its converter
    is not run here.)"""
    src = write_records(tmp_path / "r.jsonl", [referring(k) for k in range(6)])
    out = tmp_path / "o"
    assert (
        gtok(
            "export",
            src,
            "--scheme",
            "qwen2.5-vl",
            "--task",
            "reg",
            "--format",
            "messages",
            "--out",
            out,
            "--shard-size",
            "4",
        ).exit_code
        == 0
    )
    info = orjson.loads((out / "dataset_info.json").read_bytes())
    assert sorted(info) == ["gtok-00000", "gtok-00001"]
    entry = info["gtok-00000"]
    assert entry["file_name"] == "gtok-00000.jsonl" and entry["formatting"] == "sharegpt"
    assert entry["columns"] == {"messages": "messages", "images": "images"}
    tags = entry["tags"]
    for name in info:
        for raw in (out / info[name]["file_name"]).read_bytes().splitlines():
            line = orjson.loads(raw)
            msgs = line[entry["columns"]["messages"]]
            assert len(msgs) % 2 == 0
            for k, m in enumerate(msgs):
                assert m[tags["role_tag"]] == (tags["user_tag"] if k % 2 == 0 else tags["assistant_tag"])
            n_tags = sum(m[tags["content_tag"]].count("<image>") for m in msgs)
            assert n_tags == len(line[entry["columns"]["images"]]) == 1


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"no newline",
        b"\n",
        b"a\nb\n",
        b"x" * 70_000,  # large, none
        (b"y" * 1023 + b"\n") * 3000,  # large, lines across the MiB steps
        b"\n" * (1 << 20) + b"z\n",  # a MiB of newlines, then one more past the step
    ],
    ids=["empty", "none", "one", "two", "large-none", "large-many", "step-edge"],
)
def test_count_newlines_equals_bytes_count(data: bytes) -> None:
    from gtok_cli.jsonio import count_newlines

    assert count_newlines(data) == data.count(b"\n")
    assert count_newlines(memoryview(data)) == data.count(b"\n")
    assert count_newlines(bytearray(data)) == data.count(b"\n")
