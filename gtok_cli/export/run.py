"""`gtok export` as a library call: records → samples → lines → shards + manifest.

Flow: the main process streams the record files in blobs of whole lines (hashing them on the way for the
manifest); workers (``--workers``, fork) split and parse each batch, route every record to its part
(blake2b of the image id mod ``--num-shards``), build samples, encode all spans of the batch at once,
serialise lines with orjson (plain ``rec`` records: spliced from pre-rendered fragments,
:mod:`.fastlines`) and hand back one blob per part with its line ends and crc32s; the blobs come back through
shared memory (a slot per batch in flight), not the pool's pipe; the main process gives them, in input
order, to each part's :class:`ShardWriter`, so it does little more than write.
Output never depends on the number of workers or batch size.

Test hook (documented, used by the kill tests): ``GTOK_TEST_KILL_AFTER=shard:K`` / ``marker:K`` SIGKILLs the
process right after the K-th shard file / done marker is written; ``GTOK_TEST_KILL_AFTER=manifest`` right
before the manifest is written.
"""

from __future__ import annotations

import contextlib
import gc
import gzip
import hashlib
import mmap
import multiprocessing
import os
import sys
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import IO, Any, cast

import orjson

from gtok_cli import __version__
from gtok_cli.codecs import Codec, codec_from_params
from gtok_cli.errors import InputError, UsageError
from gtok_cli.export import formats, tasks
from gtok_cli.export.fastlines import RecLines
from gtok_cli.export.manifest import MANIFEST_VERSION, manifest_path, sum_counts, write_dataset_info
from gtok_cli.export.shards import LineBlock, ShardWriter, kill_hook, remove_stale_temps
from gtok_cli.export.templates import Templates, load_templates
from gtok_cli.jsonio import STDIO, count_newlines, write_json

BATCH_BYTES = 4 << 20
"""Input per batch (~10k records): enough to amortise the hand-off, small enough to keep both cores busy."""
PARALLEL_MIN_BYTES = 32 << 20
"""Below this much input the pool's start-up costs more than it saves."""
SLOT_BYTES = 4 * BATCH_BYTES
"""Shared memory per batch in flight for its output lines (a batch's output is about its input's size); a
larger output comes back through the pool's pipe."""


@dataclass(frozen=True)
class ExportOptions:
    records: tuple[str, ...]
    scheme: dict[str, Any]
    """``codec.describe()``: ``{"scheme": name, "params": {...}}``."""
    task: str
    fmt: str
    out_dir: str
    shard_size: int = 100_000
    seed: int = 0
    num_shards: int = 1
    shard_index: int | None = None
    templates_file: str | None = None
    prefix: str = "gtok"
    compress: bool = False
    meta: bool = True
    shape: tasks.ShapeOption = "box"
    workers: int = 0
    """0: automatic (one per core for large input, else in-process)."""
    refine: dict[str, Any] | None = None
    """Refinement settings (``refine.settings.RefineSettings.to_json``) for --task refine / --refine."""

    def indices(self) -> list[int]:
        return list(range(self.num_shards)) if self.shard_index is None else [self.shard_index]

    def command(self) -> list[str]:
        """The canonical full command (every option spelled out, so the manifest alone can repeat it)."""
        cmd = ["gtok", "export", *self.records, "--scheme", self.scheme["scheme"]]
        for k, v in sorted(self.scheme.get("params", {}).items()):
            cmd += ["--" + k.replace("_", "-"), v if isinstance(v, str) else orjson.dumps(v).decode()]
        cmd += ["--task", self.task, "--format", self.fmt, "--out", self.out_dir]
        cmd += ["--shard-size", str(self.shard_size), "--seed", str(self.seed), "--shape", self.shape]
        cmd += ["--prefix", self.prefix, "--num-shards", str(self.num_shards)]
        if self.shard_index is not None:
            cmd += ["--shard-index", str(self.shard_index)]
        if self.templates_file is not None:
            cmd += ["--templates", self.templates_file]
        if self.compress:
            cmd.append("--gzip")
        if not self.meta:
            cmd.append("--no-meta")
        if self.refine is not None:
            from gtok_cli.export.refine_task import command_args

            cmd += command_args(self.refine)
        return cmd


