"""bins codec: `<box> 0.234 0.208 0.625 0.729` (seed "Grounding Head" scheme)."""

from __future__ import annotations

import pytest
from _codec_checks import (
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
from gtok_cli.codecs.bins import BinsCodec, coordinate_tokens
from gtok_cli.errors import InputError, UsageError

# Expected strings worked out by hand: k = floor(x·N/W) clamped to 0..N−1, written as k/N with
# len(str(N−1)) decimals.
ENCODE_ROWS = [
    # docs/spec.md#schemes: 150/640=.234375 → 234; 100/480=.2083 → 208; 400/640=.625; 350/480=.7291 → 729
    (1000, (640, 480), (150, 100, 400, 350), "<box> 0.234 0.208 0.625 0.729"),
    # full image / touching every edge: v = 1 clamps to the last bin 999
    (1000, (640, 480), (0, 0, 640, 480), "<box> 0.000 0.000 0.999 0.999"),
    # zero-width: 320/640 = .5 → 500 twice; 200/480 = .41666 → 416
    (1000, (640, 480), (320, 100, 320, 200), "<box> 0.500 0.208 0.500 0.416"),
    # exactly on bin boundaries: 64·1000/640 = 100, 48·1000/480 = 100, 576 → 900, 432 → 900
    (1000, (640, 480), (64, 48, 576, 432), "<box> 0.100 0.100 0.900 0.900"),
    # one pixel-hundredth below a boundary stays in the lower bin: 63.99·1000/640 = 99.98 → 99
    (1000, (640, 480), (63.99, 0, 64, 1), "<box> 0.099 0.000 0.100 0.002"),
    # portrait 480×640: 150/480=.3125 → 312; 100/640=.15625 → 156; 400/480=.8333 → 833; 350/640=.546875 → 546
    (1000, (480, 640), (150, 100, 400, 350), "<box> 0.312 0.156 0.833 0.546"),
    # 1×1 image, full box
    (1000, (1, 1), (0, 0, 1, 1), "<box> 0.000 0.000 0.999 0.999"),
    # N = 7 (1 decimal): v·7 = 1.64, 1.46, 4.375, 5.10 → k = 1, 1, 4, 5
    # → 1/7 = .142 → 0.1, 4/7 = .571 → 0.6, 5/7 = .714 → 0.7
    (7, (640, 480), (150, 100, 400, 350), "<box> 0.1 0.1 0.6 0.7"),
    # N = 1: a single bin
    (1, (640, 480), (150, 100, 400, 350), "<box> 0.0 0.0 0.0 0.0"),
    # N = 1024 (4 decimals): 150·1024/640 = 240 exactly → 240/1024 = .234375 → 0.2344;
    # 100·1024/480 = 213.33 → 213/1024 = .2080 → 0.2080; 400·1024/640 = 640 → .625 → 0.6250;
    # 350·1024/480 = 746.67 → 746/1024 = .72851 → 0.7285
    (1024, (640, 480), (150, 100, 400, 350), "<box> 0.2344 0.2080 0.6250 0.7285"),
]


@pytest.mark.parametrize(("bins", "size", "box", "text"), ENCODE_ROWS)
def test_encode_table(bins: int, size: tuple[int, int], box: tuple[float, ...], text: str) -> None:
    codec = BinsCodec(bins)
    assert codec.encode_box(box, size) == text
    assert codec.encode_boxes([box], [size]) == [text]


def test_worked_example_decodes_to_bin_centres() -> None:
    dec = BinsCodec().decode("<box> 0.234 0.208 0.625 0.729", (640, 480))
    (shape,) = dec.shapes()
    # (k + .5)/1000 × extent: 234.5·.64 = 150.08, 208.5·.48 = 100.08, 625.5·.64 = 400.32, 729.5·.48 = 350.16
    assert shape.coords == pytest.approx((150.08, 100.08, 400.32, 350.16))
    assert dec.groundings[0].label is None


def test_points_and_several_shapes() -> None:
    codec = BinsCodec()
    g = [Grounding("dog", (Shape.point(320, 240), Shape.box(0, 0, 640, 480)))]
    # 320/640 = 240/480 = .5 → 500
    assert codec.encode(g, (640, 480)) == "<point> 0.500 0.500, <box> 0.000 0.000 0.999 0.999"


@pytest.mark.parametrize("bins", [1, 7, 8, 500, 1000, 1024])
def test_tokens_distinct_and_read_back(bins: int) -> None:
    tokens = coordinate_tokens(bins)
    assert len(set(tokens)) == bins
    for k, t in enumerate(tokens):
        assert round(float(t) * bins) == k


def test_vocab() -> None:
    vocab = BinsCodec(1000).vocab()
    assert vocab[:2] == ["<box>", "<point>"]
    assert len(vocab) == 1002 and vocab[2] == "0.000" and vocab[-1] == "0.999"
    assert BinsCodec().params() == {"bins": 1000, "rounding": "floor"}
    assert get_codec("bins", bins=500).bound((640, 480)).pixels((640, 480)) == pytest.approx((0.64, 0.48))


DECODE_ERRORS = [
    ("<box> 0.234 0.208 0.625", "needs 4 coordinates, found 3"),
    ("<box> 0.234 0.208 0.625 0.729 0.5", "needs 4 coordinates, found 5"),
    ("<box> 0.2345 0.208 0.625 0.729", "not a coordinate token"),
    ("<box> 0.234 0.208 1.000 0.729", "not a coordinate token"),
    ("<box> 0.625 0.208 0.234 0.729", "out of order"),
    ("<point> 0.5", "needs 2 coordinates"),
]


@pytest.mark.parametrize(("text", "message"), DECODE_ERRORS)
def test_decode_reports_malformed(text: str, message: str) -> None:
    dec = BinsCodec().decode(f"Here {text}. Done", (640, 480))
    assert dec.groundings == []
    assert len(dec.errors) == 1 and message in dec.errors[0].message
    assert dec.errors[0].text.startswith("<")
    assert nan_row(BinsCodec().decode_boxes([text], [(640, 480)])[0])


def test_decode_in_prose_with_two_boxes() -> None:
    text = "The dog <box> 0.234 0.208 0.625 0.729 and the cat <box> 0.000 0.000 0.999 0.999."
    dec = BinsCodec().decode(text, (640, 480))
    assert dec.errors == [] and len(dec.shapes()) == 2
    assert text[dec.spans[1][0] : dec.spans[1][1]] == "<box> 0.000 0.000 0.999 0.999"


def test_bad_input() -> None:
    with pytest.raises(InputError):
        BinsCodec().encode_box((10, 0, 5, 1), (640, 480))
    with pytest.raises(InputError):
        BinsCodec().encode_box((0, 0, float("nan"), 1), (640, 480))
    with pytest.raises(InputError):
        BinsCodec().encode_box((0, 0, 1, 1), (0, 480))
    with pytest.raises(UsageError):
        BinsCodec(0)


@settings(max_examples=200, deadline=None)
@given(st.data(), sizes, st.sampled_from([1, 7, 500, 1000, 1024]))
def test_properties(data: st.DataObject, size: tuple[int, int], bins: int) -> None:
    codec = BinsCodec(bins)
    shapes = data.draw(
        st.lists(st.one_of(box_in(size), integer_box_in(size), point_in(size)), min_size=1, max_size=4)
    )
    groundings = [Grounding(None, (s,)) for s in shapes]
    check_roundtrip(codec, groundings, size)
    check_reencode(codec, groundings, size)
    check_in_prose(codec, groundings, size)
    boxes = [s for s in shapes if s.kind == "box"]
    if boxes:
        check_batch(codec, boxes, [size] * len(boxes), None)
