"""The predictions file of ``gtok eval`` and ``gtok reward`` (docs/spec.md#eval): JSONL, one answer a line.

``{"id": "<the export line's id>", "text": "<raw output>"}``; ``turns`` (a list of strings) instead of
``text`` carries a multi-turn answer (a propose-and-refine conversation: the proposal, then each offset
turn; a ``multi`` line: one answer per question). ``{"line": N}`` (0-based over the whole export, in shard
order) names the line instead of ``id``. ``-`` reads stdin. A line that is not such an object is bad input
(exit 2, naming the file, the line and the field); what its text says is scored, never refused.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import msgspec
import orjson

from gtok_cli.errors import InputError
from gtok_cli.jsonio import STDIO, decode_lines_typed, read_input_bytes


@dataclass(frozen=True, slots=True)
class Prediction:
    lineno: int
    """1-based line of the predictions file."""
    key: str | int
    """The export line it answers: its id (str) or its 0-based index (int, from ``{"line": N}``)."""
    turns: list[str]
    """The answer's turns (one for ``text``)."""


class _Typed(msgspec.Struct, gc=False):
    """A well-formed prediction line, decoded in one C pass (other keys are skipped)."""

    id: str | None = None
    line: Annotated[int, msgspec.Meta(ge=0)] | None = None
    text: str | None = None
    turns: Annotated[list[str], msgspec.Meta(min_length=1)] | None = None


_TYPED = msgspec.json.Decoder(_Typed)


def read_predictions(path: str | Path) -> Iterator[Prediction]:
    """Every prediction of a JSONL file (``-``: stdin), checked line by line. A file whose every line is a
    well-formed prediction (and no line is blank) is decoded typed, in one pass; any other is read line by
    line, so an error names its line and field."""
    name = str(path)
    data = sys.stdin.buffer.read() if name == STDIO else read_input_bytes(path)
    rows = decode_lines_typed(_TYPED, data)  # None with a blank line: it would shift the line numbers
    if rows is not None:
        for k, r in enumerate(rows, 1):
            key: str | int | None = r.line if r.line is not None else r.id
            answer = r.turns if r.turns is not None else ([r.text] if r.text is not None else None)
            if key is None or key == "" or answer is None:
                yield parse_prediction(msgspec.to_builtins(r), name, k)  # names what is missing
                continue
            yield Prediction(k, key, answer)
        return
    for lineno, raw in enumerate(data.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise InputError(
                f"line {lineno} is not valid JSON: {exc}", file=name, reason="json.invalid"
            ) from None
        yield parse_prediction(obj, name, lineno)


def parse_prediction(obj: object, file: str, lineno: int) -> Prediction:
    """One prediction line's object checked: a bad one is an InputError naming the file, line and field."""

    def bad(message: str, field: str, expected: str, found: object) -> InputError:
        where = f"line {lineno}"
        return InputError(
            message,
            file=file,
            record=where,
            field=field,
            expected=expected,
            found=found,
            reason=f"prediction.{field}",
        )

    if not isinstance(obj, dict):
        raise bad("a prediction is a JSON object", "type", "{...}", type(obj).__name__)
    line = obj.get("line")
    key: str | int
    if line is not None:
        if not isinstance(line, int) or isinstance(line, bool) or line < 0:
            raise bad("line must be an integer >= 0 (0-based over the export)", "line", "0, 1, 2, ...", line)
        key = line
    else:
        ident = obj.get("id")
        if isinstance(ident, int) and not isinstance(ident, bool):
            ident = str(ident)
        if not isinstance(ident, str) or not ident:
            want = '"id": "<line id or meta.record_id>" or "line": N'
            raise bad("a prediction names its export line by id or line", "id", want, obj.get("id"))
        key = ident
    text, turns = obj.get("text"), obj.get("turns")
    if turns is not None:
        if not isinstance(turns, list) or not turns or not all(isinstance(t, str) for t in turns):
            raise bad("turns must be a non-empty list of strings", "turns", '["<turn 1>", ...]', turns)
        return Prediction(lineno, key, list(turns))
    if not isinstance(text, str):
        message = "a prediction carries its answer in text (a string) or turns (a list of strings)"
        raise bad(message, "text", "a string", text)
    return Prediction(lineno, key, [text])
