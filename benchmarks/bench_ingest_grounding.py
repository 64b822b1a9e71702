"""Benchmark: `gtok ingest mdetr` and `gtok ingest grit` against loading the same file whole.

Writes (once, reused if present) synthetic inputs shaped like the real ones:

- an MDETR ``final_flickr_separateGT_train.json``: 148,915 captions (one ``images`` entry each, sizes as
  strings), 4 boxes per caption with ``tokens_positive`` spans; baseline ``json.load`` of the file;
- a GRIT ``coyo_N_snappy.parquet`` of 200,000 rows (a real shard holds ~1M) with 3 noun chunks and 3
  referring expressions a row; baseline ``pyarrow.parquet.read_table(file).to_pylist()``.

Each run is a fresh subprocess; prints wall time, CPU time and peak RSS (``bench_ingest.measure``) and the
ratios gtok / baseline. ``--scale`` multiplies both sizes.

    python benchmarks/bench_ingest_grounding.py [--scale 0.1] [--repeat 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import orjson
from bench_ingest import measure

WORK = Path(__file__).resolve().parent / "_work"
FLICKR_CAPTIONS = 148_915
GRIT_ROWS = 200_000
WORDS = ["a", "man", "woman", "dog", "red", "shirt", "on", "the", "street", "with", "ball", "near", "tree"]


def _caption(rng: np.random.Generator, n: int) -> tuple[str, list[list[int]]]:
    """A caption of ``n`` three-word phrases joined by "and"; the phrases' spans."""
    text, spans = "", []
    for k in range(n):
        phrase = " ".join(WORDS[i] for i in rng.integers(0, len(WORDS), 3))
        if k:
            text += " and "
        spans.append([len(text), len(text) + len(phrase)])
        text += phrase
    return text + " .", spans


def write_mdetr(path: Path, captions: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    images, anns = [], []
    for n in range(captions):
        w, h = 500, int(rng.integers(300, 500))
        text, spans = _caption(rng, 4)
        images.append(
            {
                "file_name": f"{1000000 + n // 5}.jpg", "height": str(h), "width": str(w), "id": n,
                "caption": text, "dataset_name": "flickr", "tokens_negative": [[0, len(text)]],
                "sentence_id": n % 5, "original_img_id": 1000000 + n // 5,
                "tokens_positive_eval": [[s] for s in spans],
            }
        )  # fmt: skip
        for span in spans:
            x, y = float(rng.integers(1, w - 60)), float(rng.integers(1, h - 60))
            bw, bh = float(rng.integers(10, 59)), float(rng.integers(10, 59))
            anns.append(
                {
                    "area": bw * bh, "iscrowd": 0, "image_id": n, "category_id": 1, "id": len(anns),
                    "bbox": [x, y, bw, bh], "tokens_positive": [span],
                }
            )  # fmt: skip
    doc = {"info": [], "licenses": [], "images": images, "annotations": anns,
           "categories": [{"supercategory": "object", "id": 1, "name": "object"}]}  # fmt: skip
    path.write_bytes(orjson.dumps(doc))


def write_grit(path: Path, rows: int, seed: int = 0) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    out = []
    for n in range(rows):
        text, spans = _caption(rng, 3)
        items = []
        for start, end in spans:
            x1, y1 = rng.uniform(0, 0.5, 2)
            x2, y2 = x1 + rng.uniform(0.1, 0.5), y1 + rng.uniform(0.1, 0.5)
            items.append([float(start), float(end), x1, y1, x2, y2, float(rng.uniform(0.3, 1.0))])
        out.append(
            {
                "key": f"{n:09d}", "clip_similarity_vitb32": 0.3, "clip_similarity_vitl14": 0.3, "id": n,
                "url": f"https://example.invalid/{n}.jpg", "caption": text, "width": 1024, "height": 768,
                "noun_chunks": items, "ref_exps": items,
            }
        )  # fmt: skip
    pq.write_table(pa.Table.from_pylist(out), path, row_group_size=10_000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the default sizes")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each (best wall, its CPU and RSS)")
    args = parser.parse_args()
    WORK.mkdir(exist_ok=True)
    mdetr = WORK / f"final_flickr_separateGT_train_synth_{args.scale:g}.json"
    grit = WORK / f"coyo_synth_{args.scale:g}_snappy.parquet"
    for path, write, n in (
        (mdetr, write_mdetr, round(FLICKR_CAPTIONS * args.scale)),
        (grit, write_grit, round(GRIT_ROWS * args.scale)),
    ):
        if not path.exists():
            t0 = time.perf_counter()
            write(path, max(1, n))
            mib, took = path.stat().st_size / 2**20, time.perf_counter() - t0
            print(f"wrote {path.name} ({mib:.0f} MiB) in {took:.1f} s")
    out = WORK / "grounding_records.jsonl"
    py = sys.executable
    load_json = "import json, sys; print(len(json.load(open(sys.argv[1]))['annotations']), 'annotations')"
    load_parquet = (
        "import sys, pyarrow.parquet as pq; print(len(pq.read_table(sys.argv[1]).to_pylist()), 'rows')"
    )
    pairs = {
        "mdetr": (
            ("json.load", [py, "-c", load_json, str(mdetr)]),
            ("gtok ingest mdetr", [py, "-m", "gtok_cli", "ingest", "mdetr", "--annotations", str(mdetr),
                                   "--out", str(out)]),
        ),
        "grit": (
            ("read_table().to_pylist()",
             [py, "-c", load_parquet, str(grit)]),
            ("gtok ingest grit", [py, "-m", "gtok_cli", "ingest", "grit", "--parquet", str(grit),
                                  "--out", str(out)]),
        ),
    }  # fmt: skip
    print(f"python {sys.version.split()[0]}; {os.cpu_count()} CPUs")
    for source, runs in pairs.items():
        best: dict[str, tuple[float, float, float]] = {}
        for _ in range(args.repeat):
            for name, cmd in runs:
                wall, cpu, rss, _, tail = measure(cmd)
                print(f"  {name:<26} wall {wall:7.2f} s  CPU {cpu:7.2f} s  peak RSS {rss:7.0f} MiB  | {tail}")
                if name not in best or wall < best[name][0]:
                    best[name] = (wall, cpu, rss)
        (base, (bw, _, brss)), (ours, (w, _, rss)) = ((n, best[n]) for n, _ in runs)
        ratios = f"time {w / bw:.2f}x, peak RSS {rss / brss:.2f}x"
        print(f"{source}: {ours} / {base}: {ratios} (best of {args.repeat})")
    out.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
