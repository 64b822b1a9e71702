"""Simulated turn-1 answers: the ground-truth grid encoding with model-like errors, deterministic from a seed.

The turn-1 answer is written in grid tokens, so a proposal is a list of **grid anchors** ``(i, j)`` (cell
centres; :meth:`OffsetLattice.from_anchors` turns them into lattice indices for the refinement turns).

- Displacement: each anchor moves by ``k`` grid cells per axis, ``k`` drawn independently per axis from
  ``StepDistribution.probs`` (``P(k)``, ``k = 0, 1, …``; default 0.5, 0.35, 0.1, 0.025, 0.025) with a random
  sign, then clamped to ``0..n−1``. One cell is ``m`` offset steps, so a 1-cell error takes ``m`` turns to
  undo at most; the tail produces anchors beyond the DELETE radius.
- Ground-truth anchors: box corners by the grid corner rule (TL ``⌊v·n⌋``, BR ``⌈v·n − 1⌉``), a point or a
  polyline vertex by ``⌊v·n⌋``, a mask by its solver anchor set. A displaced box keeps TL ≤ BR per axis (the
  two corners are sorted), as a well-formed answer would.
- Masks: after displacing (and de-duplicating) the solver's anchors, ``Binomial(len(anchors), extra_rate)``
  extra anchors are added, split between the classes Inside / Ring / Far / Hard by the class sampling ratios
  (``MaskClassConfig.ratios``) and drawn from the grid cells of that class (Ring and Hard cells lie within one
  step of the object: the *near* spurious anchors; Far cells lie outside the dilated mask: the *far* ones).
  A class with too few cells gives its share to Far. The proposal is written in row-major order (j, then i)
  so that the position of a token in the answer does not give away whether it is spurious.
- Randomness: :func:`rng_for` seeds a ``numpy`` PCG64 generator from blake2b of ``(seed, record id, key)``, so
  output is identical across runs, platforms and shard splits (never Python's salted ``hash``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gtok_cli.codecs.base import Size
from gtok_cli.quantize import corner_cells, floor_bins
from gtok_cli.refine.classify import CLASS_ORDER, AnchorClass, MaskClassConfig, anchor_classes
from gtok_cli.refine.lattice import IntArray, OffsetLattice


def rng_for(seed: int, record_id: str, key: str = "") -> np.random.Generator:
    """A generator determined by ``(seed, record_id, key)`` alone (blake2b, 64-bit)."""
    digest = hashlib.blake2b(f"{seed}\x1f{record_id}\x1f{key}".encode(), digest_size=8).digest()
    return np.random.Generator(np.random.PCG64(int.from_bytes(digest, "little")))


@dataclass(frozen=True)
class StepDistribution:
    """``probs[k]`` = P(an axis of an anchor is displaced by k grid cells); normalised when used."""

    probs: tuple[float, ...] = (0.5, 0.35, 0.1, 0.025, 0.025)

    def sample(self, rng: np.random.Generator, shape: tuple[int, ...]) -> IntArray:
        p = np.asarray(self.probs, dtype=np.float64)
        if p.ndim != 1 or len(p) == 0 or (p < 0).any() or p.sum() <= 0:
            raise ValueError(f"step probabilities must be >= 0 and not all zero, got {self.probs}")
        k = rng.choice(len(p), size=shape, p=p / p.sum())
        sign = rng.choice(np.array([-1, 1]), size=shape)
        return (k * sign).astype(np.int64)


@dataclass(frozen=True)
class ProposalConfig:
    steps: StepDistribution = StepDistribution()
    extra_rate: float = 0.5
    """Masks: expected extra (spurious or redundant) anchors per solver anchor."""


def truth_anchors(kind: str, coords: Sequence[float], size: Size, n: int) -> IntArray:
    """Ground-truth grid anchors (k×2, ``(i, j)``) of a box / point / polyline in pixels."""
    w, h = size
    c = np.asarray(coords, dtype=np.float64).reshape(-1, 2)
    if kind == "box":
        (x1, y1), (x2, y2) = c
        xi = corner_cells(x1, x2, w, n)
        yj = corner_cells(y1, y2, h, n)
        return np.array([[xi[0], yj[0]], [xi[1], yj[1]]], dtype=np.int64)
    if kind in ("point", "polyline"):
        return np.stack([floor_bins(c[:, 0], w, n), floor_bins(c[:, 1], h, n)], axis=1).astype(np.int64)
    raise ValueError(f"no truth anchors for shape kind {kind!r} (masks carry their solver anchors)")


def displace(anchors: npt.ArrayLike, n: int, rng: np.random.Generator, cfg: ProposalConfig) -> IntArray:
    """Anchors moved by a random number of cells per axis, clamped to the grid."""
    a = np.asarray(anchors, dtype=np.int64).reshape(-1, 2)
    return np.clip(a + cfg.steps.sample(rng, a.shape), 0, n - 1)


def propose_shape(
    kind: str,
    coords: Sequence[float],
    size: Size,
    n: int,
    rng: np.random.Generator,
    cfg: ProposalConfig = ProposalConfig(),
) -> IntArray:
    """A proposal for a box (2×2, TL then BR, sorted per axis), point (1×2) or polyline (k×2)."""
    moved = displace(truth_anchors(kind, coords, size, n), n, rng, cfg)
    if kind == "box":
        moved = np.sort(moved, axis=0)
    return moved


def _unique_rows(a: IntArray) -> IntArray:
    seen: set[tuple[int, int]] = set()
    out = []
    for i, j in a.tolist():
        if (i, j) not in seen:
            seen.add((i, j))
            out.append((i, j))
    return np.array(out, dtype=np.int64).reshape(-1, 2)


def all_cells(n: int) -> IntArray:
    """Every grid anchor in row-major order (j, then i)."""
    jj, ii = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    return np.stack([ii.ravel(), jj.ravel()], axis=1).astype(np.int64)


def propose_mask(
    anchors: npt.ArrayLike,
    mask: npt.ArrayLike,
    size: Size,
    lattice: OffsetLattice,
    rng: np.random.Generator,
    cfg: ProposalConfig = ProposalConfig(),
    class_cfg: MaskClassConfig = MaskClassConfig(),
) -> IntArray:
    """A mask proposal (k×2 grid anchors, row-major): displaced solver anchors plus class-sampled extras."""
    n = lattice.grid
    gt = np.asarray(anchors, dtype=np.int64).reshape(-1, 2)
    base = _unique_rows(displace(gt, n, rng, cfg))
    cells = all_cells(n)
    classes = anchor_classes(lattice.from_anchors(cells), mask, size, lattice, class_cfg)
    taken = {(int(i), int(j)) for i, j in base}
    pools = {
        c: [
            k
            for k, cls in enumerate(classes)
            if cls is c and (int(cells[k, 0]), int(cells[k, 1])) not in taken
        ]
        for c in CLASS_ORDER
    }
    extra = int(rng.binomial(len(gt), min(max(cfg.extra_rate, 0.0), 1.0))) if len(gt) else 0
    quota = rng.multinomial(extra, class_cfg.ratios.probabilities())
    chosen: list[int] = []
    spill = 0
    for c, want in zip(CLASS_ORDER, quota, strict=True):
        if c is AnchorClass.FAR:
            continue
        take = min(int(want), len(pools[c]))
        spill += int(want) - take
        chosen.extend(rng.choice(pools[c], size=take, replace=False).tolist() if take else [])
    far_pool = pools[AnchorClass.FAR]
    far_take = min(int(quota[CLASS_ORDER.index(AnchorClass.FAR)]) + spill, len(far_pool))
    chosen.extend(rng.choice(far_pool, size=far_take, replace=False).tolist() if far_take else [])
    out = np.concatenate([base, cells[np.asarray(chosen, dtype=np.int64)]]) if chosen else base
    order = np.lexsort((out[:, 0], out[:, 1]))
    return out[order]
