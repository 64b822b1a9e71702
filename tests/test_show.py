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


# ---- grid overlay: the scheme's lattice (issue 12, row 16) -------------------------------------------------
# The expected pixels are worked by hand from each scheme's definition (gtok_cli/codecs/*.py docstrings and
# gtok_cli/show/overlay.py's table), on the 640x480 blank image. A position p is drawn at pixel ceil(p - 0.5).
# Ticks: every k-th lattice value with k the smallest of 1, 2, 5, 10, 20, … giving >= 8 px.
#   1000 values on 640 px: 0.64 px each, k = 20 (12.8 px): x = 12.8 m -> 13 (q=20), 64 (q=100), 320 (q=500);
#   on 480 px: 0.48 px, k = 20 (9.6 px): y -> 10 (q=20), 48 (q=100), 240 (q=500); between: x 70, y 53.
#   bins 100: 6.4 px, k = 2 (12.8 px): the same columns as q = 20, 100, 500 of 1000.
#   paligemma q/1023: 0.6256 px, k = 20 (12.51 px): q=500 -> 312.8 -> 313, q=1000 -> 625.6 -> 626;
#     y 0.4692 px: q=500 -> 234.6 -> 235; x 319 lies between ticks 313 and 325.6 (q=520).
#   qwen2.5-vl: smart_resize(640, 480) = (23*28, 17*28) = (644, 476); x step 640/644 = 0.9938, k = 10:
#     q=100 -> 99.38 -> 99, q=320 -> 318.0 -> 318; y step 480/476 = 1.0084, k = 10: q=100 -> 100.8 -> 101,
#     q=470 -> 473.9 -> 474; between: x 104 (q=105), y 106.
#   shikra (precision 3): square canvas S = 640, the image centred at dy = (640-480)//2 = 80: y = 0.64 q - 80,
#     k = 20: q=160 -> 22.4 -> 22, q=180 -> 35.2 -> 35, q=500 -> 240; row 29 (loc's q=60) is between ticks.
THOUSAND = ([13, 64, 320], 70, [10, 48, 240], 53)


@pytest.mark.parametrize(
    ("scheme", "args", "xs", "x_gap", "ys", "y_gap"),
    [
        ("bins", [], *THOUSAND),
        ("bins", ["--bins", "100"], *THOUSAND),
        ("loc", [], *THOUSAND),
        ("qwen-vl", [], *THOUSAND),
        ("qwen2-vl", [], *THOUSAND),
        ("qwen3-vl", [], *THOUSAND),
        ("ferret", [], *THOUSAND),
        ("paligemma", [], [313, 626], 319, [235], 229),
        ("qwen2.5-vl", [], [99, 318], 104, [101, 474], 106),
        ("shikra", [], [13, 64, 320], 70, [22, 35, 240], 29),
        ("internvl", [], *THOUSAND),
        ("gemini", [], *THOUSAND),
        ("cogvlm", [], *THOUSAND),
        ("minigpt-v2", [], *THOUSAND),  # as bins 100
        ("molmo", ["--box-as", "center"], *THOUSAND),  # tenths of a percent: 1000 values
        # deepseek-vl2 q/999: 0.6406 px, k = 20: q=20 -> 12.8 -> 13, q=100 -> 64.06 -> 64, q=500 -> 320.3;
        #   y 0.4805 px, k = 20 (9.6 px): 9.6 -> 10, 48.05 -> 48, 240.2 -> 240: the same pixels as 1000
        ("deepseek-vl2", [], *THOUSAND),
    ],
)
def test_grid_overlay_ticks_sit_on_the_scheme_lattice(
    tmp_path: Path,
    blank: Path,
    scheme: str,
    args: list[str],
    xs: list[int],
    x_gap: int,
    ys: list[int],
    y_gap: int,
) -> None:
    rec = _record("r0", "blank.png", (640, 480), [200.0, 150.0, 400.0, 300.0])  # clear of every edge
    shards = _export(tmp_path, [rec], "--scheme", scheme, *args)
    out = tmp_path / "page.png"
    res = gtok("show", shards, "--images", blank, "--out", out, "--grid-overlay")
    assert res.exit_code == 0, res.output
    im = Image.open(out).convert("RGB")
    white = draw.OVERLAY
    for x in xs:  # top and bottom edges
        assert im.getpixel((x, 2)) == white and im.getpixel((x, 477)) == white, x
    for y in ys:  # left and right edges
        assert im.getpixel((2, y)) == white and im.getpixel((637, y)) == white, y
    assert im.getpixel((x_gap, 2)) == GRAY and im.getpixel((2, y_gap)) == GRAY  # between two ticks
    assert im.getpixel((320, 240)) == GRAY  # ticks stay on the edges