def check_options(opts: ExportOptions, codec: Codec) -> None:
    if opts.task not in tasks.TASKS:
        raise UsageError(f"unknown task {opts.task!r}; choose one of: {', '.join(tasks.TASKS)}")
    if opts.fmt not in formats.FORMATS:
        raise UsageError(f"unknown format {opts.fmt!r}; choose one of: {', '.join(formats.FORMATS)}")
    if opts.shape not in tasks.SHAPE_OPTIONS:
        raise UsageError(f"unknown shape {opts.shape!r}; choose one of: {', '.join(tasks.SHAPE_OPTIONS)}")
    if opts.shard_size < 1:
        raise UsageError("--shard-size must be at least 1")
    if opts.num_shards < 1:
        raise UsageError("--num-shards must be at least 1")
    if opts.shard_index is not None and not 0 <= opts.shard_index < opts.num_shards:
        raise UsageError(f"--shard-index must be in 0..{opts.num_shards - 1}")
    if not opts.prefix or "/" in opts.prefix or opts.prefix.startswith("."):
        raise UsageError(f"bad --prefix {opts.prefix!r}: a plain file-name prefix is needed")
    missing = tasks.kinds_needed(opts.task, opts.shape) - set(codec.kinds)
    if missing:
        raise UsageError(
            f"scheme {codec.name!r} cannot write {', '.join(sorted(missing))} (it writes: "
            f"{', '.join(sorted(codec.kinds))}); choose another --scheme or --shape"
        )
    tasks.check_task_options(opts.task, opts.shape, opts.refine, codec)


# ---- reading -----------------------------------------------------------------------------------------------
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
            stream = gzip.GzipFile(fileobj=cast(Any, hashing), mode="rb")
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


# ---- the per-batch work (runs in workers) ------------------------------------------------------------------
@dataclass(frozen=True)
class WorkSpec:
    scheme: dict[str, Any]
    task: str
    fmt: str
    seed: int
    shape: tasks.ShapeOption
    templates: dict[str, tuple[str, ...]]
    meta: bool
    num_parts: int
    parts: tuple[int, ...]
    emit: str = "lines"
    """``lines``: serialised output lines; ``meta``: ``(meta, image file)`` per sample (verify --against)."""
    refine: dict[str, Any] | None = None


@dataclass
class BatchResult:
    out: dict[int, list[Any]] = field(default_factory=dict)
    """``emit="meta"``: ``(meta, image file)`` per sample, per part."""
    blocks: dict[int, LineBlock] = field(default_factory=dict)
    """``emit="lines"``: the serialised lines of each part (one blob + line ends + crc32s)."""
    read: Counter[int] = field(default_factory=Counter)
    skipped: dict[int, Counter[str]] = field(default_factory=dict)
    shared: dict[int, tuple[int, int]] = field(default_factory=dict)
    """``(offset, length)`` in the shared slots of each block's lines, while they are there."""

    def to_shared(self, memory: mmap.mmap, start: int, room: int) -> None:
        """Move the blocks' lines into ``memory[start : start + room]`` (when they fit): the result then
        pickles small, and the main process writes the lines from there instead of reading them from a pipe
        and unpickling them (measured: ~0.8 s less of the main process's CPU per million ``rec`` lines)."""
        if sum(len(b.data) for b in self.blocks.values()) > room:
            return
        at = start
        for part, block in self.blocks.items():
            n = len(block.data)
            memory[at : at + n] = block.data
            self.shared[part] = (at, n)
            self.blocks[part] = replace(block, data=b"")
            at += n

    def from_shared(self, memory: memoryview) -> list[memoryview]:
        """The blocks' lines as views of the shared slots (valid until the slot is handed out again)."""
        views = []
        for part, (at, n) in self.shared.items():
            views.append(memory[at : at + n])
            self.blocks[part] = replace(self.blocks[part], data=views[-1])
        self.shared = {}
        return views


