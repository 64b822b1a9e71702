"""Pages: one sample (image + text panel under it) and a contact sheet of several.

Single sample: the canvas is ``max(W, MIN_WIDTH)`` wide (a narrower image is centred) and
``H + panel_height(lines)`` tall, where ``panel_height(L) = 2 * PAD + L * LINE_H`` and the lines are: the
header (id, scheme, task; wrapped), the legend (:func:`legend_items`), each conversation turn wrapped to the
panel width (at most ``max_turn_lines`` lines per turn), then one line per decode problem (at most 3).

Contact sheet: ``cols = ceil(sqrt(N))``, ``rows = ceil(N / cols)``; each tile is ``TILE_W`` wide: the image
scaled to fit ``TILE_W x TILE_IMG_H`` then ``SHEET_LINES`` text lines; the legend runs across the top::

    width  = cols * TILE_W + (cols + 1) * GAP
    height = panel_height(1) + rows * (TILE_IMG_H + panel_height(SHEET_LINES)) + (rows + 1) * GAP
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from PIL import Image, ImageDraw

from gtok_cli.images import Font, font
from gtok_cli.show import draw
from gtok_cli.show.sample import View

PAD = 8
FONT_SIZE = 14
LINE_H = 18
MIN_WIDTH = 480
PANEL_BG: draw.RGB = (24, 24, 28)
SHEET_BG: draw.RGB = (12, 12, 14)
TEXT: draw.RGB = (235, 235, 235)
DIM: draw.RGB = (160, 160, 170)
ROLE: dict[str, draw.RGB] = {"user": (140, 200, 255), "assistant": (255, 210, 120), "text": TEXT}
TILE_W = 400
TILE_IMG_H = 300
SHEET_LINES = 5
GAP = 10
MAX_ERROR_LINES = 3


def panel_height(lines: int) -> int:
    return 2 * PAD + lines * LINE_H


def wrap(text: str, width: int, fnt: Font) -> list[str]:
    """``text`` broken into lines no wider than ``width`` pixels: at spaces, inside words that are longer
    than a line (token runs like ``<grid_3_4><grid_5_6>…``), and at newlines."""
    out: list[str] = []
    for para in text.split("\n"):
        line = ""
        for word in para.split(" "):
            candidate = word if not line else f"{line} {word}"
            if fnt.getlength(candidate) <= width:
                line = candidate
                continue
            if line:
                out.append(line)
            line = ""
            while fnt.getlength(word) > width:
                cut = max(1, _fit_chars(word, width, fnt))
                out.append(word[:cut])
                word = word[cut:]
            line = word
        out.append(line)
    return out


def _fit_chars(word: str, width: int, fnt: Font) -> int:
    lo, hi = 0, len(word)
    while lo < hi:  # the longest prefix that fits
        mid = (lo + hi + 1) // 2
        if fnt.getlength(word[:mid]) <= width:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _clip(lines: list[str], limit: int) -> list[str]:
    if len(lines) <= limit:
        return lines
    more = len(lines) - limit + 1
    return [*lines[: limit - 1], f"… ({more} more lines)"]


Line = tuple[str, draw.RGB]


def panel_lines(view: View, width: int, max_turn_lines: int, fnt: Font) -> list[Line | None]:
    """The text lines of a sample's panel (None: the legend line)."""
    inner = width - 2 * PAD
    header = wrap(f"{view.title}  ·  {view.info}", inner, fnt)
    lines: list[Line | None] = [(t, DIM) for t in header]
    lines.append(None)
    for role, text in view.turns:
        prefix = f"{role}: "
        wrapped = _clip(wrap(prefix + text, inner, fnt), max_turn_lines)
        lines += [(t, ROLE.get(role, TEXT)) for t in wrapped]
    errs = view.decode_errors
    for e in errs[: MAX_ERROR_LINES - 1] if len(errs) > MAX_ERROR_LINES else errs:
        lines.append((_fit(f"! {e}", inner, fnt), (255, 120, 120)))
    if len(errs) > MAX_ERROR_LINES:
        lines.append((f"! … {len(errs) - MAX_ERROR_LINES + 1} more decode problems", (255, 120, 120)))
    return lines


def _fit(text: str, width: int, fnt: Font) -> str:
    if fnt.getlength(text) <= width:
        return text
    return text[: max(1, _fit_chars(text, width - int(fnt.getlength("…")), fnt))] + "…"


Stroke = Literal["solid", "dotted", "dashed"]


