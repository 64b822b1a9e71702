"""The image a trainer really feeds the model's processor (``--trainer``, docs/spec.md#trainers).

A training framework may resize every image *before* the model's own processor sees it, and it never rescales
coordinates written in the text. A scheme whose numbers are pixels of the image the model sees
(``qwen2.5-vl``: pixels of the smart-resized image) must therefore compute them on the image the trainer
feeds, or every image above the trainer's budget gets wrong boxes. Schemes whose numbers are fractions of the
image (every other scheme) are immune: a resize of the whole image keeps every fraction.

- ``hf`` (default): no resize; the processor gets the original image (transformers, TRL, verl, …).
- ``llamafactory``: LLaMA-Factory's ``MMPluginMixin._preprocess_image``
  (``src/llamafactory/data/mm_plugin.py``): an image with more than ``image_max_pixels`` pixels (its
  ``--image_max_pixels``, default 768·768 in ``hparams/model_args.py``) is resized by
  ``f = sqrt(max / (w·h))`` to ``(int(w·f), int(h·f))``; then one with fewer than ``image_min_pixels``
  (default 32·32) is enlarged the same way. Its ``Qwen2VLPlugin._preprocess_image`` then makes each side at
  least 28 and cuts an aspect ratio above 200 down to 180 (``qwen_plugin=True``).
- ``swift``: ms-swift's template option ``--max_pixels`` (``Template._preprocess_inputs`` →
  ``rescale_image`` in ``swift/template/vision_utils.py``; default None: no resize): above the budget,
  ``hs = sqrt(max / (w/h))``, ``ws = hs · (w/h)``, size ``(int(ws), int(hs))``. (Its Qwen2.5-VL template then
  calls ``qwen_vl_utils.fetch_image``, whose ``smart_resize`` the qwen codec reproduces; the ``MAX_PIXELS``
  environment variable is that smart_resize's ``max_pixels``, i.e. the codec's ``--max-pixels``.)

Every step is the reference's float64 operations in the same order (numpy's IEEE division, sqrt and product
equal Python's), truncated like ``int()``, so the sizes are identical.

Example (the README's worked example)::

    >>> TrainerImage("llamafactory").fed_size(1920, 1080)
    (1024, 576)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from gtok_cli.errors import InputError, UsageError

TRAINERS = ("hf", "llamafactory", "swift")
LLAMAFACTORY_MAX_PIXELS = 768 * 768
LLAMAFACTORY_MIN_PIXELS = 32 * 32
QWEN_PLUGIN_MIN_SIDE = 28
QWEN_PLUGIN_MAX_RATIO, QWEN_PLUGIN_CUT_RATIO = 200, 180
DEFAULT_BUDGET: dict[str, int | None] = {"hf": None, "llamafactory": LLAMAFACTORY_MAX_PIXELS, "swift": None}
"""Each trainer's own default ``image_max_pixels`` (None: it does not resize)."""

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class TrainerImage:
    """Which trainer feeds the images, and its pixel budget (None: the trainer's default)."""

    trainer: str = "hf"
    image_max_pixels: int | None = None

    def __post_init__(self) -> None:
        if self.trainer not in TRAINERS:
            raise UsageError(f"unknown --trainer {self.trainer!r}; choose one of: {', '.join(TRAINERS)}")
        m = self.image_max_pixels
        if m is None:
            return
        if isinstance(m, bool) or int(m) != m or m < 1:
            raise UsageError(f"--image-max-pixels must be a positive integer, got {m!r}")
        if self.trainer == "hf":
            raise UsageError("--image-max-pixels needs --trainer llamafactory or --trainer swift")
        object.__setattr__(self, "image_max_pixels", int(m))

    @property
    def budget(self) -> int | None:
        """The pixel budget in force: the one given, else the trainer's default."""
        return self.image_max_pixels if self.image_max_pixels is not None else DEFAULT_BUDGET[self.trainer]

    def params(self) -> dict[str, Any]:
        """What a codec pins in its ``params()`` (nothing for ``hf``, so older manifests read the same)."""
        if self.trainer == "hf":
            return {}
        return {"trainer": self.trainer, "image_max_pixels": self.budget}

    def shrinks(self, width: npt.ArrayLike, height: npt.ArrayLike) -> npt.NDArray[np.bool_]:
        """Which images the budget shrinks (``w·h > budget``)."""
        w = np.asarray(width, dtype=np.float64)
        h = np.asarray(height, dtype=np.float64)
        b = self.budget
        return np.zeros(np.broadcast(w, h).shape, dtype=bool) if b is None else w * h > b

    def fed_sizes(
        self, width: npt.ArrayLike, height: npt.ArrayLike, qwen_plugin: bool = False
    ) -> tuple[IntArray, IntArray]:
        """``(w', h')`` of the image the trainer hands the processor, vectorised. ``qwen_plugin``: add
        LLaMA-Factory's Qwen2-VL plugin steps (no effect for the other trainers)."""
        w = np.asarray(width, dtype=np.float64)
        h = np.asarray(height, dtype=np.float64)
        b = self.budget
        if self.trainer == "llamafactory":
            assert b is not None
            w, h = _scale_to(w, h, w * h > b, b)
            if np.any((w == 0) | (h == 0)):
                raise InputError(
                    "LLaMA-Factory cannot feed this image: its budget shrinks a side to 0 pixels (its "
                    "_preprocess_image then divides by zero)",
                    field="size",
                    expected=f"both sides at least 1 after the {b}-pixel budget",
                    found=f"{np.asarray(width).tolist()}x{np.asarray(height).tolist()}",
                )
            w, h = _scale_to(w, h, w * h < LLAMAFACTORY_MIN_PIXELS, LLAMAFACTORY_MIN_PIXELS)
            if qwen_plugin:
                w, h = _qwen_plugin(w, h)
        elif self.trainer == "swift" and b is not None:
            big = w * h > b
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = w / h
                hs = np.sqrt(b / ratio)
                ws = hs * ratio
            w, h = np.where(big, np.trunc(ws), w), np.where(big, np.trunc(hs), h)
        return w.astype(np.int64), h.astype(np.int64)

    def fed_size(self, width: int, height: int, qwen_plugin: bool = False) -> tuple[int, int]:
        """:meth:`fed_sizes` of one image."""
        w, h = self.fed_sizes(width, height, qwen_plugin)
        return int(w), int(h)


