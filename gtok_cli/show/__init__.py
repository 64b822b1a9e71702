"""`gtok show` as a library: draw what a sample's tokens say over its image, beside the ground truth.

::

    from gtok_cli.show import ShowOptions, save_image, show
    image = show(ShowOptions("out/shards/rec-grid", images="sample_data/coco/val2017", index=0))
    save_image(image, "sample.png")  # or "sample.jpg"

Modules: :mod:`.sample` (sources, selection, decoding into a :class:`View`), :mod:`.scene` (regions over
the image), :mod:`.draw` (Pillow primitives, palette), :mod:`.layout` (text panel, contact sheet).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from gtok_cli.errors import UsageError
from gtok_cli.show import layout, overlay, scene
from gtok_cli.show.sample import View, open_source, select_views


@dataclass(frozen=True)
class ShowOptions:
    source: str
    """An export folder / manifest, or a records JSONL."""
    images: str
    index: int | None = None
    sample_id: str | None = None
    sample: int | None = None
    seed: int = 0
    grid_overlay: bool = False
    truth_records: str | None = None
    """Records file that adds the real masks to an export's truth (matched by record id and bbox)."""
    sam_checkpoint: str | None = None
    model_type: str = "vit_h"
    device: str = "cpu"
    max_turn_lines: int = 12


class SamCandidates:
    """SAM candidates per (image, grid, select), for mask tokens solved with the ``sam`` backend."""

    def __init__(self, checkpoint: str, model_type: str, device: str) -> None:
        from gtok_cli.geometry.sam import load_sam

        self.model = load_sam(checkpoint, model_type, device)
        self.model_type = model_type
        self._cache: dict[tuple[str, int, str], Any] = {}

    def __call__(self, view: View, mt: dict[str, Any] | None, full: Image.Image) -> Any:
        if not mt or mt.get("backend") != "sam":
            return None  # tokens solved on cells (or unknown): their own grid cells
        import numpy as np

        from gtok_cli.geometry.sam import SamCandidateMaker

        key = (view.image_file, int(mt["grid"]), str(mt.get("select", "max-pred-iou")))
        if key not in self._cache:
            maker = SamCandidateMaker(self.model, grid=key[1], select=key[2], keep_on_device=False)
            self._cache[key] = maker.candidates([np.asarray(full)])[0]
        return self._cache[key]


def show(opts: ShowOptions) -> Image.Image:
    """The picture: one sample's page, or a contact sheet with ``sample``."""
    if not Path(opts.images).is_dir():
        raise UsageError(f"--images {opts.images!r} is not a folder")
    source = open_source(opts.source, opts.truth_records, opts.images)
    views = select_views(
        source, index=opts.index, sample_id=opts.sample_id, sample=opts.sample, seed=opts.seed
    )
    if opts.grid_overlay and not any(overlay.has_lattice(v) for v in views):
        raise UsageError(
            "--grid-overlay: a records input without mask_tokens has no scheme, so no grid to draw"
        )
    sam = SamCandidates(opts.sam_checkpoint, opts.model_type, opts.device) if opts.sam_checkpoint else None
    if opts.sample is None:
        view = views[0]
        full = scene.load_image(view, opts.images)
        drawn = scene.render_regions(full, view, grid_overlay=opts.grid_overlay, candidates_for=sam)
        return layout.page(drawn, view, opts.max_turn_lines)
    tiles = []
    for view in views:
        full = scene.load_image(view, opts.images)
        drawn = scene.render_regions(
            full,
            view,
            scale=layout.tile_scale(full.size),
            grid_overlay=opts.grid_overlay,
            candidates_for=sam,
        )
        tiles.append((drawn, view))
    return layout.sheet(tiles)


IMAGE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}
"""Output suffix (any case) → the format written."""
JPEG_QUALITY = 92


def image_format(out: str | Path, palette: bool = False) -> str:
    """``PNG`` or ``JPEG`` from ``out``'s suffix; UsageError for another suffix, or ``palette`` with JPEG."""
    fmt = IMAGE_FORMATS.get(Path(out).suffix.lower())
    if fmt is None:
        allowed = ", ".join(IMAGE_FORMATS)
        raise UsageError(f"--out {str(out)!r}: the picture is written as {allowed}; name the file so")
    if palette and fmt != "PNG":
        raise UsageError(f"--palette writes a 256-colour PNG; --out {str(out)!r} is a JPEG")
    return fmt


def save_image(image: Image.Image, out: str | Path, palette: bool = False) -> None:
    """Write the picture atomically as PNG, or as JPEG (quality 92, RGB) for a ``.jpg`` / ``.jpeg`` name
    (:func:`image_format`); ``palette`` quantises a PNG to 256 colours (about 3x smaller for photos)."""
    from gtok_cli.jsonio import atomic_path

    fmt = image_format(out, palette)
    if palette:
        image = image.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    with atomic_path(out) as tmp:
        if fmt == "JPEG":
            image.convert("RGB").save(tmp, format="JPEG", quality=JPEG_QUALITY)
        else:
            image.save(tmp, format="PNG", optimize=True)


__all__ = ["ShowOptions", "View", "image_format", "save_image", "show"]
