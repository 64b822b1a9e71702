"""The export hot path: ``rec`` lines for one-box records, spliced from pre-rendered byte fragments.

The generic path (``tasks.build_rec`` → ``Sample`` → ``render_turns`` → ``TrainerFormat.build`` →
``orjson.dumps``) costs several dicts and a dozen calls per record. Here the line *template* is made once
by running that same generic code on a sentinel record and serialising the result; the fragments between
the sentinels are then joined with each record's own values, each serialised by orjson. orjson's output
is compositional (no indentation, context-free escaping), so the bytes are exactly those of the generic
path.

A batch takes this path only when every record in it is the plain case (see :meth:`RecLines.run`); anything
else (several regions, odd types, missing keys) sends the whole batch down the generic path, so errors,
skips and their messages stay exactly as before.
"""

from __future__ import annotations

import re
import string
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec
import numpy as np
import orjson

from gtok_cli.codecs import Codec
from gtok_cli.export import tasks
from gtok_cli.export.templates import Templates
from gtok_cli.record_entry import MARGIN
from gtok_cli.shards.writer import LineBlock
from gtok_cli.trainer_formats import get_format

_SENTINEL = "@@gtok-slot-{}@@"
_SLOTS = ("id", "file", "user", "answer", "width", "height", "bbox", "mask_tokens", "label", "text")
_SLOT_RE = re.compile(rb'"?@@gtok-slot-([a-z_]+)@@"?')

PartOf = Callable[[Any], int]
Meta = Callable[[tasks.Sample], dict[str, Any]]


def line_template(fmt: str, meta: Meta | None, ctx: tasks.TaskContext) -> tuple[list[bytes], list[str]]:
    """``(fragments, slots)``: a ``rec`` line is ``fragments[0] + v(slots[0]) + fragments[1] + …``.

    A slot inside a longer JSON string (the user turn after the image tag) is named with a ``+`` suffix: its
    value is the escaped text without quotes.
    """
    s = {name: _SENTINEL.format(name) for name in _SLOTS}
    record = {
        "id": s["id"],
        "task": "referring",
        "text": s["text"],
        "image": {"file": s["file"]},
        "regions": [{"bbox": [s["bbox"], 0, 0, 0], "mask_tokens": s["mask_tokens"], "label": s["label"]}],
    }
    probe = tasks.TaskContext("rec", 0, "box", ctx.codec, Templates({"rec": (s["user"],)}), ctx.grid)
    sample = tasks.build_rec(record, (s["width"], s["height"]), probe)  # type: ignore[arg-type]
    sample.regions[0]["bbox"] = s["bbox"]
    turns = tasks.render_turns(sample, [s["answer"]])
    obj = get_format(fmt).build(sample.sample_id, sample.image_file, turns)
    if meta is not None:
        obj["meta"] = meta(sample)
    data = orjson.dumps(obj, option=orjson.OPT_APPEND_NEWLINE)
    fragments: list[bytes] = []
    slots: list[str] = []
    pos = 0
    for m in _SLOT_RE.finditer(data):
        whole = m.group(0).startswith(b'"') and m.group(0).endswith(b'"')
        if not whole:  # inside a longer string: keep the quote(s) that belong to it
            start = m.start(0) + (1 if m.group(0).startswith(b'"') else 0)
            end = m.end(0) - (1 if m.group(0).endswith(b'"') else 0)
        else:
            start, end = m.start(0), m.end(0)
        fragments.append(data[pos:start])
        slots.append(m.group(1).decode() + ("" if whole else "+"))
        pos = end
    fragments.append(data[pos:])
    return fragments, slots


def _join_pieces(template: str) -> list[str] | None:
    """``pieces`` with ``text.join(pieces) == template.format(expression=text)``, or None when the template
    uses conversions or format specs (then ``str.format`` is called per record)."""
    if "\x00" in template:
        return None
    for _, name, spec, conv in string.Formatter().parse(template):
        if name is not None and (name != "expression" or spec or conv):
            return None
    return template.format(expression="\x00").split("\x00")


_VALUE_CODE = {
    "id": "dumps(rid)",
    "file": "dumps(file)",
    "user+": "dumps(prompt)[1:-1]",
    "width": "b'%d' % width",
    "height": "b'%d' % height",
    "bbox": "dumps(bbox)",
    "mask_tokens": "dumps(mask_tokens)",
    "label": "dumps(label)",
    "text": "dumps(text)",
}
Parts = Callable[[str, Any, str, int, int, Any, Any, Any, str], tuple[bytes, bytes]]


