"""The point task's target: the interior point farthest from the object's boundary.

With a mask: decode it (COCO polygons or RLE, via pycocotools), take the exact Euclidean distance of every
object pixel to the nearest non-object pixel (the image border counts as background), and return the centre
of the first pixel (row-major) with the largest distance. Squared distances are integers, so the SciPy path
and the numpy fallback give the same pixel. Without a mask: the box centre.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import numpy.typing as npt

BoolArray = npt.NDArray[np.bool_]


def decode_mask(mask: Any, width: int, height: int) -> BoolArray:
    """A record's ``mask`` (polygons or RLE) as an H×W boolean array."""
    from pycocotools import mask as mask_utils

    if isinstance(mask, list):
        rles = mask_utils.frPyObjects(mask, height, width)
        rle = mask_utils.merge(rles)
    elif isinstance(mask["counts"], list):
        rle = mask_utils.frPyObjects(mask, mask["size"][0], mask["size"][1])
    else:
        rle = dict(mask)
        if isinstance(rle["counts"], str):
            rle["counts"] = rle["counts"].encode()
    with warnings.catch_warnings():
        # pycocotools 2.0.x's decode passes copy=False to an __array__ without that keyword, which numpy 2
        # deprecates (a warning per mask, nothing wrong with the result): hide that one warning, here only
        warnings.filterwarnings(
            "ignore", "__array__ implementation doesn't accept a copy keyword", DeprecationWarning
        )
        return np.asarray(mask_utils.decode(rle), dtype=bool)


def squared_edt(inside: BoolArray) -> npt.NDArray[np.int64]:
    """Exact squared Euclidean distance of each ``inside`` pixel to the nearest outside pixel (0 outside).

    Separable: per column the 1-D distance to background, then per row the lower envelope by brute force
    over the columns of the (cropped) object. O(H·W²) but only on the object's bounding box.
    """
    try:
        from scipy import ndimage
    except ImportError:  # pragma: no cover - scipy is in the test extra; the fallback is tested directly
        return _squared_edt_numpy(inside)
    padded = np.pad(inside, 1)
    dist = ndimage.distance_transform_edt(padded, return_distances=True, return_indices=False)
    d2 = np.rint(np.asarray(dist, dtype=np.float64) ** 2).astype(np.int64)
    return d2[1:-1, 1:-1]


def _squared_edt_numpy(inside: BoolArray) -> npt.NDArray[np.int64]:
    padded = np.pad(inside, 1)
    h, w = padded.shape
    big = h + w
    # column pass: distance (in rows) to the nearest background pixel in the same column
    g = np.zeros((h, w), dtype=np.int64)
    run = np.full(w, big, dtype=np.int64)
    for r in range(h):
        run = np.where(padded[r], run + 1, 0)
        g[r] = run
    run = np.full(w, big, dtype=np.int64)
    for r in range(h - 1, -1, -1):
        run = np.where(padded[r], run + 1, 0)
        g[r] = np.minimum(g[r], run)
    g2 = np.minimum(g, big) ** 2
    cols = np.arange(w, dtype=np.int64)
    dx2 = (cols[:, None] - cols[None, :]) ** 2  # [x, x']
    out = np.empty((h, w), dtype=np.int64)
    step = max(1, (1 << 22) // max(1, w * w))
    for r0 in range(0, h, step):
        block = g2[r0 : r0 + step]  # rows × x'
        out[r0 : r0 + step] = (block[:, None, :] + dx2[None, :, :]).min(axis=2)
    return out[1:-1, 1:-1]


def pole_of_inaccessibility(inside: BoolArray) -> tuple[float, float] | None:
    """Centre ``(x + 0.5, y + 0.5)`` of the deepest pixel, or None for an empty mask."""
    ys, xs = np.nonzero(inside)
    if len(xs) == 0:
        return None
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    d2 = squared_edt(inside[y0:y1, x0:x1])
    k = int(np.argmax(d2))  # first maximum in row-major order: the tie-break
    r, c = divmod(k, d2.shape[1])
    return (float(x0 + c) + 0.5, float(y0 + r) + 0.5)


def interior_point(region: dict[str, Any], width: int, height: int) -> tuple[list[float], str]:
    """The point task's truth for a region, and where it came from (``"mask"`` or ``"box"``)."""
    mask = region.get("mask")
    if mask is not None:
        p = pole_of_inaccessibility(decode_mask(mask, width, height))
        if p is not None:
            return [p[0], p[1]], "mask"
    x1, y1, x2, y2 = region["bbox"]
    return [(x1 + x2) / 2.0, (y1 + y2) / 2.0], "box"
