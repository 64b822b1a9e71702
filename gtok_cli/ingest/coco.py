"""COCO ``instances_*.json`` (+ optional ``captions_*.json``) → canonical records.

What is written, per image (in image-id order), for the record ``tasks`` asked for:

- ``instances`` (the default): one record with every region of the image (sorted by annotation id);
- ``category`` (opt-in): one record per category present (in category-id order), all its instances, ``text``
  = the category name. These repeat every mask of the ``instances`` record (twice the output), and export
  derives the same ``multi`` samples from an ``instances`` record, so they are off unless asked for.

Record ids: ``coco:<split>:<image_id>:instances`` and ``coco:<split>:<image_id>:cat<category_id>``. Sources:
``{"image_id", "ann_ids"[, "category_id"][, "caption_ids"]}``.

Conventions (docs/spec.md#coordinates, docs/spec.md#records):

- ``bbox`` ``[x, y, w, h]`` becomes ``[x, y, x + w, y + h]`` once, checked by :func:`records.check_box_xyxy`
  (which also clamps the sub-pixel overshoot COCO has). Checks: :mod:`gtok_cli.ingest.coco_validate`.
- Masks are kept exactly as given: polygons (one list per part) and RLE with list counts (uncompressed) or
  compressed string counts, as ``{"size": [h, w], "counts": …}``. Not converted: both forms are lossless and
  ``pycocotools.mask.frPyObjects`` reads either. An empty polygon list means "no mask" (``null``).
- ``iscrowd`` regions go into the records marked ``iscrowd: true`` only with ``include_crowd``; otherwise
  each is counted as ``Excluded("crowd")``.
- Captions have no phrase grounding, so they make no ``grounded_caption`` records: they ride along on the
  image's ``instances`` record (``captions``: texts in caption-id order; ``source.caption_ids``). Captions of
  an image that gets no instances record are counted as ``Excluded("caption.no_record")``.
- An image with no regions (no annotations, or only excluded crowd) is counted as ``Excluded("no_regions")``.

Errors: file-level problems (unreadable, empty, not JSON / not UTF-8, missing or mistyped top-level arrays, a
bad category table) stop the run in every mode. Item-level problems are :class:`Rejected` items, one per bad
item: an annotation (bad field, duplicate id, naming no known image), a caption, an image entry (or an image
whose file fails the ``--images`` check). A bad annotation is left out alone: the image's other annotations
are written, and its records carry ``incomplete: {"rejected_annotations": N}`` (export ``--task detect``
skips them: a detection target must list every object). A rejected image's annotations are
``Excluded("image.rejected")``. Counts are per unit (``image``, ``annotation``, ``caption``), each
``read = kept + excluded + rejected``, read counted from the file's arrays. Rejections found while reading
(bad image entries, orphan annotations, bad captions) come first, then images in id order.

Speed and memory (COCO-train: 118k images, 860k annotations, ~450 MB): the file is read once as bytes and
the annotations array is parsed in ~16 MB slices (:mod:`gtok_cli.ingest.json_chunks`, whole-document
fallback). With ``as_bytes=True`` (the CLI) on a large file, the slices are shared out between this process
and a forked child (:mod:`gtok_cli.ingest.coco_scan`), which check and serialise each annotation once right
away, so only compact bytes are kept per image; the results are merged in array order, so records, errors
and counts are exactly those of one process. The cyclic GC is paused while the generator runs: millions of
parsed, acyclic objects would otherwise be traversed repeatedly.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import Any

import orjson

from gtok_cli.errors import InputError
from gtok_cli.ingest.coco_flavors import FLAVORS, fill_missing, split_pattern
from gtok_cli.ingest.coco_scan import Entry, Scan, ScanContext, scan, scan_forked
from gtok_cli.ingest.coco_validate import (
    MISSING,
    CocoImage,
    annotation_ids,
    check_image_entry,
    duplicate_annotation_error,
    field_error,
    load_categories,
    orphan_error,
    type_name,
)
from gtok_cli.ingest.common import Excluded, IngestItem, Rejected, Tally
from gtok_cli.ingest.json_chunks import NotChunkable, parse_slice, split_array
from gtok_cli.jsonio import dumps_line, read_input_bytes
from gtok_cli.parallel import gc_paused, usable_cpus
from gtok_cli.records import make_record

DATASET = "coco"
TASKS = ("instances", "category")
DEFAULT_TASKS = ("instances",)
"""``category`` records repeat every mask of the ``instances`` record: opt-in (export derives the per-category
``multi`` task from ``instances`` records)."""
MAX_PROCESSES = 2
"""Processes reading the annotations array at once (with ``as_bytes``); each child adds its share's memory."""
PARALLEL_MIN_BYTES = 64 << 20
"""Smaller inputs are read in this process only: forking and sending the results back cost more there."""

