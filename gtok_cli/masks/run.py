"""File-level driver of ``gtok masks``: group records by image, hand batches of images to an engine, write
what comes back (in input order), resume.

The engine runs :class:`~gtok_cli.masks.work.ImageBatchSolver` on every batch: in this process (the local
engine) or in Ray actors (:mod:`gtok_cli.masks.engine_ray`); this module is the one writer, so the output does
not depend on the engine. Under ``--on-error skip`` the images left out are listed in their batch's progress
mark (``"rejected"``) and the rejects file is written from them at the end, so a resumed run writes the same
rejects too.

Output order: images in the order of their first record in the input; within an image, input order. (When
the input is already grouped by image — ingest writes it so — that is exactly the input order.)

Every record passes the entry check (:class:`~gtok_cli.record_entry.RecordEntry`: ids unique, image and
box geometry) while the input is grouped, so a bad record stops the run (exit 2) before anything is written.

Resumable writes: lines go to ``OUT.partial``; after each batch of images is flushed, a line
``{"done": <images so far>, "end": <bytes so far>, "sha256": <of the batch's bytes>}`` is appended to
``OUT.progress`` (whose first line fingerprints the input and parameters). ``--resume`` trusts nothing it
has not checked: the header must match this input and these parameters, and each batch of the partial file
must have its recorded sha256 and exactly as many lines as the batch's input records. It continues after
the last batch that checks (dropping a half-written batch of a killed run silently, and anything that fails
its check with a one-line warning saying why); at the end the partial file is renamed to ``OUT`` (or
gzipped into it) and the progress file removed. A killed and resumed run therefore produces the same bytes
as an uninterrupted one. A run without ``--resume`` over a partial file it could resume refuses (exit 2)
rather than throw that work away.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import IO, Any

import orjson

from gtok_cli.errors import UsageError
from gtok_cli.jsonio import STDIO, dumps_line, iter_jsonl, open_output, sha256_file
from gtok_cli.masks.solver import ImageRef, MaskSolverConfig, SolveStats
from gtok_cli.masks.work import Engine, ImageBatchSolver, ImageJob, OnError, local_engine
from gtok_cli.record_entry import RecordEntry

PROGRESS_VERSION = 2  # 2: each progress mark carries the sha256 of its batch


def group_by_image(records_path: str | Path) -> list[tuple[ImageRef, list[bytes]]]:
    """Pass over the input: each image (first-appearance order) with its records as raw JSON lines."""
    groups: dict[ImageRef, list[bytes]] = {}
    name = str(records_path)
    entry = RecordEntry()
    for lineno, record in iter_jsonl(records_path):
        entry.check(record, file=name, lineno=lineno)
        image = record["image"]
        ref = ImageRef(image["file"], image["width"], image["height"])
        groups.setdefault(ref, []).append(orjson.dumps(record))
    return list(groups.items())


def _fingerprint(
    records_path: str | Path,
    config: MaskSolverConfig,
    groups: list[tuple[ImageRef, list[bytes]]],
    on_error: OnError = "fail",
) -> dict[str, Any]:
    params = asdict(config)  # all of them: even device and dtype change SAM's masks slightly
    if str(records_path) == STDIO:  # never resumed (--resume needs a file); a header all the same
        h = hashlib.sha256()
        for _ref, lines in groups:
            for line in lines:
                h.update(line + b"\n")
        digest = h.hexdigest()
    else:
        digest = sha256_file(records_path)
    header = {
        "gtok_masks_progress": PROGRESS_VERSION,
        "input_sha256": digest,
        "images": len(groups),
        "params": params,
    }
    if on_error == "skip":  # a partial that skipped images is no prefix of a run that stops at them
        header["on_error"] = on_error
    return header


@dataclass(frozen=True)
class ResumePoint:
    """How much of a partial file checks: ``done`` images filling ``lines`` lines, ``end`` bytes."""

    done: int = 0
    end: int = 0
    lines: int = 0
    marks_end: int = 0
    """bytes of the progress file that hold its header and the marks that check"""
    problem: str | None = None
    """why what follows cannot be used (None: nothing there, or the torn tail of a killed run)"""
    rejected: tuple[tuple[int, dict[str, Any]], ...] = ()
    """the images left out (``--on-error skip``) among the ``done``, with their rejects-file objects"""


def _header_problem(raw: bytes, header: dict[str, Any], name: str) -> str | None:
    try:
        found = orjson.loads(raw)
    except orjson.JSONDecodeError:
        found = None
    if not isinstance(found, dict):
        return f"{name} has no readable header"
    if found.get("gtok_masks_progress") != header["gtok_masks_progress"]:
        return f"{name} is from another version of gtok masks"
    if found.get("input_sha256") != header["input_sha256"] or found.get("images") != header["images"]:
        return "it was written from another input (sha256 differs)"
    theirs = found.get("params")
    if found.get("on_error", "fail") != header.get("on_error", "fail"):
        return f"it was written with --on-error {found.get('on_error', 'fail')}"
    if theirs != header["params"]:
        other = theirs if isinstance(theirs, dict) else {}
        keys = [k for k, v in header["params"].items() if other.get(k, object()) != v]
        return f"it was written with other parameters ({', '.join(keys) or 'params'})"
    return None


Mark = tuple[int, int, str, list[tuple[int, dict[str, Any]]]]


def _parse_mark(raw: bytes) -> Mark | None:
    """``(done, end, sha256, rejected)`` of a progress line, None when it is not one."""
    try:
        mark = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(mark, dict):
        return None
    done, end, digest = mark.get("done"), mark.get("end"), mark.get("sha256")
    if type(done) is not int or type(end) is not int or not isinstance(digest, str):
        return None
    rejected = mark.get("rejected", [])
    if not isinstance(rejected, list) or not all(
        isinstance(r, list) and len(r) == 2 and type(r[0]) is int and isinstance(r[1], dict) for r in rejected
    ):
        return None
    return done, end, digest, [(r[0], r[1]) for r in rejected]


def _chunk_problem(chunk: bytes, expected_bytes: int, first_line: int, name: str) -> str:
    """Say what is wrong with a batch of the partial file that does not check."""
    if len(chunk) < expected_bytes:
        return f"{name} ends before the end its progress file records (line {first_line} onward is missing)"
    for k, line in enumerate(chunk.splitlines(), first_line):
        try:
            orjson.loads(line)
        except orjson.JSONDecodeError:
            return f"{name} line {k} is not valid JSON"
    last = first_line + max(chunk.count(b"\n"), 1) - 1
    return f"{name} lines {first_line}-{last} differ from what was written there (sha256 or line count)"


def resume_point(
    partial: Path, progress: Path, header: dict[str, Any], groups: list[tuple[ImageRef, list[bytes]]]
) -> ResumePoint:
    """The longest prefix of ``partial`` that checks against ``progress`` (see the module docstring)."""
    if not partial.exists():
        return ResumePoint()
    try:
        lines = progress.read_bytes().split(b"\n")  # the last item: "" or the torn line of a killed run
    except FileNotFoundError:
        return ResumePoint(problem=f"{progress.name} is missing")
    except OSError as exc:
        return ResumePoint(problem=f"{progress.name} cannot be read ({exc.strerror})")
    problem = _header_problem(lines[0] if len(lines) > 1 else b"", header, progress.name)
    if problem is not None:
        return ResumePoint(problem=problem)
    point = ResumePoint(marks_end=len(lines[0]) + 1)
    with open(partial, "rb") as fh:
        for k, raw in enumerate(lines[1:-1], 2):
            mark = _parse_mark(raw)
            if mark is None or not (
                point.done < mark[0] <= len(groups)
                and mark[1] >= point.end
                and all(point.done <= i < mark[0] for i, _ in mark[3])
            ):
                return replace(point, problem=f"{progress.name} line {k} is damaged")
            done, end, digest, rejected = mark
            chunk = fh.read(end - point.end)
            left_out = {i for i, _ in rejected}
            n_lines = sum(
                len(recs)
                for i, (_ref, recs) in enumerate(groups[point.done : done], point.done)
                if i not in left_out
            )
            if (
                hashlib.sha256(chunk).hexdigest() != digest
                or chunk.count(b"\n") != n_lines
                or not (chunk.endswith(b"\n") or (not chunk and not n_lines))
            ):
                problem = _chunk_problem(chunk, end - point.end, point.lines + 1, partial.name)
                return replace(point, problem=problem)
            point = ResumePoint(
                done,
                end,
                point.lines + n_lines,
                point.marks_end + len(raw) + 1,
                rejected=(*point.rejected, *rejected),
            )
    return point


class _Appender:
    """Append + flush (enough when the process is killed); fsync every ``sync_every`` s (power loss)."""

    def __init__(self, data_fh: IO[bytes], prog_fh: IO[bytes], sync_every: float = 5.0) -> None:
        self.data_fh, self.prog_fh, self.sync_every = data_fh, prog_fh, sync_every
        self.last_sync = time.monotonic()

    def __call__(
        self, images_done: int, data: bytes, rejected: list[tuple[int, dict[str, Any]]] | None = None
    ) -> None:
        self.data_fh.write(data)
        self.data_fh.flush()
        if time.monotonic() - self.last_sync >= self.sync_every:
            os.fsync(self.data_fh.fileno())  # data reaches the disk before the progress line that counts it
            self.last_sync = time.monotonic()
        mark: dict[str, Any] = {
            "done": images_done,
            "end": self.data_fh.tell(),
            "sha256": hashlib.sha256(data).hexdigest(),
        }
        if (
            rejected
        ):  # the batch's images left out under --on-error skip: the rejects file is built from these
            mark["rejected"] = [[i, obj] for i, obj in rejected]
        self.prog_fh.write(orjson.dumps(mark) + b"\n")
        self.prog_fh.flush()

    def close(self) -> None:
        os.fsync(self.data_fh.fileno())


def _jobs(groups: list[tuple[ImageRef, list[bytes]]], size: int, start: int) -> list[ImageJob]:
    return [ImageJob(s, groups[s : s + size]) for s in range(start, len(groups), size)]


def _warn(text: str) -> None:
    print(f"gtok: warning: {text}", file=sys.stderr)


def _decide_resume(
    partial: Path,
    progress: Path,
    header: dict[str, Any],
    groups: list[tuple[ImageRef, list[bytes]]],
    resume: bool,
) -> ResumePoint:
    """Where to start: the checked prefix of ``partial`` when resuming, else 0; warn of what is dropped.

    Without ``--resume``, a partial file of this very run (same input and parameters, at least one image
    checked) is not thrown away: UsageError saying how to continue, or how to start over.
    """
    if not partial.exists():
        return ResumePoint()
    point = resume_point(partial, progress, header, groups)
    images = len(groups)
    if not resume:
        if point.done:
            raise UsageError(
                f"{partial} holds the first {point.lines} lines ({point.done} of {images} images) of this "
                f"same run, checked; add --resume to continue from line {point.lines + 1}, "
                "or delete it to start over"
            )
        if point.problem is not None:
            _warn(f"replacing {partial}: {point.problem}")
        return ResumePoint()
    if point.problem is None:
        if point.done:
            at = f"line {point.lines + 1} (image {point.done + 1} of {images})"
            if point.done == images:  # killed after the last image, before the rename
                at = f"its end (all {images} images written)"
            print(f"gtok masks: resuming {partial} at {at}", file=sys.stderr)
        return point
    then = (
        f"resuming from line {point.lines + 1} (image {point.done + 1} of {images}), the last that checks"
        if point.done
        else "starting over"
    )
    _warn(f"{partial}: {point.problem}; {then}")
    return point


def run_masks(
    records_path: str | Path,
    out: str | Path,
    config: MaskSolverConfig,
    *,
    images_root: str | Path | None = None,
    batch_images: int = 1,
    resume: bool = False,
    sam_model: Any = None,
    progress_bar: bool | None = None,
    on_error: OnError = "fail",
    rejects: str | Path | None = None,
    engine: Engine | None = None,
) -> SolveStats:
    """Tokenise every masked region of ``records_path`` into ``out`` (JSONL, ``.gz`` ok, ``-`` = stdout).

    ``engine`` runs the jobs (batches of ``batch_images`` images) and yields their results in order: the
    local engine (default) or :class:`gtok_cli.masks.engine_ray.RayEngine`; this function is the one writer.
    ``on_error="skip"``: images that cannot be solved go to ``rejects`` (one line each, with the reason).
    """
    if batch_images < 1:
        raise UsageError(f"--batch-images must be >= 1, got {batch_images}")
    if on_error not in ("fail", "skip"):
        raise UsageError(f"--on-error must be fail or skip, not {on_error!r}")
    if on_error == "skip" and rejects is None:
        raise UsageError("--on-error skip needs a rejects file")
    to_stdout = str(out) == STDIO
    if resume and (to_stdout or str(records_path) == STDIO):
        raise UsageError("--resume needs a records file and an --out file (not -)")
    out_path = Path(out)
    partial = out_path.with_name(out_path.name + ".partial")
    progress = out_path.with_name(out_path.name + ".progress")
    if resume and out_path.exists() and not partial.exists():
        print(f"gtok masks: {out_path} is complete; nothing to resume", file=sys.stderr)
        return SolveStats()

    groups = group_by_image(records_path)
    point = ResumePoint()
    if not to_stdout:
        header = _fingerprint(records_path, config, groups, on_error)
        point = _decide_resume(partial, progress, header, groups, resume)
    name = str(records_path)
    solver = ImageBatchSolver(
        config, file=name, images_root=images_root, sam_model=sam_model, on_error=on_error
    )
    run = engine if engine is not None else local_engine
    stats = SolveStats()
    rejected: list[tuple[int, dict[str, Any]]] = list(point.rejected)
    show = sys.stderr.isatty() if progress_bar is None else progress_bar

    from tqdm import tqdm

    def process(start: int, emit: Any) -> None:
        jobs = _jobs(groups, batch_images, start)
        with tqdm(total=len(groups), initial=start, disable=not show, unit="img", desc="masks") as bar:
            for res in run(solver, jobs):
                if res.error is not None:
                    raise res.error
                stats.add(res.stats)
                rejected.extend(res.rejected)
                emit(res.start + res.count, res.data, res.rejected)
                bar.update(res.count)

    if to_stdout:
        with open_output(STDIO) as fh:
            process(0, lambda _done, data, _rejected: fh.write(data))
        _write_rejects(rejects, rejected)
        return stats

    out_path.parent.mkdir(parents=True, exist_ok=True)
    done, end = point.done, point.end
    if done == 0:
        partial.write_bytes(b"")
        progress.write_bytes(orjson.dumps(header) + b"\n")
    else:
        with open(progress, "r+b") as fh:  # drop the marks after the resume point
            fh.truncate(point.marks_end)
    with open(partial, "r+b") as data_fh, open(progress, "ab") as prog_fh:
        data_fh.truncate(end)
        data_fh.seek(end)
        emit = _Appender(data_fh, prog_fh)
        process(done, emit)
        emit.close()
    _write_rejects(rejects, rejected)  # before the rename: a run killed here resumes at its end
    if str(out_path).endswith(".gz"):
        with open_output(out_path) as fh, open(partial, "rb") as src:
            shutil.copyfileobj(src, fh)
        partial.unlink()
    else:
        os.replace(partial, out_path)
    progress.unlink()
    return stats


def _write_rejects(path: str | Path | None, rejected: list[tuple[int, dict[str, Any]]]) -> None:
    """The rejects file, in input order (written whole at the end, from the progress marks when resumed)."""
    if path is None:
        return
    with open_output(path) as fh:
        for _index, obj in sorted(rejected, key=lambda r: r[0]):
            fh.write(dumps_line(obj))
