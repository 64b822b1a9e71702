"""Per-shape comparison of decoded geometry with the truth (one function per shape kind).

Each comparator gets the decoded shape, the truth region (a ``meta.regions`` entry) and the allowed per-axis
error in pixels, and returns ``(error_px, iou, problem)``: the largest coordinate error, the box IoU where it
applies (else None), and a message when the shape is out of bounds. New kinds add an entry to
:data:`COMPARATORS`; refinement conversations are checked turn by turn in :mod:`.refine_check`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from gtok_cli.codecs.base import Shape

Result = tuple[float, float | None, str | None]
Comparator = Callable[[Shape, dict[str, Any], tuple[float, float]], Result]
EPS = 1e-6


def box_iou(a: npt.ArrayLike, b: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Row-wise IoU of two N×4 xyxy arrays."""
    p = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    q = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    iw = np.clip(np.minimum(p[:, 2], q[:, 2]) - np.maximum(p[:, 0], q[:, 0]), 0, None)
    ih = np.clip(np.minimum(p[:, 3], q[:, 3]) - np.maximum(p[:, 1], q[:, 1]), 0, None)
    inter = iw * ih
    union = (p[:, 2] - p[:, 0]) * (p[:, 3] - p[:, 1]) + (q[:, 2] - q[:, 0]) * (q[:, 3] - q[:, 1]) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def _axis_errors(got: tuple[float, ...], want: list[float]) -> tuple[float, float]:
    d = np.abs(np.asarray(got, dtype=np.float64) - np.asarray(want, dtype=np.float64))
    return float(d[0::2].max()), float(d[1::2].max())


def _check(ex: float, ey: float, allowed: tuple[float, float]) -> str | None:
    if ex <= allowed[0] + EPS and ey <= allowed[1] + EPS:
        return None
    return f"error {max(ex, ey):.3f} px exceeds the bound ({allowed[0]:.3f}, {allowed[1]:.3f}) px"


def compare_box(shape: Shape, truth: dict[str, Any], allowed: tuple[float, float]) -> Result:
    ex, ey = _axis_errors(shape.coords, truth["bbox"])
    iou = float(box_iou(shape.coords, truth["bbox"])[0])
    return max(ex, ey), iou, _check(ex, ey, allowed)


def compare_point(shape: Shape, truth: dict[str, Any], allowed: tuple[float, float]) -> Result:
    ex, ey = _axis_errors(shape.coords, truth["point"])
    return max(ex, ey), None, _check(ex, ey, allowed)


def compare_polyline(shape: Shape, truth: dict[str, Any], allowed: tuple[float, float]) -> Result:
    """Vertex by vertex, in order, against the region's ``polyline`` ``[x1, y1, x2, y2, …]``."""
    want = truth.get("polyline") or []
    if len(shape.coords) != len(want):
        return float("nan"), None, f"{len(shape.coords) // 2} vertices, truth has {len(want) // 2}"
    ex, ey = _axis_errors(shape.coords, want)
    return max(ex, ey), None, _check(ex, ey, allowed)


def compare_polygon(shape: Shape, truth: dict[str, Any], allowed: tuple[float, float]) -> Result:
    """Ring by ring, vertex by vertex, in order, against the region's ``polygon`` ``[[x1, y1, …], …]``."""
    want = truth.get("polygon") or []
    got = shape.rings()
    if [len(r) for r in got] != [len(r) for r in want]:
        counts = [len(r) // 2 for r in got], [len(r) // 2 for r in want]
        return float("nan"), None, f"rings of {counts[0]} vertices, truth has {counts[1]}"
    ex, ey = _axis_errors(shape.coords, [v for ring in want for v in ring])
    return max(ex, ey), None, _check(ex, ey, allowed)


def compare_mask(shape: Shape, truth: dict[str, Any], allowed: tuple[float, float]) -> Result:
    want = [tuple(a) for a in (truth.get("mask_tokens") or {}).get("anchors", [])]
    got = list(shape.anchors or ())
    if got != want:
        return float("nan"), None, f"mask anchors {got[:6]}… differ from mask_tokens {want[:6]}…"
    return 0.0, None, None


COMPARATORS: dict[str, Comparator] = {
    "box": compare_box,
    "point": compare_point,
    "polyline": compare_polyline,
    "polygon": compare_polygon,
    "mask": compare_mask,
}