_REGIONS_SLOT = b'"regions":['


def split_from_filename(path: str | Path, flavor: str = "coco") -> str | None:
    """``instances_val2017.json`` → ``"val2017"``; ``instances_val2017_sample.json`` → ``"val2017"``;
    ``lvis_v1_val.json`` → ``"val"`` (flavor lvis); ``zhiyuan_objv2_val.json`` → ``"val"`` (objects365)."""
    match = re.match(split_pattern(flavor), Path(path).name)
    return match.group(1) if match else None


def iter_coco(
    instances_path: str | Path,
    captions_path: str | Path | None = None,
    images_dir: str | Path | None = None,
    include_crowd: bool = False,
    tasks: Iterable[str] = DEFAULT_TASKS,
    split: str | None = None,
    as_bytes: bool = False,
    flavor: str = "coco",
) -> Iterator[IngestItem]:
    """Records (and Rejected / Excluded items) of a COCO instances file; see the module doc.

    ``flavor``: ``coco``, or ``lvis`` / ``objects365`` for those datasets' COCO-layout files (their quirks:
    :mod:`gtok_cli.ingest.coco_flavors`; records are then ``lvis:…`` / ``objects365:…``).

    ``tasks``: the record kinds to write, from :data:`TASKS` (default: ``instances`` only). With
    ``as_bytes``, records come as JSONL lines (``bytes``, byte-identical to ``jsonio.dumps_line`` of the dict
    record): the fast, compact path the CLI uses.
    """
    tasks = tuple(tasks)
    if flavor not in FLAVORS:
        raise ValueError(f"flavor must be one of {FLAVORS}, got {flavor!r}")
    if not tasks or set(tasks) - set(TASKS):
        raise ValueError(f"tasks must be a non-empty subset of {TASKS}, got {tasks}")
    file = str(instances_path)
    with gc_paused():
        try:
            state = _read_instances(file, include_crowd, as_bytes, chunked=True, flavor=flavor)
        except (NotChunkable, InputError):
            # the whole-document parse gives the one canonical first error (a bad slice guess can make the
            # head look wrong before the slices prove it)
            state = _read_instances(file, include_crowd, as_bytes, chunked=False, flavor=flavor)
        yield Tally("image", read=state.image_entries)
        yield Tally("annotation", read=state.annotations)
        if captions_path is not None:
            captions, caption_rejects = _load_captions(str(captions_path), state.groups)
            yield Tally("caption", read=sum(map(len, captions.values())) + len(caption_rejects))
            state.early.extend(caption_rejects)
        else:
            captions = {}
        yield from state.early
        state.early.clear()
        emitter = _Emitter(
            file=file,
            split=split if split is not None else split_from_filename(file, flavor),
            images_dir=images_dir,
            include_crowd=include_crowd,
            tasks=tasks,
            as_bytes=as_bytes,
            names=state.names,
            dataset=flavor,
        )
        yield from emitter.emit(state, captions)


# ---------------------------------------------------------------------------------------------- reading


@dataclass
class _State:
    names: dict[int, str] = field(default_factory=dict)
    images: dict[int, CocoImage] = field(default_factory=dict)
    bad_images: dict[int, InputError] = field(default_factory=dict)
    groups: dict[int, list[Entry]] = field(default_factory=dict)
    """Every image id seen (good or bad) → its annotations' entries."""
    bad_anns: dict[int, list[tuple[int | None, InputError]]] = field(default_factory=dict)
    """Image id → (ann id if an integer, error) of its bad annotations, in array order."""
    skipped: dict[int, int] = field(default_factory=dict)
    """Image id (bad entry) → its annotations, not checked."""
    image_entries: int = 0
    """Entries in the file's images array."""
    annotations: int = 0
    """Annotations in the file's array."""
    duplicate_ann_ids: set[int] = field(default_factory=set)
    crowd_images: set[int] = field(default_factory=set)
    """Images with crowd entries left out (None regions); only their entries need filtering."""
    early: list[IngestItem] = field(default_factory=list)
    """Rejections found while reading, yielded before any record."""


