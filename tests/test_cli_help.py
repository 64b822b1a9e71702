"""Every command's --help: an example of the command, no value placeholder on flags; --debug on both sides."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from gtok_cli.cli import app, hoist_debug

REPO = Path(__file__).resolve().parents[1]


def command_paths(command: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every registered command and group under the root, as its words after `gtok`."""
    found = [path] if path else []
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        found += command_paths(sub, (*path, name))
    return found


PATHS = command_paths(typer.main.get_command(app))


def test_every_command_is_discovered() -> None:
    names = {" ".join(p) for p in PATHS}
    expected = {"ingest", "ingest coco", "ingest refcoco", "ingest flickr30k", "masks", "export"}
    expected |= {"merge-manifests", "verify", "show", "stats", "encode", "decode", "vocab", "eval"}
    expected |= {"reward"}
    expected |= {"ingest mdetr", "ingest refcoco-hf", "ingest grit"}
    expected |= {"ingest odvg", "ingest vg", "ingest sa1b"}
    assert names == expected


def _help(*words: str) -> str:
    result = CliRunner().invoke(app, [*words, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("path", PATHS, ids=" ".join)
def test_help_has_an_example_of_the_command(path: tuple[str, ...]) -> None:
    lines = [line.strip(" │") for line in _help(*path).splitlines()]
    assert any(line.startswith("Example") for line in lines), "no Example(s) heading"
    examples = [line for line in lines if line.startswith("gtok ")]
    assert any(line.startswith(f"gtok {' '.join(path)} ") for line in examples), examples


@pytest.mark.parametrize("path", [(), *PATHS], ids=lambda p: " ".join(p) or "gtok")
def test_flags_show_no_value_placeholder(path: tuple[str, ...]) -> None:
    text = _help(*path)
    assert "<bool>" not in text and "BOOLEAN" not in text
    assert "--help" in text  # the help option, a flag itself, is listed


def test_flag_rows_have_an_empty_type_column() -> None:
    rows = {line.split()[1]: line for line in _help("export").splitlines() if line.startswith("│    --")}
    assert rows["--gzip"].split()[2] == "Write"  # the help text follows the flag directly
    assert "<int>" in rows["--shard-size"]  # options that take a value keep their type


# ---- --debug anywhere before `--` -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "hoisted"),
    [
        (["export", "x", "--debug"], ["--debug", "export", "x"]),
        (["--debug", "export", "x"], ["--debug", "export", "x"]),
        (["--debug", "export", "--debug"], ["--debug", "export"]),
        (["ingest", "coco", "--debug", "--out", "o"], ["--debug", "ingest", "coco", "--out", "o"]),
        (["decode", "--", "--debug"], ["decode", "--", "--debug"]),  # after --: an argument
        (["decode", "--debug", "--", "--debug"], ["--debug", "decode", "--", "--debug"]),
        (["export", "x"], ["export", "x"]),
        ([], []),
    ],
)
def test_hoist_debug(args: list[str], hoisted: list[str]) -> None:
    assert hoist_debug(args) == hoisted


BAD_BOX = ["encode", "--scheme", "bins", "--size", "640x480", "1,2,3"]
BOX_ERROR = "a box must be 4 comma-separated numbers like 150,100,400,350; got '1,2,3'"


def _gtok(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gtok_cli", *args], cwd=REPO, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    "args",
    [
        [*BAD_BOX, "--debug"],
        ["--debug", *BAD_BOX],
        [*BAD_BOX[:1], "--debug", *BAD_BOX[1:]],
        ["export", "no-such.jsonl", "-s", "bins", "-t", "rec", "-o", "never", "--debug"],
    ],
    ids=["after-args", "before-command", "after-command", "export"],
)
def test_debug_shows_the_traceback(args: list[str]) -> None:
    result = _gtok(*args)
    assert "Traceback (most recent call last)" in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("gtok_cli.errors.")
    assert result.returncode != 0


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (BAD_BOX, f"gtok: error: {BOX_ERROR}"),
        (
            ["export", "no-such.jsonl", "-s", "bins", "-t", "rec", "-o", "never"],
            "gtok: error: no-such.jsonl: no such file",
        ),
    ],
)
def test_without_debug_one_line(args: list[str], line: str) -> None:
    result = _gtok(*args)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [line]


def test_debug_after_double_dash_is_text() -> None:
    result = _gtok("decode", "-s", "loc", "--size", "640x480", "--", "--debug")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == '{"regions":[],"errors":[]}'
