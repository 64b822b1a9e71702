"""Visual Genome v1.2 (``image_data.json`` + ``region_descriptions.json`` / ``objects.json`` /
``relationships.json``) → canonical records.

Layout (each file one top-level JSON array, one entry per image; the per-image key is ``id`` in the files and
``image_id`` in the docs and some releases, so both are accepted, as the dataset's own driver does:
``ranjaykrishna/visual_genome_python_driver`` ``visual_genome/utils.py`` ``parse_image_data`` and
``parse_region_descriptions`` (``region_id`` or ``id``), ``visual_genome/local.py`` ``map_object``
(``w``/``h`` or ``width``/``height``)):

- ``image_data.json``: ``[{"id"|"image_id", "url", "width", "height", "coco_id", "flickr_id"}, …]``; the
  image file is the URL's last two parts (``VG_100K_2/1.jpg``), resolved under ``--images``.
- ``region_descriptions.json``: ``[{"regions": [{"region_id", "image_id", "phrase", "x", "y", "width",
  "height"}, …], "id"}, …]``.
- ``objects.json``: ``[{"image_id"|"id", "objects": [{"object_id", "x", "y", "w", "h", "names": […],
  "synsets": […]}, …]}, …]``.
- ``relationships.json``: ``[{"image_id"|"id", "relationships": [{"relationship_id", "predicate",
  "synsets", "subject": {object}, "object": {object}}, …]}, …]`` (objects as above, ``name`` or ``names``).

Records (docs/spec.md#records):

- each region description → one ``referring`` record ``vg:<image_id>:region<region_id>`` (text = the phrase,
  one region; ``rec`` / ``reg`` export tasks read it), source ``{image_id, region_id, coco_id, flickr_id}``;
- each image's objects → one ``instances`` record ``vg:<image_id>:objects`` (label = the first name,
  ``ann_id`` = ``object_id``), marked ``exhaustive: false``: VG annotators did not box every instance, so
  ``detect`` / ``multi`` / ``point`` never present these regions as "every object";
- with ``relationships``, that record carries ``relations``: ``[{"relationship_id", "predicate",
  "synsets", "subject": {"object_id", "label", "bbox"}, "object": {…}}]`` with xyxy pixel boxes, for the
  relation task to read (relations of images with no objects entry are ``Excluded("no_objects_record")``).

Boxes are integer ``x, y, w, h`` → ``[x, y, x + w, y + h]`` checked by :func:`records.check_box_xyxy` (1 px
tolerance; VG has boxes further outside or of zero size: rejected like any bad box).

Streaming: the three GB-sized files are read element by element (:mod:`gtok_cli.ingest.json_stream`), so
memory stays at one block plus one image's entry; region/object/relationship ids are checked for duplicates
in a bitmap (:mod:`gtok_cli.ingest.seen_ids`). Objects and relationships are joined per image in one pass
(the published files list images in the same order; a different order still works, holding the
relationship entries read ahead).

Counts (each ``read = kept + excluded + rejected``): ``images`` (image_data entries; kept = valid),
``entries`` (per-image entries of the other files; rejected when unreadable as a whole), ``regions``,
``objects``, ``relationships``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gtok_cli.errors import InputError, UsageError
from gtok_cli.ingest.coco_validate import MISSING, field_error
from gtok_cli.ingest.common import Excluded, IngestItem, Rejected, Tally
from gtok_cli.ingest.json_stream import iter_json_array
from gtok_cli.ingest.progress import read_progress
from gtok_cli.ingest.seen_ids import SeenIds
from gtok_cli.records import check_box_xyxy

DATASET = "vg"


@dataclass(frozen=True)
class VgImage:
    id: int
    file: str
    width: int
    height: int
    coco_id: int | None
    flickr_id: int | None


def iter_vg(
    image_data: str | Path,
    regions: str | Path | None = None,
    objects: str | Path | None = None,
    relationships: str | Path | None = None,
    images_dir: str | Path | None = None,
) -> Iterator[IngestItem]:
    """Records (and Rejected / Excluded / Tally items) of Visual Genome; see the module doc."""
    if regions is None and objects is None:
        raise UsageError("give --regions and/or --objects (image_data alone makes no records)")
    if relationships is not None and objects is None:
        raise UsageError("--relationships needs --objects (relations ride on each image's objects record)")
    reader = _Reader(str(image_data), images_dir)
    yield from reader.load_images()
    if regions is not None:
        yield from reader.region_records(str(regions))
    if objects is not None:
        yield from reader.object_records(str(objects), None if relationships is None else str(relationships))


def _entries(path: str, desc: str) -> Iterator[tuple[int, Any]]:
    # the bar counts bytes read as decompressed: a .gz file's size is no total for it
    size = Path(path).stat().st_size if Path(path).is_file() and not path.endswith(".gz") else None
    with read_progress(size, desc) as update:
        yield from iter_json_array(path, on_bytes=update)


def _is_number(value: Any) -> bool:
    return type(value) in (int, float)


def _image_key(entry: dict[str, Any], file: str, record: str) -> int:
    """The entry's image id: ``id`` or ``image_id`` (both accepted; if both, they must agree)."""
    iid = entry.get("id", MISSING)
    alt = entry.get("image_id", MISSING)
    if iid is MISSING:
        iid = alt
    elif alt is not MISSING and alt != iid:
        raise InputError(
            "id and image_id disagree", file=file, record=record, field="image_id",
            expected=f"{iid} (the id)", found=alt, reason="image.mismatch",
        )  # fmt: skip
    if type(iid) is not int:
        raise field_error(file, record, "id", "an integer (id or image_id)", iid)
    return iid


