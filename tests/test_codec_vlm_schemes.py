"""Table tests of the schemes of today's grounding models: internvl, deepseek-vl2, gemini, cogvlm, minigpt-v2.

Every expected string is worked out by hand from each model's convention (see each codec's docstring for the
file it comes from); the worked example is docs/spec.md#schemes' 640×480 dog box [150, 100, 400, 350]:
v = 150/640 = .234375, 100/480 = .2083…, 400/640 = .625, 350/480 = .7291….
"""

from __future__ import annotations

import pytest

from gtok_cli.codecs import Grounding, Shape, get_codec
from gtok_cli.errors import InputError

S = (640, 480)
DOG = (150, 100, 400, 350)

# (scheme, size, box, label, text)
ENCODE_ROWS = [
    # internvl: round_half_even(v·1000): 234.375 → 234, 208.3 → 208, 625, 729.2 → 729
    ("internvl", S, DOG, "dog", "<ref>dog</ref><box>[[234, 208, 625, 729]]</box>"),
    ("internvl", S, (0, 0, 640, 480), None, "<box>[[0, 0, 1000, 1000]]</box>"),  # right/bottom edge = 1000
    ("internvl", (1, 1), (0, 0, 1, 1), None, "<box>[[0, 0, 1000, 1000]]</box>"),
    # ties: 1·1000/2000 = 0.5 → 0 and 3·1000/2000 = 1.5 → 2 (half to even)
    ("internvl", (2000, 2000), (1, 1, 3, 3), None, "<box>[[0, 0, 2, 2]]</box>"),
    # deepseek-vl2: round_half_even(v·999): 234.14 → 234, 208.125 → 208, 624.375 → 624, 728.44 → 728
    ("deepseek-vl2", S, DOG, "dog", "<|ref|>dog<|/ref|><|det|>[[234, 208, 624, 728]]<|/det|>"),
    ("deepseek-vl2", S, (0, 0, 640, 480), None, "<|det|>[[0, 0, 999, 999]]<|/det|>"),
    ("deepseek-vl2", (1998, 1998), (1, 1, 3, 3), None, "<|det|>[[0, 0, 2, 2]]<|/det|>"),  # 0.5, 1.5
    # gemini: y first, round_half_even(v·1000)
    ("gemini", S, DOG, "dog", '[{"box_2d": [208, 234, 729, 625], "label": "dog"}]'),
    ("gemini", S, (0, 0, 640, 480), None, '[{"box_2d": [0, 0, 1000, 1000], "label": ""}]'),
    # portrait 480×640: y1 156.25 → 156, x1 312.5 → 312 (tie, to even), y2 546.875 → 547, x2 833.3 → 833
    ("gemini", (480, 640), DOG, "dog", '[{"box_2d": [156, 312, 547, 833], "label": "dog"}]'),
    # cogvlm: floor(v·1000) in 0..999, three digits
    ("cogvlm", S, DOG, None, "[[234,208,625,729]]"),
    ("cogvlm", S, (0, 0, 640, 480), None, "[[000,000,999,999]]"),  # v = 1 clamps to 999
    ("cogvlm", S, (64, 48, 576, 432), None, "[[100,100,900,900]]"),  # exactly on bin edges
    ("cogvlm", (1, 1), (0, 0, 1, 1), None, "[[000,000,999,999]]"),
    # minigpt-v2: int(v·100) in 0..100: 23.4 → 23, 20.8 → 20, 62.5 → 62, 72.9 → 72
    ("minigpt-v2", S, DOG, "a dog", "<p>a dog</p> {<23><20><62><72>}"),
    ("minigpt-v2", S, (0, 0, 640, 480), None, "{<0><0><100><100>}"),
    ("minigpt-v2", (1, 1), (0, 0, 1, 1), None, "{<0><0><100><100>}"),
    # 29·100/100 = 29 exactly (MiniGPT-v2's own 29 / 100 * 100 = 28.999… would truncate to 28)
    ("minigpt-v2", (100, 100), (29, 29, 50, 50), None, "{<29><29><50><50>}"),
]


@pytest.mark.parametrize(("scheme", "size", "box", "label", "text"), ENCODE_ROWS)
def test_encode_table(
    scheme: str, size: tuple[int, int], box: tuple[float, ...], label: str | None, text: str
) -> None:
    codec = get_codec(scheme)
    assert codec.encode_box(box, size, label) == text
    assert codec.encode_boxes([box], [size], [label]) == [text]
    dec = codec.decode(f"Sure. {text} Done.", size)
    assert dec.errors == []
    assert [len(g.shapes) for g in dec.groundings] == [1]
    if codec.carries_label:
        assert dec.groundings[0].label == label


