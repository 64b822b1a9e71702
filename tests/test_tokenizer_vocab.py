"""Every spatial token of bins, loc, kosmos2, paligemma and grid is exactly one id of an HF tokenizer
after ``add_tokens(codec.vocab())`` (in-memory tokenizers, no download)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers

from gtok_cli.codecs import Codec, Grounding, Shape, get_codec
from gtok_cli.codecs.grid import GridCodec, ShapeOffsets


def word_level() -> Tokenizer:
    tok = Tokenizer(models.WordLevel(vocab={"[UNK]": 0, "dog": 1, "a": 2}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return tok


def bpe() -> Tokenizer:
    return Tokenizer(models.BPE())


TOKENIZERS: list[Callable[[], Tokenizer]] = [word_level, bpe]

# (scheme, params, spatial ids in one encoded box: coordinates / cells, not tags)
SCHEMES = [
    ("bins", {}, 4),
    ("bins", {"bins": 7}, 4),
    ("bins", {"bins": 1024}, 4),
    ("loc", {}, 4),
    ("kosmos2", {}, 2),
    ("paligemma", {}, 4),
    ("grid", {}, 2),
    ("grid", {"grid": 64}, 2),
]

S = (640, 480)


def with_vocab(make: Callable[[], Tokenizer], codec: Codec) -> Tokenizer:
    tok = make()
    added = tok.add_tokens(codec.vocab())
    assert added == len(codec.vocab()) == len(set(codec.vocab()))
    return tok


@pytest.mark.parametrize("make", TOKENIZERS)
@pytest.mark.parametrize(("scheme", "params", "spatial"), SCHEMES)
def test_every_token_is_one_id(
    make: Callable[[], Tokenizer], scheme: str, params: dict, spatial: int
) -> None:
    codec = get_codec(scheme, **params)
    tok = with_vocab(make, codec)
    ids = set()
    for token in codec.vocab():
        enc = tok.encode(token).ids
        assert len(enc) == 1, (token, enc)
        assert tok.id_to_token(enc[0]) == token
        ids.add(enc[0])
    assert len(ids) == len(codec.vocab())


@pytest.mark.parametrize("make", TOKENIZERS)
@pytest.mark.parametrize(("scheme", "params", "spatial"), SCHEMES)
def test_encoded_box_has_expected_spatial_ids(
    make: Callable[[], Tokenizer], scheme: str, params: dict, spatial: int
) -> None:
    codec = get_codec(scheme, **params)
    tok = with_vocab(make, codec)
    tags = {"<box>", "<point>", "</box>", "<phrase>", "</phrase>", "<object>", "</object>"}
    spatial_ids = {tok.token_to_id(t) for t in codec.vocab() if t not in tags and not t.startswith("</")}
    for box in [(150, 100, 400, 350), (0, 0, 640, 480), (320, 100, 320, 200)]:
        text = codec.encode([Grounding("a dog", (Shape.box(*box),))], S)
        ids = tok.encode("The answer is " + text + ".").ids
        assert sum(i in spatial_ids for i in ids) == spatial, (text, tok.encode(text).tokens)


@pytest.mark.parametrize("make", TOKENIZERS)
def test_grid_refinement_and_mask_ids(make: Callable[[], Tokenizer]) -> None:
    codec = GridCodec()
    tok = with_vocab(make, codec)
    offsets = set(codec.vocab()[1024:1034])
    text = codec.encode_refinement([ShapeOffsets("box", ((1, 0), (0, -1))), ShapeOffsets("point", (None,))])
    tokens = tok.encode(text).tokens
    assert [t for t in tokens if t in offsets] == ["<OFF_1_0>", "<OFF_0_-1>", "<DELETE>"]
    mask = codec.encode([Grounding(None, (Shape("mask", (), ((3, 4), (1, 2), (31, 31))),))], S)
    assert [t for t in tok.encode(mask).tokens if t.startswith("<grid_")] == [
        "<grid_3_4>",
        "<grid_1_2>",
        "<grid_31_31>",
    ]


# schemes whose tags are added tokens: each tag of an encoded answer is one id, and nothing else is
TAGGED = [
    ("internvl", ["<ref>", "</ref>", "<box>", "</box>"]),
    ("deepseek-vl2", ["<|ref|>", "<|/ref|>", "<|det|>", "<|/det|>"]),
]


@pytest.mark.parametrize("make", TOKENIZERS)
@pytest.mark.parametrize(("scheme", "tags"), TAGGED)
def test_tag_tokens_are_single_ids(make: Callable[[], Tokenizer], scheme: str, tags: list[str]) -> None:
    codec = get_codec(scheme)
    assert codec.vocab() == tags
    tok = with_vocab(make, codec)
    text = codec.encode([Grounding("a dog", (Shape.box(150, 100, 400, 350), Shape.box(0, 0, 640, 480)))], S)
    tokens = tok.encode("The answer is " + text + ".").tokens
    assert [t for t in tokens if t in tags] == tags


@pytest.mark.parametrize("make", TOKENIZERS)
def test_loc_polygon_tokens(make: Callable[[], Tokenizer]) -> None:
    codec = get_codec("loc")
    tok = with_vocab(make, codec)
    poly = Shape.polygon([[100, 100, 200, 100, 150, 200], [300, 300, 400, 300, 400, 400]])
    tokens = tok.encode(codec.encode([Grounding("dog", (poly,))], S)).tokens
    assert [t for t in tokens if t in ("<poly>", "</poly>", "<sep>")] == ["<poly>", "<sep>", "</poly>"]
    assert sum(t.startswith("<loc_") for t in tokens) == 12  # one id per coordinate of the 6 vertices
