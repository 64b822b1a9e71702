"""THE shard writer: fixed-size JSONL shards, atomic, with a per-shard done marker, resumable.

Layout in the output folder (names: :mod:`gtok_cli.shards.layout`; one *part* per ``--shard-index``; a run
without ``--num-shards`` is part 0 of 1): a part's shards depend only on the input, the options and the part's
index, so the parts of a job array together hold exactly the files of one ``--num-shards N`` run. Each shard's
done marker (name, sha256, lines, bytes, each line's crc32) is written after the shard.

Every file is written as a temp file beside its final name, then fsynced and renamed
(:func:`gtok_cli.jsonio.temp_beside` / :func:`~gtok_cli.jsonio.commit_temp`): a killed run leaves temp files
only (removed by the next run), never a partial file under a final name. A plain shard's lines go to its temp
file as they come (hashed on the way); a gzip shard is compressed whole in memory. On a re-run, a shard whose
marker and file already hold exactly these bytes is left untouched (resume: the temp is dropped); anything
else is replaced. The same input and options give the same bytes (gzip with mtime 0 and no file name).

Use it as a context manager: ``with ShardWriter(...) as w: w.add_block(...)``; ``w.close()`` (inside the
block) writes the last shard and returns every shard's :class:`ShardInfo`; leaving the block on an exception
removes the shard in progress (its temp file).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import signal
import zlib
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import numpy as np
import numpy.typing as npt
import orjson

from gtok_cli.jsonio import commit_temp, sha256_file, temp_beside, write_json, writing
from gtok_cli.shards.layout import ShardInfo, marker_path, shard_name

_written = 0


def kill_hook(event: str, count: int | None = None) -> None:
    """Test hook: SIGKILL this process at the point ``GTOK_TEST_KILL_AFTER`` names (``shard:K``, ``marker:K``
    after the K-th shard file / done marker this process wrote, or ``manifest`` just before the manifest)."""
    want = os.environ.get("GTOK_TEST_KILL_AFTER")
    if want and want == (event if count is None else f"{event}:{count}"):
        os.kill(os.getpid(), signal.SIGKILL)


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

    Workers build these, so the main process moves a few large objects instead of one per line. ``data`` may
    be a view of memory the workers share (valid only until the writer has taken the block)."""

    data: bytes | memoryview
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
        starts, data = [0, *self.ends[:-1].tolist()], self.data
        return [bytes(data[a:b]) for a, b in zip(starts, self.ends.tolist(), strict=True)]

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
        self._count = 0
        self._crcs: list[npt.NDArray[np.uint32]] = []
        self._pending: list[bytes] = []
        """gzip: the shard's lines so far (compressed whole at the end)."""
        self._tmp: Path | None = None
        self._fh: IO[bytes] | None = None
        self._sha = hashlib.sha256()
        self._bytes = 0

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if kind is not None:
            self.discard()

    def add(self, lines: list[bytes]) -> None:
        self.add_block(LineBlock.of(lines))

    def add_block(self, block: LineBlock) -> None:
        """Take the block's lines now (a view into shared memory may be reused once this returns)."""
        while self._count + block.lines >= self.shard_size:
            head, block = block.split(self.shard_size - self._count)
            self._take(head)
            self._flush()
        if block.lines:
            self._take(block)

    def close(self) -> list[ShardInfo]:
        if self._count:
            self._flush()
        return self.shards

    def discard(self) -> None:
        """Drop the shard in progress (its temp file): the run failed."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)
            self._tmp = None

    def _name(self) -> str:
        return shard_name(self.prefix, self.part, self.num_parts, len(self.shards), self.compress)

    def _take(self, block: LineBlock) -> None:
        if self.compress:
            self._pending.append(bytes(block.data))
        else:
            if self._fh is None:
                self._tmp = temp_beside(self.out_dir / self._name())
                # buffered: its write() writes all or raises (a raw write may write part); a block larger than
                # the buffer goes straight to the file, uncopied
                self._fh = open(self._tmp, "wb")  # noqa: SIM115 - closed in _flush / discard
            with writing(self.out_dir / self._name(), self._tmp):
                self._fh.write(block.data)
            self._sha.update(block.data)
            self._bytes += len(block.data)
        self._crcs.append(block.crcs)
        self._count += block.lines

    def _flush(self) -> None:
        lines, self._count = self._count, 0
        crcs, self._crcs = self._crcs, []
        name = self._name()
        path = self.out_dir / name
        if self.compress:
            data = gzip.compress(b"".join(self._pending), compresslevel=6, mtime=0)
            self._pending = []
            self._tmp = temp_beside(path)
            with writing(path, self._tmp):
                self._tmp.write_bytes(data)
            sha, size = hashlib.sha256(data).hexdigest(), len(data)
        else:
            assert self._fh is not None
            with writing(path, self._tmp):
                self._fh.close()
            self._fh = None
            sha, size = self._sha.hexdigest(), self._bytes
            self._sha, self._bytes = hashlib.sha256(), 0
        tmp, self._tmp = self._tmp, None
        assert tmp is not None
        info = ShardInfo(name, self.part, sha, lines, size)
        marker = marker_path(path)
        expected = info.to_json()
        # per-line crc32 (8 hex digits each, in order) lets verify name the exact line edited after export
        line_crcs = np.concatenate(crcs) if crcs else np.zeros(0, np.uint32)
        expected["line_crc32"] = line_crcs.astype(">u4").tobytes().hex()
        if _marker_matches(path, marker, expected):
            self.resumed += 1
            tmp.unlink()
        else:
            marker.unlink(missing_ok=True)  # the marker must never vouch for other bytes
            global _written
            _written += 1
            try:
                commit_temp(tmp, path)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            kill_hook("shard", _written)
            write_json(marker, expected)
            kill_hook("marker", _written)
        self.shards.append(info)
