"""Propose-and-refine on genuine COCO masks and boxes: classes, IoU before/after, tokens, 32+offset vs 64.

Data: sample_data/coco/ when it holds an instances JSON, else the COCO fixture
(/work/shared/fixtures/coco/annotations/instances_val2017.json; 79 images, 624 annotations). Masks are
rasterised with gtok_cli.geometry.rasterize (pycocotools) and tokenised with the cells backend + sorted greedy
(gtok_cli.masks, tau 0.9, grid 32). Crowd annotations are skipped.

Masks: simulated proposals (seed 0), one to three refinement turns; IoU = cell-union mask of the anchors vs
the GT mask (each anchor covers one grid cell centred on its position). Boxes: (a) 32-grid corner encoding
decoded at cell centres, (b) (a) + one refinement turn, (c) 64-grid encoding; plus simulated box proposals.

Run: .venv/bin/python benchmarks/bench_refine.py [--limit N] [--turns K]
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

import numpy as np

from gtok_cli.geometry.cells import cell_candidates
from gtok_cli.geometry.rasterize import region_mask_to_bool
from gtok_cli.masks.greedy import greedy_numpy
from gtok_cli.refine import (
    OffsetLattice,
    cell_union_mask,
    make_refinement,
    refine_chain,
    rng_for,
    truth_anchors,
)

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = Path("/work/shared/fixtures/coco/annotations/instances_val2017.json")


def find_instances() -> Path:
    sample = sorted((ROOT / "sample_data" / "coco").glob("**/instances*.json"))
    return sample[0] if sample else FIXTURE


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    u = np.count_nonzero(a | b)
    return np.count_nonzero(a & b) / u if u else 1.0


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise IoU of N×4 xyxy boxes."""
    iw = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    ih = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    inter = iw * ih
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    return inter / np.maximum(area(a) + area(b) - inter, 1e-12)


def grid_decode(boxes: np.ndarray, sizes: np.ndarray, n: int) -> np.ndarray:
    """Corner-rule encoding at grid n, decoded at cell centres (pixels)."""
    out = np.zeros_like(boxes)
    for k, (b, (w, h)) in enumerate(zip(boxes, sizes, strict=True)):
        a = truth_anchors("box", b, (int(w), int(h)), n)
        out[k] = ((a + 0.5) / n * np.array([w, h])).ravel()
    return out


def one_turn(boxes: np.ndarray, sizes: np.ndarray, lat: OffsetLattice) -> np.ndarray:
    out = np.zeros_like(boxes)
    for k, (b, (w, h)) in enumerate(zip(boxes, sizes, strict=True)):
        size = (int(w), int(h))
        chain = refine_chain("box", truth_anchors("box", b, size, lat.grid), size, lat, 1, coords=list(b))
        out[k] = lat.to_pixels(chain.turns[0].positions, size).ravel()
    return out