def compile_parts(fragments: list[bytes], slots: list[str]) -> Parts | None:
    """A function of one record's values returning the line's bytes before and after the answer; None when
    the template is not the expected shape (the fast path is then off)."""
    if slots.count("answer") != 1 or not set(slots) - {"answer"} <= set(_VALUE_CODE):
        return None
    ns: dict[str, Any] = {"dumps": orjson.dumps}
    used = sorted(set(slots) - {"answer"})
    body = [f"    v{k} = {_VALUE_CODE[name]}\n" for k, name in enumerate(used)]
    head: list[str] = []
    tail: list[str] = []
    target = head
    for k, frag in enumerate(fragments):
        ns[f"F{k}"] = frag
        target.append(f"F{k}")
        if k < len(slots):
            if slots[k] == "answer":
                target = tail
            else:
                target.append(f"v{used.index(slots[k])}")
    src = (
        "def parts(rid, file, prompt, width, height, bbox, mask_tokens, label, text):\n"
        + "".join(body)
        + f"    return b''.join(({', '.join(head)},)), b''.join(({', '.join(tail)},))\n"
    )
    exec(compile(src, "<gtok fastlines>", "exec"), ns)
    fn: Parts = ns["parts"]
    return fn


class RecLines:
    """``rec`` lines of a batch of one-box ``referring`` records (``--shape box``, no refinement)."""

    def __init__(
        self, parts: Parts, ctx: tasks.TaskContext, codec: Codec, fragments: list[bytes], slots: list[str]
    ) -> None:
        self.codec = codec
        self.parts = parts
        self.fragments = [f.decode() for f in fragments]
        self.slots = slots
        self.formatted = 0
        """Batches built by :meth:`_format_lines` (the tests check which path ran)."""
        self.rids: list[str] = []
        """The ids of the last batch's samples (export checks them unique across batches)."""
        options = ctx.templates.by_task["rec"]
        self.options = options
        self.pieces = [_join_pieces(t) for t in options]
        self.crc_prefix = zlib.crc32(f"{ctx.seed}\x1frec\x1f".encode())

    @staticmethod
    def make(fmt: str, meta: Meta | None, ctx: tasks.TaskContext, codec: Codec) -> RecLines | None:
        fragments, slots = line_template(fmt, meta, ctx)
        parts = compile_parts(fragments, slots)
        return None if parts is None else RecLines(parts, ctx, codec, fragments, slots)

    def run(
        self, data: bytes, part_of: PartOf | None, parts: frozenset[int]
    ) -> tuple[dict[int, LineBlock], Counter[int], dict[int, Counter[str]]] | None:
        """Output lines per part (as blocks), records read per part, skips per part, from a blob of whole
        record lines; None when any record of the batch is not the plain case (the caller then runs the
        generic path on the whole batch, which gives the errors and their messages)."""
        if part_of is None:
            done = self._run_uniform(data, next(iter(parts)))
            if done is not None:
                return done
        try:
            records: list[FastRecord] = _RECORDS.decode_lines(data)
        except (msgspec.MsgspecError, ValueError):  # ValueError: invalid UTF-8
            return None
        crc32, unset = zlib.crc32, msgspec.UNSET
        options, pieces, prefix, n = self.options, self.pieces, self.crc_prefix, len(self.options)
        cols = _Columns()
        read: Counter[int] = Counter()
        skipped: dict[int, Counter[str]] = {p: Counter() for p in parts}
        for rec in records:
            image = rec.image
            part = 0 if part_of is None else part_of(image.id)
            if part not in parts:
                continue
            task = rec.task
            if task is unset:
                return None
            read[part] += 1
            if task != "referring":
                skipped[part][f"record_task.{task}"] += 1
                continue
            text = rec.text
            if not isinstance(text, str) or not text.strip():
                skipped[part]["record.no_text"] += 1
                continue
            regions = rec.regions
            rid = rec.id
            if regions is unset or len(regions) != 1 or type(rid) is not str or type(image.file) is not str:
                return None
            region = regions[0]
            bbox = region.bbox
            if bbox is unset or region.polyline is not None:
                return None
            k = crc32(rid.encode(), prefix) % n
            p = pieces[k]
            cols.rids.append(rid)
            cols.files.append(image.file)
            cols.prompts.append(text.join(p) if p is not None else options[k].format(expression=text))
            cols.widths.append(image.width)
            cols.heights.append(image.height)
            cols.boxes.append(bbox)
            cols.mask_tokens.append(region.mask_tokens)
            cols.labels.append(region.label)
            cols.texts.append(text)
            cols.parts.append(part)
        block = self._lines(cols)
        if block is None:
            return None
        self.rids = cols.rids
        if len(parts) == 1:
            return {next(iter(parts)): block}, read, skipped
        out: dict[int, list[bytes]] = {p: [] for p in parts}
        for line, part in zip(block.line_list(), cols.parts, strict=True):
            out[part].append(line)
        return {p: LineBlock.of(v) for p, v in out.items()}, read, skipped

    def _run_uniform(
        self, data: bytes, part: int
    ) -> tuple[dict[int, LineBlock], Counter[int], dict[int, Counter[str]]] | None:
        """A batch (one part) whose every record is a one-box ``referring`` record with the plain types
        (msgspec checks that while it parses, :class:`UniformRecord`): columns by comprehension, no per-record
        branches. None when any record is not so (then :meth:`run`'s loop)."""
        try:
            records: list[UniformRecord] = _UNIFORM.decode_lines(data)
        except (msgspec.MsgspecError, ValueError):
            return None
        cols = _Columns()
        cols.texts = [r.text for r in records]
        if not all(map(str.strip, cols.texts)):  # a blank text is a skip: the loop counts it
            return None
        cols.rids = rids = [r.id for r in records]
        images = [r.image for r in records]
        cols.files = [i.file for i in images]
        cols.widths = [i.width for i in images]
        cols.heights = [i.height for i in images]
        regions = [r.regions[0] for r in records]
        cols.boxes = [g.bbox for g in regions]
        cols.labels = [g.label for g in regions]
        cols.mask_tokens = [None] * len(records)
        options, pieces, prefix, n = self.options, self.pieces, self.crc_prefix, len(self.options)
        crc32 = zlib.crc32
        prompts = []
        for rid, text in zip(rids, cols.texts, strict=True):
            k = crc32(rid.encode(), prefix) % n
            p = pieces[k]
            prompts.append(text.join(p) if p is not None else options[k].format(expression=text))
        cols.prompts = prompts
        block = self._lines(cols)
        if block is None:
            return None
        self.rids = rids
        return {part: block}, Counter({part: len(records)}), {part: Counter()}

    def _lines(self, cols: _Columns) -> LineBlock | None:
        """The batch's lines; None when a record may fail the entry check (:func:`entry_ok`)."""
        if not cols.rids:
            return LineBlock.of([])
        boxes = np.asarray(cols.boxes, dtype=np.float64)
        sizes = np.column_stack((cols.widths, cols.heights)).astype(np.int64)
        if not entry_ok(cols, boxes, sizes):
            return None
        answers = self.codec.encode_boxes(boxes, sizes, cols.texts)
        blob = self._format_blob(cols, answers)
        return LineBlock.of(self._build_lines(cols, answers)) if blob is None else LineBlock.of_blob(blob)

    def _build_lines(self, cols: _Columns, answers: list[str]) -> list[bytes]:
        """Each line from its values serialised one by one (orjson): any value goes."""
        dumps, build = orjson.dumps, self.parts
        out = []
        for k, answer in enumerate(answers):
            head, tail = build(
                cols.rids[k],
                cols.files[k],
                cols.prompts[k],
                cols.widths[k],
                cols.heights[k],
                list(cols.boxes[k]),
                cols.mask_tokens[k],
                cols.labels[k],
                cols.texts[k],
            )
            out.append(head + dumps(answer) + tail)
        return out

    def _format_blob(self, cols: _Columns, answers: list[str]) -> bytes | None:
        """The whole batch's lines as one blob, when every string's JSON form is its own text in quotes
        (nothing to escape) and labels and mask tokens are all null or all plain strings: the template's
        constant pieces and the value columns are interleaved into one list by slice assignment and joined
        once (no per-line call). The boxes are serialised by orjson in one call and cut apart. None otherwise
        (then :meth:`_build_lines`). Same bytes either way."""
        if not (_plain(cols.rids) and _plain(cols.prompts) and _plain(cols.texts) and _plain(answers)):
            return None
        if not (_all_str(cols.files) and _plain(cols.files)):
            return None
        if any(m is not None for m in cols.mask_tokens):
            return None
        labels_null = all(v is None for v in cols.labels)
        if not labels_null and not (_all_str(cols.labels) and _plain(cols.labels)):
            return None
        # '[[x1,y1,x2,y2],[…]]': numbers only, so "],[" separates the boxes
        boxes = orjson.dumps(cols.boxes).decode()[2:-2].split("],[")
        by_slot: dict[str, list[Any]] = {
            "id": ['"', cols.rids, '"'],
            "file": ['"', cols.files, '"'],
            "user+": [cols.prompts],
            "answer": ['"', answers, '"'],
            "width": [list(map(str, cols.widths))],
            "height": [list(map(str, cols.heights))],
            "bbox": ["[", boxes, "]"],
            "mask_tokens": ["null"],
            "label": ["null"] if labels_null else ['"', cols.labels, '"'],
            "text": ['"', cols.texts, '"'],
        }
        items: list[Any] = [self.fragments[0]]
        for slot, frag in zip(self.slots, self.fragments[1:], strict=True):
            items += [*by_slot[slot], frag]
        layout: list[Any] = []  # constants merged: str, column, str, column, …
        for item in items:
            if isinstance(item, str) and layout and isinstance(layout[-1], str):
                layout[-1] += item
            else:
                layout.append(item)
        n, k = len(answers), len(layout)
        flat: list[str] = [""] * (n * k)
        for at, item in enumerate(layout):
            flat[at::k] = [item] * n if isinstance(item, str) else item
        self.formatted += 1
        return "".join(flat).encode()


