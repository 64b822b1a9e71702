"""Pillow drawing primitives that read at a glance on any photo.

Every stroke is drawn twice: a dark outline ``outline_width(w)`` wide, then the bright colour on top, so a
region shows on light and dark images alike. Solid strokes are what the tokens say (decoded); dashed strokes
are the ground truth; dotted strokes are a refinement conversation's turn-1 proposal (its refined answer is
solid). Masks are a translucent fill plus the outline of their boundary.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from gtok_cli.images import Font, font

RGB = tuple[int, int, int]

PALETTE: tuple[RGB, ...] = (
    (255, 64, 64),  # red
    (40, 160, 255),  # blue
    (255, 205, 0),  # yellow
    (0, 220, 110),  # green
    (255, 100, 225),  # pink
    (170, 120, 255),  # violet
    (255, 140, 0),  # orange
    (0, 230, 230),  # cyan
    (185, 235, 40),  # lime
    (255, 170, 150),  # salmon
)
"""Bright, mutually distinct region colours; region k gets ``PALETTE[k % len(PALETTE)]``."""
DARK: RGB = (0, 0, 0)
DASH = 8
"""Dash length (pixels) of ground-truth strokes; gaps are as long."""
DOT = 3
"""Dot length (pixels) of proposal strokes; gaps are as long."""
OVERLAY: RGB = (255, 255, 255)
"""Colour of the grid overlay's ticks (and, translucent, of its cell lines)."""
TICK, MAJOR_TICK = 6, 12
"""Length (pixels) of a lattice tick and of a labelled one."""
TICK_FONT = 10


def colour(k: int) -> RGB:
    return PALETTE[k % len(PALETTE)]


def text_colour(background: RGB) -> RGB:
    """Black or white, whichever reads better on ``background`` (Rec. 601 luma)."""
    r, g, b = background
    return (0, 0, 0) if 0.299 * r + 0.587 * g + 0.114 * b > 140 else (255, 255, 255)


def stroke_width(width: int, height: int) -> int:
    """The bright stroke's width for an image of this size (2 px up to ~600 px, growing slowly)."""
    return max(2, round(min(width, height) / 250))


def _dashes(p: tuple[float, float], q: tuple[float, float], dash: int) -> list[tuple[float, ...]]:
    """The dash segments of the line p→q (dash on, dash off, starting with a dash at p)."""
    length = math.hypot(q[0] - p[0], q[1] - p[1])
    if length == 0:
        return []
    ux, uy = (q[0] - p[0]) / length, (q[1] - p[1]) / length
    out: list[tuple[float, ...]] = []
    t = 0.0
    while t < length:
        e = min(t + dash, length)
        out.append((p[0] + ux * t, p[1] + uy * t, p[0] + ux * e, p[1] + uy * e))
        t += 2 * dash
    return out


def polyline(
    draw: ImageDraw.ImageDraw,
    points: Sequence[tuple[float, float]],
    rgb: RGB,
    width: int,
    *,
    dashed: bool = False,
    closed: bool = False,
    dotted: bool = False,
) -> None:
    """An outlined line through ``points``: dark under, ``rgb`` on top; dashed for ground truth, dotted for a
    proposal."""
    pts = [(float(x), float(y)) for x, y in points]
    if closed and len(pts) > 2:
        pts.append(pts[0])
    segments: list[tuple[float, ...]] = []
    for p, q in itertools.pairwise(pts):
        if dashed or dotted:
            segments += _dashes(p, q, DASH) if dashed else _dashes(p, q, DOT)
        else:
            segments.append((p[0], p[1], q[0], q[1]))
    for w, c in ((width + 2, DARK), (width, rgb)):
        for s in segments:
            draw.line(s, fill=c, width=w)
        if not (dashed or dotted):  # round joints so corners of thick strokes close
            r = (w - 1) / 2
            for x, y in pts:
                draw.ellipse((x - r, y - r, x + r, y + r), fill=c)


def box(
    draw: ImageDraw.ImageDraw,
    xyxy: Sequence[float],
    rgb: RGB,
    width: int,
    *,
    dashed: bool = False,
    dotted: bool = False,
) -> None:
    """A box outline whose stroke is centred on the box's edges (pixel coordinates, continuous)."""
    x1, y1, x2, y2 = (float(v) for v in xyxy)
    pts = [(x1, y1), (x2, y1), (x2, y2), (x1, y2)]
    polyline(draw, pts, rgb, width, dashed=dashed, closed=True, dotted=dotted)


def point(
    draw: ImageDraw.ImageDraw,
    xy: Sequence[float],
    rgb: RGB,
    width: int,
    *,
    dashed: bool = False,
    dotted: bool = False,
) -> None:
    """Decoded point: a filled disc with a dark ring; truth point: a hollow ring twice as large; proposal
    point: a hollow ring as large as the disc."""
    x, y = float(xy[0]), float(xy[1])
    r = 3 * width
    if dotted:
        draw.ellipse((x - r, y - r, x + r, y + r), outline=DARK, width=width + 2)
        draw.ellipse((x - r, y - r, x + r, y + r), outline=rgb, width=width)
    elif dashed:
        draw.ellipse((x - 2 * r, y - 2 * r, x + 2 * r, y + 2 * r), outline=DARK, width=width + 2)
        draw.ellipse((x - 2 * r, y - 2 * r, x + 2 * r, y + 2 * r), outline=rgb, width=width)
    else:
        draw.ellipse((x - r - 1, y - r - 1, x + r + 1, y + r + 1), fill=DARK)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=rgb)


