"""Flickr30k Entities (``Sentences/*.txt`` + ``Annotations/*.xml``) → canonical ``grounded_caption`` records.

Semantics follow the official loader, BryanPlummer/flickr30k_entities ``flickr30k_entities_utils.py``:

- ``get_sentence_data``: each non-empty line is a caption; whitespace tokens; a token starting with ``[``
  opens a phrase ``[/EN#<chain>/<type>[/<type>…]`` whose words follow up to the token ending in ``]``; the
  caption text is the words joined by single spaces (brackets and headers removed). ``first_word_index`` is
  the phrase's first word's index in that word list. We add ``span``: ``[start, end)`` character offsets of
  the phrase in the cleaned caption. Chain ``0`` (type ``notvisual``) was never boxed.
- ``get_annotations``: ``<size>`` children as integers; each ``<object>`` has one or more ``<name>`` chain
  ids and either a ``<bndbox>`` (``xmin ymin xmax ymax``) or ``<nobndbox>`` / ``<scene>`` flags; a chain may
  have several boxes.

Where the official loader silently drops or guesses (an unclosed bracket, a box with ``xmax < xmin``), this
module rejects with a reason. The XML is parsed with :mod:`gtok_cli.ingest.safe_xml` (no DTD, no entities).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, Literal

from gtok_cli.errors import InputError, UnsafeInputError, UsageError
from gtok_cli.images import check_image_size
from gtok_cli.ingest.common import Excluded, IngestItem, Rejected, Tally
from gtok_cli.ingest.safe_xml import parse_xml_file
from gtok_cli.records import check_box_xyxy, make_record, make_region

BoxMode = Literal["separate", "merged"]
NOT_VISUAL_CHAIN = "0"

_HEADER = re.compile(r"^\[/EN#(?P<chain>\d+)(?P<types>(?:/[^/\s\[\]]+)+)$")


# -- sentences ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Phrase:
    phrase: str
    first_word_index: int
    chain_id: str
    types: tuple[str, ...]
    span: tuple[int, int]
    """``[start, end)`` character offsets of :attr:`phrase` in the cleaned caption."""


@dataclass(frozen=True)
class Sentence:
    text: str
    phrases: tuple[Phrase, ...]


def parse_sentence(line: str, *, file: str | None = None, record: str | None = None) -> Sentence:
    """One annotated caption line, as ``get_sentence_data`` reads it (plus character spans)."""

    def bad(message: str, found: Any, reason: str = "sentence.brackets") -> InputError:
        return InputError(
            message,
            file=file,
            record=record,
            field="sentence",
            expected="[/EN#<chain>/<type> words] phrases, balanced",
            found=found,
            reason=reason,
        )

    words: list[str] = []
    offset = 0  # length of " ".join(words) plus the separating space, i.e. where the next word starts
    phrases: list[Phrase] = []
    header: re.Match[str] | None = None
    current: list[str] = []
    first_word = start = 0

    def add_word(word: str) -> None:
        nonlocal offset
        words.append(word)
        offset += len(word) + 1

    for token in line.split():
        if header is not None:
            closing = token.endswith("]")
            word = token[:-1] if closing else token
            if not word or "]" in word or "[" in word:
                raise bad("bracket inside a phrase", token)
            current.append(word)
            add_word(word)
            if closing:
                text = " ".join(current)
                phrases.append(
                    Phrase(
                        phrase=text,
                        first_word_index=first_word,
                        chain_id=header.group("chain"),
                        types=tuple(header.group("types")[1:].split("/")),
                        span=(start, start + len(text)),
                    )
                )
                header, current = None, []
        elif token.startswith("["):
            header = _HEADER.match(token)
            if header is None:
                raise bad("malformed phrase header", token, "sentence.header")
            first_word, start = len(words), offset
        elif "[" in token or "]" in token:
            raise bad("bracket outside a phrase", token)
        else:
            add_word(token)
    if header is not None:
        raise bad("phrase is not closed by ']'", header.group(0))
    if not words:
        raise bad("sentence is empty", line, "sentence.empty")
    return Sentence(" ".join(words), tuple(phrases))


def read_sentence_file(path: str | Path) -> list[str]:
    """The caption lines of a Sentences file (non-empty lines, as the official loader keeps them)."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read file: {exc.strerror}", file=str(p), reason="file.unreadable") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            "sentence file is not UTF-8",
            file=str(p),
            field=f"byte {exc.start}",
            expected="UTF-8 text",
            found=data[exc.start : exc.start + 4],
            reason="text.encoding",
        ) from None
    lines = [line for line in text.split("\n") if line]
    if not lines:
        raise InputError("file is empty", file=str(p), reason="file.empty")
    return lines


