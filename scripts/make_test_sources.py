"""Write tests/data/{lvis,objects365,odvg,vg,sa1b}: real COCO val2017 records (boxes, masks) re-expressed in
each source's published layout (see tests/data/README.md). Run from the repository root; deterministic."""

from __future__ import annotations

import json
from pathlib import Path

from pycocotools import mask as mask_utils

SRC = Path("tests/data/coco/annotations/instances_val2017.json")
CAPTIONS = Path("tests/data/coco/annotations/captions_val2017.json")
IMAGE_IDS = (139, 18575, 22192)  # 139 is in tests/data/coco/val2017; the others in sample_data/coco/val2017


def main() -> None:
    coco = json.loads(SRC.read_text())
    caps = json.loads(CAPTIONS.read_text())
    images = {im["id"]: im for im in coco["images"] if im["id"] in IMAGE_IDS}
    anns = sorted((a for a in coco["annotations"] if a["image_id"] in IMAGE_IDS), key=lambda a: a["id"])
    used = sorted({a["category_id"] for a in anns})
    cats = [c for c in coco["categories"] if c["id"] in used]
    names = {c["id"]: c["name"] for c in cats}
    write_lvis(images, anns, cats)
    write_objects365(images, anns, cats)
    write_odvg(images, anns, names, caps)
    write_vg(images, anns, names, caps)
    write_sa1b(images, anns)


def dump(path: Path, obj: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj) + "\n")


def write_lvis(images: dict, anns: list, cats: list) -> None:
    present = {iid: sorted({a["category_id"] for a in anns if a["image_id"] == iid}) for iid in images}
    all_ids = [c["id"] for c in cats]
    out_images = []
    for iid, im in sorted(images.items()):
        out_images.append(
            {
                "id": iid,
                "width": im["width"],
                "height": im["height"],
                "license": im["license"],
                "flickr_url": im["flickr_url"],
                "coco_url": im["coco_url"],
                "date_captured": im["date_captured"],
                # first present category marked non-exhaustive; an absent one verified negative
                "not_exhaustive_category_ids": present[iid][:1],
                "neg_category_ids": [c for c in all_ids if c not in present[iid]][:2],
            }
        )
    out_anns = [
        {k: a[k] for k in ("id", "image_id", "category_id", "segmentation", "area", "bbox")}
        for a in anns
        if not a["iscrowd"]
    ]
    out_cats = [
        {
            "id": c["id"],
            "name": c["name"],
            "synset": f"{c['name'].replace(' ', '_')}.n.01",
            "synonyms": [c["name"]],
            "def": c["name"],
            "frequency": "f",
            "image_count": 1,
            "instance_count": 1,
        }
        for c in cats
    ]
    dump(
        Path("tests/data/lvis/lvis_v1_val_sample.json"),
        {"info": {}, "licenses": [], "images": out_images, "annotations": out_anns, "categories": out_cats},
    )


def write_objects365(images: dict, anns: list, cats: list) -> None:
    out_images = [
        {
            "id": iid,
            "width": im["width"],
            "height": im["height"],
            "license": 5,
            "url": "",
            "file_name": f"images/v2/patch{k}/objects365_v2_{iid:08d}.jpg",
        }
        for k, (iid, im) in enumerate(sorted(images.items()))
    ]
    out_anns = [
        {
            "id": a["id"],
            "iscrowd": 0,
            "isfake": 0,
            "area": a["area"],
            "isreflected": 0,
            "bbox": a["bbox"],
            "image_id": a["image_id"],
            "category_id": a["category_id"],
        }
        for a in anns
        if not a["iscrowd"]
    ]
    out_cats = [{"id": c["id"], "name": c["name"]} for c in cats]
    dump(
        Path("tests/data/objects365/zhiyuan_objv2_val_sample.json"),
        {"images": out_images, "annotations": out_anns, "categories": out_cats, "licenses": []},
    )


def xyxy(b: list) -> list:
    return [round(b[0], 2), round(b[1], 2), round(b[0] + b[2], 2), round(b[1] + b[3], 2)]


