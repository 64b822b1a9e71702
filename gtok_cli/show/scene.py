"""One :class:`~gtok_cli.show.sample.View` drawn over its image: decoded shapes solid, truth dashed.

Order (bottom to top): grid overlay (the scheme's lattice, :mod:`.overlay`), decoded mask fills, truth
(dashed), decoded outlines, labels. Region k has colour ``draw.colour(k)`` in both its decoded and truth
forms; every region is labelled once with its phrase. On a propose-and-refine picture the decoded answer is
the turn-1 proposal, drawn dotted, and the answer after the last offset turn is drawn solid on top of it (a
refined mask as discs at its moved anchors). ``scale`` draws on a resized image (contact sheets): geometry
is scaled, masks resized (nearest).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from gtok_cli.codecs import Shape
from gtok_cli.errors import InputError
from gtok_cli.geometry.candidates import cell_edges
from gtok_cli.images import font, open_image_rgb, safe_image_path
from gtok_cli.show import draw
from gtok_cli.show.overlay import Cells, Lattice, Ticks, lattice, tick_marks
from gtok_cli.show.sample import View, bool_mask

LABEL_FONT = 13
LABEL_CHARS = 40
CandidatesFor = Callable[[View, dict[str, Any] | None, Image.Image], Any]
"""``(view, mask_tokens, full-size image) -> Candidates | None`` (None: the anchors' own grid cells)."""


def load_image(view: View, images: str | Path) -> Image.Image:
    """The sample's image (EXIF-transposed RGB); its size must be the one the geometry refers to."""
    path = safe_image_path(images, view.image_file, file=None, record=view.title)
    if not path.is_file():
        raise InputError(
            "image file not found",
            record=view.title,
            field="image",
            expected=f"a file under {images}",
            found=view.image_file,
            reason="image.missing",
        )
    try:
        image = open_image_rgb(path)
    except OSError as exc:
        raise InputError(
            f"cannot read image {path}: {exc}", record=view.title, reason="image.unreadable"
        ) from None
    if view.size is not None and image.size != view.size:
        raise InputError(
            f"image {path.name} size disagrees with the sample (EXIF orientation applied)",
            record=view.title,
            field="image_size",
            expected=f"{view.size[0]}x{view.size[1]}",
            found=f"{image.width}x{image.height}",
            reason="image.size_mismatch",
        )
    return image


def _short(text: str | None) -> str:
    t = " ".join((text or "").split())
    return t if len(t) <= LABEL_CHARS else t[: LABEL_CHARS - 1] + "…"


def _mask_pixels(
    anchors: Any,
    view: View,
    mt: dict[str, Any] | None,
    full: Image.Image,
    candidates_for: CandidatesFor | None,
) -> np.ndarray:
    n = int((mt or {}).get("grid") or view.grid or 32)
    cands = candidates_for(view, mt, full) if candidates_for is not None else None
    return bool_mask(anchors, n, full.size, cands)


def _record_mask(mask: Any, size: tuple[int, int], title: str) -> np.ndarray:
    from gtok_cli.geometry.rasterize import region_mask_to_bool

    return region_mask_to_bool(mask, size[0], size[1], record=title, field="regions[].mask")


def render_regions(
    full: Image.Image,
    view: View,
    *,
    scale: float = 1.0,
    grid_overlay: bool = False,
    candidates_for: CandidatesFor | None = None,
) -> Image.Image:
    """A copy of ``full`` (the image at the view's size), resized by ``scale``, with the view drawn on it."""
    size = full.size
    if scale != 1.0:
        out = full.resize(
            (max(1, round(size[0] * scale)), max(1, round(size[1] * scale))), Image.Resampling.BILINEAR
        )
    else:
        out = full.copy()
    sx, sy = out.width / size[0], out.height / size[1]
    width = draw.stroke_width(out.width, out.height)

    def xy(coords: tuple[float, ...]) -> list[tuple[float, float]]:
        return [(coords[k] * sx, coords[k + 1] * sy) for k in range(0, len(coords) - 1, 2)]

    def fit(m: np.ndarray) -> np.ndarray:
        if m.shape == (out.height, out.width):
            return m
        return np.asarray(Image.fromarray(m).resize(out.size, Image.Resampling.NEAREST))

    if grid_overlay:
        draw_lattice(out, lattice(view, size), size, sx, sy)

    proposal = view.refine_turns > 0
    anchors_of: dict[int, np.ndarray] = {}
    for k, shape in enumerate(view.decoded):
        if shape.kind == "mask" and shape.anchors:
            region = view.decoded_region[k]
            mt = view.mask_tokens[region] if region < len(view.mask_tokens) else None
            m = fit(_mask_pixels(shape.anchors, view, mt, full, candidates_for))
            anchors_of[k] = m
            draw.mask(out, m, draw.colour(region), width, dotted=proposal)

    pen = ImageDraw.Draw(out)
    label_at: dict[int, tuple[float, float]] = {}
    for k, t in enumerate(view.truth):
        rgb = draw.colour(k)
        if t.mask is not None:
            m = fit(_record_mask(t.mask, size, view.title))
            draw.mask(out, m, rgb, width, dashed=True)
            pen = ImageDraw.Draw(out)  # draw.mask pasted new pixels
        elif t.kind == "point" and t.point is not None:
            draw.point(pen, xy(t.point)[0], rgb, width, dashed=True)
        elif t.bbox is not None:
            x1, y1, x2, y2 = t.bbox
            draw.box(pen, (x1 * sx, y1 * sy, x2 * sx, y2 * sy), rgb, width, dashed=True)
        if t.bbox is not None:
            label_at[k] = (t.bbox[0] * sx, t.bbox[1] * sy)

    decoded_at: dict[int, tuple[float, float]] = {}
    for k, shape in enumerate(view.decoded):
        region = view.decoded_region[k]
        at = _draw_shape(pen, shape, xy, draw.colour(region), width, anchors_of.get(k), dotted=proposal)
        if at is not None:
            decoded_at.setdefault(region, at)
    refined_at: dict[
        int, tuple[float, float]
    ] = {}  # on a refine picture the label sits on the refined answer
    for shape, region in zip(view.refined, view.refined_region, strict=True):
        if shape.kind == "mask":  # moved anchors are off the cell grid: discs where they are
            pts = xy(shape.coords)
            for p in pts:
                draw.point(pen, p, draw.colour(region), width)
            at = (pts[0][0] + 4 * width, pts[0][1]) if pts else None  # beside the disc, as for points
        else:
            at = _draw_shape(pen, shape, xy, draw.colour(region), width, None)
        if at is not None:
            refined_at.setdefault(region, at)
    decoded_at.update(refined_at)
    label_at.update(decoded_at)  # a region's label sits on what its tokens say, else on its truth

    fnt = font(LABEL_FONT)
    for region, at in sorted(label_at.items()):
        text = _label_text(view, region)
        if text:
            draw.label(pen, at, text, draw.colour(region), fnt, out.size)
    return out


def _draw_shape(
    pen: ImageDraw.ImageDraw,
    shape: Shape,
    xy: Callable[[tuple[float, ...]], list[tuple[float, float]]],
    rgb: draw.RGB,
    width: int,
    mask_pixels: np.ndarray | None,
    *,
    dotted: bool = False,
) -> tuple[float, float] | None:
    """Draw one decoded shape (solid; ``dotted``: a proposal); returns where its label goes."""
    pts = xy(shape.coords)
    if shape.kind == "box" and len(pts) == 2:
        (x1, y1), (x2, y2) = pts
        draw.box(pen, (x1, y1, x2, y2), rgb, width, dotted=dotted)
        return (x1, y1)
    if shape.kind == "point" and pts:
        draw.point(pen, pts[0], rgb, width, dotted=dotted)
        return (pts[0][0] + 4 * width, pts[0][1])
    if shape.kind == "polyline" and pts:
        draw.polyline(pen, pts, rgb, width, dotted=dotted)
        return pts[0]
    if shape.kind == "polygon" and pts:
        at = 0
        for n in shape.parts or (len(pts),):  # each ring closed
            draw.polyline(pen, pts[at : at + n], rgb, width, closed=True, dotted=dotted)
            at += n
        return pts[0]
    if shape.kind == "mask" and mask_pixels is not None and mask_pixels.any():
        ys, xs = np.nonzero(mask_pixels)
        return (float(xs.min()), float(ys.min()))
    return None


def _label_text(view: View, region: int) -> str:
    lab = None
    for k, r in enumerate(view.decoded_region):
        if r == region and view.decoded_labels[k]:
            lab = view.decoded_labels[k]
            break
    if lab is None and region < len(view.truth):
        lab = view.truth[region].label
    return _short(lab) if lab else f"#{region}"


def draw_lattice(out: Image.Image, grid: Lattice | None, size: tuple[int, int], sx: float, sy: float) -> None:
    """The grid overlay on ``out`` (the image of ``size`` drawn at scale ``sx``, ``sy``): cell lines, or
    ticks along the edges for lattices too fine for lines."""
    if isinstance(grid, Cells):
        n = grid.n
        xs = [round(v * sx) for v in cell_edges(size[0], n)[1:-1]]
        ys = [round(v * sy) for v in cell_edges(size[1], n)[1:-1]]
        draw.grid_lines(out, xs, ys)
    elif isinstance(grid, Ticks):
        draw.ticks(out, tick_marks(grid.x, size[0], sx), tick_marks(grid.y, size[1], sy))
