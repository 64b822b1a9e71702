"""verify catches each kind of damage, exits 1, names shard and line (expected lines worked out by hand)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from _export_helpers import gtok, referring, write_records

SHARD = "gtok-00001.jsonl"  # shard 1 holds records 4..7 (shard size 4), lines 1..4


@pytest.fixture()
def export_dir(tmp_path: Path) -> Path:
    src = write_records(tmp_path / "r.jsonl", [referring(k) for k in range(10)])
    out = tmp_path / "out"
    res = gtok("export", src, "--scheme", "bins", "--task", "rec", "--out", out, "--shard-size", "4")
    assert res.exit_code == 0, res.output
    assert gtok("verify", out).exit_code == 0
    return out


def _edit_line(path: Path, lineno: int, edit: Callable[[dict], None]) -> None:
    lines = path.read_bytes().split(b"\n")
    obj = orjson.loads(lines[lineno - 1])
    edit(obj)
    lines[lineno - 1] = orjson.dumps(obj)
    path.write_bytes(b"\n".join(lines))


def _answer(obj: dict) -> str:
    return obj["conversations"][1]["value"]


def _set_answer(obj: dict, text: str) -> None:
    obj["conversations"][1]["value"] = text


def change_coordinate(out: Path) -> None:
    # rebuild the token in the scheme's own spelling by encoding a moved box
    from gtok_cli.codecs import get_codec

    codec = get_codec("bins", bins=1000)

    def move(obj: dict) -> None:
        w, h = obj["meta"]["image_size"]
        x1, y1, x2, y2 = obj["meta"]["regions"][0]["bbox"]
        _set_answer(obj, codec.encode_box([x1 + 30, y1, x2, y2], (w, h)))  # 30 px ≫ the 0.32 px bound

    _edit_line(out / SHARD, 2, move)


def oov_token(out: Path) -> None:
    _edit_line(out / SHARD, 3, lambda o: _set_answer(o, _answer(o).replace("<box>", "<bxo>", 1)))


def delete_line(out: Path) -> None:
    p = out / SHARD
    lines = p.read_bytes().split(b"\n")
    del lines[1]  # line 2
    p.write_bytes(b"\n".join(lines))


def truncate(out: Path) -> None:
    p = out / SHARD
    data = p.read_bytes()
    p.write_bytes(data[: len(data) - 40])  # cuts line 4


def edit_text(out: Path) -> None:
    def edit(obj: dict) -> None:
        obj["conversations"][0]["value"] += " please"

    _edit_line(out / SHARD, 3, edit)


def change_bins(out: Path) -> None:
    p = out / "manifest.json"
    m = orjson.loads(p.read_bytes())
    m["scheme"]["params"]["bins"] = 999
    p.write_bytes(orjson.dumps(m))


CASES = [
    (change_coordinate, [f"{SHARD}:2"], "region.error"),
    (oov_token, [f"{SHARD}:3"], None),
    (delete_line, [f"{SHARD}:2"], "line.changed"),
    (truncate, [f"{SHARD}:4"], None),
    (edit_text, [f"{SHARD}:3"], "line.changed"),
    (change_bins, [f"{SHARD}:1", "gtok-00000.jsonl:1"], None),
]


@pytest.mark.parametrize(("damage", "where", "check"), CASES, ids=[c[0].__name__ for c in CASES])
def test_verify_names_shard_and_line(
    export_dir: Path, damage: Callable[[Path], None], where: list[str], check: str | None
) -> None:
    damage(export_dir)
    res = gtok("verify", export_dir)
    assert res.exit_code == 1, res.output
    for w in where:
        assert w in res.output, res.output
    if check is not None:
        assert check in res.output
    js = gtok("verify", export_dir, "--json")
    assert js.exit_code == 1
    report = orjson.loads(js.output)
    assert not report["ok"] and report["failures"]


def test_untouched_lines_still_pass(export_dir: Path) -> None:
    change_coordinate(export_dir)
    report = orjson.loads(gtok("verify", export_dir, "--json").output)
    bad = {(f["shard"], f["line"]) for f in report["failures"] if f["line"] is not None}
    assert bad == {(SHARD, 2)}


def test_max_error_px_override(export_dir: Path) -> None:
    # bins=1000 on 640 px: worst error is half a bin = 0.32 px; a 0.01 px allowance must fail some lines
    assert gtok("verify", export_dir, "--max-error-px", "5").exit_code == 0
    assert gtok("verify", export_dir, "--max-error-px", "0.01").exit_code == 1


def test_unusable_input_exits_2(tmp_path: Path) -> None:
    assert gtok("verify", tmp_path).exit_code == 2  # no manifest
    (tmp_path / "manifest.json").write_bytes(b'{"kind": "something else"}')
    res = gtok("verify", tmp_path)
    assert res.exit_code == 2 and "manifest" in res.output


def test_against_records_catches_wrong_image_size(tmp_path: Path) -> None:
    recs = [referring(k) for k in range(4)]
    src = write_records(tmp_path / "r.jsonl", recs)
    out = tmp_path / "out"
    assert gtok("export", src, "--scheme", "bins", "--task", "rec", "--out", out).exit_code == 0
    recs[1]["image"]["width"] = 800  # records now disagree with what the shards were made from
    write_records(src, recs)
    res = gtok("verify", out, "--against", src)
    assert res.exit_code == 1
    assert "line.image_size" in res.output and "gtok-00000.jsonl:2" in res.output
