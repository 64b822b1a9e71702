"""grid codec (GETok, docs/spec.md#getok-v1): grid tokens, shapes, offsets and refinement turns."""

from __future__ import annotations

import pytest
from _codec_checks import (
    EPS,
    box_in,
    check_batch,
    check_in_prose,
    check_reencode,
    check_roundtrip,
    integer_box_in,
    nan_row,
    point_in,
    sizes,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from gtok_cli.codecs import Grounding, Shape, get_codec
from gtok_cli.codecs.grid import GridCodec, ShapeOffsets
from gtok_cli.errors import InputError, UsageError

S = (640, 480)  # n = 32: a cell is 20 × 15 px; an offset step (half a cell) is 10 × 7.5 px

# Worked out by hand: box TL floor(v·32), BR ceil(v·32 − 1); point / vertex floor(v·32); clamped 0..31.
ENCODE_ROWS = [
    # docs/spec.md#schemes: x1 7.5 → 7, y1 6.67 → 6, x2 ceil(19) = 19, y2 ceil(22.33) = 23
    (S, Shape.box(150, 100, 400, 350), "<box><grid_7_6><grid_19_23></box>"),
    # full image / every edge
    (S, Shape.box(0, 0, 640, 480), "<box><grid_0_0><grid_31_31></box>"),
    # zero width at x = 320 (col 16, BR ceil(15) kept at 16); y 6.67 → 6, ceil(12.33) = 13
    (S, Shape.box(320, 100, 320, 200), "<box><grid_16_6><grid_16_13></box>"),
    # on cell boundaries: 80 → 4, 60 → 4, 320 → 16 → BR 15, 240 → 16 → BR 15
    (S, Shape.box(80, 60, 320, 240), "<box><grid_4_4><grid_15_15></box>"),
    # portrait 480×640: x1 = 10 exactly, y1 = 5, x2 26.67 → 26, y2 17.5 → 17
    ((480, 640), Shape.box(150, 100, 400, 350), "<box><grid_10_5><grid_26_17></box>"),
    ((1, 1), Shape.box(0, 0, 1, 1), "<box><grid_0_0><grid_31_31></box>"),
    # points: 320/640·32 = 16, 240/480·32 = 16; the far corner clamps to 31
    (S, Shape.point(320, 240), "<point><grid_16_16></point>"),
    (S, Shape.point(640, 480), "<point><grid_31_31></point>"),
    # polyline: (0,0) → 0,0; (320,240) → 16,16; (639,479) → 31.95, 31.93 → 31,31
    (S, Shape.polyline([(0, 0), (320, 240), (639, 479)]), "<pl><grid_0_0><grid_16_16><grid_31_31></pl>"),
    # mask: anchors written as given, in order
    (S, Shape("mask", (), ((3, 4), (1, 2))), "<seg><grid_3_4><grid_1_2></seg>"),
]


@pytest.mark.parametrize(("size", "shape", "text"), ENCODE_ROWS)
def test_encode_table(size: tuple[int, int], shape: Shape, text: str) -> None:
    codec = GridCodec()
    assert codec.encode([Grounding(None, (shape,))], size) == text
    if shape.kind == "box":
        assert codec.encode_boxes([shape.coords], [size]) == [text]


def test_decode_cell_centres_and_mask_anchors() -> None:
    text = "The dog <box><grid_7_6><grid_19_23></box> and the cat <seg><grid_3_4><grid_1_2></seg>."
    dec = GridCodec().decode(text, S)
    assert dec.errors == []
    # (i + .5)·20, (j + .5)·15
    assert dec.shapes() == [
        Shape.box(150, 97.5, 390, 352.5),
        Shape("mask", (70, 67.5, 30, 37.5), ((3, 4), (1, 2))),
    ]
    assert text[dec.spans[0][0] : dec.spans[0][1]] == "<box><grid_7_6><grid_19_23></box>"


def test_several_shapes_comma_separated() -> None:
    g = [Grounding(None, (Shape.box(0, 0, 640, 480), Shape.point(320, 240)))]
    assert GridCodec().encode(g, S) == "<box><grid_0_0><grid_31_31></box>, <point><grid_16_16></point>"


DECODE_ERRORS = [
    ("<point><grid_40_1></point>", "out of range"),
    ("<point><grid_01_1></point>", "not a grid token"),
    ("<box><grid_1_1></box>", "needs 2 grid tokens, found 1"),
    ("<box><grid_1_1><grid_2_2><grid_3_3></box>", "needs 2 grid tokens, found 3"),
    ("<box><grid_1_1><grid_2_2> and more", "without </box>"),
    ("<box><grid_5_5><grid_2_2></box>", "above or left"),
    ("<box><grid_1_1><OFF_1_0></box>", "not a grid token"),
    ("<pl><grid_1_1></pl>", "at least 2"),
    ("<box><grid_1_1> x <grid_2_2></box>", "text inside"),
    ("<grid_1_1>", "outside a shape"),
]


@pytest.mark.parametrize(("text", "message"), DECODE_ERRORS)
def test_decode_reports_malformed(text: str, message: str) -> None:
    dec = GridCodec().decode("Answer: " + text, S)
    assert dec.groundings == []
    assert len(dec.errors) == 1 and message in dec.errors[0].message, dec.errors
    assert nan_row(GridCodec().decode_boxes([text], [S])[0])


def test_description() -> None:
    codec = GridCodec()
    vocab = codec.vocab()
    assert len(vocab) == 32 * 32 + 9 + 1 + 10 == len(set(vocab))
    assert vocab[:2] == ["<grid_0_0>", "<grid_1_0>"] and vocab[1023] == "<grid_31_31>"
    assert vocab[1024:1034] == [
        "<OFF_-1_-1>",
        "<OFF_-1_0>",
        "<OFF_-1_1>",
        "<OFF_0_-1>",
        "<OFF_0_0>",
        "<OFF_0_1>",
        "<OFF_1_-1>",
        "<OFF_1_0>",
        "<OFF_1_1>",
        "<DELETE>",
    ]
    assert vocab[1034:] == [
        "<box>",
        "</box>",
        "<point>",
        "</point>",
        "<pl>",
        "</pl>",
        "<seg>",
        "</seg>",
        "<offset>",
        "</offset>",
    ]
    assert codec.params() == {"grid": 32, "offset_step": 0.5, "rounding": "corner"}
    assert get_codec("grid", **codec.params()).vocab() == vocab
    assert codec.bound(S).pixels(S) == pytest.approx((10, 7.5))
    # one turn with half-cell steps: max(.25, .5 − .5)/32 → 5 × 3.75 px; s = 1/3 is the best single step
    assert codec.refined_bound(S, 1).pixels(S) == pytest.approx((5, 3.75))
    assert codec.refined_bound(S, 3).pixels(S) == pytest.approx((5, 3.75))
    assert GridCodec(offset_step=1 / 3).refined_bound(S).norm_x == pytest.approx(1 / 6 / 32)
    assert GridCodec(offset_step=0.25).refined_bound(S, 1).norm_x == pytest.approx(0.25 / 32)
    assert GridCodec(offset_step=0.25).refined_bound(S, 2).norm_x == pytest.approx(0.125 / 32)
    with pytest.raises(UsageError):
        GridCodec(offset_step=0)
    with pytest.raises(InputError):
        codec.encode([Grounding(None, (Shape("mask", (), ((32, 0),)),))], S)


# ---- refinement ------------------------------------------------------------------------------------------


def test_refinement_text_roundtrip() -> None:
    codec = GridCodec()
    turn = [ShapeOffsets("box", ((1, 0), (0, -1))), ShapeOffsets("mask", ((0, 0), None, (-1, 1)))]
    text = codec.encode_refinement(turn)
    assert text == (
        "<offset><box><OFF_1_0><OFF_0_-1></box></offset>, "
        "<offset><seg><OFF_0_0><DELETE><OFF_-1_1></seg></offset>"
    )
    dec = codec.decode_refinement("Refined: " + text + ".")
    assert dec.errors == [] and dec.shapes == turn
    # one <offset> around several shapes reads the same
    both = "<offset><box><OFF_1_0><OFF_0_-1></box>, <seg><OFF_0_0><DELETE><OFF_-1_1></seg></offset>"
    assert codec.decode_refinement(both).shapes == turn
    # an answer's decode ignores refinement regions
    assert codec.decode(text, S).groundings == [] and codec.decode(text, S).errors == []
    with pytest.raises(InputError):
        codec.encode_refinement([ShapeOffsets("box", ((2, 0), (0, 0)))])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("<offset><box><OFF_2_0><OFF_0_0></box></offset>", "not an offset token"),
        ("<offset><box><grid_1_1><OFF_0_0></box></offset>", "not an offset token"),
        ("<offset><box><OFF_1_0><OFF_0_0></box>", "without </offset>"),
        ("<offset><box><OFF_1_0><OFF_0_0></offset>", "without </box>"),
        ("<offset></offset>", "no wrapped shape"),
        ("<offset>move <box><OFF_1_0><OFF_0_0></box></offset>", "text inside"),
    ],
)
def test_refinement_decode_errors(text: str, message: str) -> None:
    dec = GridCodec().decode_refinement(text)
    assert dec.shapes == []
    assert len(dec.errors) == 1 and message in dec.errors[0].message, dec.errors