# decoded worked example, by hand: q/scale·extent, or the bin centre (q + .5)/scale·extent for floor schemes
DECODED = [
    ("internvl", (149.76, 99.84, 400.0, 349.92)),  # 234/1000·640, 208/1000·480, …
    ("deepseek-vl2", (234 / 999 * 640, 208 / 999 * 480, 624 / 999 * 640, 728 / 999 * 480)),
    ("gemini", (149.76, 99.84, 400.0, 349.92)),
    ("cogvlm", (150.08, 100.08, 400.32, 350.16)),  # 234.5/1000·640, …
    ("minigpt-v2", (150.4, 98.4, 400.0, 348.0)),  # 23.5/100·640, 20.5/100·480, 62.5/100·640, 72.5/100·480
]


@pytest.mark.parametrize(("scheme", "coords"), DECODED)
def test_worked_example_decodes(scheme: str, coords: tuple[float, ...]) -> None:
    codec = get_codec(scheme)
    text = codec.encode_box(DOG, S, "dog")
    assert codec.decode(text, S).shapes()[0].coords == pytest.approx(coords)
    assert codec.decode_boxes([text], [S])[0].tolist() == pytest.approx(coords)


SEVERAL = [
    ("internvl", "<ref>dogs</ref><box>[[234, 208, 625, 729], [0, 0, 1000, 1000]]</box>"),
    ("deepseek-vl2", "<|ref|>dogs<|/ref|><|det|>[[234, 208, 624, 728], [0, 0, 999, 999]]<|/det|>"),
    (
        "gemini",
        '[{"box_2d": [208, 234, 729, 625], "label": "dogs"}, '
        '{"box_2d": [0, 0, 1000, 1000], "label": "dogs"}]',
    ),
    ("cogvlm", "[[234,208,625,729;000,000,999,999]]"),
    ("minigpt-v2", "<p>dogs</p> {<23><20><62><72>}<delim>{<0><0><100><100>}"),
]


@pytest.mark.parametrize(("scheme", "text"), SEVERAL)
def test_several_boxes_of_one_phrase(scheme: str, text: str) -> None:
    codec = get_codec(scheme)
    g = [Grounding("dogs", (Shape.box(*DOG), Shape.box(0, 0, 640, 480)))]
    assert codec.encode(g, S) == text
    dec = codec.decode(text, S)
    assert dec.errors == [] and len(dec.shapes()) == 2


def test_points_where_the_format_has_them() -> None:
    assert get_codec("gemini").encode([Grounding("nose", (Shape.point(320, 240),))], S) == (
        '[{"point": [500, 500], "label": "nose"}]'  # [y, x]
    )
    assert get_codec("cogvlm").encode([Grounding(None, (Shape.point(64, 48),))], S) == "[[100,100]]"
    mixed = get_codec("cogvlm").encode([Grounding(None, (Shape.box(*DOG), Shape.point(64, 48)))], S)
    assert mixed == "[[234,208,625,729]] [[100,100]]"  # boxes and points never share a span
    for scheme in ("internvl", "deepseek-vl2", "minigpt-v2"):
        with pytest.raises(InputError):
            get_codec(scheme).encode([Grounding(None, (Shape.point(1, 1),))], S)


def test_gemini_reads_the_fenced_answer() -> None:
    text = 'Here:\n```json\n[\n  {"box_2d": [208, 234, 729, 625], "label": "dog"}\n]\n```\n'
    dec = get_codec("gemini").decode(text, S)
    assert dec.errors == [] and dec.groundings[0].label == "dog"
    assert dec.shapes()[0].coords == pytest.approx((149.76, 99.84, 400.0, 349.92))