def _read_instances(
    file: str, include_crowd: bool, as_bytes: bool, *, chunked: bool, flavor: str = "coco"
) -> _State:
    data = _read_bytes(file)
    bounds: list[tuple[int, int]] = []
    if chunked:
        doc = split_array(data, "annotations")
        head, bounds = doc.head, doc.bounds
        del doc
        _check_top(head, file, annotations_known=True)
    else:
        head = _parse_whole(data, file)
        _check_top(head, file, annotations_known=False)
    state = _State(names=load_categories(head["categories"], file))
    _add_images(head["images"], file, state, flavor)
    state.image_entries = len(head["images"])
    ctx = ScanContext(
        file=file,
        names=state.names,
        images=state.images,
        known=frozenset(state.groups),
        bad_before=frozenset(state.bad_images),
        include_crowd=include_crowd,
        as_bytes=as_bytes,
        fill_missing=fill_missing(flavor),
    )
    processes = min(MAX_PROCESSES, usable_cpus())
    if not chunked:
        anns = head["annotations"]
        head["annotations"] = None
        del data
        scans = [scan([anns], ctx)]
    elif as_bytes and processes > 1 and len(bounds) > 1 and len(data) >= PARALLEL_MIN_BYTES:
        del head
        scans = scan_forked(data, bounds, ctx, processes)
    else:
        del head
        scans = [scan((parse_slice(data, start, end) for start, end in bounds), ctx)]
    merge_scans(state, scans, file)
    return state


def merge_scans(state: _State, scans: list[Scan], file: str) -> None:
    """Fold scans of consecutive parts of the array into ``state``, as if one scan had read it all."""
    seen: set[int] = set()
    base = 0
    for part in scans:
        state.duplicate_ann_ids |= part.duplicates | (seen & part.seen)
        seen |= part.seen
        groups = state.groups
        for iid, entries in part.groups.items():
            groups[iid] += entries
        state.crowd_images |= part.crowd_images
        for iid, errors in part.bad.items():
            state.bad_anns.setdefault(iid, []).extend(errors)
        for iid, n in part.skipped.items():
            state.skipped[iid] = state.skipped.get(iid, 0) + n
        state.early += [
            Rejected(orphan_error(ann, base + i, file), "annotation", annotation_ids(ann))
            for i, ann in part.orphans
        ]
        base += part.count
    state.annotations = base


def _read_bytes(file: str) -> bytes:
    data = read_input_bytes(file)  # a .gz file is decompressed
    if not data.strip():
        raise InputError("file is empty", file=file, reason="file.empty")
    return data


