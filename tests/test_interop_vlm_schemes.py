"""Our text of the newer schemes, read by the models' own parsers, gives our geometry back within our bound.

- supervision's ``from_deepseek_vl_2`` on ``deepseek-vl2``, ``from_google_gemini_2_0`` / ``_2_5`` on
  ``gemini``
  (the answer in its ```json fence, as Gemini writes it);
- transformers' ``Florence2PostProcessor`` (``description_with_polygons``) on ``loc`` polygons;
- the regular expressions of the models' own repositories, re-typed here (they are not importable packages):
  InternVL ``internvl_chat/eval/refcoco/evaluate_grounding.py`` (``PATTERN``, ``/ 1000 * W``);
  CogVLM ``utils/utils/grounding_parser.py`` (``\\[\\[(.*?)\\]\\]``, ``boxstr_to_boxes``: ``int(y)/1000``);
  MiniGPT-v2 ``eval_scripts/eval_ref.py`` (``\\{<\\d{1,3}>…\\}``, ``\\d+``, ``/ 100 * W``) and ``demo_v2.py``
  (``<p>(.*?)\\}(?!<)``, split on ``</p>`` and ``<delim>``); Molmo ``olmo/util.py`` ``extract_points``
  (``x\\d*="…"\\s+y\\d*="…"``, ``/ 100 * (W, H)``).

Documented convention differences, undone before comparing: CogVLM's and MiniGPT-v2's parsers read a value
as the lower edge of its bin (``q/1000``, ``q/100``) where we decode the bin centre, so half a bin is added
to theirs; supervision returns float32 boxes and Florence-2 truncates polygon pixels to int (slack 1e-3 px and
1 px).
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gtok_cli.codecs import Codec, Grounding, Shape, get_codec

pytestmark = pytest.mark.interop
EPS = 1e-6
F32 = 1e-3  # supervision's float32 boxes


@st.composite
def size_and_box(draw: st.DrawFn) -> tuple[tuple[int, int], list[float]]:
    w, h = draw(st.integers(20, 3000)), draw(st.integers(20, 3000))
    xs = sorted(draw(st.floats(0, w, allow_nan=False)) for _ in range(2))
    ys = sorted(draw(st.floats(0, h, allow_nan=False)) for _ in range(2))
    return (w, h), [xs[0], ys[0], xs[1], ys[1]]


def assert_close(
    codec: Codec, size: tuple[int, int], theirs: object, want: list[float], slack: float = 0
) -> None:
    bx, by = codec.bound(size).pixels(size)
    err = np.abs(np.asarray(theirs, dtype=np.float64).ravel() - np.asarray(want, dtype=np.float64))
    assert (err[0::2] <= bx + slack + EPS).all() and (err[1::2] <= by + slack + EPS).all(), (theirs, want)


@settings(max_examples=40, deadline=None)
@given(sb=size_and_box())
def test_deepseek_vl2_supervision(sb: tuple[tuple[int, int], list[float]]) -> None:
    vlm = pytest.importorskip("supervision.detection.vlm")
    size, box = sb
    codec = get_codec("deepseek-vl2")
    text = codec.encode_box(box, size, "a dog") + "<｜end▁of▁sentence｜>"
    xyxy, _ids, names = vlm.from_deepseek_vl_2(text, resolution_wh=size)
    assert list(names) == ["a dog"]
    assert_close(codec, size, xyxy[0], box, F32)


@pytest.mark.parametrize("parser", ["from_google_gemini_2_0", "from_google_gemini_2_5"])
@settings(max_examples=30, deadline=None)
@given(sb=size_and_box())
def test_gemini_supervision(parser: str, sb: tuple[tuple[int, int], list[float]]) -> None:
    vlm = pytest.importorskip("supervision.detection.vlm")
    size, box = sb
    codec = get_codec("gemini")
    g = [Grounding("dog", (Shape.box(*box),)), Grounding("cat", (Shape.box(0, 0, size[0], size[1]),))]
    text = "```json\n" + codec.encode(g, size) + "\n```"
    xyxy, _ids, names = getattr(vlm, parser)(text, resolution_wh=size)[:3]
    assert list(names) == ["dog", "cat"]
    assert_close(codec, size, xyxy[0], box, F32)
    assert_close(codec, size, xyxy[1], [0, 0, size[0], size[1]], F32)


INTERNVL_PATTERN = re.compile(r"\[*\[(.*?),(.*?),(.*?),(.*?)\]\]*")  # evaluate_grounding.py


@settings(max_examples=40, deadline=None)
@given(sb=size_and_box())
def test_internvl_eval_pattern(sb: tuple[tuple[int, int], list[float]]) -> None:
    size, box = sb
    codec = get_codec("internvl")
    answer = codec.encode_box(box, size, "the dog")
    found = INTERNVL_PATTERN.findall(answer)
    w, h = size
    theirs = [float(found[0][k]) / 1000 * (w if k % 2 == 0 else h) for k in range(4)]
    assert_close(codec, size, theirs, box)


def cogvlm_boxes(response: str) -> list[list[list[int]]]:
    """grounding_parser.py: ``re.findall(r"\\[\\[(.*?)\\]\\]")``, split on ';' then ',' (digit groups
    only)."""
    positions = re.findall(r"\[\[(.*?)\]\]", response)
    return [
        [[int(y) for y in x.split(",")] for x in pos.split(";") if x.replace(",", "").isdigit()]
        for pos in positions
    ]


@settings(max_examples=40, deadline=None)
@given(sb=size_and_box())
def test_cogvlm_grounding_parser(sb: tuple[tuple[int, int], list[float]]) -> None:
    size, box = sb
    codec = get_codec("cogvlm")
    w, h = size
    g = [Grounding(None, (Shape.box(*box), Shape.box(0, 0, w, h)))]
    [[first, whole]] = cogvlm_boxes("A dog" + codec.encode(g, size) + " on grass.")
    for theirs, want in ((first, box), (whole, [0, 0, w, h])):
        centre = [
            (q + 0.5) / 1000 * (w if k % 2 == 0 else h) for k, q in enumerate(theirs)
        ]  # their q/1000 + ½ bin
        assert_close(codec, size, np.minimum(centre, [w, h, w, h]), want)


MINIGPT_EVAL = r"\{<\d{1,3}><\d{1,3}><\d{1,3}><\d{1,3}>\}"  # eval_ref.py


@settings(max_examples=40, deadline=None)
@given(sb=size_and_box())
def test_minigpt_v2_eval_and_demo_parsers(sb: tuple[tuple[int, int], list[float]]) -> None:
    size, box = sb
    codec = get_codec("minigpt-v2")
    w, h = size
    ext = [w, h, w, h]
    answer = codec.encode_box(box, size).replace(" ", "").strip()  # a [refer] answer: the box alone
    assert re.match(MINIGPT_EVAL, answer)
    q = [int(n) for n in re.findall(r"\d+", answer)]
    assert_close(
        codec, size, np.minimum([(v + 0.5) / 100 * e for v, e in zip(q, ext, strict=True)], ext), box
    )
    # demo_v2.py: a grounded phrase with two boxes
    text = codec.encode([Grounding("dogs", (Shape.box(*box), Shape.box(0, 0, w, h)))], size)
    [found] = re.findall(r"<p>(.*?)\}(?!<)", text)
    phrase, boxes = found.split("</p>")
    assert phrase == "dogs"
    parts = boxes.split("<delim>")
    assert len(parts) == 2
    got = [[int(n) for n in re.findall(r"-?\d+", p)] for p in parts]
    for theirs, want in zip(got, (box, [0, 0, w, h]), strict=True):
        assert_close(
            codec,
            size,
            np.minimum([(v + 0.5) / 100 * e for v, e in zip(theirs, ext, strict=True)], ext),
            want,
        )


MOLMO_POINTS = re.compile(
    r'x\d*="\s*([0-9]+(?:\.[0-9]+)?)"\s+y\d*="\s*([0-9]+(?:\.[0-9]+)?)"'
)  # olmo/util.py


@st.composite
def size_and_points(draw: st.DrawFn) -> tuple[tuple[int, int], list[tuple[float, float]]]:
    w, h = draw(st.integers(1, 3000)), draw(st.integers(1, 3000))
    n = draw(st.integers(1, 4))
    return (w, h), [(draw(st.floats(0, w)), draw(st.floats(0, h))) for _ in range(n)]


@settings(max_examples=40, deadline=None)
@given(sp=size_and_points())
def test_molmo_extract_points(sp: tuple[tuple[int, int], list[tuple[float, float]]]) -> None:
    size, pts = sp
    codec = get_codec("molmo")
    shapes = tuple(Shape.point(x, y) for x, y in pts)
    text = codec.encode([Grounding("dog", shapes)], size)
    theirs = [
        np.asarray([float(m.group(1)), float(m.group(2))]) / 100.0 * np.asarray(size)
        for m in MOLMO_POINTS.finditer(text)
    ]
    order = codec.shape_order(shapes, size)  # Molmo's text is sorted by x
    assert len(theirs) == len(pts)
    for got, k in zip(theirs, order, strict=True):
        assert_close(codec, size, got, list(pts[k]))


class _NoSpecialTokens:
    all_special_tokens: list[str] = []  # noqa: RUF012 - the one attribute the post-processor reads


@st.composite
def size_and_polygon(draw: st.DrawFn) -> tuple[tuple[int, int], list[list[float]]]:
    w, h = draw(st.integers(20, 3000)), draw(st.integers(20, 3000))
    rings = [
        [
            draw(st.floats(0, w if k % 2 == 0 else h, allow_nan=False))
            for k in range(2 * draw(st.integers(3, 6)))
        ]
        for _ in range(draw(st.integers(1, 3)))
    ]
    return (w, h), rings


@settings(max_examples=40, deadline=None)
@given(sp=size_and_polygon())
def test_loc_polygons_florence2_transformers(sp: tuple[tuple[int, int], list[list[float]]]) -> None:
    pytest.importorskip("torch")
    florence = pytest.importorskip("transformers.models.florence2.processing_florence2")
    post = florence.Florence2PostProcessor({"description_with_polygons": {}}, _NoSpecialTokens())
    size, rings = sp
    codec = get_codec("loc")
    text = codec.encode([Grounding("dog", (Shape.polygon(rings),))], size)
    parsed = post(text=text, image_size=size, parse_tasks="description_with_polygons")
    [instance] = parsed["description_with_polygons"]
    assert instance["cat_name"] == "dog"
    assert len(instance["polygons"]) == len(rings)
    for theirs, want in zip(instance["polygons"], rings, strict=True):
        assert_close(codec, size, theirs, want, slack=1.0)  # their int() truncation of pixel coordinates
