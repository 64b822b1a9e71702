"""LVIS v1 and Objects365 v2: COCO-layout files with their own quirks, read by ``gtok ingest coco --flavor``.

- **LVIS v1** (``lvis_v1_train.json`` / ``lvis_v1_val.json``; ``lvis-dataset/lvis-api`` ``lvis/lvis.py``, the
  LVIS paper's federated design): images have no ``file_name``: the file is the last two parts of
  ``coco_url`` (``train2017/000000155379.jpg``, resolved under ``--images`` = the COCO image root, as
  ``facebookresearch/detectron2`` ``detectron2/data/datasets/lvis.py`` ``get_file_name`` does); annotations
  have no ``iscrowd`` (read as 0); each image's ``neg_category_ids`` (verified absent) and
  ``not_exhaustive_category_ids`` (present, not every instance boxed) are kept on its records, so ``detect``
  and ``multi`` never present a non-exhaustive category's regions as "every instance" (docs/spec.md#records).
- **Objects365 v2** (``zhiyuan_objv2_train.json`` / ``zhiyuan_objv2_val.json``): ``file_name`` carries the
  release's folders (``images/v2/patch16/objects365_v2_00908726.jpg``) while the downloaded images sit in
  ``train/patch16/…``: the file is the last two parts (``patch16/objects365_v2_00908726.jpg``), resolved under
  ``--images train`` (``open-mmlab/mmdetection`` ``mmdet/datasets/objects365.py`` ``Objects365V2Dataset``,
  which also lists images named in the file but absent from the release: ``--images`` rejects those).
  Annotations are boxes only: no ``segmentation`` (mask null); a missing ``iscrowd`` is read as 0.
"""

from __future__ import annotations

import re
from typing import Any

from gtok_cli.errors import InputError

FLAVORS = ("coco", "lvis", "objects365")
EXHAUSTIVE_KEYS = ("neg_category_ids", "not_exhaustive_category_ids")

_FILL_MISSING: dict[str, tuple[tuple[str, Any], ...]] = {
    "coco": (),
    "lvis": (("iscrowd", 0),),
    "objects365": (("iscrowd", 0), ("segmentation", [])),
}
_SPLIT_PATTERNS = {
    "coco": r"(?:instances|captions)_([A-Za-z]+\d*)",
    "lvis": r"lvis_v\d+(?:\.\d+)?_([A-Za-z]+)",
    "objects365": r"(?:zhiyuan_)?objv?\d*_?([A-Za-z]+)",
}


def fill_missing(flavor: str) -> tuple[tuple[str, Any], ...]:
    """Annotation keys the flavor's files leave out, with the value they mean."""
    return _FILL_MISSING[flavor]


def split_pattern(flavor: str) -> str:
    """The regex whose first group is the split, in the flavor's file names."""
    return _SPLIT_PATTERNS[flavor]


def last_parts(path: str, n: int = 2) -> str:
    """``http://host/train2017/1.jpg`` → ``train2017/1.jpg``."""
    return "/".join(path.rstrip("/").split("/")[-n:])


def flavored_image(
    img: dict[str, Any], flavor: str, file: str, record: str
) -> tuple[Any, dict[str, Any] | None]:
    """The image's file name and its extra record fields, as the flavor defines them (see the module doc)."""
    if flavor == "objects365":
        name = img.get("file_name")
        return (last_parts(name) if type(name) is str and name else name), None
    # lvis
    name = img.get("file_name")
    if name is None:
        url = img.get("coco_url")
        if type(url) is not str or url.count("/") < 2:
            raise InputError(
                "LVIS image without a file name", file=file, record=record, field="coco_url",
                expected="a URL ending in <split>/<file> (LVIS images have no file_name)", found=url,
                reason="field.missing" if url is None else "field.type",
            )  # fmt: skip
        name = last_parts(url)
    extra: dict[str, Any] = {}
    for key in EXHAUSTIVE_KEYS:
        ids = img.get(key)
        if type(ids) is not list or not all(type(v) is int for v in ids):
            raise InputError(
                f"{key} is missing" if ids is None else f"{key} has the wrong type",
                file=file, record=record, field=key, expected="a list of category ids", found=ids,
                reason="field.missing" if ids is None else "field.type",
            )  # fmt: skip
        extra[key] = sorted(ids)
    return name, extra


def split_from_filename(name: str, flavor: str) -> str | None:
    match = re.match(split_pattern(flavor), name)
    return match.group(1) if match else None