# -- annotations -------------------------------------------------------------------------------------------
@dataclass
class ImageAnnotation:
    """One ``Annotations/<id>.xml``: boxes per chain id in canonical continuous xyxy pixels."""

    file_name: str
    width: int
    height: int
    boxes: dict[str, list[list[float]]] = field(default_factory=dict)
    scene: set[str] = field(default_factory=set)
    nobox: set[str] = field(default_factory=set)
    objects: int = 0
    """``<object>`` elements read (valid or not)."""
    errors: list[InputError] = field(default_factory=list)
    """One per bad ``<object>`` (left out; the rest of the file is used)."""
    damaged: dict[str, int] = field(default_factory=dict)
    """Chain id → how many of its objects were bad (when the object's chain ids could be read)."""


def voc_to_xyxy(xmin: int, ymin: int, xmax: int, ymax: int) -> list[float]:
    """Flickr30k (PASCAL VOC) 1-based inclusive pixel box → continuous 0-based xyxy.

    Pixel column ``c`` (1-based) covers the continuous interval ``[c - 1, c)``. A box spanning columns
    ``xmin..xmax`` inclusive therefore covers ``[xmin - 1, xmax)``: ``x1 = xmin - 1``, ``x2 = xmax`` (same
    for y). The official loader subtracts 1 from all four numbers, giving 0-based *inclusive* indices
    ``[xmin - 1, xmax - 1]``; the last included pixel ``xmax - 1`` ends at ``xmax``, so the two agree. A
    one-pixel box ``1..1`` becomes ``[0, 1)``; a full-width box ``1..W`` becomes ``[0, W)``.
    """
    return [float(xmin - 1), float(ymin - 1), float(xmax), float(ymax)]


def _int_text(element: ET.Element | None, tag: str, *, file: str, record: str, field: str) -> int:
    child = element.find(tag) if element is not None else None
    text = child.text.strip() if child is not None and child.text else None
    if text is None or not re.fullmatch(r"[+-]?\d+", text):
        raise InputError(
            f"<{tag}> is missing or not an integer",
            file=file,
            record=record,
            field=field,
            expected="an integer",
            found="missing" if child is None else text,
            reason="xml.field",
        )
    return int(text)


def parse_annotation(root: ET.Element, *, file: str, image_id: str) -> ImageAnnotation:
    """Read a parsed annotation tree (see the module doc); every error names the file and the field."""
    if root.tag != "annotation":
        raise InputError(
            "root element is not <annotation>",
            file=file,
            record=image_id,
            field="annotation",
            expected="<annotation>",
            found=f"<{root.tag}>",
            reason="xml.root",
        )
    file_name = _image_file_name(root, file=file, image_id=image_id)
    size = root.find("size")
    if size is None:
        raise InputError(
            "annotation has no <size>",
            file=file,
            record=image_id,
            field="size",
            expected="<size><width>…<height>…</size>",
            found="missing",
            reason="xml.size",
        )
    width = _int_text(size, "width", file=file, record=image_id, field="size/width")
    height = _int_text(size, "height", file=file, record=image_id, field="size/height")
    if width < 1 or height < 1:
        raise InputError(
            "image size is not positive",
            file=file,
            record=image_id,
            field="size",
            expected="width, height >= 1",
            found=f"{width}x{height}",
            reason="xml.size",
        )
    ann = ImageAnnotation(file_name, width, height)
    for k, obj in enumerate(root.findall("object")):
        ann.objects += 1
        try:
            _add_object(obj, ann, file=file, record=f"{image_id} object {k}")
        except InputError as err:  # that object only: the other objects of the file are good
            ann.errors.append(err)
            for name in ((n.text or "").strip() for n in obj.findall("name")):
                if name.isdigit():
                    ann.damaged[name] = ann.damaged.get(name, 0) + 1
    return ann


def _add_object(obj: ET.Element, ann: ImageAnnotation, *, file: str, record: str) -> None:
    names = [(n.text or "").strip() for n in obj.findall("name")]
    if not names or not all(n.isdigit() for n in names):
        raise InputError(
            "object has no chain id",
            file=file,
            record=record,
            field="object/name",
            expected="one or more <name>chain id</name>",
            found=names,
            reason="xml.name",
        )
    bndbox = obj.find("bndbox")
    if bndbox is not None:
        box = _object_box(bndbox, ann, file=file, record=record)
        for name in names:
            ann.boxes.setdefault(name, []).append(box)
        return
    has_flags = obj.find("nobndbox") is not None or obj.find("scene") is not None
    if not has_flags:
        raise InputError(
            "object has neither <bndbox> nor <nobndbox>/<scene>",
            file=file,
            record=record,
            field="object",
            expected="<bndbox> or <nobndbox>/<scene> flags",
            found=names,
            reason="xml.object",
        )
    nobox = _flag(obj, "nobndbox", file=file, record=record)
    scene = _flag(obj, "scene", file=file, record=record)
    for name in names:
        if nobox:
            ann.nobox.add(name)
        if scene:
            ann.scene.add(name)


