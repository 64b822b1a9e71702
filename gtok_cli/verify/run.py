"""`gtok verify`: prove an export folder correct (docs/spec.md#manifest, docs/spec.md#errors).

Checks, each failure naming shard and line:

1. the manifest against ``manifest.schema.json``; counts reconcile (``read = written + skipped``,
   ``written = Σ shard lines``);
2. every shard: present, sha256 / bytes / line count as the manifest says, done marker agreeing (its per-line
   crc32 locates lines edited, deleted or cut off after export);
3. every line against ``shard_line.schema.json`` (compiled, :mod:`.fastschema`);
4. every spatial span in the turns that carry geometry, decoded with the manifest's scheme and parameters:
   no malformed / out-of-vocabulary span, as many shapes as truth regions, each within the scheme's bound
   (``codec.bound(size)``, or ``--max-error-px``); box IoU reported.

The truth is the line's ``meta``, or with ``--against RECORDS`` the records themselves (the export's own
sample builder is re-run with the manifest's options, so line k of a part's shards is sample k of that part).

Fast path: a line whose geometry turn is one box is decoded with the codec's vectorised ``decode_boxes`` and
re-encoded with ``encode_boxes``; equal text means exactly one well-formed span, so only lines that differ
take the full ``decode`` path (which produces the diagnostics).
"""

from __future__ import annotations

import hashlib
import mmap
import multiprocessing
import os
import zlib
from collections import Counter
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt
import orjson

from gtok_cli.codecs import Codec, Shape, codec_from_params
from gtok_cli.counting import TASK as COUNT_TASK
from gtok_cli.geometry.compare import COMPARATORS, box_iou
from gtok_cli.jsonio import count_newlines, open_binary_input, sha256_file
from gtok_cli.mask_quality import OPTION as MIN_MASK_IOU
from gtok_cli.mask_quality import SolverIoUs
from gtok_cli.parallel import auto_workers as parallel_workers
from gtok_cli.parallel import gc_paused
from gtok_cli.schemas import load_schema
from gtok_cli.shards.layout import marker_path
from gtok_cli.task_roles import carries_geometry, geometry_role
from gtok_cli.trainer_formats import get_format, typed_assistant_texts
from gtok_cli.verify.count_check import check_count_line
from gtok_cli.verify.fastschema import compile_schema, explain
from gtok_cli.verify.typed_lines import (
    OneBoxColumns,
    ShardBytes,
    decode_shard,
    one_box_columns,
)

MAX_FAILURES_KEPT = 200
PARALLEL_MIN_BYTES = 64 << 20
"""Below this much shard data one process checks everything."""
NEWLINE = b"\n"


@dataclass
class Failure:
    check: str
    message: str
    shard: str | None = None
    line: int | None = None
    id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "shard": self.shard,
            "line": self.line,
            "id": self.id,
            "message": self.message,
        }

    def human(self) -> str:
        where = ":".join(str(x) for x in (self.shard, self.line) if x is not None) or "manifest"
        ident = f" [{self.id}]" if self.id else ""
        return f"{where}{ident}: {self.check}: {self.message}"


@dataclass
class ShardResult:
    lines: int = 0
    regions: int = 0
    failures: list[Failure] = field(default_factory=list)
    failure_counts: Counter[str] = field(default_factory=Counter)
    errors: list[float] = field(default_factory=list)
    ious: list[float] = field(default_factory=list)
    error_arrays: list[npt.NDArray[np.float64]] = field(default_factory=list)
    """The vectorised check's errors (px) and IoUs, as arrays (a million floats pickle far faster so)."""
    iou_arrays: list[npt.NDArray[np.float64]] = field(default_factory=list)
    worst: list[tuple[float, str, int, str]] = field(default_factory=list)
    refine_counts: Counter[str] = field(default_factory=Counter)
    refine_values: dict[str, list[float]] = field(default_factory=dict)
    mask_iou: SolverIoUs = field(default_factory=SolverIoUs)
    """The solver IoU of every mask region (``meta.regions[k].mask_tokens.iou``)."""

    def fail(self, f: Failure) -> None:
        self.failure_counts[f.check] += 1
        if len(self.failures) < MAX_FAILURES_KEPT:
            self.failures.append(f)


