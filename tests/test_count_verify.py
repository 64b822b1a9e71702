"""Count exports of the genuine COCO sample verify under every scheme and format; verify fails a count line
whose answer was tampered with (number changed, a shape dropped, meta disagreeing). docs/spec.md#counting."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from _export_helpers import gtok

from gtok_cli.codecs import SCHEMES as REGISTRY
from gtok_cli.codecs import get_codec
from gtok_cli.verify.count_check import check_count_line

REPO = Path(__file__).resolve().parents[1]
COCO = REPO / "sample_data" / "coco"
SCHEMES = sorted(REGISTRY)


@pytest.fixture(scope="module")
def coco_records(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("coco") / "coco.jsonl"
    res = gtok(
        "ingest", "coco", "--instances", COCO / "annotations" / "instances_val2017_sample.json", "--out", out
    )
    assert res.exit_code == 0, res.output
    return out


def _export(records: Path, out: Path, *args: str) -> dict[str, Any]:
    res = gtok("export", records, "--task", "count", "--negatives", "0.5", "--out", out, *args)
    assert res.exit_code == 0, res.output
    manifest: dict[str, Any] = orjson.loads((out / "manifest.json").read_bytes())
    return manifest


def _verify(out: Path) -> dict[str, Any]:
    res = gtok("verify", out, "--json")
    report: dict[str, Any] = orjson.loads(res.output)
    return report


@pytest.mark.parametrize("scheme", SCHEMES)
def test_every_scheme_exports_and_verifies(coco_records: Path, tmp_path: Path, scheme: str) -> None:
    points_only = "box" not in get_codec(scheme).kinds  # molmo: each box as its centre point
    m = _export(
        coco_records, tmp_path / "o", "--scheme", scheme, *(("--box-as", "center") if points_only else ())
    )
    # the sample: 12 images, 2 crowd annotations (categories 60 and 84, each in one image) left out by ingest
    assert m["counts"]["skipped"] == {"count.crowd": 2}
    res = gtok("verify", tmp_path / "o")
    assert res.exit_code == 0, res.output


@pytest.mark.parametrize(
    ("scheme", "args"),
    [
        ("molmo", ("--shape", "point")),
        ("grid", ("--shape", "point")),
        ("molmo", ("--box-as", "center")),
        ("qwen2.5-vl", ("--format", "swift")),
        ("loc", ("--format", "messages", "--shape", "polygon")),
        ("internvl", ("--format", "conversations")),
    ],
)
def test_shapes_and_formats(coco_records: Path, tmp_path: Path, scheme: str, args: tuple[str, ...]) -> None:
    _export(coco_records, tmp_path / "o", "--scheme", scheme, *args)
    res = gtok("verify", tmp_path / "o")
    assert res.exit_code == 0, res.output


def test_mask_shapes_verify(tmp_path: Path) -> None:
    tokens = {"grid": 4, "anchors": [[0, 0], [1, 0]], "iou": 0.5, "backend": "cells", "tau": 0.9}
    regions = [
        {"bbox": [0.0, 0.0, 40.0, 20.0], "mask": None, "label": "dog", "category_id": 18, "iscrowd": False,
         "ann_id": k, "phrase": None, "span": None, "mask_tokens": tokens}
        for k in range(2)
    ]  # fmt: skip
    record = {
        "id": "m", "dataset": "coco", "split": "val", "task": "instances", "text": None,
        "image": {"file": "m.jpg", "width": 100, "height": 100, "id": 1}, "regions": regions, "source": {},
    }  # fmt: skip
    src = tmp_path / "r.jsonl"
    src.write_bytes(orjson.dumps(record) + b"\n")
    out = tmp_path / "o"
    res = gtok(
        "export", src, "--scheme", "grid", "--grid", "4", "--task", "count", "--shape", "mask", "--out", out
    )
    assert res.exit_code == 0, res.output
    line = orjson.loads((out / "gtok-00000.jsonl").read_bytes())
    assert line["meta"]["count"] == {"label": "dog", "n": 2}
    assert [r["kind"] for r in line["meta"]["regions"]] == ["mask", "mask"]
    assert gtok("verify", out).exit_code == 0


def _edit_first(
    out: Path, pick: Callable[[dict[str, Any]], bool], edit: Callable[[dict[str, Any]], None]
) -> None:
    shard = out / "gtok-00000.jsonl"
    lines = shard.read_bytes().splitlines()
    k = next(i for i, raw in enumerate(lines) if pick(orjson.loads(raw)))
    obj = orjson.loads(lines[k])
    edit(obj)
    lines[k] = orjson.dumps(obj)
    shard.write_bytes(b"\n".join(lines) + b"\n")


def _n(obj: dict[str, Any]) -> int:
    n: int = obj["meta"]["count"]["n"]
    return n


def _set_answer(obj: dict[str, Any], f: Callable[[str], str]) -> None:
    obj["conversations"][1]["value"] = f(obj["conversations"][1]["value"])


def number_changed(o: dict[str, Any]) -> None:
    _set_answer(o, lambda t: t.replace("3: ", "4: ", 1))


def shape_dropped(o: dict[str, Any]) -> None:  # bins: one <box>…</box> per shape
    _set_answer(o, lambda t: t[: t.rindex("<box>")])


def meta_n_changed(o: dict[str, Any]) -> None:
    o["meta"]["count"]["n"] = 2


def zero_made_one(o: dict[str, Any]) -> None:
    _set_answer(o, lambda t: "1")


@pytest.mark.parametrize(
    ("edit", "pick", "checks"),
    [
        (number_changed, lambda o: _n(o) == 3, {"count.answer"}),
        (shape_dropped, lambda o: _n(o) == 3, {"count.shapes", "regions.count"}),
        (meta_n_changed, lambda o: _n(o) == 3, {"count.regions", "count.answer", "count.shapes"}),
        (zero_made_one, lambda o: _n(o) == 0, {"count.answer"}),
    ],
)
def test_tampered_answer_fails(
    coco_records: Path,
    tmp_path: Path,
    edit: Callable[[dict[str, Any]], None],
    pick: Callable[[dict[str, Any]], bool],
    checks: set[str],
) -> None:
    out = tmp_path / "o"
    _export(coco_records, out, "--scheme", "bins")
    _edit_first(out, pick, edit)
    report = _verify(out)
    failed = set(report["failure_counts"]) - {"shard.sha256", "line.changed"}  # the edit itself, seen anyway
    assert failed == checks


@pytest.mark.parametrize(
    ("geo", "shapes", "meta_count", "labels", "checks"),
    [
        (["2: <b><b>"], 2, 2, ["dog", "dog"], set()),
        (["0"], 0, 0, [], set()),
        (["two dogs: <b><b>"], 2, 2, ["dog", "dog"], {"count.answer"}),  # the number, not as export spells it
        (["2 <b><b>"], 2, 2, ["dog", "dog"], {"count.answer"}),  # no ": "
        (["0 dogs"], 0, 0, [], {"count.answer"}),  # a zero answer is "0" alone
        (["<b><b>"], 2, 2, ["dog", "dog"], {"count.answer"}),  # no number stated
        (["2: <b><b>"], 2, 2, ["dog", "cat"], {"count.label"}),
        (["2: <b>"], 1, 2, ["dog", "dog"], {"count.shapes"}),
        (["1: <b>"], 1, 2, ["dog"], {"count.regions", "count.answer", "count.shapes"}),
        (["2: <b>", "<b>"], 2, 2, ["dog", "dog"], {"count.answer"}),  # two answer turns
    ],
)
def test_check_count_line_table(
    geo: list[str], shapes: int, meta_count: int, labels: list[str], checks: set[str]
) -> None:
    meta = {
        "record_id": "r",
        "image_size": [10, 10],
        "count": {"label": "dog", "n": meta_count},
        "regions": [{"kind": "box", "bbox": [0, 0, 1, 1], "label": lab} for lab in labels],
    }
    assert {c for c, _ in check_count_line(geo, shapes, meta)} == checks


def test_check_count_line_without_meta_count() -> None:
    got = check_count_line(["1"], 1, {"record_id": "r", "image_size": [1, 1], "regions": []})
    assert [c for c, _ in got] == ["count.meta"]


def test_show_draws_a_count_line(coco_records: Path, tmp_path: Path) -> None:
    _export(coco_records, tmp_path / "o", "--scheme", "qwen2.5-vl")
    pic = tmp_path / "count.png"
    res = gtok(
        "show", tmp_path / "o", "--images", COCO / "val2017", "--id", "coco:val2017:311002:instances:count:1",
        "--out", pic,
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert pic.stat().st_size > 10_000


def test_ingest_notes_the_crowd_categories_it_leaves_out(coco_records: Path) -> None:
    coco = orjson.loads((COCO / "annotations" / "instances_val2017_sample.json").read_bytes())
    want: dict[int, list[int]] = {}
    for a in coco["annotations"]:
        if a["iscrowd"]:
            want.setdefault(a["image_id"], []).append(a["category_id"])
    assert want  # the sample has crowd annotations
    got = {}
    for raw in coco_records.read_bytes().splitlines():
        rec = orjson.loads(raw)
        if "crowd_category_ids" in rec:
            got[rec["image"]["id"]] = rec["crowd_category_ids"]
        assert not any(r["iscrowd"] for r in rec["regions"])
    assert got == {k: sorted(set(v)) for k, v in want.items()}


def test_no_meta_export_verifies_against_its_records(coco_records: Path, tmp_path: Path) -> None:
    # verify --against rebuilds the samples: the same category table, the same negatives
    out = tmp_path / "o"
    _export(coco_records, out, "--scheme", "loc", "--no-meta")
    assert gtok("verify", out, "--against", coco_records).exit_code == 0
    shard = out / "gtok-00000.jsonl"
    lines = shard.read_bytes().splitlines()
    k = next(i for i, raw in enumerate(lines) if orjson.loads(raw)["conversations"][1]["value"] == "0")
    obj = orjson.loads(lines[k])
    obj["conversations"][1]["value"] = "1"
    lines[k] = orjson.dumps(obj)
    shard.write_bytes(b"\n".join(lines) + b"\n")
    report = orjson.loads(gtok("verify", out, "--against", coco_records, "--json").output)
    assert "count.answer" in report["failure_counts"]
