"""Make sample_data/coco/: a small genuine COCO val2017 subset (annotations, captions, images).

Deterministic. Picks 12 images from the shared fixtures (../shared/fixtures/coco/): first the two smallest
images with a crowd annotation, then, greedily, the image adding the most categories not yet covered (ties:
smaller file, then lower id), among images under 160 kB. Files keep the source's structure (info, licenses,
images, annotations, categories: all of them) and its JSON layout (Python's default separators).

    python scripts/make_sample_coco.py [--fixtures DIR] [--out sample_data/coco]
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
N_IMAGES = 12
N_CROWD = 2
MAX_BYTES = 160_000


def default_fixtures() -> Path:
    for base in (REPO / "shared" / "fixtures", REPO.parent / "shared" / "fixtures"):
        if (base / "coco").is_dir():
            return base
    raise SystemExit("fixtures not found: pass --fixtures DIR")


def pick_images(instances: dict, image_dir: Path) -> list[int]:
    size = {img["id"]: (image_dir / img["file_name"]).stat().st_size for img in instances["images"]}
    cats: dict[int, set[int]] = {iid: set() for iid in size}
    crowd: set[int] = set()
    for ann in instances["annotations"]:
        cats[ann["image_id"]].add(ann["category_id"])
        if ann["iscrowd"]:
            crowd.add(ann["image_id"])
    chosen = sorted(crowd, key=lambda i: (size[i], i))[:N_CROWD]
    covered = set().union(*(cats[i] for i in chosen))
    pool = sorted(i for i in size if size[i] <= MAX_BYTES and i not in chosen)
    while len(chosen) < N_IMAGES:
        best = max(pool, key=lambda i: (len(cats[i] - covered), -size[i], -i))
        chosen.append(best)
        covered |= cats[best]
        pool.remove(best)
    return sorted(chosen)


def subset(data: dict, keep: set[int]) -> dict:
    out = {k: v for k, v in data.items() if k not in ("images", "annotations")}
    out["images"] = [img for img in data["images"] if img["id"] in keep]
    out["annotations"] = [ann for ann in data["annotations"] if ann["image_id"] in keep]
    # the official key order: info, licenses, images, annotations[, categories]
    order = ["info", "licenses", "images", "annotations", "categories"]
    return {k: out[k] for k in order if k in out}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fixtures", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=REPO / "sample_data" / "coco")
    args = parser.parse_args()
    coco = (args.fixtures or default_fixtures()) / "coco"
    instances = json.loads((coco / "annotations" / "instances_val2017.json").read_text())
    captions = json.loads((coco / "annotations" / "captions_val2017.json").read_text())
    keep = set(pick_images(instances, coco / "val2017"))

    (args.out / "annotations").mkdir(parents=True, exist_ok=True)
    for name, data in (("instances", instances), ("captions", captions)):
        text = json.dumps(subset(data, keep), ensure_ascii=False)
        (args.out / "annotations" / f"{name}_val2017_sample.json").write_text(text, encoding="utf-8")
    images_out = args.out / "val2017"
    if images_out.exists():
        shutil.rmtree(images_out)
    images_out.mkdir()
    for img in instances["images"]:
        if img["id"] in keep:
            shutil.copyfile(coco / "val2017" / img["file_name"], images_out / img["file_name"])
    print(f"{len(keep)} images: {sorted(keep)} -> {args.out}")


if __name__ == "__main__":
    main()
