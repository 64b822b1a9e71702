"""Separable numpy erosion/dilation: hand rows, and agreement with scipy.ndimage (test-only dependency)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from gtok_cli.refine.morphology import dilate, erode

ndimage = pytest.importorskip("scipy.ndimage")


@pytest.mark.parametrize(
    ("row", "r", "eroded", "dilated"),
    [
        # worked by hand on one row (ry = 0): erosion keeps pixels whose ±r window is all ones (window cut
        # at the border), dilation marks pixels with any one within ±r
        ("0111110", 1, "0011100", "1111111"),
        ("1100000", 1, "1000000", "1110000"),  # border pixel survives erosion: outside is ignored
        ("0001000", 2, "0000000", "0111110"),
        ("0000000", 3, "0000000", "0000000"),
    ],
)
def test_one_row_by_hand(row: str, r: int, eroded: str, dilated: str) -> None:
    a = np.array([[c == "1" for c in row]])
    assert "".join("1" if v else "0" for v in erode(a, r, 0)[0]) == eroded
    assert "".join("1" if v else "0" for v in dilate(a, r, 0)[0]) == dilated


@settings(max_examples=60, deadline=None)
@given(
    mask=arrays(np.bool_, st.tuples(st.integers(1, 14), st.integers(1, 14))),
    rx=st.integers(0, 4),
    ry=st.integers(0, 4),
)
def test_matches_scipy(mask: np.ndarray, rx: int, ry: int) -> None:
    structure = np.ones((2 * ry + 1, 2 * rx + 1), dtype=bool)
    assert np.array_equal(dilate(mask, rx, ry), ndimage.binary_dilation(mask, structure=structure))
    assert np.array_equal(
        erode(mask, rx, ry), ndimage.binary_erosion(mask, structure=structure, border_value=1)
    )
