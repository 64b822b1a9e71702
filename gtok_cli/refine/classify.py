"""Classify proposed mask anchors against the ground-truth mask: Inside, Ring, Far, Hard-Delete (GETok §3.3).

Everything is scaled to the offset step. With image size ``(W, H)``, grid ``n`` and ``m`` steps per cell, one
step is ``sx = W / (m·n)`` pixels along x and ``sy = H / (m·n)`` along y. The radii are

    erosion  ``(ex, ey) = (max(1, ⌈erode_steps·sx⌉), max(1, ⌈erode_steps·sy⌉))``   (default 1 step)
    dilation ``(dx, dy) = (max(1, ⌈dilate_steps·sx⌉), max(1, ⌈dilate_steps·sy⌉))`` (default 1 step)

and ``E = erode(M, ex, ey)``, ``D = dilate(M, dx, dy)`` use a ``(2r+1)``-pixel rectangle per axis (see
:mod:`gtok_cli.refine.morphology`; windows truncated at the image border). An anchor at lattice position ``q``
is looked up at the pixel it falls in, ``p = (⌊x⌋, ⌊y⌋)``; a move ``(du, dv)`` lands at the pixel of
``clamp(q + (du, dv))``, at most ``⌈sx⌉``, ``⌈sy⌉`` pixels from ``p`` (hence the ceilings: with the default
radii an Inside anchor's nine landing pixels are all in ``M`` and a Far anchor's are all outside). The rule,
applied in this order:

1. **Inside** — ``p ∈ E``: everything within one step is object, so the anchor is stable → ``<OFF_0_0>``.
2. **Far** — ``p ∉ D``: no object pixel within one step, so no move reaches the object → ``<DELETE>``.
3. **Ring** — otherwise (``p ∈ D \\ E``, the band of one step around the boundary), if some of the nine moves
   lands in ``M``: the target is the nearest *interior point* ``c*``: the nearest pixel centre of ``E`` within
   ``|Δx| ≤ ex + dx, |Δy| ≤ ey + dy`` pixels of ``p``, or, when there is none (thin parts such as a one-pixel
   line, small separate blobs), the nearest pixel centre of ``M`` there; distance in steps,
   ``((x−cx)/sx)² + ((y−cy)/sy)²``, ties to the first in row-major order. The offset is the move landing in
   ``M`` whose landing point is nearest to ``c*`` (ties: fewer non-zero components, then the fixed order of
   ``MOVES``); it is ``<OFF_0_0>`` when staying is nearest (an anchor in ``M`` close to ``c*``).
4. **Hard-Delete** — in the band but none of the nine moves lands in ``M`` (thin parts, corners): DELETE.
   Optional hook: given one candidate mask per anchor (the SAM/cells mask the anchor stands for), an Inside
   or Ring anchor whose removal would *raise* the IoU of the union of the kept anchors' candidates with ``M``
   is also Hard-Delete (its mask hurts the union).

Class sampling ratios (used by :mod:`gtok_cli.refine.proposals` to compose mask proposals) default to
Inside 0.4, Ring 0.4, Far 0.1, Hard 0.1: biased toward the classes with the most to learn from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

import numpy as np
import numpy.typing as npt

from gtok_cli.codecs.base import Size
from gtok_cli.refine.lattice import MOVES, BoolArray, FloatArray, IntArray, Offset, OffsetLattice
from gtok_cli.refine.morphology import dilate, erode


class AnchorClass(str, Enum):
    INSIDE = "inside"
    RING = "ring"
    FAR = "far"
    HARD = "hard"


CLASS_ORDER: tuple[AnchorClass, ...] = (
    AnchorClass.INSIDE,
    AnchorClass.RING,
    AnchorClass.FAR,
    AnchorClass.HARD,
)


@dataclass(frozen=True)
class ClassRatios:
    """Target share of each class in a sampled mask proposal (normalised when used)."""

    inside: float = 0.4
    ring: float = 0.4
    far: float = 0.1
    hard: float = 0.1

    def probabilities(self) -> FloatArray:
        p = np.array([self.inside, self.ring, self.far, self.hard], dtype=np.float64)
        if (p < 0).any() or p.sum() <= 0:
            raise ValueError(f"class ratios must be >= 0 and not all zero, got {p.tolist()}")
        return p / p.sum()


@dataclass(frozen=True)
class MaskClassConfig:
    """Radii (in offset steps) of the morphology, and the class sampling ratios."""

    erode_steps: float = 1.0
    dilate_steps: float = 1.0
    ratios: ClassRatios = ClassRatios()

    def radii(self, lattice: OffsetLattice, size: Size) -> tuple[tuple[int, int], tuple[int, int]]:
        """``((ex, ey), (dx, dy))`` in pixels, as in the module docstring."""
        sx, sy = lattice.step_pixels(size)

        def r(steps: float, s: float) -> int:
            return max(1, int(np.ceil(steps * s - 1e-9)))

        return (
            (r(self.erode_steps, sx), r(self.erode_steps, sy)),
            (r(self.dilate_steps, sx), r(self.dilate_steps, sy)),
        )


@dataclass(frozen=True)
class Classification:
    """Per anchor, in input order: its class and its target offset (``None`` = DELETE)."""

    classes: list[AnchorClass]
    offsets: list[Offset]

    def counts(self) -> dict[str, int]:
        return {c.value: sum(1 for x in self.classes if x is c) for c in CLASS_ORDER}


@dataclass(frozen=True)
class _Bands:
    eroded: BoolArray
    dilated: BoolArray


def _bands(mask: BoolArray, lattice: OffsetLattice, size: Size, cfg: MaskClassConfig) -> _Bands:
    """``E`` and ``D`` of the whole image, computed on the mask's bounding box grown by the radii + 1.

    Exact: outside that crop both are False (no mask pixel within a radius), and a crop edge that is not the
    image edge lies more than a radius from every mask pixel, so truncating windows there changes nothing.
    """
    (ex, ey), (dx, dy) = cfg.radii(lattice, size)
    eroded = np.zeros(mask.shape, dtype=bool)
    dilated = np.zeros(mask.shape, dtype=bool)
    rows = np.flatnonzero(mask.any(axis=1))
    if len(rows) == 0:
        return _Bands(eroded, dilated)
    cols = np.flatnonzero(mask.any(axis=0))
    h, w = mask.shape
    my, mx = max(ey, dy) + 1, max(ex, dx) + 1
    r0, r1 = max(int(rows[0]) - my, 0), min(int(rows[-1]) + my + 1, h)
    c0, c1 = max(int(cols[0]) - mx, 0), min(int(cols[-1]) + mx + 1, w)
    crop = mask[r0:r1, c0:c1]
    eroded[r0:r1, c0:c1] = erode(crop, ex, ey)
    dilated[r0:r1, c0:c1] = dilate(crop, dx, dy)
    return _Bands(eroded, dilated)


def _check_mask(mask: npt.ArrayLike, size: Size) -> BoolArray:
    m = np.asarray(mask, dtype=bool)
    w, h = size
    if m.shape != (h, w):
        raise ValueError(f"mask shape {m.shape} does not match image size (width, height) = {size}")
    return m


def _landing_in_mask(q: IntArray, mask: BoolArray, lattice: OffsetLattice, size: Size) -> BoolArray:
    """k×9: whether each of the nine moves lands on a mask pixel."""
    moves = np.asarray(MOVES, dtype=np.int64)
    landing = lattice.clamp(q[:, None, :] + moves[None, :, :])
    pix = lattice.to_pixel_index(landing, size)
    return mask[pix[..., 1], pix[..., 0]]


def anchor_classes(
    q: npt.ArrayLike,
    mask: npt.ArrayLike,
    size: Size,
    lattice: OffsetLattice,
    cfg: MaskClassConfig = MaskClassConfig(),
) -> list[AnchorClass]:
    """Classes only (steps 1–4 without the union hook); vectorised over anchors."""
    m = _check_mask(mask, size)
    pos = np.asarray(q, dtype=np.int64).reshape(-1, 2)
    return _classes(pos, m, _bands(m, lattice, size, cfg), lattice, size)


def _classes(
    pos: IntArray, m: BoolArray, bands: _Bands, lattice: OffsetLattice, size: Size
) -> list[AnchorClass]:
    if len(pos) == 0:
        return []
    pix = lattice.to_pixel_index(pos, size)
    inside = bands.eroded[pix[:, 1], pix[:, 0]]
    near = bands.dilated[pix[:, 1], pix[:, 0]]
    can_reach: BoolArray = np.asarray(_landing_in_mask(pos, m, lattice, size).any(axis=1))
    out = []
    for k in range(len(pos)):
        if inside[k]:
            out.append(AnchorClass.INSIDE)
        elif not near[k]:
            out.append(AnchorClass.FAR)
        elif can_reach[k]:
            out.append(AnchorClass.RING)
        else:
            out.append(AnchorClass.HARD)
    return out


def _nearest_pixel(point: FloatArray, pixels: BoolArray, steps: tuple[float, float]) -> FloatArray | None:
    """Centre of the set pixel nearest to ``point`` (distance in steps), ties to the first row-major."""
    rows, cols = np.nonzero(pixels)
    if len(rows) == 0:
        return None
    xs, ys = cols + 0.5, rows + 0.5
    d2 = ((xs - point[0]) / steps[0]) ** 2 + ((ys - point[1]) / steps[1]) ** 2
    best = int(np.argmin(d2))
    return np.array([xs[best], ys[best]])


def _interior_target(
    point: FloatArray,
    pix: IntArray,
    mask: BoolArray,
    bands: _Bands,
    steps: tuple[float, float],
    reach: tuple[int, int],
) -> FloatArray:
    """The nearest interior point ``c*`` of a Ring anchor (see the module docstring, rule 3)."""
    h, w = mask.shape
    c0, c1 = max(int(pix[0]) - reach[0], 0), min(int(pix[0]) + reach[0] + 1, w)
    r0, r1 = max(int(pix[1]) - reach[1], 0), min(int(pix[1]) + reach[1] + 1, h)
    local = point - np.array([c0, r0], dtype=np.float64)
    for layer in (bands.eroded, mask):
        hit = _nearest_pixel(local, layer[r0:r1, c0:c1], steps)
        if hit is not None:
            return hit + np.array([c0, r0], dtype=np.float64)
    raise AssertionError("a Ring anchor has mask pixels within the dilation radius")


_MOVES_ARRAY = np.asarray(MOVES, dtype=np.int64)


def _ring_offset(
    q: IntArray,
    lands: BoolArray,
    target: FloatArray,
    lattice: OffsetLattice,
    size: Size,
) -> tuple[int, int]:
    """The move landing in the mask whose landing point is nearest ``target`` (ties: shortest, then order)."""
    steps = lattice.step_pixels(size)
    # the nine landing points at once (same float operations per element as one at a time)
    p = lattice.to_pixels(lattice.clamp(q[None, :] + _MOVES_ARRAY), size)
    dist = ((p[:, 0] - target[0]) / steps[0]) ** 2 + ((p[:, 1] - target[1]) / steps[1]) ** 2
    best: tuple[float, int, int] | None = None
    for k, (du, dv) in enumerate(MOVES):
        if not lands[k]:
            continue
        key = (round(float(dist[k]), 9), abs(du) + abs(dv), k)
        if best is None or key < best:
            best = key
    assert best is not None  # a Ring anchor has at least one landing move by definition
    return MOVES[best[2]]


def union_hurts(gt: BoolArray, candidates: Sequence[npt.ArrayLike], keep: BoolArray) -> BoolArray:
    """For each kept anchor: would dropping its candidate mask raise the union's IoU with ``gt``?"""
    out = np.zeros(len(candidates), dtype=bool)
    idx = np.flatnonzero(keep)
    if len(idx) == 0:
        return out
    cands = np.stack([np.asarray(candidates[int(k)], dtype=np.bool_) for k in idx])
    cover = cands.sum(axis=0)
    union = cover > 0
    inter = int(np.count_nonzero(union & gt))
    uni = int(np.count_nonzero(union | gt))
    base = inter / uni if uni else 0.0
    only = cover == 1
    for row, k in enumerate(idx):
        lost = cands[row] & only
        inter_k = inter - int(np.count_nonzero(lost & gt))
        uni_k = uni - int(np.count_nonzero(lost & ~gt))
        iou_k = inter_k / uni_k if uni_k else 0.0
        out[k] = iou_k > base + 1e-12
    return out


