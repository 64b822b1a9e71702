"""Inside / Ring / Far / Hard-Delete on hand-made masks, expected classes worked out by hand.

Setup for every table: grid n = 4, m = 2 steps per cell, image 16×16 px, so one step is 2 px, the radii are
ceil(2) = 2 px (5×5 rectangle) and lattice index q sits at pixel coordinate 2·q + 2 (q = -1..7 → 0..16; the
anchor's pixel is floor of that, clamped to 15). A move lands 2 px away per axis.
"""

from __future__ import annotations

import numpy as np
import pytest

from gtok_cli.refine import AnchorClass, MaskClassConfig, OffsetLattice, classify_anchors
from gtok_cli.refine.classify import anchor_classes

LAT = OffsetLattice(grid=4, steps_per_cell=2)
SIZE = (16, 16)
IN, RI, FA, HD = AnchorClass.INSIDE, AnchorClass.RING, AnchorClass.FAR, AnchorClass.HARD


def _square() -> np.ndarray:
    m = np.zeros((16, 16), dtype=bool)
    m[4:12, 4:12] = True  # E (eroded by 2) = pixels 6..9 on both axes; D (dilated by 2) = 2..13
    return m


def _ring_with_hole() -> np.ndarray:
    m = np.zeros((16, 16), dtype=bool)
    m[1:15, 1:15] = True
    m[6:10, 6:10] = False  # E = cols 3 or 12 (rows 3..12) and rows 3 or 12 (cols 3..12)
    return m


def _two_blobs() -> np.ndarray:
    m = np.zeros((16, 16), dtype=bool)
    m[2:5, 2:5] = True  # 3×3 blob: too thin to survive erosion
    m[10:16, 10:16] = True  # touches the border: E = 12..15 (windows truncated at the border)
    return m


def _line(row: int) -> np.ndarray:
    m = np.zeros((16, 16), dtype=bool)
    m[row, 2:14] = True  # one pixel high: E is empty, so the interior target falls back to M itself
    return m


CASES = [
    # square: (6,6) in E; (2,2) only the (1,1) move lands in M; (12,6) nearest E centre (9.5,6.5) → (10,6)
    ("square", _square, (2, 2), IN, (0, 0)),
    ("square", _square, (0, 0), RI, (1, 1)),
    ("square", _square, (5, 2), RI, (-1, 0)),
    ("square", _square, (1, 1), RI, (1, 1)),  # (4,4) in M but not E: (6,6) is nearest to E centre (6.5,6.5)
    ("square", _square, (6, 6), FA, None),  # (14,14): no mask pixel within 2 px
    # ring with a hole
    ("ring", _ring_with_hole, (5, 3), IN, (0, 0)),  # (12,8) on the E column 12
    ("ring", _ring_with_hole, (2, 3), RI, (-1, 0)),  # (6,8) in the hole; c* = (3.5,8.5); lands (4,8)
    # hole centre (8,8): c* = (12.5,8.5) (four-way tie, row-major first); lands (10,8)
    ("ring", _ring_with_hole, (3, 3), RI, (1, 0)),
    ("ring", _ring_with_hole, (-1, -1), RI, (1, 1)),  # image corner (0,0): only (2,2) lands in M
    # two blobs
    ("blobs", _two_blobs, (0, 0), RI, (0, 0)),  # (2,2) in the small blob, no E near: c* = (2.5,2.5), stay
    ("blobs", _two_blobs, (1, 1), RI, (0, 0)),  # (4,4): c* = (3.5,3.5) (tie, row-major first), stay
    ("blobs", _two_blobs, (2, 2), RI, (-1, -1)),  # (6,6): only (4,4) lands in M
    ("blobs", _two_blobs, (5, 5), IN, (0, 0)),  # (12,12) in E of the border blob
    ("blobs", _two_blobs, (3, 3), RI, (1, 1)),  # (8,8): only (10,10) lands in M
    ("blobs", _two_blobs, (3, 0), FA, None),  # (8,2)
    ("blobs", _two_blobs, (7, 0), FA, None),  # (16→15, 2)
    # one-pixel line on row 7: lattice rows are even pixels, so no move ever lands on it
    ("line7", lambda: _line(7), (2, 2), HD, None),  # (6,6) within 2 px of the line, lands on rows 4/6/8
    ("line7", lambda: _line(7), (2, 3), HD, None),  # (6,8)
    ("line7", lambda: _line(7), (7, 3), HD, None),  # (15,8)
    ("line7", lambda: _line(7), (0, 0), FA, None),  # (2,2): 5 rows away
    # one-pixel line on row 8: reachable
    ("line8", lambda: _line(8), (2, 3), RI, (0, 0)),  # (6,8) on the line
    ("line8", lambda: _line(8), (2, 2), RI, (0, 1)),  # (6,6): c* = (5.5,8.5); landing (6,8) nearest
    ("line8", lambda: _line(8), (6, 3), RI, (-1, 0)),  # (14,8) just past the end: lands (12,8)
    (
        "line8",
        lambda: _line(8),
        (7, 3),
        HD,
        None,
    ),  # (15,8): landings at x = 14, 15 miss the line (ends at 13)
]