@dataclass(frozen=True)
class VerifyOptions:
    manifest: dict[str, Any]
    folder: str
    max_error_px: float | None = None
    use_meta: bool = True
    min_mask_iou: float | None = None
    """A mask region whose solver IoU is below this (or not recorded) fails ``mask.solver_iou``."""


class ShardLines:
    """A shard's bytes (or a read-only map of them) with its line count; split into lines only when a path
    needs them."""

    def __init__(self, data: ShardBytes) -> None:
        self.data = data
        self.truncated = len(data) > 0 and data[-1:] != NEWLINE
        """The last line has no newline."""
        self.count = count_newlines(data) + self.truncated
        self._lines: list[bytes] | None = None

    def lines(self) -> list[bytes]:
        """The lines without their newlines."""
        if self._lines is None:
            lines = bytes(self.data).split(NEWLINE)
            if lines and lines[-1] == b"":
                lines.pop()
            self._lines = lines
        return self._lines

    def line(self, k: int) -> bytes:
        return self.lines()[k]


@dataclass
class FastBoxes:
    """One-box lines queued for the vectorised check: per line its number, answer text, image size, truth box,
    phrase (the label ``encode_boxes`` writes), record id and truth (the meta dict). Filled line by line
    (lists) or from a typed shard's columns (:meth:`of_columns`: arrays; record ids and truths are then read
    back from the line, only for the few lines that need them)."""

    linenos: list[int] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    sizes: Any = field(default_factory=list)
    boxes: Any = field(default_factory=list)
    labels: list[str | None] = field(default_factory=list)
    rids: list[str] = field(default_factory=list)
    truths: list[dict[str, Any] | None] = field(default_factory=list)
    shard: ShardLines | None = None
    """Where a truth that is None (or every truth, when ``truths`` is empty) is read back from."""

    @staticmethod
    def of_columns(cols: OneBoxColumns, shard: ShardLines) -> FastBoxes:
        lines = list(range(1, len(cols.texts) + 1))
        return FastBoxes(lines, cols.texts, cols.sizes, cols.boxes, cols.labels, cols.rids, shard=shard)

    def add(
        self,
        lineno: int,
        text: str,
        size: Any,
        box: Any,
        label: str | None,
        rid: str,
        truth: dict[str, Any] | None,
    ) -> None:
        self.linenos.append(lineno)
        self.texts.append(text)
        self.sizes.append(size)
        self.boxes.append(box)
        self.labels.append(label)
        self.rids.append(rid)
        self.truths.append(truth)

    def arrays(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """Sizes (n×2) and truth boxes (n×4); flat lists -> one array each (a list of small lists converts
        row by row, far slower)."""
        n = len(self.texts)
        if isinstance(self.sizes, np.ndarray):
            return self.sizes, self.boxes
        sizes = np.fromiter(chain.from_iterable(self.sizes), np.int64, 2 * n).reshape(n, 2)
        boxes = np.fromiter(chain.from_iterable(self.boxes), np.float64, 4 * n).reshape(n, 4)
        return sizes, boxes

    def truth(self, k: int) -> dict[str, Any]:
        truth = self.truths[k] if self.truths else None
        if truth is not None:
            return truth
        assert self.shard is not None
        meta: dict[str, Any] = orjson.loads(self.shard.line(self.linenos[k] - 1))["meta"]
        return meta

    def rid(self, k: int) -> str:
        return self.rids[k] if self.rids else str(self.truth(k)["record_id"])


# ---- per-shard checking (runs in workers) ------------------------------------------------------------------
class LineChecker:
    def __init__(
        self, opts: VerifyOptions, truths: dict[int, list[tuple[dict[str, Any], str]]] | None
    ) -> None:
        m = opts.manifest
        self.opts = opts
        self.fmt = m["format"]
        self.format = get_format(self.fmt)
        self.task = m["task"]
        self.codec: Codec = codec_from_params(m["scheme"])
        self.role = geometry_role(self.task)
        self.schema_root = load_schema("shard_line")
        self.valid = compile_schema(self.schema_root, self.fmt)
        self.truths = truths
        self._bounds: dict[tuple[int, int], tuple[float, float]] = {}
        self.refine = m.get("refine") is not None
        """Propose-and-refine conversations: checked turn by turn (:mod:`.refine_check`)."""
        self.objects = self.format.objects_key is not None
        """ms-swift lines: placeholders checked against ``objects``, objects against the truth, exactly."""
        self.count = self.task == COUNT_TASK
        """Count lines: the count recomputed from meta and tokens (:mod:`.count_check`), line by line."""
        self.typed = truths is None and not self.refine and not self.objects and not self.count
        """Truths from ``meta``: a shard is first decoded and schema-checked (:mod:`.typed_lines`)."""

    def allowed(self, size: tuple[int, int]) -> tuple[float, float]:
        b = self._bounds.get(size)
        if b is None:
            if self.opts.max_error_px is not None:
                b = (self.opts.max_error_px, self.opts.max_error_px)
            elif self.objects:  # objects hold the truth's own numbers: nothing may differ
                b = (0.0, 0.0)
            else:
                b = self.codec.bound(size).pixels(size)
            self._bounds[size] = b
        return b

    def check_shard(self, info: dict[str, Any], first_index: int) -> ShardResult:
        """``first_index``: the shard's first sample index within its part (to find --against truths)."""
        with gc_paused():
            return self._check_shard(info, first_index)

    def _check_shard(self, info: dict[str, Any], first_index: int) -> ShardResult:
        res = ShardResult()
        name = info["name"]
        path = Path(self.opts.folder) / name
        if not path.is_file():
            res.fail(Failure("shard.missing", "shard file listed in the manifest does not exist", name))
            return res
        data, sha = self._read(path, name, res)
        shard = ShardLines(data)
        if shard.truncated:
            res.fail(Failure("shard.truncated", "last line has no newline (cut off?)", name, shard.count))
        res.lines = shard.count
        self._check_integrity(path, info, shard, res, sha)
        if self.typed:
            cols = one_box_columns(self.fmt, data, shard.count) if self.role == "assistant" else None
            if cols is not None:  # every line one box, msgspec-checked: straight to the vectorised check
                res.regions += len(cols.texts)
                self._fast(FastBoxes.of_columns(cols, shard), name, res)
                return res
            typed = decode_shard(self.fmt, data, shard.count)
            if typed is not None:
                self._check_typed(typed, shard, name, res)
                return res
        fast = FastBoxes()
        # the per-line work, inlined (a million lines): parse, schema, turns, truth
        loads, valid, fmt, part = orjson.loads, self.valid, self.fmt, info["part"]
        for k, raw in enumerate(shard.lines()):
            lineno = k + 1
            try:
                line = loads(raw)
            except orjson.JSONDecodeError:
                self._parse(raw + b"\n", name, lineno, res)  # the message exactly as for the whole line
                continue
            if not valid(line):
                res.fail(Failure("line.schema", explain(self.schema_root, line, fmt), name, lineno))
                continue
            self._check_line(line, lineno, part, first_index + k, name, res, fast)
        self._fast(fast, name, res)
        return res

    def _check_line(
        self,
        line: dict[str, Any],
        lineno: int,
        part: int,
        index: int,
        name: str,
        res: ShardResult,
        fast: FastBoxes,
    ) -> None:
        """One schema-valid parsed line: its truth, then its geometry (one-box lines queue in ``fast``)."""
        if self.truths is None and line.get("meta") is not None:
            truth = line["meta"]
        else:
            truth = self._truth(line, part, index, name, lineno, res)
            if truth is None:
                return
        rid = truth["record_id"]
        if self.role == "assistant":
            geo = self.format.assistant_texts(line)
        else:
            geo = [t for r, t in self.format.turns(line) if carries_geometry(self.role, r)]
        regions = truth["regions"]
        res.regions += len(regions)
        self._mask_iou(regions, name, lineno, rid, res)
        if self.count:
            self._count(line, geo, truth, name, lineno, rid, res)
        if self.refine:
            self._refine(geo, truth, name, lineno, rid, res)
        elif self.objects:
            coords, problems = self.format.object_shapes(line, self.role)
            for problem in problems:
                res.fail(Failure("objects.placeholders", problem, name, lineno, rid))
            shapes = [Shape.box(*c) if len(c) == 4 else Shape.point(*c) for c in coords]
            self._compare(shapes, truth, name, lineno, rid, res)
            if self.task == "relation":
                self._relation(line, shapes, truth, name, lineno, rid, res)
        elif self.task == "relation":
            shapes = self._slow(geo, truth, name, lineno, rid, res)
            self._relation(line, shapes, truth, name, lineno, rid, res)
        elif len(geo) == 1 and len(regions) == 1 and regions[0]["kind"] == "box":
            region = regions[0]
            fast.add(lineno, geo[0], truth["image_size"], region["bbox"], region["phrase"], rid, truth)
        else:
            self._slow(geo, truth, name, lineno, rid, res)

    def _check_typed(self, typed: list[Any], shard: ShardLines, name: str, res: ShardResult) -> None:
        """A shard msgspec found schema-valid line by line, truths from ``meta``: one-box lines go straight to
        the vectorised check; any other line is parsed again as a dict and takes the general per-line path
        (its extra keys, e.g. a polyline, are not in the typed view)."""
        fast = FastBoxes(shard=shard)
        unset, fmt, geo_role = msgspec.UNSET, self.format, self.role == "assistant"
        for k, line in enumerate(typed):
            meta = line.meta
            if meta is not unset and geo_role and len(meta.regions) == 1:
                region = meta.regions[0]
                geo = typed_assistant_texts(fmt, line)
                if len(geo) == 1 and region.kind == "box":
                    res.regions += 1
                    truth = msgspec.to_builtins(meta)  # dicts, as the general path reads them
                    fast.add(
                        k + 1, geo[0], meta.image_size, region.bbox, region.phrase, meta.record_id, truth
                    )
                    continue
            parsed = orjson.loads(shard.line(k))
            self._check_line(parsed, k + 1, 0, k, name, res, fast)
        self._fast(fast, name, res)

    def _read(self, path: Path, name: str, res: ShardResult) -> tuple[ShardBytes, str | None]:
        """The shard's bytes and, for a plain shard, their sha256. A plain shard is mapped, not read: no copy
        of it in this process's memory (measured: ~13 % of a one-box shard's check)."""
        try:
            if path.suffix != ".gz":
                with open(path, "rb") as fh:
                    if os.fstat(fh.fileno()).st_size == 0:
                        return b"", hashlib.sha256(b"").hexdigest()
                    data: ShardBytes = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
                return data, hashlib.sha256(data).hexdigest()
            with open_binary_input(path) as fh:
                return fh.read(), None
        except (OSError, EOFError) as exc:  # a truncated .gz
            res.fail(Failure("shard.unreadable", f"cannot read: {exc}", name))
            return b"", None

    def _check_integrity(
        self, path: Path, info: dict[str, Any], shard: ShardLines, res: ShardResult, sha: str | None = None
    ) -> None:
        """sha256, line count and done marker; on a sha mismatch, the first line whose crc32 (of the line and
        its newline) differs from the marker's."""
        name = info["name"]
        sha_ok = (sha if sha is not None else sha256_file(path)) == info["sha256"]
        if not sha_ok:
            res.fail(Failure("shard.sha256", "sha256 differs from the manifest (changed after export)", name))
        if shard.count != info["lines"]:
            res.fail(Failure("shard.lines", f"{shard.count} lines, manifest says {info['lines']}", name))
        marker = marker_path(path)
        try:
            stats = orjson.loads(marker.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            res.fail(Failure("shard.marker", f"done marker {marker.name} missing or unreadable", name))
            return
        if {k: stats.get(k) for k in ("name", "sha256", "lines", "bytes")} != {
            k: info[k] for k in ("name", "sha256", "lines", "bytes")
        }:
            res.fail(Failure("shard.marker", "done marker disagrees with the manifest", name))
        if sha_ok:
            return
        lines = shard.lines()
        crcs = stats.get("line_crc32", "")
        for k in range(max(len(lines), len(crcs) // 8)):
            want = crcs[8 * k : 8 * k + 8]
            got = f"{zlib.crc32(NEWLINE, zlib.crc32(lines[k])):08x}" if k < len(lines) else ""
            if want != got:
                what = "missing" if not got else ("added" if not want else "changed")
                res.fail(
                    Failure(
                        "line.changed",
                        f"line {what} after export (crc32 differs from the marker)",
                        name,
                        k + 1,
                    )
                )
                break

    def _parse(
        self, raw: bytes, name: str, lineno: int, res: ShardResult
    ) -> tuple[dict[str, Any], Any] | None:
        try:
            line = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            res.fail(Failure("line.json", f"not valid JSON: {exc}", name, lineno))
            return None
        if not self.valid(line):
            res.fail(Failure("line.schema", explain(self.schema_root, line, self.fmt), name, lineno))
            return None
        return line, self.format.turns(line)

    def _truth(
        self, line: dict[str, Any], part: int, index: int, name: str, lineno: int, res: ShardResult
    ) -> dict[str, Any] | None:
        meta = line.get("meta")
        if self.truths is None:
            if meta is None:
                res.fail(
                    Failure(
                        "line.meta", "no meta and no --against records: nothing to compare with", name, lineno
                    )
                )
            return meta
        part_truths = self.truths.get(part, [])
        if index >= len(part_truths):
            res.fail(Failure("line.extra", "more lines than the records give samples", name, lineno))
            return None
        truth, image = part_truths[index]
        rid = truth["record_id"]
        if self.format.image(line) != image:
            res.fail(
                Failure(
                    "line.image",
                    f"image {self.format.image(line)!r} but record has {image!r}",
                    name,
                    lineno,
                    rid,
                )
            )
        if meta is not None:
            if meta.get("image_size") != truth["image_size"]:
                res.fail(
                    Failure(
                        "line.image_size",
                        f"meta image_size {meta.get('image_size')} but record has {truth['image_size']}",
                        name,
                        lineno,
                        rid,
                    )
                )
            elif meta != truth:
                res.fail(Failure("line.meta", "meta differs from the records", name, lineno, rid))
        return truth

    def _mask_iou(
        self, regions: list[dict[str, Any]], name: str, lineno: int, rid: str, res: ShardResult
    ) -> None:
        """The solver IoU of the line's mask regions, each checked against ``--min-mask-iou`` when given."""
        floor = self.opts.min_mask_iou
        for k, region in enumerate(regions):
            if region["kind"] != "mask":
                continue
            iou = res.mask_iou.add(region)
            if floor is None or (iou is not None and iou >= floor):
                continue
            if iou is None:
                msg = f"region {k}: solver IoU not recorded in meta, cannot check {MIN_MASK_IOU} {floor}"
            else:
                msg = f"region {k}: solver IoU {iou:.6g} is below {MIN_MASK_IOU} {floor}"
            res.fail(Failure("mask.solver_iou", msg, name, lineno, rid))

    # -- geometry --
    def _fast(self, fast: FastBoxes, name: str, res: ShardResult) -> None:
        """All one-box lines of a shard at once: decode with the codec's vectorised ``decode_boxes``,
        re-encode with ``encode_boxes``; equal text means exactly one well-formed span, so only lines that
        differ (or miss the bound) take the full ``decode`` path, which writes the diagnostics."""
        n = len(fast.texts)
        if not n:
            return
        texts = fast.texts
        sizes, truth = fast.arrays()
        dec, exact = self.codec.decode_boxes_exact(texts, sizes)
        ok: Any = ~np.isnan(dec).any(axis=1)
        # re-encoded only where the codec does not already know the text is one canonical box
        same = exact.copy()
        redo = np.nonzero(ok & ~exact)[0]
        if len(redo):
            labels = [fast.labels[k] for k in redo.tolist()]
            again = self.codec.encode_boxes(dec[redo], sizes[redo], labels)
            same[redo] = [a == texts[k] for a, k in zip(again, redo.tolist(), strict=True)]
        err_xy = np.abs(dec - truth)
        ex = err_xy[:, 0::2].max(axis=1)
        ey = err_xy[:, 1::2].max(axis=1)
        # the bound per distinct size (one number per size: a 1-D unique is far cheaper than rows)
        if int(sizes.max()) < (1 << 31) and int(sizes.min()) >= 0:
            uniq, inverse = np.unique(sizes[:, 0] * (1 << 32) + sizes[:, 1], return_inverse=True)
            per_size = [self.allowed((int(k >> 32), int(k & 0xFFFFFFFF))) for k in uniq.tolist()]
            bounds = np.asarray(per_size, dtype=np.float64).reshape(-1, 2)[inverse.reshape(-1)]
        else:
            bounds = np.asarray([self.allowed((int(w), int(h))) for w, h in sizes.tolist()], dtype=np.float64)
        within = (ex <= bounds[:, 0] + 1e-6) & (ey <= bounds[:, 1] + 1e-6)
        ious = box_iou(dec, truth)
        err = np.maximum(ex, ey)
        good = ok & within & same
        res.error_arrays.append(err[good])
        res.iou_arrays.append(ious[good])
        self._note_worst(res, err, good, fast, name)
        for k in np.nonzero(~good)[0].tolist():
            self._slow([texts[k]], fast.truth(k), name, fast.linenos[k], fast.rid(k), res)

    @staticmethod
    def _note_worst(res: ShardResult, err: Any, good: Any, fast: FastBoxes, name: str) -> None:
        if not good.any():
            return
        idx = np.nonzero(good)[0]
        if len(idx) > 5:  # only the 5 largest (ties: earlier line first) need sorting
            cut = np.partition(err[idx], len(idx) - 5)[len(idx) - 5]
            idx = idx[err[idx] >= cut]
        top = idx[np.argsort(-err[idx], kind="stable")[:5]]
        for k in top.tolist():
            res.worst.append((float(err[k]), name, fast.linenos[k], fast.rid(k)))

    def _count(
        self,
        line: dict[str, Any],
        geo: list[str],
        truth: dict[str, Any],
        name: str,
        lineno: int,
        rid: str,
        res: ShardResult,
    ) -> None:
        if self.objects:  # ms-swift: the shapes are the objects the placeholders stand for
            shapes = len(self.format.object_shapes(line, self.role)[0])
        else:
            size = (int(truth["image_size"][0]), int(truth["image_size"][1]))
            shapes = sum(len(self.codec.decode(text, size).shapes()) for text in geo)
        for check, message in check_count_line(geo, shapes, truth):
            res.fail(Failure(check, message, name, lineno, rid))

    def _refine(
        self, geo: list[str], truth: dict[str, Any], name: str, lineno: int, rid: str, res: ShardResult
    ) -> None:
        from gtok_cli.codecs.grid import GridCodec
        from gtok_cli.verify.refine_check import check_refine_line

        if not isinstance(self.codec, GridCodec):
            res.fail(Failure("refine.scheme", "refinement needs the grid scheme", name, lineno, rid))
            return
        out = check_refine_line(self.codec, geo, truth)
        for check, message in out.problems:
            res.fail(Failure(check, message, name, lineno, rid))
        res.refine_counts.update(out.counts)
        for key, values in out.values.items():
            res.refine_values.setdefault(key, []).extend(values)

    def _slow(
        self, geo: list[str], truth: dict[str, Any], name: str, lineno: int, rid: str, res: ShardResult
    ) -> list[Shape]:
        size = (int(truth["image_size"][0]), int(truth["image_size"][1]))
        shapes = []
        for text in geo:
            dec = self.codec.decode(text, size)
            for issue in dec.errors:
                res.fail(Failure("span.invalid", f"{issue.message}: {issue.text!r}", name, lineno, rid))
            shapes += dec.shapes()
        self._compare(shapes, truth, name, lineno, rid, res)
        return shapes

    def _relation(
        self,
        line: dict[str, Any],
        shapes: list[Shape],
        truth: dict[str, Any],
        name: str,
        lineno: int,
        rid: str,
        res: ShardResult,
    ) -> None:
        """A relation line's predicate and answer recomputed from its meta and its decoded tokens."""
        from gtok_cli.verify.relation_check import check_relation

        one_to_one = len(shapes) == len(truth["regions"])
        for check, message in check_relation(truth, shapes if one_to_one else None, self.format.turns(line)):
            res.fail(Failure(check, message, name, lineno, rid))

    def _compare(
        self, shapes: list[Shape], truth: dict[str, Any], name: str, lineno: int, rid: str, res: ShardResult
    ) -> None:
        """The shapes a line's geometry stands for against its truth regions: count, kind, error, IoU."""
        size = (int(truth["image_size"][0]), int(truth["image_size"][1]))
        regions = truth["regions"]
        if len(shapes) != len(regions):
            res.fail(
                Failure(
                    "regions.count",
                    f"decoded {len(shapes)} shapes, truth has {len(regions)} regions",
                    name,
                    lineno,
                    rid,
                )
            )
            return
        allowed = self.allowed(size)
        for k, (shape, region) in enumerate(zip(shapes, regions, strict=True)):
            kind = region["kind"]
            if shape.kind != kind:
                res.fail(
                    Failure(
                        "region.kind",
                        f"region {k}: decoded a {shape.kind}, truth is a {kind}",
                        name,
                        lineno,
                        rid,
                    )
                )
                continue
            err, iou, problem = COMPARATORS[kind](shape, region, allowed)
            if problem is not None:
                res.fail(Failure("region.error", f"region {k}: {problem}", name, lineno, rid))
                continue
            res.errors.append(err)
            if iou is not None:
                res.ious.append(iou)
            res.worst.append((err, name, lineno, rid))


_CHECKER: LineChecker | None = None


def _check_job(job: tuple[dict[str, Any], int]) -> ShardResult:
    assert _CHECKER is not None
    return _CHECKER.check_shard(*job)


def check_shards(
    opts: VerifyOptions, truths: dict[int, list[tuple[dict[str, Any], str]]] | None, workers: int
) -> list[ShardResult]:
    global _CHECKER
    _CHECKER = LineChecker(opts, truths)
    jobs: list[tuple[dict[str, Any], int]] = []
    seen: Counter[int] = Counter()
    for info in sorted(opts.manifest["shards"], key=lambda s: s["name"]):
        jobs.append((info, seen[info["part"]]))
        seen[info["part"]] += info["lines"]
    if workers <= 1 or len(jobs) <= 1:
        return [_CHECKER.check_shard(*j) for j in jobs]
    with multiprocessing.get_context("fork").Pool(min(workers, len(jobs))) as pool:
        return pool.map(_check_job, jobs, chunksize=1)


def auto_workers(manifest: dict[str, Any], folder: str) -> int:
    return parallel_workers(sum(s["bytes"] for s in manifest["shards"]), PARALLEL_MIN_BYTES)


def check_counts(manifest: dict[str, Any]) -> list[Failure]:
    c = manifest["counts"]
    out = []
    if c["read"] != c["written"] + sum(c["skipped"].values()):
        out.append(
            Failure(
                "counts.reconcile",
                f"read {c['read']} != written {c['written']} + skipped {sum(c['skipped'].values())}",
            )
        )
    by = c.get("written_by")
    if by is not None and sum(by.values()) != c["written"]:
        out.append(Failure("counts.written_by", f"written_by sums to {sum(by.values())}, not {c['written']}"))
    lines = sum(s["lines"] for s in manifest["shards"])
    if lines != c["written"]:
        out.append(Failure("counts.written", f"shards hold {lines} lines, counts.written is {c['written']}"))
    return out