def _flag(obj: ET.Element, tag: str, *, file: str, record: str) -> bool:
    if obj.find(tag) is None:
        return False
    return _int_text(obj, tag, file=file, record=record, field=f"object/{tag}") > 0


def _object_box(bndbox: ET.Element, ann: ImageAnnotation, *, file: str, record: str) -> list[float]:
    xmin, ymin, xmax, ymax = (
        _int_text(bndbox, tag, file=file, record=record, field=f"bndbox/{tag}")
        for tag in ("xmin", "ymin", "xmax", "ymax")
    )
    if xmax < xmin or ymax < ymin:
        raise InputError(
            "bndbox has its max before its min",
            file=file,
            record=record,
            field="bndbox",
            expected="xmin <= xmax and ymin <= ymax (1-based inclusive)",
            found=f"xmin={xmin} ymin={ymin} xmax={xmax} ymax={ymax}",
            reason="bbox.nonpositive",
        )
    return check_box_xyxy(
        voc_to_xyxy(xmin, ymin, xmax, ymax), ann.width, ann.height, file=file, record=record, field="bndbox"
    )


def _image_file_name(root: ET.Element, *, file: str, image_id: str) -> str:
    """``<filename>`` (a bare name whose stem is the image id), or ``<id>.jpg`` when the tag is absent."""
    tag = root.find("filename")
    if tag is None or not (tag.text or "").strip():
        return f"{image_id}.jpg"
    name = (tag.text or "").strip()
    if (
        PurePosixPath(name.replace("\\", "/")).name != name
        or name in (".", "..")
        or PureWindowsPath(name).drive
    ):
        raise UnsafeInputError(
            "image file name is not a bare file name",
            file=file,
            record=image_id,
            field="filename",
            expected="<image id>.jpg",
            found=name,
            reason="path.escape",
        )
    if PurePosixPath(name).stem != image_id:
        raise InputError(
            "image file name does not match the annotation file",
            file=file,
            record=image_id,
            field="filename",
            expected=f"{image_id}.<ext>",
            found=name,
            reason="xml.filename_mismatch",
        )
    return name


def load_annotation(path: str | Path, image_id: str) -> ImageAnnotation:
    return parse_annotation(parse_xml_file(path), file=str(path), image_id=image_id)


