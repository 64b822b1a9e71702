"""The export side of ``gtok eval`` and ``gtok reward``: every line of an export, in shard order, with its id
and its truth.

A line's id is its ``id`` field (llava) or its ``meta.record_id`` (messages and conversations have no id
field); its 0-based index over the whole export, in shard-name order, is what ``{"line": N}`` names. Truth is
the line's ``meta``; for an export written with ``--no-meta`` it is what the export makes of ``--records``
(the export stage's ``sample_meta``, handed in by the CLI layer as ``verify --against`` does): line k of a
part's shards is sample k of that part, and the records must be the export's own sources (same sha256).

Kept as columns, so a million one-box lines cost arrays, not dicts: the image size and box of each one-box
line (one region, a box) and the whole meta of every other line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from gtok_cli.codecs import codec_from_params
from gtok_cli.errors import InputError, UsageError
from gtok_cli.jsonio import decode_lines_typed, read_input_bytes
from gtok_cli.rendered import decodable_turns
from gtok_cli.shards.read import ExportFolder
from gtok_cli.trainer_formats import get_format

SampleMeta = Callable[[dict[str, Any], list[str]], tuple[dict[int, list[Any]], list[str]]]
"""What an export with this manifest makes of these record files: ``(meta, image file)`` per sample, per
part, and each file's sha256 (the export stage's ``sample_meta``)."""


@dataclass
class ExportIndex:
    manifest: dict[str, Any]
    folder: Path
    ids: list[str | None] = field(default_factory=list)
    rids: list[str | None] = field(default_factory=list)
    sizes: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros((0, 2), np.int64))
    one_box: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 4)))
    """The truth box of each one-box line (NaN row for every other line)."""
    metas: dict[int, dict[str, Any]] = field(default_factory=dict)
    """The whole meta of every line that is not one box."""
    images: list[str] = field(default_factory=list)
    answers: list[list[str]] = field(default_factory=list)
    """The export's own geometry turns per line (``keep_answers``): the ground truth as predictions."""

    @property
    def task(self) -> str:
        return str(self.manifest["task"])

    @property
    def n(self) -> int:
        return len(self.ids)

    def meta(self, k: int) -> dict[str, Any]:
        """Line k's meta (rebuilt for a one-box line)."""
        got = self.metas.get(k)
        if got is not None:
            return got
        w, h = self.sizes[k].tolist()
        x1, y1, x2, y2 = self.one_box[k].tolist()
        region = {"kind": "box", "bbox": [x1, y1, x2, y2], "mask_tokens": None, "label": None, "phrase": None}
        return {"record_id": self.rids[k], "image_size": [w, h], "regions": [region]}


def _lines_with_truth(
    export: ExportFolder, records: list[str] | None, rebuild: SampleMeta | None
) -> Iterator[tuple[dict[str, Any], dict[str, Any] | None, str]]:
    """``(line, truth meta or None, where)`` for every line in shard order."""
    truths: dict[int, list[Any]] | None = None
    m = export.manifest
    if records and rebuild is not None and not m.get("meta", True):
        truths, got = rebuild(m, records)
        want = [s["sha256"] for s in m["sources"]]
        if want != got:
            raise InputError(
                "--records differ from the sources this export was made from (sha256)",
                file=", ".join(records),
                field="--records",
                expected=", ".join(s["path"] for s in m["sources"]),
                found=", ".join(records),
                reason="records.mismatch",
            )
    seen: dict[int, int] = {}
    shards = {info["name"]: info for info in export.shards}
    for shard, lineno, line in export.lines():
        part = int(shards[shard.name].get("part", 0))
        index = seen.get(part, 0)
        seen[part] = index + 1
        where = f"{shard.name}:{lineno}"
        meta = line.get("meta") if isinstance(line, dict) else None
        if meta is None and truths is not None:
            part_truths = truths.get(part, [])
            meta = part_truths[index][0] if index < len(part_truths) else None
        yield line, meta, where


