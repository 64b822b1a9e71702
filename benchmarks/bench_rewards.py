"""Rewards per second: gtok_cli.rewards as a GRPO trainer calls them, and `gtok reward` over sampled answers.

Data: N grid-scheme REC answers (32×32, 640×480) for random boxes, each answer the truth's own encoding moved
by 0–2 cells per corner (so IoU and L1 vary), with the line's meta. Runs:

- ``box_reward`` / ``format_reward`` / ``point_reward``: the plain function, one call per answer;
- ``trl.box_reward``: the TRL shape, called in batches of 64 completions with a ``meta`` column, as
  ``GRPOTrainer._calculate_rewards`` calls it;
- baseline: the least a box reward can do in Python per answer (one regex for the canonical one-box answer,
  the cell centres, IoU and L1 by hand); gtok's numbers are checked equal to it first;
- ``gtok reward``: an export of N lines scored from a predictions file with two samples a line
  (``score_predictions``: read, match, score, write), ``box`` alone and ``format,box``, against the baseline's
  time for the box reward of the same 2N answers.

Run: python benchmarks/bench_rewards.py [--n 20000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gtok_cli.codecs import get_codec  # noqa: E402
from gtok_cli.rewards import box_reward, format_reward, point_reward  # noqa: E402
from gtok_cli.rewards import trl as trl_rewards  # noqa: E402

W, H, N_GRID = 640, 480, 32
_BOX = re.compile(r"<box><grid_(\d+)_(\d+)><grid_(\d+)_(\d+)></box>")


def make_data(n: int, seed: int = 0) -> tuple[list[str], list[dict[str, Any]], list[str]]:
    rng = np.random.default_rng(seed)
    x1 = rng.uniform(0, W - 40, n)
    y1 = rng.uniform(0, H - 40, n)
    boxes = np.stack([x1, y1, x1 + rng.uniform(20, W - x1), y1 + rng.uniform(20, H - y1)], axis=1)
    codec = get_codec("grid")
    answers, points = [], []
    for b, shift in zip(boxes, rng.integers(-2, 3, (n, 4)), strict=True):
        (i1, j1), (i2, j2) = codec.anchors(_shape(b), (W, H))
        c = np.clip([i1 + shift[0], j1 + shift[1], i2 + shift[2], j2 + shift[3]], 0, N_GRID - 1)
        c[2], c[3] = max(c[2], c[0]), max(c[3], c[1])
        answers.append(f"<box><grid_{c[0]}_{c[1]}><grid_{c[2]}_{c[3]}></box>")
        points.append(f"<point><grid_{(c[0] + c[2]) // 2}_{(c[1] + c[3]) // 2}></point>")
    metas = [
        {"record_id": f"r{k}", "image_size": [W, H], "regions": [{"kind": "box", "bbox": b.tolist()}]}
        for k, b in enumerate(boxes)
    ]
    return answers, metas, points


def _shape(b: np.ndarray) -> Any:
    from gtok_cli.codecs import Shape

    return Shape.box(*b)


def baseline_box_reward(answer: str, meta: dict[str, Any]) -> float:
    """The least a box reward does per answer in Python: one regex, cell centres, IoU, L1."""
    m = _BOX.search(answer)
    if m is None:
        return 0.0
    w, h = meta["image_size"]
    i1, j1, i2, j2 = (int(g) for g in m.groups())
    p = ((i1 + 0.5) * w / N_GRID, (j1 + 0.5) * h / N_GRID, (i2 + 0.5) * w / N_GRID, (j2 + 0.5) * h / N_GRID)
    t = meta["regions"][0]["bbox"]
    iw = max(0.0, min(p[2], t[2]) - max(p[0], t[0]))
    ih = max(0.0, min(p[3], t[3]) - max(p[1], t[1]))
    inter = iw * ih
    union = (p[2] - p[0]) * (p[3] - p[1]) + (t[2] - t[0]) * (t[3] - t[1]) - inter
    iou = inter / union if union > 0 else 0.0
    l1 = (abs(p[0] - t[0]) / w + abs(p[1] - t[1]) / h + abs(p[2] - t[2]) / w + abs(p[3] - t[3]) / h) / 2
    return iou + 1.0 - min(1.0, l1)


def timed(fn: Any, repeat: int) -> list[float]:
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return runs


def show(name: str, runs: list[float], n: int, baseline: list[float] | None = None) -> None:
    best = min(runs)
    text = ", ".join(f"{r:.3f}" for r in runs)
    line = f"{name:<34} best {best:7.3f} s  {n / best:>10,.0f} rewards/s  (runs: {text})"
    if baseline is not None:
        line += f"  ratio to baseline {best / min(baseline):.2f}×"
    print(line, flush=True)


def bench_cli(answers: list[str], metas: list[dict[str, Any]], repeat: int, baseline_rate: float) -> None:
    from gtok_cli.rewards.offline import score_predictions

    n = len(answers)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "export"
        folder.mkdir()
        shard = folder / "gtok-00000.jsonl"
        lines = [_line(a, m) for a, m in zip(answers, metas, strict=True)]
        shard.write_bytes(b"".join(orjson.dumps(x) + b"\n" for x in lines))
        _write_manifest(folder, shard, n)
        preds = Path(tmp) / "samples.jsonl"
        rows = [{"id": m["record_id"], "text": a} for a, m in zip(answers, metas, strict=True)]
        preds.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows + rows))
        out = Path(tmp) / "rewards.jsonl"
        for spec in ("box", "format,box"):
            runs = timed(lambda spec=spec: score_predictions(preds, folder, spec, out), repeat)
            best = min(runs)
            text = ", ".join(f"{r:.3f}" for r in runs)
            name = f"gtok reward --reward {spec}"
            print(
                f"{name:<34} best {best:7.3f} s  {2 * n / best:>10,.0f} samples/s  (runs: {text}); "
                f"baseline {2 * n / baseline_rate:.3f} s",
                flush=True,
            )


def _line(answer: str, meta: dict[str, Any]) -> dict[str, Any]:
    turns = [{"role": "user", "content": "<image>Where?"}, {"role": "assistant", "content": answer}]
    return {"messages": turns, "images": ["x.jpg"], "meta": meta}


def _write_manifest(folder: Path, shard: Path, n: int) -> None:
    """A manifest as export writes one (the fields the schema requires), for this hand-written shard."""
    import hashlib

    data = shard.read_bytes()
    entry = {"name": shard.name, "part": 0, "sha256": hashlib.sha256(data).hexdigest()}
    manifest = {
        "kind": "gtok-export",
        "manifest_version": 1,
        "gtok_version": "0.1.0",
        "command": ["bench"],
        "scheme": get_codec("grid").describe(),
        "task": "rec",
        "format": "messages",
        "seed": 0,
        "shape": "box",
        "refine": None,
        "meta": True,
        "gzip": False,
        "prefix": "gtok",
        "shard_size": n,
        "templates": {"file": "default.json", "sha256": "0" * 64},
        "partition": {"num_shards": 1, "indices": [0]},
        "sources": [],
        "counts": {"read": n, "written": n, "skipped": {}},
        "shards": [{**entry, "lines": n, "bytes": len(data)}],
    }
    (folder / "manifest.json").write_bytes(orjson.dumps(manifest))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    args, _ = parser.parse_known_args()  # run_all passes every benchmark's flags
    answers, metas, points = make_data(args.n)
    n = len(answers)
    want = [baseline_box_reward(a, m) for a, m in zip(answers, metas, strict=True)]
    got = [box_reward(a, m) for a, m in zip(answers, metas, strict=True)]
    assert all(math.isclose(g, w, abs_tol=1e-9) for g, w in zip(got, want, strict=True)), "baseline disagrees"
    print(f"{n} answers, grid 32, {W}×{H}; mean box_reward {np.mean(got):.4f}")

    def each(fn: Any, texts: list[str], lines: list[dict[str, Any]]) -> Any:
        return lambda: [fn(a, m) for a, m in zip(texts, lines, strict=True)]

    base = timed(each(baseline_box_reward, answers, metas), args.repeat)
    show("baseline (regex + arithmetic)", base, n)
    show("box_reward", timed(each(box_reward, answers, metas), args.repeat), n, base)
    show("format_reward", timed(each(format_reward, answers, metas), args.repeat), n, base)
    point_metas = [{**m, "regions": [{**m["regions"][0], "kind": "point"}]} for m in metas]
    show("point_reward", timed(each(point_reward, points, point_metas), args.repeat), n, base)

    def trl_batches() -> None:
        for k in range(0, n, 64):
            batch = answers[k : k + 64]
            trl_rewards.box_reward(
                prompts=["q"] * len(batch), completions=batch, meta=metas[k : k + 64], trainer_state=None
            )

    show("trl.box_reward (batches of 64)", timed(trl_batches, args.repeat), n, base)
    bench_cli(answers, metas, args.repeat, n / min(base))
    return 0


if __name__ == "__main__":
    sys.exit(main())
