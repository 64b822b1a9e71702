"""`gtok ingest flickr30k`: the genuine sentence file and XML read as ``flickr30k_entities_utils.py`` does.

Expected phrases, types, chain ids and ``first_word_index`` are worked out by hand from
``sample_data/flickr30k/Sentences/4945942737.txt`` (the genuine file, see tests/data/README.md); boxes by hand
from ``sample_data/flickr30k/Annotations/4945942737.xml`` (1-based inclusive → continuous: x1 = xmin - 1,
x2 = xmax).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from gtok_cli.cli import app
from gtok_cli.ingest.common import Excluded, IngestStats, Tally, run_ingest
from gtok_cli.ingest.flickr30k import (
    iter_flickr30k,
    load_annotation,
    parse_sentence,
    read_sentence_file,
    voc_to_xyxy,
)
from gtok_cli.records import record_validator

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data" / "flickr30k"
FIXTURE_SENTENCES = SAMPLE / "Sentences" / "4945942737.txt"
# sha256 of the genuine Flickr30k Entities file (allenai/allennlp-models test_fixtures; tests/data/README.md)
FIXTURE_SENTENCES_SHA256 = "ca20b2631a11becb3112bb7e296626995f086bb32187726dd8e23127f8219a34"
# an unmodified excerpt of the official train split list (tests/data/README.md)
TRAIN_SPLIT = ROOT / "tests" / "data" / "flickr30k_entities" / "train.txt"
SENTENCES = SAMPLE / "Sentences"
ANNOTATIONS = SAMPLE / "Annotations"
IMAGES = SAMPLE / "images"

# (first_word_index, phrase, chain id, types) per sentence, counted by hand on the whitespace tokens
EXPECTED_PHRASES = [
    [
        (0, "A girl", "221796", ("people",)),
        (3, "brown hair", "221804", ("bodyparts",)),
        (7, "the edge of a cement area", "221799", ("scene",)),
        (13, "overlooking water", "221798", ("scene",)),
    ],
    [
        (0, "A woman", "221796", ("people",)),
        (3, "black", "221797", ("clothing",)),
        (7, "behind", "221800", ("other",)),
        (12, "a body of water", "221798", ("scene",)),
    ],
    [
        (0, "A girl", "221796", ("people",)),
        (5, "concrete", "221799", ("other",)),
        (7, "water", "221798", ("scene",)),
        (9, "a black dress", "221797", ("clothing",)),
    ],
    [
        (0, "A small girl", "221796", ("people",)),
        (5, "a ledge", "221799", ("other",)),
        (8, "the water", "221798", ("scene",)),
        (11, "life", "221802", ("other",)),
    ],
    [
        (0, "A dark-haired girl", "221796", ("people",)),
        (6, "the waters edge", "221798", ("scene",)),
    ],
]
EXPECTED_TEXT = [
    "A girl with brown hair sits on the edge of a cement area overlooking water .",
    "A woman in black , seen from behind , sits next to a body of water .",
    "A girl sitting outside on concrete near water in a black dress .",
    "A small girl sits on a ledge by the water contemplating life .",
    "A dark-haired girl is sitting on the waters edge .",
]


def test_sample_sentence_file_is_the_genuine_one() -> None:
    assert hashlib.sha256(FIXTURE_SENTENCES.read_bytes()).hexdigest() == FIXTURE_SENTENCES_SHA256


@pytest.mark.parametrize("index", range(5))
def test_sentence_parsing_matches_the_official_loader(index: int) -> None:
    lines = read_sentence_file(FIXTURE_SENTENCES)
    assert len(lines) == 5
    sentence = parse_sentence(lines[index])
    assert sentence.text == EXPECTED_TEXT[index]
    got = [(p.first_word_index, p.phrase, p.chain_id, p.types) for p in sentence.phrases]
    assert got == EXPECTED_PHRASES[index]
    words = sentence.text.split(" ")
    for p in sentence.phrases:
        start, end = p.span
        assert sentence.text[start:end] == p.phrase
        assert " ".join(words[p.first_word_index : p.first_word_index + len(p.phrase.split())]) == p.phrase


def test_spans_by_hand() -> None:
    s = parse_sentence(read_sentence_file(FIXTURE_SENTENCES)[0])
    # "A girl" 0..6; "A girl with " is 12 chars → "brown hair" 12..22; "A girl with brown hair sits on " is 31
    # chars → 25-char "the edge of a cement area" 31..56; then a space → "overlooking water" 57..74
    assert [p.span for p in s.phrases] == [(0, 6), (12, 22), (31, 56), (57, 74)]


@pytest.mark.parametrize(
    ("line", "text", "phrases"),
    [
        # several types on one phrase; a one-word phrase; chain 0 (notvisual)
        (
            "[/EN#7/people/other Two men] play [/EN#0/notvisual ball] .",
            "Two men play ball .",
            [(0, "Two men", "7", ("people", "other"), (0, 7)), (3, "ball", "0", ("notvisual",), (13, 17))],
        ),
        ("[/EN#3/animals Dog]", "Dog", [(0, "Dog", "3", ("animals",), (0, 3))]),
        ("no phrases here", "no phrases here", []),
        (
            "  extra   spaces [/EN#1/people a  b]  ",
            "extra spaces a b",
            [(2, "a b", "1", ("people",), (13, 16))],
        ),
    ],
)
def test_sentence_edge_rows(line: str, text: str, phrases: list[Any]) -> None:
    s = parse_sentence(line)
    assert s.text == text
    assert [(p.first_word_index, p.phrase, p.chain_id, p.types, p.span) for p in s.phrases] == phrases


@pytest.mark.parametrize(
    ("voc", "xyxy"),
    [
        ((1, 1, 1, 1), [0.0, 0.0, 1.0, 1.0]),  # one pixel: column 1 covers [0, 1)
        ((1, 1, 333, 500), [0.0, 0.0, 333.0, 500.0]),  # the whole 333x500 image
        ((107, 155, 287, 376), [106.0, 154.0, 287.0, 376.0]),  # the girl
        ((10, 20, 11, 20), [9.0, 19.0, 11.0, 20.0]),  # two columns, one row
    ],
)
def test_voc_box_conversion_by_hand(voc: tuple[int, int, int, int], xyxy: list[float]) -> None:
    assert voc_to_xyxy(*voc) == xyxy


def test_sample_annotation() -> None:
    ann = load_annotation(ANNOTATIONS / "4945942737.xml", "4945942737")
    assert (ann.file_name, ann.width, ann.height) == ("4945942737.jpg", 333, 500)
    # by hand from the XML: xmin - 1, ymin - 1, xmax, ymax
    assert ann.boxes == {
        "221796": [[106.0, 154.0, 287.0, 376.0]],
        "221804": [[157.0, 154.0, 266.0, 300.0]],
        "221797": [[128.0, 209.0, 286.0, 375.0]],
        "221799": [[0.0, 294.0, 333.0, 500.0]],
    }
    assert ann.scene == {"221798"}
    assert ann.nobox == {"221800", "221802"}


def test_sample_records_and_exclusions(tmp_path: Path) -> None:
    items = list(iter_flickr30k(ANNOTATIONS, SENTENCES, images_dir=IMAGES))
    recs = [i for i in items if isinstance(i, dict)]
    excluded = [i for i in items if isinstance(i, Excluded)]
    assert len(recs) == 5
    # by hand: chain 221798 (scene) has 5 phrases, 221800 and 221802 (nobndbox) one each → 7 no_box;
    # the other 11 phrases have one box each
    assert [e.reason for e in excluded] == ["no_box"] * 7
    assert [len(r["regions"]) for r in recs] == [3, 2, 3, 2, 1]
    assert [r["text"] for r in recs] == EXPECTED_TEXT
    first = recs[0]
    assert first["id"] == "flickr30k:4945942737:s0"
    assert [(r["phrase"], r["span"], r["chain_id"], r["bbox"]) for r in first["regions"]] == [
        ("A girl", [0, 6], "221796", [106.0, 154.0, 287.0, 376.0]),
        ("brown hair", [12, 22], "221804", [157.0, 154.0, 266.0, 300.0]),
        ("the edge of a cement area", [31, 56], "221799", [0.0, 294.0, 333.0, 500.0]),
    ]
    validator = record_validator()
    for rec in recs:
        assert not list(validator.iter_errors(rec)), rec["id"]
    stats = run_ingest(items, tmp_path / "out.jsonl")
    assert stats.written == 5 and stats.reconciles
    # 1 image, 5 captions, 7 <object>s, 18 phrases (11 boxed + 7 no_box), counted by hand from the files
    assert counts(stats) == {
        "images": (1, 1, 0, 0),
        "captions": (5, 5, 0, 0),
        "objects": (7, 7, 0, 0),
        "phrases": (18, 11, 7, 0),
    }


MULTI_XML = """<annotation>
  <filename>1.jpg</filename>
  <size><width>100</width><height>80</height><depth>3</depth></size>
  <object><name>5</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>10</xmax><ymax>10</ymax></bndbox></object>
  <object><name>5</name><bndbox><xmin>51</xmin><ymin>41</ymin><xmax>60</xmax><ymax>80</ymax></bndbox></object>
  <object><name>5</name><name>6</name>
    <bndbox><xmin>21</xmin><ymin>31</ymin><xmax>30</xmax><ymax>40</ymax></bndbox></object>
  <object><name>7</name><scene>1</scene><nobndbox>0</nobndbox></object>
  <object><name>7</name><scene>0</scene><nobndbox>1</nobndbox></object>
