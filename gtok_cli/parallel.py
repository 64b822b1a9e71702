"""Parallel work, one floor below the stages (ingest, export and verify use it).

- :func:`usable_cpus`, :func:`auto_workers`: how many processes a job gets.
- :func:`gc_paused`: the cyclic GC off while a batch builds many acyclic containers.
- Record files in batches: :func:`iter_batches` (blobs of whole lines, or their ``(offset, length)`` span for
  workers to read with :func:`read_span`), hashing each file on the way into its :class:`SourceInfo`.
- :func:`run_batches`: every batch through one :class:`BatchWorker`, in-process or in forked workers, results
  in input order; a result comes back through a shared-memory slot (a slot per batch in flight) when it can
  (:class:`SharedResult`), not the pool's pipe.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import mmap
import multiprocessing
import os
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any, Generic, Protocol, TypeVar, cast

from gtok_cli.errors import InputError
from gtok_cli.jsonio import STDIO, GzipInput, count_newlines

BATCH_BYTES = 4 << 20
"""Input per batch (~10k records): enough to amortise the hand-off, small enough to keep both cores busy."""
SLOT_BYTES = 4 * BATCH_BYTES
"""Shared memory per batch in flight for its output lines (a batch's output is about its input's size); a
larger output comes back through the pool's pipe."""
MAX_AUTO_WORKERS = 4


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def auto_workers(total_bytes: int, min_bytes: int, requested: int = 0) -> int:
    """``requested`` when given; else one per core (at most four) for ``min_bytes`` of input or more, below
    which a pool's start-up costs more than it saves."""
    if requested > 0:
        return requested
    return min(usable_cpus(), MAX_AUTO_WORKERS) if total_bytes >= min_bytes else 1


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


# ---- record files in batches -------------------------------------------------------------------------------
class _HashingReader:
    """A raw file wrapper that hashes every byte read (the manifest's source sha256 at no extra pass)."""

    def __init__(self, fh: IO[bytes]) -> None:
        self.fh = fh
        self.sha = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self.fh.read(n)
        self.sha.update(data)
        self.size += len(data)
        return data

    def drain(self) -> None:
        while self.read(1 << 24):
            pass


@dataclass
class SourceInfo:
    path: str
    sha256: str = ""
    bytes: int = 0


Span = tuple[int, int]
"""``(offset, length)`` of a batch in a plain (not gzipped) record file: workers read it themselves."""


def iter_batches(
    path: str, info: SourceInfo, batch_bytes: int | None = None, spans: bool = False
) -> Iterator[tuple[int, int, bytes | Span]]:
    """``(first line number, line count, blob)`` batches of one record file (``.gz`` read transparently):
    each blob holds whole lines (the workers split them), so the main process only counts newlines and
    hashes. ``spans``: for a plain file, ``(offset, length)`` in place of the blob (workers read it)."""
    spans = spans and not path.endswith(".gz") and path != STDIO  # stdin: read here, handed out as blobs
    batch_bytes = BATCH_BYTES if batch_bytes is None else batch_bytes
    try:
        raw = sys.stdin.buffer if path == STDIO else open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise InputError(f"cannot read file: {exc.strerror}", file=path, reason="file.unreadable") from None
    with raw:
        hashing = _HashingReader(raw)
        stream: Any = hashing
        if path.endswith(".gz"):
            stream = GzipInput(hashing, path)  # damage: one line naming the file and line (exit 2)
        rest = b""
        lineno = 1
        offset = 0
        while True:
            chunk = stream.read(batch_bytes)
            if not chunk:
                break
            cut = chunk.rfind(b"\n")
            if cut < 0:
                rest += chunk
                continue
            if spans:
                count = rest.count(b"\n") + count_newlines(memoryview(chunk)[: cut + 1])
                length = len(rest) + cut + 1
                yield lineno, count, (offset, length)
                offset += length
            else:
                blob = rest + chunk[: cut + 1]
                count = count_newlines(blob)
                yield lineno, count, blob
            rest = chunk[cut + 1 :]
            lineno += count
        if rest:
            yield lineno, 1, (offset, len(rest)) if spans else rest
        hashing.drain()
        info.sha256 = hashing.sha.hexdigest()
        info.bytes = hashing.size