def report_boxes(name: str, got: np.ndarray, boxes: np.ndarray, sizes: np.ndarray) -> None:
    err = np.abs(got - boxes)
    norm = err / np.tile(sizes, 2)
    iou = box_iou(got, boxes)
    print(
        f"  {name:<28} corner err px mean {err.mean():6.2f} max {err.max():6.2f} | "
        f"normalised mean {norm.mean():.5f} max {norm.max():.5f} | IoU mean {iou.mean():.4f} "
        f"min {iou.min():.4f} | IoU≥0.9 {np.mean(iou >= 0.9):.3f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=0, help="at most this many masks (0 = all)")
    ap.add_argument("--turns", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--masks-from", type=Path, default=None, help="instances JSON for masks (default: sample)"
    )
    args = ap.parse_args()

    data = json.loads(FIXTURE.read_text())
    images = {im["id"]: im for im in data["images"]}
    anns = [a for a in data["annotations"] if not a.get("iscrowd")]
    print(f"boxes: {FIXTURE} ({len(anns)} non-crowd annotations, {len(images)} images)")

    # ---- boxes: 32 vs 32 + one turn vs 64 ---------------------------------------------------------------
    boxes = np.array(
        [
            [a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
            for a in anns
        ],
        dtype=np.float64,
    )
    sizes = np.array(
        [[images[a["image_id"]]["width"], images[a["image_id"]]["height"]] for a in anns], dtype=np.float64
    )
    lat = OffsetLattice(32, 2)
    print(f"\nBOXES ({len(boxes)} COCO boxes): is 32×32 + one offset turn as precise as 64×64?")
    report_boxes("(a) grid 32", grid_decode(boxes, sizes, 32), boxes, sizes)
    t0 = time.perf_counter()
    refined = one_turn(boxes, sizes, lat)
    dt = time.perf_counter() - t0
    report_boxes("(b) grid 32 + 1 turn", refined, boxes, sizes)
    report_boxes("(c) grid 64", grid_decode(boxes, sizes, 64), boxes, sizes)
    report_boxes("    grid 128 (reference)", grid_decode(boxes, sizes, 128), boxes, sizes)
    print(f"  (b) targets + apply: {dt / len(boxes) * 1e6:.0f} µs per box")

    # simulated box proposals and K turns
    errs: dict[int, list[float]] = {}
    ious: dict[int, list[float]] = {}
    deleted = 0
    for k, a in enumerate(anns):
        size = (int(sizes[k, 0]), int(sizes[k, 1]))
        r = make_refinement(
            "box", size, lat, rng_for(args.seed, str(a["id"])), args.turns, coords=list(boxes[k])
        )
        if not len(r.turns[0].positions):
            deleted += 1
            continue
        for t in range(args.turns + 1):
            p = lat.to_pixels(r.positions(t, lat), size).reshape(1, 4)
            errs.setdefault(t, []).append(float(np.abs(p - boxes[k]).mean()))
            ious.setdefault(t, []).append(float(box_iou(p, boxes[k : k + 1])[0]))
    print(f"  simulated box proposals (seed {args.seed}): {deleted} deleted (a corner > 3 cells off)")
    for t in sorted(errs):
        print(
            f"    after {t} turn(s): corner err mean {np.mean(errs[t]):6.2f} px, "
            f"IoU mean {np.mean(ious[t]):.4f}"
        )

    # ---- masks ------------------------------------------------------------------------------------------
    src = args.masks_from or find_instances()
    data = json.loads(src.read_text())
    images = {im["id"]: im for im in data["images"]}
    anns = [a for a in data["annotations"] if not a.get("iscrowd")]
    print(f"\nmasks: {src} ({len(anns)} non-crowd annotations, {len(images)} images)")
    by_image: dict[int, list[dict]] = {}
    for a in anns:
        by_image.setdefault(a["image_id"], []).append(a)
    classes: Counter[str] = Counter()
    iou_solver: list[float] = []
    iou_turn: dict[int, list[float]] = {}
    tok_solver: list[int] = []
    tok_prop: list[int] = []
    n_done = 0
    t_refine = 0.0
    t_solve = 0.0
    for image_id, group in by_image.items():
        im = images[image_id]
        w, h = im["width"], im["height"]
        t0 = time.perf_counter()
        cands = cell_candidates(32, w, h)
        gts = [region_mask_to_bool(a["segmentation"], w, h) for a in group]
        solved = greedy_numpy(cands.packed, gts, tau=0.9)
        t_solve += time.perf_counter() - t0
        for a, gt, res in zip(group, gts, solved, strict=True):
            if args.limit and n_done >= args.limit:
                break
            anchors = res.anchors(32)
            if not anchors:
                continue
            t0 = time.perf_counter()
            r = make_refinement(
                "mask",
                (w, h),
                lat,
                rng_for(args.seed, str(a["id"])),
                args.turns,
                mask=gt,
                mask_anchors=anchors,
            )
            t_refine += time.perf_counter() - t0
            classes.update(c.value for c in (r.turns[0].classes or []))
            iou_solver.append(res.iou)
            for t in range(args.turns + 1):
                iou_turn.setdefault(t, []).append(
                    mask_iou(cell_union_mask(r.positions(t, lat), (w, h), lat), gt)
                )
            tok_solver.append(len(anchors))
            tok_prop.append(len(r.proposal))
            n_done += 1
    total = sum(classes.values())
    print(f"\nMASKS ({n_done} COCO masks, cells backend, grid 32, tau 0.9, seed {args.seed})")
    print(
        "  class distribution of proposal anchors (turn 1): "
        + ", ".join(f"{c} {classes[c]} ({classes[c] / total:.1%})" for c in ("inside", "ring", "far", "hard"))
    )
    print(
        f"  tokens per mask: solver {np.mean(tok_solver):.1f} grid tokens; "
        f"proposal {np.mean(tok_prop):.1f} grid "
        f"+ {np.mean(tok_prop):.1f} offset tokens per refinement turn"
    )
    print(f"  solver IoU (its cells union; tau 0.9 unreachable for small objects): {np.mean(iou_solver):.4f}")
    for t in sorted(iou_turn):
        label = "proposal" if t == 0 else f"after {t} turn(s)"
        print(f"  cell-union IoU {label:<18} mean {np.mean(iou_turn[t]):.4f}")
    print(
        f"  time: solver {t_solve:.2f} s total; proposal + {args.turns} turns "
        f"{t_refine / max(n_done, 1) * 1e3:.1f} ms/mask"
    )


if __name__ == "__main__":
    main()