def _parse_whole(data: bytes, file: str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        reason = "text.encoding" if "UTF-8" in str(exc) else "json.invalid"
        raise InputError(f"not valid JSON: {exc}", file=file, reason=reason) from None


def _check_top(head: Any, file: str, *, annotations_known: bool) -> None:
    if type(head) is not dict:
        raise InputError(
            "not a COCO instances file", file=file, field="(top level)",
            expected="an object with images, annotations, categories", found=type_name(head),
            reason="coco.structure",
        )  # fmt: skip
    for key in ("images", "categories") if annotations_known else ("images", "annotations", "categories"):
        value = head.get(key, MISSING)
        if type(value) is not list:
            raise field_error(file, "(file)", key, "a list", value if value is MISSING else type_name(value))


def _add_images(images: list[Any], file: str, state: _State, flavor: str = "coco") -> None:
    for index, img in enumerate(images):
        iid = img.get("id") if type(img) is dict else None
        if type(iid) is int and iid in state.groups:
            # a second entry with this id: both are rejected (this one now, the first with its annotations)
            err = InputError(
                "duplicate image id", file=file, record=f"image {iid}", field="id",
                expected="unique ids", found=iid, reason="id.duplicate",
            )  # fmt: skip
            state.bad_images.setdefault(iid, err)
            state.early.append(Rejected(err, "image", {"image_id": iid}))
            continue
        try:
            entry = check_image_entry(img, index, file, flavor)
        except InputError as err:
            if type(iid) is int:
                state.bad_images[iid] = err  # its annotations go with it, not as orphans
                state.groups[iid] = []
            else:
                state.early.append(Rejected(err, "image"))
            continue
        state.images[entry.id] = entry
        state.groups[entry.id] = []


# ---------------------------------------------------------------------------------------------- captions


def _load_captions(
    path: str, known_images: dict[int, Any]
) -> tuple[dict[int, list[tuple[int, str]]], list[Rejected]]:
    """``{image_id: [(caption_id, text), …]}`` sorted by caption id, and the captions rejected."""
    data = _parse_whole(_read_bytes(path), path)
    anns = data.get("annotations", MISSING) if type(data) is dict else MISSING
    if type(anns) is not list:
        raise field_error(path, "(file)", "annotations", "a list of captions", type_name(anns))
    by_image: dict[int, list[tuple[int, str]]] = {}
    rejected: list[Rejected] = []
    seen: set[int] = set()
    for index, cap in enumerate(anns):
        try:
            iid = _checked_caption(cap, index, path, known_images, seen)
        except InputError as err:
            ids = {"caption_id": cap.get("id")} if type(cap) is dict and type(cap.get("id")) is int else {}
            rejected.append(Rejected(err, "caption", ids))
            continue
        by_image.setdefault(iid, []).append((cap["id"], cap["caption"]))
    for caps in by_image.values():
        caps.sort()
    return by_image, rejected


def _checked_caption(cap: Any, index: int, file: str, known_images: dict[int, Any], seen: set[int]) -> int:
    if type(cap) is not dict:
        raise field_error(file, f"annotations[{index}]", "(caption)", "an object", type_name(cap))
    cid = cap.get("id", MISSING)
    if type(cid) is not int:
        raise field_error(file, f"annotations[{index}]", "id", "an integer", cid)
    record = f"caption {cid}"
    if cid in seen:
        raise InputError(
            "duplicate caption id", file=file, record=record, field="id", expected="unique ids", found=cid,
            reason="id.duplicate",
        )  # fmt: skip
    seen.add(cid)
    iid = cap.get("image_id", MISSING)
    if type(iid) is not int:
        raise field_error(file, record, "image_id", "an integer", iid)
    if iid not in known_images:
        raise InputError(
            "caption for an image not in the instances file", file=file, record=record, field="image_id",
            expected="an image id of the instances file", found=iid, reason="image.unknown",
        )  # fmt: skip
    text = cap.get("caption", MISSING)
    if type(text) is not str:
        raise field_error(file, record, "caption", "a string", text)
    return iid


# ---------------------------------------------------------------------------------------------- records


@dataclass
class _Emitter:
    file: str
    split: str | None
    images_dir: str | Path | None
    include_crowd: bool
    tasks: tuple[str, ...]
    as_bytes: bool
    names: dict[int, str]
    dataset: str = DATASET

    def emit(self, state: _State, captions: dict[int, list[tuple[int, str]]]) -> Iterator[IngestItem]:
        groups = state.groups
        for iid in sorted(groups):
            entries = groups.pop(iid)  # frees the image's regions once its records are out
            image_captions = captions.pop(iid, [])
            written_instances = False
            yield from self._bad_annotations(iid, entries, state)
            rejected = len(state.bad_anns.get(iid, ()))
            if state.duplicate_ann_ids:
                rejected += len(entries)
                entries = [e for e in entries if e[0] not in state.duplicate_ann_ids]
                rejected -= len(entries)
            try:
                image = self._checked_image(iid, state)
            except InputError as err:
                yield Rejected(err, "image", {"image_id": iid})
                gone = len(entries) + state.skipped.get(iid, 0)
                if gone:
                    yield Excluded("image.rejected", "annotation", gone)
            else:
                entries.sort(key=itemgetter(0))
                kept = [e for e in entries if e[2] is not None] if iid in state.crowd_images else entries
                crowd: list[int] = []
                if len(kept) < len(entries):
                    yield Excluded("crowd", "annotation", len(entries) - len(kept))
                    crowd = sorted({e[1] for e in entries if e[2] is None})
                if not kept:
                    yield Excluded("annotations.rejected" if rejected else "no_regions", "image")
                else:
                    yield Tally("image", kept=1)
                    yield Tally("annotation", kept=len(kept))
                    incomplete = {"rejected_annotations": rejected} if rejected else None
                    if "instances" in self.tasks:
                        written_instances = True
                        yield self._instances_record(image, kept, image_captions, incomplete, crowd)
                    if "category" in self.tasks:
                        yield from self._category_records(image, kept, incomplete, crowd)
            if image_captions:
                if written_instances:
                    yield Tally("caption", kept=len(image_captions))
                else:
                    yield Excluded("caption.no_record", "caption", len(image_captions))

    def _bad_annotations(self, iid: int, entries: list[Entry], state: _State) -> Iterator[Rejected]:
        """One rejection per bad annotation of the image: field errors (array order), duplicate ids."""
        for aid, err in state.bad_anns.get(iid, ()):
            yield Rejected(
                err, "annotation", {"image_id": iid} if aid is None else {"image_id": iid, "ann_id": aid}
            )
        if state.duplicate_ann_ids:
            for aid, _, _ in sorted(entries, key=itemgetter(0)):
                if aid in state.duplicate_ann_ids:
                    err = duplicate_annotation_error(self.file, aid, iid)
                    yield Rejected(err, "annotation", {"image_id": iid, "ann_id": aid})

    def _checked_image(self, iid: int, state: _State) -> CocoImage:
        if iid in state.bad_images:
            raise state.bad_images[iid]
        image = state.images[iid]
        if self.images_dir is not None:
            from gtok_cli.images import check_image_size  # PIL only when images are checked

            check_image_size(
                self.images_dir,
                image.file_name,
                image.width,
                image.height,
                file=self.file,
                record=f"image {iid}",
            )
        return image

    def _record_id(self, image: CocoImage, suffix: str) -> str:
        return (
            f"{self.dataset}:{self.split}:{image.id}:{suffix}"
            if self.split
            else f"{self.dataset}:{image.id}:{suffix}"
        )

    def _record(
        self,
        record_id: str,
        task: str,
        text: str | None,
        image: CocoImage,
        entries: list[Entry],
        source: dict[str, Any],
    ) -> dict[str, Any]:
        record = make_record(
            record_id=record_id,
            dataset=self.dataset,
            split=self.split,
            task=task,
            text=text,
            image_file=image.file_name,
            width=image.width,
            height=image.height,
            image_id=image.id,
            regions=[] if self.as_bytes else [e[2] for e in entries],
            source=source,
        )
        if image.extra:
            record.update(image.extra)
        return record

    def _finish(self, record: dict[str, Any], entries: list[Entry]) -> IngestItem:
        """The dict record, or (as_bytes) its JSONL line with the pre-serialised regions spliced in."""
        if not self.as_bytes:
            return record
        line = dumps_line(record)
        # the first '"regions":[' is the key (quotes inside string values are escaped), its list is empty
        at = line.index(_REGIONS_SLOT) + len(_REGIONS_SLOT)
        # head, region, ",", region, …, tail: one join (one copy of the regions' bytes)
        k = len(entries)
        if not k:
            return line
        pieces = [b","] * (2 * k + 1)
        pieces[1 : 2 * k : 2] = [e[2] for e in entries]
        pieces[0], pieces[2 * k] = line[:at], line[at:]
        return b"".join(pieces)

    def _instances_record(
        self,
        image: CocoImage,
        entries: list[Entry],
        captions: list[tuple[int, str]],
        incomplete: dict[str, int] | None,
        crowd: list[int],
    ) -> IngestItem:
        source: dict[str, Any] = {"image_id": image.id, "ann_ids": [e[0] for e in entries]}
        if captions:
            source["caption_ids"] = [cid for cid, _ in captions]
        record = self._record(self._record_id(image, "instances"), "instances", None, image, entries, source)
        if captions:
            record["captions"] = [text for _, text in captions]
        if incomplete:
            record["incomplete"] = incomplete
        if crowd:  # what a count must not miss: the crowd annotations left out (docs/spec.md#counting)
            record["crowd_category_ids"] = crowd
        return self._finish(record, entries)

    def _category_records(
        self, image: CocoImage, entries: list[Entry], incomplete: dict[str, int] | None, crowd: list[int]
    ) -> Iterator[IngestItem]:
        by_category: dict[int, list[Entry]] = {}
        for entry in entries:
            by_category.setdefault(entry[1], []).append(entry)
        for cid in sorted(by_category):
            members = by_category[cid]
            source = {"image_id": image.id, "ann_ids": [e[0] for e in members], "category_id": cid}
            record = self._record(
                self._record_id(image, f"cat{cid}"), "category", self.names[cid], image, members, source
            )
            if incomplete:  # the image's: a bad annotation's category is not always known
                record["incomplete"] = incomplete
            if cid in crowd:
                record["crowd_category_ids"] = [cid]
            yield self._finish(record, members)