def read_span(path: str, offset: int, length: int) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.pread(fd, length, offset)
    finally:
        os.close(fd)


# ---- the batch runner --------------------------------------------------------------------------------------
class SharedResult(Protocol):
    def to_shared(self, memory: mmap.mmap, start: int, room: int) -> None:
        """Move the bulk of the result into ``memory[start : start + room]`` when it fits."""

    def from_shared(self, memory: memoryview) -> list[memoryview]:
        """Point the result at its bulk in ``memory``; the views are released once the result is used."""


R = TypeVar("R", bound=SharedResult)
R_co = TypeVar("R_co", bound=SharedResult, covariant=True)


class BatchWorker(Protocol[R_co]):
    def run(self, file: str, first_lineno: int, data: bytes | Span) -> R_co:
        """One batch: ``data`` is a blob of whole lines or their span in ``file``."""


@dataclass
class _State(Generic[R]):
    worker: BatchWorker[R]
    slots: mmap.mmap


_STATE: _State[Any] | None = None
"""The worker's state: its worker object and the shared slots (mapped before the pool forks, so the workers
inherit the same memory)."""
_SLOTS: mmap.mmap | None = None


def _init_worker(make_worker: Callable[[], BatchWorker[Any]]) -> None:
    global _STATE
    assert _SLOTS is not None
    _STATE = _State(make_worker(), _SLOTS)


def _run_batch(job: tuple[str, int, bytes | Span, int]) -> SharedResult:
    assert _STATE is not None
    path, lineno, data, slot = job
    res = _STATE.worker.run(path, lineno, data)
    res.to_shared(_STATE.slots, slot * SLOT_BYTES, SLOT_BYTES)
    return res


def run_batches(
    make_worker: Callable[[], BatchWorker[R]],
    records: Iterable[str],
    sources: list[SourceInfo],
    workers: int,
    progress: Any = None,
) -> Iterator[R]:
    """Results of every batch of every record file, in input order (``make_worker`` runs once per process)."""

    def jobs() -> Iterator[tuple[str, int, bytes | Span]]:
        for path, info in zip(records, sources, strict=True):
            for lineno, count, blob in iter_batches(path, info, spans=workers > 1):
                if progress is not None:
                    progress.update(count)
                yield path, lineno, blob

    if workers <= 1:
        worker = make_worker()
        for job in jobs():
            yield worker.run(*job)
        return
    # Batch k writes its output to slot k mod `slots`; it is handed out only once the result that last used
    # that slot has been taken (results come in input order), which also bounds the batches in flight.
    slots = 2 * workers + 2
    free = threading.Semaphore(slots)
    stop = threading.Event()

    def slotted_jobs() -> Iterator[tuple[str, int, bytes | Span, int]]:
        for k, (path, lineno, blob) in enumerate(jobs()):
            free.acquire()
            if stop.is_set():
                return
            yield path, lineno, blob, k % slots

    global _SLOTS
    _SLOTS = memory = mmap.mmap(-1, slots * SLOT_BYTES)  # anonymous, shared with the forked workers
    ctx = multiprocessing.get_context("fork")
    try:
        pool = ctx.Pool(workers, initializer=_init_worker, initargs=(make_worker,))
        with memoryview(memory) as shared, pool:
            try:
                for res in pool.imap(_run_batch, slotted_jobs(), chunksize=1):
                    views = res.from_shared(shared)
                    yield cast(R, res)  # the consumer writes the lines before it asks for the next result
                    for view in views:
                        view.release()
                    free.release()
            finally:
                # the pool's feeder thread may wait for a slot: wake it, or closing the pool waits forever
                stop.set()
                for _ in range(slots):
                    free.release()
    finally:
        _SLOTS = None
        with contextlib.suppress(BufferError):  # a view still held elsewhere: freed with it
            memory.close()
