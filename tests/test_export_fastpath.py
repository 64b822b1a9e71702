"""The export/verify hot paths give exactly what the generic paths give (same bytes, same decodes)."""

from __future__ import annotations

import copy
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from _export_helpers import referring
from hypothesis import given, settings
from hypothesis import strategies as st

from gtok_cli.codecs import get_codec
from gtok_cli.codecs._common import batch_decode
from gtok_cli.export.run import Worker, WorkSpec
from gtok_cli.export.templates import load_templates
from gtok_cli.shards.writer import LineBlock, ShardWriter


def _spec(fmt: str, scheme: str, meta: bool, num_parts: int = 1) -> WorkSpec:
    templates = dict(load_templates(None).by_task)
    templates["rec"] = ("Where is {expression}?", "{{literal}} {expression} / {expression!r}")
    return WorkSpec(
        get_codec(scheme).describe(),
        "rec",
        fmt,
        3,
        "box",
        templates,
        meta,
        num_parts,
        tuple(range(num_parts)),
    )


def _odd_records() -> list[dict[str, Any]]:
    out = [referring(k) for k in range(40)]
    odd = copy.deepcopy(out[0])
    odd.update(id="odd-é", text='caf\u00e9 "q" \\ \t</x> \U0001f600')
    odd["image"]["file"] = "dir/\u00e9.jpg"
    odd["regions"][0].update(bbox=[0, 0, 640, 480], label=None, mask_tokens={"grid": 32, "anchors": [[1, 2]]})
    out.append(odd)
    skipped = copy.deepcopy(out[1])
    skipped.update(id="skip", task="instances")
    out.append(skipped)
    blank = copy.deepcopy(out[2])
    blank.update(id="blank", text="  ")
    out.append(blank)
    return out


def _run(worker: Worker, lines: list[bytes]) -> tuple[dict[int, bytes], dict[int, str], Any, Any]:
    res = worker.run("r.jsonl", 1, b"\n".join(lines) + b"\n\n")
    data = {p: b.data for p, b in res.blocks.items()}
    crcs = {p: b.crcs.astype(">u4").tobytes().hex() for p, b in res.blocks.items()}
    return data, crcs, res.read, res.skipped


@pytest.mark.parametrize("fmt", ["llava", "messages", "conversations"])
@pytest.mark.parametrize(
    ("scheme", "meta", "parts"), [("bins", True, 1), ("qwen2.5-vl", False, 3), ("loc", True, 2)]
)
def test_fast_rec_lines_equal_the_generic_path(fmt: str, scheme: str, meta: bool, parts: int) -> None:
    records = _odd_records()
    if scheme == "loc":  # loc cannot carry '<>' in a label: keep the odd text printable for it
        records[40]["text"] = 'caf\u00e9 "q" \\ \t \U0001f600'
    lines = [orjson.dumps(r) for r in records]
    fast = Worker(_spec(fmt, scheme, meta, parts))
    assert fast.fast is not None
    slow = Worker(_spec(fmt, scheme, meta, parts))
    slow.fast = None
    blob = b"\n".join(lines)
    assert fast.fast.run(blob, fast.part_of if parts > 1 else None, fast.parts) is not None  # no fallback
    assert _run(fast, lines) == _run(slow, lines)


def test_fast_rec_line_by_hand() -> None:
    # worked out by hand: bins 1000 on 640×480, box (64, 48, 320, 240) → bins 100 100 500 500
    rec = referring(0)
    rec["regions"][0]["bbox"] = [64, 48, 320, 240]
    spec = _spec("llava", "bins", True)
    spec = WorkSpec(
        spec.scheme, "rec", "llava", 0, "box", {"rec": ("Where is {expression}?",)}, True, 1, (0,)
    )
    worker = Worker(spec)
    res = worker.run("r.jsonl", 1, orjson.dumps(rec) + b"\n")
    want = (
        b'{"id":"ref-0","image":"img-0.jpg","conversations":[{"from":"human","value":"<image>\\nWhere is '
        b'the person number 0?"},{"from":"gpt","value":"<box> 0.100 0.100 0.500 0.500"}],"meta":{'
        b'"record_id":"ref-0","image_size":[640,480],"regions":[{"kind":"box","bbox":[64,48,320,240],'
        b'"mask_tokens":null,"label":"person","phrase":"the person number 0"}]}}\n'
    )
    assert res.blocks[0].data == want
    assert res.blocks[0].crcs.tolist() == [zlib.crc32(want)]


def test_odd_batch_falls_back_with_the_same_error() -> None:
    bad = referring(1)
    bad["regions"][0]["bbox"] = [10, 10, 5, 5]  # corners out of order: encode_boxes names the box
    lines = [orjson.dumps(referring(0)), orjson.dumps(bad)]
    errors = []
    for use_fast in (True, False):
        w = Worker(_spec("llava", "bins", True))
        if not use_fast:
            w.fast = None
        with pytest.raises(Exception) as info:
            w.run("r.jsonl", 1, b"\n".join(lines))
        errors.append(repr(info.value))
    assert errors[0] == errors[1]


@pytest.mark.parametrize("shard_size", [1, 3, 7, 100])
def test_shard_writer_blocks_equal_lines(tmp_path: Path, shard_size: int) -> None:
    lines = [f'{{"k":{k}}}\n'.encode() for k in range(23)]
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    one = ShardWriter(a, "p", 0, 1, shard_size, False)
    one.add(lines)
    blocks = ShardWriter(b, "p", 0, 1, shard_size, False)
    for start, stop in ((0, 5), (5, 5), (5, 17), (17, 23)):
        blocks.add_block(LineBlock.of(lines[start:stop]))
    assert one.close() == blocks.close()
    assert {p.name: p.read_bytes() for p in a.iterdir()} == {p.name: p.read_bytes() for p in b.iterdir()}


