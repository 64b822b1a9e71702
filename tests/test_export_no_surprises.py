"""Issue 12, rows 5 and 12 (export / verify side): nothing written is an error, and records are checked
where they enter export. Each case drives the CLI and asserts the exit code, the one-line message and the
files left behind."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from _export_helpers import gtok, referring, region, write_records


def instances(k: int, **kw: Any) -> dict[str, Any]:
    rec = referring(k)
    rec.update(task="instances", text=None, id=f"inst-{k}", **kw)
    rec["regions"] = [region([10.0, 10.0, 50.0, 60.0], ann_id=k), region([100.0, 80.0, 200.0, 160.0])]
    return rec


def _one_error(result: Any) -> str:
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("gtok: error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


# (records, export args, the reasons with counts, the hint)
EMPTY_CASES = {
    "refine-on-instances": (
        [instances(k) for k in range(4)],
        ["--scheme", "grid", "--task", "refine"],
        "record_task.instances=4",
        "`--task refine` takes referring records; for instances use `--task detect --refine`",
    ),
    "mask-without-mask-tokens": (
        [referring(k) for k in range(3)],
        ["--scheme", "grid", "--task", "rec", "--shape", "mask"],
        "region.no_mask_tokens=3",
        "--shape mask needs mask_tokens: run `gtok masks` first, or use --shape auto",
    ),
    "detect-all-incomplete": (
        [instances(k, incomplete=True) for k in range(2)],
        ["--scheme", "bins", "--task", "detect"],
        "record.incomplete=2",
        "detection needs every object",
    ),
    "rec-on-instances-and-blank-text": (
        [instances(0), instances(1), {**referring(2), "text": " "}],
        ["--scheme", "bins", "--task", "rec"],
        "record_task.instances=2, record.no_text=1",
        "`--task rec` takes referring records; for instances records use `--task detect`",
    ),
    "no-records": ([], ["--scheme", "bins", "--task", "rec"], "", "the record file(s) hold no records"),
}


@pytest.mark.parametrize("case", list(EMPTY_CASES))
def test_export_writing_nothing_fails_and_leaves_nothing(tmp_path: Path, case: str) -> None:
    records, args, reasons, hint = EMPTY_CASES[case]
    src = write_records(tmp_path / "r.jsonl", records)
    out = tmp_path / "new" / "out"
    line = _one_error(gtok("export", src, *args, "--out", out))
    assert line.startswith("gtok: error: nothing written: ")
    assert reasons in line and hint in line and "--allow-empty" in line
    assert not out.exists()  # the folder export made is gone
    assert (tmp_path / "new").is_dir()  # (only the leaf: export made new/ on the way, and leaves it)


def test_nothing_written_in_an_existing_folder_leaves_it_as_it_was(tmp_path: Path) -> None:
    src = write_records(tmp_path / "r.jsonl", [instances(0)])
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    result = gtok("export", src, "--scheme", "grid", "--task", "refine", "--out", out)
    assert result.exit_code == 2
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_allow_empty_writes_a_zero_line_manifest_and_verify_wants_allow_empty(tmp_path: Path) -> None:
    src = write_records(tmp_path / "r.jsonl", [instances(0), instances(1)])
    out = tmp_path / "out"
    result = gtok("export", src, "--scheme", "grid", "--task", "refine", "--out", out, "--allow-empty")
    assert result.exit_code == 0, result.output
    manifest = orjson.loads((out / "manifest.json").read_bytes())
    assert manifest["counts"] == {"read": 2, "written": 0, "skipped": {"record_task.instances": 2}}
    assert manifest["shards"] == [] and "--allow-empty" in manifest["command"]
    names = [p.name for p in out.iterdir()]
    assert "manifest.json" in names and not [n for n in names if n.startswith(("gtok", ".gtok"))], names

    plain = gtok("verify", out)
    assert plain.exit_code == 1
    assert "export.empty: the export has 0 lines (pass --allow-empty if that is meant)" in plain.stdout
    assert "every check passed" not in plain.stdout
    allowed = gtok("verify", out, "--allow-empty")
    assert allowed.exit_code == 0 and "OK: every check passed" in allowed.stdout


def test_a_part_no_record_falls_in_is_not_an_error(tmp_path: Path) -> None:
    """Job arrays: a part without records (nothing skipped) writes its part manifest."""
    src = write_records(tmp_path / "r.jsonl", [referring(0, image_id=7)])
    outs = [tmp_path / f"p{i}" for i in range(4)]
    codes = [
        gtok("export", src, "-s", "bins", "-t", "rec", "--num-shards", "4", "--shard-index", str(i), "-o", o)
        for i, o in enumerate(outs)
    ]
    assert all(c.exit_code == 0 for c in codes), [c.output for c in codes]
    written = [orjson.loads(next(o.glob("manifest*.json")).read_bytes())["counts"]["written"] for o in outs]
    assert sorted(written) == [0, 0, 0, 1]


def test_damaged_gz_input_leaves_no_folder(tmp_path: Path) -> None:
    data = gzip.compress(b"".join(orjson.dumps(referring(k)) + b"\n" for k in range(50)))
    src = tmp_path / "r.jsonl.gz"
    src.write_bytes(data[: len(data) // 2])
    out = tmp_path / "out"
    result = gtok("export", src, "-s", "bins", "-t", "rec", "-o", out)
    assert result.exit_code == 2, result.output
    _one_error(result)
    assert not out.exists()


# ---- row 12: the record-entry check --------------------------------------------------------------------
def test_the_same_input_twice_is_refused_before_any_work(tmp_path: Path) -> None:
    src = write_records(tmp_path / "r.jsonl", [referring(k) for k in range(3)])
    link = tmp_path / "link.jsonl"
    os.symlink(src, link)
    for second, same in ((src, ""), (link, f" (the same file as {src})")):
        out = tmp_path / "out"
        line = _one_error(gtok("export", src, second, "-s", "bins", "-t", "rec", "-o", out))
        assert line == f"gtok: error: input {second} is given twice{same}: each record would be read twice"
        assert not out.exists()


def _bad(field: str, value: Any, task: str = "referring") -> dict[str, Any]:
    rec = referring(1) if task == "referring" else instances(1)
    if field == "bbox":
        rec["regions"][0]["bbox"] = value
    elif field == "polyline":
        rec["regions"][0]["polyline"] = value
    else:
        rec["image"][field] = value
    return rec


# (bad record, task, field named (None: not a record yet), words of the message); the bad record is line 2
BAD_RECORDS = {
    "huge-box-rec": (_bad("bbox", [0.0, 0.0, 1e308, 10.0]), "rec", "regions[0].bbox", "far outside"),
    # NaN is not JSON: the reader refuses the line before the entry check
    "nan-box-rec": (_bad("bbox", [0.0, float("nan"), 5.0, 10.0]), "rec", None, "is not valid JSON"),
    "string-box-rec": (_bad("bbox", ["x", 0, 5, 10]), "rec", "regions[0].bbox", ""),
    "reversed-box-rec": (_bad("bbox", [50.0, 0.0, 5.0, 10.0]), "rec", "regions[0].bbox", "out of order"),
    "outside-box-rec": (_bad("bbox", [700.0, 0.0, 800.0, 10.0]), "rec", "regions[0].bbox", "outside"),
    "zero-width-rec": (_bad("width", 0), "rec", "image.width", "positive integer"),
    "bad-polyline-rec": (_bad("polyline", [0, 0, 1e308, 3]), "rec", "regions[0].polyline", "far outside"),
    "huge-box-detect": (
        _bad("bbox", [0.0, 0.0, 1e308, 10.0], "instances"),
        "detect",
        "regions[0].bbox",
        "far outside",
    ),
}


@pytest.mark.parametrize("case", list(BAD_RECORDS))
def test_bad_geometry_is_a_one_line_error_naming_the_line(tmp_path: Path, case: str) -> None:
    bad, task, field, words = BAD_RECORDS[case]
    good = referring(0) if task == "rec" else instances(0)
    src = tmp_path / "r.jsonl"
    # orjson writes NaN as null: the NaN case is written by hand
    src.write_bytes(orjson.dumps(good) + b"\n" + orjson.dumps(bad).replace(b"null,5.0", b"NaN,5.0") + b"\n")
    out = tmp_path / "out"
    line = _one_error(gtok("export", src, "-s", "bins", "-t", task, "-o", out))
    where = f"{src}: line 2 " if field is None else f"{src}, record {bad['id']}, field {field}: line 2: "
    assert line.startswith(f"gtok: error: {where}"), line
    assert words in line
    assert not out.exists()


def test_max_error_px_refuses_negative_and_nan(tmp_path: Path) -> None:
    src = write_records(tmp_path / "r.jsonl", [referring(0)])
    out = tmp_path / "out"
    assert gtok("export", src, "-s", "bins", "-t", "rec", "-o", out).exit_code == 0
    for value in ("-1", "nan", "inf"):
        line = _one_error(gtok("verify", out, "--max-error-px", value))
        assert line.startswith("gtok: error: --max-error-px must be a finite number >= 0, not "), line
    assert gtok("verify", out, "--max-error-px", "0").exit_code in (0, 1)


def _renamed(rec: dict[str, Any], rid: str) -> dict[str, Any]:
    return {**rec, "id": rid}


# (files as lists of records, task, the expected error's file index, line, and the line it repeats)
DUPLICATES = {
    "same-file-rec": ([[referring(0), referring(1), _renamed(referring(2), "ref-0")]], "rec", 0, 3, "line 1"),
    "same-file-detect": ([[instances(0), instances(1), instances(0)]], "detect", 0, 3, "line 1"),
    "across-files": (
        [[referring(0)], [referring(5), _renamed(referring(6), "ref-0")]],
        "rec",
        1,
        2,
        "line 1 of",
    ),
}


@pytest.mark.parametrize("case", list(DUPLICATES))
def test_duplicate_ids_are_a_one_line_error(tmp_path: Path, case: str) -> None:
    files, task, index, lineno, first = DUPLICATES[case]
    paths = [write_records(tmp_path / f"r{k}.jsonl", recs) for k, recs in enumerate(files)]
    out = tmp_path / "out"
    line = _one_error(gtok("export", *paths, "-s", "bins", "-t", task, "-o", out))
    assert line.startswith(f"gtok: error: {paths[index]}, record "), line
    assert f"field id: line {lineno}: repeats the id of {first}" in line
    assert not out.exists()


def test_duplicate_ids_far_apart_with_workers(tmp_path: Path) -> None:
    """The repeat is in another batch, handled by another worker: the main process still sees it."""
    records = [referring(k) for k in range(300)]
    records[280]["id"] = "ref-3"
    src = write_records(tmp_path / "r.jsonl", records)
    out = tmp_path / "out"
    code = "import gtok_cli.parallel as r; r.BATCH_BYTES = 2000; from gtok_cli.cli import main; main()"
    args = ["export", str(src), "-s", "bins", "-t", "rec", "-o", str(out), "--workers", "2"]
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, check=False, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.decode().splitlines()
    assert lines == [
        f"gtok: error: {src}, record ref-3, field id: line 281: repeats the id of line 4 "
        "(expected ids unique in the run, found 'ref-3')"
    ]
    assert not (out / "manifest.json").exists()


def test_a_skipped_record_may_share_an_id(tmp_path: Path) -> None:
    """Only records that make a sample count: an instances record skipped by --task rec is not one."""
    src = write_records(tmp_path / "r.jsonl", [referring(0), _renamed(instances(1), "ref-0")])
    result = gtok("export", src, "-s", "bins", "-t", "rec", "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output


def test_a_hash_collision_of_distinct_ids_is_not_an_error(tmp_path: Path) -> None:
    """Two different ids whose 64-bit hashes collide (forced here): re-reading the files finds no repeat."""
    from gtok_cli.export.ids import duplicate_error

    path = tmp_path / "r.jsonl"
    path.write_text('{"id": "a"}\n{"id": "b"}\n')
    assert duplicate_error([str(path)], np.array([hash("a"), hash("b")], dtype=np.int64)) is None
    path.write_text('{"id": "a"}\n{"id": "a"}\n')
    err = duplicate_error([str(path)], np.array([hash("a")], dtype=np.int64))
    assert err is not None and "line 2: repeats the id of line 1" in str(err)