def xywh_box(obj: dict[str, Any], image: VgImage, file: str, record: str, prefix: str = "") -> list[float]:
    """``x, y, w|width, h|height`` of ``obj`` as a checked xyxy box in ``image``."""
    values = []
    for keys in (("x",), ("y",), ("w", "width"), ("h", "height")):
        value = MISSING
        for key in keys:
            value = obj.get(key, MISSING)
            if value is not MISSING:
                break
        if not _is_number(value):
            raise field_error(file, record, prefix + "/".join(keys), "a number (pixels)", value)
        values.append(value)
    x, y, w, h = values
    return check_box_xyxy(
        [x, y, x + w, y + h], image.width, image.height, file=file, record=record, field=prefix + "x,y,w,h"
    )


def _label(obj: dict[str, Any], file: str, record: str, prefix: str = "") -> str:
    names = obj.get("names", MISSING)
    if names is MISSING:
        name = obj.get("name", MISSING)
        if type(name) is str and name.strip():
            return name
        raise field_error(file, record, prefix + "names", "a list of names (or a name)", name)
    if type(names) is not list or not names or type(names[0]) is not str or not names[0].strip():
        raise field_error(file, record, prefix + "names", "a non-empty list of names", names)
    return names[0]


def _int_id(obj: dict[str, Any], keys: tuple[str, ...], file: str, record: str) -> int:
    for key in keys:
        value = obj.get(key, MISSING)
        if value is not MISSING:
            if type(value) is not int:
                raise field_error(file, record, key, "an integer", value)
            return value
    raise field_error(file, record, keys[0], "an integer", MISSING)


def _duplicate(file: str, record: str, key: str, value: int) -> InputError:
    return InputError(
        f"duplicate {key}", file=file, record=record, field=key, expected="unique ids", found=value,
        reason="id.duplicate",
    )  # fmt: skip


