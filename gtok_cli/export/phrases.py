"""``--task relation --phrases REFS``: name an object by a referring expression of it instead of its category.

A relation line names both regions ("Is the man in the red shirt <box> left of the dog <box>?"). An
``instances`` record (COCO) names its regions by category only; RefCOCO / RefCOCO+ / RefCOCOg write, for some
of the same COCO objects, expressions that pick each one out. ``--phrases`` takes a records file of
``referring`` records (``gtok ingest refcoco``, ``refcoco-hf``, ``mdetr``: each has one region with the
COCO ``ann_id``) and indexes their texts by ``(image id, ann_id)``: COCO's annotation ids are shared by its
2014 and 2017 releases and by the RefCOCO family (their ``instances.json`` is COCO train2014's), so the two
files meet on them. A region of a relation record with no ``phrase`` of its own and an expression in the index
is named by one of its expressions, chosen by crc32 of ``(seed, record id, ann_id)`` (fixed by ``--seed``);
any other region by its ``phrase``, else its label (docs/spec.md#relations).

Example:

    >>> table = ReferringPhrases({(9, 4): ("man on left", "guy in red")})
    >>> table.name_for({"ann_id": 4, "label": "person"}, image_id=9, seed=0, record_id="r")
    'guy in red'
    >>> table.name_for({"ann_id": 5, "label": "person"}, image_id=9, seed=0, record_id="r") is None
    True
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any, TypeGuard

import orjson

from gtok_cli.errors import InputError, UsageError
from gtok_cli.jsonio import STDIO, open_binary_input

ObjectKey = tuple[Any, int]
"""``(image id, ann_id)``: one COCO object."""


@dataclass(frozen=True)
class ReferringPhrases:
    """Referring expressions by object; ``read`` / ``used`` say how many records the file held and how many
    of them gave an expression (the rest: not ``referring``, no ``ann_id``, no text), for the manifest."""

    by_object: dict[ObjectKey, tuple[str, ...]] = field(default_factory=dict)
    read: int = 0
    used: int = 0

    def name_for(self, region: dict[str, Any], *, image_id: Any, seed: int, record_id: str) -> str | None:
        """One expression of ``region``'s object (chosen by seed, record and object), None without one."""
        ann_id = region.get("ann_id")
        texts = self.by_object.get((image_id, ann_id)) if _is_int(ann_id) else None
        if not texts:
            return None
        pick = zlib.crc32(f"{seed}\x1f{record_id}\x1f{ann_id}".encode()) % len(texts)
        return texts[pick]

    def summary(self) -> dict[str, int]:
        return {"records": self.read, "expressions": self.used, "objects": len(self.by_object)}


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def refuse_stdin(path: str) -> None:
    """``--phrases -``: the file is read (and hashed) apart from the records, so it cannot be stdin."""
    if path == STDIO:
        raise UsageError("--phrases reads a records file: give a file, not stdin")


def load_phrases(path: str) -> ReferringPhrases:
    """Index the ``referring`` records of ``path`` by ``(image id, ann_id)`` (texts in file order, each once).

    A line that is not JSON is bad input (exit 2, naming the file and line); records of another task, or
    whose one region has no integer ``ann_id``, are read and not used (in :attr:`ReferringPhrases.read`).
    """
    refuse_stdin(path)
    by_object: dict[ObjectKey, list[str]] = {}
    read = used = 0
    with open_binary_input(path) as fh:
        for lineno, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            read += 1
            try:
                record = orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise InputError(
                    f"line {lineno} is not a JSON record", file=path, reason="json.invalid"
                ) from None
            key, text = _expression(record)
            if key is None or text is None:
                continue
            texts = by_object.setdefault(key, [])
            if text not in texts:
                texts.append(text)
            used += 1
    return ReferringPhrases({k: tuple(v) for k, v in by_object.items()}, read, used)


def _expression(record: Any) -> tuple[ObjectKey | None, str | None]:
    """``((image id, ann_id), text)`` of a referring record; Nones for any other line."""
    if not isinstance(record, dict) or record.get("task") != "referring":
        return None, None
    regions, image, text = record.get("regions"), record.get("image"), record.get("text")
    if not (isinstance(regions, list) and len(regions) == 1 and isinstance(regions[0], dict)):
        return None, None
    ann_id = regions[0].get("ann_id")
    image_id = image.get("id") if isinstance(image, dict) else None
    if not _is_int(ann_id) or image_id is None or not isinstance(text, str) or not text.strip():
        return None, None
    return (image_id, ann_id), " ".join(text.split())