@dataclass
class _Columns:
    """The values of a batch's plain records, one list per slot."""

    rids: list[str] = field(default_factory=list)
    files: list[Any] = field(default_factory=list)
    prompts: list[str] = field(default_factory=list)
    widths: list[int] = field(default_factory=list)
    heights: list[int] = field(default_factory=list)
    boxes: list[Any] = field(default_factory=list)
    mask_tokens: list[Any] = field(default_factory=list)
    labels: list[Any] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    parts: list[int] = field(default_factory=list)


def entry_ok(cols: _Columns, boxes: np.ndarray, sizes: np.ndarray) -> bool:
    """The entry check (:mod:`gtok_cli.record_entry`, less the ids: :mod:`.ids`) on a batch's columns at once
    (``boxes`` N×4, ``sizes`` N×2 of them): False when any record may fail it (the caller then takes the
    generic path, which checks each record and names the first that fails). Ids and files are strings here,
    boxes numbers (the decoders' types and :meth:`RecLines.run`'s loop see to that)."""
    if not all(cols.rids) or not all(cols.files):
        return False
    x1, y1, x2, y2 = boxes.T
    w, h = sizes.T
    bx, by = MARGIN * w, MARGIN * h
    # NaN fails every comparison, inf the bounds
    ok = (w > 0) & (h > 0) & (-bx <= x1) & (x1 <= x2) & (x2 <= w + bx) & (-by <= y1) & (y1 <= y2)
    ok &= (y2 <= h + by) & (x1 <= w) & (y1 <= h) & (x2 >= 0) & (y2 >= 0)
    return bool(ok.all())


