"""paligemma codec: `<loc0213><loc0240><loc0746><loc0639> dog` (y1 x1 y2 x2, round half-even of v·1023)."""

from __future__ import annotations

import pytest
from _codec_checks import (
    box_in,
    check_batch,
    check_in_prose,
    check_reencode,
    check_roundtrip,
    integer_box_in,
    labels,
    nan_row,
    point_in,
    sizes,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from gtok_cli.codecs import Grounding, Shape
from gtok_cli.codecs.paligemma import PaliGemmaCodec
from gtok_cli.errors import InputError, UsageError

# Worked out by hand: q = round_half_even(x·1023/W), clamp 0..1023, written y1 x1 y2 x2, 4 digits.
ENCODE_ROWS = [
    # docs/spec.md#schemes: y1 100·1023/480 = 213.125 → 213; x1 150·1023/640 = 239.77 → 240;
    # y2 350·1023/480 = 745.94 → 746; x2 400·1023/640 = 639.375 → 639
    ((640, 480), (150, 100, 400, 350), "dog", "<loc0213><loc0240><loc0746><loc0639> dog"),
    # full image / every edge
    ((640, 480), (0, 0, 640, 480), None, "<loc0000><loc0000><loc1023><loc1023>"),
    # zero width: x = 320 → 511.5 exactly, a tie → even 512; y 213.125 → 213, 426.25 → 426
    ((640, 480), (320, 100, 320, 200), "pole", "<loc0213><loc0512><loc0426><loc0512> pole"),
    # ties that pin half-even against half-up on a 2046-px axis (x·1023/2046 = x/2):
    # x1 = 1 → 0.5 → 0 (half-up: 1); y1 = 5 → 2.5 → 2 (half-up: 3); x2 = 3 → 1.5 → 2;
    # y2 = 2045 → 1022.5 → 1022
    ((2046, 2046), (1, 5, 3, 2045), None, "<loc0002><loc0000><loc1022><loc0002>"),
    # portrait 480×640: y1 100·1023/640 = 159.84 → 160; x1 150·1023/480 = 319.69 → 320;
    # y2 350·1023/640 = 559.45 → 559; x2 400·1023/480 = 852.5 exactly → even 852
    ((480, 640), (150, 100, 400, 350), "dog", "<loc0160><loc0320><loc0559><loc0852> dog"),
    # 1×1 image
    ((1, 1), (0, 0, 1, 1), None, "<loc0000><loc0000><loc1023><loc1023>"),
]


@pytest.mark.parametrize(("size", "box", "label", "text"), ENCODE_ROWS)
def test_encode_table(size: tuple[int, int], box: tuple[float, ...], label: str | None, text: str) -> None:
    codec = PaliGemmaCodec()
    assert codec.encode_box(box, size, label) == text
    assert codec.encode_boxes([box], [size], [label]) == [text]


def test_worked_example_decodes() -> None:
    dec = PaliGemmaCodec().decode("<loc0213><loc0240><loc0746><loc0639> dog", (640, 480))
    # q/1023 × extent: 240/1023·640, 213/1023·480, 639/1023·640, 746/1023·480
    assert dec.shapes()[0].coords == pytest.approx((150.1466, 99.9413, 399.7654, 350.0293), abs=1e-4)
    assert dec.groundings[0].label == "dog"


def test_several_objects_and_points() -> None:
    codec = PaliGemmaCodec()
    g = [
        Grounding("dog", (Shape.box(150, 100, 400, 350), Shape.box(0, 0, 640, 480))),
        Grounding("nose", (Shape.point(320, 240),)),
        Grounding(None, (Shape.box(0, 0, 640, 480),)),
    ]
    text = codec.encode(g, (640, 480))
    # point: y 240·1023/480 = 511.5 → 512, x 320·1023/640 = 511.5 → 512
    assert text == (
        "<loc0213><loc0240><loc0746><loc0639> dog ; <loc0000><loc0000><loc1023><loc1023> dog ; "
        "<loc0512><loc0512> nose ; <loc0000><loc0000><loc1023><loc1023>"
    )
    dec = codec.decode(text, (640, 480))
    assert [g.label for g in dec.groundings] == ["dog", "dog", "nose", None]
    assert dec.shapes()[2] == Shape.point(512 / 1023 * 640, 512 / 1023 * 480)


DECODE_ERRORS = [
    ("<loc1024><loc0240><loc0746><loc0639> dog", "out of range"),
    ("<loc213><loc0240><loc0746><loc0639> dog", "4 digits"),
    ("<loc0213><loc0240><loc0746> dog", "neither a box"),
    ("<loc0746><loc0240><loc0213><loc0639> dog", "out of order"),
]


@pytest.mark.parametrize(("text", "message"), DECODE_ERRORS)
def test_decode_reports_malformed(text: str, message: str) -> None:
    dec = PaliGemmaCodec().decode("found: " + text, (640, 480))
    assert dec.groundings == []
    assert len(dec.errors) == 1 and message in dec.errors[0].message
    assert nan_row(PaliGemmaCodec().decode_boxes([text], [(640, 480)])[0])


def test_florence_tokens_are_not_paligemma_tokens() -> None:
    assert PaliGemmaCodec().decode("dog<loc_234><loc_208><loc_625><loc_729>", (640, 480)).errors == []


def test_description_and_bad_input() -> None:
    codec = PaliGemmaCodec()
    assert codec.params() == {"bins": 1024, "rounding": "half_even"}
    assert codec.vocab()[0] == "<loc0000>" and codec.vocab()[-1] == "<loc1023>" and len(codec.vocab()) == 1024
    assert codec.bound((1023, 2046)).pixels((1023, 2046)) == pytest.approx((0.5, 1.0))
    with pytest.raises(InputError):
        codec.encode_box((0, 0, 1, 1), (640, 480), "a ; b")
    with pytest.raises(UsageError):
        PaliGemmaCodec(rounding="half_up")


@settings(max_examples=200, deadline=None)
@given(st.data(), sizes)
def test_properties(data: st.DataObject, size: tuple[int, int]) -> None:
    codec = PaliGemmaCodec()
    groundings = [
        Grounding(
            data.draw(st.one_of(st.none(), labels)),
            tuple(
                data.draw(
                    st.lists(
                        st.one_of(box_in(size), integer_box_in(size), point_in(size)), min_size=1, max_size=3
                    )
                )
            ),
        )
        for _ in range(data.draw(st.integers(1, 3)))
    ]
    check_roundtrip(codec, groundings, size)
    check_reencode(codec, groundings, size)
    boxes = [s for g in groundings for s in g.shapes if s.kind == "box"]
    check_batch(codec, boxes, [size] * len(boxes), None)
    # in prose: the text after the last object runs to the newline, which ends the label
    check_in_prose(codec, groundings, size)
