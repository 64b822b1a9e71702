"""Shard lines decoded and schema-checked in one C pass (msgspec), for verify's hot path.

``schemas/shard_line.schema.json`` is the contract; these Structs state the same constraints (types, required
keys, ``additionalProperties: false`` where the schema has it, enums, ``minLength``/``minItems``/``minimum``)
so msgspec checks them while it parses, at ~2 µs a line where parse + compiled-Python check took ~8 µs.

Soundness rule: whatever these types accept, the schema accepts (tests/test_verify_typed.py checks it on
valid lines and on a corpus of mutated ones against ``jsonschema``). They may be *stricter* (msgspec refuses
``1.0`` for an integer, an int beyond 64 bits, a lone surrogate escape): a shard that fails here is simply
checked again line by line on the general path, which gives the exact verdict and message. So this module
decides nothing on its own: it only lets well-formed shards skip the per-line Python work.
"""

from __future__ import annotations

import mmap
from dataclasses import dataclass
from itertools import chain
from typing import Annotated, Any, Literal

import msgspec
import numpy as np
import numpy.typing as npt
from msgspec import Meta, Struct

from gtok_cli.jsonio import line_chunks
from gtok_cli.trainer_formats import FORMATS, line_struct, one_box_answers

ShardBytes = bytes | mmap.mmap
"""A shard's content: read (gzip) or mapped (plain)."""
NonEmpty = Annotated[str, Meta(min_length=1)]
Positive = Annotated[int, Meta(ge=1)]
NonNegative = Annotated[int, Meta(ge=0)]


class MaskTokens(Struct, gc=False):
    grid: Positive
    anchors: list[tuple[NonNegative, NonNegative]]
    iou: Annotated[float, Meta(ge=0, le=1)] | msgspec.UnsetType = msgspec.UNSET
    """The solver's IoU (``gtok_cli.mask_quality``), optional."""


class Region(Struct, gc=False):
    kind: Literal["box", "point", "polyline", "polygon", "mask"]
    bbox: tuple[float, float, float, float]
    mask_tokens: MaskTokens | None
    label: str | None
    phrase: str | None
    point: tuple[float, float] | msgspec.UnsetType = msgspec.UNSET
    point_from: Literal["mask", "box"] | msgspec.UnsetType = msgspec.UNSET


class LineMeta(Struct, gc=False):
    record_id: NonEmpty
    image_size: tuple[Positive, Positive]
    regions: list[Region]


# The one-box shape of a line (a ``rec`` sample): one question, one answer, one box region, meta present.
# Narrower than the schema (so still sound); a shard of such lines needs no per-line Python to classify them.
class BoxRegion(Region, gc=False):
    kind: Literal["box"]


class OneBoxMeta(Struct, gc=False):
    record_id: NonEmpty
    image_size: tuple[Positive, Positive]
    regions: tuple[BoxRegion]


_DECODERS: dict[str, Any] = {
    name: msgspec.json.Decoder(line_struct(f, LineMeta)) for name, f in FORMATS.items()
}
_ONE_BOX_DECODERS: dict[str, Any] = {
    name: msgspec.json.Decoder(line_struct(f, OneBoxMeta, one_box=True)) for name, f in FORMATS.items()
}
"""The typed lines of each trainer format (:func:`gtok_cli.trainer_formats.line_struct`): any line, and the
one-box shape (one question, one answer, one box region, meta present)."""


def decode_shard(fmt: str, data: ShardBytes, lines: int, one_box: bool = False) -> list[Any] | None:
    """Every line of a shard's bytes as a typed line, or None when any line is not schema-valid (or msgspec is
    stricter than the schema about it), or when the shard does not hold exactly ``lines`` lines (msgspec skips
    blank lines: line numbers must stay those of the file). ``one_box``: only when every line has the one-box
    shape (``line_struct(…, one_box=True)``)."""
    decoder = (_ONE_BOX_DECODERS if one_box else _DECODERS).get(fmt)
    if decoder is None:
        return None
    try:
        out: list[Any] = decoder.decode_lines(data)
    except (msgspec.MsgspecError, ValueError):  # ValueError: UnicodeDecodeError on invalid UTF-8
        return None
    return out if len(out) == lines else None


CHUNK_BYTES = 32 << 10
"""Decode this much of a shard at a time: the objects of one chunk stay in cache while their columns are
taken, and the next chunk reuses their memory (measured: ~35 % less time than the whole shard at once, and
32 KiB ~4 % less than 128 KiB)."""


@dataclass
class OneBoxColumns:
    """The columns verify needs of a shard of one-box lines (the rest of each line is checked, not kept)."""

    texts: list[str]
    labels: list[str | None]
    rids: list[str]
    sizes: npt.NDArray[np.int64]
    boxes: npt.NDArray[np.float64]


def one_box_columns(fmt: str, data: ShardBytes, lines: int, chunk: int = CHUNK_BYTES) -> OneBoxColumns | None:
    """:func:`decode_shard` with ``one_box`` for a whole shard, kept as columns; None as there."""
    decoder = _ONE_BOX_DECODERS.get(fmt)
    if decoder is None:
        return None
    texts: list[str] = []
    labels: list[str | None] = []
    rids: list[str] = []
    sizes: list[npt.NDArray[np.int64]] = []
    boxes: list[npt.NDArray[np.float64]] = []
    for piece in line_chunks(data, chunk):
        try:
            rows = decoder.decode_lines(piece)
        except (msgspec.MsgspecError, ValueError):
            return None
        k = len(rows)
        metas = [r.meta for r in rows]
        regions = [m.regions[0] for m in metas]
        texts += one_box_answers(rows)
        labels += [g.phrase for g in regions]
        rids += [m.record_id for m in metas]
        sizes.append(np.fromiter(chain.from_iterable([m.image_size for m in metas]), np.int64, 2 * k))
        boxes.append(np.fromiter(chain.from_iterable([g.bbox for g in regions]), np.float64, 4 * k))
    if len(texts) != lines:
        return None
    n = len(texts)
    return OneBoxColumns(
        texts,
        labels,
        rids,
        np.concatenate(sizes).reshape(n, 2) if sizes else np.zeros((0, 2), np.int64),
        np.concatenate(boxes).reshape(n, 4) if boxes else np.zeros((0, 4), np.float64),
    )
