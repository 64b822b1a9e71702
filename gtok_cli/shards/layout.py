"""The names in a shard folder (``docs/spec.md``, shards).

- ``PREFIX-00000.jsonl`` (``.jsonl.gz``) when there is one part, ``PREFIX-<part>-<k>.jsonl`` with five-digit
  ``part`` and ``k`` when there are several;
- ``<shard file>.stats.json``: the shard's done marker;
- ``manifest.json`` for a run covering every part, ``manifest-part-IIIII-of-NNNNN.json`` for one part.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MARKER_SUFFIX = ".stats.json"
MANIFEST = "manifest.json"
MANIFEST_VERSION = 1
PART_MANIFEST_GLOB = "manifest-part-*-of-*.json"


@dataclass(frozen=True)
class ShardInfo:
    name: str
    part: int
    sha256: str
    lines: int
    bytes: int

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "part": self.part,
            "sha256": self.sha256,
            "lines": self.lines,
            "bytes": self.bytes,
        }


def shard_name(prefix: str, part: int, num_parts: int, k: int, compress: bool) -> str:
    ext = ".jsonl.gz" if compress else ".jsonl"
    return f"{prefix}-{k:05d}{ext}" if num_parts == 1 else f"{prefix}-{part:05d}-{k:05d}{ext}"


def marker_path(shard: Path) -> Path:
    return shard.with_name(shard.name + MARKER_SUFFIX)


def part_manifest_name(index: int, num_parts: int) -> str:
    return f"manifest-part-{index:05d}-of-{num_parts:05d}.json"


def manifest_path(out_dir: Path, indices: list[int], num_parts: int) -> Path:
    if len(indices) == num_parts:
        return out_dir / MANIFEST
    return out_dir / part_manifest_name(indices[0], num_parts)


def remove_stale_temps(out_dir: Path, prefix: str) -> None:
    """Temp files a killed run left behind (``.NAME.RANDOM.tmp`` from ``atomic_path``)."""
    if out_dir.is_dir():
        for p in out_dir.glob(f".{prefix}-*.tmp"):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
