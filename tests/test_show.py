"""`gtok show`: page and sheet sizes, regions drawn on the right pixels, one-line errors (issue 7)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from _export_helpers import gtok, region, write_records
from PIL import Image

from gtok_cli.images import font
from gtok_cli.show import draw, layout

GRAY = (128, 128, 128)
REAL_IMAGE = "000000229358.jpg"  # sample_data/coco/val2017, 640x423


def _record(rid: str, file: str, size: tuple[int, int], bbox: list[float], **kw: Any) -> dict[str, Any]:
    return {
        "id": rid,
        "dataset": "refcoco",
        "split": "val",
        "task": "referring",
        "text": "dog",
        "image": {"file": file, "width": size[0], "height": size[1], "id": 1},
        "regions": [region(bbox, label="dog", **kw)],
        "source": {"image_id": 1},
    }


def _export(tmp: Path, records: list[dict[str, Any]], *args: str) -> Path:
    src = write_records(tmp / "records.jsonl", records)
    out = tmp / "shards"
    res = gtok("export", src, "--task", "rec", "--out", out, *args)
    assert res.exit_code == 0, res.output
    return out


@pytest.fixture
def blank(tmp_path: Path) -> Path:
    """A 640x480 mid-gray image: every drawn pixel shows against it."""
    images = tmp_path / "images"
    images.mkdir()
    Image.new("RGB", (640, 480), GRAY).save(images / "blank.png")
    return images


def test_decoded_box_lands_on_its_pixels_solid_truth_dashed(tmp_path: Path, blank: Path) -> None:
    # grid 32 on 640x480, box [150, 100, 400, 350] (worked by hand from docs/spec.md#getok-v1):
    # TL = (floor(150/20), floor(100/15)) = (7, 6); BR = (ceil(400/20 - 1), ceil(350/15 - 1)) = (19, 23);
    # decoded cell centres: x1 = 7.5*20 = 150, y1 = 6.5*15 = 97.5, x2 = 19.5*20 = 390, y2 = 23.5*15 = 352.5
    shards = _export(
        tmp_path, [_record("r0", "blank.png", (640, 480), [150.0, 100.0, 400.0, 350.0])], "--scheme", "grid"
    )
    out = tmp_path / "page.png"
    res = gtok("show", shards, "--images", blank, "--out", out)
    assert res.exit_code == 0, res.output
    im = Image.open(out).convert("RGB")
    red = draw.PALETTE[0]
    decoded_right = [im.getpixel((390, y)) for y in range(120, 330)]
    assert all(p == red for p in decoded_right)  # solid, region 0's colour
    assert all(im.getpixel((150, y)) == red for y in range(120, 330))  # left edges of both coincide
    truth_right = [im.getpixel((400, y)) for y in range(120, 330)]
    assert truth_right.count(red) > 50 and truth_right.count(GRAY) > 50  # dashed: colour and gaps
    assert im.getpixel((395, 225)) == GRAY  # between the two right edges nothing is drawn
    assert im.getpixel((300, 225)) == GRAY  # a box is an outline, not a fill


def test_page_is_image_plus_text_panel(tmp_path: Path, sample_data: Path) -> None:
    shards = _export(
        tmp_path, [_record("r0", REAL_IMAGE, (640, 423), [100.0, 50.0, 300.0, 400.0])], "--scheme", "loc"
    )
    out = tmp_path / "page.png"
    res = gtok("show", shards, "--images", sample_data / "coco/val2017", "--out", out, "--index", "0")
    assert res.exit_code == 0, res.output
    # lines: header, legend, "user: <prompt> dog", "assistant: <loc_…>x4" -> 4, each fits one line
    assert Image.open(out).size == (640, 423 + 2 * layout.PAD + 4 * layout.LINE_H)


def test_records_input_draws_mask_tokens_as_cells(tmp_path: Path, blank: Path) -> None:
    # mask = the rectangle [0, 0, 40, 30] as a polygon; its tokens: cells (0,0), (1,0) of a 16x16 grid on
    # 640x480 (cell = 40x30 px), so the cell union spans x 0..79, y 0..29 and is tinted red
    poly = [[0.0, 0.0, 40.0, 0.0, 40.0, 30.0, 0.0, 30.0]]
    tokens = {
        "grid": 16,
        "anchors": [[0, 0], [1, 0]],
        "iou": 0.5,
        "backend": "cells",
        "tau": 0.9,
        "variant": "sorted",
    }
    rec = _record("m0", "blank.png", (640, 480), [0.0, 0.0, 40.0, 30.0], mask=poly, mask_tokens=tokens)
    src = write_records(tmp_path / "rec.jsonl", [rec])
    out = tmp_path / "rec.png"
    assert gtok("show", src, "--images", blank, "--out", out).exit_code == 0
    im = Image.open(out).convert("RGB")
    inside = im.getpixel((60, 15))  # in cell (1, 0), away from every outline
    red = draw.PALETTE[0]
    want = tuple(int(g * 0.65 + c * 0.35) for g, c in zip(GRAY, red, strict=True))  # 35 % tint
    assert inside == want
    assert im.getpixel((120, 15)) == GRAY  # cell (3, 0) holds no token


def test_contact_sheet_size(tmp_path: Path, blank: Path) -> None:
    recs = [_record(f"r{k}", "blank.png", (640, 480), [10.0 + k, 10.0, 200.0, 200.0]) for k in range(5)]
    shards = _export(tmp_path, recs, "--scheme", "bins")
    out = tmp_path / "sheet.png"
    assert (
        gtok("show", shards, "--images", blank, "--out", out, "--sample", "3", "--seed", "1").exit_code == 0
    )
    # 3 samples: cols = ceil(sqrt(3)) = 2, rows = 2; tile = 400 x (300 + 2*8 + 5*18 = 406); gaps 10
    assert Image.open(out).size == (2 * 400 + 3 * 10, (2 * 8 + 18) + 2 * 406 + 3 * 10)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--index", "7"], "index out of range"),
        (["--index", "-1"], "bad index"),
        (["--id", "nope"], "no sample with this id"),
    ],
)
def test_bad_selection_exits_2_with_one_line(
    tmp_path: Path, blank: Path, args: list[str], words: str
) -> None:
    shards = _export(
        tmp_path, [_record("r0", "blank.png", (640, 480), [10.0, 10.0, 99.0, 99.0])], "--scheme", "loc"
    )
    res = gtok("show", shards, "--images", blank, "--out", tmp_path / "x.png", *args)
    assert res.exit_code == 2
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and words in lines[0]
    assert not (tmp_path / "x.png").exists()


def test_missing_image_exits_2_with_one_line(tmp_path: Path, blank: Path) -> None:
    shards = _export(
        tmp_path, [_record("r0", "gone.png", (640, 480), [10.0, 10.0, 99.0, 99.0])], "--scheme", "loc"
    )
    res = gtok("show", shards, "--images", blank, "--out", tmp_path / "x.png")
    assert res.exit_code == 2
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and "image file not found" in lines[0] and "gone.png" in lines[0]


@pytest.mark.parametrize(
    ("text", "fits", "want"),
    [
        ("a b c", "a b c", ["a b c"]),  # fits: one line
        ("aa bb cc", "aa bb", ["aa bb", "cc"]),  # breaks at the space
        ("<grid_1_2><grid_3_4>", "<grid_1_2>", ["<grid_1_2>", "<grid_3_4>"]),  # token run broken inside
        ("one\ntwo", "one two", ["one", "two"]),  # newlines kept
    ],
)
def test_wrap(text: str, fits: str, want: list[str]) -> None:
    fnt = font(layout.FONT_SIZE)
    width = math.ceil(max(fnt.getlength(fits), *(fnt.getlength(w) for w in want)))
    assert layout.wrap(text, width, fnt) == want


def test_sam_solved_tokens_draw_the_candidate_union_not_cells() -> None:
    # A 2x2 grid whose candidate 0 (anchor (0, 0)) is a 40x40 square at x 300..339, y 200..239: a SAM-like
    # candidate far from cell (0, 0) (which is x 0..319, y 0..239). Drawn with the candidates hook, the tint
    # must be on the square, not on the cell.
    import numpy as np

    from gtok_cli.codecs import Shape
    from gtok_cli.geometry.bits import pack_rows
    from gtok_cli.geometry.candidates import Candidates
    from gtok_cli.show.sample import View
    from gtok_cli.show.scene import render_regions

    dense = np.zeros((4, 480, 640), dtype=bool)
    dense[0, 200:240, 300:340] = True
    cands = Candidates(2, 640, 480, packed=pack_rows(dense), source="test")
    mt = {"grid": 2, "anchors": [[0, 0]], "iou": 1.0, "backend": "sam", "tau": 0.9, "variant": "sorted"}
    view = View(
        title="t",
        image_file="-",
        size=(640, 480),
        turns=[],
        decoded=[Shape("mask", (160.0, 120.0), ((0, 0),))],
        decoded_labels=[None],
        decoded_region=[0],
        mask_tokens=[mt],
        grid=2,
    )
    full = Image.new("RGB", (640, 480), GRAY)
    im = render_regions(
        full, view, candidates_for=lambda v, m, f: cands if m and m["backend"] == "sam" else None
    )
    assert im.getpixel((320, 220)) != GRAY  # inside the candidate: tinted
    assert im.getpixel((100, 100)) == GRAY  # inside cell (0, 0) but outside the candidate: untouched
    cells = render_regions(full, view)  # no hook: the anchor's own cell
    assert cells.getpixel((100, 100)) != GRAY
