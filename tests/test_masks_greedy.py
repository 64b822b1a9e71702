"""The greedy on hand-made candidate sets (expected anchors worked out by hand) and its properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gtok_cli.geometry.bits import pack_rows
from gtok_cli.masks.greedy import greedy_numpy


def row_mask(width: int, *spans: tuple[int, int], height: int = 1) -> np.ndarray:
    """A (height, width) mask set on the column spans [a, b) of every row."""
    m = np.zeros((height, width), dtype=bool)
    for a, b in spans:
        m[:, a:b] = True
    return m


def solve(cands: list[np.ndarray], gt: np.ndarray, **kw: object) -> tuple[tuple[int, ...], float]:
    res = greedy_numpy(pack_rows(np.stack(cands)), [gt], **kw)[0]  # type: ignore[arg-type]
    return res.indices, res.iou


W = 12
# Each row: candidates as column spans on a 1 x 12 image, ground truth span, tau, expected (sorted, best-gain)
# as (indices in selection order, IoU) — all worked out by hand in the comments.
CASES = [
    pytest.param(
        # two disjoint halves of the object, IoU 0.5 each (tie: index 0 first); a third outside it
        [[(0, 2)], [(2, 4)], [(4, 8)]],
        (0, 4),
        0.9,
        ((0, 1), 1.0),
        ((0, 1), 1.0),
        id="disjoint-pieces",
    ),
    pytest.param(
        # nested: [0,6) IoU 4/6, exact [0,4) IoU 1, inner [0,2) IoU 0.5 -> the exact one alone
        [[(0, 6)], [(0, 4)], [(0, 2)]],
        (0, 4),
        0.9,
        ((1,), 1.0),
        ((1,), 1.0),
        id="nested",
    ),
    pytest.param(
        # nothing touches the object: no anchors, IoU 0
        [[(0, 4)], [(4, 6)]],
        (8, 12),
        0.9,
        ((), 0.0),
        ((), 0.0),
        id="untouched",
    ),
    pytest.param(
        # equal IoU 0.5 for both; tau 0.5 needs one: the lower grid index wins
        [[(2, 4)], [(0, 2)]],
        (0, 4),
        0.5,
        ((0,), 0.5),
        ((0,), 0.5),
        id="tie-lowest-index",
    ),
    pytest.param(
        # sorted: [0,7) 0.7, then [5,12) raises to 10/12, then [7,10) adds nothing -> 0.8333 (never tau)
        # best-gain: [0,7) 0.7, then [7,10) gives 1.0 (beats 10/12)
        [[(0, 7)], [(5, 12)], [(7, 10)]],
        (0, 10),
        0.9,
        ((0, 1), 10 / 12),
        ((0, 2), 1.0),
        id="variants-differ",
    ),
    pytest.param(
        # subset of an already chosen candidate never gains: [0,5) is 0.8 and stays the best set
        [[(0, 5)], [(0, 2)], [(2, 4)]],
        (0, 4),
        0.9,
        ((0,), 0.8),
        ((0,), 0.8),
        id="never-reaches-tau",
    ),
]


@pytest.mark.parametrize(("spans", "gt_span", "tau", "want_sorted", "want_best"), CASES)
def test_greedy_hand_cases(spans, gt_span, tau, want_sorted, want_best) -> None:  # type: ignore[no-untyped-def]
    cands = [row_mask(W, *s) for s in spans]
    gt = row_mask(W, gt_span)
    for variant, want in (("sorted", want_sorted), ("best-gain", want_best)):
        idx, iou = solve(cands, gt, tau=tau, variant=variant)
        assert idx == want[0], variant
        assert iou == pytest.approx(want[1], abs=1e-12), variant


def test_max_tokens_caps_the_set() -> None:
    # four disjoint quarters of the object (0.25 each): the cap of 2 stops at IoU 0.5
    cands = [row_mask(8, (2 * k, 2 * k + 2)) for k in range(4)]
    for variant in ("sorted", "best-gain"):
        idx, iou = solve(cands, row_mask(8, (0, 8)), tau=0.9, variant=variant, max_tokens=2)
        assert idx == (0, 1)
        assert iou == 0.5


def test_empty_ground_truth_gets_nothing() -> None:
    res = greedy_numpy(pack_rows(np.ones((2, 3, 5), dtype=bool)), [np.zeros((3, 5), dtype=bool)])[0]
    assert res.indices == () and res.iou == 0.0 and res.gt_area == 0


def test_anchors_are_in_grid_index_order() -> None:
    from gtok_cli.masks.greedy import GreedyResult

    # selection order 5, 0, 3 on a 2x... grid n=3: k=0 -> (0,0), k=3 -> (0,1), k=5 -> (2,1)
    assert GreedyResult((5, 0, 3), (0.1, 0.2, 0.3), 1, 2, 1).anchors(3) == [[0, 0], [0, 1], [2, 1]]


def test_bad_parameters_are_refused() -> None:
    packed = pack_rows(np.ones((1, 2, 2), dtype=bool))
    with pytest.raises(ValueError):
        greedy_numpy(packed, [np.ones((2, 2), dtype=bool)], tau=0.0)
    with pytest.raises(ValueError):
        greedy_numpy(packed, [np.ones((2, 2), dtype=bool)], variant="fastest")


# -- properties ----------------------------------------------------------------------------------------------


@st.composite
def problems(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, float]:
    h = draw(st.integers(1, 6))
    w = draw(st.integers(1, 19))  # widths not multiple of 8 exercise the padding bits
    k = draw(st.integers(1, 7))
    bits = draw(st.lists(st.booleans(), min_size=(k + 1) * h * w, max_size=(k + 1) * h * w))
    arr = np.array(bits, dtype=bool).reshape(k + 1, h, w)
    tau = draw(st.sampled_from([0.3, 0.6, 0.9, 1.0]))
    return arr[:k], arr[k], tau


def iou_of(gt: np.ndarray, union: np.ndarray) -> float:
    u = int((gt | union).sum())
    return int((gt & union).sum()) / u if u else 0.0


@pytest.mark.parametrize("variant", ["sorted", "best-gain"])
@settings(max_examples=60, deadline=None)
@given(problem=problems())
def test_greedy_properties(variant: str, problem: tuple[np.ndarray, np.ndarray, float]) -> None:
    cands, gt, tau = problem
    res = greedy_numpy(pack_rows(cands), [gt], tau=tau, variant=variant)[0]
    union = np.zeros_like(gt)
    for k in res.indices:
        union |= cands[k]
    # the reported IoU is the IoU of the chosen anchors' union, recomputed independently
    assert res.iou == iou_of(gt, union)
    assert len(set(res.indices)) == len(res.indices)
    # IoU never decreases along the path (strictly increases, by construction) and ends at the reported IoU
    assert all(b > a for a, b in zip(res.path, res.path[1:], strict=False))
    assert res.path[-1:] == (res.iou,) or not res.indices
    # removing the last token lowers the IoU
    if res.indices:
        before = np.zeros_like(gt)
        for k in res.indices[:-1]:
            before |= cands[k]
        assert iou_of(gt, before) < res.iou
    # best-gain below tau stops only when no single further candidate raises the IoU
    if res.iou < tau and variant == "best-gain":
        for k in range(len(cands)):
            assert iou_of(gt, union | cands[k]) <= res.iou


@pytest.mark.sam
@pytest.mark.parametrize("variant", ["sorted", "best-gain"])
@settings(max_examples=40, deadline=None)
@given(problem=problems(), cap=st.sampled_from([None, 1, 2]))
def test_torch_greedy_matches_numpy(
    variant: str, problem: tuple[np.ndarray, np.ndarray, float], cap: int | None
) -> None:
    torch = pytest.importorskip("torch")
    from gtok_cli.masks.greedy_torch import greedy_torch

    cands, gt, tau = problem
    gts = np.stack([gt, ~gt, gt & np.roll(gt, 1, axis=1)])  # several objects at once, one batch
    want = greedy_numpy(pack_rows(cands), list(gts), tau=tau, variant=variant, max_tokens=cap)
    got = greedy_torch(
        torch.from_numpy(cands), torch.from_numpy(gts), tau=tau, variant=variant, max_tokens=cap
    )
    for w, g in zip(want, got, strict=True):
        assert (g.indices, g.intersection, g.union, g.gt_area) == (
            w.indices,
            w.intersection,
            w.union,
            w.gt_area,
        )
        assert g.path == pytest.approx(w.path)
