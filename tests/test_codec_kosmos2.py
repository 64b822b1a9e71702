"""kosmos2 codec: `<phrase> a dog</phrase><object><patch_index_0199><patch_index_0755></object>`."""

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
    sizes,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from gtok_cli.codecs import Grounding, Shape
from gtok_cli.codecs.kosmos2 import Kosmos2Codec
from gtok_cli.errors import InputError


def obj(a: int, b: int) -> str:
    return f"<object><patch_index_{a:04d}><patch_index_{b:04d}></object>"


# Worked out by hand (n = 32): UL col/row floor(v·32), LR ceil(v·32 − 1), idx = row·32 + col.
ENCODE_ROWS = [
    # docs/spec.md#schemes: x1 7.5 → 7, y1 6.67 → 6 → 6·32+7 = 199;
    # x2 ceil(19) = 19, y2 ceil(22.33) = 23 → 23·32+19 = 755
    ((640, 480), (150, 100, 400, 350), "a dog", "<phrase> a dog</phrase>" + obj(199, 755)),
    # full image: UL 0, LR ceil(31) = 31 → 31·32+31 = 1023
    ((640, 480), (0, 0, 640, 480), None, obj(0, 1023)),
    # zero width at x = 320: x1 16 → 16, x2 ceil(15) = 15 → kept at 16; y1 6.67 → 6, y2 ceil(12.33) = 13
    # → 6·32+16 = 208, 13·32+16 = 432
    ((640, 480), (320, 100, 320, 200), "pole", "<phrase> pole</phrase>" + obj(208, 432)),
    # cell boundaries: x1 = 80·32/640 = 4, y1 = 60·32/480 = 4, x2 = y2 = 16 → LR ceil(15) = 15 (no spill)
    # → 4·32+4 = 132, 15·32+15 = 495
    ((640, 480), (80, 60, 320, 240), None, obj(132, 495)),
    # portrait 480×640: x1 = 10 exactly → 10; y1 = 5 → 5; x2 26.67 → 26; y2 17.5 → ceil(16.5) = 17
    # → 5·32+10 = 170, 17·32+26 = 570
    ((480, 640), (150, 100, 400, 350), "a dog", "<phrase> a dog</phrase>" + obj(170, 570)),
    # 1×1 image
    ((1, 1), (0, 0, 1, 1), None, obj(0, 1023)),
]


@pytest.mark.parametrize(("size", "box", "label", "text"), ENCODE_ROWS)
def test_encode_table(size: tuple[int, int], box: tuple[float, ...], label: str | None, text: str) -> None:
    codec = Kosmos2Codec()
    assert codec.encode_box(box, size, label) == text
    assert codec.encode_boxes([box], [size], [label]) == [text]


def test_worked_example_decodes_to_cell_centres() -> None:
    text = "<grounding> An image of<phrase> a dog</phrase>" + obj(199, 755) + " sitting."
    dec = Kosmos2Codec().decode(text, (640, 480))
    # cols 7, 19 → 7.5·20 = 150, 19.5·20 = 390 px; rows 6, 23 → 6.5·15 = 97.5, 23.5·15 = 352.5 px
    assert dec.errors == []
    assert dec.groundings == [Grounding("a dog", (Shape.box(150, 97.5, 390, 352.5),))]


def test_several_boxes_share_one_object_and_no_phrase() -> None:
    codec = Kosmos2Codec()
    g = [
        Grounding("two dogs", (Shape.box(0, 0, 640, 480), Shape.box(150, 100, 400, 350))),
        Grounding(None, (Shape.box(0, 0, 640, 480),)),
    ]
    text = codec.encode(g, (640, 480))
    assert text == (
        "<phrase> two dogs</phrase><object><patch_index_0000><patch_index_1023>"
        "</delimiter_of_multi_objects/><patch_index_0199><patch_index_0755></object>" + obj(0, 1023)
    )
    dec = codec.decode(text, (640, 480))
    assert [g.label for g in dec.groundings] == ["two dogs", None]
    assert [len(g.shapes) for g in dec.groundings] == [2, 1]


def test_points_not_supported() -> None:
    with pytest.raises(InputError):
        Kosmos2Codec().encode([Grounding("x", (Shape.point(1, 1),))], (640, 480))


def test_phrase_without_object_is_plain_text() -> None:
    dec = Kosmos2Codec().decode("<phrase> a cat</phrase> sleeps", (640, 480))
    assert dec.groundings == [] and dec.errors == []


DECODE_ERRORS = [
    ("<phrase> a dog</phrase><object><patch_index_0199><patch_index_0755>", "without </object>"),
    ("<phrase> a dog</phrase><object><patch_index_0199><patch_index_1024></object>", "out of range"),
    ("<object><patch_index_199><patch_index_0755></object>", "4-digit"),
    ("<object><patch_index_0199><patch_index_0755><patch_index_0001></object>", "holds 3 tokens"),
    ("<object><patch_index_0755><patch_index_0199></object>", "above or left"),
    ("<object><patch_index_0199> x <patch_index_0755></object>", "text inside"),
    ("a dog</object>", "outside <object>"),
    ("<phrase> a dog <object>" + "<patch_index_0199><patch_index_0755></object>", "without </phrase>"),
]


@pytest.mark.parametrize(("text", "message"), DECODE_ERRORS)
def test_decode_reports_malformed(text: str, message: str) -> None:
    dec = Kosmos2Codec().decode(text, (640, 480))
    assert any(message in e.message for e in dec.errors), dec.errors
    if "without </phrase>" not in message:
        assert dec.groundings == []
        assert nan_row(Kosmos2Codec().decode_boxes([text], [(640, 480)])[0])


def test_description() -> None:
    codec = Kosmos2Codec()
    vocab = codec.vocab()
    assert len(vocab) == 1024 + 6 and vocab[0] == "<patch_index_0000>" and vocab[1023] == "<patch_index_1023>"
    assert set(vocab[1024:]) == {
        "<grounding>",
        "<phrase>",
        "</phrase>",
        "<object>",
        "</object>",
        "</delimiter_of_multi_objects/>",
    }
    assert codec.params() == {"grid": 32, "rounding": "corner"}
    assert codec.bound((640, 480)).pixels((640, 480)) == pytest.approx((10.0, 7.5))


@settings(max_examples=200, deadline=None)
@given(st.data(), sizes)
def test_properties(data: st.DataObject, size: tuple[int, int]) -> None:
    codec = Kosmos2Codec()
    groundings = [
        Grounding(
            data.draw(st.one_of(st.none(), labels)),
            tuple(data.draw(st.lists(st.one_of(box_in(size), integer_box_in(size)), min_size=1, max_size=3))),
        )
        for _ in range(data.draw(st.integers(1, 3)))
    ]
    check_roundtrip(codec, groundings, size)
    check_reencode(codec, groundings, size)
    check_in_prose(codec, groundings, size)
    boxes = [s for g in groundings for s in g.shapes]
    check_batch(codec, boxes, [size] * len(boxes), [g.label for g in groundings for _ in g.shapes])
