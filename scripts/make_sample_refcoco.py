#!/usr/bin/env python3
"""Build ``sample_data/refcoco/``: a small RefCOCO (splitBy unc) pair in the exact lichengunc/refer format.

- ``instances.json``: ``images`` / ``annotations`` / ``categories`` (the three keys ``REFER.__init__`` reads),
  copied unmodified from the genuine COCO val2017 records of four images in
  ``/work/shared/fixtures/coco/annotations/instances_val2017.json`` (every annotation of those images, all
  categories). File names stay the val2017 names so ``--images sample_data/coco/val2017`` finds them
  (the four images are among the COCO sample's).
- ``refs(unc).p``: a list of refs (``ref_id, ann_id, image_id, category_id, split, file_name, sent_ids,
  sentences[{tokens, raw, sent_id, sent}]``), pickled byte-for-byte as Python 2's ``cPickle.dump(refs, f, 2)``
  writes it: byte strings as ``SHORT_BINSTRING``, every string memoised, lists/dicts batched with
  ``MARK … APPENDS/SETITEMS`` (single items with ``APPEND``/``SETITEM``). Python 3's pickler would write
  ``BINUNICODE`` instead, which is not what the released files contain.

The referring expressions are hand-written for real objects in the images (one person image per testA ref,
object refs in testB, as the unc split does). ``file_name`` carries a ``_<n>`` suffix; here ``n`` is the
ann_id (the released files use another number; readers only strip it).

Usage: ``python scripts/make_sample_refcoco.py [--coco INSTANCES] [--out sample_data/refcoco]``
"""

from __future__ import annotations

import argparse
import json
import struct
from pathlib import Path
from typing import Any

COCO = Path("/work/shared/fixtures/coco/annotations/instances_val2017.json")
OUT = Path(__file__).resolve().parent.parent / "sample_data" / "refcoco"

# (split, image_id, ann_id, [(raw, sent), ...]) — sent is raw lower-cased without punctuation, as in refer
REFS: list[tuple[str, int, int, list[str]]] = [
    ("train", 229358, 554513, ["man on the right , cut off", "guy in white shirt nearest us", "right man"]),
    ("train", 229358, 464900, ["man in the mirror", "Reflection of guy shaving"]),
    ("train", 229358, 1133919, ["white sink at bottom"]),
    ("val", 255165, 1968752, ["monitor on the right", "right screen"]),
    ("val", 255165, 29430, ["left monitor with web page", "middle screen"]),
    ("val", 255165, 1101053, ["laptop on the left"]),
    ("testA", 311002, 450473, ["batter in red", "kid holding the bat"]),
    ("testA", 311002, 430057, ["pitcher in the middle", "guy throwing the ball"]),
    ("testA", 311002, 1747514, ["catcher on right", "person in helmet bottom right"]),
    ("testB", 160012, 1070826, ["pizza in front", "closest pizza with tomatoes"]),
    ("testB", 160012, 1071860, ["pizza in the back"]),
    ("testB", 160012, 85295, ["green bottle on left", "beer bottle"]),
]


