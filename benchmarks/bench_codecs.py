"""Encode + decode throughput of every token scheme (docs/spec.md#schemes; printed, never asserted).

For each scheme: N random boxes on N random image sizes (fixed seed), ``encode_boxes`` then ``decode_boxes``,
boxes per second for each and for the round trip. The baseline is a plain per-box Python loop (an f-string
with ``round`` per coordinate to encode, ``re.findall`` + division to decode), timed on a subset of at most
100,000 boxes and extrapolated; the same baseline serves every scheme. ``ratio`` = ours / baseline.
A scheme that writes only points (``molmo``) is timed on the boxes' centres, one point per text, through
``encode`` / ``decode`` (it has no batch form); its ``max err px`` is against the centres.

    python benchmarks/bench_codecs.py            # 1,000,000 boxes per scheme
    python benchmarks/bench_codecs.py --n 20000 --schemes qwen3-vl,ferret
"""

from __future__ import annotations

import argparse
import platform
import re
import time

import numpy as np

from gtok_cli.codecs import SCHEMES, Codec, Grounding, Shape, get_codec

BASELINE_MAX = 100_000


def workload(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Sizes 32..4000 per axis (aspect ≤ 125, which every scheme accepts) and boxes inside them."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(32, 4001, size=(n, 2))
    a = rng.random((n, 4)) * np.repeat(sizes, 2, axis=1)  # columns: w, w, h, h
    xs, ys = np.sort(a[:, [0, 1]], axis=1), np.sort(a[:, [2, 3]], axis=1)
    return np.stack([xs[:, 0], ys[:, 0], xs[:, 1], ys[:, 1]], axis=1), sizes


def baseline(boxes: np.ndarray, sizes: np.ndarray) -> float:
    """Seconds per box of the plain per-box loop (encode + decode)."""
    b, s = boxes.tolist(), sizes.tolist()
    number = re.compile(r"\d+")
    start = time.perf_counter()
    texts = [
        f"<box>({round(x1 * 1000 / w)},{round(y1 * 1000 / h)}),"
        f"({round(x2 * 1000 / w)},{round(y2 * 1000 / h)})</box>"
        for (x1, y1, x2, y2), (w, h) in zip(b, s, strict=True)
    ]
    out = []
    for t, (w, h) in zip(texts, s, strict=True):
        q = [int(v) for v in number.findall(t)]
        out.append((q[0] * w / 1000, q[1] * h / 1000, q[2] * w / 1000, q[3] * h / 1000))
    return (time.perf_counter() - start) / len(b)


def points_round_trip(
    codec: Codec, boxes: np.ndarray, sizes: np.ndarray
) -> tuple[float, float, float, float]:
    """Times (start, encoded, decoded) and the max error of the boxes' centres as one point per text."""
    centres = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], axis=1)
    items = [
        (Grounding(None, (Shape.point(x, y),)), (int(w), int(h)))
        for (x, y), (w, h) in zip(centres.tolist(), sizes.tolist(), strict=True)
    ]
    t0 = time.perf_counter()
    texts = [codec.encode([g], size) for g, size in items]
    t1 = time.perf_counter()
    back = [codec.decode(t, size).shapes()[0].coords for t, (_g, size) in zip(texts, items, strict=True)]
    t2 = time.perf_counter()
    return t0, t1, t2, float(np.max(np.abs(np.asarray(back) - centres)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="boxes per scheme (default 1,000,000)")
    parser.add_argument("--schemes", default=",".join(SCHEMES), help="comma-separated scheme names")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    boxes, sizes = workload(args.n, args.seed)
    m = min(args.n, BASELINE_MAX)
    per_box = baseline(boxes[:m], sizes[:m])
    base_rate = 1 / per_box
    print(
        f"bench_codecs: {args.n:,} boxes/scheme, seed {args.seed}, "
        f"{platform.machine()}, Python {platform.python_version()}"
    )
    print(
        f"baseline (plain per-box f-string + regex loop, timed on {m:,} boxes, extrapolated): "
        f"{base_rate:,.0f} boxes/s round trip ({per_box * args.n:.2f} s for {args.n:,})"
    )
    print(f"{'scheme':<14}{'encode/s':>14}{'decode/s':>14}{'round trip/s':>15}{'ratio':>8}{'max err px':>12}")
    for name in args.schemes.split(","):
        codec = get_codec(name)
        if "box" not in codec.kinds:
            t0, t1, t2, err = points_round_trip(codec, boxes, sizes)
        else:
            t0 = time.perf_counter()
            texts = codec.encode_boxes(boxes, sizes)
            t1 = time.perf_counter()
            back = codec.decode_boxes(texts, sizes)
            t2 = time.perf_counter()
            err = float(np.nanmax(np.abs(back - boxes)))
        enc, dec, both = args.n / (t1 - t0), args.n / (t2 - t1), args.n / (t2 - t0)
        print(f"{name:<14}{enc:>14,.0f}{dec:>14,.0f}{both:>15,.0f}{both / base_rate:>7.2f}x{err:>12.3f}")


if __name__ == "__main__":
    main()
