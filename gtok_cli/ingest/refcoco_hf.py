"""RefCOCO / RefCOCO+ / RefCOCOg as Hugging Face parquet copies → canonical ``referring`` records.

Two published layouts (``--layout``), read with pyarrow a batch of rows at a time
(:mod:`gtok_cli.ingest.parquet_rows`):

- ``lmms-lab`` (lmms-lab/RefCOCO, RefCOCOplus, RefCOCOg; dataset card ``dataset_info``, read by lmms-eval
  ``lmms_eval/tasks/refcoco/utils.py`` / ``utils_rec.py``): one row per referred object, files
  ``data/{val,test,testA,testB}-NNNNN-of-NNNNN.parquet`` (no train split). Columns ``question_id`` (string),
  ``image`` (embedded ``{bytes, path}``), ``question`` (the task prompt), ``answer`` (the object's referring
  expressions, a list of strings), ``segmentation`` (one polygon, flat ``list<float32>``), ``bbox`` (COCO
  ``[x, y, w, h]``, ``list<float32>``), ``iscrowd`` (int8), ``file_name``. There is no width or height:
  lmms-eval takes them from the decoded image, so does this reader (header only), or from
  ``--images DIR/<file_name>`` when a row has no bytes (only then is
  ``--images`` read). float32 values are read back as their shortest
  decimal (``103.93``, what the COCO annotation said, not ``103.93000030517578``); the polygon is kept as
  ``[polygon]`` (COCO's list-of-parts form). One record per answer: ``<dataset>:lmms-lab:<split>:
  <question_id>:<k>``; ``split`` from the file name (or ``--split``); ``image.id`` is the COCO id in
  ``COCO_<set>_<12 digits>.jpg`` names, else the file name.
- ``jxu124`` (jxu124/refcoco, refcocoplus, refcocog; dataset card ``dataset_info``): one row per ref, as
  ``refer.py`` holds it: ``ref_id``, ``ann_id``, ``image_id``, ``category_id``, ``split`` (refer's split
  name), ``sentences`` (``{raw, sent, sent_id, tokens}``), ``sent_ids``, ``file_name`` (the ref's
  ``_<n>``-suffixed name), ``bbox`` **xyxy** pixels, and the COCO annotation and image entry as JSON strings
  ``raw_anns`` / ``raw_image_info`` (box ``[x, y, w, h]``, mask, size, ``file_name``). The ``bbox`` column
  must agree with ``raw_anns`` (else the row is rejected: ``bbox.disagrees``); the mask is ``raw_anns``'s
  segmentation, checked as ``gtok ingest coco`` checks it. One record per sentence, text = ``sent`` (as
  ``gtok ingest refcoco``): ``<dataset>:jxu124:<split>:ref<ref_id>:sent<sent_id>``.

Units (each ``read = kept + excluded + rejected``): ``file`` (a file that cannot be opened or lacks a column
is one rejected file), ``row``, ``expression`` (an answer / sentence; a rejected row's are
``Excluded("row.rejected")``). A row is rejected for a wrong type, a missing value, a box outside its image,
a duplicate ``question_id`` / ``ref_id``; a sentence for a duplicate ``sent_id`` or empty text.
With an :class:`~gtok_cli.ingest.embedded_images.ImageWriter` (``--extract-images DIR``) the embedded image
bytes are written under the row's ``file_name``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import orjson

from gtok_cli.errors import InputError, UsageError
from gtok_cli.ingest.coco_validate import CocoImage, _checked_mask, check_image_entry, field_error
from gtok_cli.ingest.common import Excluded, IngestItem, Rejected, Tally
from gtok_cli.ingest.embedded_images import ImageWriter, embedded_bytes, size_of_image_bytes
from gtok_cli.ingest.fields import MISSING, Where, int_of, number_list, text_of
from gtok_cli.ingest.parquet_rows import columns_present, iter_rows, open_parquet, require_pyarrow
from gtok_cli.ingest.progress import progress
from gtok_cli.records import check_box_xyxy, make_record, make_region

Layout = Literal["lmms-lab", "jxu124"]
LAYOUTS = ("lmms-lab", "jxu124")
DATASETS = ("refcoco", "refcoco+", "refcocog")
LMMS_COLUMNS = ("question_id", "question", "answer", "segmentation", "bbox", "file_name")
JXU_COLUMNS = (
    "ref_id", "ann_id", "image_id", "category_id", "split", "sentences", "file_name", "bbox", "raw_anns",
    "raw_image_info",
)  # fmt: skip
BOX_AGREEMENT_PX = 0.01
"""How far jxu124's xyxy ``bbox`` may differ from ``raw_anns``'s ``[x, y, x + w, y + h]`` (float rounding)."""

_SHARD = re.compile(r"^(?P<split>[A-Za-z]+)-\d+-of-\d+")
_COCO_NAME = re.compile(r"^COCO_[A-Za-z]+\d*_(?P<id>\d{12})\.\w+$")


def split_from_shard_name(path: str | Path) -> str | None:
    """``val-00000-of-00004.parquet`` → ``val`` (the Hugging Face shard name)."""
    match = _SHARD.match(Path(path).name)
    return match.group("split") if match else None


def coco_image_id(file_name: str) -> int | str:
    """``COCO_train2014_000000581857.jpg`` → 581857; any other name is its own id."""
    match = _COCO_NAME.match(Path(file_name).name)
    return int(match.group("id")) if match else file_name


def float32_decimals(values: Sequence[float]) -> list[float]:
    """float32 values as their shortest decimal (``np.float32``'s repr): what was written before float32."""
    return [float(str(v)) for v in np.asarray(values, dtype=np.float32)]


def iter_refcoco_hf(
    parquet_paths: Sequence[str | Path],
    layout: Layout,
    dataset: str,
    split: str | None = None,
    images_dir: str | Path | None = None,
    image_writer: ImageWriter | None = None,
) -> Iterator[IngestItem]:
    """Records (and Rejected / Excluded items) of the parquet files; see the module doc.

    ``split``: lmms-lab: the split name (default: from each file's name); jxu124: keep only rows of that
    refer split. ``image_writer``: where embedded images go (``--extract-images``).
    """
    if layout not in LAYOUTS:
        raise UsageError(f"unknown --layout {layout!r}; expected one of {', '.join(LAYOUTS)}")
    if dataset not in DATASETS:
        raise UsageError(f"unknown --dataset {dataset!r}; expected one of {', '.join(DATASETS)}")
    require_pyarrow(f"gtok ingest refcoco-hf (reading {Path(parquet_paths[0]).name})")
    reader = _Reader(layout, dataset, split, images_dir, image_writer)
    yield Tally("file", read=len(parquet_paths))
    for path in parquet_paths:
        yield from reader.file_items(str(path))


@dataclass
class _Reader:
    layout: Layout
    dataset: str
    split: str | None
    images_dir: str | Path | None
    writer: ImageWriter | None
    seen_rows: set[Any] = field(default_factory=set)
    seen_sents: set[int] = field(default_factory=set)

    def file_items(self, file: str) -> Iterator[IngestItem]:
        required = LMMS_COLUMNS if self.layout == "lmms-lab" else JXU_COLUMNS
        try:
            pf = open_parquet(file, required)
        except InputError as err:
            yield Rejected(err, "file", {"file": file})
            return
        if self.layout == "lmms-lab":
            columns = [*LMMS_COLUMNS, *columns_present(pf, ("image", "iscrowd"))]
            if self.writer is not None and "image" not in columns:
                raise UsageError(f"--extract-images: {file} has no embedded image column")
            split = self.split or split_from_shard_name(file)
            if split is None:
                raise UsageError(f"cannot tell the split from the name {Path(file).name!r}; pass --split")
            make = self._lmms_row
        else:
            if self.writer is not None:
                raise UsageError("--extract-images: the jxu124 layout holds no images (only image paths)")
            columns = list(JXU_COLUMNS)
            split = self.split
            make = self._jxu_row
        yield Tally("file", kept=1)
        rows = progress(
            iter_rows(pf, columns, file), total=pf.metadata.num_rows, desc=Path(file).name, unit=" rows"
        )
        for index, row in rows:
            if self.layout == "jxu124" and split is not None and row.get("split") != split:
                continue  # another refer split: not read (as refer.py's getRefIds selects)
            yield Tally("row", read=1)
            yield from make(file, index, row, split)

    # -- lmms-lab ----------------------------------------------------------------------------------------
    def _lmms_row(
        self, file: str, index: int, row: dict[str, Any], split: str | None
    ) -> Iterator[IngestItem]:
        answers = row.get("answer")
        n = len(answers) if type(answers) is list else 0
        yield Tally("expression", read=n)
        qid = row.get("question_id")
        ids = {"row": index, **({"question_id": qid} if type(qid) is str else {})}
        try:
            record_base, region, texts = self._lmms_checked(file, index, row)
        except InputError as err:
            yield Rejected(err, "row", ids)
            if n:
                yield Excluded("row.rejected", "expression", n)
            return
        kept = 0
        for k, text in enumerate(texts):
            if type(text) is not str or not text.strip():
                bad = field_error(
                    file, f"row {index} (question_id {qid})", f"answer[{k}]", "a non-empty string", text
                )
                yield Rejected(bad, "expression", {**ids, "answer_index": k})
                continue
            kept += 1
            yield make_record(
                record_id=f"{self.dataset}:lmms-lab:{split}:{qid}:{k}",
                dataset=self.dataset,
                split=split,
                task="referring",
                text=text,
                regions=[dict(region)],
                source={**record_base["source"], "answer_index": k},
                **record_base["image"],
            )
        yield Tally("row", kept=1)
        yield Tally("expression", kept=kept)

    def _lmms_checked(
        self, file: str, index: int, row: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any], list[Any]]:
        qid = text_of(row.get("question_id", MISSING), file=file, record=f"row {index}", field="question_id")
        record = f"row {index} (question_id {qid})"
        where: Where = {"file": file, "record": record}
        if qid in self.seen_rows:
            raise InputError(
                "duplicate question_id", field="question_id", expected="unique ids", found=qid,
                reason="id.duplicate", **where,
            )  # fmt: skip
        self.seen_rows.add(qid)
        answers = row.get("answer", MISSING)
        if type(answers) is not list or not answers:
            raise field_error(file, record, "answer", "a non-empty list of expressions", answers)
        file_name = text_of(row.get("file_name", MISSING), field="file_name", **where)
        data = embedded_bytes(row.get("image"))
        if data is not None:
            width, height = size_of_image_bytes(data, **where)
            if self.writer is not None:
                self.writer.write(file_name, data, **where)
        elif self.images_dir is not None:
            from gtok_cli.images import image_size, safe_image_path

            path = safe_image_path(self.images_dir, file_name, **where)
            if not path.is_file():
                raise InputError(
                    "image file not found", field="file_name", expected=f"a file under {self.images_dir}",
                    found=file_name, reason="image.missing", **where,
                )  # fmt: skip
            width, height = image_size(path)
        else:
            raise InputError(
                "row has no embedded image and no --images folder to read its size from", field="image",
                expected="image bytes (or --images DIR)", found=None, reason="image.size_unknown", **where,
            )  # fmt: skip
        x, y, w, h = float32_decimals(
            number_list(row.get("bbox", MISSING), 4, field="bbox", what="[x, y, w, h] numbers", **where)
        )
        box = check_box_xyxy([x, y, x + w, y + h], width, height, field="bbox", **where)
        seg = row.get("segmentation", MISSING)
        if seg is None or seg == []:
            mask = None
        elif type(seg) is list and len(seg) >= 6 and len(seg) % 2 == 0:
            mask = [float32_decimals(number_list(seg, len(seg), field="segmentation", what="", **where))]
        else:
            raise field_error(
                file, record, "segmentation", "a flat polygon [x1, y1, x2, y2, x3, y3, ...]", seg
            )
        crowd = row.get("iscrowd", 0)
        if crowd not in (0, 1, None) or type(crowd) is bool:
            raise field_error(file, record, "iscrowd", "0 or 1", crowd)
        image_id = coco_image_id(file_name)
        question = row.get("question")
        base = {
            "image": {"image_file": file_name, "width": width, "height": height, "image_id": image_id},
            "source": {
                "image_id": image_id,
                "question_id": qid,
                "question": question if type(question) is str else None,
                "layout": "lmms-lab",
            },
        }
        region = make_region(box, mask=mask, iscrowd=crowd == 1, ann_id=None)
        return base, region, answers

    # -- jxu124 ------------------------------------------------------------------------------------------
    def _jxu_row(self, file: str, index: int, row: dict[str, Any], split: str | None) -> Iterator[IngestItem]:
        sentences = row.get("sentences")
        n = len(sentences) if type(sentences) is list else 0
        yield Tally("expression", read=n)
        ref_id = row.get("ref_id")
        ids: dict[str, Any] = {"row": index}
        ids.update({k: row[k] for k in ("ref_id", "ann_id", "image_id") if type(row.get(k)) is int})
        try:
            image, region = self._jxu_checked(file, index, row)
        except InputError as err:
            yield Rejected(err, "row", ids)
            if n:
                yield Excluded("row.rejected", "expression", n)
            return
        kept = 0
        ref_split = row["split"]
        label = f"row {index} (ref {ref_id})"
        for k, sent in enumerate(sentences or []):
            try:
                text, sent_id, raw = self._sentence(file, label, k, sent)
            except InputError as err:
                sid = sent.get("sent_id") if type(sent) is dict else None
                yield Rejected(err, "expression", {**ids, **({"sent_id": sid} if type(sid) is int else {})})
                continue
            kept += 1
            yield make_record(
                record_id=f"{self.dataset}:jxu124:{ref_split}:ref{ref_id}:sent{sent_id}",
                dataset=self.dataset,
                split=ref_split,
                task="referring",
                text=text,
                image_file=image.file_name,
                width=image.width,
                height=image.height,
                image_id=image.id,
                regions=[dict(region)],
                source={
                    "image_id": image.id,
                    "ann_id": row["ann_id"],
                    "ref_id": ref_id,
                    "sent_id": sent_id,
                    "split": ref_split,
                    "raw": raw,
                    "layout": "jxu124",
                },
            )
        yield Tally("row", kept=1)
        yield Tally("expression", kept=kept)

    def _jxu_checked(self, file: str, index: int, row: dict[str, Any]) -> tuple[CocoImage, dict[str, Any]]:
        ref_id = int_of(row.get("ref_id", MISSING), file=file, record=f"row {index}", field="ref_id")
        record = f"row {index} (ref {ref_id})"
        where: Where = {"file": file, "record": record}
        if ref_id in self.seen_rows:
            raise InputError(
                "duplicate ref_id", field="ref_id", expected="unique ids", found=ref_id,
                reason="id.duplicate", **where,
            )  # fmt: skip
        self.seen_rows.add(ref_id)
        ann_id, image_id, category_id = (
            int_of(row.get(key, MISSING), field=key, **where) for key in ("ann_id", "image_id", "category_id")
        )
        text_of(row.get("split", MISSING), field="split", **where)
        sentences = row.get("sentences", MISSING)
        if type(sentences) is not list or not sentences:
            raise field_error(file, record, "sentences", "a non-empty list of sentences", sentences)
        info = _json_object(row.get("raw_image_info", MISSING), "raw_image_info", **where)
        ann = _json_object(row.get("raw_anns", MISSING), "raw_anns", **where)
        image = check_image_entry(info, 0, file)
        for key, want, found in (
            ("raw_image_info.id", image_id, image.id),
            ("raw_anns.id", ann_id, ann.get("id")),
            ("raw_anns.image_id", image_id, ann.get("image_id")),
            ("raw_anns.category_id", category_id, ann.get("category_id")),
        ):
            if found != want:
                raise InputError(
                    "the row and its raw COCO entry name different objects", field=key,
                    expected=f"{want} (the row's)", found=found, reason="row.mismatch", **where,
                )  # fmt: skip
        box = check_box_xyxy(
            number_list(row.get("bbox", MISSING), 4, field="bbox", what="[x1, y1, x2, y2] numbers", **where),
            image.width, image.height, field="bbox", **where,
        )  # fmt: skip
        x, y, w, h = number_list(
            ann.get("bbox", MISSING), 4, field="raw_anns.bbox", what="[x, y, w, h]", **where
        )
        coco = [x, y, x + w, y + h]
        if max(abs(a - b) for a, b in zip(box, coco, strict=True)) > BOX_AGREEMENT_PX:
            raise InputError(
                "bbox (xyxy) disagrees with raw_anns.bbox (xywh)", field="bbox",
                expected=f"{coco} (raw_anns as xyxy)", found=row["bbox"], reason="bbox.disagrees", **where,
            )  # fmt: skip
        crowd = ann.get("iscrowd", 0)
        if type(crowd) not in (int, bool) or crowd not in (0, 1):
            raise field_error(file, record, "raw_anns.iscrowd", "0 or 1", crowd)
        seg = ann.get("segmentation")
        mask = None if seg is None or seg == [] else _checked_mask(seg, image, file, record)
        if self.images_dir is not None:
            from gtok_cli.images import check_image_size

            check_image_size(self.images_dir, image.file_name, image.width, image.height, **where)
        region = make_region(box, mask=mask, category_id=category_id, iscrowd=crowd == 1, ann_id=ann_id)
        return image, region

    def _sentence(self, file: str, label: str, k: int, sent: Any) -> tuple[str, int, str | None]:
        if type(sent) is not dict:
            raise field_error(file, label, f"sentences[{k}]", "an object {raw, sent, sent_id, tokens}", sent)
        sent_id = int_of(
            sent.get("sent_id", MISSING), file=file, record=label, field=f"sentences[{k}].sent_id"
        )
        where: Where = {"file": file, "record": f"{label} sent {sent_id}"}
        text = text_of(sent.get("sent", MISSING), field=f"sentences[{k}].sent", **where)
        raw = sent.get("raw")
        if raw is not None and type(raw) is not str:
            raise field_error(file, where["record"], f"sentences[{k}].raw", "a string", raw)
        if sent_id in self.seen_sents:
            raise InputError(
                "duplicate sent_id", field=f"sentences[{k}].sent_id", expected="unique sentence ids",
                found=sent_id, reason="id.duplicate", **where,
            )  # fmt: skip
        self.seen_sents.add(sent_id)
        return text, sent_id, raw


def _json_object(value: Any, name: str, *, file: str, record: str) -> dict[str, Any]:
    """A JSON string column holding one object (jxu124's ``raw_anns`` / ``raw_image_info``)."""
    if type(value) is not str:
        raise field_error(file, record, name, "a JSON object as a string", value)
    try:
        parsed = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise field_error(file, record, name, f"a JSON object as a string ({exc})", value) from None
    if type(parsed) is not dict:
        raise field_error(file, record, name, "a JSON object as a string", value)
    return parsed