def mask_boundary(mask: np.ndarray, width: int) -> np.ndarray:
    """Pixels within ``width`` of the mask's inner edge (bool, same shape)."""
    img = Image.fromarray(mask.astype(np.uint8) * 255)
    eroded = np.asarray(img.filter(ImageFilter.MinFilter(3))) > 0
    edge = mask & ~eroded
    if width > 1:
        size = width + 1 - (width % 2)  # MaxFilter needs an odd size
        edge = (
            np.asarray(Image.fromarray(edge.astype(np.uint8) * 255).filter(ImageFilter.MaxFilter(size))) > 0
        )
    return edge


def mask(
    image: Image.Image,
    m: np.ndarray,
    rgb: RGB,
    width: int,
    *,
    dashed: bool = False,
    fill_alpha: float = 0.35,
    dotted: bool = False,
) -> None:
    """Paint mask ``m`` (bool ``(H, W)``, image-sized) on ``image`` in place.

    Decoded: translucent fill + solid outlined boundary (dotted for a proposal: dots along the diagonal
    ``(x + y) // DOT``). Truth: a dashed boundary only (dashes along the diagonal ``(x + y) // DASH``), so
    the decoded fill stays visible beneath it.
    """
    if m.shape != (image.height, image.width):
        raise ValueError(f"mask shape {m.shape} differs from the image {image.height}x{image.width}")
    arr = np.asarray(image).copy()
    if not dashed and fill_alpha > 0:
        tint = np.asarray(rgb, dtype=np.float32)
        arr[m] = (arr[m] * (1 - fill_alpha) + tint * fill_alpha).astype(np.uint8)
    outer = mask_boundary(m, width + 2)
    inner = mask_boundary(m, width)
    if dashed or dotted:
        yy, xx = np.indices(m.shape)
        on = ((xx + yy) // (DASH if dashed else DOT)) % 2 == 0
        outer &= on
        inner &= on
    arr[outer] = DARK
    arr[inner] = rgb
    image.paste(Image.fromarray(arr))


def label(
    draw: ImageDraw.ImageDraw,
    xy: tuple[float, float],
    text: str,
    rgb: RGB,
    fnt: Font,
    bounds: tuple[int, int],
) -> None:
    """``text`` on a filled tag of colour ``rgb`` with a dark border, its bottom-left at ``xy`` (moved
    inside ``bounds`` = (width, height) when it would stick out)."""
    left, top, right, bottom = draw.textbbox((0, 0), text, font=fnt)
    tw, th = right - left + 6, bottom - top + 4
    x = min(max(0.0, xy[0]), max(0.0, bounds[0] - tw))
    y = xy[1] - th
    if y < 0:
        y = xy[1]
    y = min(y, max(0.0, bounds[1] - th))
    draw.rectangle((x, y, x + tw, y + th), fill=rgb, outline=DARK)
    draw.text((x + 3 - left, y + 2 - top), text, fill=text_colour(rgb), font=fnt)


def grid_lines(image: Image.Image, xs: Sequence[int], ys: Sequence[int], alpha: int = 90) -> None:
    """Translucent ``OVERLAY`` lines at pixel columns ``xs`` and rows ``ys`` (a grid overlay), in place."""
    overlay = Image.new("RGBA", image.size, (0, 0, 0, 0))
    d = ImageDraw.Draw(overlay)
    for x in xs:
        d.line((x, 0, x, image.height), fill=(*OVERLAY, alpha), width=1)
    for y in ys:
        d.line((0, y, image.width, y), fill=(*OVERLAY, alpha), width=1)
    image.paste(Image.alpha_composite(image.convert("RGBA"), overlay).convert("RGB"))


def ticks(
    image: Image.Image,
    xs: Sequence[tuple[float, str | None]],
    ys: Sequence[tuple[float, str | None]],
) -> None:
    """Lattice ticks along the four edges, in place: ``xs`` (column position, label) on the top and bottom
    edges, ``ys`` on the left and right ones. A tick is ``OVERLAY`` one pixel wide between two dark pixels,
    ``TICK`` long (``MAJOR_TICK`` when labelled); labels sit past the end of the top and left ticks, except
    where they would run into the other edge's ticks (the corners).

    A position p is drawn at pixel ``ceil(p - 0.5)`` (the first pixel whose centre is at or past p, as the
    cell lines of :func:`grid_lines` are), clamped to the image.
    """
    pen = ImageDraw.Draw(image)
    w, h = image.size
    fnt = font(TICK_FONT)
    marks = [(_pixel(p, w), lab, True) for p, lab in xs] + [(_pixel(p, h), lab, False) for p, lab in ys]
    for colour_, grow in ((DARK, 1), (OVERLAY, 0)):
        for c, lab, vertical in marks:
            n = MAJOR_TICK if lab is not None else TICK
            if vertical:
                for y0, y1 in ((0, n - 1), (h - n, h - 1)):
                    pen.rectangle((c - grow, y0, c + grow, y1), fill=colour_)
            else:
                for x0, x1 in ((0, n - 1), (w - n, w - 1)):
                    pen.rectangle((x0, c - grow, x1, c + grow), fill=colour_)
    band = MAJOR_TICK + 2  # labels keep out of the other axis' ticks (no label in the corners)
    for c, lab, vertical in marks:
        if lab is None:
            continue
        left, top, right, bottom = pen.textbbox((0, 0), lab, font=fnt)
        tw, th = right - left, bottom - top
        start = c - (tw if vertical else th) // 2
        if start < band or start + (tw if vertical else th) > (w if vertical else h) - band:
            continue
        at = (start - left, band - top) if vertical else (band - left, start - top)
        pen.text(at, lab, fill=OVERLAY, font=fnt, stroke_width=1, stroke_fill=DARK)


def _pixel(p: float, extent: int) -> int:
    return min(max(math.ceil(p - 0.5), 0), extent - 1)
