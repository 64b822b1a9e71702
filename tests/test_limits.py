"""Issue 12 row 2: every row of the limits table, through the command a user would type: the limit itself
works, one more is exit 2 with one line naming the option, the value and the limit, and nothing is written."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from _export_helpers import gtok, referring, write_records
from PIL import Image

from gtok_cli.limits import LIMITS

QWEN_MAX_DEFAULT = 28 * 28 * 16384


def _records(tmp: Path) -> Path:
    (tmp / "images").mkdir(exist_ok=True)
    for k in range(2):
        Image.new("RGB", (640, 480), (128, 128, 128)).save(tmp / "images" / f"blank-{k}.png")
    recs = [referring(k) for k in range(4)]
    for r in recs:
        r["image"]["file"] = f"blank-{r['image']['id']}.png"
    return write_records(tmp / "records.jsonl", recs)


def _export(tmp: Path, *args: object) -> list[object]:
    return ["export", _records(tmp), "--scheme", "loc", "--task", "rec", "--out", tmp / "out", *args]


def _shards(tmp: Path) -> Path:
    res = gtok(*map(str, _export(tmp)))
    assert res.exit_code == 0, res.output
    return tmp / "out"


# limit row → argv for a value (tmp: a fresh folder); the output it would write is tmp / "out"
COMMANDS: dict[str, Callable[[Path, int], list[object]]] = {
    "bins": lambda t, v: ["encode", "-s", "bins", "--bins", v, "--size", "640x480", "10,10,20,20"],
    "grid": lambda t, v: ["encode", "-s", "grid", "--grid", v, "--size", "640x480", "10,10,20,20"],
    "min_pixels": lambda t, v: [
        "encode",
        "-s",
        "qwen2.5-vl",
        "--min-pixels",
        v,
        "--max-pixels",
        max(v, QWEN_MAX_DEFAULT),
        "--size",
        "640x480",
        "10,10,20,20",
    ],
    "max_pixels": lambda t, v: [
        "encode",
        "-s",
        "qwen2.5-vl",
        "--max-pixels",
        v,
        "--size",
        "640x480",
        "1,1,2,2",
    ],
    "shard_size": lambda t, v: _export(t, "--shard-size", v),
    "num_shards": lambda t, v: _export(t, "--num-shards", v),
    "workers": lambda t, v: _export(t, "--workers", v),
    "refine_turns": lambda t, v: [
        "export",
        _records(t),
        "--scheme",
        "grid",
        "--task",
        "rec",
        "--refine",
        "--refine-turns",
        v,
        "--out",
        t / "out",
    ],
    "batch_images": lambda t, v: ["masks", _records(t), "--batch-images", v, "--out", t / "out"],
    "sample": lambda t, v: [
        "show",
        _shards(t / "src"),
        "--images",
        t / "src" / "images",
        "--sample",
        v,
        "--out",
        t / "out.png",
    ],
}


def test_every_limit_has_a_command_test() -> None:
    assert set(COMMANDS) == set(LIMITS)


@pytest.mark.parametrize("param", list(LIMITS))
def test_at_the_limit_it_runs(tmp_path: Path, param: str) -> None:
    (tmp_path / "src").mkdir()
    res = gtok(*map(str, COMMANDS[param](tmp_path, LIMITS[param].maximum)))
    assert res.exit_code == 0, res.output


@pytest.mark.parametrize("param", list(LIMITS))
def test_over_the_limit_is_one_line_exit_2(tmp_path: Path, param: str) -> None:
    (tmp_path / "src").mkdir()
    limit = LIMITS[param]
    res = gtok(*map(str, COMMANDS[param](tmp_path, limit.maximum + 1)))
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"gtok: error: {limit.option} {limit.maximum + 1} is over the limit of ")
    assert f"{limit.maximum:,}" in lines[0] and limit.why in lines[0]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (
            ["encode", "-s", "bins", "--bins", "1e9", "--size", "640x480", "1,1,2,2"],
            "Invalid value for '--bins'",
        ),
        (["vocab", "-s", "grid", "--grid", "100000"], "--grid 100000 is over the limit of 1,024"),
        (["vocab", "-s", "kosmos2", "--grid", "100000"], "--grid 100000 is over the limit of 1,024"),
        (["vocab", "-s", "loc", "--bins", "1000000000"], "--bins 1000000000 is over the limit of 10,000"),
    ],
)
def test_the_audit_cases_end_without_memory_error(argv: list[str], words: str) -> None:
    res = gtok(*argv)
    assert res.exit_code == 2 and words in res.stderr and "Traceback" not in res.output
