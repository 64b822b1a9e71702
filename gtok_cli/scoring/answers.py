"""A model's raw answer read under a codec, leniently where the model's own parser is lenient.

``read_answer(text, codec, size)`` is ``codec.decode`` plus the repairs that real model output needs, each
counted by name in :attr:`Answer.lenient` so a report can say how often it was used (``LENIENCIES``):

- ``fence``: the answer is wrapped in a Markdown code fence (```` ```json … ``` ````); the fence's content is
  read. Spans are found in free text anyway, so this only counts.
- ``python_literal`` (JSON schemes ``qwen2.5-vl`` / ``qwen3-vl``): an object written Python-style
  (``{'bbox_2d': [10, 20, 110, 120], 'label': 'cat'}``) is read with :func:`ast.literal_eval` (a parser of
  literals, never code).
- ``truncated``: a response cut off inside its last object or span: the complete objects / spans before the
  cut still count. For the JSON schemes an unclosed list whose last object is unfinished; for every other
  scheme a malformed last span followed by the start of one more token (``<loc_4``), or by nothing when the
  span is not closed (``<box><grid_1_2>``).
- ``clipped`` (the schemes whose text holds plain integers: ``qwen2.5-vl``, ``qwen3-vl``, ``qwen-vl``,
  ``qwen2-vl``): a coordinate outside the image (negative, or beyond the scheme's scale) is clipped into it.
  Token schemes (``loc``, ``kosmos2``, ``paligemma``, ``grid``) have no token outside the image: an
  out-of-range token is out of vocabulary and stays an issue.

These are the cases of supervision's own Qwen2.5-VL parser and its tests (``supervision/detection/vlm.py``
``from_qwen_2_5_vl`` / ``recover_truncated_qwen_2_5_vl_response``, ``test/detection/test_vlm.py``: fenced
JSON, a Python-style list with single quotes, a truncated response whose earlier objects are recovered, an
out-of-bounds box). Where supervision keeps an out-of-bounds box unclipped (its test expects
``[-20.0, 0.0, 1400.0, 787.5]``), we clip it into the image as the gtok eval contract says; where it drops
an object without a ``label`` we keep it (our codec's text carries the label optionally).

``strict=True`` is exactly ``codec.decode`` (what ``verify`` and ``format_reward`` use): no repair.

Example:

    >>> from gtok_cli.codecs import get_codec
    >>> a = read_answer("```json\\n[{'bbox_2d': [-5, 0, 500, 1200], 'label': 'cat'}]\\n```",
    ...                 get_codec("qwen3-vl"), (640, 480))
    >>> a.shapes()[0].coords, sorted(a.lenient)
    ((0.0, 0.0, 320.0, 480.0), ['clipped', 'fence', 'python_literal'])
"""

from __future__ import annotations

import ast
import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from gtok_cli.codecs.base import Codec, Decoded, DecodeIssue, Grounding, Shape, Size

LENIENCIES = ("fence", "python_literal", "truncated", "clipped")
"""Every repair :func:`read_answer` may use, by the name it is counted under."""

JSON_SCHEMES = ("qwen2.5-vl", "qwen3-vl")
TAGGED_INT_SCHEMES = ("qwen-vl", "qwen2-vl")
MAX_LITERAL_CHARS = 100_000
"""An object longer than this is not handed to ``ast.literal_eval`` (its parser recurses)."""

_FENCE_OPEN = re.compile(r"```[A-Za-z0-9_+-]*[ \t]*\n?")
_SCALE = 1000  # the 0..1000 scale of qwen3-vl, qwen-vl, qwen2-vl


@dataclass
class Answer:
    """What an answer says: its groundings (shapes with labels) in text order, what could not be read, and the
    repairs used (:data:`LENIENCIES`)."""

    groundings: list[Grounding] = field(default_factory=list)
    issues: list[DecodeIssue] = field(default_factory=list)
    lenient: Counter[str] = field(default_factory=Counter)
    spans: list[tuple[int, int]] = field(default_factory=list)
    """Character span of each grounding in :attr:`text` (the text decoded, after repairs)."""
    text: str = ""

    def shapes(self) -> list[Shape]:
        return [s for g in self.groundings for s in g.shapes]

    @property
    def ok(self) -> bool:
        """At least one shape and nothing that could not be read."""
        return bool(self.groundings) and not self.issues

    def first(self, kind: str) -> Shape | None:
        """The first decoded shape of ``kind`` (the REC convention: the first box is the answer)."""
        return next((s for s in self.shapes() if s.kind == kind), None)