def test_apply_refinement_moves_half_cells() -> None:
    codec = GridCodec()
    prev = codec.decode("<box><grid_7_6><grid_19_23></box>", S).shapes()  # (150, 97.5, 390, 352.5)
    turn = codec.decode_refinement("<offset><box><OFF_1_0><OFF_0_-1></box></offset>").shapes
    out = codec.apply_refinement(prev, turn, S)
    # TL right by 10 px; BR up by 7.5 px
    assert out.errors == [] and out.shapes == [Shape.box(160, 97.5, 390, 345)]


def test_multi_turn_composes() -> None:
    codec = GridCodec()
    prev = [Shape.box(150, 97.5, 390, 352.5), Shape.point(330, 247.5)]
    right_down = [ShapeOffsets("box", ((1, 1), (1, 1))), ShapeOffsets("point", ((1, 1),))]
    back = [ShapeOffsets("box", ((-1, -1), (-1, -1))), ShapeOffsets("point", ((-1, -1),))]
    once = codec.apply_refinement(prev, right_down, S).shapes
    twice = codec.apply_refinement(once, right_down, S).shapes
    # two half-cell steps = one cell: +20 px, +15 px
    assert twice == [Shape.box(170, 112.5, 410, 367.5), Shape.point(350, 262.5)]
    assert codec.apply_refinement(once, back, S).shapes == prev
    # clamped to the image
    edge = codec.apply_refinement([Shape.point(5, 3.75)], [ShapeOffsets("point", ((-1, -1),))], S)
    assert edge.shapes == [Shape.point(0, 0)]


