"""loc codec: Florence-2 `dog<loc_234><loc_208><loc_625><loc_729>`."""

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
from gtok_cli.codecs.loc import LocCodec
from gtok_cli.errors import InputError

# Worked out by hand: q = floor(x·1000/W) clamped to 0..999, tokens without zero padding.
ENCODE_ROWS = [
    # docs/spec.md#schemes: .234375 → 234, .2083 → 208, .625 → 625, .7291 → 729
    ((640, 480), (150, 100, 400, 350), "dog", "dog<loc_234><loc_208><loc_625><loc_729>"),
    # full image / every edge: v = 1 clamps to 999
    ((640, 480), (0, 0, 640, 480), None, "<loc_0><loc_0><loc_999><loc_999>"),
    # zero width: 320/640 = .5 → 500; 100/480 → 208; 200/480 = .4166 → 416
    ((640, 480), (320, 100, 320, 200), "a pole", "a pole<loc_500><loc_208><loc_500><loc_416>"),
    # on bin boundaries: 64·1000/640 = 100 exactly, 48·1000/480 = 100, 576 → 900, 432 → 900
    ((640, 480), (64, 48, 576, 432), None, "<loc_100><loc_100><loc_900><loc_900>"),
    # portrait 480×640: .3125 → 312, .15625 → 156, .8333 → 833, .546875 → 546
    ((480, 640), (150, 100, 400, 350), "dog", "dog<loc_312><loc_156><loc_833><loc_546>"),
    # 1×1 image
    ((1, 1), (0, 0, 1, 1), None, "<loc_0><loc_0><loc_999><loc_999>"),
]


@pytest.mark.parametrize(("size", "box", "label", "text"), ENCODE_ROWS)
def test_encode_table(size: tuple[int, int], box: tuple[float, ...], label: str | None, text: str) -> None:
    codec = LocCodec()
    assert codec.encode_box(box, size, label) == text
    assert codec.encode_boxes([box], [size], [label]) == [text]
    dec = codec.decode(text, size)
    assert dec.errors == [] and dec.groundings[0].label == label


def test_worked_example_decodes_to_bin_centres() -> None:
    dec = LocCodec().decode("dog<loc_234><loc_208><loc_625><loc_729>", (640, 480))
    # (q + .5)/1000 × extent
    assert dec.shapes()[0].coords == pytest.approx((150.08, 100.08, 400.32, 350.16))
    assert dec.groundings[0].label == "dog"


def test_phrase_with_two_boxes_point_and_prose() -> None:
    codec = LocCodec()
    g = [
        Grounding("dogs", (Shape.box(0, 0, 640, 480), Shape.box(150, 100, 400, 350))),
        Grounding("nose", (Shape.point(320, 240),)),
    ]
    text = codec.encode(g, (640, 480))
    assert (
        text
        == "dogs<loc_0><loc_0><loc_999><loc_999><loc_234><loc_208><loc_625><loc_729>nose<loc_500><loc_500>"
    )
    dec = codec.decode("The " + text + ".", (640, 480))
    assert [g.label for g in dec.groundings] == ["The dogs", "nose"]
    assert [len(g.shapes) for g in dec.groundings] == [2, 1]
    assert dec.shapes()[2].kind == "point"


def test_encode_refuses_ambiguous_points() -> None:
    codec = LocCodec()
    with pytest.raises(InputError):
        codec.encode([Grounding("x", (Shape.point(1, 1), Shape.point(2, 2)))], (640, 480))
    with pytest.raises(InputError):
        codec.encode(
            [Grounding("x", (Shape.point(1, 1),)), Grounding(None, (Shape.point(2, 2),))], (640, 480)
        )
    with pytest.raises(InputError):
        codec.encode_box((0, 0, 1, 1), (640, 480), "a<b")


DECODE_ERRORS = [
    ("dog<loc_1000><loc_208><loc_625><loc_729>", "out of range"),
    ("dog<loc_07><loc_208><loc_625><loc_729>", "not a loc token"),
    ("dog<loc_x><loc_208><loc_625><loc_729>", "not a loc token"),
    ("dog<loc_234><loc_208><loc_625>", "neither a point"),
    ("dog<loc_234><loc_208><loc_625><loc_729><loc_1>", "neither a point"),
    ("dog<loc_625><loc_208><loc_234><loc_729>", "out of order"),
]


@pytest.mark.parametrize(("text", "message"), DECODE_ERRORS)
def test_decode_reports_malformed(text: str, message: str) -> None:
    dec = LocCodec().decode(text, (640, 480))
    assert dec.groundings == []
    assert len(dec.errors) == 1 and message in dec.errors[0].message
    assert nan_row(LocCodec().decode_boxes([text], [(640, 480)])[0])


def test_description() -> None:
    codec = LocCodec()
    assert codec.params() == {"bins": 1000, "rounding": "floor"}
    vocab = codec.vocab()
    assert vocab[0] == "<loc_0>" and vocab[999] == "<loc_999>" and len(vocab) == 1003
    assert vocab[1000:] == ["<poly>", "</poly>", "<sep>"]  # Florence-2's polygon tokens
    assert codec.bound((640, 480)).pixels((640, 480)) == pytest.approx((0.32, 0.24))


@settings(max_examples=200, deadline=None)
@given(st.data(), sizes)
def test_properties(data: st.DataObject, size: tuple[int, int]) -> None:
    codec = LocCodec()
    n = data.draw(st.integers(1, 3))
    groundings = []
    for _ in range(n):
        if data.draw(st.booleans()):
            groundings.append(Grounding(data.draw(labels), (data.draw(point_in(size)),)))
        else:
            boxes = data.draw(st.lists(st.one_of(box_in(size), integer_box_in(size)), min_size=1, max_size=3))
            groundings.append(Grounding(data.draw(labels), tuple(boxes)))
    check_roundtrip(codec, groundings, size)
    check_reencode(codec, groundings, size)
    check_in_prose(codec, groundings, size)
    boxes = [s for g in groundings for s in g.shapes if s.kind == "box"]
    check_batch(codec, boxes, [size] * len(boxes), ["dog"] * len(boxes))