def strip_fence(text: str) -> tuple[str, bool]:
    """The content of the first Markdown code fence (to its closing fence or the end), and whether there was
    one. Text without a fence comes back unchanged."""
    start = text.find("```")
    if start < 0:
        return text, False
    m = _FENCE_OPEN.match(text, start)
    body_start = m.end() if m is not None else start + 3
    end = text.find("```", body_start)
    return (text[body_start:] if end < 0 else text[body_start:end]), True


def read_answer(text: str, codec: Codec, size: Size, *, strict: bool = False) -> Answer:
    """``text`` decoded with ``codec`` for an image of ``size`` (``(width, height)``), leniently unless
    ``strict`` (see the module docstring)."""
    if strict:
        return _answer(codec.decode(text, size), text, Counter())
    used: Counter[str] = Counter()
    body, fenced = strip_fence(text)
    if fenced:
        used["fence"] += 1
    if codec.name in JSON_SCHEMES:
        body = _repair_json(body, codec, size, used)
    elif codec.name in TAGGED_INT_SCHEMES:
        body = _clip_tagged(body, codec, used)
    dec = codec.decode(body, size)
    if dec.errors and _runs_to_the_end(body, dec.errors[-1]):
        # a malformed span running to the end of the text: a response cut off inside its last span
        dec.errors.pop()
        used["truncated"] += 1
    return _answer(dec, body, used)


_CUT_TOKEN = re.compile(r"\s*<[^<>]*\s*$")


_CLOSED = re.compile(r"(?:</[^<>]*>|<\|[a-z_]*end\|>|[)\]}])\s*$")


def _runs_to_the_end(body: str, last: DecodeIssue) -> bool:
    """Whether the issue is a span cut off by the end of the text: the start of one more token follows it
    (``<loc_4``), or nothing follows and the span itself is not closed (a closed span that is wrong, e.g.
    ``<box><grid_1_2><grid_40_4></box>``, stays an issue)."""
    rest = body[last.end :]
    if _CUT_TOKEN.fullmatch(rest) is not None:
        return True
    return not rest.strip() and _CLOSED.search(last.text) is None


def _answer(dec: Decoded, text: str, used: Counter[str]) -> Answer:
    return Answer(list(dec.groundings), list(dec.errors), used, list(dec.spans), text)


# ---- JSON schemes ------------------------------------------------------------------------------------------
def _json_extents(codec: Codec, size: Size) -> tuple[int, int]:
    """The integer range of x and y in the text: the resized image (qwen2.5-vl) or the 0..1000 scale."""
    resized = getattr(codec, "resized", None)
    if resized is not None:
        w, h = resized(size)
        return int(w), int(h)
    return _SCALE, _SCALE


def _repair_json(body: str, codec: Codec, size: Size, used: Counter[str]) -> str:
    """The first list of objects in ``body`` rewritten as canonical JSON when it needed a repair (Python-style
    objects, a cut-off end, coordinates outside the image); ``body`` unchanged otherwise."""
    start = _list_start(body)
    if start < 0:
        return body
    scanned = _scan_objects(body, start)
    if scanned is None:
        return body
    items, end, closed, literal = scanned
    sx, sy = _json_extents(codec, size)
    clipped = False
    for item in items:
        if isinstance(item, dict):
            clipped |= _clip_item(item, sx, sy)
    if closed and not literal and not clipped:
        return body  # nothing to repair: the codec reads it as written
    if not closed:
        used["truncated"] += 1
    if literal:
        used["python_literal"] += 1
    if clipped:
        used["clipped"] += 1
    return body[:start] + json.dumps(items, ensure_ascii=False) + (body[end:] if closed else "")


def _list_start(text: str) -> int:
    """Where the first ``[`` followed (after blanks) by ``{`` is, or -1."""
    pos = text.find("[")
    while pos >= 0:
        k = pos + 1
        while k < len(text) and text[k] in " \t\r\n":
            k += 1
        if k < len(text) and text[k] == "{":
            return pos
        pos = text.find("[", pos + 1)
    return -1


def _scan_objects(text: str, start: int) -> tuple[list[Any], int, bool, bool] | None:
    """The objects of the list opened at ``text[start]``: ``(items, end after ']', closed, python_literal)``;
    None when something other than objects stands in the list. An unfinished last object ends the scan
    (``closed`` False: the items before it are kept)."""
    items: list[Any] = []
    literal = False
    k, n = start + 1, len(text)
    while True:
        while k < n and text[k] in " \t\r\n,":
            k += 1
        if k >= n:
            return items, n, False, literal
        if text[k] == "]":
            return items, k + 1, True, literal
        if text[k] != "{":
            return None
        end = _object_end(text, k)
        if end < 0:
            return items, n, False, literal
        raw = text[k:end]
        try:
            items.append(json.loads(raw))
        except ValueError:
            value = _literal(raw)
            if value is None:
                return None
            items.append(value)
            literal = True
        k = end


