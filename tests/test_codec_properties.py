"""Properties every registered scheme must have (parametrized over the registry, docs/spec.md#schemes).

- decode(encode(g)) gives g back within ``codec.bound(size)`` (per axis, in pixels, + 1e-9 for float noise);
- encode(decode(text)) == text for every text the encoder produced;
- ``encode_boxes`` equals ``encode_box`` item by item, and ``decode_boxes`` inverts it within the bound.

Image sizes span 1..4000 on each axis (1×1 and portrait included as explicit examples); coordinates are
integers half the time so that exact bin/cell boundaries are hit.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from gtok_cli.codecs import SCHEMES, Codec, Grounding, Shape, Size, get_codec

SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
EPS = 1e-9
LABELS = st.none() | st.from_regex(r"[a-z]{1,8}( [a-z]{1,8}){0,2}", fullmatch=True)


def usable(codec: Codec, size: Size) -> bool:
    """Qwen2.5-VL's processor refuses images with an aspect ratio above 200 (so does its codec)."""
    w, h = size
    return codec.name != "qwen2.5-vl" or max(w, h) / min(w, h) <= 200


@st.composite
def coordinate(draw: st.DrawFn, extent: int) -> float:
    return float(draw(st.integers(0, extent) | st.floats(0, extent, allow_nan=False)))


@st.composite
def box(draw: st.DrawFn, size: Size) -> Shape:
    w, h = size
    xs = sorted([draw(coordinate(w)), draw(coordinate(w))])
    ys = sorted([draw(coordinate(h)), draw(coordinate(h))])
    return Shape.box(xs[0], ys[0], xs[1], ys[1])


@st.composite
def groundings(draw: st.DrawFn, size: Size, kinds: frozenset[str]) -> list[Grounding]:
    """1..3 groundings; each 1..3 boxes, or one point where the scheme writes points.

    When a point is drawn every grounding gets a label: an unlabelled point next to another unlabelled
    grounding is ambiguous in label-delimited layouts (``loc`` refuses to write it).
    """
    out = []
    for _ in range(draw(st.integers(1, 3))):
        if "box" not in kinds:  # a points-only scheme (molmo): 1..3 points a phrase
            n = draw(st.integers(1, 3))
            shapes: tuple[Shape, ...] = tuple(
                Shape.point(draw(coordinate(size[0])), draw(coordinate(size[1]))) for _ in range(n)
            )
        elif "point" in kinds and draw(st.booleans()):
            shapes = (Shape.point(draw(coordinate(size[0])), draw(coordinate(size[1]))),)
        else:
            shapes = tuple(draw(box(size)) for _ in range(draw(st.integers(1, 3))))
        out.append(Grounding(draw(LABELS), shapes))
    if any(s.kind == "point" for g in out for s in g.shapes):
        out = [Grounding(g.label or "thing", g.shapes) for g in out]
    return out


SIZES = st.tuples(st.integers(1, 4000), st.integers(1, 4000))


def assert_within(codec: Codec, size: Size, got: Shape | np.ndarray, want: Shape | np.ndarray) -> None:
    bx, by = codec.bound(size).pixels(size)
    g = np.asarray(got.coords if isinstance(got, Shape) else got, dtype=np.float64).reshape(-1, 2)
    e = np.asarray(want.coords if isinstance(want, Shape) else want, dtype=np.float64).reshape(-1, 2)
    assert g.shape == e.shape
    err = np.abs(g - e)
    assert (err[:, 0] <= bx + EPS).all() and (err[:, 1] <= by + EPS).all(), (got, want, (bx, by))


CODECS = pytest.mark.parametrize("codec", [get_codec(name) for name in sorted(SCHEMES)], ids=lambda c: c.name)
BOX_CODECS = pytest.mark.parametrize(
    "codec",
    [c for c in (get_codec(name) for name in sorted(SCHEMES)) if "box" in c.kinds],
    ids=lambda c: c.name,
)


@CODECS
@SETTINGS
@given(data=st.data(), size=SIZES)
@example(data=None, size=(1, 1))
@example(data=None, size=(480, 640))
def test_decode_encode_within_bound(codec: Codec, data: st.DataObject | None, size: Size) -> None:
    assume(usable(codec, size))
    if data is None:  # the explicit examples: full-image box (far corner point) on 1×1 and a portrait image
        whole = Shape.box(0, 0, size[0], size[1]) if "box" in codec.kinds else Shape.point(*size)
        gs = [Grounding("dog", (whole,))]
    else:
        gs = data.draw(groundings(size, codec.kinds))
    text = codec.encode(gs, size)
    decoded = codec.decode(text, size)
    assert decoded.errors == []
    # in the order the scheme writes each phrase's shapes (molmo sorts them)
    want = [g.shapes[k] for g in gs for k in codec.shape_order(g.shapes, size)]
    got = decoded.shapes()
    assert [s.kind for s in got] == [s.kind for s in want]
    for g_shape, w_shape in zip(got, want, strict=True):
        assert_within(codec, size, g_shape, w_shape)
    assert codec.encode(decoded.groundings, size) == text


@BOX_CODECS
@SETTINGS
@given(data=st.data())
def test_batch_equals_single(codec: Codec, data: st.DataObject) -> None:
    n = data.draw(st.integers(1, 6))
    sizes = [data.draw(SIZES.filter(lambda s: usable(codec, s))) for _ in range(n)]
    boxes = [data.draw(box(s)).coords for s in sizes]
    labels = [data.draw(LABELS) for _ in range(n)]
    with_labels = codec.encode_boxes(boxes, sizes, labels)
    assert with_labels == [
        codec.encode_box(b, s, lab) for b, s, lab in zip(boxes, sizes, labels, strict=True)
    ]
    plain = codec.encode_boxes(boxes, sizes)
    assert plain == [codec.encode_box(b, s) for b, s in zip(boxes, sizes, strict=True)]
    back = codec.decode_boxes(plain, sizes)
    single = np.asarray([codec.decode(t, s).shapes()[0].coords for t, s in zip(plain, sizes, strict=True)])
    np.testing.assert_array_equal(back, single)
    for row, b, s in zip(back, boxes, sizes, strict=True):
        assert_within(codec, s, row, np.asarray(b))


@BOX_CODECS
def test_decode_boxes_marks_unreadable_rows(codec: Codec) -> None:
    texts = ["no spatial tokens at all", codec.encode_box((10, 20, 30, 40), (100, 100))]
    out = codec.decode_boxes(texts, [(100, 100), (100, 100)])
    assert np.isnan(out[0]).all()
    assert_within(codec, (100, 100), out[1], np.asarray([10.0, 20, 30, 40]))
