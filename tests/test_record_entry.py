"""The record-entry check the stages share (gtok_cli/record_entry.py), as export will call it: the parts
`gtok masks` (one input, fail on the first error) cannot show through its CLI."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gtok_cli.errors import InputError, UsageError
from gtok_cli.paths import check_distinct_inputs
from gtok_cli.record_entry import RecordEntry


def record(rid: str, bbox: list[Any]) -> dict[str, Any]:
    return {
        "id": rid,
        "image": {"file": "a.jpg", "width": 100, "height": 50, "id": 1},
        "regions": [{"bbox": bbox}],
    }


def test_a_rejected_record_does_not_claim_its_id() -> None:
    """Under --on-error skip the rejected record is not written, so a later record with its id is kept."""
    entry = RecordEntry()
    with pytest.raises(InputError) as bad:
        entry.check(record("a", [0, 0, 1e308, 1]), file="x.jsonl", lineno=1)
    assert bad.value.reason == "bbox.outside"
    entry.check(record("a", [0, 0, 10, 10]), file="x.jsonl", lineno=2)
    with pytest.raises(InputError) as dup:
        entry.check(record("a", [0, 0, 10, 10]), file="y.jsonl", lineno=5)
    assert dup.value.reason == "id.duplicate"
    assert str(dup.value) == (
        "y.jsonl, record a, field id: line 5: repeats the id of line 2 of x.jsonl "
        "(expected ids unique in the run, found 'a')"
    )


@pytest.mark.parametrize(
    ("bbox", "reason"),
    [
        ([0, 0, 1e308, 1], "bbox.outside"),
        ([0, 0, "x", 1], "bbox.type"),
        ([0, 0, float("nan"), 1], "bbox.nonfinite"),  # orjson refuses NaN; a library caller may not
        ([0, 0, float("inf"), 1], "bbox.nonfinite"),
        ([5, 0, 4, 1], "bbox.order"),
        ([0, 0, 1], "bbox.shape"),
        ([101, 0, 120, 1], "bbox.outside"),
        ([-101, 0, 10, 1], "bbox.outside"),
    ],
)
def test_reasons_for_rejects_files(bbox: list[Any], reason: str) -> None:
    with pytest.raises(InputError) as exc:
        RecordEntry().check(record("a", bbox), file="x.jsonl", lineno=3)
    assert exc.value.reason == reason
    assert (exc.value.file, exc.value.record, exc.value.field) == ("x.jsonl", "a", "regions[0].bbox")


def _paths(tmp_path: Path, names: list[str]) -> list[str]:
    (tmp_path / "a.jsonl").write_text("{}\n")
    (tmp_path / "b.jsonl").write_text("{}\n")
    if not (tmp_path / "link.jsonl").exists():
        os.symlink(tmp_path / "a.jsonl", tmp_path / "link.jsonl")
        os.link(tmp_path / "a.jsonl", tmp_path / "hard.jsonl")
    return [n if n in ("-", "missing") else str(tmp_path / n) for n in names]


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["a.jsonl", "b.jsonl"], None),
        (["a.jsonl", "missing", "missing"], None),  # the reader names a missing file
        (["a.jsonl", "b.jsonl", "a.jsonl"], "input {a} is given twice: each record would be read twice"),
        (["a.jsonl", "link.jsonl"], "input {link} is given twice (the same file as {a})"),
        (["hard.jsonl", "a.jsonl"], "input {a} is given twice (the same file as {hard})"),
        (["-", "-"], "input - is given twice"),
    ],
    ids=["distinct", "missing twice", "same path", "symlink", "hard link", "stdin twice"],
)
def test_the_same_input_twice_is_a_usage_error(tmp_path: Path, names: list[str], message: str | None) -> None:
    paths = _paths(tmp_path, names)
    if message is None:
        check_distinct_inputs(paths)
        return
    with pytest.raises(UsageError) as exc:
        check_distinct_inputs(paths)
    named = {k: str(tmp_path / f"{k}.jsonl") for k in ("a", "link", "hard")}
    assert str(exc.value).startswith(message.format(**named))


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda r: r["regions"][0].__setitem__("bbox", (0, 0, 10, 10)), "bbox.shape"),  # a tuple is not JSON
        (lambda r: r["regions"][0].__setitem__("bbox", [np.float64(1), 0, 10, 10]), None),  # a float, kept
        (lambda r: r["regions"][0].__setitem__("polyline", [0, 0, 10, 10, 20, 5]), None),
        (lambda r: r["regions"][0].__setitem__("polyline", [0, 0, 10, float("inf")]), "polyline.nonfinite"),
        (lambda r: r["regions"][0].__setitem__("polyline", [0, 0, "1", 2]), "polyline.type"),
        (lambda r: r["regions"].append("x"), "region.type"),
        (lambda r: r["image"].__setitem__("width", np.int64(100)), "record.image"),  # not a JSON int
        (lambda r: r.__setitem__("regions", []), None),
    ],
    ids=[
        "tuple",
        "float subclass",
        "polyline",
        "polyline inf",
        "polyline str",
        "region str",
        "np.int64",
        "none",
    ],
)
def test_fast_and_detailed_paths_agree(change: Any, reason: str | None) -> None:
    """The fast path sends what it does not plainly accept to the detailed one, which decides."""
    r = record("a", [0, 0, 10, 10])
    change(r)
    if reason is None:
        RecordEntry().check(r, file="x.jsonl", lineno=1)
        return
    with pytest.raises(InputError) as exc:
        RecordEntry().check(r, file="x.jsonl", lineno=1)
    assert exc.value.reason == reason