@dataclass
class _Reader:
    image_file: str
    images_dir: str | Path | None
    images: dict[int, VgImage] = field(default_factory=dict)
    bad_images: set[int] = field(default_factory=set)
    """Ids of image entries rejected (their regions / objects are excluded with them)."""

    # ------------------------------------------------------------------------------------------ images

    def load_images(self) -> Iterator[IngestItem]:
        file = self.image_file
        for index, entry in _entries(file, "vg images"):
            yield Tally("image", read=1)
            iid = entry.get("id", entry.get("image_id")) if type(entry) is dict else None
            try:
                image = self._checked_image(entry, index, file)
            except InputError as err:
                if type(iid) is int and iid not in self.images:
                    self.bad_images.add(iid)
                yield Rejected(err, "image", {"image_id": iid} if type(iid) is int else {})
                continue
            self.images[image.id] = image
            yield Tally("image", kept=1)

    def _checked_image(self, entry: Any, index: int, file: str) -> VgImage:
        record = f"[{index}]"
        if type(entry) is not dict:
            raise field_error(file, record, "(image)", "an object", type(entry).__name__)
        iid = _image_key(entry, file, record)
        record = f"image {iid}"
        if iid in self.images or iid in self.bad_images:
            raise _duplicate(file, record, "id", iid)
        for key in ("width", "height"):
            value = entry.get(key, MISSING)
            if type(value) is not int or value < 1:
                raise field_error(file, record, key, "a positive integer", value)
        url = entry.get("url", MISSING)
        parts = url.rstrip("/").split("/") if type(url) is str else []
        if len(parts) < 2 or not parts[-1]:
            raise field_error(file, record, "url", "an image URL (…/VG_100K/<id>.jpg)", url)
        image = VgImage(
            iid, f"{parts[-2]}/{parts[-1]}", entry["width"], entry["height"],
            entry.get("coco_id") if type(entry.get("coco_id")) is int else None,
            entry.get("flickr_id") if type(entry.get("flickr_id")) is int else None,
        )  # fmt: skip
        if self.images_dir is not None:
            from gtok_cli.images import check_image_size  # PIL only when images are checked

            check_image_size(self.images_dir, image.file, image.width, image.height, file=file, record=record)
        return image

    def _entry(self, entry: Any, index: int, file: str, key: str) -> tuple[int, list[Any]] | InputError:
        """``(image id, entry[key])`` of a per-image entry, or the error that rejects it whole."""
        record = f"[{index}]"
        if type(entry) is not dict:
            return field_error(file, record, "(entry)", "an object", type(entry).__name__)
        try:
            iid = _image_key(entry, file, record)
        except InputError as err:
            return err
        items = entry.get(key, MISSING)
        if type(items) is not list:
            return field_error(file, f"image {iid}", key, "a list", items)
        return iid, items

    def _image_for(
        self, iid: int, count: int, unit: str, file: str
    ) -> tuple[VgImage | None, list[IngestItem]]:
        """The entry's image, or the items that account for its ``count`` units when there is none."""
        image = self.images.get(iid)
        if image is not None:
            return image, []
        if iid in self.bad_images:
            return None, [Excluded("image.rejected", unit, count)] if count else []
        err = InputError(
            "entry for an image not in image_data", file=file, record=f"image {iid}", field="id",
            expected=f"an id from {self.image_file}", found=iid, reason="image.unknown",
        )  # fmt: skip
        return None, [Rejected(err, unit, {"image_id": iid}) for _ in range(count)]

    # ------------------------------------------------------------------------------------------ regions

    def region_records(self, file: str) -> Iterator[IngestItem]:
        seen = SeenIds()
        for index, entry in _entries(file, "vg regions"):
            yield Tally("entries", read=1)
            got = self._entry(entry, index, file, "regions")
            if isinstance(got, InputError):
                yield Rejected(got, "entries")
                continue
            yield Tally("entries", kept=1)
            iid, regions = got
            yield Tally("region", read=len(regions))
            image, accounted = self._image_for(iid, len(regions), "region", file)
            if image is None:
                yield from accounted
                continue
            kept = 0
            for k, region in enumerate(regions):
                fast = _fast_region_record(region, image, seen)
                if fast is not None:
                    kept += 1
                    yield fast
                    continue
                try:
                    record = self._region_record(region, k, image, file, seen)
                except InputError as err:
                    rid = region.get("region_id", region.get("id")) if type(region) is dict else None
                    yield Rejected(
                        err, "region", {"image_id": iid, **({"region_id": rid} if type(rid) is int else {})}
                    )
                    continue
                kept += 1
                yield record
            yield Tally("region", kept=kept)

    def _region_record(self, region: Any, k: int, image: VgImage, file: str, seen: SeenIds) -> dict[str, Any]:
        record = f"image {image.id} regions[{k}]"
        if type(region) is not dict:
            raise field_error(file, record, "(region)", "an object", type(region).__name__)
        rid = _int_id(region, ("region_id", "id"), file, record)
        record = f"region {rid} (image {image.id})"
        owner = region.get("image_id", image.id)
        if owner != image.id:
            raise InputError(
                "region names another image than its entry", file=file, record=record, field="image_id",
                expected=f"{image.id} (the entry's id)", found=owner, reason="image.mismatch",
            )  # fmt: skip
        phrase = region.get("phrase", MISSING)
        if type(phrase) is not str or not phrase.strip():
            raise field_error(file, record, "phrase", "a non-empty string", phrase)
        box = xywh_box(region, image, file, record)
        if seen.add(rid):
            raise _duplicate(file, record, "region_id", rid)
        return _region_dict(image, rid, phrase, box)

    # ------------------------------------------------------------------------------------------ objects

    def object_records(self, file: str, relationships_file: str | None) -> Iterator[IngestItem]:
        seen_objects = SeenIds()
        relations = _Relations(self, relationships_file) if relationships_file is not None else None
        for index, entry in _entries(file, "vg objects"):
            yield Tally("entries", read=1)
            got = self._entry(entry, index, file, "objects")
            if isinstance(got, InputError):
                yield Rejected(got, "entries")
                continue
            yield Tally("entries", kept=1)
            iid, objects = got
            yield Tally("object", read=len(objects))
            rels: list[dict[str, Any]] = []
            if relations is not None:
                yield from relations.take(iid, rels)
            image, accounted = self._image_for(iid, len(objects), "object", file)
            if image is None:
                yield from accounted  # (its relations were accounted for the same way as they were read)
                continue
            regions: list[dict[str, Any]] = []
            rejected = 0
            for k, obj in enumerate(objects):
                try:
                    regions.append(self._object_region(obj, k, image, file, seen_objects))
                except InputError as err:
                    rejected += 1
                    oid = obj.get("object_id") if type(obj) is dict else None
                    yield Rejected(
                        err, "object", {"image_id": iid, **({"object_id": oid} if type(oid) is int else {})}
                    )
            if not regions:
                if rels:
                    yield Excluded("no_objects_record", "relationship", len(rels))
                continue
            yield Tally("object", kept=len(regions))
            record: dict[str, Any] = {
                "id": f"{DATASET}:{iid}:objects",
                "dataset": DATASET,
                "split": None,
                "task": "instances",
                "text": None,
                "image": {"file": image.file, "width": image.width, "height": image.height, "id": iid},
                "regions": regions,
                "source": {
                    "image_id": iid,
                    "object_ids": [r["ann_id"] for r in regions],
                    "coco_id": image.coco_id,
                    "flickr_id": image.flickr_id,
                },
                "exhaustive": False,
            }
            if relations is not None:
                record["relations"] = rels
                record["source"]["relationship_ids"] = [r["relationship_id"] for r in rels]
                yield Tally("relationship", kept=len(rels))
            if rejected:
                record["incomplete"] = {"rejected_annotations": rejected}
            yield record
        if relations is not None:
            yield from relations.leftover()

    def _object_region(self, obj: Any, k: int, image: VgImage, file: str, seen: SeenIds) -> dict[str, Any]:
        record = f"image {image.id} objects[{k}]"
        if type(obj) is not dict:
            raise field_error(file, record, "(object)", "an object", type(obj).__name__)
        oid = _int_id(obj, ("object_id", "id"), file, record)
        record = f"object {oid} (image {image.id})"
        label = _label(obj, file, record)
        box = xywh_box(obj, image, file, record)
        if seen.add(oid):
            raise _duplicate(file, record, "object_id", oid)
        return {"bbox": box, "mask": None, "label": label, "category_id": None, "iscrowd": False,
                "ann_id": oid, "phrase": None, "span": None}  # fmt: skip


