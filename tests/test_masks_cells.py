"""Cell geometry, the rasteriser, and the cells backend on genuine COCO masks (hand-checkable cases)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycocotools import mask as mask_utils

from gtok_cli.errors import InputError
from gtok_cli.masks import (
    anchors_to_mask,
    cell_candidates,
    cell_edges,
    cell_of_pixel,
    greedy_numpy,
    grid_points_px,
    region_mask_to_bool,
)

REPO = Path(__file__).resolve().parents[1]


COCO_INSTANCES = REPO / "tests" / "data" / "coco" / "annotations" / "instances_val2017.json"


@cache
def coco() -> dict[str, Any]:
    import json

    return json.loads(COCO_INSTANCES.read_text())  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("extent", "n", "edges"),
    [
        (640, 32, list(range(0, 641, 20))),  # 20 px per cell exactly
        (10, 4, [0, 2, 5, 7, 10]),  # pixel p -> floor((2p+1)/5): 0,0,1,1,1,2,2,3,3,3
        (3, 4, [0, 1, 1, 2, 3]),  # fewer pixels than cells: cell 1 is empty
        (1, 1, [0, 1]),
    ],
)
def test_cell_edges_table(extent: int, n: int, edges: list[int]) -> None:
    assert cell_edges(extent, n).tolist() == edges


@settings(max_examples=60, deadline=None)
@given(extent=st.integers(1, 700), n=st.integers(1, 80))
def test_pixel_cells_agree_with_edges_and_centres(extent: int, n: int) -> None:
    edges = cell_edges(extent, n)
    cells = cell_of_pixel(extent, n)
    assert np.array_equal(np.repeat(np.arange(n), np.diff(edges)), cells)
    if extent >= n:  # the pixel under each cell centre (the SAM prompt) lies in that cell
        centres = np.floor((np.arange(n) + 0.5) * extent / n).astype(int)
        assert np.array_equal(cells[centres], np.arange(n))


@pytest.mark.sam
def test_prompt_points_are_sams_point_grid() -> None:
    amg = pytest.importorskip("segment_anything.utils.amg")
    for n, w, h in ((4, 640, 480), (32, 333, 500)):
        assert np.allclose(grid_points_px(n, w, h), amg.build_point_grid(n) * np.array([w, h]))


def test_cells_partition_the_image() -> None:
    cands = cell_candidates(7, 23, 11)
    stack = np.stack([cands.mask(k) for k in range(49)])
    assert np.array_equal(stack.sum(axis=0), np.ones((11, 23)))  # every pixel in exactly one cell
    # cell (i=2, j=1): columns 7..9 (pixel centres 7.5*7/23 = 2.28 and 9.5*7/23 = 2.89 are in column 2,
    # 6.5*7/23 = 1.98 and 10.5*7/23 = 3.2 are not) and row 2 only
    # (2.5*7/11 = 1.59; 1.5*7/11 = 0.95, 3.5*7/11 = 2.2)
    assert np.argwhere(cands.mask(1 * 7 + 2)).min(axis=0).tolist() == [2, 7]
    assert np.argwhere(cands.mask(1 * 7 + 2)).max(axis=0).tolist() == [2, 9]
    st_ = cands.stats  # the analytic areas / bboxes equal the scanned ones
    from gtok_cli.geometry.candidates import candidate_stats

    scanned = candidate_stats(cands.packed)
    for name in ("areas", "y0", "y1", "b0", "b1"):
        assert np.array_equal(getattr(st_, name), getattr(scanned, name)), name


# -- rasteriser ----------------------------------------------------------------------------------------------


def decode_runs(counts: list[int], h: int, w: int) -> np.ndarray:
    """Uncompressed COCO RLE by its definition: alternating 0/1 runs, starting with 0, column-major."""
    flat = np.repeat(np.arange(len(counts)) % 2 == 1, counts)
    return flat.reshape(w, h).T


def test_crowd_rle_decodes_by_definition() -> None:
    crowd = [a for a in coco()["annotations"] if a["iscrowd"]]
    images = {im["id"]: im for im in coco()["images"]}
    assert crowd
    for a in crowd:
        im = images[a["image_id"]]
        m = region_mask_to_bool(a["segmentation"], im["width"], im["height"])
        assert m.shape == (im["height"], im["width"])
        assert np.array_equal(m, decode_runs(a["segmentation"]["counts"], im["height"], im["width"]))


def test_polygon_and_string_rle_agree() -> None:
    poly = [[10.0, 10.0, 30.0, 10.0, 30.0, 20.0, 10.0, 20.0]]
    m = region_mask_to_bool(poly, 40, 30)
    rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    assert np.array_equal(region_mask_to_bool(rle, 40, 30), m)
    assert 180 <= m.sum() <= 231  # a 20 x 10 rectangle give or take its boundary pixels


@pytest.mark.parametrize(
    ("mask", "field"),
    [
        ([[1, 2, 3, 4]], "mask[0]"),  # fewer than 3 points
        ([[1, 2, 3, 4, 5, 6, 7]], "mask[0]"),  # odd count
        ([[1, 2, float("nan"), 4, 5, 6]], "mask[0]"),
        ({"size": [5, 4], "counts": [20]}, "mask"),  # size is [h, w] = [3, 4] for this image
        ({"size": [3, 4], "counts": [5, 5]}, "mask"),  # counts sum 10 != 12
        ({"size": [3, 4], "counts": 7}, "mask"),
        ([], "mask"),
        ("polygon", "mask"),
    ],
)
def test_bad_masks_are_one_line_input_errors(mask: Any, field: str) -> None:
    with pytest.raises(InputError) as exc:
        region_mask_to_bool(mask, 4, 3, file="f.jsonl", record="r1")
    assert exc.value.field == field
    assert "f.jsonl" in str(exc.value) and "record r1" in str(exc.value)


# -- cells backend on the genuine fixture ------------------------------------------------------------------


def test_four_cell_mask_gives_four_anchors() -> None:
    im = coco()["images"][0]
    w, h = im["width"], im["height"]
    n = 32
    xe, ye = cell_edges(w, n), cell_edges(h, n)
    m = np.zeros((h, w), dtype=bool)
    m[ye[5] : ye[7], xe[10] : xe[12]] = True  # cells i = 10, 11 and j = 5, 6
    rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
    gt = region_mask_to_bool({"size": rle["size"], "counts": rle["counts"].decode()}, w, h)
    cands = cell_candidates(n, w, h)
    for variant in ("sorted", "best-gain"):
        res = greedy_numpy(cands.packed, [gt], tau=0.9, variant=variant, stats=cands.stats)[0]
        assert res.anchors(n) == [[10, 5], [11, 5], [10, 6], [11, 6]]
        assert res.iou == 1.0


def test_whole_image_needs_ceil_of_tau_cells() -> None:
    # 640 x 480, n = 8: 64 equal cells (80 x 60) all with IoU 1/64; ties go by grid index, so the first
    # ceil(0.9 * 64) = 58 cells in row-major order give IoU 58/64
    cands = cell_candidates(8, 640, 480)
    for variant in ("sorted", "best-gain"):
        res = greedy_numpy(cands.packed, [np.ones((480, 640), dtype=bool)], tau=0.9, variant=variant)[0]
        assert sorted(res.indices) == list(range(58))
        assert res.iou == 58 / 64


def test_genuine_coco_masks_report_honest_iou() -> None:
    images = {im["id"]: im for im in coco()["images"]}
    anns = [a for a in coco()["annotations"] if not a["iscrowd"]][:12]
    for n in (16, 32):
        for a in anns:
            im = images[a["image_id"]]
            w, h = im["width"], im["height"]
            gt = region_mask_to_bool(a["segmentation"], w, h)
            cands = cell_candidates(n, w, h)
            res = greedy_numpy(cands.packed, [gt], tau=0.9, stats=cands.stats)[0]
            union = anchors_to_mask(res.anchors(n), cands)
            assert res.iou == (gt & union).sum() / (gt | union).sum()
            # with cells, any cell holding more than half its pixels inside the object raises the IoU,
            # so the object's best cell (by IoU) is always chosen
            cell = cell_of_pixel(h, n)[:, None] * n + cell_of_pixel(w, n)[None, :]  # grid index of each pixel
            inter = np.bincount(cell[gt], minlength=n * n)
            iou = inter / (np.bincount(cell.ravel(), minlength=n * n) + gt.sum() - inter)
            assert int(np.argmax(iou)) in res.indices
