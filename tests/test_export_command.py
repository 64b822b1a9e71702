"""The manifest's ``command`` re-runs the export (issue 12 row 10): taken from a manifest, given to the CLI
with another ``--out``, it writes byte-identical shards; every flag it writes is one `gtok export` declares,
and the option description (gtok_cli/export/options.py) names every flag `gtok export` has."""

from __future__ import annotations

import itertools
from pathlib import Path

import orjson
import pytest
import typer
from _export_helpers import folder_bytes, gtok, referring, write_records

from gtok_cli.cli import app
from gtok_cli.export.options import OPTION_FLAGS, REFINE_FLAGS, SCHEME_FLAGS, UNSPELLED_FLAGS

POLYLINES = Path(__file__).parent / "data" / "polylines.jsonl"


def _export_flags() -> set[str]:
    command = typer.main.get_command(app).commands["export"]  # type: ignore[attr-defined]
    return {opt for p in command.params for opt in p.opts if opt.startswith("--")}


def _rerun(first: Path, second: Path) -> list[str]:
    """Re-run ``first``'s manifest command with ``--out second``; the command (as in the manifest)."""
    command: list[str] = orjson.loads((first / "manifest.json").read_bytes())["command"]
    assert command[:2] == ["gtok", "export"]
    args = command[1:]  # "export", …: the app is the `gtok` program
    args[args.index("--out") + 1] = str(second)
    res = gtok(*args)
    assert res.exit_code == 0, res.output
    return command


def _shards(folder: Path) -> dict[str, bytes]:
    return {k: v for k, v in folder_bytes(folder).items() if k != "manifest.json"}


CASES = {
    "bins (pinned rounding param)": ("--scheme", "bins", "--bins", "500", "--task", "rec"),
    "qwen2.5-vl (pinned factor)": ("--scheme", "qwen2.5-vl", "--max-pixels", "200000", "--task", "rec"),
    "messages, gzip, parts, no meta": (
        "--scheme",
        "loc",
        "--task",
        "reg",
        "--format",
        "messages",
        "--gzip",
        "--no-meta",
        "--num-shards",
        "2",
        "--shard-size",
        "3",
        "--seed",
        "7",
        "--prefix",
        "p",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_manifest_command_reruns_to_the_same_shards(tmp_path: Path, case: str) -> None:
    src = write_records(tmp_path / "r.jsonl", [referring(k) for k in range(10)])
    first, second = tmp_path / "first", tmp_path / "second"
    res = gtok("export", src, *CASES[case], "--out", first)
    assert res.exit_code == 0, res.output
    command = _rerun(first, second)
    assert "--rounding" not in command
    assert _shards(first) and _shards(second) == _shards(first)
    m1, m2 = (orjson.loads((d / "manifest.json").read_bytes()) for d in (first, second))
    assert m2["command"] == [str(second) if a == str(first) else a for a in m1["command"]]
    assert {k: v for k, v in m1.items() if k != "command"} == {k: v for k, v in m2.items() if k != "command"}


def test_refine_command_with_non_default_options_reruns(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    args = (
        "--scheme", "grid", "--grid", "16", "--offset-step", "0.25",
        "--task", "refine", "--shape", "polyline",
        "--refine-turns", "3", "--refine-steps", "0.2,0.5,0.3", "--refine-extra-rate", "0.25",
        "--delete-radius", "inf", "--erode-steps", "2", "--dilate-steps", "1.5",
        "--class-ratios", "1,2,3,4", "--seed", "3",
    )  # fmt: skip
    res = gtok("export", POLYLINES, *args, "--out", first)
    assert res.exit_code == 0, res.output
    command = _rerun(first, second)
    assert _shards(second) == _shards(first)
    # the settings are spelled out as given (none left at its default)
    spelled = dict(itertools.pairwise(command))
    assert spelled["--refine-turns"] == "3" and spelled["--delete-radius"] == "inf"
    assert spelled["--refine-steps"] == "0.2,0.5,0.3" and spelled["--class-ratios"] == "1.0,2.0,3.0,4.0"
    assert spelled["--offset-step"] == "0.25" and spelled["--grid"] == "16"
    manifest = orjson.loads((second / "manifest.json").read_bytes())
    assert manifest["refine"]["turns"] == 3 and manifest["refine"]["targets"]["delete_radius_cells"] is None


def test_every_flag_the_command_writes_is_an_export_flag() -> None:
    declared = _export_flags()
    described = (
        {"--scheme"} | {f for _, f, _ in OPTION_FLAGS} | set(SCHEME_FLAGS.values()) | set(REFINE_FLAGS)
    )
    assert described <= declared
    # and nothing `gtok export` takes is missing from the description (so nothing can drift out of it)
    assert declared - described == set(UNSPELLED_FLAGS)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--refine-turns", "2"), "refinement options need --task refine or --refine"),
        (("--class-ratios", "1,1,1,1"), "refinement options need --task refine or --refine"),
    ],
)
def test_refinement_flags_without_refinement_are_refused(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    src = write_records(tmp_path / "r.jsonl", [referring(0)])
    res = gtok("export", src, "--scheme", "grid", "--task", "rec", "--out", tmp_path / "o", *args)
    assert res.exit_code == 2
    assert message in res.output
    assert not (tmp_path / "o").exists()
