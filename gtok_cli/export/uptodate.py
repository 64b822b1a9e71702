"""Is an export's output folder already what this export would write? (``docs/spec.md``, shards: resume)

A re-run over a finished output renders nothing when its manifest was written with the same options (every
field that decides the bytes: scheme, task, format, seed, shape, refine, meta, gzip, prefix, shard size,
templates sha256, partition, gtok version), the sources hash to the sha256s it lists, and every shard it lists
is present, with a done marker agreeing with the manifest, and re-hashes to that sha256: nothing is trusted
that is not re-read. Anything else names the first difference, and export takes its full path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from gtok_cli.jsonio import STDIO, sha256_file
from gtok_cli.shards.layout import marker_path

_NOT_COMPARED = frozenset({"command", "templates", "sources", "counts", "shards"})
"""Manifest fields compared apart (templates: only its sha256) or not at all (command: its spelling)."""


def _load(path: Path) -> dict[str, Any] | None:
    try:
        obj = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return obj if isinstance(obj, dict) else None


def finished_output(
    out_dir: Path, manifest_file: Path, head: dict[str, Any], records: list[str]
) -> tuple[dict[str, Any] | None, str]:
    """``(manifest, "")`` when the folder holds exactly what an export with ``head`` (the manifest fields
    known before reading) over ``records`` writes: the manifest to write, with ``head``'s command and the
    sources as given; else ``(None, why)``, ``why`` empty when there is no manifest at all."""
    if not manifest_file.exists():
        return None, ""
    old = _load(manifest_file)
    if old is None:
        return None, f"{manifest_file.name} is unreadable"
    try:
        return _check(out_dir, old, head, records)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None, f"{manifest_file.name} is malformed"
    except OSError as exc:  # the full path reports it properly
        return None, f"cannot re-read {exc.filename}: {exc.strerror}"


def _check(
    out_dir: Path, old: dict[str, Any], head: dict[str, Any], records: list[str]
) -> tuple[dict[str, Any] | None, str]:
    fields = sorted(k for k in (set(head) | set(old)) - _NOT_COMPARED if old.get(k) != head.get(k))
    if old["templates"]["sha256"] != head["templates"]["sha256"]:
        fields.append("templates")
    if fields:
        return None, f"the options differ from the manifest's ({', '.join(fields)})"
    if STDIO in records:
        return None, "the input is stdin (it cannot be checked against the manifest)"
    sources, shards = old["sources"], old["shards"]
    if len(sources) != len(records):
        return None, "the manifest lists other sources"
    if sum(s["lines"] for s in shards) != old["counts"]["written"]:
        return None, "the manifest's shards do not add up to its count of lines written"
    # cheap checks first (presence, sizes, markers), then the hashes
    for s in shards:
        path = out_dir / s["name"]
        if not path.is_file():
            return None, f"shard {s['name']} is missing"
        if path.stat().st_size != s["bytes"]:
            return None, f"shard {s['name']} has another size than the manifest lists"
        marker = _load(marker_path(path))
        if marker is None:
            return None, f"shard {s['name']} has no readable done marker"
        if {k: v for k, v in marker.items() if k != "line_crc32"} != s:
            return None, f"the done marker of {s['name']} does not match the manifest"
    for r, s in zip(records, sources, strict=True):
        if Path(r).stat().st_size != s["bytes"] or sha256_file(r) != s["sha256"]:
            return None, f"source {r} changed since the manifest was written"
    for s in shards:
        if sha256_file(out_dir / s["name"]) != s["sha256"]:
            return None, f"shard {s['name']} does not match its sha256"
    manifest = {**old, **head}  # fields written after rendering (counts, …) are the old run's
    manifest["sources"] = [{**s, "path": r} for r, s in zip(records, sources, strict=True)]
    return manifest, ""
