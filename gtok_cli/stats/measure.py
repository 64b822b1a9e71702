"""The measures `gtok stats` reports, each defined once.

Spatial tokens (``SpatialTokenCounter``): the number of the codec's added-vocabulary tokens in a text
(``<grid_3_4>``, ``<loc0213>``, ``0.234`` for ``bins``, wrapper tokens like ``<box>`` included), plus, for
schemes that write coordinates as plain numbers (no vocabulary token contains a digit: ``qwen*``, ``shikra``,
``ferret``), one per coordinate number of every decoded shape (4 per box, 2 per point). Per region: the
tokens of a grounding's span shared equally among its shapes. Per mask: the mask's grid tokens (its
anchors), the number the GETok paper reports (8.7 per mask at 32×32 with SAM).

Box sizes: COCO's rule on the box's area in original pixels: small < 32², medium < 96², else large.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from gtok_cli.codecs import Codec, Decoded

PAPER_TOKENS_PER_MASK_32 = 8.7
SMALL_MAX_AREA = 32**2
MEDIUM_MAX_AREA = 96**2
BOX_SIZES = ("small", "medium", "large")
_TOKENISH = re.compile(r"<[^<>\s]{1,80}>|\d+(?:\.\d+)?")


def box_size(bbox: Sequence[float]) -> str:
    """COCO's size bucket of an ``xyxy`` box: area < 32² small, < 96² medium, else large."""
    area = (float(bbox[2]) - float(bbox[0])) * (float(bbox[3]) - float(bbox[1]))
    if area < SMALL_MAX_AREA:
        return "small"
    if area < MEDIUM_MAX_AREA:
        return "medium"
    return "large"


class SpatialTokenCounter:
    """Counts spatial tokens of one scheme (see the module docstring for the definition)."""

    def __init__(self, codec: Codec) -> None:
        self.vocab = frozenset(codec.vocab())
        self.text_coordinates = not any(any(ch.isdigit() for ch in tok) for tok in self.vocab)

    def in_text(self, text: str) -> int:
        return sum(1 for m in _TOKENISH.finditer(text) if m.group() in self.vocab)

    def count(self, text: str, decoded: Decoded) -> tuple[int, list[float]]:
        """``(tokens in text, tokens per decoded shape)``."""
        total = self.in_text(text)
        per_shape: list[float] = []
        for g, (start, end) in zip(decoded.groundings, decoded.spans, strict=False):
            if not g.shapes:
                continue
            span_tokens = self.in_text(text[start:end])
            for s in g.shapes:
                extra = len(s.coords) if self.text_coordinates and s.kind != "mask" else 0
                per_shape.append(span_tokens / len(g.shapes) + extra)
        if self.text_coordinates:
            total += sum(len(s.coords) for s in decoded.shapes() if s.kind != "mask")
        return total, per_shape

    def definition(self) -> str:
        if self.text_coordinates:
            return "added-vocabulary tokens + one per plain-text coordinate number"
        return "added-vocabulary tokens (coordinate and wrapper tokens)"


def summary(values: Sequence[float]) -> dict[str, Any]:
    """``count, mean, min, p10, p50, p90, p99, max`` (only ``count`` when empty)."""
    if not values:
        return {"count": 0}
    a = np.asarray(values, dtype=np.float64)
    p = np.percentile(a, [10, 50, 90, 99])
    return {
        "count": int(a.size),
        "mean": float(a.mean()),
        "min": float(a.min()),
        "p10": float(p[0]),
        "p50": float(p[1]),
        "p90": float(p[2]),
        "p99": float(p[3]),
        "max": float(a.max()),
    }
