"""`gtok export -` reads records from stdin; `--refine-steps` is a distribution (sums to 1)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from _export_helpers import folder_bytes, gtok, referring, write_records
from typer.testing import CliRunner

from gtok_cli.cli import app


def _export_stdin(data: bytes, out: Path, *args: str) -> Any:
    argv = ["export", "-", "--scheme", "bins", "--task", "rec", "--out", str(out), *args]
    return CliRunner().invoke(app, argv, input=data)


@pytest.mark.parametrize("n", [1, 7])
def test_export_reads_stdin_like_a_file(tmp_path: Path, n: int) -> None:
    src = write_records(tmp_path / "r.jsonl", [referring(k) for k in range(n)])
    from_file, from_stdin = tmp_path / "file", tmp_path / "stdin"
    assert gtok("export", src, "--scheme", "bins", "--task", "rec", "--out", from_file).exit_code == 0
    result = _export_stdin(src.read_bytes(), from_stdin)
    assert result.exit_code == 0, result.output
    assert f"read {n}, written {n} in 1 shard(s)" in result.stderr
    shards = {k: v for k, v in folder_bytes(from_stdin).items() if k.endswith(".jsonl")}
    assert shards and shards == {k: v for k, v in folder_bytes(from_file).items() if k.endswith(".jsonl")}
    manifest = json.loads((from_stdin / "manifest.json").read_text())
    expected_source = json.loads((from_file / "manifest.json").read_text())["sources"][0]
    assert manifest["sources"] == [{**expected_source, "path": "-"}]  # same bytes and sha256, named "-"
    assert gtok("verify", from_stdin).exit_code == 0


def test_export_stdin_bad_line_names_stdin_and_line(tmp_path: Path) -> None:
    good = json.dumps(referring(0)).encode() + b"\n"
    result = _export_stdin(good + b"{not json\n", tmp_path / "out")
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("gtok: error: -") and "line 2" in lines[0], lines


def test_export_stdin_given_twice_is_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["export", "-", "-", "-s", "bins", "-t", "rec", "-o", str(tmp_path / "o")], input=b""
    )
    assert result.exit_code == 2
    assert result.stderr.strip() == "gtok: error: input - is given twice: each record would be read twice"
    assert not (tmp_path / "o").exists()


# ---- --refine-steps must sum to 1 -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("steps", "total"),
    [
        ("0.5,0.3", "0.8"),
        ("0.5,0.35,0.1,0.025,0.03", "1.005"),
        ("2", "2.0"),
        ("0.6,0.6", "1.2"),
        ("1,1e-8", "1.00000001"),  # beyond the 1e-9 tolerance
    ],
)
def test_refine_steps_not_summing_to_one(tmp_path: Path, steps: str, total: str) -> None:
    src = write_records(tmp_path / "r.jsonl", [referring(0)])
    out = tmp_path / "out"
    result = gtok("export", src, "-s", "grid", "-t", "refine", "--refine-steps", steps, "-o", out)
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"gtok: error: --refine-steps must sum to 1 (P(0 cells), P(1 cell), …), got {steps!r}: sum {total}"
    ]
    assert not out.exists()


@pytest.mark.parametrize(
    "steps", ["1", "0.5,0.35,0.1,0.025,0.025", "0.1,0.2,0.7", "0.7,0.3", "1,1e-10", "0,1"]
)
def test_refine_steps_summing_to_one(tmp_path: Path, steps: str) -> None:
    src = write_records(tmp_path / "r.jsonl", [referring(0)])
    out = tmp_path / "out"
    result = gtok("export", src, "-s", "grid", "-t", "refine", "--refine-steps", steps, "-o", out)
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert "--refine-steps" in manifest["command"]
