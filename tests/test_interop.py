"""Our text, parsed by parsers this project did not write, gives our boxes back within our bound.

- transformers' Kosmos-2 ``clean_text_and_extract_entities_with_bboxes`` (no weights needed) on ``kosmos2``;
- transformers' native ``Florence2PostProcessor`` on ``loc``; it needs a tokenizer only for its set of special
  tokens, so a stub with an empty ``all_special_tokens`` stands in (nothing is downloaded);
- supervision's VLM parsers on ``paligemma``, ``qwen2.5-vl`` and ``qwen3-vl``.

Documented convention differences of theirs, undone before comparing: supervision's PaliGemma parser divides
by 1024 where big_vision (and we) divide by 1023; Florence-2's post-processor casts its bin-centre pixels to
int (truncation, < 1 px); transformers' Kosmos-2 returns cell *edges* (not centres) when the two corner cells
share a column or a row (``patch_index_to_coordinate``), i.e. half a cell outward.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gtok_cli.codecs import Codec, get_codec

pytestmark = pytest.mark.interop
EPS = 1e-6


@st.composite
def size_and_box(draw: st.DrawFn) -> tuple[tuple[int, int], list[float]]:
    w, h = draw(st.integers(20, 3000)), draw(st.integers(20, 3000))
    xs = sorted(draw(st.floats(0, w, allow_nan=False)) for _ in range(2))
    ys = sorted(draw(st.floats(0, h, allow_nan=False)) for _ in range(2))
    return (w, h), [xs[0], ys[0], xs[1], ys[1]]


def assert_close(
    codec: Codec, size: tuple[int, int], theirs: np.ndarray, box: list[float], slack: float = 0
) -> None:
    bx, by = codec.bound(size).pixels(size)
    err = np.abs(np.asarray(theirs, dtype=np.float64) - np.asarray(box))
    assert (err[[0, 2]] <= bx + slack + EPS).all() and (err[[1, 3]] <= by + slack + EPS).all(), (theirs, box)


@settings(max_examples=40, deadline=None)
@given(sb=size_and_box())
def test_kosmos2_transformers(sb: tuple[tuple[int, int], list[float]]) -> None:
    kosmos = pytest.importorskip("transformers.models.kosmos2.processing_kosmos2")
    size, box = sb
    codec = get_codec("kosmos2")
    text = "<grounding>An image of" + codec.encode_box(box, size, "a dog") + " on grass."
    _clean, entities = kosmos.clean_text_and_extract_entities_with_bboxes(text, num_patches_per_side=32)
    [(phrase, _span, [norm])] = entities
    assert phrase == "a dog"
    ul, lr = (int(i) for i in re.findall(r"<patch_index_(\d+)>", text))
    theirs = np.asarray(norm)
    if ul % 32 == lr % 32 or ul // 32 == lr // 32:  # their edges-of-cells branch → cell centres
        theirs = theirs + np.asarray([1, 1, -1, -1]) * (0.5 / 32)
    w, h = size
    assert_close(codec, size, theirs * [w, h, w, h], box)


class _NoSpecialTokens:
    all_special_tokens: list[str] = []  # noqa: RUF012 - the one attribute the post-processor reads


@settings(max_examples=40, deadline=None)
@given(sb=size_and_box())
def test_florence2_transformers(sb: tuple[tuple[int, int], list[float]]) -> None:
    pytest.importorskip("torch")
    florence = pytest.importorskip("transformers.models.florence2.processing_florence2")
    post = florence.Florence2PostProcessor({"description_with_bboxes": {}}, _NoSpecialTokens())
    size, box = sb
    codec = get_codec("loc")
    text = codec.encode_box(box, size, "dog")
    parsed = post(text=text, image_size=size, parse_tasks="description_with_bboxes")
    [instance] = parsed["description_with_bboxes"]
    assert instance["cat_name"] == "dog"
    assert_close(codec, size, np.asarray(instance["bbox"]), box, slack=1.0)  # their int() truncation


@settings(max_examples=40, deadline=None)
@given(sb=size_and_box())
def test_paligemma_supervision(sb: tuple[tuple[int, int], list[float]]) -> None:
    vlm = pytest.importorskip("supervision.detection.vlm")
    size, box = sb
    codec = get_codec("paligemma")
    xyxy, _ids, names = vlm.from_paligemma(codec.encode_box(box, size, "dog"), resolution_wh=size)
    assert list(names) == ["dog"]
    assert_close(codec, size, xyxy[0] * 1024 / 1023, box)  # supervision: q/1024; big_vision and we: q/1023


@settings(max_examples=40, deadline=None)
@given(sb=size_and_box())
def test_qwen25_supervision(sb: tuple[tuple[int, int], list[float]]) -> None:
    vlm = pytest.importorskip("supervision.detection.vlm")
    size, box = sb
    codec = get_codec("qwen2.5-vl")
    text = "```json\n" + codec.encode_box(box, size, "dog") + "\n```"
    xyxy, _ids, names = vlm.from_qwen_2_5_vl(text, input_wh=codec.resized(size), resolution_wh=size)
    assert list(names) == ["dog"]
    assert_close(codec, size, xyxy[0], box)


@settings(max_examples=40, deadline=None)
@given(sb=size_and_box())
def test_qwen3_supervision(sb: tuple[tuple[int, int], list[float]]) -> None:
    vlm = pytest.importorskip("supervision.detection.vlm")
    size, box = sb
    codec = get_codec("qwen3-vl")
    text = codec.encode_box(box, size, "dog")
    xyxy, _ids, names = vlm.from_qwen_3_vl(text, resolution_wh=size)
    assert list(names) == ["dog"]
    assert_close(codec, size, xyxy[0], box)


def test_worked_example_through_supervision() -> None:
    vlm = pytest.importorskip("supervision.detection.vlm")
    xyxy, _ids, _names = vlm.from_qwen_2_5_vl(
        '[{"bbox_2d": [151, 99, 402, 347], "label": "dog"}]', input_wh=(644, 476), resolution_wh=(640, 480)
    )
    # 151·640/644 = 150.06, 99·480/476 = 99.83, 402·640/644 = 399.50, 347·480/476 = 349.92
    np.testing.assert_allclose(xyxy[0], [150.06, 99.83, 399.50, 349.92], atol=0.01)
