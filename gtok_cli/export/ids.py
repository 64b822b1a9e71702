"""Record ids unique across an export: every batch's ids, as 64-bit hashes, checked in the main process.

Workers parse the records (and only they see the ids); the main process gets each batch's ids as a numpy
array of hashes, in input order, and :class:`SeenIds` finds a hash seen before (in sorted levels that merge
as they grow, 8 bytes per record). On a repeat, :func:`duplicate_error` reads the record files again to
name the two lines (an error path: the cost is paid only then). The check covers the records that make a
sample (not the skipped ones) of the parts this run exports.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np

from gtok_cli.errors import InputError
from gtok_cli.jsonio import STDIO, iter_jsonl

_SALT = 0x5BD1E995


def _hash(rid: str) -> int:
    b = rid.encode("utf-8", "surrogatepass")
    return (zlib.crc32(b) << 32) | zlib.crc32(b, _SALT)


def id_hashes(rids: Sequence[str]) -> np.ndarray:
    """The 64-bit hashes of ``rids`` (two crc32s: stable across processes, unlike ``hash``)."""
    return np.fromiter(map(_hash, rids), dtype=np.uint64, count=len(rids))


class SeenIds:
    """The hashes of the ids accepted so far: :meth:`add` returns those of a batch seen before."""

    def __init__(self) -> None:
        self.levels: list[np.ndarray] = []

    def add(self, hashes: np.ndarray) -> np.ndarray:
        if not len(hashes):
            return hashes
        batch = np.sort(hashes)
        repeats = [batch[1:][batch[1:] == batch[:-1]]]
        for level in self.levels:
            at = np.searchsorted(level, batch).clip(max=len(level) - 1)
            repeats.append(batch[level[at] == batch])
        self.levels.append(batch)
        while len(self.levels) > 1 and len(self.levels[-1]) >= len(self.levels[-2]):
            top = self.levels.pop()
            self.levels[-1] = np.sort(np.concatenate((self.levels[-1], top)))
        return np.unique(np.concatenate(repeats))


def duplicate_error(records: Sequence[str], repeated: np.ndarray) -> InputError:
    """The error naming the first line whose id repeats an earlier line's (among ids with these hashes)."""
    wanted = {int(h) for h in repeated}
    first: dict[str, tuple[str, int]] = {}
    for path in records:
        if path == STDIO:
            continue
        for lineno, rec in iter_jsonl(path):
            rid = rec.get("id") if isinstance(rec, dict) else None
            if not isinstance(rid, str) or _hash(rid) not in wanted:
                continue
            if rid in first:
                f, k = first[rid]
                at = f"line {k}" if f == path else f"line {k} of {f}"
                return InputError(
                    f"line {lineno}: repeats the id of {at}",
                    file=path,
                    record=rid,
                    field="id",
                    expected="ids unique in the run",
                    found=rid,
                    reason="id.duplicate",
                )
            first[rid] = (path, lineno)
    return InputError(
        "a record id repeats (the input is stdin: its lines are not kept to name them)",
        file=STDIO,
        field="id",
        reason="id.duplicate",
    )
