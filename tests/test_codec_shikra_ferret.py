"""Table tests for the Shikra and Ferret codecs, every expected value worked out by hand.

Shikra, 640×480: square side 640, y shifted by (640 − 480)//2 = 80. 150/640 = 0.234375 → 0.234;
180/640 = 0.28125 (exact in binary: a true tie, Python keeps the even 0.281); 400/640 = 0.625;
430/640 = 0.671875 → 0.672. A point at (8, 8): 8/640 = 0.0125 and 88/640 = 0.1375 are *not* exact in binary
and lie just above the tie (0.01250000000000000069…, 0.13750000000000000555…), so Python writes 0.013, 0.138
where rint(v·1000) would give 12.
Ferret, 640×480: int(150·1000/640) = 234, int(100·1000/480) = 208, 625, int(729.16) = 729; the right edge
640 clamps to pixel 639: 639·1000/640 = 998.4 → 998, 479·1000/480 = 997.9 → 997.
"""

from __future__ import annotations

import random

import pytest

from gtok_cli.codecs import Grounding, Shape, get_codec
from gtok_cli.quantize import round_decimals

DOG = [150, 100, 400, 350]

SHIKRA_ROWS = [
    ((640, 480), DOG, "[0.234,0.281,0.625,0.672]"),
    ((640, 480), [0, 0, 640, 480], "[0.000,0.125,1.000,0.875]"),  # touches every edge; padding above/below
    ((640, 480), [320, 240, 320, 240], "[0.500,0.500,0.500,0.500]"),  # zero width
    # portrait 480×640: x shifted by 80. 230/640 = 0.359375 → 0.359; 100/640 = 0.15625 (exact tie) → 0.156;
    # 480/640 = 0.75; 350/640 = 0.546875 → 0.547
    ((480, 640), DOG, "[0.359,0.156,0.750,0.547]"),
    ((1, 1), [0, 0, 1, 1], "[0.000,0.000,1.000,1.000]"),
    ((1000, 1000), [1, 999, 500, 1000], "[0.001,0.999,0.500,1.000]"),  # exact thousandths
]

FERRET_ROWS = [
    ((640, 480), DOG, "[234, 208, 625, 729]"),
    ((640, 480), [0, 0, 640, 480], "[0, 0, 998, 997]"),
    ((640, 480), [320, 240, 320, 240], "[500, 500, 500, 500]"),
    ((1000, 2000), [1, 2, 999, 1998], "[1, 1, 999, 999]"),  # exact bin boundaries
    ((3, 3), [1, 1, 2, 2], "[333, 333, 666, 666]"),  # 333.3 and 666.7 truncate
    ((480, 640), DOG, "[312, 156, 833, 546]"),  # portrait: 312.5, 156.25, 833.3, 546.875 truncate
    ((1, 1), [0, 0, 1, 1], "[0, 0, 0, 0]"),  # everything clamps to pixel 0
]


@pytest.mark.parametrize(("size", "box", "text"), SHIKRA_ROWS)
def test_shikra_table(size: tuple[int, int], box: list[float], text: str) -> None:
    assert get_codec("shikra").encode_box(box, size, "a dog") == text  # the label is not written


@pytest.mark.parametrize(("size", "box", "text"), FERRET_ROWS)
def test_ferret_table(size: tuple[int, int], box: list[float], text: str) -> None:
    codec = get_codec("ferret")
    assert codec.encode_box(box, size) == text
    assert codec.encode_box(box, size, "a dog") == "a dog " + text


def test_shikra_python_format_rounding_of_points() -> None:
    codec = get_codec("shikra")
    assert codec.encode([Grounding(None, (Shape.point(8, 8),))], (640, 480)) == "[0.013,0.138]"


