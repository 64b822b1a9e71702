"""`gtok eval` run as a user runs it: every count, the report forms, --per-sample, --min, every exit code."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from _eval_helpers import export_of, qwen3, ref_record, write_predictions
from _export_helpers import RUNNER, gtok

from gtok_cli.cli import app

BOX = [100.0, 100.0, 300.0, 300.0]


@pytest.fixture
def export(tmp_path: Path) -> Path:
    return export_of(
        tmp_path, [ref_record(k, BOX) for k in range(4)], "--scheme", "qwen3-vl", "--task", "rec"
    )


def _preds(tmp_path: Path) -> Path:
    return write_predictions(
        tmp_path / "p.jsonl",
        [
            {"id": "r0", "text": qwen3((100, 100, 300, 300))},
            {"line": 1, "text": "```json\n" + qwen3((100, 100, 300, 350)) + "\n```"},  # IoU 0.8, fenced
            {"id": "r0", "text": qwen3((0, 0, 10, 10))},  # duplicate: the first one counts
            {"id": "nope", "text": qwen3((0, 0, 10, 10))},  # unknown id
            {"line": 99, "text": ""},  # unknown line
            {"id": "r2", "text": "no box here"},  # format error
            # r3: missing
        ],
    )


def test_counts_and_json_shape(tmp_path: Path, export: Path) -> None:
    res = gtok("eval", _preds(tmp_path), "--against", export, "--json")
    assert res.exit_code == 0, res.output
    report = orjson.loads(res.stdout)
    assert {"task", "scheme", "n", "metrics", "counts"} <= set(report)
    assert report["task"] == "rec" and report["scheme"]["scheme"] == "qwen3-vl" and report["n"] == 4
    assert list(report["metrics"]) == ["acc@0.5", "acc@0.75", "acc@0.9", "miou"]
    assert report["metrics"]["miou"] == pytest.approx((1 + 0.8) / 4)
    counts = report["counts"]
    assert {k: counts[k] for k in ("missing", "unknown_id", "duplicate", "format_error")} == {
        "missing": 1,
        "unknown_id": 2,
        "duplicate": 1,
        "format_error": 1,
    }
    assert counts["lenient"] == {"fence": 1, "python_literal": 0, "truncated": 0, "clipped": 0}
    assert report["listed"]["missing"] == ["r3"] and report["listed"]["unknown_id"] == ["nope", "line 99"]
    assert report["listed"]["duplicate"] == ["r0"] and report["listed"]["format_error"] == ["r2 (no shape)"]


def test_human_summary(tmp_path: Path, export: Path) -> None:
    res = gtok("eval", _preds(tmp_path), "--against", export)
    assert res.exit_code == 0, res.output
    out = res.stdout
    assert (
        "acc@0.5" in out
        and "miou" in out
        and "missing 1 · unknown_id 2 · duplicate 1 · format_error 1" in out
    )
    assert "leniencies: fence 1" in out
    assert "by dataset:" in out and "refcoco (n=2)" in out and "refcocog (n=2)" in out


def test_stdin(tmp_path: Path, export: Path) -> None:
    data = _preds(tmp_path).read_bytes()
    res = RUNNER.invoke(app, ["eval", "-", "--against", str(export), "--json"], input=data)
    assert res.exit_code == 0, res.output
    assert orjson.loads(res.stdout)["counts"]["duplicate"] == 1


def test_per_sample(tmp_path: Path, export: Path) -> None:
    per = tmp_path / "per.jsonl"
    res = gtok("eval", _preds(tmp_path), "--against", export, "--per-sample", per)
    assert res.exit_code == 0, res.output
    rows = [orjson.loads(x) for x in per.read_bytes().splitlines()]
    assert [r["line"] for r in rows] == [0, 1, 2, 3] and [r["id"] for r in rows] == ["r0", "r1", "r2", "r3"]
    assert [r["status"] for r in rows] == ["ok", "ok", "format_error", "missing"]
    assert [r["iou"] for r in rows] == pytest.approx([1.0, 0.8, 0.0, 0.0])
    assert rows[0]["decoded"] == [{"kind": "box", "coords": [100.0, 100.0, 300.0, 300.0]}]
    assert rows[2]["issue"] == "no shape" and rows[3]["decoded"] == []


@pytest.mark.parametrize(
    ("floor", "code"), [("acc@0.5=0.5", 0), ("acc@0.5=0.51", 1), ("miou=0.45", 0), ("miou=0.46", 1)]
)
def test_min_gate(tmp_path: Path, export: Path, floor: str, code: int) -> None:
    """acc@0.5 = 2/4 (r0 1.0, r1 0.8), miou = 1.8/4 = 0.45."""
    res = gtok("eval", _preds(tmp_path), "--against", export, "--min", floor)
    assert res.exit_code == code, res.output
    if code:
        assert "is below --min" in res.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--min", "recall@1=0.5"], "no metric 'recall@1'"),
        (["--min", "acc@0.5"], "NAME=VALUE"),
        (["--min", "acc@0.5=nan"], "NAME=VALUE"),
        (["--mask-backend", "sam"], "--sam-checkpoint"),
        (["--mask-backend", "pixels"], "--mask-backend must be one of"),
    ],
)
def test_bad_options_exit_2(tmp_path: Path, export: Path, args: list[str], message: str) -> None:
    res = gtok("eval", _preds(tmp_path), "--against", export, *args)
    assert res.exit_code == 2 and message in res.stderr, res.output


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"id": "r0", "text": "x"}\nnot json\n', "line 2 is not valid JSON"),
        (b'{"id": "r0"}\n', "field text"),
        (b'{"text": "x"}\n', "field id"),
        (b'{"line": -1, "text": "x"}\n', "field line"),
        (b'{"id": "r0", "turns": []}\n', "field turns"),
        (b'["r0", "x"]\n', "a prediction is a JSON object"),
    ],
)
def test_bad_predictions_exit_2(tmp_path: Path, export: Path, content: bytes, message: str) -> None:
    preds = tmp_path / "bad.jsonl"
    preds.write_bytes(content)
    res = gtok("eval", preds, "--against", export)
    assert res.exit_code == 2 and message in res.stderr and "bad.jsonl" in res.stderr, res.output
    assert "Traceback" not in res.output


def test_ambiguous_id_says_to_use_line(tmp_path: Path, export: Path) -> None:
    shard = next(export.glob("*.jsonl"))
    first = shard.read_bytes().splitlines()[0]
    shard.write_bytes(shard.read_bytes() + first + b"\n")  # the same id on two lines
    preds = write_predictions(tmp_path / "p.jsonl", [{"id": "r0", "text": qwen3((1, 1, 2, 2))}])
    res = gtok("eval", preds, "--against", export)
    assert res.exit_code == 2 and '{"line": N}' in res.stderr and "r0" in res.stderr, res.output
    by_line = write_predictions(tmp_path / "q.jsonl", [{"line": 4, "text": qwen3((100, 100, 300, 300))}])
    res = gtok("eval", by_line, "--against", export, "--json")
    assert res.exit_code == 0 and orjson.loads(res.stdout)["n"] == 5


def test_no_meta_needs_records(tmp_path: Path) -> None:
    recs = [ref_record(k, BOX) for k in range(4)]
    export = export_of(
        tmp_path, recs, "--scheme", "qwen3-vl", "--task", "rec", "--no-meta", "--format", "llava"
    )
    preds = _preds(tmp_path)
    res = gtok("eval", preds, "--against", export)
    assert res.exit_code == 2 and "--records" in res.stderr, res.output
    res = gtok("eval", preds, "--against", export, "--records", tmp_path / "export.records.jsonl", "--json")
    assert res.exit_code == 0, res.output
    assert orjson.loads(res.stdout)["metrics"]["miou"] == pytest.approx(1.8 / 4)
    other = tmp_path / "other.jsonl"
    other.write_bytes((tmp_path / "export.records.jsonl").read_bytes() + b"\n")
    res = gtok("eval", preds, "--against", export, "--records", other)
    assert res.exit_code == 2 and "sources" in res.stderr, res.output


def test_reg_export_is_refused(tmp_path: Path) -> None:
    export = export_of(tmp_path, [ref_record(0, BOX)], "--scheme", "loc", "--task", "reg")
    preds = write_predictions(tmp_path / "p.jsonl", [{"id": "r0", "text": "a thing"}])
    res = gtok("eval", preds, "--against", export)
    assert res.exit_code == 2 and "reg" in res.stderr, res.output


def test_never_writes_over_an_input(tmp_path: Path, export: Path) -> None:
    preds = _preds(tmp_path)
    manifest = export / "manifest.json"
    before = preds.read_bytes(), manifest.read_bytes()
    for target in (preds, manifest):
        res = gtok("eval", preds, "--against", export, "--per-sample", target)
        assert res.exit_code == 2 and "never writes over its input" in res.stderr, res.output
    assert (preds.read_bytes(), manifest.read_bytes()) == before


def test_missing_files_exit_2(tmp_path: Path, export: Path) -> None:
    res = gtok("eval", tmp_path / "none.jsonl", "--against", export)
    assert res.exit_code == 2 and "none.jsonl" in res.stderr
    res = gtok("eval", _preds(tmp_path), "--against", tmp_path / "nowhere")
    assert res.exit_code == 2 and "nowhere" in res.stderr
