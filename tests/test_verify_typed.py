"""verify's msgspec hot path (gtok_cli/verify/typed_lines.py) is sound: whatever it accepts, the JSON Schema
(``schemas/shard_line.schema.json``, checked with ``jsonschema``) accepts; it takes real export lines; and a
whole verify gives the same report with the hot path as without it."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
import pytest
from _export_helpers import gtok, referring, write_records

from gtok_cli.schemas import load_schema
from gtok_cli.verify import run as verify_run
from gtok_cli.verify import verify
from gtok_cli.verify.typed_lines import decode_shard, one_box_columns

FORMATS = ("llava", "messages", "conversations")


def _export(tmp_path: Path, fmt: str, task: str, scheme: str = "bins") -> Path:
    src = write_records(tmp_path / "r.jsonl", [referring(k) for k in range(4)])
    out = tmp_path / f"{fmt}-{task}"
    res = gtok("export", src, "--scheme", scheme, "--task", task, "--format", fmt, "--out", out)
    assert res.exit_code == 0, res.output
    return out


def _lines(out: Path) -> list[dict[str, Any]]:
    return [orjson.loads(x) for x in (out / "gtok-00000.jsonl").read_bytes().splitlines()]


def _set(line: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    m = copy.deepcopy(line)
    target = m
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return m


def _mutations(line: dict[str, Any], fmt: str) -> list[dict[str, Any]]:
    turns = "conversations" if fmt != "messages" else "messages"
    who = "from" if fmt == "llava" else "role"
    out = [
        _set(line, ("meta", "image_size", 0), True),
        _set(line, ("meta", "image_size", 0), 0),
        _set(line, ("meta", "image_size", 0), 1.5),
        _set(line, ("meta", "image_size"), [640]),
        _set(line, ("meta", "regions", 0, "kind"), "blob"),
        _set(line, ("meta", "regions", 0, "bbox"), [1, 2, 3]),
        _set(line, ("meta", "regions", 0, "bbox"), [1, 2, 3, "4"]),
        _set(line, ("meta", "regions", 0, "mask_tokens"), {"grid": 3}),
        _set(line, ("meta", "regions", 0, "mask_tokens"), {"grid": 0, "anchors": []}),
        _set(line, ("meta", "regions", 0, "mask_tokens"), {"grid": 3, "anchors": [[1]]}),
        _set(line, ("meta", "regions", 0, "mask_tokens"), {"grid": 3, "anchors": [[1, -1]]}),
        _set(line, ("meta", "regions", 0, "mask_tokens"), {"grid": 3, "anchors": [], "iou": 0}),
        _set(line, ("meta", "regions", 0, "mask_tokens"), {"grid": 3, "anchors": [], "iou": 1.5}),
        _set(line, ("meta", "regions", 0, "mask_tokens"), {"grid": 3, "anchors": [], "iou": -1e-9}),
        _set(line, ("meta", "regions", 0, "mask_tokens"), {"grid": 3, "anchors": [], "iou": True}),
        _set(line, ("meta", "regions", 0, "mask_tokens"), {"grid": 3, "anchors": [], "iou": None}),
        _set(line, ("meta", "regions", 0, "label"), 5),
        _set(line, ("meta", "regions", 0, "point_from"), "elsewhere"),
        _set(line, ("meta", "regions", 0, "point"), [1, 2, 3]),
        _set(line, ("meta", "record_id"), ""),
        _set(line, ("meta", "record_id"), None),
        _set(line, ("meta",), []),
        _set(line, (turns, 0, who), "system"),
        _set(line, (turns, 1, "value" if fmt == "llava" else "content"), None),
        _set(line, (turns,), line[turns][:1]),
        _set(line, (turns, 0, "extra"), 1),
        _set(line, ("meta", "regions", 0, "extra"), 1),  # allowed by the schema (no additionalProperties)
        _set(line, ("meta", "extra"), {"x": 1}),  # allowed too
    ]
    if fmt == "messages":
        out += [
            _set(line, ("images",), []),
            _set(line, ("images",), ["a", "b"]),
            _set(line, ("images",), [""]),
        ]
    else:
        out += [_set(line, ("image",), ""), _set(line, ("image",), 3)]
    if fmt == "llava":
        out += [_set(line, ("id",), ""), _set(line, ("id",), 7)]
    for key in list(line):
        m = copy.deepcopy(line)
        del m[key]
        out.append(m)
    out.append({**line, "unexpected": 1})
    return out


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("task", ["rec", "point", "reg"])
def test_typed_lines_accept_only_schema_valid_lines(tmp_path: Path, fmt: str, task: str) -> None:
    import jsonschema

    root = load_schema("shard_line")
    schema = jsonschema.Draft202012Validator({"$defs": root["$defs"], "$ref": f"#/$defs/{fmt}"})
    lines = _lines(_export(tmp_path, fmt, task, "grid" if task == "point" else "bins"))
    accepted = rejected = 0
    for line in lines:
        for candidate in [line, *_mutations(line, fmt)]:
            data = orjson.dumps(candidate) + b"\n"
            typed = decode_shard(fmt, data, 1) is not None
            one_box = one_box_columns(fmt, data, 1) is not None
            if typed or one_box:
                assert schema.is_valid(candidate), candidate  # sound: never accepts what the schema refuses
                accepted += 1
            else:
                rejected += 1
            if one_box:
                assert typed  # the one-box shape is narrower than the general one
        assert decode_shard(fmt, orjson.dumps(line) + b"\n", 1) is not None  # real lines take the hot path
    assert accepted and rejected


@pytest.mark.parametrize(
    "raw",
    [
        b"",  # no line
        b"\n",  # a blank line (msgspec would skip it: line numbers would shift)
        b"not json\n",
        b'{"id": "\\ud800"}\n',  # a lone surrogate
    ],
)
def test_typed_lines_refuse_what_needs_the_general_path(raw: bytes) -> None:
    assert decode_shard("llava", raw, 1) is None
    assert one_box_columns("llava", raw, 1) is None


def test_one_box_columns_by_hand(tmp_path: Path) -> None:
    out = _export(tmp_path, "llava", "rec")
    data = (out / "gtok-00000.jsonl").read_bytes()
    cols = one_box_columns("llava", data, 4, chunk=300)  # a chunk smaller than a line: one line at a time
    assert cols is not None
    lines = _lines(out)
    assert cols.texts == [x["conversations"][1]["value"] for x in lines]
    assert cols.rids == [x["meta"]["record_id"] for x in lines]
    assert cols.sizes.tolist() == [x["meta"]["image_size"] for x in lines]
    assert cols.boxes.tolist() == [x["meta"]["regions"][0]["bbox"] for x in lines]


def _tamper(out: Path) -> None:
    shard = out / "gtok-00000.jsonl"
    lines = shard.read_bytes().splitlines()
    first = orjson.loads(lines[0])
    first["meta"]["regions"][0]["bbox"][0] += 50  # one coordinate off by 50 px
    lines[0] = orjson.dumps(first)
    lines[2] = lines[2].replace(b"<box>", b"<box>x", 1)  # a malformed span
    shard.write_bytes(b"\n".join(lines) + b"\n")


@pytest.mark.parametrize("task", ["rec", "reg", "point"])
@pytest.mark.parametrize("tampered", [False, True])
def test_verify_reports_the_same_with_and_without_the_hot_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, task: str, tampered: bool
) -> None:
    out = _export(tmp_path, "llava", task, "grid" if task == "point" else "bins")
    if tampered:
        _tamper(out)
    fast = verify(out).to_json()
    original = verify_run.LineChecker.__init__

    def general_only(self: Any, *args: Any) -> None:
        original(self, *args)
        self.typed = False

    monkeypatch.setattr(verify_run.LineChecker, "__init__", general_only)
    slow = verify(out).to_json()
    assert fast == slow
    assert fast["ok"] is (not tampered)
