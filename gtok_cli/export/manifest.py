"""The export manifest (``DIR/manifest.json``) and the merge of job-array parts (file names:
:mod:`gtok_cli.shards.layout`).

A run covering every part writes ``manifest.json``; a run with ``--shard-index I`` writes
``manifest-part-IIIII-of-NNNNN.json``. ``merge_manifests`` joins a complete set of part manifests into the
``manifest.json`` that one run with the same ``--num-shards`` writes: shards listed by name, counts summed,
the command without ``--shard-index``. Counts reconcile per part: ``read = written + sum(skipped)``, where
``read`` counts the records whose image belongs to the part.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from gtok_cli.errors import InputError
from gtok_cli.jsonio import load_json, write_json
from gtok_cli.shards.layout import MANIFEST, PART_MANIFEST_GLOB

DATASET_INFO = "dataset_info.json"


def sum_counts(counts: list[dict[str, Any]]) -> dict[str, Any]:
    skipped: Counter[str] = Counter()
    written_by: Counter[str] = Counter()
    for c in counts:
        skipped.update(c["skipped"])
        written_by.update(c.get("written_by") or {})
    out: dict[str, Any] = {
        "read": sum(c["read"] for c in counts),
        "written": sum(c["written"] for c in counts),
        "skipped": dict(sorted(skipped.items())),
    }
    if written_by:  # tasks that tell their lines apart (relation: geometry / annotation)
        out["written_by"] = dict(sorted(written_by.items()))
    return out


_PER_PART = ("command", "partition", "counts", "shards")


def merge_manifests(parts: list[dict[str, Any]], files: list[str]) -> dict[str, Any]:
    """One manifest from part manifests; they must share every option and cover each part exactly once."""
    if not parts:
        raise InputError("no part manifests to merge", reason="manifest.none")
    first = parts[0]
    n = first["partition"]["num_shards"]
    common = {k: v for k, v in first.items() if k not in _PER_PART}
    seen: list[int] = []
    for m, f in zip(parts, files, strict=True):
        other = {k: v for k, v in m.items() if k not in _PER_PART}
        if other != common:
            diff = sorted(k for k in set(other) | set(common) if other.get(k) != common.get(k))
            raise InputError(
                "part manifest was made with other options or input",
                file=f,
                field=",".join(diff),
                expected=f"same as {files[0]}",
                found="different",
                reason="manifest.mismatch",
            )
        if m["partition"]["num_shards"] != n:
            raise InputError(
                "parts of different splits",
                file=f,
                field="partition.num_shards",
                expected=str(n),
                found=m["partition"]["num_shards"],
                reason="manifest.mismatch",
            )
        seen += m["partition"]["indices"]
    if sorted(seen) != list(range(n)):
        missing = sorted(set(range(n)) - set(seen))
        dup = sorted(k for k, c in Counter(seen).items() if c > 1)
        raise InputError(
            "part manifests do not cover every part exactly once",
            field="partition.indices",
            expected=f"0..{n - 1}",
            found={"missing": missing, "duplicated": dup},
            reason="manifest.incomplete",
        )
    merged = dict(common)
    merged["command"] = drop_shard_index(first["command"])
    merged["partition"] = {"num_shards": n, "indices": list(range(n))}
    merged["counts"] = sum_counts([m["counts"] for m in parts])
    merged["shards"] = sorted((s for m in parts for s in m["shards"]), key=lambda s: s["name"])
    return merged


def drop_shard_index(command: list[str]) -> list[str]:
    out: list[str] = []
    skip = False
    for arg in command:
        if skip:
            skip = False
            continue
        if arg == "--shard-index":
            skip = True
            continue
        if arg.startswith("--shard-index="):
            continue
        out.append(arg)
    return out


def merge_dir(out_dir: Path) -> Path:
    """Merge every ``manifest-part-*.json`` in ``out_dir`` into ``out_dir/manifest.json``."""
    files = sorted(out_dir.glob(PART_MANIFEST_GLOB))
    if not files:
        raise InputError("no part manifests found", file=str(out_dir), reason="manifest.none")
    parts = [load_json(f) for f in files]
    merged = merge_manifests(parts, [str(f) for f in files])
    write_dataset_info(out_dir, merged)
    target = out_dir / MANIFEST
    write_json(target, merged)
    return target


def write_dataset_info(out_dir: Path, manifest: dict[str, Any]) -> None:
    """LLaMA-Factory's ``dataset_info.json`` for sharegpt-style output (``messages``; one entry per shard)."""
    from gtok_cli.trainer_formats import dataset_info, get_format

    fmt = get_format(manifest["format"])
    if not fmt.sharegpt_info:
        return
    names = {s["name"].split(".jsonl")[0]: s["name"] for s in manifest["shards"]}
    write_json(out_dir / DATASET_INFO, dataset_info(fmt, names))
