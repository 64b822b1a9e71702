"""A model's answer to a relation question read back (docs/spec.md#relations): ``gtok eval`` scores with it
and the relation reward pays with it, so both read an answer the same way.

- :func:`read_yes_no`: the first whole word ``yes`` or ``no``.
- :func:`read_relation`: the predicate a statement names. The two regions' names are taken out of the text
  first (a name may hold a predicate's words: "the man next to the car"); a predicate negated just before it
  ("is not to the left of") is passed over; common synonyms count ("beneath" is ``below``, "contained in"
  is ``inside``, "bigger than" is ``larger than``); and an answer that names the object before the subject
  ("The cat is to the left of the dog" for subject dog, object cat) states the converse predicate of the
  subject.
- :func:`named_predicate_holds`: whether a named predicate is right for the line: the line's own, or any
  other that decidedly holds of the pair under the line's rule ("what is the relation" has more than one
  right answer when, say, a cup is both left of and next to a laptop).

Example:

    >>> read_relation("The kite above the tree is right of the man.", "kite above the tree", "man")
    'right of'
    >>> read_relation("The cat is to the left of the dog.", subject="dog", obj="cat")
    'right of'
    >>> read_relation("It is not left of it; it is beneath it.")
    'below'
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from gtok_cli.geometry.relations import (
    CONVERSE,
    PREDICATES,
    QUESTION_PHRASE,
    STATEMENT,
    pair_verdicts,
)

_YES_NO = re.compile(r"\b(yes|yeah|yep|no|nope)\b", re.IGNORECASE)
SYNONYMS: dict[str, tuple[str, ...]] = {
    "left of": ("on the left of", "left side of", "to the left"),
    "right of": ("on the right of", "right side of", "to the right"),
    "above": ("on top of", "higher than"),
    "below": ("beneath", "underneath", "under", "lower than"),
    "inside": ("contained in", "contained by", "within", "inside of"),
    "contains": ("containing", "encloses"),
    "overlaps": ("overlapping", "overlap with", "overlap"),
    "next to": ("beside", "adjacent to", "alongside"),
    "larger than": ("bigger than",),
    "smaller than": ("tinier than",),
}
"""Other words a model says for a predicate (eval reads them; export writes :data:`STATEMENT` only)."""
_NEGATION = re.compile(r"(?:\bnot|n't|\bnever|\bneither|\bnor)\W+(?:\w+\W+){0,2}$")
"""A negation at most two words before a predicate's words ("is not to the left", "isn't really above")."""
_NEGATION_WINDOW = 48
"""Characters before a match searched for its negation (a bounded window: the reading stays linear)."""


def _phrases() -> list[tuple[str, str]]:
    """``(words, predicate)``, longest words first (so "contained in" wins over "contain")."""
    out: dict[str, str] = {}
    for p in PREDICATES:
        for words in (STATEMENT[p], QUESTION_PHRASE[p], p, *SYNONYMS[p]):
            out.setdefault(words, p)
    return sorted(out.items(), key=lambda item: -len(item[0]))


def _whole(words: str, suffix: str = "") -> re.Pattern[str]:
    """``words`` as whole words (edges that are punctuation need no word boundary: VG's ``behind.``)."""
    return re.compile(rf"(?<!\w){re.escape(words)}{suffix}(?!\w)")


_PHRASES = [(_whole(words), p) for words, p in _phrases()]


def read_yes_no(text: str) -> bool | None:
    """A model's yes/no answer: the first whole word ``yes`` / ``yeah`` / ``yep`` or ``no`` / ``nope``
    (any case), else None."""
    m = _YES_NO.search(text or "")
    return None if m is None else m.group(1).lower() in ("yes", "yeah", "yep")


def _blank(low: str, name: str | None) -> tuple[str, int | None]:
    """``low`` with the first mention of ``name`` (or its plural) blanked out, and where it was (None: not
    mentioned)."""
    name = " ".join((name or "").lower().split())
    if not name:
        return low, None
    m = _whole(name, "(?:s|es)?").search(low)
    if m is None:
        return low, None
    return low[: m.start()] + " " * (m.end() - m.start()) + low[m.end() :], m.start()