def _region_dict(image: VgImage, rid: int, phrase: str, box: list[float]) -> dict[str, Any]:
    """A region description's referring record (see the module doc)."""
    return {
        "id": f"{DATASET}:{image.id}:region{rid}",
        "dataset": DATASET,
        "split": None,
        "task": "referring",
        "text": phrase,
        "image": {"file": image.file, "width": image.width, "height": image.height, "id": image.id},
        "regions": [
            {
                "bbox": box,
                "mask": None,
                "label": None,
                "category_id": None,
                "iscrowd": False,
                "ann_id": rid,
                "phrase": None,
                "span": None,
            }
        ],
        "source": {
            "image_id": image.id,
            "region_id": rid,
            "coco_id": image.coco_id,
            "flickr_id": image.flickr_id,
        },
    }


def _fast_region_record(region: Any, image: VgImage, seen: SeenIds) -> dict[str, Any] | None:
    """The record of a plainly valid region (int ids, a box inside the image, a phrase), else None (then
    :meth:`_Reader._region_record` decides, with a precise error). Runs 5.4M times on VG; a test checks both
    paths give the same records."""
    try:
        rid = region["region_id"]
        phrase = region["phrase"]
        x = region["x"]
        y = region["y"]
        w = region["width"]
        h = region["height"]
    except (KeyError, TypeError, IndexError):
        return None
    if not (
        type(rid) is int
        and type(phrase) is str
        and type(x) is int
        and type(y) is int
        and type(w) is int
        and type(h) is int
        and x >= 0
        and y >= 0
        and w > 0
        and h > 0
        and x + w <= image.width
        and y + h <= image.height
        and region.get("image_id", image.id) == image.id
        and phrase.strip()
    ):
        return None
    if seen.add(rid):  # a duplicate: the checked path reports it
        return None
    return _region_dict(image, rid, phrase, [float(x), float(y), float(x + w), float(y + h)])


