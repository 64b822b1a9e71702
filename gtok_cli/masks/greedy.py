"""The GETok greedy: the fewest grid points whose candidate masks' union reaches IoU >= tau with a mask.

Two variants (both consider only candidates that touch the ground truth; one that does not can never raise
the IoU):

- ``sorted`` (the paper's): order candidates once by their own IoU with the ground truth (descending, ties by
  grid index ``k = j * n + i`` ascending); walk the order, keep a candidate when it raises the union's IoU;
  stop at IoU >= tau, at ``max_tokens``, or when the order runs out (its next candidate would have IoU 0).
- ``best-gain``: repeatedly add the candidate whose addition gives the highest union IoU (ties: lowest grid
  index) while that is a strict gain; stop at tau or ``max_tokens``.

IoU is computed at full image resolution from exact pixel counts; "raises" is decided exactly with integer
cross-multiplication, and equal IoUs compare equal (float64 division of counts below ~1e7 pixels keeps
distinct fractions apart), so this numpy path and the torch path (``greedy_torch``) choose the same anchors.
Objects that never reach tau keep their best set with its honest IoU.

This module is the CPU path: masks bit-packed along rows, each object solved in the window (rows × byte
columns) that holds it and every candidate touching it, popcounts over uint64 words.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from gtok_cli.geometry.bits import as_words, pack_rows, popcount
from gtok_cli.geometry.candidates import CandidateStats, anchor_of_index, candidate_stats

Variant = Literal["sorted", "best-gain"]
VARIANTS: tuple[str, ...] = ("sorted", "best-gain")


@dataclass(frozen=True)
class GreedyResult:
    """One object's solution."""

    indices: tuple[int, ...]
    """chosen grid indices ``k = j * n + i`` in the order the greedy added them"""
    path: tuple[float, ...]
    """union IoU after each addition (non-decreasing; strictly increasing by construction)"""
    intersection: int
    union: int
    gt_area: int

    @property
    def iou(self) -> float:
        return self.intersection / self.union if self.union else 0.0

    def anchors(self, grid: int) -> list[list[int]]:
        """Anchors ``[[i, j], …]`` in the records' order: ascending grid index (row-major: j, then i)."""
        return [list(anchor_of_index(k, grid)) for k in sorted(self.indices)]


def _check(tau: float, variant: str, max_tokens: int | None) -> None:
    if not 0.0 < tau <= 1.0:
        raise ValueError(f"tau must be in (0, 1], got {tau}")
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    if max_tokens is not None and max_tokens < 1:
        raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")


class _PackedImage:
    """Per-image facts about the packed candidates (areas, bboxes), shared by every object."""

    def __init__(self, packed: np.ndarray, stats: CandidateStats | None = None) -> None:
        self.packed = packed
        st = stats if stats is not None else candidate_stats(packed)
        self.areas, self.y0, self.y1, self.b0, self.b1 = st.areas, st.y0, st.y1, st.b0, st.b1


