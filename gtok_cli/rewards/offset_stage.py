"""GETok's offset-stage rewards: how much one refinement turn improves the answer it refines.

Each function is ``(answer, meta, *, previous=…, **params) -> float``: ``answer`` is the completion (one
offset turn), ``previous`` the assistant turns before it (:mod:`gtok_cli.rewards.history`; without it the
answer may carry the proposal itself). The shapes alive before the turn are the proposal after the earlier
turns; the turn moves each anchor by ``(du, dv)·offset_step`` cells or deletes it. A completion whose turn
cannot be read or does not pair one-to-one with those shapes changes nothing it could be credited for: every
shape counts as lost (IoU 0 after, points gone). Grid scheme only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from gtok_cli.codecs import Shape
from gtok_cli.refine.replay import Replay
from gtok_cli.rewards.context import SchemeSpec, not_applicable
from gtok_cli.rewards.grid_stage import points_inside
from gtok_cli.rewards.history import before, completion_turn, read_history
from gtok_cli.rewards.reading import Reading, read_line
from gtok_cli.scoring import box_iou, mask_iou
from gtok_cli.scoring.positions import positions_mask

Previous = str | Sequence[str] | None


def _context(
    name: str, answer: str, meta: Any, scheme: SchemeSpec, strict: bool, previous: Previous, params: Any
) -> tuple[Reading, Replay, list[Shape | None] | None]:
    reading = read_line(name, answer, meta, scheme, strict, params)
    history = read_history(reading, previous, from_answer=True)
    if not history.proposal:
        raise not_applicable(name, reading.meta, "no grid answer to refine (pass previous=)")
    alive = before(reading, history)
    if alive.errors:
        raise not_applicable(name, reading.meta, f"the earlier turns do not replay: {alive.errors[0]}")
    return reading, alive, completion_turn(reading, alive.shapes, answer)


def _truth_mask(reading: Reading, region: int) -> Any:
    """Region ``region``'s truth mask (real, else its mask-token cells), or None."""
    if region >= len(reading.truth.regions):
        return None
    return reading.truth.regions[region].truth_mask(reading.truth.size)[0]


def point_refine_reward(
    answer: str,
    meta: Any,
    *,
    previous: Previous = None,
    scheme: SchemeSpec = None,
    strict: bool = False,
    **codec_params: Any,
) -> float:
    """mean over the anchors of the points alive before the turn of s ∈ {−1, 0, +1}; range −1–1.

    s = −1: moved from inside the truth to outside, or deleted while inside; s = +1: moved from outside to
    inside, stayed inside, or deleted while outside (the refinement targets delete anchors far from the truth,
    docs/refine.md); s = 0 otherwise (stayed outside). "Inside" is inside the truth as
    :func:`~gtok_cli.rewards.point_reward` counts a hit (a point region's mask, else its box). A turn that
    does not apply loses every point:
    s = −1 where it was inside, 0 where it was outside.
    """
    reading, alive, moved = _context(
        "point_refine_reward", answer, meta, scheme, strict, previous, codec_params
    )
    scores: list[int] = []
    for k, (_, shape) in enumerate(alive.shapes):
        if shape.kind != "point":
            continue
        was_in = bool(points_inside(reading, shape.coords[:2])[0])
        now = moved[k] if moved is not None else None
        if moved is None:  # the turn does not apply: the point is lost
            scores.append(-1 if was_in else 0)
        elif now is None:  # deleted
            scores.append(-1 if was_in else 1)
        else:
            scores.append(1 if points_inside(reading, now.coords[:2])[0] else (-1 if was_in else 0))
    if not scores:
        raise not_applicable("point_refine_reward", reading.meta, "the answer refined has no point")
    return float(np.mean(scores))


def box_refine_reward(
    answer: str,
    meta: Any,
    *,
    previous: Previous = None,
    scheme: SchemeSpec = None,
    strict: bool = False,
    **codec_params: Any,
) -> float:
    """IoU after − IoU before, averaged over the boxes alive before the turn; range −1–1.

    Each box's IoU with its truth region's box before the turn and after it (0 after when the turn deleted or
    dropped the box, or does not apply).
    """
    reading, alive, moved = _context(
        "box_refine_reward", answer, meta, scheme, strict, previous, codec_params
    )
    gains: list[float] = []
    for k, (region, shape) in enumerate(alive.shapes):
        if shape.kind != "box":
            continue
        truth = reading.truth.regions[region].bbox if region < len(reading.truth.regions) else None
        if truth is None:
            continue
        was = float(box_iou(shape.coords, truth)[0])
        now = moved[k] if moved is not None else None
        gains.append((float(box_iou(now.coords, truth)[0]) if now is not None else 0.0) - was)
    if not gains:
        raise not_applicable(
            "box_refine_reward", reading.meta, "the answer refined has no box with a truth box"
        )
    return float(np.mean(gains))


def mask_refine_reward(
    answer: str,
    meta: Any,
    *,
    previous: Previous = None,
    scheme: SchemeSpec = None,
    strict: bool = False,
    **codec_params: Any,
) -> float:
    """mask IoU after − mask IoU before, averaged over the masks alive before the turn; range −1–1.

    A mask's anchors stand for cell-sized squares centred at their positions (moved anchors sit between cells:
    :func:`gtok_cli.scoring.positions_mask`; an unmoved anchor is exactly its cell, the ``cells`` backend);
    the truth mask is the region's real mask, else its mask-token cells. 0 after when the turn deleted every
    anchor of the mask or does not apply.
    """
    reading, alive, moved = _context(
        "mask_refine_reward", answer, meta, scheme, strict, previous, codec_params
    )
    grid = int(getattr(reading.codec, "grid", 0))
    size = reading.truth.size
    gains: list[float] = []
    for k, (region, shape) in enumerate(alive.shapes):
        if shape.kind != "mask":
            continue
        truth = _truth_mask(reading, region)
        if truth is None:
            continue
        was = mask_iou(positions_mask(shape.points(), grid, size), truth)
        now = moved[k] if moved is not None else None
        gains.append(
            (mask_iou(positions_mask(now.points(), grid, size), truth) if now is not None else 0.0) - was
        )
    if not gains:
        raise not_applicable(
            "mask_refine_reward", reading.meta, "the answer refined has no mask with a truth mask"
        )
    return float(np.mean(gains))


__all__ = ["box_refine_reward", "mask_refine_reward", "point_refine_reward"]
