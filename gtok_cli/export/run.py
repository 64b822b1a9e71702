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
import functools
import hashlib
import mmap
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import orjson

from gtok_cli import __version__
from gtok_cli.codecs import Codec, codec_from_params
from gtok_cli.counting import CountSettings
from gtok_cli.errors import InputError
from gtok_cli.export import count_task, dispatch, tasks
from gtok_cli.export.empty import nothing_written
from gtok_cli.export.fastlines import RecLines
from gtok_cli.export.ids import SeenIds, duplicate_error, id_hashes
from gtok_cli.export.manifest import sum_counts, write_dataset_info
from gtok_cli.export.options import ExportOptions, check_options
from gtok_cli.export.phrases import ReferringPhrases, load_phrases, refuse_stdin
from gtok_cli.export.templates import Templates, load_templates
from gtok_cli.export.uptodate import finished_output
from gtok_cli.jsonio import STDIO, sha256_file, write_json
from gtok_cli.parallel import SourceInfo, Span, auto_workers, gc_paused, read_span, run_batches
from gtok_cli.paths import check_distinct_inputs
from gtok_cli.record_entry import RecordEntry
from gtok_cli.refine.settings import RefineSettings
from gtok_cli.shards.layout import MANIFEST_VERSION, manifest_path, remove_stale_temps
from gtok_cli.shards.writer import LineBlock, ShardWriter, kill_hook
from gtok_cli.trainer_formats import get_format

PARALLEL_MIN_BYTES = 32 << 20
"""Below this much input the pool's start-up costs more than it saves."""


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
    refine: RefineSettings | None = None
    box_as: str | None = None
    count: CountSettings | None = None
    """``--task count``'s settings, with the records' category table (:func:`.count_task.category_table`)."""
    phrases: ReferringPhrases | None = None
    """``--task relation --phrases``: the referring expressions by object, read once in the main process."""

    @staticmethod
    def of(manifest: Mapping[str, Any], templates: Templates, emit: str = "lines") -> WorkSpec:
        """The work an export's manifest describes (its scheme, task, format, seed, shape, meta, refine and
        partition): export and ``verify --against`` build the same samples from it."""
        part = manifest["partition"]
        return WorkSpec(
            manifest["scheme"],
            manifest["task"],
            manifest["format"],
            manifest["seed"],
            manifest["shape"],
            dict(templates.by_task),
            manifest["meta"],
            part["num_shards"],
            tuple(part["indices"]),
            emit=emit,
            refine=_settings_of(manifest, "refine", RefineSettings.from_json, "refinement"),
            box_as=manifest.get("box_as"),
            count=_settings_of(manifest, "count", CountSettings.from_json, "count"),
            phrases=_phrases_of(manifest),
        )

    def with_categories(self, records: list[str]) -> WorkSpec:
        """``--task count`` drawing negatives: the category table of ``records`` added (read once here, in the
        main process, so every worker draws from the same universe)."""
        if self.count is None or self.count.negatives <= 0:
            return self
        return replace(self, count=replace(self.count, categories=count_task.category_table(records)))


@functools.lru_cache(maxsize=2)
def _phrases_table(path: str, sha256: str) -> ReferringPhrases:
    """The file's expressions, parsed once per content (the manifest entry and the export's work spec both
    ask for them; the sha256 in the key makes a changed file a new entry)."""
    return load_phrases(path)


def phrases_entry(path: str) -> dict[str, Any]:
    """The manifest's ``phrases``: the file, its sha256 (a changed file re-exports) and what it held."""
    refuse_stdin(path)
    sha256 = sha256_file(path)
    return {"file": path, "sha256": sha256, **_phrases_table(path, sha256).summary()}


def _phrases_of(manifest: Mapping[str, Any]) -> ReferringPhrases | None:
    """The export's referring expressions, read again from the file its manifest names (which must be the
    file it was exported with: same sha256)."""
    entry = manifest.get("phrases")
    if entry is None:
        return None
    path = entry.get("file") if isinstance(entry, dict) else None
    if not isinstance(path, str):
        raise InputError("malformed phrases entry", field="phrases", reason="manifest.phrases")
    if not Path(path).is_file():
        raise InputError("the --phrases file of this export is gone", file=path, reason="file.missing")
    sha256 = sha256_file(path)
    if sha256 != entry.get("sha256"):
        raise InputError(
            "the --phrases file changed since the export (sha256 differs)",
            file=path,
            reason="phrases.changed",
        )
    return _phrases_table(path, sha256)


T = TypeVar("T")


def _settings_of(manifest: Mapping[str, Any], key: str, parse: Callable[[Any], T], what: str) -> T | None:
    """The manifest's ``key`` settings (refine, count), parsed once: a malformed entry is bad input, not a
    crash."""
    if manifest.get(key) is None:
        return None
    try:
        return parse(manifest[key])
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"malformed {what} settings: {exc!r}", field=key, reason=f"manifest.{key}") from None


