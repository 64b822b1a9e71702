"""GRIT (Kosmos-2's grounded image-text pairs, zzliang/GRIT ``grit-20m/coyo_*_snappy.parquet``) →
canonical ``grounded_caption`` records.

The layout, as the dataset card's instance and microsoft/unilm ``kosmos-2/data/visualize_grit.py`` /
``prepare_grit.py`` read it: one row per image with ``key`` (img2dataset's ``<shard:5><index:4>``), ``id``
(the COYO id), ``url``, ``caption``, ``width``, ``height``, ``clip_similarity_vitb32`` / ``_vitl14`` and two
span lists, ``noun_chunks`` and ``ref_exps``: each item ``[start, end, x1, y1, x2, y2, conf]`` with
``caption[start:end]`` the phrase, the box normalised to 0–1 (``x · width``, ``y · height`` in pixels) and
the grounding model's confidence. The parquet stores items as ``list<double>``, so ``start`` / ``end`` are
integral floats (``19.0``); anything else is rejected. Images are not in the files: img2dataset's
``files`` output puts row ``key`` at ``<key[:5]>/<key>.jpg`` (the path mmdetection
``tools/dataset_converters/grit2odvg.py`` reads), which is the record's image file (``<id>.jpg`` without a
``key``). Copies that embed an ``image`` column can write it out with an image writer.

Records: per row and span kind asked for (``spans``: ``noun_chunks``, ``ref_exps`` or both), one
``grounded_caption`` record, id ``grit:<key>:<kind>``, regions in span order with ``phrase`` / ``span`` /
``label`` (the phrase) and ``conf``. ``ref_exps`` extend noun chunks and overlap one another, so
``export --task grounded-caption`` skips most of their records (``region.overlapping_spans``); noun chunks
are the default. ``min_conf``: spans below it are ``Excluded("low_conf")``.

Units (each ``read = kept + excluded + rejected``): ``file`` (one that cannot be opened or lacks a column is
a rejected file), ``row`` (rejected: a wrong type or missing value, a span outside the caption, a box
outside the image, a duplicate ``key`` / ``id``; kept when it gave a record; else
``Excluded("no_grounded_phrase")``) and ``span`` (items of the kinds asked for). Duplicates are found with a
set of every row's key: ~60 bytes a row (1.2 GB over all 20M rows of GRIT-20M).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from gtok_cli.errors import InputError, UsageError
from gtok_cli.ingest.coco_validate import field_error
from gtok_cli.ingest.common import Excluded, IngestItem, Rejected, Tally
from gtok_cli.ingest.embedded_images import ImageWriter, embedded_bytes
from gtok_cli.ingest.fields import MISSING, Where, number_list, size_of, span_of, text_of
from gtok_cli.ingest.parquet_rows import columns_present, iter_rows, open_parquet, require_pyarrow
from gtok_cli.ingest.progress import progress
from gtok_cli.records import check_box_xyxy, make_record, make_region

SpanKinds = Literal["noun_chunks", "ref_exps", "both"]
SPAN_CHOICES = ("noun_chunks", "ref_exps", "both")
REQUIRED = ("caption", "width", "height")
OPTIONAL = ("key", "id", "url", "clip_similarity_vitb32", "clip_similarity_vitl14", "image")


def kinds_of(spans: str) -> tuple[str, ...]:
    if spans not in SPAN_CHOICES:
        raise UsageError(f"--spans must be one of {', '.join(SPAN_CHOICES)}, not {spans!r}")
    return ("noun_chunks", "ref_exps") if spans == "both" else (spans,)


def image_file_of(key: str | None, row_id: int | None) -> str:
    """img2dataset's ``files`` layout: ``00037/000373938.jpg`` for key ``000373938``."""
    return f"{key[:5]}/{key}.jpg" if key else f"{row_id}.jpg"


def iter_grit(
    parquet_paths: Sequence[str | Path],
    spans: str = "noun_chunks",
    min_conf: float = 0.0,
    image_writer: ImageWriter | None = None,
) -> Iterator[IngestItem]:
    """Records (and Rejected / Excluded items) of GRIT parquet files; see the module doc."""
    kinds = kinds_of(spans)
    if not 0.0 <= min_conf <= 1.0:
        raise UsageError(f"--min-conf must be within 0..1, not {min_conf}")
    require_pyarrow(f"gtok ingest grit (reading {Path(parquet_paths[0]).name})")
    reader = _Reader(kinds, min_conf, image_writer)
    yield Tally("file", read=len(parquet_paths))
    for path in parquet_paths:
        yield from reader.file_items(str(path))


@dataclass(frozen=True)
class _Span:
    start: int
    end: int
    box: list[float]
    conf: float


