"""Bad input to `gtok ingest mdetr | refcoco-hf | grit`: one error line under fail, a counted reject
under skip.

Each row breaks one thing in a copy of a test file (tests/data/README.md): a truncated file, a wrong type, a
missing key, a span outside the caption, a box outside the image, a duplicate id, and each layout's own
quirks. Under ``--on-error fail`` the run exits 2 with one line naming the file, the record and the field;
under ``skip`` the summary counts the reject by reason, the rejects file holds it and every unit reconciles.
A truncated MDETR JSON is a file-level error and stops the run in both modes (docs/spec.md#on-error); a
truncated parquet file is one rejected ``file`` among the others.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _export_helpers import gtok

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"
REFEXP = DATA / "mdetr" / "finetune_refcoco_testA.json"
FLICKR = DATA / "mdetr" / "final_flickr_separateGT_val.json"
LMMS_A = DATA / "refcoco_hf" / "lmms-lab" / "testA-00000-of-00001.parquet"
JXU = DATA / "refcoco_hf" / "jxu124" / "train-00000-of-00001.parquet"
GRIT = DATA / "grit" / "coyo_0_snappy.parquet"


@dataclass(frozen=True)
class Case:
    build: Callable[[Path], list[Any]]
    """Writes the bad input under the folder; the command's arguments (without --out / --on-error)."""
    message: str
    """In the one error line under fail."""
    field: str | None
    """``field X`` in that line (None: a file-level error)."""
    unit: str
    """The unit rejected under skip (None in ``reason``: skip stops too)."""
    reason: str | None
    rejected: int = 1


# ---------------------------------------------------------------------------------------------- builders


def mdetr(source: Path, change: Callable[[dict[str, Any]], None]) -> Callable[[Path], list[Any]]:
    def build(tmp: Path) -> list[Any]:
        doc = json.loads(source.read_text())
        change(doc)
        path = tmp / source.name
        path.write_text(json.dumps(doc))
        return ["mdetr", "--annotations", path]

    return build


def truncated_json(tmp: Path) -> list[Any]:
    path = tmp / REFEXP.name
    data = REFEXP.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return ["mdetr", "--annotations", path]


def _renamed(rows: list[dict[str, Any]]) -> None:
    """New ids for every row (the companion file must not repeat the bad file's ids)."""
    for row in rows:
        if "question_id" in row:
            row["question_id"] += "-copy"
        if "ref_id" in row:
            row["ref_id"] += 1000
            for sent in row["sentences"]:
                sent["sent_id"] += 1000
        if "key" in row:
            row["key"] = "9" + row["key"][1:]


