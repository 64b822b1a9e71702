"""GETok's rewards (gtok_cli.rewards) against numbers computed by hand.

Image 640×480 on the 32×32 grid: a cell is 20×15 px and anchor (i, j) decodes to its centre
``(20·i + 10, 15·j + 7.5)``. ``TRUTH`` = [10, 7.5, 310, 232.5] is the box
``<box><grid_0_0><grid_15_15></box>`` decodes to exactly, so that answer is perfect (reward 2).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import orjson
import pytest

from gtok_cli.codecs import get_codec
from gtok_cli.errors import UsageError
from gtok_cli.rewards import (
    REWARD_NAMES,
    NotApplicable,
    box_refine_reward,
    box_reward,
    format_reward,
    get_reward,
    mask_iou_reward,
    mask_refine_reward,
    non_repetition_reward,
    point_refine_reward,
    point_reward,
)

SIZE = [640, 480]
TRUTH = [10.0, 7.5, 310.0, 232.5]
PERFECT = "<box><grid_0_0><grid_15_15></box>"


def meta(*regions: dict[str, Any], size: list[int] = SIZE) -> dict[str, Any]:
    return {"record_id": "r1", "image_size": size, "regions": list(regions)}


def box_region(bbox: list[float] = TRUTH) -> dict[str, Any]:
    return {"kind": "box", "bbox": bbox, "mask_tokens": None, "label": None, "phrase": "the dog"}


def mask_region(anchors: list[list[int]], **extra: Any) -> dict[str, Any]:
    tokens = {"grid": 32, "anchors": anchors, "iou": 1.0, "backend": "cells", "tau": 0.9, "variant": "sorted"}
    return {"kind": "mask", "bbox": [0.0, 0.0, 40.0, 15.0], "mask_tokens": tokens, **extra}


def point_region(bbox: list[float], anchors: list[list[int]] | None = None) -> dict[str, Any]:
    tokens = None if anchors is None else {"grid": 32, "anchors": anchors}
    return {"kind": "point", "bbox": bbox, "mask_tokens": tokens, "point": [30.0, 22.5]}


def points(*cells: tuple[int, int]) -> str:
    return ", ".join(f"<point><grid_{i}_{j}></point>" for i, j in cells)


BOX = meta(box_region())

# ---- format ------------------------------------------------------------------------------------------------
FORMAT_CASES = [
    ("perfect", PERFECT, 1.0),
    ("off by one cell: still well formed", "<box><grid_1_0><grid_16_15></box>", 1.0),
    ("a point for a box question", "<point><grid_3_3></point>", 0.0),
    ("corners in the wrong order", "<box><grid_15_15><grid_0_0></box>", 0.0),
    ("one corner", "<box><grid_0_0></box>", 0.0),
    ("garbage", "the dog is on the left", 0.0),
    ("empty", "", 0.0),
    ("out of range cell", "<box><grid_0_0><grid_32_15></box>", 0.0),
    ("fenced: strict reads the fence as text around a good span", f"```\n{PERFECT}\n```", 1.0),
    ("unclosed", "<box><grid_0_0><grid_15_15>", 0.0),
    (
        "an offset turn in a grid-stage answer",
        PERFECT + " <offset><box><OFF_0_0><OFF_0_0></box></offset>",
        0.0,
    ),
]


@pytest.mark.parametrize(("case", "answer", "want"), FORMAT_CASES, ids=[c[0] for c in FORMAT_CASES])
def test_format_reward_grid_stage(case: str, answer: str, want: float) -> None:
    assert format_reward(answer, BOX) == want


def test_format_reward_other_scheme_and_kinds() -> None:
    assert format_reward('[{"bbox_2d": [100, 100, 500, 500], "label": "dog"}]', BOX, scheme="qwen3-vl") == 1.0
    # python-style quotes are a repair the lenient reader makes; format is strict
    assert format_reward("[{'bbox_2d': [100, 100, 500, 500]}]", BOX, scheme="qwen3-vl") == 0.0
    assert format_reward(points((1, 1)), meta(point_region([0, 0, 100, 100]))) == 1.0


OFFSET_FORMAT_CASES = [
    ("one offset per corner", "<offset><box><OFF_1_0><OFF_0_-1></box></offset>", 1.0),
    ("deletes count as offsets", "<offset><box><DELETE><DELETE></box></offset>", 1.0),
    ("one offset for two corners", "<offset><box><OFF_1_0></box></offset>", 0.0),
    ("wrapped as a point", "<offset><point><OFF_1_0></point></offset>", 0.0),
    ("an answer instead of a turn", PERFECT, 0.0),
    ("a turn plus an answer", PERFECT + " <offset><box><OFF_0_0><OFF_0_0></box></offset>", 0.0),
    ("not an offset token", "<offset><box><OFF_2_0><OFF_0_0></box></offset>", 0.0),
    ("garbage", "done", 0.0),
]


@pytest.mark.parametrize(
    ("case", "answer", "want"), OFFSET_FORMAT_CASES, ids=[c[0] for c in OFFSET_FORMAT_CASES]
)
def test_format_reward_offset_stage(case: str, answer: str, want: float) -> None:
    assert format_reward(answer, BOX, previous=["<box><grid_1_1><grid_16_16></box>"]) == want


# ---- non-repetition ----------------------------------------------------------------------------------------
REPEAT_CASES = [
    ("one box", PERFECT, 1.0),
    ("a one-cell box is no repetition", "<box><grid_5_5><grid_5_5></box>", 1.0),
    ("mask anchor repeated", "<seg><grid_1_1><grid_2_1><grid_1_1></seg>", 2 / 3),
    ("point repeated", points((3, 3), (3, 3), (4, 3)), 2 / 3),
    ("same box twice", f"{PERFECT}, {PERFECT}", 1 / 2),
    ("every anchor the same", "<seg><grid_1_1><grid_1_1><grid_1_1><grid_1_1></seg>", 1 / 4),
    ("garbage: no anchor", "no", 0.0),
    ("empty", "", 0.0),
]


@pytest.mark.parametrize(("case", "answer", "want"), REPEAT_CASES, ids=[c[0] for c in REPEAT_CASES])
def test_non_repetition_reward(case: str, answer: str, want: float) -> None:
    assert non_repetition_reward(answer, BOX) == pytest.approx(want, abs=1e-12)


# ---- box ---------------------------------------------------------------------------------------------------
# off by one cell to the right: [30, 7.5, 330, 232.5]; intersection 280×225 = 63000, union 2·67500 − 63000
# = 72000, IoU 0.875; L1 = (20/640 + 0 + 20/640 + 0)/2 = 1/32
# the far corner cell twice: [630, 472.5, 630, 472.5], IoU 0; L1 = (620/640 + 465/480 + 320/640 + 240/480)/2
# = 1.47, capped at 1: reward 0
BOX_CASES = [
    ("perfect", PERFECT, 2.0),
    ("off by one cell", "<box><grid_1_0><grid_16_15></box>", 0.875 + (1 - 1 / 32)),
    ("far corner", "<box><grid_31_31><grid_31_31></box>", 0.0),
    ("corners in the wrong order", "<box><grid_15_15><grid_0_0></box>", 0.0),
    ("garbage", "it is a dog", 0.0),
    ("empty", "", 0.0),
    ("first box counts", f"{PERFECT}, <box><grid_1_0><grid_16_15></box>", 2.0),
    ("fenced and cut off after the box (lenient)", f"```\n{PERFECT}, <box><grid_3_3>", 2.0),
]


@pytest.mark.parametrize(("case", "answer", "want"), BOX_CASES, ids=[c[0] for c in BOX_CASES])
def test_box_reward(case: str, answer: str, want: float) -> None:
    assert box_reward(answer, BOX) == pytest.approx(want, abs=1e-12)


def test_box_reward_quantised_truth() -> None:
    # truth [0, 0, 320, 240]: the answer decodes to cell centres [10, 7.5, 310, 232.5]; IoU 67500/76800,
    # L1 = (10/640 + 7.5/480 + 10/640 + 7.5/480)/2 = 1/32
    got = box_reward(PERFECT, meta(box_region([0.0, 0.0, 320.0, 240.0])))
    assert got == pytest.approx(67500 / 76800 + 1 - 1 / 32, abs=1e-12)


def test_box_reward_strict_scores_any_unreadable_span_as_a_miss() -> None:
    cut = f"{PERFECT}, <box><grid_3_3>"
    assert box_reward(cut, BOX) == 2.0
    assert box_reward(cut, BOX, strict=True) == 0.0


def test_box_reward_pairs_regions_in_order() -> None:
    two = meta(box_region(), box_region([30.0, 7.5, 330.0, 232.5]))
    assert box_reward(PERFECT, two) == pytest.approx(2.0 / 2)  # the second region has no box: 0
    assert box_reward(f"{PERFECT}, <box><grid_1_0><grid_16_15></box>", two) == 2.0


def test_box_reward_other_schemes() -> None:
    # qwen3-vl: q = round_half_even(v·1000) → q/1000; [64, 48, 320, 240] is v = 0.1, 0.1, 0.5, 0.5
    truth = meta(box_region([64.0, 48.0, 320.0, 240.0]))
    qwen = '[{"bbox_2d": [100, 100, 500, 500], "label": "dog"}]'
    assert box_reward(qwen, truth, scheme="qwen3-vl") == 2.0
    assert box_reward(qwen, truth, scheme={"scheme": "qwen3-vl", "params": {}}) == 2.0
    assert box_reward(qwen, truth, scheme=get_codec("qwen3-vl")) == 2.0
    assert box_reward(qwen, {**truth, "scheme": "qwen3-vl"}) == 2.0
    assert box_reward(qwen, truth) == 0.0  # read as grid (the default): no grid box in it
    # qwen3-vl off by 50 on x2 only: [64, 48, 352, 240], IoU 256/288; L1 = (32/640)/2
    off = '[{"bbox_2d": [100, 100, 550, 500]}]'
    assert box_reward(off, truth, scheme="qwen3-vl") == pytest.approx(256 / 288 + 1 - 0.05 / 2, abs=1e-12)


def test_box_reward_grid_parameter() -> None:
    # grid 16: a cell is 40×30; <grid_0_0><grid_7_7> decodes to [20, 15, 300, 225]
    truth = meta(box_region([20.0, 15.0, 300.0, 225.0]))
    assert box_reward("<box><grid_0_0><grid_7_7></box>", truth, grid=16) == 2.0
    with pytest.raises(UsageError, match="unknown parameter"):
        box_reward(PERFECT, BOX, gird=16)


def test_meta_as_json_text_and_as_datasets_gives_it() -> None:
    assert box_reward(PERFECT, orjson.dumps(BOX).decode()) == 2.0
    assert box_reward(PERFECT, orjson.dumps(BOX)) == 2.0
    # datasets fills keys some rows lack with None
    padded = meta({**box_region(), "point": None, "polyline": None, "mask": None, "point_from": None})
    assert box_reward(PERFECT, padded) == 2.0


def test_box_reward_does_not_apply_without_a_box_region() -> None:
    with pytest.raises(NotApplicable):
        box_reward(points((1, 1)), meta(point_region([0, 0, 100, 100])))


# ---- mask --------------------------------------------------------------------------------------------------
MASK = meta(mask_region([[0, 0], [1, 0]]))  # truth: the first two cells, x 0..40, y 0..15
MASK_CASES = [
    ("perfect", "<seg><grid_0_0><grid_1_0></seg>", 1.0),
    ("perfect, repeated anchor", "<seg><grid_0_0><grid_1_0><grid_0_0></seg>", 1.0),
    ("half", "<seg><grid_0_0></seg>", 0.5),
    ("off by one cell", "<seg><grid_1_0><grid_2_0></seg>", 1 / 3),
    ("elsewhere", "<seg><grid_9_9></seg>", 0.0),
    ("a box is not a mask", PERFECT, 0.0),
    ("garbage", "mask", 0.0),
    ("empty", "", 0.0),
]


@pytest.mark.parametrize(("case", "answer", "want"), MASK_CASES, ids=[c[0] for c in MASK_CASES])
def test_mask_iou_reward(case: str, answer: str, want: float) -> None:
    assert mask_iou_reward(answer, MASK) == pytest.approx(want, abs=1e-12)


def test_mask_iou_reward_against_the_real_mask() -> None:
    from pycocotools import mask as mask_utils

    truth = np.zeros((480, 640), dtype=np.uint8)
    truth[0:15, 0:30] = 1  # 450 px: cell (0, 0) and half of cell (1, 0)
    rle = mask_utils.encode(np.asfortranarray(truth))
    rle["counts"] = rle["counts"].decode()
    m = meta(mask_region([[0, 0], [1, 0]], mask=rle))
    assert mask_iou_reward("<seg><grid_0_0></seg>", m) == pytest.approx(300 / 450)
    assert mask_iou_reward("<seg><grid_0_0><grid_1_0></seg>", m) == pytest.approx(450 / 600)


def test_mask_iou_reward_with_candidates() -> None:
    from gtok_cli.geometry.bits import pack_rows
    from gtok_cli.geometry.candidates import Candidates

    # 40×30 image, grid 4: a cell is 10×7.5 px; truth cells (0, 0), (1, 0) = x 0..20, pixel rows 0..6: 140 px.
    # Stand-in SAM candidates: every grid point's mask is pixel rows 0..6 across the image (280 px).
    dense = np.zeros((16, 30, 40), dtype=bool)
    dense[:, 0:7, :] = True
    cands = Candidates(4, 40, 30, packed=pack_rows(dense))
    small = meta({**mask_region([[0, 0], [1, 0]]), "mask_tokens": {"grid": 4, "anchors": [[0, 0], [1, 0]]}},
                 size=[40, 30])  # fmt: skip
    assert mask_iou_reward("<seg><grid_0_0></seg>", small, grid=4) == pytest.approx(70 / 140)
    assert mask_iou_reward("<seg><grid_0_0></seg>", small, grid=4, candidates=cands) == pytest.approx(
        140 / 280
    )


def test_mask_iou_reward_does_not_apply_to_a_box_line() -> None:
    with pytest.raises(NotApplicable):
        mask_iou_reward("<seg><grid_0_0></seg>", BOX)


# ---- points ------------------------------------------------------------------------------------------------
def point_value(hits: int, m: int) -> float:
    return hits / m * (1 - math.exp(-m / 5)) - 0.02 * m


POINTS = meta(point_region([0.0, 0.0, 100.0, 100.0]))  # by box: cells i ≤ 4, j ≤ 6 hit
POINT_CASES = [
    ("one hit", points((1, 1)), 0.18126924692201818 - 0.02),
    ("five hits", points((0, 0), (1, 1), (2, 2), (3, 3), (4, 4)), 0.6321205588285577 - 0.1),
    ("one hit one miss", points((1, 1), (9, 9)), point_value(1, 2)),
    ("miss", points((9, 9)), -0.02),
    ("repeated anchors count", points((1, 1), (1, 1), (1, 1)), point_value(3, 3)),
    ("twenty hits", points(*[(i % 5, i // 5) for i in range(20)]), 1 - math.exp(-4) - 0.4),
    ("too many points: fifty hits", points(*[(i % 5, i % 7) for i in range(50)]), 1 - math.exp(-10) - 1.0),
    ("a box is not a point", PERFECT, 0.0),
    ("garbage", "there", 0.0),
    ("empty", "", 0.0),
]


@pytest.mark.parametrize(("case", "answer", "want"), POINT_CASES, ids=[c[0] for c in POINT_CASES])
def test_point_reward(case: str, answer: str, want: float) -> None:
    assert point_reward(answer, POINTS) == pytest.approx(want, abs=1e-12)


def test_point_reward_peaks_at_twelve_hits() -> None:
    # d/dm (1 − e^(−m/5) − 0.02·m) = 0 at m = 5·ln 10 ≈ 11.5: f(11) = 0.669197, f(12) = 0.669282,
    # f(13) = 0.6675
    got = {m: point_reward(points(*[(m_ % 5, m_ // 5) for m_ in range(m)]), POINTS) for m in (11, 12, 13)}
    assert got[12] == pytest.approx(1 - math.exp(-2.4) - 0.24, abs=1e-12)
    assert got[12] > got[11] > got[13]


def test_point_reward_truth_mask_beats_the_box() -> None:
    # truth mask: cell (1, 1) only (x 20..40, y 15..30); (2, 1) is in the box but not in the mask
    m = meta(point_region([0.0, 0.0, 100.0, 100.0], anchors=[[1, 1]]))
    assert point_reward(points((1, 1)), m) == pytest.approx(point_value(1, 1))
    assert point_reward(points((2, 1)), m) == pytest.approx(-0.02)


# ---- offset stage: boxes -----------------------------------------------------------------------------------
# proposal <grid_1_1><grid_16_16> = [30, 22.5, 330, 247.5]; one offset moves half a cell (10 px, 7.5 px)
PROPOSAL = "<box><grid_1_1><grid_16_16></box>"
BEFORE = (280 * 210) / (2 * 67500 - 280 * 210)  # IoU of the proposal with TRUTH
AFTER_UP_LEFT = (290 * 217.5) / (2 * 67500 - 290 * 217.5)  # [20, 15, 320, 240]


def turn(kind: str, *offsets: str) -> str:
    tag = {"box": "box", "point": "point", "mask": "seg"}[kind]
    return f"<offset><{tag}>{''.join(offsets)}</{tag}></offset>"


BOX_REFINE_CASES = [
    ("both corners up-left", turn("box", "<OFF_-1_-1>", "<OFF_-1_-1>"), AFTER_UP_LEFT - BEFORE),
    ("no move", turn("box", "<OFF_0_0>", "<OFF_0_0>"), 0.0),
    ("wrong way", turn("box", "<OFF_1_1>", "<OFF_1_1>"), (270 * 202.5) / (2 * 67500 - 270 * 202.5) - BEFORE),
    ("deleted", turn("box", "<DELETE>", "<DELETE>"), -BEFORE),
    ("one corner deleted drops the box", turn("box", "<DELETE>", "<OFF_0_0>"), -BEFORE),
    ("one offset for two corners", turn("box", "<OFF_-1_-1>"), -BEFORE),
    ("garbage", "better now", -BEFORE),
    ("empty", "", -BEFORE),
]


@pytest.mark.parametrize(("case", "answer", "want"), BOX_REFINE_CASES, ids=[c[0] for c in BOX_REFINE_CASES])
def test_box_refine_reward(case: str, answer: str, want: float) -> None:
    assert box_refine_reward(answer, BOX, previous=[PROPOSAL]) == pytest.approx(want, abs=1e-12)


def test_box_refine_reward_history_forms() -> None:
    step = turn("box", "<OFF_-1_-1>", "<OFF_-1_-1>")
    want = AFTER_UP_LEFT - BEFORE
    assert box_refine_reward(step, BOX, previous=PROPOSAL) == pytest.approx(want)
    # the proposal and the turn in one answer
    assert box_refine_reward(f"{PROPOSAL} {step}", BOX) == pytest.approx(want)
    # a chat-templated prompt string holding the proposal
    prompt = f"<|user|>Where is the dog?<|assistant|>{PROPOSAL}<|user|>Correct your answer.<|assistant|>"
    assert box_refine_reward(step, BOX, previous=prompt) == pytest.approx(want)
    # a second turn: before it the box is [20, 15, 320, 240]; up-left again: [10, 7.5, 310, 232.5] = TRUTH
    assert box_refine_reward(step, BOX, previous=[PROPOSAL, step]) == pytest.approx(1.0 - AFTER_UP_LEFT)
    with pytest.raises(NotApplicable):
        box_refine_reward(step, BOX)  # nothing to refine


# ---- offset stage: points ----------------------------------------------------------------------------------
# truth box [0, 0, 105, 100]; x centres 10 + 20·i, y centres 7.5 + 15·j, one offset = (10, 7.5) px
POINT_TRUTH = meta(point_region([0.0, 0.0, 105.0, 100.0]))
FIVE = points((1, 1), (5, 1), (1, 6), (7, 1), (8, 1))  # in, out, in, out, out
FIVE_TURN = ", ".join(
    turn("point", o) for o in ("<OFF_0_0>", "<OFF_-1_0>", "<OFF_0_1>", "<OFF_1_0>", "<DELETE>")
)
POINT_REFINE_CASES = [
    # stays in +1, out→in +1, in→out −1, stays out 0, deleted while out +1
    ("mixed", FIVE_TURN, (1 + 1 - 1 + 0 + 1) / 5),
    ("nothing moves", ", ".join(turn("point", "<OFF_0_0>") for _ in range(5)), (1 + 0 + 1 + 0 + 0) / 5),
    ("every point deleted", ", ".join(turn("point", "<DELETE>") for _ in range(5)), (-1 + 1 - 1 + 1 + 1) / 5),
    ("four offsets for five points", ", ".join(turn("point", "<OFF_0_0>") for _ in range(4)), -2 / 5),
    ("garbage", "the points", -2 / 5),
    ("empty", "", -2 / 5),
]


@pytest.mark.parametrize(
    ("case", "answer", "want"), POINT_REFINE_CASES, ids=[c[0] for c in POINT_REFINE_CASES]
)
def test_point_refine_reward(case: str, answer: str, want: float) -> None:
    assert point_refine_reward(answer, POINT_TRUTH, previous=[FIVE]) == pytest.approx(want, abs=1e-12)


# ---- offset stage: masks -----------------------------------------------------------------------------------
# truth: cells (0, 0) and (1, 0) = x 0..40, y 0..15 (600 px); proposal cells (1, 0), (2, 0): IoU 300/900
MASK_REFINE_CASES = [
    # both half a cell left: squares x 10..30 and 30..50 → x 10..50: 450 / 750
    ("both left", turn("mask", "<OFF_-1_0>", "<OFF_-1_0>"), 450 / 750 - 1 / 3),
    ("first left, second deleted", turn("mask", "<OFF_-1_0>", "<DELETE>"), 300 / 600 - 1 / 3),
    ("no move", turn("mask", "<OFF_0_0>", "<OFF_0_0>"), 0.0),
    ("all deleted", turn("mask", "<DELETE>", "<DELETE>"), -1 / 3),
    ("garbage", "mask", -1 / 3),
]


@pytest.mark.parametrize(("case", "answer", "want"), MASK_REFINE_CASES, ids=[c[0] for c in MASK_REFINE_CASES])
def test_mask_refine_reward(case: str, answer: str, want: float) -> None:
    got = mask_refine_reward(answer, MASK, previous=["<seg><grid_1_0><grid_2_0></seg>"])
    assert got == pytest.approx(want, abs=1e-12)


def test_registry_names() -> None:
    assert set(REWARD_NAMES) == {
        "format_reward", "non_repetition_reward", "box_reward", "mask_iou_reward", "point_reward",
        "point_refine_reward", "box_refine_reward", "mask_refine_reward", "count_reward", "relation_reward",
    }  # fmt: skip
    assert get_reward("box") is box_reward
    with pytest.raises(UsageError, match="unknown reward"):
        get_reward("iou")


@pytest.mark.parametrize("strict", [False, True])
def test_box_reward_batch_equals_the_plain_function(strict: bool) -> None:
    from gtok_cli.rewards.grid_stage import box_reward_batch

    rng = np.random.default_rng(7)
    answers, metas = [], []
    for k in range(300):
        x1, y1 = rng.uniform(0, 600), rng.uniform(0, 440)
        truth = [x1, y1, x1 + rng.uniform(1, 640 - x1), y1 + rng.uniform(1, 480 - y1)]
        (i1, i2), (j1, j2) = sorted(rng.integers(0, 32, 2)), sorted(rng.integers(0, 32, 2))
        answer = f"<box><grid_{i1}_{j1}><grid_{i2}_{j2}></box>"
        answer = [answer, f"```\n{answer}\n```", answer + ", <box><grid_1", "junk", ""][k % 5]
        answers.append(answer)
        metas.append(meta(box_region(truth)))
    answers += [PERFECT, PERFECT, points((1, 1))]
    metas += [meta(box_region(), box_region()), orjson.dumps(BOX).decode(), meta(point_region([0, 0, 9, 9]))]
    want: list[float | None] = [
        box_reward(a, m, strict=strict) for a, m in zip(answers[:-1], metas[:-1], strict=True)
    ]
    assert box_reward_batch(answers, metas, strict=strict) == [*want, None]


QWEN_TRUTH = meta(box_region([64.0, 48.0, 320.0, 240.0]))  # qwen-vl floor(v·1000): 100, 100, 500, 500


@pytest.mark.parametrize(
    ("scheme", "answer", "lenient", "strict"),
    [
        # qwen-vl: bin centres [100.5·0.64, 100.5·0.48, 500.5·0.64, 500.5·0.48]; qwen2-vl: q/1000
        ("qwen-vl", "<ref>dog</ref><box>(100,100),(500,500)</box>", True, True),
        ("qwen-vl", "dog(100,100),(500,500)", True, False),  # <ref>, <box> stripped by skip_special_tokens
        ("qwen2-vl", "dog (100,100),(500,500)", True, False),
        ("qwen2-vl", "<|box_start|>(100,100),(500,500)", False, False),  # a tag kept: read as written
        ("qwen3-vl", "dog(100,100),(500,500)", False, False),  # a JSON scheme: nothing was stripped
    ],
)
def test_qwen_tag_schemes_after_skip_special_tokens(
    scheme: str, answer: str, lenient: bool, strict: bool
) -> None:
    codec = get_codec(scheme)
    want_box = [(100 + 0.5) * 0.64, (100 + 0.5) * 0.48, (500 + 0.5) * 0.64, (500 + 0.5) * 0.48]
    if scheme == "qwen2-vl":  # round half even v·1000 → q/1000
        want_box = [64.0, 48.0, 320.0, 240.0]
    ix = min(want_box[2], 320.0) - max(want_box[0], 64.0)
    iy = min(want_box[3], 240.0) - max(want_box[1], 48.0)
    inter = ix * iy
    union = (want_box[2] - want_box[0]) * (want_box[3] - want_box[1]) + 256 * 192 - inter
    l1 = (abs(want_box[0] - 64) / 640 + abs(want_box[1] - 48) / 480 + abs(want_box[2] - 320) / 640
          + abs(want_box[3] - 240) / 480) / 2  # fmt: skip
    value = inter / union + 1 - l1
    assert box_reward(answer, QWEN_TRUTH, scheme=codec) == pytest.approx(value if lenient else 0.0, abs=1e-12)
    assert box_reward(answer, QWEN_TRUTH, scheme=codec, strict=True) == pytest.approx(
        value if strict else 0.0, abs=1e-12
    )
    from gtok_cli.rewards.grid_stage import box_reward_batch

    assert box_reward_batch([answer], [QWEN_TRUTH], scheme=codec) == [
        box_reward(answer, QWEN_TRUTH, scheme=codec)
    ]
