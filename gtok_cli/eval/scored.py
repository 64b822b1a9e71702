"""What every task scorer of ``gtok eval`` returns, and the reading of one multi-turn answer.

A :class:`Scored` holds per-line values (arrays over the export's lines: misses are 0), which lines had a
format error (no shape, or something that could not be read) and why, the leniencies used, and an
``aggregate(rows)`` that turns the per-line values of any subset of lines into the task's metrics (the whole
export, one dataset, one split).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from gtok_cli.codecs import Codec, Shape
from gtok_cli.scoring import Answer, Truth, attach_record_masks, read_answer, truth_of
from gtok_cli.scoring.export_index import ExportIndex

Rows = npt.NDArray[np.int64]
Aggregate = Callable[[Rows], dict[str, float | None]]


@dataclass
class Inputs:
    """What a task scorer reads: the export, the matched answers (one per line, None: missing), the scheme,
    the decoding mode and the records (real masks) when given."""

    index: ExportIndex
    answers: list[list[str] | None]
    codec: Codec
    strict: bool = False
    records: dict[str, dict[str, Any]] | None = None

    @property
    def n(self) -> int:
        return self.index.n

    def truth(self, k: int) -> Truth:
        """Line k's truth, with the records' real masks attached (matched by bbox) when records are given."""
        truth = truth_of(self.index.meta(k))
        if self.records is not None:
            attach_record_masks(truth.regions, self.records.get(truth.record_id))
        return truth


@dataclass
class Scored:
    n: int
    aggregate: Aggregate
    per_sample: dict[str, npt.NDArray[Any]] = field(default_factory=dict)
    """Per-line values written by ``--per-sample`` (``iou``, ``hit``, …), NaN where not applicable."""
    format_error: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, dtype=bool))
    issues: dict[int, str] = field(default_factory=dict)
    lenient: Counter[str] = field(default_factory=Counter)
    decoded: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    """Per line (where kept): the decoded geometry, ``Shape.to_json()`` each (with its label)."""
    decoded_boxes: npt.NDArray[np.float64] | None = None
    """The vectorised REC path's first box per line (NaN row: none), instead of :attr:`decoded`."""
    info: dict[str, Any] = field(default_factory=dict)
    """Task facts the report shows (e.g. where the truth masks came from)."""

    def note(self, k: int, answer: Answer) -> None:
        """Record one line's answer: its leniencies and, when it has a format error, why."""
        self.lenient.update(answer.lenient)
        if not answer.ok:
            self.format_error[k] = True
            self.issues[k] = answer.issues[0].message if answer.issues else "no shape"

    def decoded_of(self, k: int) -> list[dict[str, Any]]:
        if self.decoded_boxes is not None:
            row = self.decoded_boxes[k]
            return [] if np.isnan(row).any() else [{"kind": "box", "coords": row.tolist()}]
        return self.decoded.get(k, [])


def shapes_json(groundings: list[tuple[str | None, Shape]]) -> list[dict[str, Any]]:
    out = []
    for label, shape in groundings:
        j = shape.to_json()
        if label is not None:
            j["label"] = label
        out.append(j)
    return out


def read_turns(
    turns: list[str], codec: Codec, size: tuple[int, int], strict: bool
) -> tuple[Answer, list[int]]:
    """All turns of one answer read as one: the groundings in order, with the turn each came from. Strict: an
    answer with anything unreadable keeps no shape (it scores as a miss, as ``codec.decode_boxes`` does)."""
    merged = Answer()
    turn_of: list[int] = []
    for t, text in enumerate(turns):
        a = read_answer(text, codec, size, strict=strict)
        merged.groundings += a.groundings
        merged.issues += a.issues
        merged.lenient.update(a.lenient)
        merged.spans += a.spans
        turn_of += [t] * len(a.groundings)
        merged.text = a.text if t == 0 else merged.text
    if strict and merged.issues:
        merged.groundings, turn_of = [], []
    return merged, turn_of


def zeros(n: int) -> npt.NDArray[np.float64]:
    return np.zeros(n, dtype=np.float64)


def mean(values: npt.NDArray[Any]) -> float | None:
    return float(values.mean()) if len(values) else None