def parquet(
    source: Path,
    change: Callable[[list[dict[str, Any]]], None] = lambda rows: None,
    schema: Callable[[pa.Schema], pa.Schema] = lambda s: s,
    truncate: bool = False,
) -> Callable[[Path], list[Any]]:
    """The rows of ``source``, changed, written as a new file beside a copy of the source with new ids."""

    def build(tmp: Path) -> list[Any]:
        table = pq.read_table(source)
        rows = table.to_pylist()
        change(rows)
        new_schema = schema(table.schema)
        rows = [{k: v for k, v in row.items() if k in new_schema.names} for row in rows]
        bad = tmp / "bad" / source.name  # the source's own name: lmms-lab's split comes from it
        bad.parent.mkdir()
        pq.write_table(pa.Table.from_pylist(rows, schema=new_schema), bad)
        if truncate:
            data = bad.read_bytes()
            bad.write_bytes(data[: len(data) // 2])
        good = tmp / "good" / source.name
        good.parent.mkdir()
        good_rows = table.to_pylist()
        _renamed(good_rows)
        pq.write_table(pa.Table.from_pylist(good_rows, schema=table.schema), good)
        return ["--parquet", bad, "--parquet", good]

    return build


def lmms(**kw: Any) -> Callable[[Path], list[Any]]:
    inner = parquet(LMMS_A, **kw)
    return lambda tmp: ["refcoco-hf", "--layout", "lmms-lab", "--dataset", "refcoco", *inner(tmp)]


def jxu(**kw: Any) -> Callable[[Path], list[Any]]:
    inner = parquet(JXU, **kw)
    return lambda tmp: ["refcoco-hf", "--layout", "jxu124", "--dataset", "refcoco", *inner(tmp)]


def grit(**kw: Any) -> Callable[[Path], list[Any]]:
    inner = parquet(GRIT, **kw)
    return lambda tmp: ["grit", *inner(tmp)]


def drop(column: str) -> Callable[[pa.Schema], pa.Schema]:
    return lambda s: s.remove(s.get_field_index(column))


def retype(column: str, kind: pa.DataType) -> Callable[[pa.Schema], pa.Schema]:
    return lambda s: s.set(s.get_field_index(column), pa.field(column, kind))


def set_item(path: list[Any], value: Any) -> Callable[[Any], None]:
    """``doc[path[0]][path[1]]… = value``."""

    def change(doc: Any) -> None:
        for key in path[:-1]:
            doc = doc[key]
        doc[path[-1]] = value

    return change


def _raw_anns_bbox(rows: list[dict[str, Any]]) -> None:
    ann = json.loads(rows[0]["raw_anns"])
    ann["bbox"][0] += 5
    rows[0]["raw_anns"] = json.dumps(ann)


def _image_1_as_0(doc: dict[str, Any]) -> None:
    """Entry 1 takes entry 0's id (and its annotation follows): both entries are ambiguous."""
    doc["images"][1]["id"] = 0
    doc["annotations"][1]["image_id"] = 0


def _width_str(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        row["width"] = str(row["width"])


# fmt: off
CASES: dict[str, Case] = {
    # ---- MDETR
    "mdetr truncated": Case(truncated_json, "not valid JSON", None, "image", None),
    "mdetr wrong type": Case(
        mdetr(REFEXP, set_item(["annotations", 0, "bbox"], "35.5,148.97,220.7,273.47")),
        "wrong type", "bbox", "annotation", "field.type"),
    "mdetr missing key": Case(
        mdetr(REFEXP, lambda d: d["images"][1].pop("caption")),
        "caption is missing", "caption", "image", "field.missing"),
    "mdetr span outside": Case(
        mdetr(REFEXP, set_item(["annotations", 2, "tokens_positive"], [[0, 500]])),
        "span lies outside the caption", "tokens_positive[0]", "annotation", "span.outside"),
    "mdetr eval span outside": Case(
        mdetr(REFEXP, set_item(["images", 0, "tokens_positive_eval"], [[[-1, 3]]])),
        "span lies outside the caption", "tokens_positive_eval[0][0]", "image", "span.outside"),
    "mdetr box outside": Case(
        mdetr(REFEXP, set_item(["annotations", 0, "bbox"], [600.0, 10.0, 200.0, 50.0])),
        "box lies outside the image", "bbox", "annotation", "bbox.outside"),
    "mdetr duplicate id": Case(
        mdetr(REFEXP, set_item(["annotations", 1, "id"], 0)),
        "duplicate annotation id", "id", "annotation", "id.duplicate", rejected=2),
    "mdetr duplicate image id": Case(
        mdetr(REFEXP, _image_1_as_0), "duplicate image id", "id", "image", "id.duplicate", rejected=2),
    "mdetr flickr size not digits": Case(
        mdetr(FLICKR, set_item(["images", 0, "width"], "333px")),
        "wrong type", "width", "image", "field.type"),
    # ---- refcoco-hf, lmms-lab
    "lmms truncated": Case(
        lmms(truncate=True), "not a readable parquet file", None, "file", "parquet.invalid"),
    "lmms wrong type": Case(
        lmms(change=set_item([0, "bbox"], [1.0, 2.0, 3.0])), "wrong type", "bbox", "row", "field.type"),
    "lmms missing column": Case(
        lmms(schema=drop("file_name")), "lacks a column", "file_name", "file", "parquet.column_missing"),
    "lmms box outside": Case(
        lmms(change=set_item([1, "bbox"], [600.0, 10.0, 200.0, 50.0])),
        "box lies outside the image", "bbox", "row", "bbox.outside"),
    "lmms duplicate id": Case(
        lmms(change=set_item([2, "question_id"], "450473")),
        "duplicate question_id", "question_id", "row", "id.duplicate"),
    # ---- refcoco-hf, jxu124
    "jxu truncated": Case(
        jxu(truncate=True), "not a readable parquet file", None, "file", "parquet.invalid"),
    "jxu wrong type": Case(
        jxu(change=set_item([0, "raw_anns"], "{not json")), "wrong type", "raw_anns", "row", "field.type"),
    "jxu missing column": Case(
        jxu(schema=drop("raw_image_info")),
        "lacks a column", "raw_image_info", "file", "parquet.column_missing"),
    "jxu box outside": Case(
        jxu(change=set_item([0, "bbox"], [464.46, 0.0, 700.0, 423.0])),
        "box lies outside the image", "bbox", "row", "bbox.outside"),
    "jxu bbox disagrees with raw_anns": Case(
        jxu(change=_raw_anns_bbox), "disagrees", "bbox", "row", "bbox.disagrees"),
    "jxu duplicate id": Case(
        jxu(change=set_item([3, "ref_id"], 0)), "duplicate ref_id", "ref_id", "row", "id.duplicate"),
    # ---- GRIT
    "grit truncated": Case(
        grit(truncate=True), "not a readable parquet file", None, "file", "parquet.invalid"),
    "grit wrong type": Case(  # a string column: both rows
        grit(change=_width_str, schema=retype("width", pa.string())),
        "wrong type", "width", "row", "field.type", rejected=2),
    "grit missing column": Case(
        grit(schema=drop("caption")), "lacks a column", "caption", "file", "parquet.column_missing"),
    "grit span outside": Case(
        grit(change=set_item([0, "noun_chunks", 0, 1], 500.0)),
        "span lies outside the caption", "noun_chunks[0]", "row", "span.outside"),
    "grit span not integral": Case(
        grit(change=set_item([0, "noun_chunks", 0, 0], 0.5)),
        "wrong type", "noun_chunks[0]", "row", "field.type"),
    "grit box outside": Case(
        grit(change=set_item([1, "noun_chunks", 0, 4], 1.5)),
        "box lies outside the image", "noun_chunks[0]", "row", "bbox.outside"),
    "grit duplicate id": Case(
        grit(change=set_item([1, "key"], "000373938")), "duplicate row key", "key", "row", "id.duplicate"),
}
# fmt: on


def one_error_line(res: Any) -> str:
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("gtok: error: ")
    return lines[0]


@pytest.mark.parametrize("name", list(CASES))
def test_fail_is_one_line_naming_file_record_field(tmp_path: Path, name: str) -> None:
    case = CASES[name]
    args = case.build(tmp_path)
    out = tmp_path / "out.jsonl"
    line = one_error_line(gtok("ingest", *args, "--out", out))
    bad_file = next(str(a) for a in args if isinstance(a, Path) and a.parent.name != "good")
    assert line.startswith(f"gtok: error: {bad_file}"), line
    assert case.message in line, line
    if case.field is not None:
        assert f"field {case.field}:" in line, line
    if case.unit != "file" and case.reason is not None:
        assert "record " in line, line
    assert not out.exists()


@pytest.mark.parametrize("name", list(CASES))
def test_skip_counts_the_reject_and_reconciles(tmp_path: Path, name: str) -> None:
    case = CASES[name]
    args = case.build(tmp_path)
    out, rejects = tmp_path / "out.jsonl", tmp_path / "rejects.jsonl"
    res = gtok("ingest", *args, "--out", out, "--on-error", "skip", "--rejects", rejects, "--json")
    if case.reason is None:  # a file-level error: the run stops in skip mode too
        assert case.message in one_error_line(res)
        return
    assert res.exit_code == 0, res.output
    summary = orjson.loads(res.stdout)
    assert summary["reconciles"], summary
    unit = summary["units"][case.unit + "s"]
    assert unit["rejected_by_reason"] == {case.reason: case.rejected}, summary
    for counts in summary["units"].values():
        assert counts["read"] == counts["kept"] + counts["excluded"] + counts["rejected"]
    lines = [orjson.loads(line) for line in rejects.read_bytes().splitlines()]
    assert len(lines) == summary["rejected"] == case.rejected
    assert all(line["item"] == case.unit and line["reason"] == case.reason for line in lines)
    assert out.stat().st_size > 0