def write_odvg(images: dict, anns: list, names: dict, caps: dict) -> None:
    label_of = {cid: k for k, cid in enumerate(sorted(names))}
    lines = []
    for iid, im in sorted(images.items()):
        inst = [
            {
                "bbox": xyxy(a["bbox"]),
                "label": label_of[a["category_id"]],
                "category": names[a["category_id"]],
            }
            for a in anns
            if a["image_id"] == iid and not a["iscrowd"]
        ]
        lines.append(
            {
                "filename": im["file_name"],
                "height": im["height"],
                "width": im["width"],
                "detection": {"instances": inst},
            }
        )
    # grounding lines: a COCO caption of the image, each phrase a category name found in it (real boxes)
    for iid, im in sorted(images.items()):
        for cap in sorted((c for c in caps["annotations"] if c["image_id"] == iid), key=lambda c: c["id"]):
            text = cap["caption"].strip()
            regions = []
            for cid in sorted(names):
                at = text.lower().find(names[cid])
                boxes = [
                    xyxy(a["bbox"])
                    for a in anns
                    if a["image_id"] == iid and a["category_id"] == cid and not a["iscrowd"]
                ]
                if at >= 0 and boxes:
                    end = at + len(names[cid])
                    regions.append(
                        {
                            "bbox": boxes if len(boxes) > 1 else boxes[0],
                            "phrase": text[at:end],
                            "tokens_positive": [[at, end]],
                        }
                    )
            if regions:
                lines.append(
                    {
                        "filename": im["file_name"],
                        "height": im["height"],
                        "width": im["width"],
                        "grounding": {"caption": text, "regions": regions},
                    }
                )
                break
    path = Path("tests/data/odvg/coco_val_sample_odvg.jsonl")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    dump(Path("tests/data/odvg/label_map.json"), {str(k): names[cid] for cid, k in label_of.items()})


def ixywh(b: list) -> tuple[int, int, int, int]:
    x, y = int(b[0]), int(b[1])
    return x, y, max(1, int(b[0] + b[2]) - x), max(1, int(b[1] + b[3]) - y)


def write_vg(images: dict, anns: list, names: dict, caps: dict) -> None:
    vg_ids = {iid: 2400000 + k for k, iid in enumerate(sorted(images))}
    image_data = [
        {
            "image_id": vg_ids[iid],
            "url": f"https://cs.stanford.edu/people/rak248/VG_100K_2/{vg_ids[iid]}.jpg",
            "width": im["width"],
            "height": im["height"],
            "coco_id": iid,
            "flickr_id": None,
        }
        for iid, im in sorted(images.items())
    ]
    regions, objects, relationships = [], [], []
    rid = oid = relid = 0
    for iid in sorted(images):
        vid = vg_ids[iid]
        mine = [a for a in anns if a["image_id"] == iid and not a["iscrowd"]]
        caps_i = [c["caption"].strip() for c in caps["annotations"] if c["image_id"] == iid]
        regs, objs = [], []
        for k, a in enumerate(mine):
            x, y, w, h = ixywh(a["bbox"])
            rid += 1
            regs.append(
                {
                    "region_id": 5000000 + rid,
                    "width": w,
                    "height": h,
                    "image_id": vid,
                    "phrase": f"{names[a['category_id']]} in the picture" if k else caps_i[0],
                    "y": y,
                    "x": x,
                }
            )
            oid += 1
            objs.append(
                {
                    "synsets": [],
                    "h": h,
                    "object_id": 1000000 + oid,
                    "names": [names[a["category_id"]]],
                    "w": w,
                    "y": y,
                    "x": x,
                }
            )
        regions.append({"regions": regs, "id": vid})
        objects.append({"image_id": vid, "objects": objs, "image_url": image_data[len(objects)]["url"]})
        rels = []
        for s, o in zip(objs, objs[1:], strict=False):  # noqa: RUF007
            relid += 1
            rels.append(
                {
                    "predicate": "near",
                    "object": {**o},
                    "relationship_id": 3000000 + relid,
                    "synsets": ["near.r.01"],
                    "subject": {**s},
                }
            )
        relationships.append({"relationships": rels, "image_id": vid})
    base = Path("tests/data/vg")
    dump(base / "image_data.json", image_data)
    dump(base / "region_descriptions.json", regions)
    dump(base / "objects.json", objects)
    dump(base / "relationships.json", relationships)


def write_sa1b(images: dict, anns: list) -> None:
    for n, (iid, im) in enumerate(sorted(images.items()), 1):
        h, w = im["height"], im["width"]
        out = []
        for a in (a for a in anns if a["image_id"] == iid and not a["iscrowd"]):
            rle = mask_utils.merge(mask_utils.frPyObjects(a["segmentation"], h, w))
            bbox = [float(v) for v in mask_utils.toBbox(rle)]
            px, py = a["segmentation"][0][0], a["segmentation"][0][1]
            out.append(
                {
                    "id": 900000 + a["id"] % 100000,
                    "segmentation": {"size": [h, w], "counts": rle["counts"].decode("ascii")},
                    "area": int(mask_utils.area(rle)),
                    "bbox": bbox,
                    "predicted_iou": round(0.80 + (a["id"] % 19) / 100, 4),
                    "point_coords": [[px, py]],
                    "crop_box": [0.0, 0.0, float(w), float(h)],
                    "stability_score": round(0.90 + (a["id"] % 7) / 100, 4),
                }
            )
        dump(
            Path(f"tests/data/sa1b/sa_{n}.json"),
            {
                "image": {"image_id": n, "width": w, "height": h, "file_name": f"sa_{n}.jpg"},
                "annotations": out,
            },
        )


if __name__ == "__main__":
    main()
