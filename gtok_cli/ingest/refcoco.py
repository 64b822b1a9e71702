"""RefCOCO / RefCOCO+ / RefCOCOg in the lichengunc/refer format → canonical ``referring`` records.

The format, as ``refer.py`` (``REFER.__init__`` / ``createIndex`` / ``getRefIds``) reads it:

- ``refs(<splitBy>).p``: a Python-2 pickle of a list of refs, one per referred object::

      {"ref_id": 0, "ann_id": 1719310, "image_id": 581857, "category_id": 1, "split": "train",
       "file_name": "COCO_train2014_000000581857_16.jpg", "sent_ids": [0, 1, 2],
       "sentences": [{"tokens": [...], "raw": "THE LADY WITH THE BLUE SHIRT", "sent_id": 0,
                      "sent": "the lady with the blue shirt"}, ...]}

  There is no box in a ref: box and mask come from ``instances.json`` through ``ann_id``. ``file_name`` is the
  COCO image name with a ``_<n>`` suffix (in the released files ``n`` is *not* the ann_id: the first ref above
  has ann_id 1719310 and suffix 16); it is stripped and must equal the image's ``file_name``.
- ``instances.json``: COCO-style ``images`` / ``annotations`` / ``categories`` (boxes ``[x, y, w, h]``,
  polygons or RLE).
- Splits: ``--split`` follows ``getRefIds``: ``train`` / ``val`` match exactly, ``test`` matches every split
  containing "test", ``testA`` / ``testB`` / ``testC`` match splits containing that letter (testAB…).

One record per sentence; its text is the sentence's ``sent`` (the cleaned, lower-cased form ``refer.py``
shows and tokenises; ``raw`` is kept in ``source``). Records are emitted grouped by ``ann_id`` (every sentence
of one object is consecutive), so a consumer can deduplicate one object's expressions.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gtok_cli.errors import InputError, UsageError
from gtok_cli.images import check_image_size
from gtok_cli.ingest.coco_validate import (
    AnnotationContext,
    CocoImage,
    check_image_entry,
    checked_region,
    load_categories,
)
from gtok_cli.ingest.common import Excluded, IngestItem, Rejected, Tally
from gtok_cli.ingest.safe_pickle import load_plain_list
from gtok_cli.jsonio import load_json
from gtok_cli.records import make_record

DATASETS = ("refcoco", "refcoco+", "refcocog")
SPLITS = ("train", "val", "test", "testA", "testB", "testC", "testAB", "testBC", "testAC")
"""Every split name ``refer.py`` knows (refcoco/refcoco+ unc: train, val, testA, testB; refcoco google:
train, val, test; refcocog google: train, val; refcocog umd: train, val, test)."""

_REFS_NAME = re.compile(r"refs\((\w+)\)\.p$")
_SUFFIX = re.compile(r"^(?P<base>.+)_(?P<n>\d+)(?P<ext>\.[A-Za-z0-9]+)$")


def split_by_from_path(refs_path: str | Path) -> str | None:
    """``refs(unc).p`` → ``"unc"``; None when the name does not say."""
    m = _REFS_NAME.search(Path(refs_path).name)
    return m.group(1) if m else None


def split_matches(ref_split: str, wanted: str) -> bool:
    """Whether a ref of ``ref_split`` is selected by ``--split wanted``, as ``REFER.getRefIds`` decides."""
    if wanted in ("testA", "testB", "testC"):
        return wanted[-1] in ref_split
    if wanted == "test":
        return "test" in ref_split
    return ref_split == wanted


def strip_ref_suffix(file_name: str) -> str | None:
    """``COCO_train2014_000000581857_16.jpg`` → ``COCO_train2014_000000581857.jpg``; None without a suffix."""
    m = _SUFFIX.match(file_name)
    return m.group("base") + m.group("ext") if m else None


@dataclass(frozen=True)
class Instances:
    """``instances.json`` indexed by id (entries validated lazily, when a ref uses them)."""

    path: str
    images: dict[int, dict[str, Any]]
    anns: dict[int, dict[str, Any]]
    names: dict[int, str]


def load_instances(path: str | Path) -> Instances:
    name = str(path)
    data = load_json(path)
    if not isinstance(data, dict):
        raise InputError(
            "instances file is not a JSON object",
            file=name,
            field="(top level)",
            expected="object with images, annotations, categories",
            found=type(data).__name__,
            reason="instances.shape",
        )
    index: dict[str, dict[Any, Any]] = {}
    for key in ("images", "annotations", "categories"):
        items = data.get(key)
        if not isinstance(items, list):
            raise InputError(
                f"instances file has no {key} list",
                file=name,
                field=key,
                expected="a list",
                found=type(items).__name__ if key in data else "missing",
                reason="instances.missing_key",
            )
        by_id: dict[Any, Any] = {}
        for i, item in enumerate(items):
            if not isinstance(item, dict) or not _is_int(item.get("id")):
                raise InputError(
                    f"{key} entry has no integer id",
                    file=name,
                    record=f"{key}[{i}]",
                    field="id",
                    expected="an object with an integer id",
                    found=item.get("id") if isinstance(item, dict) else type(item).__name__,
                    reason="instances.id",
                )
            if item["id"] in by_id:
                raise InputError(
                    f"duplicate {key} id",
                    file=name,
                    record=f"{key}[{i}]",
                    field="id",
                    expected="unique ids",
                    found=item["id"],
                    reason="instances.duplicate_id",
                )
            by_id[item["id"]] = item
        index[key] = by_id
    names = load_categories(data["categories"], name)
    return Instances(name, index["images"], index["annotations"], names)


def load_refs(refs_path: str | Path) -> list[Any]:
    """The refs list, through the restricted unpickler (never executes anything)."""
    return load_plain_list(refs_path)


def exclusions(refs: Iterable[Any]) -> list[int]:
    """Sorted COCO image ids of every ref not in ``train`` (val/test images that COCO training must skip).

    Malformed refs count too when their ``image_id`` and ``split`` can be read: leaving an image out by
    mistake is cheap, leaking a test image is not.
    """
    ids = {
        ref["image_id"]
        for ref in refs
        if isinstance(ref, dict)
        and _is_int(ref.get("image_id"))
        and isinstance(ref.get("split"), str)
        and ref["split"] != "train"
    }
    return sorted(ids)


def splits_present(refs: Iterable[Any]) -> list[str]:
    """The split names of ``refs``, in :data:`SPLITS` order (then any other, sorted)."""
    found = {ref["split"] for ref in refs if isinstance(ref, dict) and isinstance(ref.get("split"), str)}
    return [s for s in SPLITS if s in found] + sorted(found - set(SPLITS))


def format_exclusions(ids: Iterable[int]) -> bytes:
    """The ``--exclusions`` file: one decimal image id per line, ascending (grep/awk/pandas friendly)."""
    return b"".join(f"{i}\n".encode() for i in ids)


def iter_refcoco(
    dataset: str,
    refs_path: str | Path,
    instances_path: str | Path,
    split: str | None = None,
    images_dir: str | Path | None = None,
    *,
    split_by: str | None = None,
    refs: list[Any] | None = None,
) -> Iterator[IngestItem]:
    """Yield one ``referring`` record per sentence; see the module doc.

    Counts (units ``ref`` and ``sentence``, of the refs ``split`` selects): a bad ref is one
    :class:`Rejected` ``ref`` and its sentences are ``Excluded("ref.rejected")``; a bad sentence is one
    rejected ``sentence``, its ref's other sentences are kept.

    ``split_by`` defaults to the name in ``refs(<splitBy>).p``; ``refs`` may pass an already loaded refs list.
    """
    if dataset not in DATASETS:
        raise UsageError(f"unknown dataset {dataset!r}; expected one of {', '.join(DATASETS)}")
    if split is not None and split not in SPLITS:
        raise UsageError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    split_by = split_by or split_by_from_path(refs_path)
    if not split_by:
        raise UsageError(f"cannot tell the splitBy from {Path(refs_path).name!r}; name it refs(<splitBy>).p")
    if refs is None:
        refs = load_refs(refs_path)
    instances = load_instances(instances_path)
    reader = _RefReader(dataset, split_by, str(refs_path), instances, images_dir)
    chosen = [
        (index, ref) for group in _group_by_ann(refs) for index, ref in group if reader.selected(ref, split)
    ]
    yield Tally("ref", read=len(chosen))
    yield Tally("sentence", read=sum(_sentence_count(ref) for _, ref in chosen))
    for index, ref in chosen:
        yield from reader.ref_items(index, ref)


def _sentence_count(ref: Any) -> int:
    """The sentences a ref holds (0 when they cannot be read)."""
    sentences = ref.get("sentences") if isinstance(ref, dict) else None
    return len(sentences) if isinstance(sentences, list) else 0


def _ids(ref: Any) -> dict[str, Any]:
    """The ref's integer ids, for its reject lines."""
    if not isinstance(ref, dict):
        return {}
    return {key: ref[key] for key in ("ref_id", "ann_id", "image_id") if _is_int(ref.get(key))}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _group_by_ann(refs: list[Any]) -> list[list[tuple[int, Any]]]:
    """Refs grouped by ann_id in order of first appearance (malformed refs stay alone, in place)."""
    groups: dict[Any, list[tuple[int, Any]]] = {}
    for index, ref in enumerate(refs):
        ann_id = ref.get("ann_id") if isinstance(ref, dict) else None
        key: Any = ("ann", ann_id) if _is_int(ann_id) else ("index", index)
        groups.setdefault(key, []).append((index, ref))
    return list(groups.values())


