"""Shared property checks and hypothesis strategies for the token-scheme codec tests."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

from gtok_cli.codecs import Codec, Grounding, Shape, Size

EPS = 1e-9

sizes = st.tuples(st.integers(1, 4000), st.integers(1, 4000))
labels = st.text(alphabet="abcdefghij klm", min_size=1, max_size=12).filter(lambda s: s.strip() != "")


@st.composite
def box_in(draw: st.DrawFn, size: Size) -> Shape:
    w, h = size
    # coordinates a little outside the image too: they are clamped, and the bound holds for the clamped box
    xs = sorted(draw(st.floats(-0.1 * w, 1.1 * w, allow_nan=False)) for _ in range(2))
    ys = sorted(draw(st.floats(-0.1 * h, 1.1 * h, allow_nan=False)) for _ in range(2))
    return Shape.box(xs[0], ys[0], xs[1], ys[1])


@st.composite
def point_in(draw: st.DrawFn, size: Size) -> Shape:
    w, h = size
    return Shape.point(draw(st.floats(0, w)), draw(st.floats(0, h)))


@st.composite
def integer_box_in(draw: st.DrawFn, size: Size) -> Shape:
    """Integer pixel boxes: they hit bin and cell boundaries exactly far more often than random floats."""
    w, h = size
    xs = sorted(draw(st.integers(0, w)) for _ in range(2))
    ys = sorted(draw(st.integers(0, h)) for _ in range(2))
    return Shape.box(xs[0], ys[0], xs[1], ys[1])


def assert_within_bound(codec: Codec, original: Shape, decoded: Shape, size: Size) -> None:
    w, h = size
    bx, by = codec.bound(size).pixels(size)
    assert decoded.kind == original.kind
    assert len(decoded.coords) == len(original.coords)
    for k, (a, b) in enumerate(zip(original.coords, decoded.coords, strict=True)):
        extent, bound = (w, bx) if k % 2 == 0 else (h, by)
        clamped = min(max(a, 0.0), extent)
        assert abs(clamped - b) <= bound + EPS * extent, (k, a, b, bound)


def check_roundtrip(codec: Codec, groundings: list[Grounding], size: Size) -> None:
    """decode(encode(g)) has the same shapes, each coordinate within the stated bound; labels survive."""
    text = codec.encode(groundings, size)
    dec = codec.decode(text, size)
    assert dec.errors == []
    shapes_in = [s for g in groundings for s in g.shapes]
    assert len(dec.shapes()) == len(shapes_in)
    for a, b in zip(shapes_in, dec.shapes(), strict=True):
        assert_within_bound(codec, a, b, size)
    if codec.carries_label:
        labels_in = [g.label.strip() if g.label else None for g in groundings for _ in g.shapes]
        labels_out = [g.label for g in dec.groundings for _ in g.shapes]
        assert labels_out == labels_in


def check_reencode(codec: Codec, groundings: list[Grounding], size: Size) -> None:
    """encode(decode(text)) == text for text the encoder produced."""
    text = codec.encode(groundings, size)
    dec = codec.decode(text, size)
    assert dec.errors == []
    assert codec.encode(dec.groundings, size) == text


def check_in_prose(codec: Codec, groundings: list[Grounding], size: Size) -> None:
    """Spans embedded in prose decode to the same shapes; each span's text is the encoded span."""
    text = codec.encode(groundings, size)
    prose = f"Look at this: {text}\nThat is all."
    a, b = codec.decode(text, size), codec.decode(prose, size)
    assert b.errors == []
    assert [s.coords for s in b.shapes()] == [s.coords for s in a.shapes()]
    for start, end in b.spans:
        assert prose[start:end] in text


def check_batch(
    codec: Codec, boxes: list[Shape], size_list: list[Size], names: list[str | None] | None
) -> None:
    """encode_boxes equals encode_box item by item; decode_boxes equals the first box of decode."""
    arr = np.asarray([b.coords for b in boxes])
    texts = codec.encode_boxes(arr, np.asarray(size_list), names)
    single = [
        codec.encode_box(b.coords, s, names[k] if names is not None else None)
        for k, (b, s) in enumerate(zip(boxes, size_list, strict=True))
    ]
    assert texts == single
    got = codec.decode_boxes(texts, np.asarray(size_list))
    for k, (t, s) in enumerate(zip(texts, size_list, strict=True)):
        first = codec.decode(t, s).shapes()[0].coords
        assert got[k].tolist() == list(first)


def nan_row(row: np.ndarray) -> bool:
    return all(math.isnan(v) for v in row)
