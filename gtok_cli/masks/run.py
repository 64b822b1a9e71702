"""File-level driver of ``gtok masks``: group records by image, solve image by image, write, resume.

Output order: images in the order of their first record in the input; within an image, input order. (When
the input is already grouped by image — ingest writes it so — that is exactly the input order.)

Resumable writes: lines go to ``OUT.partial``; after each batch of images is flushed and fsync'd, a line
``{"done": <images so far>, "end": <bytes so far>}`` is appended to ``OUT.progress`` (whose first line
fingerprints the input and parameters). ``--resume`` truncates the partial file to the last recorded
``end`` (dropping a half-written batch) and continues with the next image; at the end the partial file is
renamed to ``OUT`` (or gzipped into it) and the progress file removed. A killed and resumed run therefore
produces the same bytes as an uninterrupted one.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import IO, Any

import orjson

from gtok_cli.errors import InputError, UsageError
from gtok_cli.jsonio import STDIO, dumps_line, iter_jsonl, open_output, sha256_file
from gtok_cli.masks.solver import ImageRef, MaskSolverConfig, MaskTokenizer, SolveStats

PROGRESS_VERSION = 1


def _image_ref(record: Any, *, file: str, lineno: int) -> ImageRef:
    rid = str(record.get("id")) if isinstance(record, dict) else f"line {lineno}"
    image = record.get("image") if isinstance(record, dict) else None
    ok = (
        isinstance(image, dict)
        and isinstance(image.get("file"), str)
        and isinstance(image.get("width"), int)
        and isinstance(image.get("height"), int)
        and image["width"] > 0
        and image["height"] > 0
    )
    if not ok:
        raise InputError(
            "record has no usable image",
            file=file,
            record=rid,
            field="image",
            expected='{"file": str, "width": int > 0, "height": int > 0}',
            found=image,
            reason="record.image",
        )
    if not isinstance(record.get("regions"), list):
        raise InputError(
            "record has no regions list",
            file=file,
            record=rid,
            field="regions",
            expected="a list",
            found=record.get("regions"),
            reason="record.regions",
        )
    assert isinstance(image, dict)
    return ImageRef(image["file"], image["width"], image["height"])


def group_by_image(records_path: str | Path) -> list[tuple[ImageRef, list[bytes]]]:
    """Pass over the input: each image (first-appearance order) with its records as raw JSON lines."""
    groups: dict[ImageRef, list[bytes]] = {}
    name = str(records_path)
    for lineno, record in iter_jsonl(records_path):
        groups.setdefault(_image_ref(record, file=name, lineno=lineno), []).append(orjson.dumps(record))
    return list(groups.items())


def _fingerprint(records_path: str | Path, config: MaskSolverConfig, images: int) -> dict[str, Any]:
    params = asdict(config)  # all of them: even device and dtype change SAM's masks slightly
    return {
        "gtok_masks_progress": PROGRESS_VERSION,
        "input_sha256": sha256_file(records_path),
        "images": images,
        "params": params,
    }


def _read_progress(progress: Path, header: dict[str, Any], data_size: int) -> tuple[int, int] | None:
    """``(images done, partial-file bytes)`` from a progress file of the same input and parameters."""
    try:
        lines = progress.read_bytes().splitlines()
    except OSError:
        return None
    if not lines:
        return None
    try:
        if orjson.loads(lines[0]) != header:
            return None
    except orjson.JSONDecodeError:
        return None
    done, end = 0, 0
    for line in lines[1:]:
        try:
            entry = orjson.loads(line)
        except orjson.JSONDecodeError:
            break  # torn last line of a killed run
        done, end = int(entry["done"]), int(entry["end"])
    return done, end


class _Appender:
    """Append + flush (enough when the process is killed); fsync every ``sync_every`` s (power loss)."""

    def __init__(self, data_fh: IO[bytes], prog_fh: IO[bytes], sync_every: float = 5.0) -> None:
        self.data_fh, self.prog_fh, self.sync_every = data_fh, prog_fh, sync_every
        self.last_sync = time.monotonic()

    def __call__(self, images_done: int, data: bytes) -> None:
        self.data_fh.write(data)
        self.data_fh.flush()
        if time.monotonic() - self.last_sync >= self.sync_every:
            os.fsync(self.data_fh.fileno())  # data reaches the disk before the progress line that counts it
            self.last_sync = time.monotonic()
        self.prog_fh.write(orjson.dumps({"done": images_done, "end": self.data_fh.tell()}) + b"\n")
        self.prog_fh.flush()

    def close(self) -> None:
        os.fsync(self.data_fh.fileno())


def _batches(items: list[Any], size: int, start: int) -> Iterator[tuple[int, list[Any]]]:
    for s in range(start, len(items), size):
        yield s, items[s : s + size]


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
) -> SolveStats:
    """Tokenise every masked region of ``records_path`` into ``out`` (JSONL, ``.gz`` ok, ``-`` = stdout)."""
    if batch_images < 1:
        raise UsageError(f"--batch-images must be >= 1, got {batch_images}")
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
    tokenizer = MaskTokenizer(config, sam_model=sam_model, images_root=images_root)
    name = str(records_path)
    show = sys.stderr.isatty() if progress_bar is None else progress_bar

    from tqdm import tqdm

    def process(start: int, emit: Any) -> None:
        with tqdm(total=len(groups), initial=start, disable=not show, unit="img", desc="masks") as bar:
            for s, batch in _batches(groups, batch_images, start):
                cands = tokenizer.candidates_for([ref for ref, _ in batch], file=name)
                chunk = bytearray()
                for (_ref, lines), cand in zip(batch, cands, strict=True):
                    for record in tokenizer.tokenize_image([orjson.loads(x) for x in lines], cand, file=name):
                        chunk += dumps_line(record)
                emit(s + len(batch), bytes(chunk))
                bar.update(len(batch))

    if to_stdout:
        with open_output(STDIO) as fh:
            process(0, lambda _done, data: fh.write(data))
        return tokenizer.stats

    header = _fingerprint(records_path, config, len(groups))
    state = _read_progress(progress, header, partial.stat().st_size) if resume and partial.exists() else None
    out_path.parent.mkdir(parents=True, exist_ok=True)
    if state is None:
        done, end = 0, 0
        partial.write_bytes(b"")
        progress.write_bytes(orjson.dumps(header) + b"\n")
    else:
        done, end = state
    with open(partial, "r+b") as data_fh, open(progress, "ab") as prog_fh:
        data_fh.truncate(end)
        data_fh.seek(end)
        emit = _Appender(data_fh, prog_fh)
        process(done, emit)
        emit.close()
    if str(out_path).endswith(".gz"):
        with open_output(out_path) as fh, open(partial, "rb") as src:
            shutil.copyfileobj(src, fh)
        partial.unlink()
    else:
        os.replace(partial, out_path)
    progress.unlink()
    return tokenizer.stats
