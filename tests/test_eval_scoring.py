"""The scoring floor (``gtok_cli.scoring``): lenient answers, truths from meta, and the measures.

The messy-answer rows are supervision's own Qwen2.5-VL parser cases (``test/detection/test_vlm.py``,
``test_from_qwen_2_5_vl``: fenced JSON, Python-style single quotes, a truncated response, an out-of-bounds
box), and each is also checked against ``supervision.detection.vlm.from_qwen_2_5_vl`` itself where the two
agree by contract (everything but the clipping, which supervision leaves to the caller).
"""

from __future__ import annotations

import numpy as np
import pytest
from supervision.detection.vlm import from_qwen_2_5_vl

from gtok_cli.codecs import get_codec
from gtok_cli.geometry.candidates import anchors_to_mask
from gtok_cli.geometry.cells import cell_candidates
from gtok_cli.scoring import (
    attach_record_masks,
    box_iou,
    box_iou_matrix,
    cells_mask,
    corner_l1,
    first_boxes,
    mask_iou,
    mask_overlap,
    point_hits,
    read_answer,
    strip_fence,
    truth_of,
)

# qwen3-vl: coordinates on 0..1000, so on a 1000x1000 image they are pixels
Q3 = get_codec("qwen3-vl")
SIZE = (1000, 1000)

SUPERVISION_CASES = [
    # (name, text, boxes expected in pixels of a 1000x1000 image, leniencies)
    ("no snippet", "some random text without triple backticks", [], set()),
    ("invalid JSON", "```json\nnot valid json\n```", [], {"fence"}),
    ("empty list", "```json\n[]\n```", [], {"fence"}),
    (
        "single box",
        '```json\n[\n  {"bbox_2d": [10, 20, 110, 120], "label": "cat"}\n]\n```',
        [[10, 20, 110, 120]],
        {"fence"},
    ),
    (
        "python-style list, single quotes, no fences",
        "[\n    {'bbox_2d': [10, 20, 110, 120], 'label': 'cat'}\n]",
        [[10, 20, 110, 120]],
        {"python_literal"},
    ),
    (
        "truncated response, previous objects recovered",
        '```json\n[\n {"bbox_2d": [0, 0, 64, 64], "label": "dog"},\n'
        ' {"bbox_2d": [10, 20, 110, 120], "label": "cat"},\n'
        ' {"bbox_2d": [30, 40, 130, 140], "label":\n',
        [[0, 0, 64, 64], [10, 20, 110, 120]],
        {"fence", "truncated"},
    ),
    (
        "truncated inside the box array",
        '[{"bbox_2d": [0, 0, 64, 64], "label": "dog"}, {"bbox_2d": [30, 40',
        [[0, 0, 64, 64]],
        {"truncated"},
    ),
    (
        "out-of-bounds box clipped",
        '```json\n[\n {"bbox_2d": [-10, 0, 700, 1700], "label": "dog"}\n]\n```',
        [[0, 0, 700, 1000]],
        {"fence", "clipped"},
    ),
]


@pytest.mark.parametrize(
    ("name", "text", "boxes", "lenient"), SUPERVISION_CASES, ids=[c[0] for c in SUPERVISION_CASES]
)
def test_supervision_messy_answers(name: str, text: str, boxes: list[list[float]], lenient: set[str]) -> None:
    answer = read_answer(text, Q3, SIZE)
    got = [list(s.coords) for s in answer.shapes()]
    assert got == [[float(v) for v in b] for b in boxes]
    assert set(answer.lenient) == lenient
    assert all(v == 1 for v in answer.lenient.values())


@pytest.mark.parametrize("case", [c for c in SUPERVISION_CASES if "clipped" not in c[3]], ids=lambda c: c[0])
def test_lenient_reading_agrees_with_supervision(case: tuple[str, str, list[list[float]], set[str]]) -> None:
    """supervision reads the same boxes (its input_wh = the 0..1000 scale, resolution = the image)."""
    _, text, boxes, _ = case
    xyxy, _, _ = from_qwen_2_5_vl(text, input_wh=(1000, 1000), resolution_wh=SIZE)
    ours = [list(s.coords) for s in read_answer(text, Q3, SIZE).shapes()]
    assert ours == xyxy.tolist() == [[float(v) for v in b] for b in boxes]


@pytest.mark.parametrize("text", [c[1] for c in SUPERVISION_CASES[2:]])
def test_strict_is_exactly_the_codec(text: str) -> None:
    strict = read_answer(text, Q3, SIZE, strict=True)
    dec = Q3.decode(text, SIZE)
    assert strict.shapes() == dec.shapes() and strict.issues == dec.errors and not strict.lenient


def test_strict_refuses_what_lenient_repairs() -> None:
    text = "[{'bbox_2d': [-10, 20, 110, 120]}]"
    assert read_answer(text, Q3, SIZE, strict=True).shapes() == []
    assert read_answer(text, Q3, SIZE).shapes()[0].coords == (0.0, 20.0, 110.0, 120.0)


