"""Masks of grid anchors under the ``sam`` backend: the union of the SAM masks prompted at the anchors' cell
centres, with the candidate rule ``gtok masks --backend sam`` solves with (``geometry.sam``: one positive
click per grid point, ``select`` of ``max-pred-iou`` / ``single``). Needs the images (``images_root``) and a
local checkpoint (or an already loaded model); torch is imported only here.

The candidates of the last image are kept, so answers about one image (sorted by image) cost one encoder
pass.

Example (not run: needs weights):

    >>> masks = SamAnchorMasks.load("sam_vit_b.pth", "vit_b", images_root="val2017")  # doctest: +SKIP
    >>> masks.mask("000000018575.jpg", [(3, 4), (3, 5)], grid=32, size=(640, 480))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from gtok_cli.errors import InputError
from gtok_cli.geometry.candidates import Candidates, anchors_to_mask


class SamAnchorMasks:
    """Anchors → SAM union masks, image by image (candidates cached per image, grid and select rule)."""

    def __init__(
        self,
        model: Any,
        images_root: str | Path,
        *,
        select: str = "max-pred-iou",
        dtype: str = "fp32",
    ) -> None:
        self.model = model
        self.images_root = Path(images_root)
        self.select = select
        self.dtype = dtype
        self._makers: dict[tuple[int, str], Any] = {}
        self._cached: tuple[tuple[str, int, str], Candidates] | None = None

    @staticmethod
    def load(
        checkpoint: str | Path,
        model_type: str,
        *,
        images_root: str | Path,
        device: str = "cpu",
        select: str = "max-pred-iou",
        dtype: str = "fp32",
    ) -> SamAnchorMasks:
        from gtok_cli.geometry.sam import load_sam

        return SamAnchorMasks(
            load_sam(checkpoint, model_type, device), images_root, select=select, dtype=dtype
        )

    def candidates(
        self, image_file: str, grid: int, size: tuple[int, int], select: str | None = None
    ) -> Candidates:
        """The n² SAM candidates of one image (its size must be ``size``, the size the answer refers to)."""
        from gtok_cli.geometry.sam import SamCandidateMaker
        from gtok_cli.images import open_image_rgb, safe_image_path

        rule = select or self.select
        key = (image_file, grid, rule)
        if self._cached is not None and self._cached[0] == key:
            return self._cached[1]
        path = safe_image_path(self.images_root, image_file, file=None, record=None)
        if not path.is_file():
            raise InputError("image file not found", file=str(path), field="image", reason="image.missing")
        image = open_image_rgb(path)
        if image.size != tuple(size):
            raise InputError(
                "image size disagrees with the line's image_size (EXIF orientation applied)",
                file=str(path),
                field="image_size",
                expected=f"{size[0]}x{size[1]}",
                found=f"{image.width}x{image.height}",
                reason="image.size_mismatch",
            )
        maker = self._makers.get((grid, rule))
        if maker is None:
            maker = SamCandidateMaker(
                self.model, grid=grid, select=rule, dtype=self.dtype, keep_on_device=False
            )
            self._makers[(grid, rule)] = maker
        cands: Candidates = maker.candidates([np.asarray(image)])[0]
        self._cached = (key, cands)
        return cands

    def mask(
        self,
        image_file: str,
        anchors: Iterable[Sequence[int]],
        *,
        grid: int,
        size: tuple[int, int],
        select: str | None = None,
    ) -> npt.NDArray[np.bool_]:
        """The union of the SAM candidates at ``anchors`` for this image, bool ``(H, W)``."""
        out: npt.NDArray[np.bool_] = anchors_to_mask(anchors, self.candidates(image_file, grid, size, select))
        return out