def test_round_decimals_is_pythons_round() -> None:
    rng = random.Random(7)
    values = [rng.random() for _ in range(20000)] + [k / 2000 for k in range(2001)] + [0.0125, 0.0625]
    got = round_decimals(values, 3).tolist()
    assert got == [round(round(v, 3) * 1000) for v in values]
    assert [f"{v:.3f}" for v in values] == [f"{q // 1000}.{q % 1000:03d}" for q in got]


def test_shikra_several_boxes_share_a_bracket() -> None:
    codec = get_codec("shikra")
    gs = [
        Grounding("dogs", (Shape.box(*DOG), Shape.box(0, 0, 640, 480))),
        Grounding("nose", (Shape.point(8, 8),)),
    ]
    text = codec.encode(gs, (640, 480))
    assert text == "[0.234,0.281,0.625,0.672;0.000,0.125,1.000,0.875] [0.013,0.138]"
    d = codec.decode(f"The dogs{text[:49]} and a nose {text[50:]}.", (640, 480))
    assert d.errors == []
    assert [[s.kind for s in g.shapes] for g in d.groundings] == [["box", "box"], ["point"]]
    # back to original pixels: 0.281·640 − 80 = 99.84, 0.672·640 − 80 = 350.08
    assert d.groundings[0].shapes[0].coords == pytest.approx((149.76, 99.84, 400.0, 350.08))


def test_ferret_labels_from_prose() -> None:
    codec = get_codec("ferret")
    gs = [
        Grounding("a dog", (Shape.box(*DOG), Shape.box(0, 0, 64, 48))),
        Grounding("a nose", (Shape.point(320, 240),)),
    ]
    text = codec.encode(gs, (640, 480))
    assert text == "a dog [234, 208, 625, 729], [0, 0, 100, 100], a nose [500, 500]"
    d = codec.decode(text, (640, 480))
    assert [(g.label, len(g.shapes)) for g in d.groundings] == [("a dog", 2), ("a nose", 1)]
    # bin centres: (234.5 · 640 / 1000, 208.5 · 480 / 1000, …)
    assert d.groundings[0].shapes[0].coords == pytest.approx((150.08, 100.08, 400.32, 350.16))
    assert codec.encode(d.groundings, (640, 480)) == text


@pytest.mark.parametrize(
    ("scheme", "text", "message"),
    [
        ("shikra", "box [0.1,0.2,0.3]", "expected x,y or x1,y1,x2,y2"),
        ("shikra", "box [0.1,0.2,1.3,0.4]", "out of range"),
        ("shikra", "box [0.5,0.2,0.3,0.4]", "inverted"),
        ("shikra", "box [0.1,0.2;0.1,0.2,0.3,0.4]", "expected x,y or x1,y1,x2,y2"),
        ("ferret", "a dog [1, 2, 3]", "expected [x, y] or [x1, y1, x2, y2]"),
        ("ferret", "a dog [1, 2, 3, 1001]", "out of range"),
        ("ferret", "a dog [1.5, 2, 3, 4]", "integers"),
    ],
)
def test_malformed_spans_are_reported(scheme: str, text: str, message: str) -> None:
    d = get_codec(scheme).decode(text, (640, 480))
    assert d.groundings == []
    assert len(d.errors) == 1 and message in d.errors[0].message


@pytest.mark.parametrize("scheme", ["shikra", "ferret"])
def test_prose_brackets_are_not_spans(scheme: str) -> None:
    d = get_codec(scheme).decode("see [1] and [the dog] or [a, b]", (640, 480))
    assert d.groundings == [] and d.errors == []


def test_bounds_per_axis() -> None:
    # shikra: half a thousandth of the square side, over each extent
    b = get_codec("shikra").bound((640, 480))
    assert (b.norm_x, b.norm_y) == pytest.approx((0.0005, 0.0005 * 640 / 480))
    f = get_codec("ferret").bound((640, 480))
    assert (f.norm_x, f.norm_y) == pytest.approx((0.0005 + 1 / 640, 0.0005 + 1 / 480))