def read_relation(text: str, subject: str | None = None, obj: str | None = None) -> str | None:
    """The geometric predicate ``text`` says holds of the subject to the object (module docstring), or
    None."""
    low = " ".join((text or "").lower().split())
    # the longer name first: a name may hold the other ("man" in "man next to the car")
    names = sorted((("subject", subject), ("object", obj)), key=lambda kv: -len(kv[1] or ""))
    at: dict[str, int | None] = {}
    for role, name in names:
        low, at[role] = _blank(low, name)
    best: tuple[int, int, str] | None = None
    for pattern, p in _PHRASES:
        for m in pattern.finditer(low):
            if _NEGATION.search(low, max(0, m.start() - _NEGATION_WINDOW), m.start()):
                continue
            key = (m.start(), -(m.end() - m.start()), p)
            if best is None or key[:2] < best[:2]:
                best = key
            break
    if best is None:
        return None
    at_p, said = best[0], best[2]
    s_at, o_at = at["subject"], at["object"]
    same_name = subject is not None and obj is not None and subject.lower().strip() == obj.lower().strip()
    # the object said before the predicate and the subject (if said) after it: "the cat is left of the dog"
    # of subject dog. A predicate said first ("Below the laptop is the cup") reads as said.
    object_first = o_at is not None and o_at < at_p and (s_at is None or s_at > at_p)
    subject_last = s_at is not None and s_at > at_p and (o_at is None or o_at < at_p)
    if (object_first or subject_last) and not same_name:
        return CONVERSE[said]
    return said


def named_predicate_holds(
    predicate: str | None,
    relation: Mapping[str, Any],
    regions: list[Mapping[str, Any]],
    size: tuple[int, int],
) -> bool:
    """Whether ``predicate`` (what an answer named) is right for a geometric line: the line's own predicate,
    or one that decidedly holds of its ``(subject, object)`` under the line's rule."""
    if predicate is None:
        return False
    if predicate == relation.get("predicate"):
        return True
    verdicts = pair_verdicts(relation, regions, size)
    return verdicts is not None and verdicts.get(predicate) is True


def region_name(region: Mapping[str, Any]) -> str | None:
    """A region's name in a relation's text: its phrase, else its label (stripped; None without either).
    Export names record regions with it, eval finds meta regions' names in answers with it."""
    for key in ("phrase", "label"):
        v = region.get(key)
        if isinstance(v, str) and v.strip():
            return v.strip()
    return None


def stated_relation_right(
    relation: Mapping[str, Any], regions: list[Mapping[str, Any]], size: tuple[int, int], text: str
) -> bool | None:
    """Whether a model's ``text`` answers a ``yesno`` or ``what`` relation line rightly (None: it says no
    yes/no, or names no predicate; such an answer is wrong and a format error). Annotated relations: their
    words; yes/no: the line's answer; what: :func:`named_predicate_holds` of what :func:`read_relation`
    reads, the names taken from the meta regions."""
    if relation.get("source") == "annotation":
        return states_annotated(str(relation.get("predicate") or ""), text)
    if relation.get("form") == "yesno":
        got = read_yes_no(text)
        return None if got is None else got == relation.get("answer")
    i, j = relation.get("subject"), relation.get("object")
    names = [
        region_name(regions[k]) if isinstance(k, int) and 0 <= k < len(regions) else None for k in (i, j)
    ]
    said = read_relation(text, names[0], names[1])
    return None if said is None else named_predicate_holds(said, relation, regions, size)


def states_annotated(predicate: str, text: str) -> bool:
    """Whether ``text`` states a human-labelled (Visual Genome) predicate: its words, whole, in order."""
    words = " ".join(predicate.lower().split())
    return bool(words) and _whole(words).search(" ".join(text.lower().split())) is not None
