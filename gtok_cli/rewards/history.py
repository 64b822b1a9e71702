"""The offset stage's context: the answer being refined, the earlier offset turns, and the completion's turn.

A propose-and-refine conversation (docs/refine.md) answers first in grid tokens (the proposal), then each turn
holds one offset per anchor of the shapes alive. A reward of the offset stage needs what came before the
completion: ``previous`` is the assistant turns before it (the proposal, then earlier offset turns; a list, or
one string holding them all, as a chat-templated prompt does). Without ``previous`` the answer itself may hold
both: ``<box>…</box> <offset><box>…</box></offset>`` (the proposal outside ``<offset>``, the turn inside).

The state before the completion and after it are replayed by :func:`gtok_cli.refine.replay.replay` (the one
replay ``gtok show`` and ``gtok eval`` use). Proposal shape k stands for truth region k (answer order).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from gtok_cli.codecs import Shape
from gtok_cli.codecs.grid import OFFSET_TAG, GridCodec
from gtok_cli.refine.replay import Replay, replay
from gtok_cli.rewards.reading import Reading
from gtok_cli.scoring import read_answer, strip_fence

_REGION = re.compile(rf"<{OFFSET_TAG}>.*?</{OFFSET_TAG}>", re.S)
_BETWEEN_SHAPES = re.compile(r"[\s,]*")


@dataclass
class History:
    proposal: list[tuple[int, Shape]] = field(default_factory=list)
    """The answer being refined: (truth region, shape) in answer order; empty when there is none."""
    turns: list[str] = field(default_factory=list)
    """Earlier offset turns, in order."""
    answer_has_offsets: bool = False
    """Whether the completion holds an ``<offset>`` region."""


def offset_turns(text: str) -> list[str]:
    """The offset turns in ``text``, in order: consecutive ``<offset>`` regions separated only by blanks and
    commas form one turn (a turn wraps each shape in its own ``<offset>``)."""
    turns: list[list[str]] = []
    last_end = -1
    for m in _REGION.finditer(text):
        if turns and _BETWEEN_SHAPES.fullmatch(text[last_end : m.start()]):
            turns[-1].append(m.group(0))
        else:
            turns.append([m.group(0)])
        last_end = m.end()
    return [", ".join(t) for t in turns]


def read_history(
    reading: Reading, previous: str | Sequence[str] | None, *, from_answer: bool = False
) -> History:
    """What came before the completion (see the module docstring). ``from_answer``: with no ``previous``,
    take the proposal from the completion's own shapes outside ``<offset>``."""
    text = reading.answer.text if reading.answer.text else ""
    out = History(answer_has_offsets=f"<{OFFSET_TAG}>" in text)
    if not isinstance(reading.codec, GridCodec):
        return out
    texts = [previous] if isinstance(previous, str) else list(previous or [])
    if not texts and from_answer:
        out.proposal = list(enumerate(reading.shapes()))
        return out
    for t in texts:
        if not out.proposal:
            shapes = read_answer(t, reading.codec, reading.truth.size, strict=reading.strict).shapes()
            out.proposal = list(enumerate(shapes))
        out.turns += offset_turns(t)  # turns after the proposal, in the same text or the next ones
    return out


def before(reading: Reading, history: History) -> Replay:
    """The shapes alive before the completion: the proposal after the earlier turns."""
    return replay(reading.codec, history.proposal, history.turns, reading.truth.size)


def completion_turn(
    reading: Reading, alive: Sequence[tuple[int, Shape]], answer: str
) -> list[Shape | None] | None:
    """Each shape alive before the completion after the completion's offset turn, in order (None: deleted,
    dropped as :meth:`GridCodec.apply_refinement` drops a box that lost a corner, or given offsets that do not
    fit it: another kind or anchor count), or None when the completion
    holds no turn that applies: no ``<offset>``, a turn that cannot be read or does not pair one-to-one with
    the shapes alive (pairing would be a guess), and, when ``strict``, any shape it could not refine.

    Shape by shape (not :func:`replay`), so a deleted shape keeps its place."""
    codec = reading.codec
    if not isinstance(codec, GridCodec):
        return None
    turns = offset_turns(answer if reading.strict else strip_fence(answer)[0])
    if not turns:
        return None
    dec = codec.decode_refinement(", ".join(turns))
    if dec.errors or len(dec.shapes) != len(alive):
        return None
    out: list[Shape | None] = []
    for (_, shape), offsets in zip(alive, dec.shapes, strict=True):
        moved = codec.apply_refinement([shape], [offsets], reading.truth.size)
        if moved.errors and reading.strict:
            return None
        # offsets that do not fit the shape (kind, anchor count) or leave no shape: the shape is lost
        out.append(moved.shapes[0] if moved.shapes and not moved.errors else None)
    return out


def offset_stage_format(reading: Reading, history: History) -> bool:
    """The completion is exactly one refinement turn pairing one-to-one with the shapes alive before it."""
    codec = reading.codec
    if not isinstance(codec, GridCodec) or reading.answer.groundings or reading.answer.issues:
        return False
    alive = before(reading, history)
    if alive.errors:
        return False
    dec = codec.decode_refinement(reading.answer.text)
    if dec.errors or len(dec.shapes) != len(alive.shapes) or not dec.shapes:
        return False
    return all(
        so.kind == shape.kind and len(so.offsets) == len(shape.points())
        for so, (_, shape) in zip(dec.shapes, alive.shapes, strict=True)
    )