class _RefReader:
    """Validates refs against instances.json and builds their records."""

    def __init__(
        self,
        dataset: str,
        split_by: str,
        refs_file: str,
        instances: Instances,
        images_dir: str | Path | None,
    ) -> None:
        self.dataset = dataset
        self.split_by = split_by
        self.file = refs_file
        self.inst = instances
        self.images_dir = images_dir
        self.seen_ref_ids: set[Any] = set()
        self.seen_sent_ids: set[Any] = set()
        self.images: dict[int, CocoImage] = {}
        self.image_errors: dict[int, InputError | None] = {}
        # instances.json ids are unique (load_instances refuses duplicates): no duplicate set needed
        self.ann_ctx = AnnotationContext(instances.path, instances.names)

    # -- selection -------------------------------------------------------------------------------------
    def selected(self, ref: Any, split: str | None) -> bool:
        """Out-of-split refs are not read; refs whose split cannot be read are (and get rejected)."""
        if split is None or not isinstance(ref, dict) or not isinstance(ref.get("split"), str):
            return True
        return split_matches(ref["split"], split)

    # -- one ref ---------------------------------------------------------------------------------------
    def ref_items(self, index: int, ref: Any) -> Iterator[IngestItem]:
        label = f"refs[{index}]"
        if isinstance(ref, dict) and _is_int(ref.get("ref_id")):
            label = f"ref {ref['ref_id']}"
        ids = _ids(ref)
        try:
            ctx = self._check_ref(ref, label)
        except InputError as err:
            yield Rejected(err, "ref", ids)
            n = _sentence_count(ref)
            if n:
                yield Excluded("ref.rejected", "sentence", n)
            return
        kept = 0
        for sent in ref["sentences"]:
            try:
                record = self._record(ref, sent, ctx, label)
            except InputError as err:
                sent_id = sent.get("sent_id") if isinstance(sent, dict) else None
                yield Rejected(err, "sentence", {**ids, "sent_id": sent_id} if _is_int(sent_id) else ids)
                continue
            kept += 1
            yield record
        yield Tally("ref", kept=1)
        yield Tally("sentence", kept=kept)

    def _err(
        self, label: str, field: str, message: str, expected: str, found: Any, reason: str
    ) -> InputError:
        return InputError(
            message, file=self.file, record=label, field=field, expected=expected, found=found, reason=reason
        )

    def _check_ref(self, ref: Any, label: str) -> _RefContext:
        if not isinstance(ref, dict):
            raise self._err(label, "(ref)", "ref is not a dict", "a dict", type(ref).__name__, "ref.type")
        for key in ("ref_id", "ann_id", "image_id", "category_id"):
            if key not in ref:
                raise self._err(label, key, "ref lacks a key", "an integer", "missing", "ref.missing_key")
            if not _is_int(ref[key]):
                raise self._err(label, key, "ref id is not an integer", "an integer", ref[key], "ref.type")
        for key, kind in (("split", str), ("file_name", str), ("sentences", list), ("sent_ids", list)):
            if key not in ref:
                raise self._err(label, key, "ref lacks a key", kind.__name__, "missing", "ref.missing_key")
            if not isinstance(ref[key], kind):
                raise self._err(
                    label, key, "ref field has the wrong type", kind.__name__, ref[key], "ref.type"
                )
        if ref["split"] not in SPLITS:
            raise self._err(label, "split", "unknown split", "/".join(SPLITS), ref["split"], "ref.split")
        if not ref["sentences"]:
            raise self._err(
                label, "sentences", "ref has no sentences", "at least one", [], "ref.no_sentences"
            )
        listed = [s.get("sent_id") if isinstance(s, dict) else None for s in ref["sentences"]]
        if ref["sent_ids"] != listed:
            raise self._err(
                label, "sent_ids", "sent_ids disagree with the sentences", str(listed), ref["sent_ids"],
                "ref.sent_ids_mismatch",
            )  # fmt: skip
        if ref["ref_id"] in self.seen_ref_ids:
            raise self._err(
                label, "ref_id", "duplicate ref_id", "unique ref ids", ref["ref_id"], "ref.duplicate"
            )
        self.seen_ref_ids.add(ref["ref_id"])

        ann = self.inst.anns.get(ref["ann_id"])
        if ann is None:
            raise self._err(
                label, "ann_id", f"ann_id not in {self.inst.path}", "an annotation id of instances.json",
                ref["ann_id"], "ref.unknown_ann",
            )  # fmt: skip
        if ref["image_id"] not in self.inst.images:
            raise self._err(
                label, "image_id", f"image_id not in {self.inst.path}", "an image id of instances.json",
                ref["image_id"], "ref.unknown_image",
            )  # fmt: skip
        if ann.get("image_id") != ref["image_id"]:
            raise self._err(
                label, "image_id", "ref and its annotation name different images",
                f"image_id {ann.get('image_id')} (annotation {ref['ann_id']})", ref["image_id"],
                "ref.image_mismatch",
            )  # fmt: skip
        if ann.get("category_id") != ref["category_id"]:
            raise self._err(
                label, "category_id", "ref and its annotation disagree on the category",
                f"category_id {ann.get('category_id')} (annotation {ref['ann_id']})", ref["category_id"],
                "ref.category_mismatch",
            )  # fmt: skip
        image = self._check_image(ref["image_id"])
        base = strip_ref_suffix(ref["file_name"])
        if base is None:
            raise self._err(
                label, "file_name", "ref file_name lacks the _<n> suffix", "<image file stem>_<n>.<ext>",
                ref["file_name"], "ref.file_name",
            )  # fmt: skip
        if base != image.file_name:
            raise self._err(
                label, "file_name", "ref file_name (suffix stripped) is not its image's file_name",
                image.file_name, ref["file_name"], "ref.file_name_mismatch",
            )  # fmt: skip
        # box (COCO xywh → xyxy), mask (kept as COCO has it) and category: the COCO reader's one check
        region = checked_region(ann, image, self.ann_ctx)
        return _RefContext(image, region)

    def _check_image(self, image_id: int) -> CocoImage:
        """The image entry (validated by the COCO reader), and its file's real size with ``--images``."""
        if image_id not in self.images:
            self.images[image_id] = check_image_entry(self.inst.images[image_id], 0, self.inst.path)
        image = self.images[image_id]
        if self.images_dir is not None:
            if image_id not in self.image_errors:
                try:
                    check_image_size(
                        self.images_dir, image.file_name, image.width, image.height, file=self.inst.path,
                        record=f"image {image_id}",
                    )  # fmt: skip
                    self.image_errors[image_id] = None
                except InputError as err:
                    self.image_errors[image_id] = err
            cached = self.image_errors[image_id]
            if cached is not None:
                raise cached
        return image

    # -- one sentence ----------------------------------------------------------------------------------
    def _record(self, ref: dict[str, Any], sent: Any, ctx: _RefContext, label: str) -> dict[str, Any]:
        if not isinstance(sent, dict):
            raise self._err(label, "sentences[]", "sentence is not a dict", "a dict", sent, "sentence.type")
        sent_id = sent.get("sent_id")
        where = f"{label} sent {sent_id}"
        if not _is_int(sent_id):
            raise self._err(label, "sent_id", "sentence lacks an integer sent_id", "an integer", sent_id,
                            "sentence.missing_key")  # fmt: skip
        text = sent.get("sent")
        if not isinstance(text, str):
            raise self._err(
                where, "sent", "sentence lacks its text", "a string", text, "sentence.missing_key"
            )
        if not text.strip():
            raise self._err(
                where, "sent", "sentence is empty", "a non-empty expression", text, "sentence.empty"
            )
        raw = sent.get("raw")
        if raw is not None and not isinstance(raw, str):
            raise self._err(where, "raw", "raw sentence is not a string", "a string", raw, "sentence.type")
        if sent_id in self.seen_sent_ids:
            raise self._err(where, "sent_id", "duplicate sent_id", "unique sentence ids", sent_id,
                            "sentence.duplicate")  # fmt: skip
        self.seen_sent_ids.add(sent_id)
        ref_split = ref["split"]
        return make_record(
            record_id=f"{self.dataset}:{self.split_by}:{ref_split}:ref{ref['ref_id']}:sent{sent_id}",
            dataset=self.dataset,
            split=ref_split,
            task="referring",
            text=text,
            image_file=ctx.image.file_name,
            width=ctx.image.width,
            height=ctx.image.height,
            image_id=ref["image_id"],
            regions=[dict(ctx.region)],
            source={
                "image_id": ref["image_id"],
                "ann_id": ref["ann_id"],
                "ref_id": ref["ref_id"],
                "sent_id": sent_id,
                "split": ref_split,
                "split_by": self.split_by,
                "raw": raw,
            },
        )


@dataclass(frozen=True)
class _RefContext:
    """What one valid ref's sentences share."""

    image: CocoImage
    region: dict[str, Any]