# -- records -----------------------------------------------------------------------------------------------
def read_split_file(path: str | Path) -> list[str]:
    """Image ids, one per line (the official train/val/test.txt)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read split file: {exc}", file=str(p), reason="file.unreadable") from None
    ids = [line.strip() for line in text.splitlines() if line.strip()]
    if not ids:
        raise InputError("split file is empty", file=str(p), reason="file.empty")
    return ids


def union_box(boxes: list[list[float]]) -> list[float]:
    return [
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    ]


def iter_flickr30k(
    annotations_dir: str | Path,
    sentences_dir: str | Path,
    split_file: str | Path | None = None,
    boxes: BoxMode = "separate",
    images_dir: str | Path | None = None,
) -> Iterator[IngestItem]:
    """One ``grounded_caption`` record per caption with at least one boxed phrase; see the module doc.

    Units counted (each ``read = kept + excluded + rejected``): ``image`` (a Sentences file; rejected when it
    or its XML cannot be read: one reject line, its captions ``Excluded("image.rejected")``), ``object`` (an
    XML ``<object>``; a bad one is rejected alone), ``caption`` (a record, a rejected line, or
    ``no_grounded_phrase``), ``phrase`` (kept in a record, or excluded: ``not_visual`` chain 0, ``no_box``
    nobndbox/scene flags only, ``unannotated`` chain not in the XML, ``box.rejected`` every object of its
    chain was bad). A record missing a box of one of its phrases (a bad object) carries
    ``incomplete: {"rejected_annotations": N}``.
    """
    if boxes not in ("separate", "merged"):
        raise UsageError(f"unknown --boxes {boxes!r}; expected separate or merged")
    sent_root, ann_root = Path(sentences_dir), Path(annotations_dir)
    for folder, what in ((sent_root, "sentences"), (ann_root, "annotations")):
        if not folder.is_dir():
            raise InputError(f"{what} folder not found", file=str(folder), reason="file.missing")
    split = Path(split_file).stem if split_file is not None else None
    wanted = set(read_split_file(split_file)) if split_file is not None else None
    files = sorted(sent_root.glob("*.txt"), key=lambda p: p.name)
    if not files:
        _check_not_swapped(sent_root, ann_root)
    if wanted is not None:
        files = [p for p in files if p.stem in wanted]
    yield Tally("image", read=len(files))
    for path in files:
        yield from _image_items(path, ann_root / f"{path.stem}.xml", split, boxes, images_dir)


def _check_not_swapped(sent_root: Path, ann_root: Path) -> None:
    """No ``*.txt`` in the Sentences folder: a usage error when the two folders look swapped."""
    if next(sent_root.glob("*.xml"), None) is not None and next(ann_root.glob("*.txt"), None) is not None:
        raise UsageError(
            f"--sentences {sent_root} holds .xml files and --annotations {ann_root} holds .txt files: "
            "the two folders look swapped (--annotations takes Annotations/, --sentences takes Sentences/)"
        )


def _image_items(
    sent_path: Path, xml_path: Path, split: str | None, mode: BoxMode, images_dir: str | Path | None
) -> Iterator[IngestItem]:
    image_id = sent_path.stem
    ids = {"image_id": image_id}
    try:
        lines = read_sentence_file(sent_path)
    except InputError as err:
        yield Rejected(err, "image", ids)
        return
    yield Tally("caption", read=len(lines))
    try:
        if not xml_path.is_file():
            raise InputError(
                "annotation file not found",
                file=str(xml_path),
                record=image_id,
                expected=f"Annotations/{image_id}.xml beside Sentences/{image_id}.txt",
                found="missing",
                reason="file.missing",
            )
        ann = load_annotation(xml_path, image_id)
        if images_dir is not None:
            check_image_size(
                images_dir, ann.file_name, ann.width, ann.height, file=str(xml_path), record=image_id
            )
    except InputError as err:
        yield Rejected(err, "image", ids)
        yield Excluded("image.rejected", "caption", len(lines))
        return
    yield Tally("image", kept=1)
    yield Tally("object", read=ann.objects, kept=ann.objects - len(ann.errors))
    for bad in ann.errors:
        yield Rejected(bad, "object", ids)
    prefix = f"flickr30k:{split}:{image_id}" if split else f"flickr30k:{image_id}"
    for index, line in enumerate(lines):
        record_id = f"{prefix}:s{index}"
        try:
            sentence = parse_sentence(line, file=str(sent_path), record=record_id)
        except InputError as err:
            yield Rejected(err, "caption", {**ids, "sentence_index": index})
            continue
        yield from _sentence_items(sentence, ann, record_id, image_id, index, split, mode)


def _sentence_items(
    sentence: Sentence,
    ann: ImageAnnotation,
    record_id: str,
    image_id: str,
    index: int,
    split: str | None,
    mode: BoxMode,
) -> Iterator[IngestItem]:
    regions: list[dict[str, Any]] = []
    chains: list[str] = []
    yield Tally("phrase", read=len(sentence.phrases))
    for k, phrase in enumerate(sentence.phrases):
        chain = phrase.chain_id
        if chain == NOT_VISUAL_CHAIN:
            yield Excluded("not_visual", "phrase")
            continue
        chain_boxes = ann.boxes.get(chain)
        if not chain_boxes:
            if chain in ann.damaged:
                reason = "box.rejected"
            else:
                reason = "no_box" if chain in ann.nobox or chain in ann.scene else "unannotated"
            yield Excluded(reason, "phrase")
            continue
        chains.append(chain)
        for box in chain_boxes if mode == "separate" else [union_box(chain_boxes)]:
            region = make_region(list(box), label=phrase.phrase, phrase=phrase.phrase, span=list(phrase.span))
            region["chain_id"] = chain
            region["phrase_types"] = list(phrase.types)
            region["phrase_index"] = k
            region["first_word_index"] = phrase.first_word_index
            regions.append(region)
    if not regions:
        yield Excluded("no_grounded_phrase", "caption")
        return
    yield Tally("phrase", kept=len(chains))
    yield Tally("caption", kept=1)
    record = make_record(
        record_id=record_id,
        dataset="flickr30k",
        split=split,
        task="grounded_caption",
        text=sentence.text,
        image_file=ann.file_name,
        width=ann.width,
        height=ann.height,
        image_id=image_id,
        regions=regions,
        source={"image_id": image_id, "sentence_index": index, "chain_ids": chains, "boxes": mode},
    )
    missing = sum(ann.damaged.get(chain, 0) for chain in set(chains))  # bad objects of the kept chains
    if missing:
        record["incomplete"] = {"rejected_annotations": missing}
    yield record
