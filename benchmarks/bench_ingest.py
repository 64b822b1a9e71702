"""Benchmark: `gtok ingest coco` against `pycocotools.coco.COCO(file)` on a COCO-train-sized file.

Writes (once, reused if present) a synthetic instances file shaped like instances_train2017.json: 118,287
images, ~860,000 annotations (polygons with COCO-like point counts and 2-decimal coordinates, ~1% crowd RLE
with list counts), 80 categories with COCO's id gaps (ids up to 90). Then runs, each in a fresh subprocess
and each alone, pycocotools loading the file and gtok ingesting it with every record written, and prints wall
time, CPU time (os.wait4 rusage: the process and its reaped children), peak RSS (one process's, and the summed
RSS of the process tree sampled from /proc, since gtok forks a worker) and the ratios against the target
(ingest <= 0.5x load time, peak memory <= pycocotools').

    python benchmarks/bench_ingest.py [--scale 0.1] [--repeat 2] [--keep-output] [--tasks instances,category]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import orjson

WORK = Path(__file__).resolve().parent / "_work"
FULL_IMAGES = 118_287
FULL_ANNOTATIONS = 860_001
CROWD_SHARE = 0.01
# COCO's 80 category ids (1..90 with gaps)
CATEGORY_IDS = [i for i in range(1, 91) if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)]
SIZES = [(640, 480), (640, 427), (480, 640), (640, 424), (500, 375), (427, 640), (640, 512), (612, 612)]


def write_instances(path: Path, scale: float, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    n_images = max(1, round(FULL_IMAGES * scale))
    n_anns = max(1, round(FULL_ANNOTATIONS * scale))
    sizes = [SIZES[k] for k in rng.integers(0, len(SIZES), n_images)]
    image_ids = np.sort(rng.choice(600_000, n_images, replace=False)) + 1
    images = [
        {
            "license": int(rng.integers(1, 9)),
            "file_name": f"{iid:012d}.jpg",
            "coco_url": f"http://images.cocodataset.org/train2017/{iid:012d}.jpg",
            "height": h,
            "width": w,
            "date_captured": "2013-11-14 16:28:13",
            "flickr_url": f"http://farm4.staticflickr.com/1/{iid}_z.jpg",
            "id": int(iid),
        }
        for iid, (w, h) in zip(image_ids.tolist(), sizes, strict=True)
    ]
    owner = rng.integers(0, n_images, n_anns)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as fh:
        fh.write(b'{"info":{"description":"synthetic COCO-train-sized file (gtok benchmark)","year":2017},')
        fh.write(b'"licenses":[{"url":"http://creativecommons.org/licenses/by/2.0/","id":1,"name":"by"}],')
        fh.write(b'"images":' + orjson.dumps(images) + b',"annotations":[')
        chunk = 20_000
        for start in range(0, n_anns, chunk):
            anns = [
                _annotation(rng, images[owner[k]], start + k + 1)
                for k in range(start, min(n_anns, start + chunk))
            ]
            body = orjson.dumps(anns)[1:-1]
            fh.write((b"," if start else b"") + body)
        cats = [{"supercategory": "thing", "id": c, "name": f"category {c}"} for c in CATEGORY_IDS]
        fh.write(b'],"categories":' + orjson.dumps(cats) + b"}")
    tmp.replace(path)


def _annotation(rng: np.random.Generator, image: dict, ann_id: int) -> dict:
    w, h = image["width"], image["height"]
    crowd = rng.random() < CROWD_SHARE
    # object size: log-uniform between ~10 px and most of the image, like COCO's small/medium/large mix
    size = float(np.exp(rng.uniform(np.log(8), np.log(min(w, h) * 0.9))))
    cx, cy = rng.uniform(size / 2, w - size / 2), rng.uniform(size / 2, h - size / 2)
    if crowd:
        x0, y0 = max(0, int(cx - size / 2)), max(0, int(cy - size / 2))
        bw, bh = min(w - x0, int(size)), min(h - y0, int(size))
        n_runs = int(rng.integers(100, 1000)) * 2
        cuts = np.sort(rng.choice(w * h - 1, n_runs - 1, replace=False) + 1)
        counts = np.diff(np.concatenate([[0], cuts, [w * h]])).tolist()
        seg: object = {"counts": counts, "size": [h, w]}
        bbox = [float(x0), float(y0), float(bw), float(bh)]
        area = float(sum(counts[1::2]))
    else:
        parts = 1 if rng.random() < 0.9 else 2
        seg = []
        xs_all: list[float] = []
        ys_all: list[float] = []
        for _ in range(parts):
            # COCO polygons: ~4..100 points, more for larger objects (mean ~ 22)
            n = int(np.clip(rng.poisson(9 + size / 8.5), 3, 150))
            angle = np.sort(rng.uniform(0, 2 * np.pi, n))
            radius = size / 2 * rng.uniform(0.5, 1.0, n)
            xs = np.round(np.clip(cx + radius * np.cos(angle), 0, w), 2)
            ys = np.round(np.clip(cy + radius * np.sin(angle), 0, h), 2)
            seg.append(np.column_stack([xs, ys]).ravel().tolist())
            xs_all += xs.tolist()
            ys_all += ys.tolist()
        x0, y0 = min(xs_all), min(ys_all)
        bbox = [x0, y0, round(max(xs_all) - x0, 2), round(max(ys_all) - y0, 2)]
        area = round(bbox[2] * bbox[3] * 0.6, 4)
    if bbox[2] <= 0 or bbox[3] <= 0:
        bbox[2], bbox[3] = max(bbox[2], 1.0), max(bbox[3], 1.0)
        bbox[0], bbox[1] = min(bbox[0], w - 1.0), min(bbox[1], h - 1.0)
    return {
        "segmentation": seg,
        "area": area,
        "iscrowd": int(crowd),
        "image_id": image["id"],
        "bbox": bbox,
        "category_id": CATEGORY_IDS[int(rng.integers(0, len(CATEGORY_IDS)))],
        "id": ann_id,
    }


def _tree_rss_kib(pid: int) -> int:
    """Resident memory of ``pid`` and all its descendants now (shared pages counted once per process)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as fh:
                total += next((int(line.split()[1]) for line in fh if line.startswith("VmRSS:")), 0)
            with open(f"/proc/{p}/task/{p}/children") as fh:
                todo += [int(c) for c in fh.read().split()]
        except (OSError, ValueError):
            pass
    return total


