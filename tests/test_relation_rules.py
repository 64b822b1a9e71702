"""The predicate rules of docs/spec.md#relations (gtok_cli.geometry.relations), table-driven: each row a
pair of boxes placed by hand with the verdict the stated rule gives, edge rows exactly at each margin and
just inside the ambiguous band (None: never labelled)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from gtok_cli.geometry.relation_answers import (
    named_predicate_holds,
    read_relation,
    read_yes_no,
    states_annotated,
)
from gtok_cli.geometry.relations import (
    CONVERSE,
    PREDICATES,
    Geom,
    RelationRule,
    holds,
    recompute,
    relation_of,
)

RULE = RelationRule()
SIZE = (200, 200)
A = [0.0, 0.0, 10.0, 10.0]  # the subject of most rows: a 10x10 box at the origin


def g(box: list[float], **kw: Any) -> Geom:
    return Geom.of({"bbox": box, **kw}, SIZE)


# (predicate, subject box, object box, verdict) — A is 10x10, so margins are in units of 10 px
ROWS = [
    # left of: centre gap >= 0.5 * min width (5 px), x-overlap <= 0.5 * min width; no when gap <= 0
    ("left of", A, [5, 0, 15, 10], True),  # centre gap exactly 5, overlap exactly 5: at both margins
    ("left of", A, [4.9, 0, 14.9, 10], None),  # centre gap 4.9: inside the band
    ("left of", A, [30, 0, 40, 10], True),
    ("left of", A, [0, 20, 10, 30], False),  # same column: centre gap 0
    ("left of", A, [-20, 0, -10, 10], False),  # right of it
    ("left of", A, [5, 0, 100, 10], True),  # wide object: overlap 5 = 0.5 * 10 allowed
    ("left of", A, [4, 0, 100, 10], None),  # overlap 6 > 5: too much overlap to say
    ("right of", [30, 0, 40, 10], A, True),
    ("right of", A, [30, 0, 40, 10], False),
    # above / below along y (y grows downwards)
    ("above", A, [0, 5, 10, 15], True),
    ("above", A, [0, 4.9, 10, 14.9], None),
    ("above", A, [0, 50, 10, 60], True),
    ("above", [0, 50, 10, 60], A, False),
    ("below", [0, 50, 10, 60], A, True),
    ("below", A, [20, 0, 30, 10], False),  # same row
    # inside: >= 0.9 of the subject's area in the object; no when <= 0.5; near-equal regions are in neither
    ("inside", A, [0, 0, 100, 100], True),
    ("inside", A, [1, 0, 100, 100], True),  # 90 of 100 px inside: exactly 0.9
    ("inside", A, [1.1, 0, 100, 100], None),  # 0.89
    ("inside", A, [5, 0, 100, 100], False),  # exactly 0.5
    ("inside", A, [5.5, 0, 100, 100], False),
    ("inside", A, [0, 0, 10, 10.5], None),  # the same region, nearly: neither inside the other
    ("contains", [0, 0, 100, 100], A, True),
    ("contains", A, [0, 0, 100, 100], False),
    # overlaps: intersection >= 0.1 of the smaller area; no when the intersection is empty
    ("overlaps", A, [9, 0, 19, 10], True),  # 10 px of 100: exactly 0.1
    ("overlaps", A, [9.5, 0, 19.5, 10], None),  # 0.05
    ("overlaps", A, [10, 0, 20, 10], False),  # touching: empty intersection
    ("overlaps", A, [2, 2, 8, 8], True),
    # next to: gap <= 0.25 * shortest side (2.5 px) and overlap < 0.1; no when gap >= 1.0 * side (10 px)
    ("next to", A, [12.5, 0, 22.5, 10], True),  # gap exactly 2.5
    ("next to", A, [13, 0, 23, 10], None),  # gap 3
    ("next to", A, [20, 0, 30, 10], False),  # gap exactly 10
    ("next to", A, [10, 0, 20, 10], True),  # touching
    ("next to", A, [5, 0, 15, 10], None),  # overlapping half: they overlap, not "next to"
    ("next to", A, [16, 18, 26, 28], False),  # diagonal gap hypot(6, 8) = 10
    ("next to", A, [11.5, 12, 21.5, 22], True),  # diagonal gap hypot(1.5, 2) = 2.5
    # larger than: area ratio >= 1.5; no when <= 1.0
    ("larger than", [0, 0, 15, 10], A, True),  # 150 / 100
    ("larger than", [0, 0, 14, 10], A, None),  # 1.4
    ("larger than", A, [50, 50, 60, 60], False),  # equal
    ("larger than", A, [0, 0, 15, 10], False),
    ("smaller than", A, [0, 0, 15, 10], True),
    ("smaller than", A, [0, 0, 14, 10], None),
]


@pytest.mark.parametrize(("predicate", "a", "b", "want"), ROWS)
def test_each_predicate_at_its_margins(
    predicate: str, a: list[float], b: list[float], want: bool | None
) -> None:
    assert holds(predicate, g(a), g(b), RULE) is want


@pytest.mark.parametrize(("predicate", "a", "b", "want"), ROWS)
def test_converse_is_the_swapped_pair(
    predicate: str, a: list[float], b: list[float], want: bool | None
) -> None:
    assert holds(CONVERSE[predicate], g(b), g(a), RULE) is want


@pytest.mark.parametrize(
    ("a", "b", "want"),
    [
        (A, [30, 0, 40, 10], "left of"),
        ([30, 0, 40, 10], A, "right of"),
        (A, [0, 30, 10, 40], "above"),
        (A, [30, 30, 40, 40], None),  # a diagonal: left of and above both hold
        (A, [0, 0, 100, 100], "inside"),
        ([0, 0, 100, 100], A, "contains"),
        (A, [1.1, 0, 100, 100], None),  # containment 0.89: ambiguous, and nothing after it is tried
        (A, [5, 0, 15, 10], "overlaps"),  # half overlapping: overlaps comes before the direction
        (A, [9.5, 0, 19.5, 10], None),  # overlap 0.05: ambiguous
        (A, [10, 0, 20, 10], "left of"),  # touching: the direction comes before next to
    ],
)
def test_the_relation_of_a_pair_by_precedence(a: list[float], b: list[float], want: str | None) -> None:
    assert relation_of(g(a), g(b), RULE) == want


def _rle(cols: slice, rows: slice) -> dict[str, Any]:
    m = np.zeros((SIZE[1], SIZE[0]), dtype=np.uint8, order="F")
    m[rows, cols] = 1
    rle = mask_utils.encode(m)
    return {"size": rle["size"], "counts": rle["counts"].decode()}


def test_masks_decide_areas_and_containment_when_both_have_one() -> None:
    # a 10x10 box whose mask is a 2-px column (20 px), an 8x8 box fully masked (64 px):
    # by boxes 100 / 64 = 1.56 (larger), by masks 20 / 64 (smaller)
    thin = {"bbox": [0, 0, 10, 10], "mask": _rle(slice(0, 2), slice(0, 10))}
    full = {"bbox": [50, 50, 58, 58], "mask": _rle(slice(50, 58), slice(50, 58))}
    assert holds("larger than", Geom.of(thin, SIZE), Geom.of(full, SIZE), RULE) is False
    assert holds("smaller than", Geom.of(thin, SIZE), Geom.of(full, SIZE), RULE) is True
    boxes_only = RelationRule(use_masks=False)
    assert holds("larger than", Geom.of(thin, SIZE), Geom.of(full, SIZE), boxes_only) is True
    # boxes that overlap by half, masks that do not touch: no overlap by masks
    left = {"bbox": [0, 0, 20, 10], "mask": _rle(slice(0, 5), slice(0, 10))}
    right = {"bbox": [10, 0, 30, 10], "mask": _rle(slice(25, 30), slice(0, 10))}
    assert holds("overlaps", Geom.of(left, SIZE), Geom.of(right, SIZE), RULE) is False
    assert holds("overlaps", Geom.of(left, SIZE), Geom.of(right, SIZE), boxes_only) is True
    # one box-only region: boxes for both
    assert holds("overlaps", Geom.of(left, SIZE), g([10, 0, 30, 10]), RULE) is True


def test_recompute_agrees_with_the_rows_and_names_what_is_wrong() -> None:
    regions = [{"bbox": A}, {"bbox": [30, 0, 40, 10]}]
    rel = {"form": "yesno", "predicate": "left of", "subject": 0, "object": 1, "answer": True}
    rel["rule"] = {**RULE.to_json(), "areas": "box"}
    assert recompute(rel, regions, SIZE) is None
    assert "is True" in str(recompute({**rel, "answer": False}, regions, SIZE))
    assert "is False" in str(recompute({**rel, "predicate": "right of"}, regions, SIZE))
    assert recompute({**rel, "subject": 1, "object": 0, "predicate": "right of"}, regions, SIZE) is None
    assert "do not index" in str(recompute({**rel, "object": 2}, regions, SIZE))
    what = {**rel, "form": "what", "answer": None}
    assert recompute(what, regions, SIZE) is None
    assert "relation is left of" in str(recompute({**what, "predicate": "above"}, regions, SIZE))
    # with the decoded box of the object moved onto the subject's column, "left of" no longer holds
    assert "is False" in str(recompute(rel, regions, SIZE, [None, (0.0, 20.0, 10.0, 30.0)]))
    assert "unknown relation rule" in str(recompute({**rel, "rule": {"name": "other"}}, regions, SIZE))


@pytest.mark.parametrize(
    ("text", "yes_no", "predicate"),
    [
        ("Yes.", True, None),
        ("no, it is not", False, None),
        ('"No"', False, None),
        ("(yes)", True, None),
        ("No: the cup is elsewhere", False, None),
        ("Yes; clearly", True, None),
        ("Nobody knows", None, None),  # a whole word only
        ("The dog is to the left of the cat.", None, "left of"),
        ("It is above the table and left of the cup", None, "above"),
        ("The bowl contains the apple.", None, "contains"),
        ("They overlap.", None, "overlaps"),
        ("It is larger than the cup.", None, "larger than"),
        ("Compared with the larger laptop, it is on its left.", None, None),  # an adjective, no predicate
        ("Nope.", False, None),
        ("Yeah, it is.", True, None),
        ("I cannot tell", None, None),
        ("It is not to the left of it; it is to the right.", None, "right of"),
        ("The cup isn't really above the plate, it is below it", None, "below"),
        ("The apple is contained in the bowl.", None, "inside"),
        ("The cat sits beneath the table.", None, "below"),
        ("The cup is on the right side of the laptop.", None, "right of"),
        ("The truck is bigger than the car.", None, "larger than"),
        ("The dog is beside the cat.", None, "next to"),
    ],
)
def test_reading_a_model_answer(text: str, yes_no: bool | None, predicate: str | None) -> None:
    assert read_yes_no(text) is yes_no
    assert read_relation(text) == predicate


@pytest.mark.parametrize(
    ("text", "subject", "obj", "predicate"),
    [
        # the names hold predicate words: they are taken out before reading
        ("The kite above the tree is to the right of the man next to the car.", "kite above the tree",
         "man next to the car", "right of"),
        ("The man next to the car is left of the kite.", "man next to the car", "kite", "left of"),
        # the object named first: the subject's relation is the converse
        ("The cat is to the left of the dog.", "dog", "cat", "right of"),
        ("The bowl contains the apple.", "apple", "bowl", "inside"),
        # one name inside the other: the longer is taken out first
        ("The man is left of the man in red.", "man in red", "man", "right of"),
        # the same name twice: no order to read, the predicate as said
        ("The person is to the left of the person.", "person", "person", "left of"),
        # names not in the text (a labelled span scheme wrote them elsewhere): as said
        ("It is above it.", "cup", "table", "above"),
        # the predicate said first: as said, whatever the names' order
        ("Below the laptop is the cup.", "cup", "laptop", "below"),
        ("To the left of the laptop is the cup.", "cup", "laptop", "left of"),
        # a possessive is not the object said first
        ("The man's tie is below his face.", "tie", "man", "below"),
        # plurals are the names; one name said (the object, first): the converse
        ("The laptops are to the right of the cups.", "cup", "laptop", "left of"),
        ("The laptop is to the right of it.", "cup", "laptop", "left of"),
    ],
)  # fmt: skip
def test_reading_an_answer_with_the_regions_names(text: str, subject: str, obj: str, predicate: str) -> None:
    assert read_relation(text, subject, obj) == predicate


def test_a_named_predicate_is_right_when_it_holds_of_the_pair() -> None:
    """A cup 5 px left of a laptop of its size: "left of" (the line's) and "next to" (also true) are right,
    "above" (no) and "overlaps" (no) are not."""
    regions = [{"bbox": [0, 0, 20, 20]}, {"bbox": [25, 0, 45, 20]}]
    rel = {"form": "what", "predicate": "left of", "subject": 0, "object": 1, "answer": None,
           "rule": {**RULE.to_json(), "areas": "box"}}  # fmt: skip
    assert holds("next to", g(regions[0]["bbox"]), g(regions[1]["bbox"]), RULE) is True
    got = {
        p: named_predicate_holds(p, rel, regions, SIZE) for p in ("left of", "next to", "above", "overlaps")
    }
    assert got == {"left of": True, "next to": True, "above": False, "overlaps": False}
    assert named_predicate_holds(None, rel, regions, SIZE) is False


@pytest.mark.parametrize(
    ("predicate", "text", "want"),
    [
        ("on", "The man on the horse.", True),
        ("on", "The person is beside the horse.", False),  # "on" inside "person"
        ("on", "The man is in front of the horse.", False),  # "on" inside "front"
        ("sitting on", "The cup sitting on the table.", True),
        ("sitting on", "The cup is sitting near the table, on the floor.", False),
        ("behind.", "The plant behind. the tv.", True),  # Visual Genome's free text keeps its punctuation
        ("(near)", "The cup (near) the plate.", True),
    ],
)
def test_annotated_predicates_are_whole_words(predicate: str, text: str, want: bool) -> None:
    assert states_annotated(predicate, text) is want


def test_two_empty_regions_are_neither_larger_nor_smaller() -> None:
    a, b = g([5, 5, 5, 5]), g([50, 50, 50, 50])
    verdicts = {p: (holds(p, a, b, RULE), holds(p, b, a, RULE)) for p in ("larger than", "smaller than")}
    assert verdicts == {"larger than": (False, False), "smaller than": (False, False)}
    assert holds("smaller than", a, g([0, 0, 10, 10]), RULE) is True


def test_rule_round_trips_and_every_predicate_has_a_converse() -> None:
    assert RelationRule.from_json(RULE.to_json()) == RULE
    assert RelationRule.from_json({**RULE.to_json(), "size_ratio": 2.0}).size_ratio == 2.0
    assert set(CONVERSE) == set(PREDICATES) and all(CONVERSE[CONVERSE[p]] == p for p in PREDICATES)


def test_a_long_repetitive_answer_is_read_in_linear_time() -> None:
    """A degenerate RL sample ("it is not left of it " x 5000) is read, not stuck on: each negation is looked
    for in a bounded window before its match (the earlier whole-prefix search took 27 s on this input)."""
    text = "it is not left of it " * 5000 + "it is above it"
    assert read_relation(text, "cup", "laptop") == "above"