def _object_end(text: str, k: int) -> int:
    """The index after the ``}`` closing the object opened at ``text[k]`` (quotes of either kind and their
    backslash escapes respected), or -1 when the text ends first."""
    depth, quote, n = 0, "", len(text)
    while k < n:
        c = text[k]
        if quote:
            if c == "\\":
                k += 1
            elif c == quote:
                quote = ""
        elif c in "\"'":
            quote = c
        elif c in "{[":
            depth += 1
        elif c in "}]":
            depth -= 1
            if depth == 0:
                return k + 1
        k += 1
    return -1


def _literal(raw: str) -> Any:
    if len(raw) > MAX_LITERAL_CHARS:
        return None
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _clip_item(item: dict[str, Any], sx: int, sy: int) -> bool:
    """Integers of ``bbox_2d`` / ``point_2d`` clipped to ``0..sx`` (x) / ``0..sy`` (y); whether any moved."""
    moved = False
    for key in ("bbox_2d", "point_2d"):
        values = item.get(key)
        if not isinstance(values, list):
            continue
        for k, v in enumerate(values):
            if isinstance(v, int) and not isinstance(v, bool):
                hi = sx if k % 2 == 0 else sy
                c = min(max(v, 0), hi)
                if c != v:
                    values[k] = c
                    moved = True
    return moved


# ---- tagged integer schemes (qwen-vl, qwen2-vl) ------------------------------------------------------------
_SIGNED_INT = re.compile(r"-?\d+")


def _clip_tagged(body: str, codec: Codec, used: Counter[str]) -> str:
    """Integers inside ``box_open … box_close`` clipped to ``0..1000``."""
    open_, close = getattr(codec, "box_open", None), getattr(codec, "box_close", None)
    if not isinstance(open_, str) or not isinstance(close, str) or open_ not in body:
        return body
    span = re.compile(re.escape(open_) + r"(.*?)" + re.escape(close), re.S)
    moved = False

    def clip_number(m: re.Match[str]) -> str:
        nonlocal moved
        v = int(m.group(0))
        c = min(max(v, 0), _SCALE)
        moved |= c != v
        return str(c)

    def clip_span(m: re.Match[str]) -> str:
        return open_ + _SIGNED_INT.sub(clip_number, m.group(1)) + close

    out = span.sub(clip_span, body)
    if moved:
        used["clipped"] += 1
        return out
    return body


# ---- many one-box answers at once --------------------------------------------------------------------------
@dataclass
class FirstBoxes:
    """The first box of each of many answers (:func:`first_boxes`)."""

    boxes: npt.NDArray[np.float64]
    """n×4 pixels; a NaN row where no box could be read (a miss)."""
    format_error: npt.NDArray[np.bool_]
    """Per answer: it decoded to no shape, or something in it could not be read."""
    lenient: Counter[str] = field(default_factory=Counter)
    """Repairs used, summed over the answers."""
    issues: dict[int, str] = field(default_factory=dict)
    """Row → the first thing that could not be read (or ``"no shape"``), for the rows with a format error."""


def first_boxes(
    texts: Sequence[str], codec: Codec, sizes: npt.ArrayLike, *, strict: bool = False
) -> FirstBoxes:
    """The first decoded box of every answer, equal row by row to ``read_answer(...).first("box")`` (strict: a
    miss when anything could not be read, as ``codec.decode_boxes``), vectorised: the codec's batch
    ``decode_boxes`` reads the canonical one-box answers, only the rest go through :func:`read_answer`."""
    s = np.asarray(sizes, dtype=np.int64).reshape(-1, 2)
    boxes = codec.decode_boxes(texts, s)
    bad = np.asarray(np.isnan(boxes).any(axis=1), dtype=bool)
    out = FirstBoxes(boxes, bad.copy())
    rows = np.flatnonzero(bad).tolist()
    if not strict:  # a fenced answer may decode as is; its fence still counts
        rows = sorted(set(rows) | {k for k, t in enumerate(texts) if "```" in t})
    for k in rows:
        answer = read_answer(texts[k], codec, (int(s[k, 0]), int(s[k, 1])), strict=strict)
        out.lenient.update(answer.lenient)
        box = answer.first("box")
        usable = box is not None and (answer.ok or not strict)
        out.boxes[k] = box.coords if usable and box is not None else np.nan
        out.format_error[k] = not answer.ok
        if not answer.ok:
            out.issues[k] = answer.issues[0].message if answer.issues else "no shape"
    return out
