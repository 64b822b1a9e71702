"""The unit of work of ``gtok masks``: a batch of whole images → their output lines, as one picklable call.

Every engine calls the same :class:`ImageBatchSolver` and hands its :class:`BatchResult` objects, in input
order, to the same writer (:func:`gtok_cli.masks.run.run_masks`): the local engine in this process, the Ray
engine (:mod:`gtok_cli.masks.engine_ray`) in actors on a cluster. Output bytes therefore cannot depend on the
engine (img2dataset's split: a picklable worker, any distributor).

Example::

    solver = ImageBatchSolver(MaskSolverConfig(grid=16), file="in.jsonl")
    result = solver(ImageJob(0, groups[:4]))      # groups: run.group_by_image("in.jsonl")
    result.data                                   # the 4 images' records with mask_tokens, JSONL bytes

An image that cannot be solved (image missing / unreadable / of another size, a mask that does not
rasterise) stops the batch there with ``error`` set under ``on_error="fail"``; under ``"skip"`` its records
are left out and it is listed in ``rejected`` with its reason (one rejects-file line each).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import orjson

from gtok_cli.errors import InputError
from gtok_cli.geometry.candidates import Candidates
from gtok_cli.jsonio import dumps_line
from gtok_cli.masks.solver import ImageRef, MaskSolverConfig, MaskTokenizer, SolveStats

OnError = Literal["fail", "skip"]
ImageGroup = tuple[ImageRef, list[bytes]]
"""One image and its records (raw JSON lines, input order)."""


@dataclass(frozen=True)
class ImageJob:
    """``images[k]`` is image ``start + k`` of the input (images in order of first appearance)."""

    start: int
    images: list[ImageGroup]


@dataclass
class BatchResult:
    """What one job gives back: the output lines of its images, in order, and what could not be solved."""

    start: int
    count: int
    data: bytes = b""
    lines: int = 0
    rejected: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    """``(image index, rejects-file object)`` per image left out under ``on_error="skip"``"""
    error: InputError | None = None
    """under ``on_error="fail"``: the first image that failed (the batch is not written)"""
    stats: SolveStats = field(default_factory=SolveStats)


def reject_object(ref: ImageRef, lines: list[bytes], error: InputError) -> dict[str, Any]:
    """The rejects-file line of an image left out: the image, its records' ids, and why."""
    ids = [orjson.loads(x).get("id") for x in lines]
    return {"item": "image", "image": ref.file, "record_ids": ids, **error.to_json()}


class ImageBatchSolver:
    """Solves :class:`ImageJob` objects; the backend (SAM loaded once) is built on the first call, where it
    runs, and is not pickled with the solver."""

    def __init__(
        self,
        config: MaskSolverConfig,
        *,
        file: str,
        images_root: str | Path | None = None,
        sam_model: Any = None,
        on_error: OnError = "fail",
    ) -> None:
        self.config = config
        self.file = file
        # absolute: a Ray worker need not start in the driver's folder
        self.images_root = None if images_root is None else os.path.abspath(images_root)
        self.sam_model = sam_model
        self.on_error = on_error
        self._tokenizer: MaskTokenizer | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_tokenizer": None}

    @property
    def tokenizer(self) -> MaskTokenizer:
        if self._tokenizer is None:
            self._tokenizer = MaskTokenizer(
                self.config, sam_model=self.sam_model, images_root=self.images_root
            )
        return self._tokenizer

    def __call__(self, job: ImageJob) -> BatchResult:
        tok = self.tokenizer
        tok.stats = SolveStats()  # this batch's counts: the writer adds them up
        result = BatchResult(job.start, len(job.images), stats=tok.stats)
        images: list[np.ndarray | None] = [None] * len(job.images)
        failed: dict[int, InputError] = {}
        if tok.sam is not None:
            t0 = time.perf_counter()
            for k, (ref, _lines) in enumerate(job.images):
                try:
                    images[k] = tok.load_image(ref, file=self.file)
                except InputError as exc:
                    failed[k] = exc
            tok.stats.seconds["load"] += time.perf_counter() - t0
        good = [k for k in range(len(job.images)) if k not in failed]
        sam_before = (tok.sam.timings.encoder, tok.sam.timings.decoder) if tok.sam is not None else None
        cands = tok.candidates_for(
            [job.images[k][0] for k in good],
            file=self.file,
            images=[images[k] for k in good] if tok.sam is not None else None,
        )
        if sam_before is not None:  # SAM's own share, for "solver time over encoder + decoder"
            tok.stats.seconds["sam_encoder"] = tok.sam.timings.encoder - sam_before[0]
            tok.stats.seconds["sam_decoder"] = tok.sam.timings.decoder - sam_before[1]
        cand_of = dict(zip(good, cands, strict=True))
        chunk = bytearray()
        for k, (ref, lines) in enumerate(job.images):
            error = failed.get(k)
            if error is None:
                try:
                    chunk += _solve_image(tok, lines, cand_of[k], self.file)
                    result.lines += len(lines)
                    continue
                except InputError as exc:
                    error = exc
            if self.on_error == "fail":
                result.error = error
                break
            result.rejected.append((job.start + k, reject_object(ref, lines, error)))
            tok.stats.rejected_images += 1
            tok.stats.rejected_records += len(lines)
        result.data = bytes(chunk)
        return result


def _solve_image(tok: MaskTokenizer, lines: list[bytes], cand: Candidates, file: str) -> bytes:
    out = bytearray()
    for record in tok.tokenize_image([orjson.loads(x) for x in lines], cand, file=file):
        out += dumps_line(record)
    return bytes(out)


class Engine(Protocol):
    """Runs ``solver`` on every job and yields the results in the jobs' order."""

    def __call__(self, solver: ImageBatchSolver, jobs: list[ImageJob]) -> Iterator[BatchResult]: ...


def local_engine(solver: ImageBatchSolver, jobs: Iterable[ImageJob]) -> Iterator[BatchResult]:
    """The default engine: every job in this process, one after the other."""
    for job in jobs:
        yield solver(job)
