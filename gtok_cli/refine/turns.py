"""Refinement turns: what ``export`` writes and what ``verify`` checks.

A :class:`ShapeRefinement` is one shape through a chain of turns: the turn-1 proposal (grid anchors, written
as grid tokens) and K refinement turns, each holding one offset per anchor of the previous answer, in order
(``(du, dv)`` or ``None`` for ``<DELETE>``), and the lattice positions left after applying them. Turn k+1 is
computed from the geometry left by turn k (targets in :mod:`gtok_cli.refine.targets` for boxes, points and
polylines; classification in :mod:`gtok_cli.refine.classify` for masks).

``verify`` calls :func:`apply_turn` (count check + move) and :func:`expected_offsets` / :func:`check_turn` to
compare a turn with the supervision the truth implies.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from gtok_cli.codecs.base import Shape, ShapeKind, Size
from gtok_cli.codecs.grid import ShapeOffsets
from gtok_cli.refine.classify import AnchorClass, MaskClassConfig, classify_anchors
from gtok_cli.refine.lattice import BoolArray, FloatArray, IntArray, Offset, OffsetLattice
from gtok_cli.refine.proposals import ProposalConfig, propose_mask, propose_shape
from gtok_cli.refine.targets import TargetConfig, shape_targets

CandidateFn = Callable[[IntArray], Sequence[npt.ArrayLike]]
"""Masks, optional: lattice positions (k×2) → one candidate mask per anchor (union-IoU Hard-Delete hook)."""


class TurnMismatch(ValueError):
    """A refinement turn whose offsets do not pair one-to-one with the previous answer's anchors."""


@dataclass(frozen=True)
class RefineTurn:
    offsets: list[Offset]
    """One per anchor of the previous answer, in its order."""
    positions: IntArray
    """Lattice indices (k×2) of the anchors left after applying ``offsets``, in order."""
    classes: list[AnchorClass] | None = None
    """Masks: the class of each anchor of the previous answer."""


@dataclass(frozen=True)
class ShapeRefinement:
    kind: ShapeKind
    proposal: IntArray
    """Turn-1 grid anchors ``(i, j)`` (k×2), in the order they are written."""
    turns: list[RefineTurn] = field(default_factory=list)

    def positions(self, turn: int, lattice: OffsetLattice) -> IntArray:
        """Lattice positions after ``turn`` refinement turns (0 = the proposal)."""
        return lattice.from_anchors(self.proposal) if turn == 0 else self.turns[turn - 1].positions

    def shape_offsets(self, turn: int) -> ShapeOffsets:
        """Turn ``turn`` (1-based) as the grid codec's ``ShapeOffsets`` (for ``encode_refinement``)."""
        return ShapeOffsets(self.kind, tuple(self.turns[turn - 1].offsets))

    def geometry(self, turn: int, size: Size, lattice: OffsetLattice) -> Shape | None:
        """Geometry after ``turn`` turns (pixels), as ``verify`` should find it; None when deleted."""
        return refined_shape(self.kind, self.positions(turn, lattice), size, lattice)


def apply_turn(positions: npt.ArrayLike, offsets: Sequence[Offset], lattice: OffsetLattice) -> IntArray:
    """Apply a turn to the previous answer's positions; exactly one offset per anchor, else TurnMismatch."""
    pos = np.asarray(positions, dtype=np.int64).reshape(-1, 2)
    if len(offsets) != len(pos):
        raise TurnMismatch(f"{len(offsets)} offset tokens for {len(pos)} anchors of the previous answer")
    try:
        moved, _ = lattice.apply(pos, offsets)
    except ValueError as exc:
        raise TurnMismatch(str(exc)) from None
    return moved