def test_bins_joined_decode_equals_text_by_text() -> None:
    codec = get_codec("bins")
    texts = [
        "<box> 0.100 0.200 0.300 0.400",
        "",
        "<box> 0.100 0.200 0.300",
        "<box> 0.300 0.200 0.100 0.400",  # corners out of order
        "<box> 0.100 0.200 0.300 0.400 ",
        " <box> 0.100 0.200 0.300 0.400",
        "<box> 0.1 0.200 0.300 0.400",  # not a token of bins=1000
        "<box> 0.100 0.200 0.300 0.400, <box> 0.100 0.200 0.300 0.400",
        "<box>  0.100 0.200 0.300 0.400",
        "x\u2028y",
        "<box> 0.100 0.200 0.300 0.400\r",
    ]
    for extra in ([], ["a\nb"]):  # a newline inside a text: the text-by-text path
        t = texts + extra
        sizes = np.array([[640, 480]] * len(t))
        got = codec.decode_boxes(t, sizes)
        want = batch_decode(t, sizes, codec._parse_one, codec._to_pixels, codec._slow_first)  # type: ignore[attr-defined]
        assert np.array_equal(got, want, equal_nan=True)
    # by hand: bins 100 and 200 of 1000 → centres 0.1005 and 0.2005
    assert codec.decode_boxes(["<box> 0.100 0.200 0.100 0.200"], [(1000, 1000)]).tolist() == [
        [100.5, 200.5, 100.5, 200.5]
    ]


_FIXED_ALPHABET = "<box> 0.123456789a,-"


@settings(max_examples=60, deadline=None)
@given(
    bins=st.sampled_from([1, 10, 100, 1000]),
    rows=st.lists(
        st.tuples(
            st.lists(st.integers(0, 1200), min_size=4, max_size=4),
            st.lists(st.tuples(st.integers(0, 40), st.sampled_from(_FIXED_ALPHABET)), max_size=2),
        ),
        min_size=1,
        max_size=12,
    ),
)
def test_bins_fixed_width_decode_equals_text_by_text(bins: int, rows: list[Any]) -> None:
    """Same-width texts (the byte-matrix shortcut): canonical boxes, out-of-range or out-of-order bins, and
    single-character edits that keep the width all decode as the text-by-text decoder does."""
    codec = get_codec("bins", bins=bins)
    d = len(str(bins - 1))
    texts = []
    for q, edits in rows:
        text = "<box>" + "".join(f" 0.{min(k, 10**d - 1):0{d}d}" for k in q)
        for pos, ch in edits:
            pos %= len(text)
            text = text[:pos] + ch + text[pos + 1 :]
        texts.append(text)
    sizes = np.array([[640, 480]] * len(texts))
    got = codec.decode_boxes(texts, sizes)
    want = batch_decode(texts, sizes, codec._parse_one, codec._to_pixels, codec._slow_first)  # type: ignore[attr-defined]
    assert np.array_equal(got, want, equal_nan=True)
    # rows the codec calls exact re-encode to their text (verify skips re-encoding them); with one
    # shorter text the fixed-width shortcut is off and the joined-regex path answers
    for batch in (texts, [*texts, "<box> 0.1 0.2 0.3 0.4"]):
        dec, exact = codec.decode_boxes_exact(batch, np.array([[640, 480]] * len(batch)))
        rows = np.nonzero(exact)[0].tolist()
        again = codec.encode_boxes(dec[rows], np.array([[640, 480]] * len(rows)), None)
        assert again == [batch[k] for k in rows]
        assert all(codec._parse_one(batch[k]) is not None for k in rows)  # type: ignore[attr-defined]


def test_bins_fixed_width_decode_by_hand() -> None:
    codec = get_codec("bins")
    texts = [
        "<box> 0.100 0.200 0.300 0.400",
        "<box> 0.300 0.200 0.100 0.400",
        "<box> 0.1a0 0.200 0.300 0.400",
    ]
    got = codec.decode_boxes(texts, [(1000, 1000)] * 3)
    # by hand: bins 100..400 of 1000 on a 1000-px side → centres 100.5 …; the other two are not boxes
    assert got[0].tolist() == [100.5, 200.5, 300.5, 400.5]
    assert np.isnan(got[1:]).all()


def _plain_records(variant: str) -> list[dict[str, Any]]:
    out = [referring(k) for k in range(30)]
    if variant == "labels-null":
        for r in out:
            r["regions"][0]["label"] = None
    elif variant == "quote-in-text":  # uniform types, but a string to escape: the per-line builder
        out[7]["text"] = 'the "odd" one'
    elif variant == "tiny-coordinate":  # a number orjson writes in exponent form
        out[3]["regions"][0]["bbox"] = [1e-7, 2.5, 300.0, 400.25]
    return out


@pytest.mark.parametrize("fmt", ["llava", "messages", "conversations"])
@pytest.mark.parametrize("meta", [True, False])
@pytest.mark.parametrize("variant", ["plain", "labels-null", "quote-in-text", "tiny-coordinate"])
def test_uniform_batches_equal_the_generic_path(fmt: str, meta: bool, variant: str) -> None:
    """Batches of plain one-box records take the columnar path (one join for the batch) and give exactly
    the generic path's bytes; a string that needs escaping sends the batch to the per-line builder."""
    lines = [orjson.dumps(r) for r in _plain_records(variant)]
    fast = Worker(_spec(fmt, "bins", meta))
    slow = Worker(_spec(fmt, "bins", meta))
    slow.fast = None
    assert fast.fast is not None
    assert _run(fast, lines) == _run(slow, lines)
    assert fast.fast.formatted == (0 if variant == "quote-in-text" else 1)
