"""Per-image driver: one image's records → the same records with ``mask_tokens`` on every region with a mask.

Library use::

    tok = MaskTokenizer(MaskSolverConfig(backend="cells", grid=32))
    new_records = tok.tokenize_image(records_of_one_image, image=None)

Regions with the same mask (RefCOCO-style: many expressions for one annotation) are rasterised and solved
once per image: first by identical mask JSON, then by identical raster.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gtok_cli import limits
from gtok_cli.errors import InputError, UsageError
from gtok_cli.geometry.candidates import Candidates
from gtok_cli.geometry.cells import cell_candidates
from gtok_cli.geometry.rasterize import region_mask_to_bool
from gtok_cli.images import open_image_rgb, safe_image_path
from gtok_cli.jsonio import dumps
from gtok_cli.masks.greedy import VARIANTS, GreedyResult, greedy_numpy

BACKENDS = ("cells", "sam")


@dataclass(frozen=True)
class MaskSolverConfig:
    backend: str = "cells"
    grid: int = 32
    tau: float = 0.9
    variant: str = "sorted"
    max_tokens: int | None = None
    select: str = "max-pred-iou"
    model_type: str = "vit_h"
    sam_checkpoint: str | None = None
    device: str = "cpu"
    """``cpu``: numpy greedy (SAM on CPU); ``cuda[:i]``: SAM and the torch greedy on that GPU"""
    dtype: str = "fp32"
    prompt_chunk: int = 64

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise UsageError(f"--backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.grid < 1:
            raise UsageError(f"--grid must be at least 1, got {self.grid}")
        limits.check("grid", self.grid)
        if not 0.0 < self.tau <= 1.0:
            raise UsageError(f"--tau must be in (0, 1], got {self.tau}")
        if self.variant not in VARIANTS:
            raise UsageError(f"--variant must be one of {', '.join(VARIANTS)}, got {self.variant!r}")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise UsageError(f"--max-tokens must be >= 1, got {self.max_tokens}")
        if self.prompt_chunk < 1:
            raise UsageError(f"--prompt-chunk must be >= 1, got {self.prompt_chunk}")

    @property
    def uses_torch_greedy(self) -> bool:
        return self.device.startswith("cuda")

    def token_fields(self) -> dict[str, Any]:
        """The solver parameters written beside every anchor set (docs/spec.md#mask-tokens), plus the SAM
        rule when used."""
        fields: dict[str, Any] = {"backend": self.backend, "tau": self.tau, "variant": self.variant}
        if self.max_tokens is not None:
            fields["max_tokens"] = self.max_tokens
        if self.backend == "sam":
            fields["model_type"] = self.model_type
            fields["select"] = self.select
        return fields


def solve_objects(
    gt_masks: list[np.ndarray], candidates: Candidates, config: MaskSolverConfig
) -> list[GreedyResult]:
    """The greedy for every ground-truth mask of one image: torch on a GPU, bit-packed numpy on CPU."""
    if not gt_masks:
        return []
    if config.uses_torch_greedy:
        import torch

        from gtok_cli.masks.greedy_torch import greedy_torch

        dense = candidates.dense_torch(config.device)
        gts = torch.from_numpy(np.stack(gt_masks)).to(dense.device)
        return greedy_torch(dense, gts, tau=config.tau, variant=config.variant, max_tokens=config.max_tokens)
    return greedy_numpy(
        candidates.packed,
        gt_masks,
        tau=config.tau,
        variant=config.variant,
        max_tokens=config.max_tokens,
        stats=candidates.stats,
    )


@dataclass
class SolveStats:
    images: int = 0
    records: int = 0
    regions_tokenised: int = 0
    objects_solved: int = 0
    reached_tau: int = 0
    iou_sum: float = 0.0
    tokens_sum: int = 0
    rejected_images: int = 0
    """images left out under ``--on-error skip`` (their records are in the rejects file, not the output)"""
    rejected_records: int = 0
    seconds: dict[str, float] = field(default_factory=lambda: {"load": 0.0, "candidates": 0.0, "greedy": 0.0})

    def add(self, other: SolveStats) -> None:
        """Add another batch's counts (engines solve batches apart; the writer adds them up)."""
        for name, value in asdict(other).items():
            if name == "seconds":
                for stage, t in value.items():
                    self.seconds[stage] = self.seconds.get(stage, 0.0) + t
            else:
                setattr(self, name, getattr(self, name) + value)

    def summary(self) -> dict[str, Any]:
        d = asdict(self)
        n = max(self.objects_solved, 1)
        d["mean_iou"] = self.iou_sum / n
        d["mean_tokens"] = self.tokens_sum / n
        return d


@dataclass(frozen=True)
class ImageRef:
    file: str
    width: int
    height: int


class MaskTokenizer:
    """Holds the backend (SAM model loaded once) and solves one image's records at a time."""

    def __init__(
        self, config: MaskSolverConfig, *, sam_model: Any = None, images_root: str | Path | None = None
    ) -> None:
        self.config = config
        self.images_root = images_root
        self.stats = SolveStats()
        self.sam: Any = None
        if config.backend == "sam":
            from gtok_cli.geometry.sam import SamCandidateMaker, load_sam

            if sam_model is None:
                if not config.sam_checkpoint:
                    raise UsageError(
                        "--backend sam needs --sam-checkpoint PATH (weights are never downloaded)"
                    )
                sam_model = load_sam(config.sam_checkpoint, config.model_type, config.device)
            else:
                sam_model = sam_model.to(config.device)
            if images_root is None:
                raise UsageError("--backend sam needs --images DIR")
            self.sam = SamCandidateMaker(
                sam_model,
                grid=config.grid,
                select=config.select,
                dtype=config.dtype,
                prompt_chunk=config.prompt_chunk,
            )

    # -- candidates -----------------------------------------------------------------------------------------
    def load_image(self, ref: ImageRef, *, file: str | None = None, record: str | None = None) -> np.ndarray:
        assert self.images_root is not None
        path = safe_image_path(self.images_root, ref.file, file=file, record=record)
        if not path.is_file():
            raise InputError(
                "image file not found",
                file=file,
                record=record,
                field="image.file",
                expected=f"a file under {self.images_root}",
                found=ref.file,
                reason="image.missing",
            )
        try:
            image = np.asarray(open_image_rgb(path))
        except OSError as exc:
            raise InputError(
                f"cannot read image {path}: {exc}",
                file=file,
                record=record,
                field="image.file",
                reason="image.unreadable",
            ) from None
        if image.shape[:2] != (ref.height, ref.width):
            raise InputError(
                f"image {path.name} size disagrees with the record (EXIF orientation applied)",
                file=file,
                record=record,
                field="image.width/height",
                expected=f"{ref.width}x{ref.height}",
                found=f"{image.shape[1]}x{image.shape[0]}",
                reason="image.size_mismatch",
            )
        return image

    def candidates_for(
        self, refs: list[ImageRef], *, file: str | None = None, images: list[Any] | None = None
    ) -> list[Candidates]:
        """Candidates of several images (SAM encodes them in one batch); ``images``: already loaded."""
        t0 = time.perf_counter()
        if not refs:
            return []
        if self.sam is None:
            out = [cell_candidates(self.config.grid, r.width, r.height) for r in refs]
        else:
            if images is None:
                images = [self.load_image(r, file=file) for r in refs]
            t1 = time.perf_counter()
            self.stats.seconds["load"] += t1 - t0
            t0 = t1
            out = self.sam.candidates(images)
        self.stats.seconds["candidates"] += time.perf_counter() - t0
        return out

    # -- one image ------------------------------------------------------------------------------------------
    def tokenize_image(
        self, records: list[dict[str, Any]], candidates: Candidates, *, file: str | None = None
    ) -> list[dict[str, Any]]:
        """``records`` of one image (same file and size as ``candidates``) → copies with ``mask_tokens``."""
        width, height = candidates.width, candidates.height
        by_json: dict[bytes, int] = {}
        by_raster: dict[bytes, int] = {}
        gts: list[np.ndarray] = []
        slots: list[tuple[int, int, int]] = []  # (record index, region index, object index)
        for ri, record in enumerate(records):
            for gi, region in enumerate(record.get("regions") or []):
                mask = region.get("mask") if isinstance(region, dict) else None
                if mask is None:
                    continue
                raw = dumps(mask)
                obj = by_json.get(raw)
                if obj is None:
                    arr = region_mask_to_bool(
                        mask,
                        width,
                        height,
                        file=file,
                        record=str(record.get("id")),
                        field=f"regions[{gi}].mask",
                    )
                    digest = hashlib.blake2b(np.packbits(arr).tobytes(), digest_size=16).digest()
                    obj = by_raster.get(digest)
                    if obj is None:
                        obj = by_raster[digest] = len(gts)
                        gts.append(arr)
                    by_json[raw] = obj
                slots.append((ri, gi, obj))
        t0 = time.perf_counter()
        results = solve_objects(gts, candidates, self.config)
        self.stats.seconds["greedy"] += time.perf_counter() - t0
        self._count(records, results, len(slots))
        out = list(records)
        fields = self.config.token_fields()
        touched: set[int] = set()
        for ri, gi, obj in slots:
            if ri not in touched:  # copy only what changes; the input dicts stay as they were
                out[ri] = {**records[ri], "regions": list(records[ri]["regions"])}
                touched.add(ri)
            res = results[obj]
            out[ri]["regions"][gi] = {
                **records[ri]["regions"][gi],
                "mask_tokens": {
                    "grid": self.config.grid,
                    "anchors": res.anchors(self.config.grid),
                    "iou": res.iou,
                    **fields,
                },
            }
        return out

    def _count(self, records: list[dict[str, Any]], results: list[GreedyResult], n_regions: int) -> None:
        s = self.stats
        s.images += 1
        s.records += len(records)
        s.regions_tokenised += n_regions
        s.objects_solved += len(results)
        for r in results:
            s.reached_tau += r.iou >= self.config.tau
            s.iou_sum += r.iou
            s.tokens_sum += len(r.indices)