def refined_shape(kind: str, positions: npt.ArrayLike, size: Size, lattice: OffsetLattice) -> Shape | None:
    """Lattice positions → a Shape in pixels (box from its two corners; mask coords = anchor points).

    Returns None for a deleted box or point (fewer anchors than the shape needs).
    """
    pos = np.asarray(positions, dtype=np.int64).reshape(-1, 2)
    px = lattice.to_pixels(pos, size)
    if kind == "box":
        if len(pos) != 2:
            return None
        return Shape.box(px[0, 0], px[0, 1], px[1, 0], px[1, 1])
    if kind == "point":
        return Shape.point(px[0, 0], px[0, 1]) if len(pos) == 1 else None
    if kind == "polyline":
        return Shape.polyline([(float(x), float(y)) for x, y in px])
    if kind == "mask":
        return Shape("mask", tuple(float(v) for v in px.ravel()))
    raise ValueError(f"unknown shape kind {kind!r}")


def expected_offsets(
    kind: str,
    positions: npt.ArrayLike,
    size: Size,
    lattice: OffsetLattice,
    *,
    coords: Sequence[float] | None = None,
    mask: npt.ArrayLike | None = None,
    target_cfg: TargetConfig = TargetConfig(),
    class_cfg: MaskClassConfig = MaskClassConfig(),
    candidates: CandidateFn | None = None,
) -> tuple[list[Offset], list[AnchorClass] | None]:
    """The supervision the truth implies for the anchors at ``positions`` (and mask classes)."""
    pos = np.asarray(positions, dtype=np.int64).reshape(-1, 2)
    if len(pos) == 0:  # a deleted shape: nothing left to refine
        return [], ([] if kind == "mask" else None)
    if kind == "mask":
        if mask is None:
            raise ValueError("mask refinement needs the ground-truth mask")
        cands = candidates(pos) if candidates is not None else None
        result = classify_anchors(pos, mask, size, lattice, class_cfg, cands)
        return result.offsets, result.classes
    if coords is None:
        raise ValueError(f"{kind} refinement needs the true coordinates")
    return shape_targets(kind, pos, coords, size, lattice, target_cfg), None


def refine_chain(
    kind: ShapeKind,
    proposal: npt.ArrayLike,
    size: Size,
    lattice: OffsetLattice,
    turns: int = 1,
    *,
    coords: Sequence[float] | None = None,
    mask: npt.ArrayLike | None = None,
    target_cfg: TargetConfig = TargetConfig(),
    class_cfg: MaskClassConfig = MaskClassConfig(),
    candidates: CandidateFn | None = None,
) -> ShapeRefinement:
    """K refinement turns from a turn-1 proposal (grid anchors), each answering the previous geometry."""
    prop = np.asarray(proposal, dtype=np.int64).reshape(-1, 2)
    pos = lattice.from_anchors(prop)
    truth = None if coords is None else np.asarray(coords, dtype=np.float64).reshape(-1, 2)
    out: list[RefineTurn] = []
    for _ in range(turns):
        # Polyline vertices are matched to their own truth vertex; deletions drop both.
        flat = None if truth is None else truth.ravel().tolist()
        offsets, classes = expected_offsets(
            kind,
            pos,
            size,
            lattice,
            coords=flat,
            mask=mask,
            target_cfg=target_cfg,
            class_cfg=class_cfg,
            candidates=candidates,
        )
        moved, keep = lattice.apply(pos, offsets)
        out.append(RefineTurn(offsets, moved, classes))
        pos = moved
        if truth is not None and kind == "polyline":
            truth = truth[keep]
    return ShapeRefinement(kind, prop, out)