def test_qwen25_clips_to_the_resized_image() -> None:
    codec = get_codec("qwen2.5-vl")
    w2, h2 = codec.resized((640, 480))  # type: ignore[attr-defined]
    answer = read_answer(f'[{{"bbox_2d": [0, 0, {w2 + 50}, {h2 + 9}]}}]', codec, (640, 480))
    assert answer.shapes()[0].coords == (0.0, 0.0, 640.0, 480.0) and set(answer.lenient) == {"clipped"}


@pytest.mark.parametrize(
    ("scheme", "text", "size", "expected", "lenient"),
    [
        # grid 32 on 320x320: cell (i, j) centre = (10 i + 5, 10 j + 5)
        (
            "grid",
            "<box><grid_1_2><grid_3_4></box> and <box><grid_5_",
            (320, 320),
            [(15, 25, 35, 45)],
            {"truncated"},
        ),
        ("grid", "<box><grid_1_2><grid_3_4></box>", (320, 320), [(15, 25, 35, 45)], set()),
        (
            "grid",
            "<box><grid_1_2><grid_3_4></box><box><grid_1_2>",
            (320, 320),
            [(15, 25, 35, 45)],
            {"truncated"},
        ),
        (
            "qwen-vl",
            "<box>(10,20),(30,40)</box><box>(10,2",
            (1000, 1000),
            [(10.5, 20.5, 30.5, 40.5)],
            {"truncated"},
        ),
        (
            "bins",
            "<box> 0.100 0.200 0.300 0.400 <box> 0.1",
            (1000, 1000),
            [(100.5, 200.5, 300.5, 400.5)],
            {"truncated"},
        ),
        ("qwen-vl", "<box>(10,20),(1200,30)</box>", (1000, 1000), [(10.5, 20.5, 1000, 30.5)], {"clipped"}),
        (
            "qwen2-vl",
            "<|box_start|>(-4,20),(100,30)<|box_end|>",
            (1000, 1000),
            [(0, 20, 100, 30)],
            {"clipped"},
        ),
        ("loc", "<loc_100><loc_200><loc_300><loc_4", (1000, 1000), [], {"truncated"}),
        (
            "kosmos2",
            "```\n<object><patch_index_0000><patch_index_1023></object>\n```",
            (32, 32),
            [(0.5, 0.5, 31.5, 31.5)],
            {"fence"},
        ),
    ],
)
def test_lenient_other_schemes(
    scheme: str, text: str, size: tuple[int, int], expected: list[tuple[float, ...]], lenient: set[str]
) -> None:
    answer = read_answer(text, get_codec(scheme), size)
    assert [s.coords for s in answer.shapes()] == [tuple(float(v) for v in b) for b in expected]
    assert set(answer.lenient) == lenient and not answer.issues


def test_out_of_vocabulary_token_stays_an_issue() -> None:
    answer = read_answer("<box><grid_1_2><grid_40_4></box>", get_codec("grid"), (320, 320))
    assert answer.shapes() == [] and len(answer.issues) == 1 and not answer.lenient


def test_strip_fence() -> None:
    assert strip_fence("```json\n[1]\n```") == ("[1]\n", True)
    assert strip_fence("no fence") == ("no fence", False)
    assert strip_fence("```\nopen only") == ("open only", True)


def test_first_boxes_equals_read_answer_row_by_row() -> None:
    texts = [c[1] for c in SUPERVISION_CASES] + ['[{"bbox_2d": [1, 2, 3, 4]}]', "", "garbage"]
    sizes = np.tile([1000, 1000], (len(texts), 1))
    for strict in (False, True):
        fb = first_boxes(texts, Q3, sizes, strict=strict)
        for k, text in enumerate(texts):
            answer = read_answer(text, Q3, SIZE, strict=strict)
            box = answer.first("box")
            want = box.coords if box is not None and (answer.ok or not strict) else (np.nan,) * 4
            np.testing.assert_array_equal(fb.boxes[k], want)
            assert fb.format_error[k] == (not answer.ok)


