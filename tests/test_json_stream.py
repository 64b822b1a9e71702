"""The streaming reader of top-level JSON arrays (Visual Genome's files): same elements as json.loads, at any
block size, and one-line errors for broken files."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gtok_cli.errors import InputError
from gtok_cli.ingest.json_stream import iter_json_array

VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=60, deadline=None)
@given(st.lists(VALUES, max_size=8), st.integers(1, 17), st.sampled_from([None, 1]))
def test_elements_equal_json_loads(
    tmp_path_factory: Any, items: list[Any], block: int, indent: int | None
) -> None:
    path = tmp_path_factory.mktemp("s") / "a.json"
    path.write_text(json.dumps(items, indent=indent, ensure_ascii=False), encoding="utf-8")
    got = [v for _, v in iter_json_array(path, block_bytes=block)]
    assert got == json.loads(path.read_text(encoding="utf-8"))


def test_numbers_cut_at_a_block_end_are_whole(tmp_path: Path) -> None:
    path = tmp_path / "n.json"
    path.write_text("[12345, 678, 9]")
    for block in range(1, 16):
        assert [v for _, v in iter_json_array(path, block_bytes=block)] == [12345, 678, 9]


def test_gzip_and_progress(tmp_path: Path) -> None:
    path = tmp_path / "a.json.gz"
    data = json.dumps([{"id": k} for k in range(100)]).encode()
    path.write_bytes(gzip.compress(data))
    seen: list[int] = []
    assert [v["id"] for _, v in iter_json_array(path, block_bytes=64, on_bytes=seen.append)] == list(
        range(100)
    )
    assert sum(seen) == len(data)


@pytest.mark.parametrize(
    ("text", "reason", "record"),
    [
        ('[{"a": 1}, {"a": 2', "json.truncated", "[1]"),
        ('[{"a": 1}, {"a": "unterminated', "json.truncated", "[1]"),
        ('[{"a": 1},', "json.truncated", "[1]"),
        ('[{"a": 1}', "json.truncated", "[1]"),
        ('[{"a": 1} {"a": 2}]', "json.invalid", "[1]"),
        ('[{"a": 1}, {"a": nope}]', "json.invalid", "[1]"),
        ('{"a": 1}', "json.structure", None),
        ("", "json.structure", None),
        ("[1] 2", "json.invalid", "[1]"),
    ],
)
def test_broken_files_are_one_line_errors(tmp_path: Path, text: str, reason: str, record: str | None) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(InputError) as info:
        list(iter_json_array(path, block_bytes=4))
    assert info.value.reason == reason
    assert info.value.record == record
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_bad_utf8(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(b'[{"a": "\xff"}]')
    with pytest.raises(InputError) as info:
        list(iter_json_array(path))
    assert info.value.reason == "text.encoding"