@dataclass
class _Relations:
    """relationships.json read alongside objects.json: each image's checked relations on request."""

    reader: _Reader
    file: str
    entries: Iterator[tuple[int, Any]] = field(init=False)
    pending: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    """Image id → checked relations read ahead of the objects entry that takes them."""
    seen: SeenIds = field(default_factory=SeenIds)
    done: bool = False

    def __post_init__(self) -> None:
        self.entries = _entries(self.file, "vg relationships")

    def take(self, iid: int, out: list[dict[str, Any]]) -> Iterator[IngestItem]:
        """Fill ``out`` with image ``iid``'s relations, reading ahead as far as its entry; yields counts
        and rejections of what was read."""
        while iid not in self.pending and not self.done:
            try:
                index, entry = next(self.entries)
            except StopIteration:
                self.done = True
                break
            yield from self._read(index, entry)
        out.extend(self.pending.pop(iid, ()))

    def _read(self, index: int, entry: Any) -> Iterator[IngestItem]:
        file = self.file
        yield Tally("entries", read=1)
        got = self.reader._entry(entry, index, file, "relationships")
        if isinstance(got, InputError):
            yield Rejected(got, "entries")
            return
        yield Tally("entries", kept=1)
        iid, rels = got
        yield Tally("relationship", read=len(rels))
        image, accounted = self.reader._image_for(iid, len(rels), "relationship", file)
        if image is None:
            yield from accounted
            return
        checked = self.pending.setdefault(iid, [])
        for k, rel in enumerate(rels):
            try:
                checked.append(self._relation(rel, k, image))
            except InputError as err:
                rid = rel.get("relationship_id") if type(rel) is dict else None
                yield Rejected(
                    err,
                    "relationship",
                    {"image_id": iid, **({"relationship_id": rid} if type(rid) is int else {})},
                )

    def _relation(self, rel: Any, k: int, image: VgImage) -> dict[str, Any]:
        file = self.file
        record = f"image {image.id} relationships[{k}]"
        if type(rel) is not dict:
            raise field_error(file, record, "(relationship)", "an object", type(rel).__name__)
        rid = _int_id(rel, ("relationship_id", "id"), file, record)
        record = f"relationship {rid} (image {image.id})"
        predicate = rel.get("predicate", MISSING)
        if type(predicate) is not str:
            raise field_error(file, record, "predicate", "a string", predicate)
        ends = {}
        for role in ("subject", "object"):
            obj = rel.get(role, MISSING)
            if type(obj) is not dict:
                raise field_error(file, record, role, "an object with object_id, x, y, w, h, name(s)", obj)
            ends[role] = {
                "object_id": _int_id(obj, ("object_id", "id"), file, record),
                "label": _label(obj, file, record, f"{role}."),
                "bbox": xywh_box(obj, image, file, record, f"{role}."),
            }
        synsets = rel.get("synsets", [])
        if type(synsets) is not list or not all(type(s) is str for s in synsets):
            raise field_error(file, record, "synsets", "a list of strings", synsets)
        if self.seen.add(rid):
            raise _duplicate(file, record, "relationship_id", rid)
        return {"relationship_id": rid, "predicate": predicate, "synsets": synsets, **ends}

    def leftover(self) -> Iterator[IngestItem]:
        """Relationships of images that had no objects entry (read to the end of the file)."""
        while not self.done:
            try:
                index, entry = next(self.entries)
            except StopIteration:
                self.done = True
                break
            yield from self._read(index, entry)
        left = sum(len(v) for v in self.pending.values())
        self.pending.clear()
        if left:
            yield Excluded("no_objects_record", "relationship", left)
