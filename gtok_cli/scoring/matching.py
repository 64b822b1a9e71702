"""Predictions matched to export lines (docs/spec.md#eval).

A prediction names its line by ``id`` (the line's ``id`` field or its ``meta.record_id``) or by ``line``
(0-based, shard order). Nothing is dropped silently: a line with no prediction is ``missing``, a prediction
whose id (or line) is not in the export is ``unknown_id``, a second prediction for a line already answered is
a ``duplicate`` (the first one is scored); each is counted and listed. An id shared by several export lines
cannot say which one it answers: that is an error telling to use ``line``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from gtok_cli.errors import InputError
from gtok_cli.scoring.predictions import Prediction

LISTED = 20
"""How many examples of each count a report lists."""


@dataclass
class Matched:
    answers: list[list[str] | None]
    """Per export line: the turns of its prediction, or None (missing)."""
    counts: Counter[str] = field(default_factory=Counter)
    listed: dict[str, list[str]] = field(default_factory=dict)
    """Per count, its first :data:`LISTED` examples (ids, or ``line N``)."""
    all: list[list[Prediction]] = field(default_factory=list)
    """With ``keep_all``: per export line, every prediction naming it, in file order (``gtok reward``'s
    best-of-n samples); empty otherwise."""
    unknown: list[Prediction] = field(default_factory=list)
    """With ``keep_all``: the predictions whose id (or line) is not in the export, in file order."""

    def note(self, what: str, example: str) -> None:
        self.counts[what] += 1
        examples = self.listed.setdefault(what, [])
        if len(examples) < LISTED:
            examples.append(example)


def match(
    predictions: Iterable[Prediction], ids: list[str | None], source: str, *, keep_all: bool = False
) -> Matched:
    """Match ``predictions`` to the export lines whose ids are ``ids`` (index = line). ``keep_all``: several
    predictions of one line are samples, not duplicates: every one is kept in :attr:`Matched.all`."""
    n = len(ids)
    first: dict[str, int] = {}
    shared: dict[str, list[int]] = {}
    for k, ident in enumerate(ids):
        if ident is None:
            continue
        if ident in first:
            shared.setdefault(ident, [first[ident]]).append(k)
        else:
            first[ident] = k
    out = Matched([None] * n, all=[[] for _ in range(n)] if keep_all else [])
    for p in predictions:
        if isinstance(p.key, int):
            k = p.key
            label = f"line {k}"
            if k >= n:
                out.note("unknown_id", label)
                if keep_all:
                    out.unknown.append(p)
                continue
        else:
            label = p.key
            if p.key in shared:
                lines = shared[p.key]
                raise InputError(
                    f"id {p.key!r} names {len(lines)} export lines ({', '.join(map(str, lines[:5]))}…); "
                    'name the line instead: {"line": N} (0-based, shard order)',
                    file=source,
                    record=f"line {p.lineno}",
                    field="id",
                    reason="prediction.ambiguous_id",
                )
            got = first.get(p.key)
            if got is None:
                out.note("unknown_id", label)
                if keep_all:
                    out.unknown.append(p)
                continue
            k = got
        if keep_all:
            out.all[k].append(p)
        if out.answers[k] is not None:
            if keep_all:
                continue
            out.note("duplicate", label)
            continue
        out.answers[k] = p.turns
    for k, a in enumerate(out.answers):
        if a is None:
            out.note("missing", ids[k] or f"line {k}")
    for name in ("missing", "unknown_id", "duplicate"):
        out.counts.setdefault(name, 0)
    return out