@dataclass
class _Reader:
    kinds: tuple[str, ...]
    min_conf: float
    writer: ImageWriter | None
    seen: set[Any] = field(default_factory=set)

    def file_items(self, file: str) -> Iterator[IngestItem]:
        try:
            pf = open_parquet(file, (*REQUIRED, *self.kinds))
        except InputError as err:
            yield Rejected(err, "file", {"file": file})
            return
        # embedded images (derived copies) are read only when they are to be written out
        optional = OPTIONAL if self.writer is not None else tuple(c for c in OPTIONAL if c != "image")
        columns = [*REQUIRED, *self.kinds, *columns_present(pf, optional)]
        if "key" not in columns and "id" not in columns:
            yield Rejected(
                InputError(
                    "parquet file has neither a key nor an id column", file=file, field="key",
                    expected="a key or id column (the row's identity)", found=", ".join(columns),
                    reason="parquet.column_missing",
                ),
                "file",
                {"file": file},
            )  # fmt: skip
            return
        if self.writer is not None and "image" not in columns:
            raise UsageError(f"--extract-images: {file} has no embedded image column")
        yield Tally("file", kept=1)
        rows = progress(
            iter_rows(pf, columns, file), total=pf.metadata.num_rows, desc=Path(file).name, unit=" rows"
        )
        for index, row in rows:
            yield from self._row_items(file, index, row)

    def _row_items(self, file: str, index: int, row: dict[str, Any]) -> Iterator[IngestItem]:
        listed = [row.get(kind) for kind in self.kinds]
        n = sum(len(v) for v in listed if type(v) is list)
        yield Tally("row", read=1)
        yield Tally("span", read=n)
        ids = {"row": index, **{k: row[k] for k in ("key", "id") if type(row.get(k)) in (str, int)}}
        try:
            key, row_id, caption, width, height, by_kind = self._checked(file, index, row)
        except InputError as err:
            yield Rejected(err, "row", ids)
            if n:
                yield Excluded("row.rejected", "span", n)
            return
        name = key if key is not None else str(row_id)
        image_file = image_file_of(key, row_id)
        data = embedded_bytes(row.get("image"))
        if self.writer is not None and data is not None:
            self.writer.write(image_file, data, file=file, record=f"row {index} (key {name})")
        written = 0
        for kind, items in by_kind.items():
            kept = [s for s in items if s.conf >= self.min_conf]
            if len(kept) < len(items):
                yield Excluded("low_conf", "span", len(items) - len(kept))
            if not kept:
                continue
            yield Tally("span", kept=len(kept))
            written += 1
            yield self._record(row, name, key, row_id, caption, width, height, image_file, kind, kept)
        if written:
            yield Tally("row", kept=1)
        else:
            yield Excluded("no_grounded_phrase", "row")

    def _checked(
        self, file: str, index: int, row: dict[str, Any]
    ) -> tuple[str | None, int | None, str, int, int, dict[str, list[_Span]]]:
        key = row.get("key")
        row_id = row.get("id")
        if key is not None and (type(key) is not str or not key):
            raise field_error(file, f"row {index}", "key", "a non-empty string", key)
        if row_id is not None and type(row_id) is not int:
            raise field_error(file, f"row {index}", "id", "an integer", row_id)
        if key is None and row_id is None:
            raise field_error(file, f"row {index}", "key", "a key or an id", MISSING)
        identity = key if key is not None else row_id
        record = f"row {index} (key {identity})"
        where: Where = {"file": file, "record": record}
        if identity in self.seen:
            raise InputError(
                "duplicate row key" if key is not None else "duplicate row id", field="key" if key else "id",
                expected="unique keys", found=identity, reason="id.duplicate", **where,
            )  # fmt: skip
        self.seen.add(identity)
        caption = text_of(row.get("caption", MISSING), field="caption", **where)
        width = size_of(row.get("width", MISSING), field="width", **where)
        height = size_of(row.get("height", MISSING), field="height", **where)
        by_kind: dict[str, list[_Span]] = {}
        for kind in self.kinds:
            items = row.get(kind, MISSING)
            if type(items) is not list:
                raise field_error(file, record, kind, "a list of [start, end, x1, y1, x2, y2, conf]", items)
            checked = [
                _span(item, caption, width, height, f"{kind}[{k}]", where) for k, item in enumerate(items)
            ]
            by_kind[kind] = sorted(checked, key=lambda s: (s.start, s.end))
        return key, row_id, caption, width, height, by_kind

    def _record(
        self, row: dict[str, Any], name: str, key: str | None, row_id: int | None, caption: str, width: int,
        height: int, image_file: str, kind: str, spans: list[_Span],
    ) -> dict[str, Any]:  # fmt: skip
        regions = []
        for s in spans:
            phrase = caption[s.start : s.end]
            region = make_region(s.box, label=phrase, phrase=phrase, span=[s.start, s.end])
            region["conf"] = s.conf
            regions.append(region)
        source: dict[str, Any] = {"key": key, "id": row_id, "spans": kind}
        for extra in ("url", "clip_similarity_vitb32", "clip_similarity_vitl14"):
            if extra in row:
                source[extra] = row[extra]
        return make_record(
            record_id=f"grit:{name}:{kind}",
            dataset="grit",
            split=None,
            task="grounded_caption",
            text=caption,
            image_file=image_file,
            width=width,
            height=height,
            image_id=row_id if row_id is not None else name,
            regions=regions,
            source=source,
        )


def _span(item: Any, caption: str, width: int, height: int, field: str, where: Where) -> _Span:
    values = number_list(item, 7, field=field, what="[start, end, x1, y1, x2, y2, conf] numbers", **where)
    start, end = span_of(values[:2], caption, field=field, integral_float=True, **where)
    x1, y1, x2, y2 = values[2:6]
    # normalised 0-1 → pixels, once (docs/spec.md#coordinates); the 1 px tolerance clamps rounding overshoot
    box = check_box_xyxy(
        [x1 * width, y1 * height, x2 * width, y2 * height], width, height, field=field, **where
    )
    conf = values[6]
    if not 0.0 <= conf <= 1.0:
        raise field_error(
            where["file"], where["record"], field, "a confidence within 0..1 (7th number)", item
        )
    return _Span(start, end, box, conf)
