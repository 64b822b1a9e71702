"""MDETR's pre-processed annotation JSONs → canonical ``referring`` / ``grounded_caption`` records.

The files (``mdetr_annotations.tar.gz`` of ashkamath/mdetr) are COCO-shaped, with one ``images`` entry *per
caption*, written by the scripts of that repository:

- ``finetune_{refcoco,refcoco+,refcocog}_{train,val,testA,testB,test}.json``
  (``scripts/fine-tuning/refexp_coco_format.py``, read by ``datasets/refexp.py``): an entry has ``caption``
  (the refer sentence ``sent``), ``dataset_name``, ``original_id`` (the COCO image id), ``file_name`` (the
  COCO 2014 name), ``height`` / ``width``, ``tokens_negative``; the released files add ``sentence_id``,
  ``original_img_id`` and ``tokens_positive_eval`` (GLIP / mmdetection read them). Its one annotation has the
  COCO ``bbox`` ``[x, y, w, h]``, ``category_id``, ``original_id`` (the COCO annotation id) and
  ``tokens_positive``: character spans of the expression's root noun phrase.
- ``final_flickr_{separateGT,mergedGT}_{train,val,test}.json`` (``scripts/pre-training/flickr_combined.py``,
  read by ``datasets/flickr.py``): ``dataset_name`` ``"flickr"``, ``original_img_id``, ``sentence_id``,
  ``tokens_positive_eval``; **``height`` and ``width`` are strings** (``xmltodict`` text of the XML); one
  annotation per box (``category_id`` 1, ``"object"``) whose ``tokens_positive`` lists every phrase of the
  caption that refers to it. The boxes are ``[xmin, ymin, xmax - xmin, ymax - ymin]`` of the 1-based VOC XML,
  without the ``- 1`` that ``gtok ingest flickr30k`` applies (docs/spec.md#coordinates): read as the COCO
  boxes they claim to be, they sit one pixel right of and below that reader's, and one pixel smaller.
- ``final_mixed_train.json`` / ``final_mixed_train_no_coco.json`` (``scripts/utils/dump.py``
  ``convert2dataset_combined``, read by ``datasets/mixed.py``): ``original_id`` (a COCO or Visual Genome
  image id), ``data_source`` (``"coco"`` / ``"vg"``: which image folder), ``dataset_name``; an empty
  ``categories`` table.

Records: one per ``images`` entry, in file order, id ``mdetr:<file stem>:<entry id>``, ``dataset`` the entry's
``dataset_name``, ``split`` from the file name, ``image.id`` the original (COCO / Flickr30k / VG) image id.

- RefCOCO family (``dataset_name`` refcoco / refcoco+ / refcocog): ``referring``, text = the caption, one
  region per annotation with ``ann_id`` the original COCO annotation id, ``span`` / ``phrase`` its first
  ``tokens_positive`` span (the root noun) and every span in ``tokens_positive``.
- Everything else: ``grounded_caption``, one region per (annotation, span of its ``tokens_positive``), so each
  phrase is followed by its box(es) (``label`` = ``phrase``); an annotation without spans is
  ``Excluded("no_span")``.

``--images`` checks each image's size in one folder by ``file_name``: the mixed files name COCO 2014 images
(``COCO_train2014_….jpg``) and Visual Genome ones (``<id>.jpg``), so their folder holds both.

``source`` keeps ``mdetr_image_id``, ``image_id`` (original), ``ann_ids`` (MDETR's), ``original_ann_ids``
(when the file has them), ``sentence_id``, ``dataset_name``, ``data_source`` and ``tokens_positive_eval``.

Checks and counts follow ``gtok ingest coco`` (units ``image`` = entries and ``annotation``, each
``read = kept + excluded + rejected``): a bad entry is rejected with its annotations excluded; a bad
annotation (box outside the image, span outside the caption, wrong type, missing key, duplicate id) is
rejected alone and its record carries ``incomplete``. An unreadable, truncated or non-JSON file stops the
run. The annotations array is parsed in ~16 MB slices (:mod:`gtok_cli.ingest.json_chunks`), so the big
pre-training files never exist as one parsed document.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from gtok_cli.errors import InputError
from gtok_cli.ingest.coco_validate import (
    CocoImage,
    _checked_mask,
    annotation_ids,
    duplicate_annotation_error,
    field_error,
    load_categories,
    orphan_error,
    type_name,
)
from gtok_cli.ingest.common import Excluded, IngestItem, Rejected, Tally
from gtok_cli.ingest.fields import (
    MISSING,
    Where,
    int_of,
    number_list,
    plain_span,
    size_of,
    span_of,
    text_of,
)
from gtok_cli.ingest.json_chunks import NotChunkable, split_array
from gtok_cli.ingest.progress import progress
from gtok_cli.jsonio import read_input_bytes
from gtok_cli.parallel import gc_paused
from gtok_cli.records import check_box_xyxy, make_record, make_region

_NUMBER = (int, float)
REFERRING_DATASETS = frozenset({"refcoco", "refcoco+", "refcocog"})
SPLITS = ("train", "val", "test", "testA", "testB", "minival")


def split_from_filename(path: str | Path) -> str | None:
    """``finetune_refcoco_testA.json`` → ``testA``; ``final_mixed_train_no_coco.json`` → ``train``."""
    stem = Path(path).name.split(".")[0]
    return next((part for part in stem.split("_") if part in SPLITS), None)


@dataclass(frozen=True, slots=True)
class Entry:
    """One checked ``images`` entry (one caption)."""

    id: int
    file_name: str
    width: int
    height: int
    caption: str
    dataset_name: str
    original_img_id: int | str
    sentence_id: int | None
    tokens_positive_eval: Any
    data_source: str | None


@dataclass(frozen=True, slots=True)
class Annotation:
    """One checked annotation of an entry."""

    id: int
    bbox: list[float]
    spans: list[tuple[int, int]]
    category_id: int
    iscrowd: bool
    original_id: int | None
    mask: Any


@dataclass
class _State:
    names: dict[int, str] = field(default_factory=dict)
    order: list[int] = field(default_factory=list)
    """Entry ids in file order (each once; an id given twice is a bad entry)."""
    entries: dict[int, Entry] = field(default_factory=dict)
    bad_entries: dict[int, InputError] = field(default_factory=dict)
    groups: dict[int, list[Annotation]] = field(default_factory=dict)
    bad_anns: dict[int, list[tuple[int | None, InputError]]] = field(default_factory=dict)
    skipped: dict[int, int] = field(default_factory=dict)
    """Entry id (bad entry) → its annotations, not checked."""
    seen: set[int] = field(default_factory=set)
    duplicates: set[int] = field(default_factory=set)
    early: list[IngestItem] = field(default_factory=list)
    image_entries: int = 0
    annotations: int = 0


def iter_mdetr(
    annotations_path: str | Path, images_dir: str | Path | None = None, split: str | None = None
) -> Iterator[IngestItem]:
    """Records (and Rejected / Excluded items) of one MDETR annotation file; see the module doc."""
    file = str(annotations_path)
    with gc_paused():
        try:
            state = _read(file, chunked=True)
        except (NotChunkable, InputError):
            state = _read(file, chunked=False)  # the whole-document parse gives the canonical first error
        yield Tally("image", read=state.image_entries)
        yield Tally("annotation", read=state.annotations)
        yield from state.early
        state.early.clear()
        emitter = _Emitter(
            file=file,
            stem=Path(file).name.split(".")[0],
            split=split if split is not None else split_from_filename(file),
            images_dir=images_dir,
            names=state.names,
        )
        for iid in progress(state.order, total=len(state.order), desc="mdetr", unit=" captions"):
            yield from emitter.entry_items(iid, state)


# ---------------------------------------------------------------------------------------------- reading


def _read(file: str, *, chunked: bool) -> _State:
    data = read_input_bytes(file)
    if not data.strip():
        raise InputError("file is empty", file=file, reason="file.empty")
    if chunked:
        doc = split_array(data, "annotations")
        head, chunks = doc.head, doc.chunks
        _check_top(head, file, annotations_known=True)
    else:
        try:
            head = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            reason = "text.encoding" if "UTF-8" in str(exc) else "json.invalid"
            raise InputError(f"not valid JSON: {exc}", file=file, reason=reason) from None
        _check_top(head, file, annotations_known=False)
        chunks = iter([head["annotations"]])
        head["annotations"] = None
    state = _State(names=load_categories(head["categories"], file))
    images = head["images"]
    state.image_entries = len(images)
    for index, img in enumerate(images):
        _add_entry(img, index, file, state)
    del head, images
    for anns in chunks:
        for ann in anns:
            _add_annotation(ann, state.annotations, file, state)
            state.annotations += 1
    return state


def _check_top(head: Any, file: str, *, annotations_known: bool) -> None:
    if type(head) is not dict:
        raise InputError(
            "not an MDETR annotation file", file=file, field="(top level)",
            expected="an object with images, annotations, categories", found=type_name(head),
            reason="mdetr.structure",
        )  # fmt: skip
    for key in ("images", "categories") if annotations_known else ("images", "annotations", "categories"):
        value = head.get(key, MISSING)
        if type(value) is not list:
            raise field_error(file, "(file)", key, "a list", value if value is MISSING else type_name(value))


def _add_entry(img: Any, index: int, file: str, state: _State) -> None:
    iid = img.get("id") if type(img) is dict else None
    if type(iid) is int and (iid in state.entries or iid in state.bad_entries):
        err = InputError(
            "duplicate image id", file=file, record=f"image {iid}", field="id", expected="unique ids",
            found=iid, reason="id.duplicate",
        )  # fmt: skip
        state.entries.pop(iid, None)
        state.bad_entries.setdefault(iid, err)  # the first entry goes too: its annotations are ambiguous
        state.early.append(Rejected(err, "image", {"image_id": iid}))
        return
    try:
        entry = check_entry(img, index, file)
    except InputError as err:
        if type(iid) is int:
            state.bad_entries[iid] = err  # rejected in order, its annotations with it
            state.order.append(iid)
        else:
            state.early.append(Rejected(err, "image"))
        return
    state.entries[entry.id] = entry
    state.order.append(entry.id)


def check_entry(img: Any, index: int, file: str) -> Entry:
    """One ``images`` entry, checked field by field."""
    if type(img) is not dict:
        raise field_error(file, f"images[{index}]", "(image)", "an object", type_name(img))
    iid = img.get("id", MISSING)
    if type(iid) is not int:
        raise field_error(file, f"images[{index}]", "id", "an integer", iid)
    record = f"image {iid}"
    where: Where = {"file": file, "record": record}
    file_name = text_of(img.get("file_name", MISSING), field="file_name", **where)
    # Flickr entries keep the XML's text: "500", not 500 (flickr_combined.py, xmltodict)
    width = size_of(img.get("width", MISSING), field="width", digits=True, **where)
    height = size_of(img.get("height", MISSING), field="height", digits=True, **where)
    caption = text_of(img.get("caption", MISSING), field="caption", **where)
    dataset_name = text_of(img.get("dataset_name", MISSING), field="dataset_name", **where)
    original = img.get("original_img_id", img.get("original_id", MISSING))
    if type(original) is not int and (type(original) is not str or not original):
        raise field_error(
            file, record, "original_img_id", "an image id (original_img_id or original_id)", original
        )
    sentence_id = img.get("sentence_id")
    if sentence_id is not None:
        sentence_id = int_of(sentence_id, field="sentence_id", **where)
    evals = img.get("tokens_positive_eval")
    if evals is not None:
        if type(evals) is not list:
            raise field_error(file, record, "tokens_positive_eval", "a list of span lists", evals)
        for k, spans in enumerate(evals):
            if type(spans) is not list:
                raise field_error(file, record, f"tokens_positive_eval[{k}]", "a list of spans", spans)
            for j, span in enumerate(spans):
                if not plain_span(span, len(caption)):
                    span_of(span, caption, field=f"tokens_positive_eval[{k}][{j}]", **where)
    source = img.get("data_source")
    if source is not None and type(source) is not str:
        raise field_error(file, record, "data_source", "a string (coco or vg)", source)
    return Entry(iid, file_name, width, height, caption, dataset_name, original, sentence_id, evals, source)


def _add_annotation(ann: Any, index: int, file: str, state: _State) -> None:
    iid = ann.get("image_id") if type(ann) is dict else None
    if type(iid) is not int or (iid not in state.entries and iid not in state.bad_entries):
        state.early.append(Rejected(orphan_error(ann, index, file), "annotation", annotation_ids(ann)))
        return
    if iid in state.bad_entries:
        state.skipped[iid] = state.skipped.get(iid, 0) + 1
        return
    entry = state.entries[iid]
    try:
        checked = fast_annotation(ann, entry) or check_annotation(ann, entry, file)
    except InputError as err:
        aid = ann.get("id")
        state.bad_anns.setdefault(iid, []).append((aid if type(aid) is int else None, err))
        return
    if checked.id in state.seen:
        state.duplicates.add(checked.id)
    state.seen.add(checked.id)
    state.groups.setdefault(iid, []).append(checked)


def fast_annotation(ann: dict[str, Any], entry: Entry) -> Annotation | None:
    """The plainly valid annotation (box inside the image, integer spans inside the caption, no mask), else
    None, never an error: :func:`check_annotation` then decides (a test checks both agree)."""
    try:
        aid, cid, tokens = ann["id"], ann["category_id"], ann["tokens_positive"]
        x, y, w, h = ann["bbox"]
        crowd = ann.get("iscrowd", 0)
        original = ann.get("original_id")
        seg = ann.get("segmentation")
        x2, y2 = x + w, y + h
        if not (
            type(aid) is int
            and type(cid) is int
            and type(crowd) is int
            and (crowd == 0 or crowd == 1)
            and (original is None or type(original) is int)
            and (seg is None or seg == [])
            and type(tokens) is list
            and type(x) in _NUMBER
            and type(y) in _NUMBER
            and type(w) in _NUMBER
            and type(h) in _NUMBER
            and 0 <= x < x2 <= entry.width
            and 0 <= y < y2 <= entry.height
        ):
            return None
        n = len(entry.caption)
        if not all(plain_span(span, n) for span in tokens):
            return None
        spans = [(span[0], span[1]) for span in tokens]
    except (KeyError, TypeError, ValueError):
        return None
    return Annotation(aid, [float(x), float(y), float(x2), float(y2)], spans, cid, crowd == 1, original, None)


def check_annotation(ann: Any, entry: Entry, file: str) -> Annotation:
    """One annotation of ``entry``: box inside the image, spans inside the caption."""
    aid = ann.get("id", MISSING)
    record = f"annotation {aid} (image {entry.id})" if type(aid) is int else f"annotation of image {entry.id}"
    if type(aid) is not int:
        raise field_error(file, record, "id", "an integer", aid)
    where: Where = {"file": file, "record": record}
    x, y, w, h = number_list(ann.get("bbox", MISSING), 4, field="bbox", what="[x, y, w, h] numbers", **where)
    # the one place MDETR's COCO [x, y, w, h] becomes xyxy (docs/spec.md#coordinates)
    box = check_box_xyxy([x, y, x + w, y + h], entry.width, entry.height, field="bbox", **where)
    tokens = ann.get("tokens_positive", MISSING)
    if type(tokens) is not list:
        raise field_error(file, record, "tokens_positive", "a list of [start, end] spans", tokens)
    spans = [span_of(s, entry.caption, field=f"tokens_positive[{k}]", **where) for k, s in enumerate(tokens)]
    category_id = int_of(ann.get("category_id", MISSING), field="category_id", **where)
    crowd = ann.get("iscrowd", 0)
    if type(crowd) not in (int, bool) or crowd not in (0, 1):
        raise field_error(file, record, "iscrowd", "0 or 1", crowd)
    original = ann.get("original_id")
    if original is not None:
        original = int_of(original, field="original_id", **where)
    seg = ann.get("segmentation")
    mask = None
    if seg is not None and seg != []:
        mask = _checked_mask(
            seg, CocoImage(entry.id, entry.file_name, entry.width, entry.height), file, record
        )
    return Annotation(aid, box, spans, category_id, crowd == 1, original, mask)


# ---------------------------------------------------------------------------------------------- records


@dataclass
class _Emitter:
    file: str
    stem: str
    split: str | None
    images_dir: str | Path | None
    names: dict[int, str]
    image_errors: dict[str, InputError | None] = field(default_factory=dict)

    def entry_items(self, iid: int, state: _State) -> Iterator[IngestItem]:
        anns = state.groups.pop(iid, [])
        if iid in state.bad_entries:
            yield Rejected(state.bad_entries[iid], "image", {"image_id": iid})
            gone = state.skipped.get(iid, 0) + len(anns)
            if gone:
                yield Excluded("image.rejected", "annotation", gone)
            return
        entry = state.entries[iid]
        ids = {"image_id": iid}
        rejected = 0
        for aid, err in state.bad_anns.get(iid, ()):
            rejected += 1
            yield Rejected(err, "annotation", ids if aid is None else {**ids, "ann_id": aid})
        if state.duplicates:
            kept = [a for a in anns if a.id not in state.duplicates]
            for a in anns:
                if a.id in state.duplicates:
                    rejected += 1
                    err = duplicate_annotation_error(self.file, a.id, iid)
                    yield Rejected(err, "annotation", {**ids, "ann_id": a.id})
            anns = kept
        try:
            self._check_image(entry)
        except InputError as err:
            yield Rejected(err, "image", ids)
            if anns:
                yield Excluded("image.rejected", "annotation", len(anns))
            return
        regions, used = self._regions(entry, anns)
        if len(used) < len(anns):
            yield Excluded("no_span", "annotation", len(anns) - len(used))
        if not regions:
            yield Excluded("annotations.rejected" if rejected else "no_regions", "image")
            return
        yield Tally("image", kept=1)
        yield Tally("annotation", kept=len(used))
        yield self._record(entry, used, regions, rejected)

    def _check_image(self, entry: Entry) -> None:
        if self.images_dir is None:
            return
        if entry.file_name not in self.image_errors:
            from gtok_cli.images import check_image_size  # PIL only when images are checked

            try:
                check_image_size(
                    self.images_dir, entry.file_name, entry.width, entry.height, file=self.file,
                    record=f"image {entry.id}",
                )  # fmt: skip
                self.image_errors[entry.file_name] = None
            except InputError as err:
                self.image_errors[entry.file_name] = err
        cached = self.image_errors[entry.file_name]
        if cached is not None:
            raise cached

    def _regions(self, entry: Entry, anns: list[Annotation]) -> tuple[list[dict[str, Any]], list[Annotation]]:
        """The record's regions and the annotations they come from."""
        regions: list[tuple[tuple[int, int], dict[str, Any]]] = []
        used: list[Annotation] = []
        text = entry.caption
        referring = entry.dataset_name in REFERRING_DATASETS
        for a in anns:
            ann_id = a.original_id if a.original_id is not None else a.id
            if referring:
                span = min(a.spans) if a.spans else None
                region = make_region(
                    list(a.bbox), mask=a.mask, label=self.names.get(a.category_id), category_id=a.category_id,
                    iscrowd=a.iscrowd, ann_id=ann_id, phrase=text[span[0] : span[1]] if span else None,
                    span=list(span) if span else None,
                )  # fmt: skip
                region["tokens_positive"] = [list(s) for s in a.spans]
                region["mdetr_ann_id"] = a.id
                regions.append((span or (0, 0), region))
                used.append(a)
                continue
            if not a.spans:
                continue
            used.append(a)
            for start, end in sorted(set(a.spans)):
                phrase = text[start:end]
                region = make_region(
                    list(a.bbox), mask=a.mask, label=phrase, category_id=a.category_id, iscrowd=a.iscrowd,
                    ann_id=ann_id, phrase=phrase, span=[start, end],
                )  # fmt: skip
                region["mdetr_ann_id"] = a.id
                regions.append(((start, end), region))
        if not referring:
            regions.sort(key=lambda pair: pair[0])  # stable: boxes of one span keep the file's order
        return [r for _, r in regions], used

    def _record(
        self, entry: Entry, anns: list[Annotation], regions: list[dict[str, Any]], rejected: int
    ) -> dict[str, Any]:
        source: dict[str, Any] = {
            "mdetr_image_id": entry.id,
            "image_id": entry.original_img_id,
            "ann_ids": [a.id for a in anns],
        }
        originals = [a.original_id for a in anns]
        if any(o is not None for o in originals):
            source["original_ann_ids"] = originals
        if entry.sentence_id is not None:
            source["sentence_id"] = entry.sentence_id
        source["dataset_name"] = entry.dataset_name
        if entry.data_source is not None:
            source["data_source"] = entry.data_source
        if entry.tokens_positive_eval is not None:
            source["tokens_positive_eval"] = entry.tokens_positive_eval
        record = make_record(
            record_id=f"mdetr:{self.stem}:{entry.id}",
            dataset=entry.dataset_name,
            split=self.split,
            task="referring" if entry.dataset_name in REFERRING_DATASETS else "grounded_caption",
            text=entry.caption,
            image_file=entry.file_name,
            width=entry.width,
            height=entry.height,
            image_id=entry.original_img_id,
            regions=regions,
            source=source,
        )
        if rejected:
            record["incomplete"] = {"rejected_annotations": rejected}
        return record
