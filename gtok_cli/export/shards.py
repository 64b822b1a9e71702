"""THE shard writer: fixed-size JSONL shards, atomic, with a per-shard done marker, resumable.

Layout in the output folder (one *part* per ``--shard-index``; a run without ``--num-shards`` is part 0 of 1):

- ``PREFIX-00000.jsonl`` (``.jsonl.gz``) when there is one part, ``PREFIX-<part>-<k>.jsonl`` with five-digit
  ``part`` and ``k`` when there are several. A part's shards depend only on the input, the options and the
  part's index, so the parts of a job array together hold exactly the files of one ``--num-shards N`` run.
- ``<shard file>.stats.json``: the done marker (name, sha256, lines, bytes, each line's crc32), written
  after the shard.

Every file goes through :func:`gtok_cli.jsonio.atomic_path` (temp + fsync + rename): a killed run leaves temp
files only (removed by the next run), never a partial file under a final name. Shard bytes are built in
memory, so on a re-run a shard whose marker and file already hold exactly these bytes is left untouched
(resume); anything else is rewritten. The same input and options give the same bytes (gzip with mtime 0 and
no file name).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import signal
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from gtok_cli.jsonio import atomic_path, sha256_file, write_json

MARKER_SUFFIX = ".stats.json"
_written = 0


def kill_hook(event: str, count: int | None = None) -> None:
    """Test hook: SIGKILL this process at the point ``GTOK_TEST_KILL_AFTER`` names (``shard:K``, ``marker:K``
    after the K-th shard file / done marker this process wrote, or ``manifest`` just before the manifest)."""
    want = os.environ.get("GTOK_TEST_KILL_AFTER")
    if want and want == (event if count is None else f"{event}:{count}"):
        os.kill(os.getpid(), signal.SIGKILL)


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


def remove_stale_temps(out_dir: Path, prefix: str) -> None:
    """Temp files a killed run left behind (``.NAME.RANDOM.tmp`` from ``atomic_path``)."""
    if out_dir.is_dir():
        for p in out_dir.glob(f".{prefix}-*.tmp"):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()


def _marker_matches(path: Path, marker: Path, expected: dict[str, Any]) -> bool:
    try:
        if orjson.loads(marker.read_bytes()) != expected:
            return False
        return path.stat().st_size == expected["bytes"] and sha256_file(path) == expected["sha256"]
    except (OSError, orjson.JSONDecodeError):
        return False


class ShardWriter:
    """Collects one part's lines and writes every ``shard_size`` of them as a shard."""

    def __init__(
        self, out_dir: Path, prefix: str, part: int, num_parts: int, shard_size: int, compress: bool
    ):
        self.out_dir = out_dir
        self.prefix = prefix
        self.part = part
        self.num_parts = num_parts
        self.shard_size = shard_size
        self.compress = compress
        self.shards: list[ShardInfo] = []
        self.resumed = 0
        self._pending: list[bytes] = []

    def add(self, lines: list[bytes]) -> None:
        self._pending.extend(lines)
        while len(self._pending) >= self.shard_size:
            self._flush(self._pending[: self.shard_size])
            del self._pending[: self.shard_size]

    def close(self) -> list[ShardInfo]:
        if self._pending:
            self._flush(self._pending)
            self._pending = []
        return self.shards

    def _flush(self, lines: list[bytes]) -> None:
        name = shard_name(self.prefix, self.part, self.num_parts, len(self.shards), self.compress)
        data = b"".join(lines)
        if self.compress:
            data = gzip.compress(data, compresslevel=6, mtime=0)
        info = ShardInfo(name, self.part, hashlib.sha256(data).hexdigest(), len(lines), len(data))
        path = self.out_dir / name
        marker = marker_path(path)
        expected = info.to_json()
        # per-line crc32 (8 hex digits each, in order) lets verify name the exact line edited after export
        expected["line_crc32"] = "".join([f"{zlib.crc32(line):08x}" for line in lines])
        if _marker_matches(path, marker, expected):
            self.resumed += 1
        else:
            marker.unlink(missing_ok=True)  # the marker must never vouch for other bytes
            global _written
            _written += 1
            with atomic_path(path) as tmp:
                tmp.write_bytes(data)
            kill_hook("shard", _written)
            write_json(marker, expected)
            kill_hook("marker", _written)
        self.shards.append(info)
