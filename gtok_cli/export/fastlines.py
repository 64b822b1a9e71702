"""The export hot path: ``rec`` lines for one-box records, spliced from pre-rendered byte fragments.

The generic path (``tasks.build_rec`` → ``Sample`` → ``render_turns`` → ``formats.BUILDERS`` →
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
from typing import Any

import numpy as np
import orjson

from gtok_cli.codecs import Codec
from gtok_cli.export import formats, tasks
from gtok_cli.export.templates import Templates

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
    obj = formats.BUILDERS[fmt](sample.sample_id, sample.image_file, turns)
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

    def __init__(self, parts: Parts, ctx: tasks.TaskContext, codec: Codec) -> None:
        self.codec = codec
        self.parts = parts
        options = ctx.templates.by_task["rec"]
        self.options = options
        self.pieces = [_join_pieces(t) for t in options]
        self.crc_prefix = zlib.crc32(f"{ctx.seed}\x1frec\x1f".encode())

    @staticmethod
    def make(fmt: str, meta: Meta | None, ctx: tasks.TaskContext, codec: Codec) -> RecLines | None:
        parts = compile_parts(*line_template(fmt, meta, ctx))
        return None if parts is None else RecLines(parts, ctx, codec)

    def run(
        self, lines: list[bytes], part_of: PartOf | None, parts: frozenset[int]
    ) -> tuple[dict[int, list[bytes]], Counter[int], dict[int, Counter[str]]] | None:
        """Output lines per part, records read per part, skips per part; None when any record of the batch
        is not the plain case (the caller then runs the generic path on the whole batch)."""
        loads, crc32, build = orjson.loads, zlib.crc32, self.parts
        options, pieces, prefix, n = self.options, self.pieces, self.crc_prefix, len(self.options)
        heads: list[bytes] = []
        tails: list[bytes] = []
        where: list[int] = []
        boxes: list[Any] = []
        sizes: list[tuple[int, int]] = []
        labels: list[str] = []
        read: Counter[int] = Counter()
        skipped: dict[int, Counter[str]] = {p: Counter() for p in parts}
        for raw in lines:
            if not raw.strip():
                continue
            try:
                rec = loads(raw)
            except orjson.JSONDecodeError:
                return None
            if type(rec) is not dict:
                return None
            image = rec.get("image")
            if type(image) is not dict or "id" not in image:
                return None
            part = 0 if part_of is None else part_of(image["id"])
            if part not in parts:
                continue
            w = image.get("width")
            h = image.get("height")
            if type(w) is not int or type(h) is not int or "task" not in rec:
                return None
            read[part] += 1
            task = rec["task"]
            if task != "referring":
                skipped[part][f"record_task.{task}"] += 1
                continue
            text = rec.get("text")
            if not isinstance(text, str) or not text.strip():
                skipped[part]["record.no_text"] += 1
                continue
            regions = rec.get("regions")
            rid = rec.get("id")
            if type(regions) is not list or len(regions) != 1 or type(rid) is not str:
                return None
            region = regions[0]
            if type(region) is not dict or "file" not in image:
                return None
            bbox = region.get("bbox")
            if type(bbox) is not list or len(bbox) != 4:
                return None
            k = crc32(rid.encode(), prefix) % n
            p = pieces[k]
            prompt = text.join(p) if p is not None else options[k].format(expression=text)
            head, tail = build(
                rid, image["file"], prompt, w, h, bbox, region.get("mask_tokens"), region.get("label"), text
            )
            heads.append(head)
            tails.append(tail)
            boxes.append(bbox)
            sizes.append((w, h))
            labels.append(text)
            where.append(part)
        out: dict[int, list[bytes]] = {p: [] for p in parts}
        if heads:
            answers = self.codec.encode_boxes(
                np.asarray(boxes, dtype=np.float64), np.asarray(sizes, dtype=np.int64), labels
            )
            dumps = orjson.dumps
            for head, answer, tail, part in zip(heads, answers, tails, where, strict=True):
                out[part].append(head + dumps(answer) + tail)
        return out, read, skipped