@pytest.mark.parametrize(
    ("scheme", "args", "step_x", "step_y"),
    [
        ("grid", [], 20, 15),  # 32 cells: 640/32, 480/32
        ("kosmos2", [], 20, 15),  # its default grid is 32 too
        ("kosmos2", ["--grid", "16"], 40, 30),
    ],
)
def test_grid_overlay_cell_lines(
    tmp_path: Path, blank: Path, scheme: str, args: list[str], step_x: int, step_y: int
) -> None:
    rec = _record("r0", "blank.png", (640, 480), [200.0, 150.0, 400.0, 300.0])
    shards = _export(tmp_path, [rec], "--scheme", scheme, *args)
    out = tmp_path / "page.png"
    assert gtok("show", shards, "--images", blank, "--out", out, "--grid-overlay").exit_code == 0
    im = Image.open(out).convert("RGB")
    line = 128 + (255 - 128) * 90 / 255  # white at alpha 90/255 over the gray: 172.8
    mid_y, mid_x = step_y // 2, step_x // 2  # inside the first row / column of cells, off every line
    for x in (step_x, 640 - step_x):
        assert all(abs(c - line) <= 1 for c in im.getpixel((x, mid_y))), x
        assert im.getpixel((x + mid_x, mid_y)) == GRAY
    for y in (step_y, 480 - step_y):
        assert all(abs(c - line) <= 1 for c in im.getpixel((mid_x, y))), y
        assert im.getpixel((mid_x, y + mid_y)) == GRAY


def test_grid_overlay_refused_when_nothing_has_a_lattice(tmp_path: Path, blank: Path) -> None:
    src = write_records(
        tmp_path / "rec.jsonl", [_record("r0", "blank.png", (640, 480), [1.0, 1.0, 9.0, 9.0])]
    )
    out = tmp_path / "x.png"
    res = gtok("show", src, "--images", blank, "--out", out, "--grid-overlay")
    assert res.exit_code == 2
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and "--grid-overlay" in lines[0] and "mask_tokens" in lines[0]
    assert not out.exists()


# ---- output format -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["page.jpg", "page.jpeg", "PAGE.JPG"])
def test_out_jpeg_writes_a_jpeg(tmp_path: Path, sample_data: Path, name: str) -> None:
    shards = _export(
        tmp_path, [_record("r0", REAL_IMAGE, (640, 423), [100.0, 50.0, 300.0, 400.0])], "--scheme", "loc"
    )
    out = tmp_path / name
    res = gtok("show", shards, "--images", sample_data / "coco/val2017", "--out", out)
    assert res.exit_code == 0, res.output
    with Image.open(out) as im:
        assert im.format == "JPEG" and im.mode == "RGB"
        assert im.size == (640, 423 + 2 * layout.PAD + 4 * layout.LINE_H)  # as the PNG page


@pytest.mark.parametrize(
    ("name", "extra", "words"),
    [
        ("page.gif", [], ".png, .jpg, .jpeg"),
        ("page.webp", [], ".png, .jpg, .jpeg"),
        ("page", [], ".png, .jpg, .jpeg"),
        ("page.jpg", ["--palette"], "--palette"),
    ],
)
def test_out_bad_suffix_exits_2(tmp_path: Path, blank: Path, name: str, extra: list[str], words: str) -> None:
    shards = _export(
        tmp_path, [_record("r0", "blank.png", (640, 480), [10.0, 10.0, 99.0, 99.0])], "--scheme", "loc"
    )
    out = tmp_path / name
    res = gtok("show", shards, "--images", blank, "--out", out, *extra)
    assert res.exit_code == 2
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and name in lines[0]
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images", "records.jsonl", "shards"]


# ---- legend ------------------------------------------------------------------------------------------------
def _view(**kw: Any) -> Any:
    from gtok_cli.show.sample import View

    return View(title="t", image_file="-", size=(640, 480), turns=[], **kw)


MT = {"grid": 16, "anchors": [[0, 0]], "iou": 0.5, "backend": "cells", "tau": 0.9, "variant": "sorted"}


