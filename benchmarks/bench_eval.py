"""`gtok eval` throughput on REC predictions, against a per-line Python loop.

    .venv/bin/python benchmarks/bench_eval.py [--n 1000000] [--scheme qwen3-vl] [--repeat 2]

Builds (once, kept in benchmarks/_work/) N synthetic referring records (bench_export's generator), their
``rec`` export (llava, meta on) and a predictions file: per line the export's own answer re-encoded from a
jittered box (so IoUs spread over 0..1), 1 % of them wrapped in a ```json fence, 0.5 % cut off mid-span and
0.5 % garbage, in shuffled order. Then times, alternating, best of ``--repeat``:

- gtok: ``gtok_cli.eval.evaluate(predictions, export)``, the whole library call (read both files, match ids,
  lenient decode, IoU, metrics, per-dataset/split breakdown);
- baseline: a plain per-line loop doing the same job: ``json.loads`` of every export line into an id → truth
  dict, then per prediction ``json.loads``, ``codec.decode`` (the fence stripped by hand), the first box and
  its IoU in Python, the metrics summed as it goes.

Prints every run, predictions/s and the ratio; the two must agree on acc@0.5 and miou (checked).
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson

sys.path.insert(0, str(Path(__file__).parent))
from bench_export import WORK, make_records

from gtok_cli.codecs import get_codec


def make_export(records: Path, scheme: str, n: int) -> Path:
    out = WORK / f"eval-export-{scheme}-{n}"
    if (out / "manifest.json").exists():
        return out
    cmd = [sys.executable, "-m", "gtok_cli", "export", str(records), "--scheme", scheme, "--task", "rec"]
    subprocess.run([*cmd, "--format", "llava", "--out", str(out)], check=True)
    return out


def make_predictions(export: Path, scheme: str, n: int) -> Path:
    path = WORK / f"eval-preds-{scheme}-{n}.jsonl"
    if path.exists():
        return path
    from gtok_cli.eval import open_export

    index = open_export(export)
    codec = get_codec(scheme)
    rng = np.random.default_rng(0)
    boxes = index.one_box.copy()
    w, h = index.sizes[:, 0].astype(float), index.sizes[:, 1].astype(float)
    bw, bh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    jitter = rng.normal(0, 0.15, size=(len(boxes), 4)) * np.stack([bw, bh, bw, bh], axis=1)
    moved = boxes + jitter
    moved[:, [0, 2]] = np.clip(moved[:, [0, 2]], 0, w[:, None])
    moved[:, [1, 3]] = np.clip(moved[:, [1, 3]], 0, h[:, None])
    moved[:, 2] = np.maximum(moved[:, 2], moved[:, 0])
    moved[:, 3] = np.maximum(moved[:, 3], moved[:, 1])
    texts = codec.encode_boxes(moved, index.sizes)
    u = rng.random(len(texts))
    for k in np.flatnonzero(u < 0.01).tolist():
        texts[k] = "```json\n" + texts[k] + "\n```"
    for k in np.flatnonzero((u >= 0.01) & (u < 0.015)).tolist():
        texts[k] = texts[k][: len(texts[k]) * 2 // 3]
    for k in np.flatnonzero((u >= 0.015) & (u < 0.02)).tolist():
        texts[k] = "I cannot see that."
    order = list(range(len(texts)))
    random.Random(0).shuffle(order)
    with open(path, "wb") as fh:
        fh.write(b"".join(orjson.dumps({"id": index.ids[k], "text": texts[k]}) + b"\n" for k in order))
    return path


def run_gtok(preds: Path, export: Path) -> dict[str, Any]:
    from gtok_cli.eval import evaluate

    report = evaluate(str(preds), export)
    return dict(report.metrics)


def run_baseline(preds: Path, export: Path, scheme: str) -> dict[str, Any]:
    """The obvious per-line loop."""
    codec = get_codec(scheme)
    truth: dict[str, tuple[tuple[int, int], list[float]]] = {}
    for shard in sorted(export.glob("*.jsonl")):
        with open(shard, encoding="utf-8") as fh:
            for line in fh:
                obj = json.loads(line)
                meta = obj["meta"]
                truth[obj["id"]] = (
                    (meta["image_size"][0], meta["image_size"][1]),
                    meta["regions"][0]["bbox"],
                )
    hits = {0.5: 0, 0.75: 0, 0.9: 0}
    total_iou = 0.0
    with open(preds, encoding="utf-8") as fh:
        for line in fh:
            p = json.loads(line)
            size, t = truth[p["id"]]
            text = p["text"]
            if "```" in text:
                text = text.split("```json\n", 1)[-1].split("```", 1)[0]
            boxes = [s for s in codec.decode(text, size).shapes() if s.kind == "box"]
            if not boxes:
                continue
            x1, y1, x2, y2 = boxes[0].coords
            iw = max(0.0, min(x2, t[2]) - max(x1, t[0]))
            ih = max(0.0, min(y2, t[3]) - max(y1, t[1]))
            inter = iw * ih
            union = (x2 - x1) * (y2 - y1) + (t[2] - t[0]) * (t[3] - t[1]) - inter
            iou = inter / union if union > 0 else 0.0
            total_iou += iou
            for th in hits:
                hits[th] += iou >= th
    n = len(truth)
    return {
        "acc@0.5": hits[0.5] / n,
        "acc@0.75": hits[0.75] / n,
        "acc@0.9": hits[0.9] / n,
        "miou": total_iou / n,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--scheme", default="qwen3-vl")
    ap.add_argument("--repeat", type=int, default=2)
    args, _ = ap.parse_known_args()
    records = make_records(args.n)
    export = make_export(records, args.scheme, args.n)
    preds = make_predictions(export, args.scheme, args.n)
    best: dict[str, float] = {}
    results: dict[str, dict[str, Any]] = {}
    for r in range(args.repeat):
        for name, fn in (
            ("gtok", lambda: run_gtok(preds, export)),
            ("baseline", lambda: run_baseline(preds, export, args.scheme)),
        ):
            t0 = time.perf_counter()
            results[name] = fn()
            dt = time.perf_counter() - t0
            best[name] = min(best.get(name, dt), dt)
            print(f"run {r + 1} {name:8s} {dt:7.2f} s  {args.n / dt:12,.0f} predictions/s", flush=True)
    g, b = results["gtok"], results["baseline"]
    for key in ("acc@0.5", "miou"):
        assert abs(g[key] - b[key]) < 1e-9, (key, g[key], b[key])
    print(f"metrics: {json.dumps(g)}")
    gt, bt = best["gtok"], best["baseline"]
    print(f"best: gtok {gt:.2f} s ({args.n / gt:,.0f}/s), baseline {bt:.2f} s ({args.n / bt:,.0f}/s)")
    print(f"ratio: {bt / gt:.1f}x")


if __name__ == "__main__":
    main()