def _plain(values: list[str]) -> bool:
    """No string needs escaping. One check over them all (a character never spans two strings): no quote, no
    backslash, and all printable, which rules out controls and surrogates (and, needlessly but safely, a few
    other characters orjson writes as they are, such as U+2028)."""
    joined = "".join(values)
    return '"' not in joined and "\\" not in joined and joined.isprintable()


def _all_str(values: list[Any]) -> bool:
    return all(type(v) is str for v in values)


# The fields of a record the plain ``rec`` case reads, typed as the generic path needs them (anything else
# fails to decode, and the batch takes the generic path). Keys not named here are skipped unparsed.
Number = int | float


class FastImage(msgspec.Struct, gc=False):
    id: Any
    width: int
    height: int
    file: Any = msgspec.UNSET


class FastRegion(msgspec.Struct, gc=False):
    bbox: tuple[Number, Number, Number, Number] | msgspec.UnsetType = msgspec.UNSET
    mask_tokens: Any = None
    label: Any = None
    polyline: Any = None


class FastRecord(msgspec.Struct, gc=False):
    image: FastImage
    id: Any = msgspec.UNSET
    task: Any = msgspec.UNSET
    text: Any = None
    regions: list[FastRegion] | msgspec.UnsetType = msgspec.UNSET


_RECORDS = msgspec.json.Decoder(FastRecord)


class UniformImage(msgspec.Struct, gc=False):
    id: Any
    file: str
    width: int
    height: int


class UniformRegion(msgspec.Struct, gc=False):
    bbox: tuple[Number, Number, Number, Number]
    mask_tokens: None = None
    label: str | None = None
    polyline: None = None


class UniformRecord(msgspec.Struct, gc=False):
    """A one-box ``referring`` record with plain types: what :meth:`RecLines._run_uniform` needs."""

    id: str
    task: Literal["referring"]
    text: str
    image: UniformImage
    regions: tuple[UniformRegion]


_UNIFORM = msgspec.json.Decoder(UniformRecord)