</annotation>
"""
MULTI_SENTENCES = (
    "[/EN#5/people Three kids] and [/EN#6/people a boy] in [/EN#7/scene a park] with [/EN#0/notvisual fun] "
    "and [/EN#9/other things] .\n"
    "[/EN#0/notvisual Nothing] here .\n"
)


@pytest.fixture
def multi(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "A").mkdir()
    (tmp_path / "S").mkdir()
    (tmp_path / "A" / "1.xml").write_text(MULTI_XML)
    (tmp_path / "S" / "1.txt").write_text(MULTI_SENTENCES)
    return tmp_path / "A", tmp_path / "S"


def test_separate_and_merged_boxes(multi: tuple[Path, Path]) -> None:
    ann_dir, sent_dir = multi
    sep = [i for i in iter_flickr30k(ann_dir, sent_dir, boxes="separate") if isinstance(i, dict)]
    mer = [i for i in iter_flickr30k(ann_dir, sent_dir, boxes="merged") if isinstance(i, dict)]
    # chain 5: three boxes (the third object names chains 5 and 6), in document order
    assert [(r["chain_id"], r["bbox"]) for r in sep[0]["regions"]] == [
        ("5", [0.0, 0.0, 10.0, 10.0]),
        ("5", [50.0, 40.0, 60.0, 80.0]),
        ("5", [20.0, 30.0, 30.0, 40.0]),
        ("6", [20.0, 30.0, 30.0, 40.0]),
    ]
    # merged: the union of chain 5's boxes, x 0..60, y 0..80
    assert [(r["chain_id"], r["bbox"]) for r in mer[0]["regions"]] == [
        ("5", [0.0, 0.0, 60.0, 80.0]),
        ("6", [20.0, 30.0, 30.0, 40.0]),
    ]
    assert all(r["phrase"] == "Three kids" and r["span"] == [0, 10] for r in sep[0]["regions"][:3])


def test_not_visual_no_box_and_unannotated_are_counted(multi: tuple[Path, Path], tmp_path: Path) -> None:
    ann_dir, sent_dir = multi
    items = list(iter_flickr30k(ann_dir, sent_dir))
    reasons = sorted(i.reason for i in items if isinstance(i, Excluded))
    # sentence 0: chain 7 (scene + nobndbox only) → no_box, chain 0 → not_visual, chain 9 (not in the XML) →
    # unannotated; sentence 1: its only phrase is chain 0 → not_visual, and the caption has no boxed phrase
    assert reasons == ["no_box", "no_grounded_phrase", "not_visual", "not_visual", "unannotated"]
    stats = run_ingest(items, tmp_path / "out.jsonl")
    assert stats.written == 1 and stats.reconciles
    # captions: 1 written, 1 without a boxed phrase; phrases: 5 + 1, of which 2 (chains 5, 6) kept
    assert counts(stats) == {
        "images": (1, 1, 0, 0),
        "captions": (2, 1, 1, 0),
        "objects": (5, 5, 0, 0),
        "phrases": (6, 2, 4, 0),
    }


def test_split_file_restricts_images(tmp_path: Path) -> None:
    listed = tmp_path / "val.txt"
    listed.write_text("123\n4945942737\n")
    recs = list(iter_flickr30k(ANNOTATIONS, SENTENCES, split_file=listed))
    ids = [r["id"] for r in recs if isinstance(r, dict)]
    assert ids == [f"flickr30k:val:4945942737:s{k}" for k in range(5)]
    assert all(r["split"] == "val" for r in recs if isinstance(r, dict))
    other = tmp_path / "test.txt"
    other.write_text("1000092795\n")
    assert list(iter_flickr30k(ANNOTATIONS, SENTENCES, split_file=other)) == [Tally("image", read=0)]


runner = CliRunner()


def counts(stats: IngestStats) -> dict[str, tuple[int, int, int, int]]:
    """(read, kept, excluded, rejected) per unit."""
    return {name: (u.read, u.kept, u.excluded, u.rejected) for name, u in stats.units.items()}


@pytest.mark.parametrize(("boxes", "regions"), [("separate", 11), ("merged", 11)])
def test_cli(tmp_path: Path, boxes: str, regions: int) -> None:
    out = tmp_path / "f.jsonl"
    result = runner.invoke(
        app,
        [
            "ingest",
            "flickr30k",
            "--annotations",
            str(ANNOTATIONS),
            "--sentences",
            str(SENTENCES),
            "--split-file",
            str(TRAIN_SPLIT),
            "--boxes",
            boxes,
            "--images",
            str(IMAGES),
            "--out",
            str(out),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["written"], summary["rejected"], summary["reconciles"]) == (5, 0, True)
    assert summary["units"]["phrases"]["excluded_by_reason"] == {"no_box": 7}
    assert summary["units"]["captions"]["read"] == summary["units"]["captions"]["kept"] == 5
    recs = [json.loads(line) for line in out.read_text().splitlines()]
    assert sum(len(r["regions"]) for r in recs) == regions
    assert recs[0]["id"] == "flickr30k:train:4945942737:s0"