class Worker:
    def __init__(self, spec: WorkSpec) -> None:
        self.spec = spec
        self.codec = codec_from_params(spec.scheme)
        grid = self.codec.params().get("grid") if "mask" in self.codec.kinds else None
        self.ctx = tasks.TaskContext(
            spec.task, spec.seed, spec.shape, self.codec, Templates(spec.templates), grid
        )
        self.build = tasks.builder_for(spec.task, spec.refine, self.codec)
        self.line = formats.BUILDERS[spec.fmt]
        self.parts = frozenset(spec.parts)
        self.fast: RecLines | None = None
        if (
            spec.task == "rec"
            and spec.shape == "box"
            and spec.emit == "lines"
            and getattr(spec, "refine", None) is None
            and self.build is tasks.build_rec
        ):
            self.fast = RecLines.make(spec.fmt, self.meta if spec.meta else None, self.ctx, self.codec)

    def part_of(self, image_id: Any) -> int:
        if self.spec.num_parts == 1:
            return 0
        return part_of(image_id, self.spec.num_parts)

    def run(self, file: str, first_lineno: int, data: bytes | Span | list[bytes]) -> BatchResult:
        """One batch: ``data`` is a blob of whole lines, their span in ``file``, or the lines themselves."""
        if isinstance(data, tuple):
            data = _read_span(file, *data)
        # the batch makes ~10 acyclic containers per record: the cyclic GC would rescan them all
        # again and again (measured: a third of the time), so it is paused for the batch
        with gc_paused():
            if self.fast is not None:
                blob = data if isinstance(data, bytes) else b"\n".join(data)
                done = self.fast.run(blob, self.part_of if self.spec.num_parts > 1 else None, self.parts)
                if done is not None:
                    out, read, skipped = done
                    return BatchResult({}, out, read, skipped)
            lines = data.split(b"\n") if isinstance(data, bytes) else data
            if lines and not lines[-1] and isinstance(data, bytes):
                lines.pop()
            res = self._run(file, first_lineno, lines)
            if self.spec.emit == "lines":
                res.blocks = {p: LineBlock.of(v) for p, v in res.out.items()}
                res.out = {}
            return res

    def _run(self, file: str, first_lineno: int, lines: list[bytes]) -> BatchResult:
        res = BatchResult(
            {p: [] for p in self.spec.parts}, {}, Counter(), {p: Counter() for p in self.spec.parts}
        )
        samples: list[tuple[int, tasks.Sample]] = []
        for k, raw in enumerate(lines):
            if not raw.strip():
                continue
            lineno = first_lineno + k
            try:
                record = orjson.loads(raw)
                image = record["image"]
                part = self.part_of(image["id"])
                if part not in self.parts:
                    continue
                res.read[part] += 1
                size = (int(image["width"]), int(image["height"]))
                samples.append((part, self.build(record, size, self.ctx)))
            except tasks.Skip as skip:
                res.skipped[part][skip.reason] += 1
            except orjson.JSONDecodeError as exc:
                raise InputError(
                    f"line {lineno} is not valid JSON: {exc}", file=file, reason="json.invalid"
                ) from None
            except (KeyError, TypeError, ValueError, IndexError) as exc:
                rid = record.get("id") if isinstance(record, dict) else None
                raise InputError(
                    f"line {lineno}: malformed record ({type(exc).__name__}: {exc})",
                    file=file,
                    record=str(rid),
                    expected="a gtok record (schemas/record.schema.json)",
                    found=raw[:80].decode(errors="replace"),
                    reason="record.malformed",
                ) from None
        if self.spec.emit == "meta":
            for part, s in samples:
                res.out[part].append((self.meta(s), s.image_file))
            return res
        texts = tasks.encode_requests([s for _, s in samples], self.codec)
        option = orjson.OPT_APPEND_NEWLINE
        for (part, s), t in zip(samples, texts, strict=True):
            obj = self.line(s.sample_id, s.image_file, tasks.render_turns(s, t))
            if self.spec.meta:
                obj["meta"] = self.meta(s)
            res.out[part].append(orjson.dumps(obj, option=option))
        return res

    @staticmethod
    def meta(s: tasks.Sample) -> dict[str, Any]:
        meta = {"record_id": s.record_id, "image_size": [s.size[0], s.size[1]], "regions": s.regions}
        if s.extra_meta is not None:
            meta.update(s.extra_meta)
        return meta


def _read_span(path: str, offset: int, length: int) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.pread(fd, length, offset)
    finally:
        os.close(fd)


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def part_of(image_id: Any, num_parts: int) -> int:
    """The part an image belongs to: blake2b of its JSON id (so ``5`` and ``"5"`` differ) mod N."""
    digest = hashlib.blake2b(orjson.dumps(image_id), digest_size=8).digest()
    return int.from_bytes(digest, "little") % num_parts


_WORKER: Worker | None = None
_SLOTS: mmap.mmap | None = None
"""The shared slots: mapped before the pool forks, so the workers inherit the same memory."""


def _init_worker(spec: WorkSpec) -> None:
    global _WORKER
    _WORKER = Worker(spec)