class TreeRss:
    """Peak of the summed RSS of a process tree, sampled every 20 ms (ru_maxrss is one process's peak only:
    gtok forks a worker, so both figures are reported)."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak = pid, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, _tree_rss_kib(self.pid))

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak / 1024


def measure(cmd: list[str]) -> tuple[float, float, float, float, str]:
    """(wall s, CPU s = user + sys of it and its children, peak RSS MiB of one process, peak summed RSS MiB
    of its process tree, last output line) of one child process, via os.wait4 and /proc sampling."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    tree = TreeRss(proc.pid)
    # read the pipes before reaping, then reap this very child to get its own rusage
    out, err = proc.stdout.read(), proc.stderr.read()  # type: ignore[union-attr]
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    tree_peak = tree.stop()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{err.decode()[-2000:]}")
    cpu = usage.ru_utime + usage.ru_stime
    rss = usage.ru_maxrss / 1024
    return wall, cpu, rss, max(tree_peak, rss), (out + err).decode().strip().splitlines()[-1][:200]


def _verdict(ok: bool) -> str:
    return "OK" if ok else "MISSED"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of COCO-train size (default 1)")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each (best wall, its CPU and RSS)")
    parser.add_argument("--keep-output", action="store_true", help="keep the records file")
    parser.add_argument("--tasks", default="", help="gtok --tasks (default: gtok's, instances only)")
    args = parser.parse_args()

    WORK.mkdir(exist_ok=True)
    src = WORK / f"instances_train2017_synth_{args.scale:g}.json"
    if not src.exists():
        t0 = time.perf_counter()
        write_instances(src, args.scale)
        print(f"wrote {src.name} in {time.perf_counter() - t0:.1f} s")
    out = WORK / "records.jsonl"
    load = "import sys; from pycocotools.coco import COCO; COCO(sys.argv[1])"
    runs = {
        "pycocotools COCO(file)": [sys.executable, "-c", load, str(src)],
        "gtok ingest coco": [
            sys.executable,
            "-m",
            "gtok_cli",
            "ingest",
            "coco",
            "--instances",
            str(src),
            "--out",
            str(out),
            *(["--tasks", args.tasks] if args.tasks else []),
        ],
    }
    size = src.stat().st_size / 2**20
    print(f"input: {size:.0f} MiB; python {sys.version.split()[0]}; {os.cpu_count()} CPUs")
    results: dict[str, tuple[float, float, float, float]] = {}
    for _ in range(args.repeat):
        for name, cmd in runs.items():  # alternate, so both see the same page-cache state
            wall, cpu, rss, tree_rss, tail = measure(cmd)
            print(
                f"  {name:<24} wall {wall:7.2f} s  CPU {cpu:7.2f} s  peak RSS {rss:7.0f} MiB"
                f" (process tree {tree_rss:5.0f} MiB)  | {tail}"
            )
            if name not in results or wall < results[name][0]:
                results[name] = (wall, cpu, rss, tree_rss)
    ref_wall, ref_cpu, _, ref_tree = results["pycocotools COCO(file)"]
    wall, cpu, _, tree_rss = results["gtok ingest coco"]
    with open(out, "rb") as fh:
        lines = sum(1 for _ in fh)
    print(f"records written: {lines:,} ({out.stat().st_size / 2**20:.0f} MiB)")
    print(f"best of {args.repeat}: pycocotools {ref_wall:.2f} s, {ref_cpu:.2f} s CPU, {ref_tree:.0f} MiB")
    print(f"           gtok {wall:.2f} s, {cpu:.2f} s CPU, {tree_rss:.0f} MiB (tree)")
    verdict = _verdict(wall <= 0.5 * ref_wall)
    print(f"time ratio gtok / pycocotools = {wall / ref_wall:.3f}  (target <= 0.5: {verdict})")
    print(f"CPU ratio  gtok / pycocotools = {cpu / ref_cpu:.3f}  (user+sys, children included)")
    ok = _verdict(tree_rss <= ref_tree)
    print(f"RSS ratio  gtok / pycocotools = {tree_rss / ref_tree:.3f}  (process-tree peak; <= 1.0: {ok})")
    if not args.keep_output:
        out.unlink()


if __name__ == "__main__":
    main()
