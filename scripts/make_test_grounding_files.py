#!/usr/bin/env python3
"""Write the MDETR / Hugging Face parquet / GRIT test files of ``tests/data/``, in the published layouts.

Every box, mask, size and sentence comes from the repository's samples (``sample_data/refcoco``: genuine COCO
val2017 annotations with hand-written expressions; ``sample_data/flickr30k``: the genuine sentence file and
the hand-drawn XML) or, for GRIT, from the instance the dataset card shows; the layouts follow the writers
cited in each reader's docstring (``gtok_cli/ingest/mdetr.py``, ``refcoco_hf.py``, ``grit.py``):

- ``mdetr/finetune_refcoco_testA.json``: the three testA refs as ``refexp_coco_format.py`` writes them (one
  entry per sentence, the ref file name without its ``_<n>`` suffix, ``tokens_positive`` = the root noun,
  chosen by hand), plus the released files' ``sentence_id`` / ``original_img_id`` / ``tokens_positive_eval``.
- ``mdetr/final_flickr_separateGT_val.json``: the Flickr30k sample as ``flickr_combined.py`` writes it
  (``height`` / ``width`` as the XML's strings, ``[xmin, ymin, xmax - xmin, ymax - ymin]`` of the 1-based
  XML numbers, one annotation per box with the spans of every phrase of its chain in the caption; no two
  boxes of the sample reach the 0.95 IoU at which that script merges them).
- ``mdetr/final_mixed_train.json``: two entries as ``dump.py`` ``convert2dataset_combined`` writes them
  (``data_source``, ``original_id``, empty ``categories``): a COCO one on sample image 229358 with two of its
  genuine boxes, a VG one (image 1, 800x600, hand-made).
- ``refcoco_hf/lmms-lab/{testA,val}-00000-of-00001.parquet``: the lmms-lab schema; testA rows embed a plain
  grey JPEG of the real image's size (the pixels are not under test), the val row embeds none (its size comes
  from ``--images``).
- ``refcoco_hf/jxu124/train-00000-of-00001.parquet``: the jxu124 schema, all twelve sample refs.
- ``grit/coyo_0_snappy.parquet``: the GRIT schema; row 1 is the dataset card's example instance, row 2 the
  Flickr30k sample's caption 1 with two of its boxes normalised (confidences made up: 0.9, 0.4).

Usage: ``python scripts/make_test_grounding_files.py`` (needs pyarrow).
"""

from __future__ import annotations

import io
import json
import pickle
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from gtok_cli.ingest.flickr30k import parse_sentence, read_sentence_file

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data"
OUT = ROOT / "tests" / "data"

# root noun span of each testA sentence, by hand: (sent_id, start, end)
ROOTS = {11: (0, 6), 12: (0, 3), 13: (0, 7), 14: (0, 3), 15: (0, 7), 16: (0, 6)}


def _refcoco() -> tuple[list[dict[str, Any]], dict[str, Any]]:
    refs = pickle.loads((SAMPLE / "refcoco" / "refs(unc).p").read_bytes(), encoding="latin1")
    inst = json.loads((SAMPLE / "refcoco" / "instances.json").read_text())
    return refs, inst