@dataclass
class BatchResult:
    out: dict[int, list[Any]] = field(default_factory=dict)
    """``emit="meta"``: ``(meta, image file)`` per sample, per part."""
    blocks: dict[int, LineBlock] = field(default_factory=dict)
    """``emit="lines"``: the serialised lines of each part (one blob + line ends + crc32s)."""
    read: Counter[int] = field(default_factory=Counter)
    skipped: dict[int, Counter[str]] = field(default_factory=dict)
    ids: Any = None
    """The 64-bit hashes of the batch's sample ids (:func:`.ids.id_hashes`), checked unique by the caller."""
    shared: dict[int, tuple[int, int]] = field(default_factory=dict)
    """``(offset, length)`` in the shared slots of each block's lines, while they are there."""
    written_by: Counter[str] = field(default_factory=Counter)
    """Lines by kind, for tasks that say (``relation``: geometry / annotation), into ``counts.written_by``."""

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
            spec.task,
            spec.seed,
            spec.shape,
            self.codec,
            Templates(spec.templates),
            grid,
            box_as=spec.box_as,
            count=spec.count,
            phrases=spec.phrases,
        )
        self.build = dispatch.builder_for(spec.task, spec.refine, self.codec)
        self.line = get_format(spec.fmt).build
        self.objects = get_format(spec.fmt).objects_key is not None
        """Geometry as ms-swift placeholders + objects (``swift``), not as the scheme's text."""
        self.parts = frozenset(spec.parts)
        self.fast: RecLines | None = None
        if (
            not self.objects
            and spec.task == "rec"
            and spec.shape == "box"
            and spec.box_as is None
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
            data = read_span(file, *data)
        # the batch makes ~10 acyclic containers per record: the cyclic GC would rescan them all
        # again and again (measured: a third of the time), so it is paused for the batch
        with gc_paused():
            if self.fast is not None:
                blob = data if isinstance(data, bytes) else b"\n".join(data)
                done = self.fast.run(blob, self.part_of if self.spec.num_parts > 1 else None, self.parts)
                if done is not None:
                    out, read, skipped = done
                    return BatchResult({}, out, read, skipped, id_hashes(self.fast.rids))
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
        rids: list[str] = []
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
                built = self.build(record, size, self.ctx)
                # the records a task skips are not checked (nor on the fast path, fastlines.entry_ok)
                RecordEntry().check(record, file=file, lineno=lineno)
                if isinstance(built, tasks.Samples):  # several lines per record: its items are counted
                    res.read[part] += built.items - 1
                    res.skipped[part].update(built.skipped)
                    res.written_by.update(built.written_by)
                    samples += [(part, s) for s in built.samples]
                else:
                    samples.append((part, built))
                rids.append(record["id"])
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
        res.ids = id_hashes(rids)
        if self.spec.emit == "meta":
            for part, s in samples:
                res.out[part].append((self.meta(s), s.image_file))
            return res
        objects: list[dict[str, Any] | None]
        if self.objects:
            texts, objs = tasks.encode_placeholders([s for _, s in samples], self.codec)
            objects = list(objs)
        else:
            texts = tasks.encode_requests([s for _, s in samples], self.codec)
            objects = [None] * len(texts)
        option = orjson.OPT_APPEND_NEWLINE
        for (part, s), t, o in zip(samples, texts, objects, strict=True):
            try:
                obj = self.line(s.sample_id, s.image_file, tasks.render_turns(s, t), o)
            except ValueError as exc:  # a text holding a placeholder itself (ms-swift would misread it)
                raise InputError(
                    str(exc), file=file, record=s.record_id, field="text", reason="text.placeholder"
                ) from None
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


def part_of(image_id: Any, num_parts: int) -> int:
    """The part an image belongs to: blake2b of its JSON id (so ``5`` and ``"5"`` differ) mod N."""
    digest = hashlib.blake2b(orjson.dumps(image_id), digest_size=8).digest()
    return int.from_bytes(digest, "little") % num_parts


def _input_bytes(records: Iterable[str]) -> int:
    return sum(os.path.getsize(p) for p in records if os.path.exists(p))


def sample_meta(manifest: dict[str, Any], records: list[str]) -> tuple[dict[int, list[Any]], list[str]]:
    """What an export with this manifest makes of ``records``, per part: ``(meta, image file)`` per sample,
    in line order (``verify --against`` compares the shards with it); and each record file's sha256."""
    for r in records:
        if not Path(r).is_file():
            raise InputError("no such file", file=r, reason="file.missing")
    spec = WorkSpec.of(manifest, load_templates(None), emit="meta").with_categories(records)
    sources = [SourceInfo(r) for r in records]
    truths: dict[int, list[Any]] = {p: [] for p in spec.parts}
    workers = auto_workers(_input_bytes(records), PARALLEL_MIN_BYTES)
    for res in run_batches(partial(Worker, spec), records, sources, workers):
        for p, items in res.out.items():
            truths[p].extend(items)
    return truths, [s.sha256 for s in sources]


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
    check_distinct_inputs(opts.records)
    for path in opts.records:
        if path != STDIO and not os.path.isfile(path):
            raise InputError("no such file", file=path, reason="file.missing")
    out_dir = Path(opts.out_dir)
    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        return _export(opts, codec, templates, out_dir)
    except BaseException:
        if created:  # nothing left behind: the folder this export made, when the failure left it empty
            with contextlib.suppress(OSError):
                out_dir.rmdir()  # only when empty
        raise


def _export(opts: ExportOptions, codec: Codec, templates: Templates, out_dir: Path) -> dict[str, Any]:
    remove_stale_temps(out_dir, opts.prefix)
    indices = opts.indices()
    manifest: dict[str, Any] = {
        "kind": "gtok-export",
        "manifest_version": MANIFEST_VERSION,
        "gtok_version": __version__,
        "command": opts.command(),
        "scheme": codec.describe(),
        "task": opts.task,
        "format": opts.fmt,
        "seed": opts.seed,
        "shape": opts.shape,
        "refine": None if opts.refine is None else opts.refine.to_json(),
        "box_as": opts.box_as,
        "meta": opts.meta,
        "gzip": opts.compress,
        "prefix": opts.prefix,
        "shard_size": opts.shard_size,
        "templates": {"file": opts.templates_file, "sha256": templates.digest()},
        "partition": {"num_shards": opts.num_shards, "indices": indices},
    }
    count = opts.count_settings()
    if count is not None:  # only count exports carry the key (the others' manifests stay as they were)
        manifest["count"] = count.to_json()
    if opts.phrases is not None:  # only relation exports naming objects by expression carry the key
        manifest["phrases"] = phrases_entry(opts.phrases)
    target = manifest_path(out_dir, indices, opts.num_shards)
    done, why = finished_output(out_dir, target, manifest, list(opts.records))
    if done is not None:
        print(f"gtok export: up to date: {len(done['shards'])} shards checked", file=sys.stderr)
        if len(indices) == opts.num_shards:
            write_dataset_info(out_dir, done)
        with contextlib.suppress(OSError, orjson.JSONDecodeError):
            if orjson.loads(target.read_bytes()) == done:
                return done
        write_json(target, done)
        return done
    if why:
        print(f"gtok export: re-exporting: {why}", file=sys.stderr)
    spec = WorkSpec.of(manifest, templates).with_categories(list(opts.records))
    sources = [SourceInfo(p) for p in opts.records]
    read: Counter[int] = Counter()
    skipped: dict[int, Counter[str]] = {p: Counter() for p in indices}
    written_by: Counter[str] = Counter()
    workers = auto_workers(_input_bytes(opts.records), PARALLEL_MIN_BYTES, opts.workers)
    bar = _progress(None, "export")
    try:
        with contextlib.ExitStack() as stack:
            writers = {
                p: stack.enter_context(
                    ShardWriter(out_dir, opts.prefix, p, opts.num_shards, opts.shard_size, opts.compress)
                )
                for p in indices
            }
            seen = SeenIds()
            for res in run_batches(partial(Worker, spec), opts.records, sources, workers, bar):
                seen.add(res.ids)
                read.update(res.read)
                written_by.update(res.written_by)
                for p in indices:
                    skipped[p].update(res.skipped[p])
                    block = res.blocks.get(p)
                    if block is not None and block.lines:
                        writers[p].add_block(block)
            repeated = seen.repeated()
            error = duplicate_error(opts.records, repeated) if len(repeated) else None
            if error is not None:
                raise error
            shards = [s.to_json() for p in indices for s in writers[p].close()]
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
    if not counts["written"] and not opts.allow_empty and (opts.shard_index is None or counts["read"]):
        # (a job-array part no record falls in is not an error: the other parts hold them)
        raise nothing_written(counts["read"], counts["skipped"], opts.task)
    manifest["sources"] = [asdict(s) for s in sources]
    if written_by:
        counts["written_by"] = dict(sorted(written_by.items()))
    manifest["counts"] = counts
    manifest["shards"] = sorted(shards, key=lambda s: s["name"])
    if len(indices) == opts.num_shards:
        write_dataset_info(out_dir, manifest)
    kill_hook("manifest")
    write_json(target, manifest)
    return manifest
