"""Benchmark: `gtok ingest vg --regions` against `json.load` of the same region_descriptions.json.

Writes (once, reused if present) synthetic Visual Genome files shaped like v1.2: image_data.json (108,077
images) and region_descriptions.json (~5.4M regions, ~50 per image, phrases of a few words, integer boxes,
``json.dump``'s ", " / ": " separators as the published file has). Then runs, each in a fresh
subprocess, ``json.load`` of the regions file, and gtok ingesting it (every referring record written to a
file), and prints wall time, CPU time and peak RSS (``os.wait4`` rusage) with the ratios gtok / json.load.
gtok streams the array (gtok_cli/ingest/json_stream.py), so its peak memory stays flat as the file grows;
json.load holds it all.

    python benchmarks/bench_ingest_vg.py [--scale 0.1] [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

WORK = Path(__file__).resolve().parent / "_work"
FULL_IMAGES = 108_077
FULL_REGIONS = 5_408_689
WORDS = (
    "man",
    "wearing",
    "a",
    "red",
    "shirt",
    "white",
    "clouds",
    "in",
    "blue",
    "sky",
    "the",
    "green",
    "tree",
    "window",
    "on",
    "building",
    "black",
    "car",
    "parked",
    "street",
    "sign",
    "with",
    "letters",
)


def write_files(folder: Path, scale: float, seed: int = 0) -> tuple[Path, Path]:
    images_path, regions_path = folder / "image_data.json", folder / "region_descriptions.json"
    if images_path.exists() and regions_path.exists():
        return images_path, regions_path
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n_images = max(1, round(FULL_IMAGES * scale))
    n_regions = max(1, round(FULL_REGIONS * scale))
    sizes = rng.choice([(800, 600), (500, 333), (800, 533), (600, 800)], n_images)
    images = [
        {
            "width": int(w),
            "url": f"https://cs.stanford.edu/people/rak248/VG_100K/{k + 1}.jpg",
            "height": int(h),
            "image_id": k + 1,
            "coco_id": None,
            "flickr_id": None,
        }
        for k, (w, h) in enumerate(sizes.tolist())
    ]
    images_path.write_text(json.dumps(images))
    per_image = np.bincount(rng.integers(0, n_images, n_regions), minlength=n_images)
    tmp = regions_path.with_suffix(".tmp")
    rid = 0
    with open(tmp, "w") as fh:
        fh.write("[")
        for k in range(n_images):
            w, h = sizes[k]
            n = int(per_image[k])
            xs = rng.integers(0, w - 10, n)
            ys = rng.integers(0, h - 10, n)
            ws = (rng.random(n) * (w - xs - 1)).astype(int) + 1
            hs = (rng.random(n) * (h - ys - 1)).astype(int) + 1
            lens = rng.integers(2, 7, n)
            regions = []
            for j in range(n):
                rid += 1
                phrase = " ".join(WORDS[i] for i in rng.integers(0, len(WORDS), int(lens[j])))
                regions.append(
                    {
                        "region_id": rid,
                        "width": int(ws[j]),
                        "height": int(hs[j]),
                        "image_id": k + 1,
                        "phrase": phrase,
                        "y": int(ys[j]),
                        "x": int(xs[j]),
                    }
                )
            fh.write((", " if k else "") + json.dumps({"regions": regions, "id": k + 1}))
        fh.write("]")
    tmp.replace(regions_path)
    return images_path, regions_path


def run(argv: list[str]) -> tuple[float, float, float, int]:
    """(wall s, cpu s, peak RSS MiB, exit code) of a subprocess."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if proc.stderr is not None:
        err = proc.stderr.read().decode()
        if status:
            print(err, file=sys.stderr)
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of VG's size (1.0: 5.4M regions)")
    parser.add_argument("--repeat", type=int, default=1)
    args, _ = parser.parse_known_args()  # run_all.py passes every benchmark's flags
    folder = WORK / f"vg_{args.scale:g}"
    t0 = time.perf_counter()
    images, regions = write_files(folder, args.scale)
    print(
        f"input: {regions} ({regions.stat().st_size / 2**20:.0f} MiB), written/reused in "
        f"{time.perf_counter() - t0:.1f} s"
    )
    load = [sys.executable, "-c", f"import json; d = json.load(open({str(regions)!r})); print(len(d))"]
    out = folder / "vg_records.jsonl"
    env_python = [sys.executable, "-m", "gtok_cli"]
    ingest = [
        *env_python,
        "ingest",
        "vg",
        "--image-data",
        str(images),
        "--regions",
        str(regions),
        "--out",
        str(out),
    ]
    results: dict[str, list[tuple[float, float, float, int]]] = {"json.load": [], "gtok ingest vg": []}
    for _ in range(args.repeat):
        for name, argv in (("json.load", load), ("gtok ingest vg", ingest)):
            res = run(argv)
            results[name].append(res)
            print(
                f"{name:16s} wall {res[0]:7.1f} s  cpu {res[1]:7.1f} s  "
                f"peak RSS {res[2]:8.0f} MiB  rc {res[3]}"
            )
        out.unlink(missing_ok=True)
    base = min(results["json.load"])
    ours = min(results["gtok ingest vg"])
    print(
        f"ratio gtok / json.load: wall {ours[0] / base[0]:.2f}x, peak RSS {ours[2] / base[2]:.2f}x "
        f"(gtok also checks and writes every record)"
    )
    return 0 if all(r[3] == 0 for rs in results.values() for r in rs) else 1


if __name__ == "__main__":
    sys.exit(main())