def _run_batch(job: tuple[str, int, bytes | Span, int]) -> BatchResult:
    assert _WORKER is not None and _SLOTS is not None
    path, lineno, data, slot = job
    res = _WORKER.run(path, lineno, data)
    res.to_shared(_SLOTS, slot * SLOT_BYTES, SLOT_BYTES)
    return res


def run_batches(
    spec: WorkSpec, records: Iterable[str], sources: list[SourceInfo], workers: int, progress: Any = None
) -> Iterator[BatchResult]:
    """Results of every batch of every record file, in input order."""

    def jobs() -> Iterator[tuple[str, int, bytes | Span]]:
        for path, info in zip(records, sources, strict=True):
            for lineno, count, blob in iter_batches(path, info, spans=workers > 1):
                if progress is not None:
                    progress.update(count)
                yield path, lineno, blob

    if workers <= 1:
        worker = Worker(spec)
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
        pool = ctx.Pool(workers, initializer=_init_worker, initargs=(spec,))
        with memoryview(memory) as shared, pool:
            try:
                for res in pool.imap(_run_batch, slotted_jobs(), chunksize=1):
                    views = res.from_shared(shared)
                    yield res  # the consumer writes the lines before it asks for the next result
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


def auto_workers(records: Iterable[str], requested: int) -> int:
    if requested > 0:
        return requested
    total = sum(os.path.getsize(p) for p in records if os.path.exists(p))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return min(cores, 4) if total >= PARALLEL_MIN_BYTES else 1


def _progress(total: int | None, desc: str) -> Any:
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=" lines", file=sys.stderr, dynamic_ncols=True)


# ---- the run -----------------------------------------------------------------------------------------------
def export(opts: ExportOptions) -> dict[str, Any]:
    """Run an export; returns the manifest (also written to the output folder)."""
    codec = codec_from_params(opts.scheme)
    check_options(opts, codec)
    templates = load_templates(opts.templates_file)
    for path in opts.records:
        if path != STDIO and not os.path.isfile(path):
            raise InputError("no such file", file=path, reason="file.missing")
    out_dir = Path(opts.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(out_dir, opts.prefix)
    indices = opts.indices()
    spec = WorkSpec(
        codec.describe(),
        opts.task,
        opts.fmt,
        opts.seed,
        opts.shape,
        dict(templates.by_task),
        opts.meta,
        opts.num_shards,
        tuple(indices),
        refine=opts.refine,
    )
    writers = {
        p: ShardWriter(out_dir, opts.prefix, p, opts.num_shards, opts.shard_size, opts.compress)
        for p in indices
    }
    sources = [SourceInfo(p) for p in opts.records]
    read: Counter[int] = Counter()
    skipped: dict[int, Counter[str]] = {p: Counter() for p in indices}
    bar = _progress(None, "export")
    try:
        for res in run_batches(spec, opts.records, sources, auto_workers(opts.records, opts.workers), bar):
            read.update(res.read)
            for p in indices:
                skipped[p].update(res.skipped[p])
                block = res.blocks.get(p)
                if block is not None and block.lines:
                    writers[p].add_block(block)
        shards = [s.to_json() for p in indices for s in writers[p].close()]
    except BaseException:
        for w in writers.values():
            w.discard()
        raise
    finally:
        if bar is not None:
            bar.close()
    counts = sum_counts(
        [
            {
                "read": read[p],
                "written": sum(s["lines"] for s in shards if s["part"] == p),
                "skipped": skipped[p],
            }
            for p in indices
        ]
    )
    manifest = {
        "kind": "gtok-export",
        "manifest_version": MANIFEST_VERSION,
        "gtok_version": __version__,
        "command": opts.command(),
        "scheme": codec.describe(),
        "task": opts.task,
        "format": opts.fmt,
        "seed": opts.seed,
        "shape": opts.shape,
        "refine": opts.refine,
        "meta": opts.meta,
        "gzip": opts.compress,
        "prefix": opts.prefix,
        "shard_size": opts.shard_size,
        "templates": {"file": opts.templates_file, "sha256": templates.digest()},
        "partition": {"num_shards": opts.num_shards, "indices": indices},
        "sources": [asdict(s) for s in sources],
        "counts": counts,
        "shards": sorted(shards, key=lambda s: s["name"]),
    }
    if len(indices) == opts.num_shards:
        write_dataset_info(out_dir, manifest)
    kill_hook("manifest")
    write_json(manifest_path(out_dir, indices, opts.num_shards), manifest)
    return manifest