def _dump(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def mdetr_refcoco() -> None:
    refs, inst = _refcoco()
    images = {i["id"]: i for i in inst["images"]}
    anns = {a["id"]: a for a in inst["annotations"]}
    out_images, out_anns = [], []
    for ref in refs:
        if ref["split"] != "testA":
            continue
        img, ann = images[ref["image_id"]], anns[ref["ann_id"]]
        for sent in ref["sentences"]:
            start, end = ROOTS[sent["sent_id"]]
            n = len(out_images)
            out_images.append(
                {
                    "file_name": "_".join(ref["file_name"].split("_")[:-1]) + ".jpg",
                    "height": img["height"],
                    "width": img["width"],
                    "id": n,
                    "original_id": ref["image_id"],
                    "caption": sent["sent"],
                    "dataset_name": "refcoco",
                    "tokens_negative": [[0, len(sent["sent"])]],
                    "sentence_id": sent["sent_id"],
                    "original_img_id": ref["image_id"],
                    "tokens_positive_eval": [[[start, end]]],
                }
            )
            out_anns.append(
                {
                    "area": ann["area"],
                    "iscrowd": ann["iscrowd"],
                    "image_id": n,
                    "category_id": ref["category_id"],
                    "id": n,
                    "bbox": ann["bbox"],
                    "original_id": ref["ann_id"],
                    "tokens_positive": [[start, end]],
                }
            )
    doc = {
        "info": {}, "licenses": [], "images": out_images, "annotations": out_anns,
        "categories": inst["categories"],
    }  # fmt: skip
    _dump(OUT / "mdetr" / "finetune_refcoco_testA.json", doc)


def mdetr_flickr() -> None:
    image_id = "4945942737"
    root = ET.parse(SAMPLE / "flickr30k" / "Annotations" / f"{image_id}.xml").getroot()
    size = root.find("size")
    assert size is not None
    width, height = size.findtext("width"), size.findtext("height")  # strings, as xmltodict gives them
    boxes: dict[str, list[list[float]]] = {}
    for obj in root.findall("object"):
        bnd = obj.find("bndbox")
        if bnd is None:
            continue
        xmin, ymin, xmax, ymax = (float(bnd.findtext(t) or 0) for t in ("xmin", "ymin", "xmax", "ymax"))
        for name in obj.findall("name"):
            boxes.setdefault(name.text or "", []).append([xmin, ymin, xmax - xmin, ymax - ymin])
    out_images, out_anns = [], []
    for sent_id, line in enumerate(
        read_sentence_file(SAMPLE / "flickr30k" / "Sentences" / f"{image_id}.txt")
    ):
        sentence = parse_sentence(line)
        n = len(out_images)
        spans_of: dict[str, list[list[int]]] = {}
        for p in sentence.phrases:
            spans_of.setdefault(p.chain_id, []).append(list(p.span))
        out_images.append(
            {
                "file_name": f"{image_id}.jpg",
                "height": height,
                "width": width,
                "id": n,
                "caption": sentence.text,
                "dataset_name": "flickr",
                "tokens_negative": [[0, len(sentence.text)]],
                "sentence_id": sent_id,
                "original_img_id": int(image_id),
                "tokens_positive_eval": [[list(p.span)] for p in sentence.phrases if p.chain_id in boxes],
            }
        )
        for p_chain in dict.fromkeys(p.chain_id for p in sentence.phrases):
            for x, y, w, h in boxes.get(p_chain, []):
                out_anns.append(
                    {
                        "area": w * h, "iscrowd": 0, "image_id": n, "category_id": 1, "id": len(out_anns),
                        "bbox": [x, y, w, h], "tokens_positive": spans_of[p_chain],
                    }
                )  # fmt: skip
    doc = {
        "info": [], "licenses": [], "images": out_images, "annotations": out_anns,
        "categories": [{"supercategory": "object", "id": 1, "name": "object"}],
    }  # fmt: skip
    _dump(OUT / "mdetr" / "final_flickr_separateGT_val.json", doc)


def mdetr_mixed() -> None:
    _, inst = _refcoco()
    anns = {a["id"]: a for a in inst["annotations"]}
    sink, man = anns[1133919], anns[554513]
    coco_caption = "A man on the right next to a white sink."
    images = [
        {
            "file_name": "000000229358.jpg", "height": 423, "width": 640, "id": 0, "original_id": 229358,
            "caption": coco_caption, "tokens_negative": [], "data_source": "coco", "dataset_name": "gqa",
        },
        {
            "file_name": "1.jpg", "height": 600, "width": 800, "id": 1, "original_id": 1,
            "caption": "the clock on the tower.", "tokens_negative": [], "data_source": "vg",
            "dataset_name": "vg",
        },
    ]  # fmt: skip
    annotations = [
        {"area": float(man["area"]), "iscrowd": 0, "image_id": 0, "category_id": 1, "id": 0,
         "bbox": man["bbox"], "tokens_positive": [[0, 5]]},
        {"area": float(sink["area"]), "iscrowd": 0, "image_id": 0, "category_id": 1, "id": 1,
         "bbox": sink["bbox"], "tokens_positive": [[27, 39]]},
        {"area": 2400.0, "iscrowd": 0, "image_id": 1, "category_id": 1, "id": 2,
         "bbox": [421.0, 91.0, 40.0, 60.0], "tokens_positive": [[0, 9]]},
    ]  # fmt: skip
    doc = {"info": [], "licenses": [], "images": images, "annotations": annotations, "categories": []}
    _dump(OUT / "mdetr" / "final_mixed_train.json", doc)


def _grey_jpeg(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (128, 128, 128)).save(buf, "JPEG", quality=30)
    return buf.getvalue()


LMMS_SCHEMA = pa.schema(
    [
        ("question_id", pa.string()),
        ("image", pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
        ("question", pa.string()),
        ("answer", pa.list_(pa.string())),
        ("segmentation", pa.list_(pa.float32())),
        ("bbox", pa.list_(pa.float32())),
        ("iscrowd", pa.int8()),
        ("file_name", pa.string()),
    ]
)
QUESTION = "Please carefully observe the area circled in the image and come up with a caption for the area."


def lmms_lab() -> None:
    refs, inst = _refcoco()
    images = {i["id"]: i for i in inst["images"]}
    anns = {a["id"]: a for a in inst["annotations"]}
    for split, embed in (("testA", True), ("val", False)):
        rows = []
        for ref in refs:
            if ref["split"] != split or (split == "val" and ref["ref_id"] != 3):
                continue
            img, ann = images[ref["image_id"]], anns[ref["ann_id"]]
            name = f"COCO_train2014_{ref['image_id']:012d}.jpg" if embed else img["file_name"]
            rows.append(
                {
                    "question_id": str(ref["ann_id"]),
                    "image": {"bytes": _grey_jpeg(img["width"], img["height"]), "path": None}
                    if embed
                    else None,
                    "question": QUESTION,
                    "answer": [s["raw"] for s in ref["sentences"]],
                    "segmentation": ann["segmentation"][0],
                    "bbox": ann["bbox"],
                    "iscrowd": ann["iscrowd"],
                    "file_name": name,
                }
            )
        path = OUT / "refcoco_hf" / "lmms-lab" / f"{split}-00000-of-00001.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(rows, schema=LMMS_SCHEMA), path, row_group_size=2)


JXU_SCHEMA = pa.schema(
    [
        ("sent_ids", pa.list_(pa.int64())),
        ("file_name", pa.string()),
        ("ann_id", pa.int64()),
        ("ref_id", pa.int64()),
        ("image_id", pa.int64()),
        ("split", pa.string()),
        (
            "sentences",
            pa.list_(
                pa.struct(
                    [
                        ("raw", pa.string()),
                        ("sent", pa.string()),
                        ("sent_id", pa.int64()),
                        ("tokens", pa.list_(pa.string())),
                    ]
                )
            ),
        ),
        ("category_id", pa.int64()),
        ("raw_anns", pa.string()),
        ("raw_image_info", pa.string()),
        ("raw_sentences", pa.string()),
        ("image_path", pa.string()),
        ("bbox", pa.list_(pa.float64())),
        ("captions", pa.list_(pa.string())),
        ("global_image_id", pa.string()),
        ("anns_id", pa.string()),
    ]
)


def jxu124() -> None:
    refs, inst = _refcoco()
    images = {i["id"]: i for i in inst["images"]}
    anns = {a["id"]: a for a in inst["annotations"]}
    rows = []
    for ref in refs:
        img, ann = images[ref["image_id"]], anns[ref["ann_id"]]
        x, y, w, h = ann["bbox"]
        rows.append(
            {
                "sent_ids": ref["sent_ids"],
                "file_name": ref["file_name"],
                "ann_id": ref["ann_id"],
                "ref_id": ref["ref_id"],
                "image_id": ref["image_id"],
                "split": ref["split"],
                "sentences": ref["sentences"],
                "category_id": ref["category_id"],
                "raw_anns": json.dumps(ann),
                "raw_image_info": json.dumps(img),
                "raw_sentences": json.dumps(ref["sentences"]),
                "image_path": f"coco/val2017/{img['file_name']}",
                "bbox": [x, y, x + w, y + h],
                "captions": [s["sent"] for s in ref["sentences"]],
                "global_image_id": f"coco.{ref['image_id']}",
                "anns_id": str(ref["ann_id"]),
            }
        )
    path = OUT / "refcoco_hf" / "jxu124" / "train-00000-of-00001.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=JXU_SCHEMA), path, row_group_size=5)


GRIT_SCHEMA = pa.schema(
    [
        ("key", pa.string()),
        ("clip_similarity_vitb32", pa.float64()),
        ("clip_similarity_vitl14", pa.float64()),
        ("id", pa.int64()),
        ("url", pa.string()),
        ("caption", pa.string()),
        ("width", pa.int64()),
        ("height", pa.int64()),
        ("noun_chunks", pa.list_(pa.list_(pa.float64()))),
        ("ref_exps", pa.list_(pa.list_(pa.float64()))),
    ]
)


def grit() -> None:
    # fmt: off
    card = {
        "key": "000373938",
        "clip_similarity_vitb32": 0.353271484375,
        "clip_similarity_vitl14": 0.2958984375,
        "id": 1795296605919,
        "url": "https://www.thestrapsaver.com/wp-content/uploads/customerservice-1.jpg",
        "caption": "a wire hanger with a paper cover that reads we heart our customers",
        "width": 1024,
        "height": 693,
        "noun_chunks": [
            [19, 32, 0.019644069503434333, 0.31054004033406574, 0.9622142865754519, 0.9603442351023356, 0.79298526],  # noqa: E501
            [0, 13, 0.019422357885505368, 0.027634161214033764, 0.9593302408854166, 0.969467560450236, 0.67520964],  # noqa: E501
        ],
        "ref_exps": [
            [19, 66, 0.019644069503434333, 0.31054004033406574, 0.9622142865754519, 0.9603442351023356, 0.79298526],  # noqa: E501
            [0, 66, 0.019422357885505368, 0.027634161214033764, 0.9593302408854166, 0.969467560450236, 0.67520964],  # noqa: E501
        ],
    }
    # fmt: on
    caption = "A girl with brown hair sits on the edge of a cement area overlooking water ."
    girl = [106 / 333, 154 / 500, 287 / 333, 376 / 500]  # sample XML 1-based → continuous, normalised
    hair = [157 / 333, 154 / 500, 266 / 333, 300 / 500]
    flickr = {
        "key": "000000001", "clip_similarity_vitb32": 0.3, "clip_similarity_vitl14": 0.25, "id": 4945942737,
        "url": "https://example.invalid/4945942737.jpg", "caption": caption, "width": 333, "height": 500,
        "noun_chunks": [[0, 6, *girl, 0.9], [12, 22, *hair, 0.4]],
        "ref_exps": [[0, 22, *girl, 0.9]],
    }  # fmt: skip
    path = OUT / "grit" / "coyo_0_snappy.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist([card, flickr], schema=GRIT_SCHEMA), path)


if __name__ == "__main__":
    mdetr_refcoco()
    mdetr_flickr()
    mdetr_mixed()
    lmms_lab()
    jxu124()
    grit()