@pytest.mark.parametrize(("name", "make", "q", "cls", "offset"), CASES, ids=[f"{c[0]}-{c[2]}" for c in CASES])
def test_class_and_offset(
    name: str, make: object, q: tuple[int, int], cls: AnchorClass, offset: tuple[int, int] | None
) -> None:
    mask = make()  # type: ignore[operator]
    result = classify_anchors([q], mask, SIZE, LAT)
    assert result.classes == [cls]
    assert result.offsets == [offset]


def test_batch_equals_one_by_one_and_classes_only_agrees() -> None:
    mask = _two_blobs()
    qs = [c[2] for c in CASES if c[0] == "blobs"]
    batch = classify_anchors(qs, mask, SIZE, LAT)
    assert batch.classes == [classify_anchors([q], mask, SIZE, LAT).classes[0] for q in qs]
    assert anchor_classes(qs, mask, SIZE, LAT) == batch.classes
    assert batch.counts() == {"inside": 1, "ring": 4, "far": 2, "hard": 0}


def test_union_hook_marks_the_anchor_whose_mask_hurts() -> None:
    # Candidate of anchor 0 is the GT square (64 px); anchor 1's is a 64-px strip outside it. Union IoU is
    # 64/128 = 0.5 with both and 1.0 without the strip, so anchor 1 (Ring on its own) becomes Hard-Delete;
    # dropping anchor 0 would leave IoU 0, so it stays Inside.
    gt = _square()
    strip = np.zeros_like(gt)
    strip[:, 0:4] = True
    result = classify_anchors([(2, 2), (1, 1)], gt, SIZE, LAT, candidate_masks=[gt, strip])
    assert result.classes == [IN, HD]
    assert result.offsets == [(0, 0), None]


def test_empty_mask_makes_everything_far_and_bad_shape_is_rejected() -> None:
    empty = np.zeros((16, 16), dtype=bool)
    assert classify_anchors([(0, 0), (3, 3)], empty, SIZE, LAT).classes == [FA, FA]
    with pytest.raises(ValueError, match="does not match"):
        classify_anchors([(0, 0)], np.zeros((15, 16), dtype=bool), SIZE, LAT)


def test_radii_scale_with_the_step() -> None:
    # 640×480, n = 32, m = 2: step 10 px × 7.5 px → radii ceil: (10, 8); two steps → (20, 15)
    lat = OffsetLattice(32, 2)
    assert MaskClassConfig().radii(lat, (640, 480)) == ((10, 8), (10, 8))
    assert MaskClassConfig(erode_steps=2, dilate_steps=2).radii(lat, (640, 480)) == ((20, 15), (20, 15))
    assert MaskClassConfig().radii(lat, (20, 20)) == ((1, 1), (1, 1))  # never below one pixel