def legend_items(views: Sequence[View]) -> list[tuple[Stroke, str]]:
    """The legend of a page or sheet of ``views``: (stroke, name) per kind of item drawn.

    ``── from tokens  - - ground truth (meta)``; on propose-and-refine pictures (any view with offset turns)
    ``┈┈ proposal  ── refined  - - ground truth (…)``; a records input none of whose regions has
    ``mask_tokens`` draws no decoded item, so its legend names the truth only. Names come from the first view
    (one source per picture); with no views: ``from tokens`` and ``ground truth``.
    """
    if not views:
        return [("solid", "from tokens"), ("dashed", "ground truth")]
    first = views[0]
    truth: tuple[Stroke, str] = ("dashed", f"ground truth ({first.truth_from})")
    if any(v.refine_turns > 0 for v in views):
        return [("dotted", "proposal"), ("solid", "refined"), truth]
    if first.tokens_from == "mask_tokens" and not any(mt for v in views for mt in v.mask_tokens):
        return [truth]
    return [("solid", f"from {first.tokens_from}"), truth]


def draw_legend(
    pen: ImageDraw.ImageDraw, x: int, y: int, items: Sequence[tuple[Stroke, str]], fnt: Font
) -> None:
    """The legend items with sample strokes, on one text line (:func:`legend_items`)."""
    mid = y + LINE_H // 2
    for stroke, name in items:
        line = [(x, mid), (x + 28, mid)]
        draw.polyline(pen, line, TEXT, 2, dashed=stroke == "dashed", dotted=stroke == "dotted")
        x += 34
        pen.text((x, y), name, fill=TEXT, font=fnt)
        x += int(fnt.getlength(name)) + 18


def _draw_lines(pen: ImageDraw.ImageDraw, x: int, y: int, lines: Sequence[Line | None], view: View) -> None:
    fnt = font(FONT_SIZE)
    for k, line in enumerate(lines):
        ty = y + k * LINE_H
        if line is None:
            draw_legend(pen, x, ty, legend_items([view]), fnt)
        else:
            pen.text((x, ty), line[0], fill=line[1], font=fnt)


def page(image: Image.Image, view: View, max_turn_lines: int = 12) -> Image.Image:
    """The drawn image with the sample's text panel under it."""
    width = max(image.width, MIN_WIDTH)
    lines = panel_lines(view, width, max_turn_lines, font(FONT_SIZE))
    canvas = Image.new("RGB", (width, image.height + panel_height(len(lines))), PANEL_BG)
    canvas.paste(image, ((width - image.width) // 2, 0))  # narrow images centred over the panel
    _draw_lines(ImageDraw.Draw(canvas), PAD, image.height + PAD, lines, view)
    return canvas


def sheet_size(n: int) -> tuple[int, int, int]:
    """``(width, height, cols)`` of a contact sheet of ``n`` samples."""
    cols = max(1, math.ceil(math.sqrt(n)))
    rows = max(1, math.ceil(n / cols))
    tile_h = TILE_IMG_H + panel_height(SHEET_LINES)
    return cols * TILE_W + (cols + 1) * GAP, panel_height(1) + rows * tile_h + (rows + 1) * GAP, cols


def tile_scale(size: tuple[int, int]) -> float:
    """The scale that fits an image of ``size`` into ``TILE_W x TILE_IMG_H``."""
    return min(TILE_W / size[0], TILE_IMG_H / size[1])


def sheet(tiles: Sequence[tuple[Image.Image, View]]) -> Image.Image:
    """Images already scaled with :func:`tile_scale` and drawn, with their views, as a contact sheet."""
    width, height, cols = sheet_size(len(tiles))
    canvas = Image.new("RGB", (width, height), SHEET_BG)
    pen = ImageDraw.Draw(canvas)
    fnt = font(FONT_SIZE)
    draw_legend(pen, GAP + PAD, PAD, legend_items([view for _, view in tiles]), fnt)
    tile_h = TILE_IMG_H + panel_height(SHEET_LINES)
    top = panel_height(1)
    for k, (image, view) in enumerate(tiles):
        r, c = divmod(k, cols)
        x0 = GAP + c * (TILE_W + GAP)
        y0 = top + GAP + r * (tile_h + GAP)
        pen.rectangle((x0, y0, x0 + TILE_W - 1, y0 + tile_h - 1), fill=PANEL_BG)
        canvas.paste(image, (x0 + (TILE_W - image.width) // 2, y0 + (TILE_IMG_H - image.height) // 2))
        full = panel_lines(view, TILE_W, SHEET_LINES, fnt)
        legend = full.index(None)
        # one header line (clipped) and no legend: the legend is at the top of the sheet
        header = " ".join(ln[0] for ln in full[:legend] if ln is not None)
        lines = [(_fit(header, TILE_W - 2 * PAD, fnt), DIM), *(ln for ln in full[legend + 1 :] if ln)]
        if len(lines) > SHEET_LINES:
            lines = [*lines[: SHEET_LINES - 1], ("…", DIM)]
        _draw_lines(pen, x0 + PAD, y0 + TILE_IMG_H + PAD, lines, view)
    return canvas