def open_export(
    path: str | Path,
    *,
    records: list[str] | None = None,
    rebuild: SampleMeta | None = None,
    keep_images: bool = False,
    keep_answers: bool = False,
) -> ExportIndex:
    """An export folder (or its manifest) read into an :class:`ExportIndex`; a line without truth
    (``--no-meta`` and no ``records``) is an InputError naming it and the fix."""
    export = ExportFolder.open(path)
    m = export.manifest
    fmt = get_format(m["format"])
    index = ExportIndex(m, export.folder)
    one_box_task = m["task"] == "rec" and m.get("refine") is None  # REC needs nothing but the box
    if (
        one_box_task
        and m.get("meta", True)
        and not (keep_images or keep_answers)
        and _one_box_columns(export, index)
    ):
        return index
    sizes: list[tuple[int, int]] = []
    boxes: list[tuple[float, float, float, float]] = []
    nan4 = (np.nan, np.nan, np.nan, np.nan)
    codec = codec_from_params(m["scheme"]) if keep_answers else None
    for k, (line, meta, where) in enumerate(_lines_with_truth(export, records, rebuild)):
        if meta is None:
            raise InputError(
                "line has no meta (exported with --no-meta): give --records with the export's sources",
                file=where,
                field="meta",
                reason="line.no_meta",
            )
        try:
            rid = str(meta["record_id"])
            w, h = meta["image_size"]
            regions = meta["regions"]
        except (KeyError, TypeError, ValueError):
            raise InputError(
                "meta is not a gtok export meta", file=where, field="meta", reason="meta.invalid"
            ) from None
        ident = line.get("id")
        index.ids.append(rid if ident is None or ident == rid else str(ident))
        index.rids.append(rid)
        sizes.append((int(w), int(h)))
        if one_box_task and len(regions) == 1 and regions[0].get("kind") == "box":
            x1, y1, x2, y2 = regions[0]["bbox"]
            boxes.append((float(x1), float(y1), float(x2), float(y2)))
        else:
            boxes.append(nan4)
            index.metas[k] = meta
        if keep_images:
            try:
                index.images.append(fmt.image(line))
            except (KeyError, TypeError, IndexError):
                raise InputError(f"line is not a {fmt.name} line", file=where, reason="line.format") from None
        if keep_answers:  # swift placeholders rendered as the template would: what a model answers
            assert codec is not None
            turns = decodable_turns(fmt, line, codec, (int(w), int(h)))
            index.answers.append(_geometry_turns(turns, m["task"]))
    index.sizes = np.asarray(sizes, dtype=np.int64).reshape(-1, 2)
    index.one_box = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return index


def _geometry_turns(turns: list[tuple[str, str]], task: str) -> list[str]:
    if task == "reg":
        raise UsageError("a reg export's answers are text, not geometry: eval scores the other tasks")
    return [text for role, text in turns if role == "assistant"]


# ---- the typed path: a REC export of one-box lines, decoded in one C pass per shard ------------------------
class _Region(msgspec.Struct, gc=False):
    kind: str
    bbox: tuple[float, float, float, float]


class _Meta(msgspec.Struct, gc=False):
    record_id: str
    image_size: tuple[int, int]
    regions: list[_Region]


class _Line(msgspec.Struct, gc=False):
    """What eval reads of a line: its id (llava) and meta; the turns are skipped unread."""

    id: str | None = None
    meta: _Meta | None = None


_LINES = msgspec.json.Decoder(_Line)


def _one_box_columns(export: ExportFolder, index: ExportIndex) -> bool:
    """Fill ``index`` from typed shards when every line holds exactly one box region in its ``meta``; False
    (``index`` untouched) when any line is not so: the general path reads it."""
    ids: list[str | None] = []
    rids: list[str | None] = []
    sizes: list[Any] = []
    boxes: list[Any] = []
    for info, shard in zip(export.shards, export.shard_paths(), strict=True):
        rows = decode_lines_typed(_LINES, read_input_bytes(shard))
        if rows is None or len(rows) != info["lines"]:
            return False
        metas = [r.meta for r in rows]
        if any(m is None or len(m.regions) != 1 or m.regions[0].kind != "box" for m in metas):
            return False
        these = [m.record_id for m in metas]
        rids += these
        ids += [r.id or rid for r, rid in zip(rows, these, strict=True)]
        sizes.append(np.fromiter(chain.from_iterable(m.image_size for m in metas), np.int64, 2 * len(rows)))
        boxes.append(
            np.fromiter(chain.from_iterable(m.regions[0].bbox for m in metas), np.float64, 4 * len(rows))
        )
    index.ids, index.rids = ids, rids
    index.sizes = np.concatenate(sizes).reshape(-1, 2) if sizes else np.zeros((0, 2), np.int64)
    index.one_box = np.concatenate(boxes).reshape(-1, 4) if boxes else np.zeros((0, 4))
    return True
