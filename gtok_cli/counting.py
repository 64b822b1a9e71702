"""Grounded counting: what export writes, verify re-checks and eval reads (docs/spec.md#counting).

One floor below the stages, so export (writes the answer), verify (re-reads it) and eval (scores a model's
answer) share the one spelling of a count answer and the one reading of it:

- the answer of "How many X are in the image?" is the number in digits, then, when it is not 0, ``": "`` and
  one grounded shape per counted instance in the scheme's tokens: ``3: <box>…</box><box>…</box><box>…</box>``;
  a zero answer is ``0`` alone;
- :func:`stated_count` reads the number back from a model's answer: a JSON ``"count": N``, else the first
  number in the prose before the answer's first span (digits; a number word ``zero`` … ``ninety-nine``;
  ``none`` / ``no dogs`` = 0; ``there is a`` / ``a single`` = 1; a code fence skipped, a numbered list's item
  numbers passed over); None when the answer states no number. Export's own ``N: `` head is
  the first case of the prose.

Example:

    >>> count_answer_head(3), count_answer_head(0)
    ('3: ', '0')
    >>> stated_count("3: <box>1,2,3,4</box>"), stated_count("There are two."), stated_count("<box>…")
    (3, 2, None)
    >>> stated_count("I count 12 dogs."), stated_count("twenty-one"), stated_count('{"count": 4}')
    (12, 21, 4)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

TASK = "count"
_UNITS = [
    *("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"),
    *("eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"),
]
_TENS = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_NUMBER = re.compile(
    r"(?<![\w.,])(\d{1,9})(?![.,]\d|\w)"  # digits, not part of a decimal, 3,000, 1990s, 640x480 or 1st
    r"|\b(" + "|".join(_TENS) + r")(?:[- ](" + "|".join(_UNITS[1:10]) + r"))?\b"  # twenty … ninety-nine
    r"|\b(" + "|".join(_UNITS) + r"|none)\b"  # zero … nineteen, none
    r"|\b(no)\s+(?=[a-z])"  # "no dogs", "there is no dog" (not "No, …" / "No.": a yes/no word)
    r"|\b(there\s+is\s+an?|there's\s+an?|a\s+single|only\s+an?)\s+(?=[a-z])",  # one
    re.IGNORECASE,
)
_JSON_COUNT = re.compile(r'"count"\s*:\s*(\d{1,9})\b')
_SPAN_START = re.compile(r"[\[<{]|\(\s*-?\d+(?:\.\d+)?\s*,")
"""Where a scheme's first span can begin (``[`` JSON / plain lists, ``<`` tokens, ``{`` MiniGPT-v2, ``(`` and
a number: Qwen corner pairs after ``skip_special_tokens``): a count is read only in the prose before it."""
_LIST_MARKER = re.compile(r"(?m)^\s*\d{1,3}[.)]\s+(?=\S)")
"""``1. dog at left`` lines: item numbers, not counts, when an answer has two or more of them."""
_PROSE = 200
"""At most this much prose is read for the number (an answer is short; a caption's numbers are not counts)."""


def count_answer_head(n: int) -> str:
    """The text before the grounded shapes of a count answer: ``"N: "``, or ``"0"`` (no shape follows)."""
    if n < 0:
        raise ValueError(f"a count is never negative: {n}")
    return f"{n}: " if n else "0"


def stated_count(text: str) -> int | None:
    """The number an answer states (see the module docstring), None when it states none."""
    body = text.strip()
    if body.startswith("```"):  # a fenced answer: its first line names the language
        body = body.split("\n", 1)[1] if "\n" in body else body[3:]
    m = _JSON_COUNT.search(body)
    if m is not None:
        return int(m.group(1))
    span = _SPAN_START.search(body)
    prose = body[: span.start() if span else _PROSE][:_PROSE]
    if len(_LIST_MARKER.findall(prose)) >= 2:  # a numbered list: its item numbers are not the count
        prose = _LIST_MARKER.sub(" ", prose)
    n = _NUMBER.search(prose)
    if n is None:
        return None
    digits, tens, unit, word, no, one = n.groups()
    if digits is not None:
        return int(digits)
    if tens is not None:
        return 20 + 10 * _TENS.index(tens.lower()) + (_UNITS.index(unit.lower()) if unit else 0)
    if no is not None:
        return 0
    if one is not None:
        return 1
    return 0 if word.lower() == "none" else _UNITS.index(word.lower())


@dataclass(frozen=True)
class CountSettings:
    """``--task count``'s options, and the category table export reads from its records.

    ``negatives``: zero-count questions per positive question written (per image, ``floor(R·n + u)`` with
    ``u`` a uniform of the seed and record id); ``max_count``: a category with more instances is skipped
    (``count.over_max``); ``categories``: ``(dataset, key, label)`` of every category the record files name
    (key = ``category_id``, else the label), the universe negatives are drawn from."""

    negatives: float = 0.0
    max_count: int | None = None
    categories: tuple[tuple[str, int | str, str], ...] = field(default=(), compare=False)

    def to_json(self) -> dict[str, Any]:
        """The manifest's ``count`` (the category table is the records', hashed in ``sources``)."""
        return {"negatives": self.negatives, "max_count": self.max_count}

    @staticmethod
    def from_json(obj: Any) -> CountSettings:
        cap = obj["max_count"]
        return CountSettings(float(obj["negatives"]), None if cap is None else int(cap))

    @cached_property
    def by_dataset(self) -> dict[str, dict[int | str, str]]:
        """``{dataset: {key: label}}`` of the table (built once per worker, read per record)."""
        out: dict[str, dict[int | str, str]] = {}
        for dataset, key, label in self.categories:
            out.setdefault(dataset, {})[key] = label
        return out


def meta_count(meta: Any) -> tuple[str, int] | None:
    """``(label, n)`` of a line's ``meta.count``, None when the meta has none or it is malformed."""
    c = meta.get("count") if isinstance(meta, dict) else None
    if not isinstance(c, dict):
        return None
    label, n = c.get("label"), c.get("n")
    if not isinstance(label, str) or not isinstance(n, int) or isinstance(n, bool) or n < 0:
        return None
    return label, n
