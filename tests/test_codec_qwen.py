"""Table tests for the Qwen codecs: docs/spec.md#schemes' worked example plus edge rows, every value worked
out by hand.

Hand arithmetic (640×480 unless stated): 150·1000/640 = 234.375, 100·1000/480 = 208.3, 400·1000/640 = 625,
350·1000/480 = 729.16 → (234,208),(625,729) under floor and under round.
Portrait 480×640, box [150,100,400,350]: 150·1000/480 = 312.5 (a tie: half-even keeps 312), 100·1000/640 =
156.25, 400·1000/480 = 833.3, 350·1000/640 = 546.875 (floor 546, round 547).
Qwen2.5-VL 640×480 → 644×476 (round(640/28) = 23 → 644, round(480/28) = 17 → 476); 150·644/640 = 150.94 → 151,
100·476/480 = 99.17 → 99, 400·644/640 = 402.5 → 402 (half-even; half-up would give 403), 350·476/480 = 347.08.
1×1 → 56×56 (both round to 0, area < 3136 → beta = 56, ceil(56/28)·28 = 56).
"""

from __future__ import annotations

import pytest

from gtok_cli.codecs import Grounding, Shape, get_codec
from gtok_cli.codecs.qwen import smart_resize
from gtok_cli.errors import GtokError, InputError, UsageError

DOG = [150, 100, 400, 350]

# (scheme, size, box, expected text without label)
BOX_ROWS = [
    ("qwen-vl", (640, 480), DOG, "<box>(234,208),(625,729)</box>"),
    ("qwen-vl", (640, 480), [0, 0, 640, 480], "<box>(0,0),(999,999)</box>"),  # [0, 1000): 1000 clamps to 999
    ("qwen-vl", (640, 480), [320, 240, 320, 240], "<box>(500,500),(500,500)</box>"),  # zero width
    ("qwen-vl", (1000, 2000), [1, 2, 999, 1998], "<box>(1,1),(999,999)</box>"),  # exact bin boundaries
    ("qwen-vl", (3, 3), [1, 1, 2, 2], "<box>(333,333),(666,666)</box>"),  # 333.3 / 666.7 floor
    ("qwen-vl", (480, 640), DOG, "<box>(312,156),(833,546)</box>"),  # portrait
    ("qwen-vl", (1, 1), [0, 0, 1, 1], "<box>(0,0),(999,999)</box>"),
    ("qwen2-vl", (640, 480), DOG, "<|box_start|>(234,208),(625,729)<|box_end|>"),
    ("qwen2-vl", (640, 480), [0, 0, 640, 480], "<|box_start|>(0,0),(1000,1000)<|box_end|>"),
    ("qwen2-vl", (3, 3), [1, 1, 2, 2], "<|box_start|>(333,333),(667,667)<|box_end|>"),  # 666.7 rounds up
    ("qwen2-vl", (480, 640), DOG, "<|box_start|>(312,156),(833,547)<|box_end|>"),  # 312.5 → 312 (even)
    (
        "qwen2-vl",
        (2000, 2000),
        [627, 629, 1000, 1000],
        "<|box_start|>(314,314),(500,500)<|box_end|>",
    ),  # .5 ties
    ("qwen2-vl", (1, 1), [0, 0, 1, 1], "<|box_start|>(0,0),(1000,1000)<|box_end|>"),
    ("qwen3-vl", (640, 480), DOG, '[{"bbox_2d": [234, 208, 625, 729]}]'),
    ("qwen3-vl", (640, 480), [0, 0, 640, 480], '[{"bbox_2d": [0, 0, 1000, 1000]}]'),
    ("qwen3-vl", (480, 640), DOG, '[{"bbox_2d": [312, 156, 833, 547]}]'),
    ("qwen3-vl", (1, 1), [0, 0, 1, 1], '[{"bbox_2d": [0, 0, 1000, 1000]}]'),
    ("qwen2.5-vl", (640, 480), DOG, '[{"bbox_2d": [151, 99, 402, 347]}]'),
    ("qwen2.5-vl", (640, 480), [0, 0, 640, 480], '[{"bbox_2d": [0, 0, 644, 476]}]'),
    ("qwen2.5-vl", (640, 480), [320, 0, 320, 480], '[{"bbox_2d": [322, 0, 322, 476]}]'),  # zero width
    # portrait 480×640 → 476×644: 148.75 → 149, 100.625 → 101, 396.7 → 397, 352.19 → 352
    ("qwen2.5-vl", (480, 640), DOG, '[{"bbox_2d": [149, 101, 397, 352]}]'),
    ("qwen2.5-vl", (1, 1), [0, 0, 1, 1], '[{"bbox_2d": [0, 0, 56, 56]}]'),
]