def _scale_to(
    w: npt.NDArray[np.float64], h: npt.NDArray[np.float64], where: npt.NDArray[np.bool_], pixels: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """LLaMA-Factory's step: ``f = sqrt(pixels / (w·h))``, ``(int(w·f), int(h·f))`` where ``where``."""
    with np.errstate(divide="ignore"):
        f = np.sqrt(pixels / (w * h))
    return np.where(where, np.trunc(w * f), w), np.where(where, np.trunc(h * f), h)


def _qwen_plugin(
    w: npt.NDArray[np.float64], h: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """``Qwen2VLPlugin._preprocess_image`` after the base step: sides at least 28, then an aspect ratio above
    200 cut to 180 (width first, as it checks)."""
    small = np.minimum(w, h) < QWEN_PLUGIN_MIN_SIDE
    w = np.where(small, np.maximum(w, QWEN_PLUGIN_MIN_SIDE), w)
    h = np.where(small, np.maximum(h, QWEN_PLUGIN_MIN_SIDE), h)
    wide = w / h > QWEN_PLUGIN_MAX_RATIO
    w = np.where(wide, h * QWEN_PLUGIN_CUT_RATIO, w)
    tall = h / w > QWEN_PLUGIN_MAX_RATIO
    h = np.where(tall, w * QWEN_PLUGIN_CUT_RATIO, h)
    return w, h


def trainer_image(trainer: str | None, image_max_pixels: int | None) -> TrainerImage:
    """The CLI's ``--trainer`` / ``--image-max-pixels`` (None: ``hf``), checked."""
    return TrainerImage(trainer or "hf", image_max_pixels)