def test_delete() -> None:
    codec = GridCodec()
    prev = [
        Shape.box(150, 97.5, 390, 352.5),
        Shape.point(330, 247.5),
        Shape("mask", (70, 67.5, 30, 37.5), ((3, 4), (1, 2))),
        Shape.box(10, 7.5, 30, 22.5),
    ]
    turn = [
        ShapeOffsets("box", (None, (0, 0))),  # one corner deleted: invalid
        ShapeOffsets("point", (None,)),  # the point is removed
        ShapeOffsets("mask", ((1, 0), None)),  # one anchor removed, the other moved
        ShapeOffsets("box", (None, None)),  # the box is removed
    ]
    out = codec.apply_refinement(prev, turn, S)
    assert out.shapes == [Shape("mask", (80, 67.5), ((3, 4),))]
    assert len(out.errors) == 1 and "shape 0" in out.errors[0] and "one box corner" in out.errors[0]


def test_apply_refinement_mismatch_is_reported_not_guessed() -> None:
    codec = GridCodec()
    prev = [Shape.box(150, 97.5, 390, 352.5)]
    out = codec.apply_refinement(prev, [], S)
    assert out.shapes == prev and "not applied" in out.errors[0]
    out = codec.apply_refinement(prev, [ShapeOffsets("point", ((1, 0),))], S)
    assert out.shapes == prev and "kept unrefined" in out.errors[0]
    # corners crossing after the move
    out = codec.apply_refinement([Shape.box(10, 7.5, 10, 7.5)], [ShapeOffsets("box", ((1, 0), (-1, 0)))], S)
    assert out.shapes == [] and "cross" in out.errors[0]


@settings(max_examples=200, deadline=None)
@given(st.data(), sizes, st.sampled_from([(32, 0.5), (32, 1 / 3), (16, 0.25), (7, 1.0)]))
def test_refinement_properties(data: st.DataObject, size: tuple[int, int], params: tuple[int, float]) -> None:
    codec = GridCodec(*params)
    w, h = size
    truth = data.draw(st.lists(st.one_of(box_in(size), point_in(size)), min_size=1, max_size=3))
    clamped = [
        Shape(s.kind, tuple(min(max(v, 0.0), w if k % 2 == 0 else h) for k, v in enumerate(s.coords)))
        for s in truth
    ]
    answer = codec.decode(codec.encode([Grounding(None, tuple(truth))], size), size).shapes()
    shapes = answer
    for turns in (1, 2, 3):
        offsets = codec.refinement_offsets(shapes, clamped, size)
        text = codec.encode_refinement(offsets)
        assert codec.decode_refinement(text).shapes == offsets
        refined = codec.apply_refinement(shapes, codec.decode_refinement(text).shapes, size)
        # best offsets never cross a box's corners:
        # TL moves right only if x1 > c + s/2, BR left only if x2 < c − s/2
        assert refined.errors == []
        shapes = refined.shapes
        bx, by = codec.refined_bound(size, turns).pixels(size)
        for t, r in zip(clamped, shapes, strict=True):
            for k, (a, b) in enumerate(zip(t.coords, r.coords, strict=True)):
                bound, extent = (bx, w) if k % 2 == 0 else (by, h)
                assert abs(a - b) <= bound + EPS * extent


@settings(max_examples=200, deadline=None)
@given(st.data(), sizes, st.sampled_from([1, 7, 32, 64]))
def test_properties(data: st.DataObject, size: tuple[int, int], n: int) -> None:
    codec = GridCodec(n)
    w, h = size
    anchors = data.draw(
        st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), min_size=1, max_size=4)
    )
    verts = data.draw(st.lists(st.tuples(st.floats(0, w), st.floats(0, h)), min_size=2, max_size=4))
    boxes = data.draw(st.lists(st.one_of(box_in(size), integer_box_in(size)), min_size=1, max_size=3))
    shapes = [*boxes, data.draw(point_in(size)), Shape.polyline(verts)]
    groundings = [Grounding(None, (s,)) for s in shapes]
    check_roundtrip(codec, groundings, size)
    check_reencode(codec, groundings, size)
    check_in_prose(codec, groundings, size)
    check_batch(codec, boxes, [size] * len(boxes), None)
    mask = [Grounding(None, (Shape("mask", (), tuple(anchors)),))]
    check_reencode(codec, mask, size)
    assert codec.decode(codec.encode(mask, size), size).shapes()[0].anchors == tuple(anchors)
