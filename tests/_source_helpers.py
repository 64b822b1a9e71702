"""Shared by the tests of the ODVG / VG / LVIS / Objects365 / SA-1B sources: run an ingest through the CLI,
read its records and summary, export + verify a record file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from _export_helpers import gtok

DATA = Path(__file__).parent / "data"


def ingest(*args: Any) -> tuple[int, str, list[dict[str, Any]], dict[str, Any] | None]:
    """``gtok ingest ARGS… --json``: (exit code, output, records written, the JSON summary or None)."""
    argv = [str(a) for a in args]
    out = Path(argv[argv.index("--out") + 1])
    res = gtok("ingest", *argv, "--json")
    records = [orjson.loads(line) for line in out.read_bytes().splitlines()] if out.exists() else []
    summary = None
    if res.exit_code == 0:
        summary = orjson.loads(res.stdout.strip().splitlines()[-1])
    return res.exit_code, res.output, records, summary


def reconciles(summary: dict[str, Any]) -> bool:
    units = summary["units"].values()
    return (
        all(u["read"] == u["kept"] + u["excluded"] + u["rejected"] for u in units) and summary["reconciles"]
    )


def rejects(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()] if path.exists() else []


def export_and_verify(records: Path, tmp_path: Path, task: str, schemes: tuple[str, ...]) -> None:
    """Each scheme: export ``task`` from ``records`` (something written), verify the shards, and verify a
    ``--no-meta`` export against the records."""
    for scheme in schemes:
        out = tmp_path / f"{task}-{scheme}"
        res = gtok("export", records, "--scheme", scheme, "--task", task, "--out", out)
        assert res.exit_code == 0, res.output
        manifest = orjson.loads((out / "manifest.json").read_bytes())
        assert manifest["counts"]["written"] > 0, manifest["counts"]
        res = gtok("verify", out, "--json")
        assert res.exit_code == 0, res.output
        assert orjson.loads(res.output)["ok"]
        bare = tmp_path / f"{task}-{scheme}-bare"
        res = gtok("export", records, "--scheme", scheme, "--task", task, "--out", bare, "--no-meta")
        assert res.exit_code == 0, res.output
        res = gtok("verify", bare, "--against", records)
        assert res.exit_code == 0, res.output