def make_refinement(
    kind: ShapeKind,
    size: Size,
    lattice: OffsetLattice,
    rng: np.random.Generator,
    turns: int = 1,
    *,
    coords: Sequence[float] | None = None,
    mask: npt.ArrayLike | None = None,
    mask_anchors: npt.ArrayLike | None = None,
    proposal_cfg: ProposalConfig = ProposalConfig(),
    target_cfg: TargetConfig = TargetConfig(),
    class_cfg: MaskClassConfig = MaskClassConfig(),
    candidates: CandidateFn | None = None,
) -> ShapeRefinement:
    """Simulated proposal + K turns for one shape (what ``export --task refine`` writes per region).

    Boxes/points/polylines need ``coords`` (pixels, ``Shape.coords`` layout); masks need ``mask`` (H×W bool)
    and ``mask_anchors`` (the solver's grid anchors).
    """
    if kind == "mask":
        if mask is None or mask_anchors is None:
            raise ValueError("a mask refinement needs the mask and its solver anchors")
        proposal = propose_mask(mask_anchors, mask, size, lattice, rng, proposal_cfg, class_cfg)
    else:
        if coords is None:
            raise ValueError(f"a {kind} refinement needs its coordinates")
        proposal = propose_shape(kind, coords, size, lattice.grid, rng, proposal_cfg)
    return refine_chain(
        kind,
        proposal,
        size,
        lattice,
        turns,
        coords=coords if kind != "mask" else None,
        mask=mask,
        target_cfg=target_cfg,
        class_cfg=class_cfg,
        candidates=candidates,
    )


def check_turn(
    kind: str,
    previous: npt.ArrayLike,
    offsets: Sequence[Offset],
    size: Size,
    lattice: OffsetLattice,
    *,
    coords: Sequence[float] | None = None,
    mask: npt.ArrayLike | None = None,
    target_cfg: TargetConfig = TargetConfig(),
    class_cfg: MaskClassConfig = MaskClassConfig(),
) -> tuple[IntArray, list[str]]:
    """Verify one turn: apply it (count checked) and compare each offset with the expected one.

    Returns the positions after the turn and a list of problems (empty = the turn is right). A count
    mismatch raises :class:`TurnMismatch`.
    """
    moved = apply_turn(previous, offsets, lattice)
    want, _ = expected_offsets(
        kind,
        previous,
        size,
        lattice,
        coords=coords,
        mask=mask,
        target_cfg=target_cfg,
        class_cfg=class_cfg,
    )
    problems = [
        f"anchor {k}: offset {_fmt(got)} but the truth implies {_fmt(exp)}"
        for k, (got, exp) in enumerate(zip(offsets, want, strict=True))
        if got != exp
    ]
    return moved, problems


def _fmt(off: Offset) -> str:
    return "DELETE" if off is None else f"OFF_{off[0]}_{off[1]}"


def corner_errors(
    positions: npt.ArrayLike, coords: Sequence[float], size: Size, lattice: OffsetLattice
) -> FloatArray:
    """|position − truth| in pixels per anchor and axis (k×2), for anchors matched to their truth in order."""
    px = lattice.to_pixels(np.asarray(positions, dtype=np.int64).reshape(-1, 2), size)
    return np.abs(px - np.asarray(coords, dtype=np.float64).reshape(-1, 2))


def within_bound(
    positions: npt.ArrayLike, coords: Sequence[float], size: Size, lattice: OffsetLattice
) -> bool:
    """Every anchor within the lattice's bound (half a step per axis, + 1e-9 px) of its true position."""
    err = corner_errors(positions, coords, size, lattice)
    bx, by = lattice.bound_pixels(size)
    return bool((err[:, 0] <= bx + 1e-9).all() and (err[:, 1] <= by + 1e-9).all())


def cell_union_mask(positions: npt.ArrayLike, size: Size, lattice: OffsetLattice) -> BoolArray:
    """H×W union of one grid cell centred on each anchor position (the cells-backend mask of an answer)."""
    w, h = size
    out = np.zeros((h, w), dtype=bool)
    px = lattice.to_pixels(np.asarray(positions, dtype=np.int64).reshape(-1, 2), size)
    cw, ch = w / lattice.grid, h / lattice.grid
    for x, y in px:
        # pixels whose centre lies in [pos − cell/2, pos + cell/2)
        c0, c1 = max(int(np.ceil(x - cw / 2 - 0.5)), 0), min(int(np.ceil(x + cw / 2 - 0.5)), w)
        r0, r1 = max(int(np.ceil(y - ch / 2 - 0.5)), 0), min(int(np.ceil(y + ch / 2 - 0.5)), h)
        out[r0:r1, c0:c1] = True
    return out