def classify_anchors(
    q: npt.ArrayLike,
    mask: npt.ArrayLike,
    size: Size,
    lattice: OffsetLattice,
    cfg: MaskClassConfig = MaskClassConfig(),
    candidate_masks: Sequence[npt.ArrayLike] | None = None,
) -> Classification:
    """Class and target offset of each proposed anchor (lattice indices, k×2) against ``mask`` (H×W bool)."""
    m = _check_mask(mask, size)
    pos = np.asarray(q, dtype=np.int64).reshape(-1, 2)
    bands = _bands(m, lattice, size, cfg)
    classes = _classes(pos, m, bands, lattice, size)
    if candidate_masks is not None:
        if len(candidate_masks) != len(pos):
            raise ValueError(f"{len(candidate_masks)} candidate masks for {len(pos)} anchors")
        kept = np.array([c in (AnchorClass.INSIDE, AnchorClass.RING) for c in classes], dtype=bool)
        for hurt in np.flatnonzero(union_hurts(m, candidate_masks, kept)).tolist():
            classes[hurt] = AnchorClass.HARD
    lands = _landing_in_mask(pos, m, lattice, size) if len(pos) else np.zeros((0, 9), dtype=bool)
    pix = lattice.to_pixel_index(pos, size)
    steps = lattice.step_pixels(size)
    (ex, ey), (dx, dy) = cfg.radii(lattice, size)
    reach = (ex + dx, ey + dy)
    offsets: list[Offset] = []
    for k, c in enumerate(classes):
        if c is AnchorClass.INSIDE:
            offsets.append((0, 0))
        elif c is AnchorClass.RING:
            target = _interior_target(lattice.to_pixels(pos[k], size), pix[k], m, bands, steps, reach)
            offsets.append(_ring_offset(pos[k], lands[k], target, lattice, size))
        else:
            offsets.append(None)
    return Classification(classes, offsets)
