"""PNG histograms and bar charts drawn with Pillow (no matplotlib): ``gtok stats --plots DIR``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from gtok_cli.images import font
from gtok_cli.jsonio import atomic_path

W, H = 560, 340
LEFT, RIGHT, TOP, BOTTOM = 60, 20, 40, 50
BG = (255, 255, 255)
INK = (30, 30, 30)
GRID = (225, 225, 225)
BAR = (40, 120, 220)
MARK = (220, 60, 60)


def _save(im: Image.Image, out: Path) -> None:
    """Through a temp file: a full disk leaves no empty or half PNG under ``out``."""
    with atomic_path(out) as tmp:
        im.save(tmp, format="PNG", optimize=True)


def _fmt(v: float) -> str:
    return f"{v:.0f}" if abs(v) >= 100 or float(v).is_integer() else f"{v:.3g}"


def _nice(top: int) -> int:
    """The y-axis top: ``top`` rounded up to a multiple of 4, so the 5 gridlines fall on whole counts."""
    return -(-top // 4) * 4


def _frame(title: str, ymax: int) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    im = Image.new("RGB", (W, H), BG)
    d = ImageDraw.Draw(im)
    f = font(13)
    d.text((LEFT, 12), title, fill=INK, font=font(15))
    for k in range(5):
        y = H - BOTTOM - (H - TOP - BOTTOM) * k / 4
        d.line((LEFT, y, W - RIGHT, y), fill=GRID)
        d.text((LEFT - 6, y), _fmt(ymax * k / 4), fill=INK, font=f, anchor="rm")
    d.line((LEFT, TOP, LEFT, H - BOTTOM), fill=INK)
    d.line((LEFT, H - BOTTOM, W - RIGHT, H - BOTTOM), fill=INK)
    return im, d


def bars(counts: dict[str, int], title: str, out: Path) -> None:
    """One bar per key, in the given order, with its count on top."""
    ymax = _nice(max([1, *counts.values()]))
    im, d = _frame(title, ymax)
    f = font(13)
    n = max(1, len(counts))
    slot = (W - LEFT - RIGHT) / n
    for k, (name, v) in enumerate(counts.items()):
        x0 = LEFT + k * slot + slot * 0.15
        x1 = LEFT + (k + 1) * slot - slot * 0.15
        y = H - BOTTOM - (H - TOP - BOTTOM) * v / ymax
        d.rectangle((x0, y, x1, H - BOTTOM), fill=BAR)
        d.text(((x0 + x1) / 2, y - 3), str(v), fill=INK, font=f, anchor="md")
        d.text(((x0 + x1) / 2, H - BOTTOM + 6), name, fill=INK, font=f, anchor="ma")
    _save(im, out)


def histogram(
    values: Sequence[float], title: str, xlabel: str, out: Path, bins: int = 20, mark: float | None = None
) -> None:
    """A histogram of ``values`` (``bins`` equal bins from min to max), x range labelled; ``mark`` draws a
    reference line (e.g. the paper's 8.7 tokens per mask)."""
    a = np.asarray(values, dtype=np.float64)
    lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 1.0)
    if mark is not None:
        lo, hi = min(lo, mark), max(hi, mark)
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    counts, edges = np.histogram(a, bins=bins, range=(lo, hi))
    ymax = _nice(int(max(1, counts.max(initial=0))))
    im, d = _frame(f"{title}  (n={a.size})", ymax)
    f = font(13)
    span = W - LEFT - RIGHT

    def x_of(v: float) -> float:
        return LEFT + span * (v - lo) / (hi - lo)

    for c, e0, e1 in zip(counts, edges[:-1], edges[1:], strict=True):
        if c:
            y = H - BOTTOM - (H - TOP - BOTTOM) * c / ymax
            d.rectangle((x_of(e0) + 1, y, x_of(e1) - 1, H - BOTTOM), fill=BAR)
    for v in (lo, (lo + hi) / 2, hi):
        d.text((x_of(v), H - BOTTOM + 6), _fmt(v), fill=INK, font=f, anchor="ma")
    d.text((LEFT + span / 2, H - 18), xlabel, fill=INK, font=f, anchor="ma")
    if mark is not None:
        x = x_of(mark)
        d.line((x, TOP, x, H - BOTTOM), fill=MARK, width=2)
        tag = f"paper: {mark}"
        box = d.textbbox((x + 4, TOP - 18), tag, font=f)
        d.rectangle(box, fill=BG)
        d.text((x + 4, TOP - 18), tag, fill=MARK, font=f)
    _save(im, out)