def _bbox_packed(g: np.ndarray) -> tuple[int, int, int, int]:
    rows = np.flatnonzero(np.bitwise_or.reduce(g, axis=1))
    cols = np.flatnonzero(np.bitwise_or.reduce(g, axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def greedy_numpy(
    candidates_packed: np.ndarray,
    gt_masks: list[np.ndarray] | np.ndarray,
    *,
    tau: float = 0.9,
    variant: str = "sorted",
    max_tokens: int | None = None,
    stats: CandidateStats | None = None,
) -> list[GreedyResult]:
    """Solve every ground-truth mask (bool ``(H, W)`` each) of one image against its packed candidates."""
    _check(tau, variant, max_tokens)
    image = _PackedImage(candidates_packed, stats)
    return [
        _solve_one(image, pack_rows(np.asarray(gt, dtype=bool)), tau, variant, max_tokens) for gt in gt_masks
    ]


@dataclass
class _Window:
    """One object's working set: the relevant candidates cut to a common window, as uint64 word rows."""

    on_gt: np.ndarray  # (m, L) candidate bits inside the ground truth
    off_gt: np.ndarray  # (m, L) candidate bits outside it
    w0: np.ndarray  # (m,) first word holding any bit of the candidate (its bbox rows)
    w1: np.ndarray  # (m,) one past the last such word
    box: np.ndarray  # (m, 4) bbox [y0, y1, b0, b1] in window rows / byte columns (for overlap tests)


def _solve_one(
    image: _PackedImage, g: np.ndarray, tau: float, variant: str, max_tokens: int | None
) -> GreedyResult:
    gt_area = int(popcount(g.reshape(1, -1))[0])
    if gt_area == 0:
        return GreedyResult((), (), 0, 0, 0)
    gy0, gy1, gb0, gb1 = _bbox_packed(g)
    near = np.flatnonzero((image.y0 < gy1) & (image.y1 > gy0) & (image.b0 < gb1) & (image.b1 > gb0))
    inter_near = popcount(as_words(image.packed[near, gy0:gy1, gb0:gb1] & g[None, gy0:gy1, gb0:gb1]))
    touching = inter_near > 0
    rel = near[touching]  # ascending grid index
    if rel.size == 0:
        return GreedyResult((), (), 0, gt_area, gt_area)
    inter_rel = inter_near[touching]
    y0 = min(gy0, int(image.y0[rel].min()))
    y1 = max(gy1, int(image.y1[rel].max()))
    b0 = min(gb0, int(image.b0[rel].min()))
    b1 = max(gb1, int(image.b1[rel].max()))
    wb = b1 - b0
    sub = as_words(image.packed[rel, y0:y1, b0:b1])
    gw = as_words(g[None, y0:y1, b0:b1])[0]
    win = _Window(
        on_gt=sub & gw,
        off_gt=sub & ~gw,
        w0=((image.y0[rel] - y0) * wb) // 8,
        w1=-((-(image.y1[rel] - y0) * wb) // 8),
        box=np.stack(
            [image.y0[rel] - y0, image.y1[rel] - y0, image.b0[rel] - b0, image.b1[rel] - b0], axis=1
        ),
    )
    if variant == "sorted":
        iou_rel = inter_rel / (image.areas[rel] + gt_area - inter_rel)
        order = np.lexsort((np.arange(rel.size), -iou_rel))
        chosen, path, i_count, u_count = _sorted_walk(win, order, gt_area, tau, max_tokens)
    else:
        chosen, path, i_count, u_count = _best_gain(win, gt_area, tau, max_tokens)
    return GreedyResult(tuple(int(rel[p]) for p in chosen), tuple(path), i_count, u_count, gt_area)


def _reached(i_count: int, u_count: int, tau: float) -> bool:
    return i_count / u_count >= tau


def _sorted_walk(
    win: _Window, order: np.ndarray, gt_area: int, tau: float, max_tokens: int | None
) -> tuple[list[int], list[float], int, int]:
    union = np.zeros(win.on_gt.shape[1], dtype=np.uint64)
    i_count, u_count = 0, gt_area
    chosen: list[int] = []
    path: list[float] = []
    for p in order.tolist():
        if _reached(i_count, u_count, tau) or (max_tokens is not None and len(chosen) >= max_tokens):
            break
        s, e = int(win.w0[p]), int(win.w1[p])  # only the candidate's own rows can change anything
        free = ~union[s:e]
        a = int(popcount(win.on_gt[p, s:e] & free))
        b = int(popcount(win.off_gt[p, s:e] & free))
        if (i_count + a) * u_count > i_count * (u_count + b):  # strictly higher IoU, exact
            union[s:e] |= win.on_gt[p, s:e] | win.off_gt[p, s:e]
            i_count, u_count = i_count + a, u_count + b
            chosen.append(p)
            path.append(i_count / u_count)
    return chosen, path, i_count, u_count


def _best_gain(
    win: _Window, gt_area: int, tau: float, max_tokens: int | None
) -> tuple[list[int], list[float], int, int]:
    """Each candidate's gain counts (a: new ground-truth pixels, b: new outside pixels) are kept up to date
    incrementally: adding p changes them only for candidates whose bbox meets p's, and only in p's rows."""
    union = np.zeros(win.on_gt.shape[1], dtype=np.uint64)
    i_count, u_count = 0, gt_area
    chosen: list[int] = []
    path: list[float] = []
    a = popcount(win.on_gt)
    b = popcount(win.off_gt)
    alive = a > 0  # a only shrinks, so a candidate with a == 0 never gains again
    box = win.box
    while not _reached(i_count, u_count, tau):
        if max_tokens is not None and len(chosen) >= max_tokens:
            break
        idx = np.flatnonzero(alive)
        if idx.size == 0:
            break
        best = int(np.argmax((i_count + a[idx]) / (u_count + b[idx])))  # first maximum = lowest grid index
        p = int(idx[best])
        a_p, b_p = int(a[p]), int(b[p])
        if (i_count + a_p) * u_count <= i_count * (u_count + b_p):
            break  # no candidate raises the IoU
        s, e = int(win.w0[p]), int(win.w1[p])
        new_on = win.on_gt[p, s:e] & ~union[s:e]
        new_off = win.off_gt[p, s:e] & ~union[s:e]
        union[s:e] |= new_on | new_off
        i_count, u_count = i_count + a_p, u_count + b_p
        chosen.append(p)
        path.append(i_count / u_count)
        meet = idx[
            (box[idx, 0] < box[p, 1])
            & (box[idx, 1] > box[p, 0])
            & (box[idx, 2] < box[p, 3])
            & (box[idx, 3] > box[p, 2])
        ]
        a[meet] -= popcount(win.on_gt[meet, s:e] & new_on)
        b[meet] -= popcount(win.off_gt[meet, s:e] & new_off)
        alive[meet] = a[meet] > 0
    return chosen, path, i_count, u_count
