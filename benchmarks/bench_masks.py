"""SAM backend speed with random weights (no download): per-image encoder / prompt decoding / upsampling /
greedy split, images/s, solver overhead over encoder+decoder, and the greedy against a plain pycocotools loop.

    .venv/bin/python benchmarks/bench_masks.py [--model-type vit_b] [--device cpu|cuda] [--dtype fp32|bf16]
        [--grid 32] [--images 2] [--variant sorted]

The ground truth is each COCO fixture annotation of the image (so objects are real shapes); with random
weights the candidates are not meaningful masks, but their cost is SAM's.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def shared() -> Path:
    for s in (REPO / "shared", REPO.parent / "shared"):
        if (s / "fixtures").is_dir():
            return s
    raise SystemExit("shared fixtures not found")


def naive_sorted_greedy(cand_rles: list, gt_rle: dict, tau: float) -> list[int]:  # type: ignore[type-arg]
    """The straightforward reference: pycocotools iou to sort, then merge + iou per candidate."""
    from pycocotools import mask as mu

    ious = mu.iou(cand_rles, [gt_rle], [0])[:, 0]
    order = sorted((k for k in range(len(cand_rles)) if ious[k] > 0), key=lambda k: (-ious[k], k))
    chosen: list[int] = []
    union, best = None, 0.0
    for k in order:
        if best >= tau:
            break
        trial = cand_rles[k] if union is None else mu.merge([union, cand_rles[k]])
        iou = float(mu.iou([trial], [gt_rle], [0])[0, 0])
        if iou > best:
            union, best = trial, iou
            chosen.append(k)
    return chosen


def main() -> None:
    import torch
    from pycocotools import mask as mu
    from segment_anything import sam_model_registry

    from gtok_cli.geometry.sam import SamCandidateMaker
    from gtok_cli.images import open_image_rgb
    from gtok_cli.masks import region_mask_to_bool
    from gtok_cli.masks.solver import MaskSolverConfig, solve_objects

    ap = argparse.ArgumentParser()
    ap.add_argument("--model-type", default="vit_b", choices=["vit_b", "vit_l", "vit_h"])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"])
    ap.add_argument("--grid", type=int, default=32)
    ap.add_argument("--images", type=int, default=2)
    ap.add_argument("--variant", default="sorted", choices=["sorted", "best-gain"])
    ap.add_argument("--tau", type=float, default=0.9)
    ap.add_argument("--no-naive", action="store_true", help="skip the pycocotools reference loop")
    args = ap.parse_args()

    torch.manual_seed(0)
    model = sam_model_registry[args.model_type]().to(args.device).eval()
    maker = SamCandidateMaker(model, grid=args.grid, dtype=args.dtype)
    cfg = MaskSolverConfig(
        backend="sam", grid=args.grid, tau=args.tau, variant=args.variant, device=args.device
    )
    d = json.loads((shared() / "fixtures/coco/annotations/instances_val2017.json").read_text())
    anns = defaultdict(list)
    for a in d["annotations"]:
        anns[a["image_id"]].append(a)
    ims = sorted((im for im in d["images"] if len(anns[im["id"]]) >= 4), key=lambda im: im["id"])[
        : args.images
    ]
    dev = (
        "GPU " + torch.cuda.get_device_name()
        if args.device.startswith("cuda")
        else f"CPU ({torch.get_num_threads()} threads)"
    )
    print(
        f"SAM {args.model_type} random weights, {args.dtype}, grid {args.grid} ({args.grid**2} prompts), "
        f"device: {dev}"
    )

    # warm-up (first-call allocations) on a small image, not counted
    maker.candidates([np.zeros((64, 64, 3), dtype=np.uint8)])
    maker.timings.__init__()  # type: ignore[misc]
    rows = []
    t_greedy_total, t_wall_total, objects = 0.0, 0.0, 0
    for im in ims:
        image = np.asarray(open_image_rgb(shared() / "fixtures/coco/val2017" / im["file_name"]))
        gts = [region_mask_to_bool(a["segmentation"], im["width"], im["height"]) for a in anns[im["id"]]]
        before = (maker.timings.encoder, maker.timings.decoder, maker.timings.upsample)
        t0 = time.perf_counter()
        cands = maker.candidates([image])[0]
        t1 = time.perf_counter()
        results = solve_objects(gts, cands, cfg)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        t2 = time.perf_counter()
        enc, dec, up = (
            a - b
            for a, b in zip(
                (maker.timings.encoder, maker.timings.decoder, maker.timings.upsample), before, strict=True
            )
        )
        rows.append((im["file_name"], len(gts), enc, dec, up, t2 - t1, t2 - t0))
        t_greedy_total += t2 - t1
        t_wall_total += t2 - t0
        objects += len(gts)
        last = (cands, gts, results)
    print(
        f"{'image':>18} {'objs':>4} | {'encoder':>8} {'decode':>8} {'upsample':>8} {'greedy':>8} | "
        f"{'total':>7} | rest/(enc+dec)"
    )
    for name, n_obj, enc, dec, up, gr, tot in rows:
        print(
            f"{name:>18} {n_obj:>4} | {enc:8.3f} {dec:8.3f} {up:8.3f} {gr:8.3f} | {tot:7.3f} | "
            f"{(tot - enc - dec) / (enc + dec):6.1%}"
        )
    enc = sum(r[2] for r in rows)
    dec = sum(r[3] for r in rows)
    print(
        f"images/s: {len(rows) / t_wall_total:.3f}; "
        f"whole solver / (encoder + decoder) = {t_wall_total / (enc + dec):.3f}"
    )

    if args.no_naive:
        return
    cands, gts, results = last
    packed = cands.packed
    t0 = time.perf_counter()
    from gtok_cli.masks.greedy import greedy_numpy

    fresh = greedy_numpy(packed, gts, tau=args.tau, variant="sorted")  # includes per-image candidate stats
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    dense = np.stack([cands.mask(k) for k in range(len(cands))])
    cand_rles = mu.encode(np.asfortranarray(dense.transpose(1, 2, 0).astype(np.uint8)))
    t_encode = time.perf_counter() - t0
    gt_rles = [mu.encode(np.asfortranarray(g.astype(np.uint8))) for g in gts]
    t0 = time.perf_counter()
    naive = [naive_sorted_greedy(cand_rles, g, args.tau) for g in gt_rles]
    t_naive = time.perf_counter() - t0
    same = sum(sorted(n) == sorted(r.indices) for n, r in zip(naive, fresh, strict=True))
    print(
        f"greedy (sorted, {len(gts)} objects, last image): bit-packed numpy {t_ours * 1e3:.1f} ms "
        f"vs pycocotools "
        f"merge+iou loop {t_naive * 1e3:.1f} ms (+{t_encode * 1e3:.0f} ms to RLE-encode the candidates) -> "
        f"{t_naive / t_ours:.1f}x ({(t_naive + t_encode) / t_ours:.1f}x with encoding); "
        f"same anchors for {same}/{len(gts)}"
    )


if __name__ == "__main__":
    main()