@pytest.mark.parametrize(("scheme", "size", "box", "text"), BOX_ROWS)
def test_encode_table(scheme: str, size: tuple[int, int], box: list[float], text: str) -> None:
    assert get_codec(scheme).encode_box(box, size) == text


@pytest.mark.parametrize(
    ("scheme", "text"),
    [
        ("qwen-vl", "<ref>a dog</ref><box>(234,208),(625,729)</box>"),
        (
            "qwen2-vl",
            "<|object_ref_start|>a dog<|object_ref_end|><|box_start|>(234,208),(625,729)<|box_end|>",
        ),
        ("qwen2.5-vl", '[{"bbox_2d": [151, 99, 402, 347], "label": "a dog"}]'),
        ("qwen3-vl", '[{"bbox_2d": [234, 208, 625, 729], "label": "a dog"}]'),
    ],
)
def test_worked_example_with_label(scheme: str, text: str) -> None:
    codec = get_codec(scheme)
    assert codec.encode_box(DOG, (640, 480), "a dog") == text
    decoded = codec.decode(f"Sure. {text} That is all.", (640, 480))
    assert decoded.errors == []
    assert [g.label for g in decoded.groundings] == ["a dog"]


@pytest.mark.parametrize(
    ("size", "resized"),
    [
        ((640, 480), (644, 476)),
        ((480, 640), (476, 644)),
        ((1, 1), (56, 56)),
        ((28, 28), (56, 56)),
        ((4000, 3000), (4004, 2996)),
        ((5000, 4000), (4004, 3192)),
        ((200, 1), (812, 28)),
    ],
)
def test_smart_resize_table(size: tuple[int, int], resized: tuple[int, int]) -> None:
    # 4000×3000: 143·28 × 107·28 = 11,995,984 px ≤ max_pixels, kept. 5000×4000: 5012×4004 > 12,845,056, so
    # beta = sqrt(2e7 / 12845056) = 1.2478: floor(5000/1.2478/28) = 143 → 4004,
    # floor(4000/1.2478/28) = 114 → 3192. 200×1: 196×0 < 3136 → beta = sqrt(3136/200) = 3.96:
    # ceil(200·3.96/28) = ceil(28.3) = 29 → 812, ceil(0.14) = 1 → 28.
    codec = get_codec("qwen2.5-vl")
    assert codec.resized(size) == resized


@pytest.mark.parametrize("size", [(640, 480), (1, 1), (200, 1), (1, 200), (5000, 4000), (3001, 17), (28, 56)])
def test_smart_resize_matches_transformers(size: tuple[int, int]) -> None:
    qwen2_vl = pytest.importorskip("transformers.models.qwen2_vl.image_processing_qwen2_vl")
    w, h = size
    rh, rw = qwen2_vl.smart_resize(h, w, 28, 56 * 56, 28 * 28 * 16384)
    sw, sh = smart_resize(w, h)
    assert (int(sw), int(sh)) == (rw, rh)


def test_qwen25_refuses_extreme_aspect() -> None:
    with pytest.raises(InputError, match="aspect ratio"):
        get_codec("qwen2.5-vl").encode_box([0, 0, 1, 1], (201, 1))


def test_qwen25_params_change_resize() -> None:
    codec = get_codec("qwen2.5-vl", max_pixels=28 * 28 * 4)  # 640×480 → at most 4 patches of 28²
    assert codec.params()["max_pixels"] == 3136
    assert codec.resized((640, 480)) == (56, 28)  # beta = sqrt(307200/3136) = 9.9: floor(2.3)=2, floor(1.7)=1


