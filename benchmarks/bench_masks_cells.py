"""Cells backend on the genuine COCO fixture masks: IoU distribution and tokens per mask at n = 16, 32, 64.

    .venv/bin/python benchmarks/bench_masks_cells.py [--tau 0.9] [--grids 16 32 64]

(The GETok paper reports 8.7 tokens per mask at 32x32 with SAM candidates; cells are a weights-free
reference, so expect more tokens and lower IoU on small or thin objects.)
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from gtok_cli.masks import cell_candidates, greedy_numpy, region_mask_to_bool

REPO = Path(__file__).resolve().parents[1]


def coco_path() -> Path:
    for shared in (REPO / "shared", REPO.parent / "shared"):
        p = shared / "fixtures/coco/annotations/instances_val2017.json"
        if p.is_file():
            return p
    raise SystemExit("COCO fixture not found under <repo>/shared or <repo>/../shared")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tau", type=float, default=0.9)
    ap.add_argument("--grids", type=int, nargs="+", default=[16, 32, 64])
    args = ap.parse_args()
    d = json.loads(coco_path().read_text())
    images = {im["id"]: im for im in d["images"]}
    by_image: dict[int, list[np.ndarray]] = defaultdict(list)
    for a in d["annotations"]:
        im = images[a["image_id"]]
        by_image[a["image_id"]].append(region_mask_to_bool(a["segmentation"], im["width"], im["height"]))
    n_masks = sum(len(v) for v in by_image.values())
    print(
        f"COCO fixture: {len(by_image)} images, {n_masks} masks; tau = {args.tau}; machine: CPU, numpy greedy"
    )
    head = f"{'grid':>5} {'variant':>9} | {'IoU mean':>8} {'median':>7} {'p10':>6} | "
    head += f"{'tok mean':>8} {'median':>6} | "
    print(head + f"{'>=tau':>6} | {'s':>6}")
    for n in args.grids:
        for variant in ("sorted", "best-gain"):
            ious, toks = [], []
            t0 = time.perf_counter()
            for image_id, gts in by_image.items():
                im = images[image_id]
                cands = cell_candidates(n, im["width"], im["height"])
                for r in greedy_numpy(cands.packed, gts, tau=args.tau, variant=variant, stats=cands.stats):
                    ious.append(r.iou)
                    toks.append(len(r.indices))
            dt = time.perf_counter() - t0
            iou, tok = np.array(ious), np.array(toks)
            print(
                f"{n:>5} {variant:>9} | {iou.mean():8.3f} {np.median(iou):7.3f} "
                f"{np.percentile(iou, 10):6.3f} | "
                f"{tok.mean():8.1f} {np.median(tok):6.0f} | {(iou >= args.tau).mean():6.1%} | {dt:6.1f}"
            )


if __name__ == "__main__":
    main()