# malformed spans: reported with their text, never guessed
DECODE_ERRORS = [
    ("internvl", "<ref>dog</ref><box>[[234, 208, 625]]</box>", "is not [x1, y1, x2, y2]"),
    ("internvl", "<box>[[1001, 0, 5, 5]]</box>", "out of range"),
    ("internvl", "<box>[[625, 208, 234, 729]]</box>", "inverted"),
    ("internvl", "<box>[[1.5, 2, 3, 4]]</box>", "is not [x1, y1, x2, y2]"),
    ("internvl", "<box>(234,208),(625,729)</box>", "expected [[x1, y1, x2, y2]"),
    ("internvl", "<box>[[234, 208, 625, 729]]", "unclosed"),
    ("deepseek-vl2", "<|det|>[[1000, 0, 5, 5]]<|/det|>", "out of range"),  # 999 is the top
    ("gemini", '[{"box_2d": [208, 234, 729], "label": "dog"}]', "list of 4 integers"),
    ("gemini", '[{"box_2d": [729, 234, 208, 625], "label": "dog"}]', "inverted"),
    ("gemini", '[{"box_2d": [0, 0, 1001, 5], "label": "dog"}]', "out of range"),
    ("gemini", '[{"point": [1.5, 2], "label": "x"}]', "list of 2 integers"),
    ("gemini", '[{"point": [1, 2], "box_2d": [1, 2, 3, 4]}]', "exactly one"),
    ("gemini", '[{"box_2d": [1, 2, 3, 4], "label": "dog"}', "malformed JSON"),
    ("cogvlm", "[[86,540,400,760]]", "three digits"),
    ("cogvlm", "[[086,540,400]]", "expected x,y"),
    ("cogvlm", "[[400,540,086,760]]", "inverted"),
    ("cogvlm", "[[086,540,400,760;001,002]]", "expected x,y"),
    ("minigpt-v2", "<p>dog</p> {<23><20><62>}", "expected {<x1>"),
    ("minigpt-v2", "{<123><20><62><72>}", "out of range"),
    ("minigpt-v2", "{<62><20><23><72>}", "inverted"),
    ("minigpt-v2", "<p>dog</p> {<1><2><3><4>}<delim>{<5><6>}", "expected {<x1>"),
]


@pytest.mark.parametrize(("scheme", "text", "message"), DECODE_ERRORS)
def test_decode_reports_malformed(scheme: str, text: str, message: str) -> None:
    codec = get_codec(scheme)
    dec = codec.decode(f"The answer: {text} ok", S)
    assert dec.groundings == []
    assert len(dec.errors) == 1 and message in dec.errors[0].message, dec.errors
    assert all(v != v for v in codec.decode_boxes([text], [S])[0])  # NaN row


def test_prose_in_brackets_is_not_a_span() -> None:
    assert get_codec("cogvlm").decode("see [[the dog]] and [[note]]", S).errors == []
    assert get_codec("gemini").decode('the list [{"name": "x"}] is not ours', S).groundings == []
    assert get_codec("minigpt-v2").decode("a set {a, b} and {}", S).errors == []


@pytest.mark.parametrize(
    ("scheme", "params"),
    [
        ("internvl", {"scale": 1000, "rounding": "half_even"}),
        ("deepseek-vl2", {"scale": 999, "rounding": "half_even"}),
        ("gemini", {"scale": 1000, "rounding": "half_even"}),
        ("cogvlm", {"scale": 1000, "rounding": "floor"}),
        ("minigpt-v2", {"scale": 100, "rounding": "floor"}),
        ("molmo", {"precision": 1, "rounding": "python_format"}),
    ],
)
def test_params_pinned(scheme: str, params: dict[str, object]) -> None:
    from gtok_cli.codecs import codec_from_params
    from gtok_cli.errors import UsageError

    codec = get_codec(scheme)
    assert codec.params() == params
    assert codec_from_params(codec.describe()).params() == params
    with pytest.raises(UsageError):
        get_codec(scheme, rounding="half_up")


@pytest.mark.parametrize(
    ("scheme", "bound_px"),
    [
        ("internvl", (0.32, 0.24)),  # 0.5/1000 · (640, 480)
        ("deepseek-vl2", (0.5 / 999 * 640, 0.5 / 999 * 480)),
        ("gemini", (0.32, 0.24)),
        ("cogvlm", (0.32, 0.24)),
        ("minigpt-v2", (3.2, 2.4)),  # 0.5/100
        ("molmo", (0.32, 0.24)),  # 0.05 % of the side
    ],
)
def test_bounds(scheme: str, bound_px: tuple[float, float]) -> None:
    assert get_codec(scheme).bound(S).pixels(S) == pytest.approx(bound_px)


def test_vocab() -> None:
    assert get_codec("internvl").vocab() == ["<ref>", "</ref>", "<box>", "</box>"]
    assert get_codec("deepseek-vl2").vocab() == ["<|ref|>", "<|/ref|>", "<|det|>", "<|/det|>"]
    for scheme in ("gemini", "cogvlm", "minigpt-v2", "molmo"):
        assert get_codec(scheme).vocab() == []  # plain text for their tokenizers