def test_several_phrases_and_boxes_tagged() -> None:
    codec = get_codec("qwen-vl")
    gs = [
        Grounding("dogs", (Shape.box(*DOG), Shape.box(0, 0, 64, 48))),
        Grounding("a cat", (Shape.box(0, 0, 640, 480),)),
    ]
    text = codec.encode(gs, (640, 480))
    assert text == (
        "<ref>dogs</ref><box>(234,208),(625,729)</box><box>(0,0),(100,100)</box>"
        "<ref>a cat</ref><box>(0,0),(999,999)</box>"
    )
    d = codec.decode("I see " + text + ".", (640, 480))
    assert [(g.label, len(g.shapes)) for g in d.groundings] == [("dogs", 2), ("a cat", 1)]
    # floor bins decode at their centre: (234 + 0.5) · 640 / 1000 = 150.08
    assert d.groundings[0].shapes[0].coords == pytest.approx((150.08, 100.08, 400.32, 350.16))


def test_json_points_and_fences() -> None:
    codec = get_codec("qwen3-vl")
    gs = [Grounding("nose", (Shape.point(320, 240),)), Grounding("dog", (Shape.box(*DOG),))]
    text = codec.encode(gs, (640, 480))
    assert (
        text
        == '[{"point_2d": [500, 500], "label": "nose"}, {"bbox_2d": [234, 208, 625, 729], "label": "dog"}]'
    )
    d = codec.decode(f"Here:\n```json\n{text}\n```\nand more [1, 2] text", (640, 480))
    assert d.errors == []
    assert [s.kind for s in d.shapes()] == ["point", "box"]
    assert d.shapes()[0].coords == (320.0, 240.0)


@pytest.mark.parametrize(
    ("scheme", "text", "message"),
    [
        ("qwen-vl", "<ref>a</ref><box>(1,2)</box>", "expected (x1,y1),(x2,y2)"),
        ("qwen-vl", "<box>(1,2),(3,4)", "unclosed"),
        ("qwen-vl", "<box>(10,2),(3,4)</box>", "inverted"),
        ("qwen2-vl", "<|box_start|>(1,2),(3,1001)<|box_end|>", "out of range"),
        ("qwen3-vl", '[{"bbox_2d": [1, 2, 3], "label": "a"}]', "list of 4 integers"),
        ("qwen3-vl", '[{"bbox_2d": [1.5, 2, 3, 4]}]', "list of 4 integers"),
        ("qwen3-vl", '[{"bbox_2d": [1, 2, 3, 4], "label": 7}]', "label is not a string"),
        ("qwen3-vl", '```json\n[{"bbox_2d": [1, 2, 3, 4]}, {"bbox_2d": [5, 6', "malformed JSON"),
        ("qwen2.5-vl", '[{"bbox_2d": [0, 0, 645, 10]}]', "out of range"),  # 640 wide → 644 resized
    ],
)
def test_malformed_spans_are_reported(scheme: str, text: str, message: str) -> None:
    d = get_codec(scheme).decode(text, (640, 480))
    assert d.groundings == []
    assert len(d.errors) == 1 and message in d.errors[0].message


def test_pinned_params_round_trip_and_refuse_others() -> None:
    from gtok_cli.codecs import codec_from_params

    for scheme in ("qwen-vl", "qwen2-vl", "qwen2.5-vl", "qwen3-vl"):
        codec = get_codec(scheme)
        assert codec_from_params(codec.describe()).params() == codec.params()
    assert get_codec("qwen-vl").params() == {"scale": 1000, "rounding": "floor"}
    with pytest.raises(UsageError):
        get_codec("qwen2-vl", rounding="floor")


def test_vocab() -> None:
    assert get_codec("qwen-vl").vocab() == ["<ref>", "</ref>", "<box>", "</box>"]
    assert get_codec("qwen2-vl").vocab() == [
        "<|object_ref_start|>",
        "<|object_ref_end|>",
        "<|box_start|>",
        "<|box_end|>",
    ]
    assert get_codec("qwen2.5-vl").vocab() == [] and get_codec("qwen3-vl").vocab() == []


def test_label_with_tags_is_refused() -> None:
    with pytest.raises(GtokError):
        get_codec("qwen-vl").encode_box(DOG, (640, 480), "a </ref> trick")