@pytest.mark.parametrize(
    ("views", "want"),
    [
        ([{}], [("solid", "from tokens"), ("dashed", "ground truth (meta)")]),
        (
            [{"refine_turns": 2}],
            [("dotted", "proposal"), ("solid", "refined"), ("dashed", "ground truth (meta)")],
        ),
        (
            [{"truth_from": "meta + records", "refine_turns": 1}],
            [("dotted", "proposal"), ("solid", "refined"), ("dashed", "ground truth (meta + records)")],
        ),
        (  # sheet: one refine tile makes it a refine legend
            [{}, {"refine_turns": 1}],
            [("dotted", "proposal"), ("solid", "refined"), ("dashed", "ground truth (meta)")],
        ),
        (
            [{"tokens_from": "mask_tokens", "truth_from": "record", "mask_tokens": [MT]}],
            [("solid", "from mask_tokens"), ("dashed", "ground truth (record)")],
        ),
        (  # records without mask tokens: nothing decoded, nothing to name
            [{"tokens_from": "mask_tokens", "truth_from": "record", "mask_tokens": [None, None]}],
            [("dashed", "ground truth (record)")],
        ),
        ([{"tokens_from": "mask_tokens", "truth_from": "record"}], [("dashed", "ground truth (record)")]),
        (  # a sheet where one record has mask tokens
            [
                {"tokens_from": "mask_tokens", "truth_from": "record", "mask_tokens": [None]},
                {"tokens_from": "mask_tokens", "truth_from": "record", "mask_tokens": [MT]},
            ],
            [("solid", "from mask_tokens"), ("dashed", "ground truth (record)")],
        ),
        ([], [("solid", "from tokens"), ("dashed", "ground truth")]),  # an empty sheet
    ],
)
def test_legend_items(views: list[dict[str, Any]], want: list[tuple[str, str]]) -> None:
    assert layout.legend_items([_view(**kw) for kw in views]) == want


# ---- refinement pictures -----------------------------------------------------------------------------------
def test_refine_export_view_has_proposal_and_refined(tmp_path: Path, blank: Path) -> None:
    from gtok_cli.show.sample import open_source, select_views

    rec = _record("r0", "blank.png", (640, 480), [150.0, 100.0, 400.0, 350.0])
    src = write_records(tmp_path / "records.jsonl", [rec])
    out = tmp_path / "shards"
    res = gtok("export", src, "--task", "refine", "--scheme", "grid", "--refine-turns", "2", "--out", out)
    assert res.exit_code == 0, res.output
    (view,) = select_views(open_source(out, None, blank))
    assert view.refine_turns == 2 and len(view.decoded) == 1 and len(view.refined) == 1
    assert view.refined_region == [0] and not view.decode_errors
    assert [name for _, name in layout.legend_items([view])] == ["proposal", "refined", "ground truth (meta)"]
    page = tmp_path / "page.png"
    assert gtok("show", out, "--images", blank, "--out", page).exit_code == 0


@pytest.mark.parametrize(
    ("turns", "want", "errors"),
    [
        # grid 32, offset step half a cell on 640x480: one step is (10, 7.5) px. Proposal cells (0, 0) and
        # (6, 5): centres (10, 7.5) and (130, 82.5).
        ([], (10.0, 7.5, 130.0, 82.5), 0),
        (["<offset><box><OFF_0_0><OFF_0_1></box></offset>"], (10.0, 7.5, 130.0, 90.0), 0),
        (
            [
                "<offset><box><OFF_0_0><OFF_0_1></box></offset>",
                "<offset><box><OFF_1_0><OFF_1_1></box></offset>",
            ],
            (20.0, 7.5, 140.0, 97.5),
            0,
        ),
        (["<offset><box><DELETE><DELETE></box></offset>"], None, 0),  # every anchor deleted: gone
        (["<offset><box><OFF_0_0><DELETE></box></offset>"], None, 1),  # half a box: dropped, reported
        (  # two shapes for one: the pairing would be a guess, nothing applied
            ["<offset><box><OFF_1_0><OFF_1_0></box>, <box><OFF_0_0><OFF_0_0></box></offset>"],
            (10.0, 7.5, 130.0, 82.5),
            1,
        ),
    ],
)
def test_refinement_replay(turns: list[str], want: tuple[float, ...] | None, errors: int) -> None:
    from gtok_cli.codecs import Shape, get_codec
    from gtok_cli.refine.replay import replay

    codec = get_codec("grid")
    proposal = codec.decode("<box><grid_0_0><grid_6_5></box>", (640, 480)).shapes()
    assert proposal == [Shape.box(10.0, 7.5, 130.0, 82.5)]
    after = replay(codec, [(3, proposal[0])], turns, (640, 480))
    assert [s.coords for _, s in after.shapes] == ([] if want is None else [want])
    assert all(region == 3 for region, _ in after.shapes)
    assert len(after.errors) == errors


def test_refine_picture_draws_proposal_dotted_and_refined_solid() -> None:
    from gtok_cli.codecs import Shape
    from gtok_cli.show.scene import render_regions

    view = _view(
        decoded=[Shape.box(100.0, 100.0, 300.0, 300.0)],
        decoded_labels=[None],
        decoded_region=[0],
        refined=[Shape.box(120.0, 120.0, 320.0, 320.0)],
        refined_region=[0],
        refine_turns=1,
    )
    im = render_regions(Image.new("RGB", (640, 480), GRAY), view)
    red = draw.PALETTE[0]
    assert all(im.getpixel((320, y)) == red for y in range(150, 290))  # refined: solid
    proposal = [im.getpixel((100, y)) for y in range(150, 290)]  # proposal: dots and gaps
    assert proposal.count(red) > 20 and proposal.count(GRAY) > 20
    assert im.getpixel((200, 200)) == GRAY
