"""`gtok export --task count` and `--task relation` against `--task detect` on the same synthetic COCO-like
records (baseline: detect, one line per image): count without negatives, with ``--negatives 0.5`` (the
category table read first: one more pass over the records), and that pass alone; relation (21 pairs per image,
each box encoded and decoded to check the verdict holds on the tokens), and relation with ``--phrases`` naming
one object in seven by a referring expression (the phrases file is written beside the records).

Records: N images 640×480, 7 boxes each from 80 categories (seeded), like COCO's ~7.3 annotations per image.
Each run is a fresh export in-process (``gtok_cli.export.run.export``, ``--workers`` automatic); wall time is
the best of ``--repeat``.

Run: .venv/bin/python benchmarks/bench_tasks.py [--n 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from gtok_cli.codecs import get_codec
from gtok_cli.export.count_task import category_table
from gtok_cli.export.options import ExportOptions
from gtok_cli.export.run import export


def records(n: int, path: Path) -> None:
    rng = random.Random(0)
    with open(path, "wb") as fh:
        for k in range(n):
            regions = []
            for a in range(7):
                x, y = rng.uniform(0, 500), rng.uniform(0, 380)
                cid = rng.randrange(1, 81)
                regions.append(
                    {"bbox": [x, y, x + rng.uniform(10, 140), y + rng.uniform(10, 100)], "mask": None,
                     "label": f"category {cid}", "category_id": cid, "iscrowd": False, "ann_id": 7 * k + a,
                     "phrase": None, "span": None}
                )  # fmt: skip
            rec: dict[str, Any] = {
                "id": f"coco:train:{k}:instances", "dataset": "coco", "split": "train", "task": "instances",
                "text": None, "image": {"file": f"{k}.jpg", "width": 640, "height": 480, "id": k},
                "regions": regions, "source": {"image_id": k},
            }  # fmt: skip
            fh.write(orjson.dumps(rec) + b"\n")


def phrases(n: int, path: Path) -> None:
    """A referring record for the first object of every image (RefCOCO's share: ~1 object in 7)."""
    with open(path, "wb") as fh:
        for k in range(n):
            rec = {"id": f"refcoco:{k}", "task": "referring", "text": f"the object {k} on the left",
                   "image": {"id": k}, "regions": [{"ann_id": 7 * k}]}  # fmt: skip
            fh.write(orjson.dumps(rec) + b"\n")


def best(repeat: int, run: Callable[[], Any]) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = run()
        times.append(time.perf_counter() - t)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-count-"))
    try:
        src = tmp / "records.jsonl"
        records(args.n, src)
        refs = tmp / "refs.jsonl"
        phrases(args.n, refs)
        scheme = get_codec("qwen2.5-vl").describe()
        runs: list[tuple[str, str, dict[str, Any]]] = [
            ("detect (baseline)", "detect", {}),
            ("count", "count", {}),
            ("count --negatives 0.5", "count", {"negatives": 0.5}),
            ("relation", "relation", {}),
            ("relation --phrases", "relation", {"phrases": str(refs)}),
        ]
        base = None
        print(f"{args.n} records, {src.stat().st_size / 1e6:.1f} MB, best of {args.repeat}")
        for name, task, extra in runs:

            def run(task: str = task, extra: dict[str, Any] = extra) -> dict[str, Any]:
                out = tmp / "out"
                shutil.rmtree(out, ignore_errors=True)
                opts = ExportOptions((str(src),), scheme, task, "llava", str(out), **extra)
                return export(opts)

            secs, m = best(args.repeat, run)
            base = base or secs
            c = m["counts"]
            print(
                f"  {name:<24} {secs:7.2f} s  {c['written']:>8} lines  {c['written'] / secs:>9.0f} lines/s"
                f"  x{secs / base:.2f} of detect"
            )
        secs, table = best(args.repeat, lambda: category_table([str(src)]))
        name = "category table pass"
        print(f"  {name:<24} {secs:7.2f} s  {len(table)} categories  x{secs / base:.2f} of detect")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