# ---- truth -------------------------------------------------------------------------------------------------
def test_truth_of_meta_and_record_masks() -> None:
    meta = {
        "record_id": "r1",
        "image_size": [4, 2],
        "regions": [
            {
                "kind": "mask",
                "bbox": [0, 0, 2, 2],
                "mask_tokens": {"grid": 2, "anchors": [[0, 0], [0, 1]]},
                "label": "dog",
                "phrase": "the dog",
            },
            {
                "kind": "point",
                "bbox": [2, 0, 4, 2],
                "mask_tokens": None,
                "label": "cat",
                "phrase": None,
                "point": [3, 1],
            },
        ],
        "refine": {"turns": 1},
    }
    t = truth_of(meta)
    assert t.record_id == "r1" and t.size == (4, 2) and t.extra == {"refine": {"turns": 1}}
    assert (
        t.regions[0].anchors == [(0, 0), (0, 1)]
        and t.regions[0].grid == 2
        and t.regions[0].label == "the dog"
    )
    assert t.regions[1].label == "cat" and t.regions[1].point == (3.0, 1.0) and t.regions[1].category == "cat"
    record = {"regions": [{"bbox": [2, 0, 4, 2], "mask": [[2, 0, 4, 0, 4, 2, 2, 2]]}]}
    assert attach_record_masks(t.regions, record) == 1
    assert t.regions[0].mask is None and t.regions[1].mask is not None
    m = t.regions[1].mask_array(t.size)
    assert m is not None and m.shape == (2, 4) and m[:, 2:].all() and not m[:, :2].any()


def test_truth_of_bad_meta_names_the_field() -> None:
    from gtok_cli.errors import InputError

    with pytest.raises(InputError, match="field meta"):
        truth_of({"record_id": "r"}, where="x.jsonl")


# ---- measures ----------------------------------------------------------------------------------------------
def test_box_iou_by_hand() -> None:
    a = [[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 0, 0]]
    b = [[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 0, 0]]
    assert box_iou(a, b).tolist() == [1.0, 50 / 150, 0.0, 0.0]
    m = box_iou_matrix(a[:2], b[:3])
    assert m.shape == (2, 3) and m[0].tolist() == [1.0, 50 / 150, 0.0]


@pytest.mark.parametrize(("grid", "size"), [(32, (640, 480)), (7, (50, 13)), (32, (20, 30)), (4, (4, 4))])
def test_cells_mask_equals_the_cells_backend(grid: int, size: tuple[int, int]) -> None:
    rng = np.random.default_rng(grid)
    anchors = [tuple(int(v) for v in a) for a in rng.integers(0, grid, size=(12, 2))]
    want = anchors_to_mask(anchors, cell_candidates(grid, *size))
    np.testing.assert_array_equal(cells_mask(anchors, grid, size), want)


def test_mask_iou_by_hand() -> None:
    # grid 2 on 4x4: cell (0,0) = rows 0-1 cols 0-1; truth = the left half
    pred = cells_mask([(0, 0)], 2, (4, 4))
    truth = np.zeros((4, 4), bool)
    truth[:, :2] = True
    assert mask_overlap(pred, truth) == (4, 8) and mask_iou(pred, truth) == 0.5
    assert mask_iou(np.zeros((2, 2), bool), np.zeros((2, 2), bool)) == 0.0


def test_point_hits_by_hand() -> None:
    mask = np.zeros((4, 4), bool)
    mask[1, 2] = True  # pixel x=2, y=1 covers [2, 3) x [1, 2)
    pts = [(2.0, 1.0), (2.99, 1.99), (3.0, 1.0), (-1, 1), (2.5, 4.5)]
    assert point_hits(pts, None, mask).tolist() == [True, True, False, False, False]
    assert point_hits(pts, (2, 1, 3, 2)).tolist() == [True, True, True, False, False]
    assert point_hits(pts, None).tolist() == [False] * 5


def test_corner_l1_by_hand() -> None:
    # |dx1|/W = 10/100, |dy1|/H = 0, |dx2|/W = 0, |dy2|/H = 5/50  -> (0.1 + 0.1) / 2
    assert corner_l1([[10, 0, 50, 25]], [[0, 0, 50, 30]], [[100, 50]]).tolist() == pytest.approx([0.1])
    assert corner_l1([[0, 0, 100, 50]], [[100, 50, 100, 50]], [[100, 50]]).tolist() == [1.0]
    assert corner_l1([[0, 0, 0, 0]], [[100, 50, 100, 50]], [[100, 50]]).tolist() == [2.0]


def test_truth_mask_prefers_the_real_mask() -> None:
    meta = {
        "record_id": "r",
        "image_size": [4, 4],
        "regions": [
            {"kind": "mask", "bbox": [0, 0, 2, 4], "mask_tokens": {"grid": 2, "anchors": [[0, 0]]}},
            {"kind": "box", "bbox": [0, 0, 2, 4], "mask_tokens": None},
        ],
    }
    t = truth_of(meta)
    cells, source = t.regions[0].truth_mask(t.size)
    assert source == "anchors" and cells is not None and int(cells.sum()) == 4 and cells[:2, :2].all()
    assert t.regions[1].truth_mask(t.size) == (None, None)
    t.regions[0].mask = {"size": [4, 4], "counts": [0, 8, 8]}  # column-major: the left half
    real, source = t.regions[0].truth_mask(t.size)
    assert source == "mask" and real is not None and int(real.sum()) == 8 and real[:, :2].all()
