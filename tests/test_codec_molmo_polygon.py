"""molmo (points, percent with one decimal, sorted by x) and Florence-2 polygons in ``loc``.

Expected strings worked out by hand: molmo writes ``round(x·100/W, 1)`` with Python's rounding of the exact
float (olmo/data/data_formatter.py ``points_to_text``); ``loc`` polygons are ``floor(v·1000)`` per vertex
inside
``<poly>…</poly>``, rings joined by ``<sep>`` (transformers' Florence-2 post-processor reads them).
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from gtok_cli.cli import app
from gtok_cli.codecs import Grounding, Shape, get_codec
from gtok_cli.errors import InputError

S = (640, 480)
MOLMO = get_codec("molmo")
LOC = get_codec("loc")

POINT_ROWS = [
    # the dog box's centre (275, 225): 275·100/640 = 42.96875 → 43.0, 225·100/480 = 46.875 → 46.9
    (S, (275, 225), "dog", '<point x="43.0" y="46.9" alt="dog">dog</point>'),
    (S, (640, 480), None, '<point x="100.0" y="100.0" alt=""></point>'),  # right/bottom edge
    ((1, 1), (0, 0), "a", '<point x="0.0" y="0.0" alt="a">a</point>'),  # 1×1 image
    # on a cell border: 49·100/400 = 12.25 exactly, a tie → 12.2 (Python rounds ties to even);
    # 7·100/2000 = 0.35 is the float 0.34999…, → 0.3 (half-up on the decimal would say 0.4)
    ((400, 2000), (49, 7), "x", '<point x="12.2" y="0.3" alt="x">x</point>'),
]


@pytest.mark.parametrize(("size", "xy", "label", "text"), POINT_ROWS)
def test_molmo_point_table(
    size: tuple[int, int], xy: tuple[float, float], label: str | None, text: str
) -> None:
    assert MOLMO.encode([Grounding(label, (Shape.point(*xy),))], size) == text
    dec = MOLMO.decode(f"Here {text}.", size)
    assert dec.errors == [] and dec.groundings[0].label == label


def test_molmo_several_points_sorted_by_x() -> None:
    g = [Grounding("cats", (Shape.point(600, 10), Shape.point(20, 470), Shape.point(20, 10)))]
    # (93.75, 2.083) → 93.8, 2.1; (3.125, 97.92) → 3.1, 97.9; (3.125, 2.083) → 3.1, 2.1; sorted by x then y
    text = '<points x1="3.1" y1="2.1" x2="3.1" y2="97.9" x3="93.8" y3="2.1" alt="cats">cats</points>'
    assert MOLMO.encode(g, S) == text
    assert MOLMO.shape_order(g[0].shapes, S) == [2, 1, 0]
    dec = MOLMO.decode(text, S)
    got = [v for shape in dec.shapes() for v in shape.coords]
    assert got == pytest.approx([19.84, 10.08, 19.84, 469.92, 600.32, 10.08])  # q/1000 · (640, 480)


def test_molmo_refuses_a_box_and_the_cli_turns_it_into_its_centre() -> None:
    with pytest.raises(InputError, match="--box-as center"):
        MOLMO.encode_box((150, 100, 400, 350), S, "dog")
    runner = CliRunner()
    refused = runner.invoke(app, ["encode", "-s", "molmo", "--size", "640x480", "150,100,400,350"])
    assert refused.exit_code == 2 and "--box-as center" in refused.stderr
    ok = runner.invoke(
        app,
        [
            "encode",
            "-s",
            "molmo",
            "--size",
            "640x480",
            "--label",
            "dog",
            "--box-as",
            "center",
            "150,100,400,350",
        ],
    )
    assert ok.exit_code == 0 and ok.stdout == '<point x="43.0" y="46.9" alt="dog">dog</point>\n'


MOLMO_ERRORS = [
    ('<point x="43" y="46.9" alt="dog">dog</point>', "one decimal"),
    ('<point x="143.0" y="46.9" alt="dog">dog</point>', "0.0..100.0"),
    ('<point x="1.0" alt="d">d</point>', "needs"),
    ('<points x1="1.0" y1="2.0" x3="4.0" y3="5.0" alt="d">d</points>', "needs"),
    ('<point x="1.0" y="2.0" alt="d">d', "without its closing tag"),
    ("<point x=1.0 y=2.0>d</point>", 'name="value"'),
]


@pytest.mark.parametrize(("text", "message"), MOLMO_ERRORS)
def test_molmo_reports_malformed(text: str, message: str) -> None:
    dec = MOLMO.decode(text, S)
    assert dec.groundings == [] and len(dec.errors) == 1 and message in dec.errors[0].message


# ---- loc polygons ----------------------------------------------------------------------------------------
TRIANGLE = [100, 100, 200, 100, 150, 200]  # floor(v·1000): 156 208, 312 208, 234 416
SQUARE = [300, 300, 400, 300, 400, 400, 300, 400]  # 468 625, 625 625, 625 833, 468 833


def test_loc_polygon_worked_example() -> None:
    text = LOC.encode([Grounding("dog", (Shape.polygon([TRIANGLE, SQUARE]),))], S)
    assert text == (
        "dog<poly><loc_156><loc_208><loc_312><loc_208><loc_234><loc_416><sep>"
        "<loc_468><loc_625><loc_625><loc_625><loc_625><loc_833><loc_468><loc_833></poly>"
    )
    dec = LOC.decode(f"It is the {text}.", S)
    assert dec.errors == [] and dec.groundings[0].label == "It is the dog"
    [shape] = dec.shapes()
    assert shape.kind == "polygon" and shape.parts == (3, 4)
    assert shape.rings()[0] == pytest.approx([100.16, 100.08, 200.0, 100.08, 150.08, 199.92])  # (q + .5)/1000


def test_loc_phrase_with_boxes_and_polygons_and_edges() -> None:
    g = [
        Grounding("dogs", (Shape.box(150, 100, 400, 350), Shape.polygon([[0, 0, 640, 0, 640, 480]]))),
        Grounding("cat", (Shape.polygon([TRIANGLE]), Shape.polygon([SQUARE]))),
    ]
    text = LOC.encode(g, S)
    # the full-image triangle touches the right/bottom edge: v = 1 clamps to 999
    assert "<poly><loc_0><loc_0><loc_999><loc_0><loc_999><loc_999></poly>cat<poly>" in text
    dec = LOC.decode(text, S)
    assert [(x.label, [s.kind for s in x.shapes]) for x in dec.groundings] == [
        ("dogs", ["box", "polygon"]),
        ("cat", ["polygon", "polygon"]),
    ]
    assert LOC.encode(dec.groundings, S) == text


LOC_ERRORS = [
    ("dog<poly><loc_1><loc_2><loc_3><loc_4></poly>", "not 3 or more"),
    ("dog<poly><loc_1><loc_2><loc_3><loc_4><loc_5><loc_6>", "unclosed <poly>"),
    ("dog<poly><loc_1><loc_2><loc_3><loc_4><loc_5></poly>", "not 3 or more"),
    ("dog<poly><loc_1><loc_2><loc_3><loc_4><loc_5><loc_1000></poly>", "out of range"),
    ("dog<poly><loc_1><loc_2>x<loc_3><loc_4><loc_5><loc_6></poly>", "expected <loc_x><loc_y> pairs"),
    ("a dog</poly>", "outside <poly>"),
]


@pytest.mark.parametrize(("text", "message"), LOC_ERRORS)
def test_loc_polygon_reports_malformed(text: str, message: str) -> None:
    dec = LOC.decode(text, S)
    assert dec.groundings == [] and len(dec.errors) == 1 and message in dec.errors[0].message


def test_loc_polygon_refuses_a_ring_of_two_vertices() -> None:
    with pytest.raises(InputError):
        LOC.encode([Grounding("x", (Shape.polygon([[0, 0, 10, 10]]),))], S)


@st.composite
def polygon_case(draw: st.DrawFn) -> tuple[tuple[int, int], list[list[float]]]:
    w, h = draw(st.integers(1, 4000)), draw(st.integers(1, 4000))
    coord = st.one_of(st.integers(0, 1), st.floats(0, 1, allow_nan=False))
    rings = [
        [float(draw(coord)) * (w if k % 2 == 0 else h) for k in range(2 * draw(st.integers(3, 8)))]
        for _ in range(draw(st.integers(1, 3)))
    ]
    return (w, h), rings


@settings(max_examples=100, deadline=None)
@given(case=polygon_case())
def test_loc_polygon_round_trip_within_bound(case: tuple[tuple[int, int], list[list[float]]]) -> None:
    size, rings = case
    g = [Grounding("thing", (Shape.polygon(rings),))]
    text = LOC.encode(g, size)
    dec = LOC.decode(text, size)
    assert dec.errors == []
    [shape] = dec.shapes()
    assert [len(r) for r in shape.rings()] == [len(r) for r in rings]
    bx, by = LOC.bound(size).pixels(size)
    flat = [v for r in rings for v in r]
    for k, (a, b) in enumerate(zip(flat, shape.coords, strict=True)):
        assert abs(a - b) <= (bx if k % 2 == 0 else by) + 1e-9
    assert LOC.encode(dec.groundings, size) == text


def test_gtok_decode_prints_polygon_rings() -> None:
    text = "dog<poly><loc_156><loc_208><loc_312><loc_208><loc_234><loc_416></poly>"
    result = CliRunner().invoke(app, ["decode", "-s", "loc", "--size", "640x480", text])
    assert result.exit_code == 0, result.output
    [region] = json.loads(result.stdout)["regions"]
    assert region["label"] == "dog"
    assert region["polygon"] == [pytest.approx([100.16, 100.08, 200.0, 100.08, 150.08, 199.92])]