# -- a Python 2 protocol-2 pickler (plain data only) -------------------------------------------------------
class Py2Pickler:
    """Writes what Python 2.7 ``cPickle.dumps(obj, 2)`` writes for str/int/list/dict/None/bool/float.

    Python ``str`` values are written as Python 2 byte strings (latin-1), as the refer pickles hold them.
    """

    def __init__(self) -> None:
        self.out = bytearray(b"\x80\x02")  # PROTO 2
        self.memo: dict[Any, int] = {}

    def _put(self, key: Any) -> None:
        idx = len(self.memo)
        self.memo[key] = idx
        self.out += b"q" + bytes([idx]) if idx < 256 else b"r" + struct.pack("<I", idx)

    def _get(self, idx: int) -> None:
        self.out += b"h" + bytes([idx]) if idx < 256 else b"j" + struct.pack("<I", idx)

    def save(self, obj: Any) -> None:
        if obj is None:
            self.out += b"N"
        elif obj is True or obj is False:
            self.out += b"\x88" if obj else b"\x89"
        elif isinstance(obj, int):
            if 0 <= obj < 256:
                self.out += b"K" + bytes([obj])
            elif 0 <= obj < 65536:
                self.out += b"M" + struct.pack("<H", obj)
            elif -(2**31) <= obj < 2**31:
                self.out += b"J" + struct.pack("<i", obj)
            else:
                raise ValueError("ints beyond 32 bits are not needed here")
        elif isinstance(obj, float):
            self.out += b"G" + struct.pack(">d", obj)
        elif isinstance(obj, str):
            key = ("str", obj)
            if key in self.memo:  # Python 2 interns identifiers and dict keys: repeats are memo gets
                self._get(self.memo[key])
                return
            data = obj.encode("latin-1")
            n = len(data)
            self.out += b"U" + bytes([n]) if n < 256 else b"T" + struct.pack("<i", n)
            self.out += data
            self._put(key)
        elif isinstance(obj, list):
            self.out += b"]"
            self._put(("obj", id(obj)))
            self._batch(obj, b"a", b"e")
        elif isinstance(obj, dict):
            self.out += b"}"
            self._put(("obj", id(obj)))
            self._batch(list(obj.items()), b"s", b"u")
        else:
            raise TypeError(f"not plain data: {type(obj).__name__}")

    def _batch(self, items: list[Any], one: bytes, many: bytes) -> None:
        for start in range(0, len(items), 1000):  # cPickle's BATCHSIZE
            chunk = items[start : start + 1000]
            if len(chunk) > 1:
                self.out += b"("  # MARK
            for item in chunk:
                if one == b"s":
                    self.save(item[0])
                    self.save(item[1])
                else:
                    self.save(item)
            self.out += many if len(chunk) > 1 else one

    def dumps(self, obj: Any) -> bytes:
        self.save(obj)
        return bytes(self.out + b".")


def dumps_py2(obj: Any) -> bytes:
    return Py2Pickler().dumps(obj)


# -- the refer format --------------------------------------------------------------------------------------
def clean(raw: str) -> str:
    """refer's ``sent``: lower case, punctuation dropped, single spaces."""
    kept = "".join(c if c.isalnum() or c.isspace() else " " for c in raw.lower())
    return " ".join(kept.split())


def make_refs(anns: dict[int, dict[str, Any]], images: dict[int, dict[str, Any]]) -> list[dict[str, Any]]:
    refs, sent_id = [], 0
    for ref_id, (split, image_id, ann_id, raws) in enumerate(REFS):
        ann = anns[ann_id]
        assert ann["image_id"] == image_id, (ann_id, image_id)
        stem, ext = images[image_id]["file_name"].rsplit(".", 1)
        sentences = []
        for raw in raws:
            sent = clean(raw)
            sentences.append({"tokens": sent.split(), "raw": raw, "sent_id": sent_id, "sent": sent})
            sent_id += 1
        refs.append(
            {
                "sent_ids": [s["sent_id"] for s in sentences],
                "file_name": f"{stem}_{ann_id}.{ext}",
                "ann_id": ann_id,
                "ref_id": ref_id,
                "image_id": image_id,
                "split": split,
                "sentences": sentences,
                "category_id": ann["category_id"],
            }
        )
    return refs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--coco", type=Path, default=COCO)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    coco = json.loads(args.coco.read_text())
    image_ids = sorted({image_id for _, image_id, _, _ in REFS})
    images = {img["id"]: img for img in coco["images"] if img["id"] in image_ids}
    anns = {a["id"]: a for a in coco["annotations"] if a["image_id"] in image_ids}
    instances = {
        "images": [images[i] for i in image_ids],
        "annotations": sorted(anns.values(), key=lambda a: a["id"]),
        "categories": coco["categories"],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "instances.json").write_text(json.dumps(instances) + "\n")
    (args.out / "refs(unc).p").write_bytes(dumps_py2(make_refs(anns, images)))
    n_sent = sum(len(r[3]) for r in REFS)
    print(f"wrote {args.out}: {len(REFS)} refs, {n_sent} sentences, {len(images)} images, {len(anns)} anns")


if __name__ == "__main__":
    main()
