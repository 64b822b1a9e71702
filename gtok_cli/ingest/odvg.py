"""ODVG jsonl (GroundingDINO's "object detection + visual grounding" training format) → canonical records.

Layout, one JSON object per line (``longzw1997/Open-GroundingDino`` ``data_format.md`` and
``datasets/odvg.py``; ``open-mmlab/mmdetection`` ``mmdet/datasets/odvg.py``)::

    {"filename": "image.jpg", "height": 693, "width": 1024,
     "detection": {"instances": [{"bbox": [x1, y1, x2, y2], "label": 0, "category": "dog"}, …]},
     "grounding": {"caption": "a wire hanger with …",
                   "regions": [{"bbox": [x1, y1, x2, y2] | [[x1, y1, x2, y2], …], "phrase": "a wire hanger",
                                "tokens_positive": [[start, end], …]}, …]}}

Boxes are xyxy pixels already (no conversion; checked by :func:`records.check_box_xyxy`). A detection label
is an integer index; its name comes from the label map (``{"0": "person", …}``, keys from "0", given with
``--label-map`` as Open-GroundingDino's ``label_map`` file; the map wins, as there) or else from the
instance's ``category``. mmdetection's reader accepts one box or a list of boxes per grounding region and
reads ``tokens_positive`` (character spans into the caption); both are kept.

Records (docs/spec.md#records), per line (a line may carry both parts):

- ``detection`` → an ``instances`` record ``odvg:<file stem>:<line>:detection`` (label = the name,
  ``category_id`` = the label index);
- ``grounding`` → a ``grounded_caption`` record ``odvg:<file stem>:<line>:grounding``: text = the caption,
  one region per box with the ``phrase`` and its ``span``: the first ``tokens_positive`` pair, or else the
  phrase's first occurrence in the caption, or else null (the grounded-caption export skips such regions).

Image id = ``filename``; source ``{"line", "filename"}``. A line is the unit of rejection: any bad field
(also a span outside the caption, a box outside the image, a second ``detection`` line for the same file, a
repeated grounding line (same file and caption), invalid / truncated JSON) rejects the whole line. Counts:
``lines`` (non-blank lines) and, for the lines kept, ``instances`` and ``regions``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from gtok_cli.errors import InputError
from gtok_cli.ingest.coco_validate import MISSING, field_error
from gtok_cli.ingest.common import Excluded, IngestItem, Rejected, Tally
from gtok_cli.ingest.progress import read_progress
from gtok_cli.jsonio import load_json, open_input
from gtok_cli.records import check_box_xyxy, make_record, make_region

DATASET = "odvg"


def load_label_map(path: str | Path) -> dict[int, str]:
    """``{label index: name}`` from an Open-GroundingDino label map (``{"0": "person", …}``)."""
    file = str(path)
    data = load_json(path)
    if type(data) is not dict:
        raise field_error(file, "(file)", "(top level)", 'an object {"0": "name", …}', type(data).__name__)
    names: dict[int, str] = {}
    for key, name in data.items():
        if not key.lstrip("-").isdigit():
            raise field_error(file, f"key {key!r}", "(key)", "an integer label as a string", key)
        if type(name) is not str or not name.strip():
            raise field_error(file, f"label {key}", "(name)", "a non-empty string", name)
        names[int(key)] = name
    return names


def iter_odvg(
    annotations: str | Path,
    label_map: dict[int, str] | None = None,
    images_dir: str | Path | None = None,
) -> Iterator[IngestItem]:
    """Records (and Rejected / Excluded / Tally items) of an ODVG jsonl file; see the module doc."""
    reader = _Reader(str(annotations), Path(annotations).name.split(".")[0], label_map, images_dir)
    size = Path(annotations).stat().st_size if Path(annotations).is_file() else None
    with read_progress(size, "odvg") as update, open_input(annotations) as fh:
        for lineno, line in enumerate(fh, 1):
            update(len(line))
            if not line.strip():
                continue
            yield Tally("line", read=1)
            try:
                records = reader.records(line, lineno)
            except InputError as err:
                yield Rejected(err, "line", {"line": lineno})
                continue
            if not records:
                yield Excluded("no_regions", "line")
                continue
            yield Tally("line", kept=1)
            for rec in records:
                unit = "instance" if rec["task"] == "instances" else "region"
                yield Tally(unit, read=len(rec["regions"]), kept=len(rec["regions"]))
                yield rec


def _digest(*parts: str) -> bytes:
    h = hashlib.blake2b(digest_size=8)
    for part in parts:
        h.update(part.encode("utf-8", "surrogatepass") + b"\0")
    return h.digest()


def _is_number(value: Any) -> bool:
    return type(value) in (int, float)


def _is_box(value: Any) -> bool:
    return type(value) is list and len(value) == 4 and all(_is_number(v) for v in value)


@dataclass
class _Reader:
    file: str
    stem: str
    label_map: dict[int, str] | None
    images_dir: str | Path | None
    detection_files: set[bytes] = field(default_factory=set)
    grounding_lines: set[bytes] = field(default_factory=set)

    def records(self, line: bytes, lineno: int) -> list[dict[str, Any]]:
        file, where = self.file, f"line {lineno}"
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            truncated = not line.endswith(b"\n")
            raise InputError(
                f"not valid JSON{' (the file ends inside this line)' if truncated else ''}: {exc}",
                file=file, record=where, reason="json.truncated" if truncated else "json.invalid",
            ) from None  # fmt: skip
        if type(obj) is not dict:
            raise field_error(file, where, "(line)", "an object", type(obj).__name__)
        filename = obj.get("filename", MISSING)
        if type(filename) is not str or not filename:
            raise field_error(file, where, "filename", "a non-empty string", filename)
        where = f"line {lineno} ({filename})"
        for key in ("width", "height"):
            value = obj.get(key, MISSING)
            if type(value) is not int or value < 1:
                raise field_error(file, where, key, "a positive integer", value)
        width, height = obj["width"], obj["height"]
        detection, grounding = obj.get("detection"), obj.get("grounding")
        if detection is None and grounding is None:
            raise field_error(file, where, "detection/grounding", "a detection or grounding object", MISSING)
        out: list[dict[str, Any]] = []
        claims: list[tuple[set[bytes], bytes]] = []
        base = {"file": filename, "width": width, "height": height, "lineno": lineno, "where": where}
        if detection is not None:
            regions = self._instances(detection, base)
            claim = _digest(filename)
            if claim in self.detection_files:
                raise InputError(
                    "a second detection line for this image", file=file, record=where, field="filename",
                    expected="one detection line per image", found=filename, reason="id.duplicate",
                )  # fmt: skip
            claims.append((self.detection_files, claim))
            if regions:
                out.append(self._record("detection", "instances", None, regions, base))
        if grounding is not None:
            caption, regions = self._grounding(grounding, base)
            claim = _digest(filename, caption)
            if claim in self.grounding_lines:
                raise InputError(
                    "a repeated grounding line (same image and caption)", file=file, record=where,
                    field="grounding.caption", expected="each caption once per image", found=caption,
                    reason="id.duplicate",
                )  # fmt: skip
            claims.append((self.grounding_lines, claim))
            if regions:
                out.append(self._record("grounding", "grounded_caption", caption, regions, base))
        if self.images_dir is not None:
            from gtok_cli.images import check_image_size  # PIL only when images are checked

            check_image_size(self.images_dir, filename, width, height, file=file, record=where)
        for seen, claim in claims:  # only a line that passed every check claims its image / caption
            seen.add(claim)
        return out

    def _record(
        self, part: str, task: str, text: str | None, regions: list[dict[str, Any]], base: dict[str, Any]
    ) -> dict[str, Any]:
        return make_record(
            record_id=f"{DATASET}:{self.stem}:{base['lineno']}:{part}",
            dataset=DATASET,
            split=None,
            task=task,
            text=text,
            image_file=base["file"],
            width=base["width"],
            height=base["height"],
            image_id=base["file"],
            regions=regions,
            source={"line": base["lineno"], "filename": base["file"]},
        )

    def _box(self, value: Any, base: dict[str, Any], field_name: str) -> list[float]:
        if not _is_box(value):
            raise field_error(self.file, base["where"], field_name, "[x1, y1, x2, y2] numbers", value)
        return check_box_xyxy(
            value, base["width"], base["height"], file=self.file, record=base["where"], field=field_name
        )

    def _instances(self, detection: Any, base: dict[str, Any]) -> list[dict[str, Any]]:
        file, where = self.file, base["where"]
        instances = detection.get("instances", MISSING) if type(detection) is dict else MISSING
        if type(instances) is not list:
            raise field_error(file, where, "detection.instances", "a list", instances)
        regions = []
        for k, inst in enumerate(instances):
            at = f"detection.instances[{k}]"
            if type(inst) is not dict:
                raise field_error(file, where, at, "an object", type(inst).__name__)
            box = self._box(inst.get("bbox", MISSING), base, f"{at}.bbox")
            label = inst.get("label", MISSING)
            if type(label) is not int:
                raise field_error(file, where, f"{at}.label", "an integer label index", label)
            category = inst.get("category", MISSING)
            if category is not MISSING and (type(category) is not str or not category.strip()):
                raise field_error(file, where, f"{at}.category", "a non-empty string", category)
            if self.label_map is not None:
                name = self.label_map.get(label)
                if name is None:
                    raise InputError(
                        "label not in the label map", file=file, record=where, field=f"{at}.label",
                        expected="a key of --label-map", found=label, reason="label.unknown",
                    )  # fmt: skip
            elif category is MISSING:
                raise field_error(file, where, f"{at}.category", "a name (or give --label-map)", MISSING)
            else:
                name = category
            regions.append(make_region(box, label=name, category_id=label, ann_id=k))
        return regions

    def _grounding(self, grounding: Any, base: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
        file, where = self.file, base["where"]
        if type(grounding) is not dict:
            raise field_error(file, where, "grounding", "an object", type(grounding).__name__)
        caption = grounding.get("caption", MISSING)
        if type(caption) is not str or not caption.strip():
            raise field_error(file, where, "grounding.caption", "a non-empty string", caption)
        items = grounding.get("regions", MISSING)
        if type(items) is not list:
            raise field_error(file, where, "grounding.regions", "a list", items)
        regions = []
        for k, item in enumerate(items):
            at = f"grounding.regions[{k}]"
            if type(item) is not dict:
                raise field_error(file, where, at, "an object", type(item).__name__)
            phrase = item.get("phrase", MISSING)
            if type(phrase) is not str or not phrase.strip():
                raise field_error(file, where, f"{at}.phrase", "a non-empty string", phrase)
            span = self._span(item.get("tokens_positive", MISSING), caption, phrase, base, at)
            raw = item.get("bbox", MISSING)
            boxes = raw if type(raw) is list and raw and type(raw[0]) is list else [raw]
            for j, value in enumerate(boxes):
                name = f"{at}.bbox" if len(boxes) == 1 and boxes[0] is raw else f"{at}.bbox[{j}]"
                box = self._box(value, base, name)
                regions.append(make_region(box, ann_id=f"{k}.{j}", phrase=phrase, span=span))
        return caption, regions

    def _span(
        self, tokens: Any, caption: str, phrase: str, base: dict[str, Any], at: str
    ) -> list[int] | None:
        if tokens is MISSING or tokens is None:
            start = caption.find(phrase)
            return [start, start + len(phrase)] if start >= 0 else None
        ok = (
            type(tokens) is list
            and tokens
            and all(type(t) is list and len(t) == 2 and all(type(v) is int for v in t) for t in tokens)
        )
        if not ok:
            raise field_error(
                self.file, base["where"], f"{at}.tokens_positive", "[[start, end], …] integers", tokens
            )
        for start, end in tokens:
            if not 0 <= start < end <= len(caption):
                raise InputError(
                    "span outside the caption", file=self.file, record=base["where"],
                    field=f"{at}.tokens_positive", expected=f"0 <= start < end <= {len(caption)}",
                    found=[start, end], reason="span.outside",
                )  # fmt: skip
        return list(tokens[0])
