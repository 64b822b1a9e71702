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

import numpy as np
import numpy.typing as npt
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


@dataclass(frozen=True)
class LineBlock:
    """Serialised lines as one blob: ``ends[k]`` is the end offset of line k, ``crcs[k]`` its crc32.

    Workers build these, so the main process moves a few large objects instead of one per line."""

    data: bytes
    ends: npt.NDArray[np.int64]
    crcs: npt.NDArray[np.uint32]

    @property
    def lines(self) -> int:
        return len(self.ends)

    @staticmethod
    def of(lines: list[bytes]) -> LineBlock:
        n = len(lines)
        ends = np.cumsum(np.fromiter(map(len, lines), dtype=np.int64, count=n))
        crcs = np.fromiter(map(zlib.crc32, lines), dtype=np.uint32, count=n)
        return LineBlock(b"".join(lines), ends, crcs)

    @staticmethod
    def of_blob(data: bytes) -> LineBlock:
        """A blob of whole lines, each ending in a newline (JSON lines hold no raw newline)."""
        ends = np.flatnonzero(np.frombuffer(data, np.uint8) == 10).astype(np.int64) + 1
        view, crc32 = memoryview(data), zlib.crc32
        starts = [0, *ends[:-1].tolist()]
        crcs = np.fromiter(map(crc32, map(view.__getitem__, map(slice, starts, ends.tolist()))), np.uint32)
        return LineBlock(data, ends, crcs)

    def line_list(self) -> list[bytes]:
        """The lines, each with its newline."""
        starts = [0, *self.ends[:-1].tolist()]
        return [self.data[a:b] for a, b in zip(starts, self.ends.tolist(), strict=True)]

    def split(self, k: int) -> tuple[LineBlock, LineBlock]:
        """The first ``k`` lines and the rest."""
        cut = int(self.ends[k - 1]) if k else 0
        head = LineBlock(self.data[:cut], self.ends[:k], self.crcs[:k])
        return head, LineBlock(self.data[cut:], self.ends[k:] - cut, self.crcs[k:])


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
        self._pending: list[LineBlock] = []
        self._count = 0

    def add(self, lines: list[bytes]) -> None:
        self.add_block(LineBlock.of(lines))

    def add_block(self, block: LineBlock) -> None:
        while self._count + block.lines >= self.shard_size:
            head, block = block.split(self.shard_size - self._count)
            self._pending.append(head)
            self._flush()
        if block.lines:
            self._pending.append(block)
            self._count += block.lines

    def close(self) -> list[ShardInfo]:
        if self._count:
            self._flush()
        return self.shards

    def _flush(self) -> None:
        blocks, self._pending, self._count = self._pending, [], 0
        lines = sum(b.lines for b in blocks)
        name = shard_name(self.prefix, self.part, self.num_parts, len(self.shards), self.compress)
        # plain shards are hashed and written block by block (no copy of the whole shard)
        chunks = [b.data for b in blocks]
        if self.compress:
            chunks = [gzip.compress(b"".join(chunks), compresslevel=6, mtime=0)]
        sha = hashlib.sha256()
        for chunk in chunks:
            sha.update(chunk)
        info = ShardInfo(name, self.part, sha.hexdigest(), lines, sum(map(len, chunks)))
        path = self.out_dir / name
        marker = marker_path(path)
        expected = info.to_json()
        # per-line crc32 (8 hex digits each, in order) lets verify name the exact line edited after export
        crcs = np.concatenate([b.crcs for b in blocks]) if blocks else np.zeros(0, np.uint32)
        expected["line_crc32"] = crcs.astype(">u4").tobytes().hex()
        if _marker_matches(path, marker, expected):
            self.resumed += 1
        else:
            marker.unlink(missing_ok=True)  # the marker must never vouch for other bytes
            global _written
            _written += 1
            with atomic_path(path) as tmp, open(tmp, "wb") as fh:
                fh.writelines(chunks)
            kill_hook("shard", _written)
            write_json(marker, expected)
            kill_hook("marker", _written)
        self.shards.append(info)
