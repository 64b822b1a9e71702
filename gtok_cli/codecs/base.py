"""The codec contract every token scheme implements (docs/spec.md#schemes).

A codec turns geometry in *pixels of the original image* plus the image size ``(width, height)`` into text
and back. Decoding works on free model text: it finds every spatial span, returns the geometry it stands for
and reports (never guesses) malformed or out-of-vocabulary spans.

Shapes:

- ``box``: ``coords = (x1, y1, x2, y2)``
- ``point``: ``coords = (x, y)``
- ``polyline``: ``coords = (x1, y1, x2, y2, …)`` in order
- ``polygon``: one region's polygon (a COCO polygon: one or more rings); ``coords`` every vertex of every
  ring in order, ``parts`` the vertex count of each ring (``loc`` scheme: Florence-2 ``<poly>``)
- ``mask``: grid scheme only; ``anchors`` holds the ``(i, j)`` grid anchors and ``coords`` their cell centres

A :class:`Grounding` is one phrase/label with the shapes that belong to it (a phrase may have several
boxes). ``encode`` writes a sequence of groundings; ``decode`` returns them in text order.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
import numpy.typing as npt

Size = tuple[int, int]
"""Image size as ``(width, height)``, the one size convention of gtok."""

ShapeKind = Literal["box", "point", "polyline", "polygon", "mask"]


@dataclass(frozen=True)
class Shape:
    kind: ShapeKind
    coords: tuple[float, ...]
    anchors: tuple[tuple[int, int], ...] | None = None
    parts: tuple[int, ...] | None = None
    """``polygon`` only: the vertex count of each ring (they sum to ``len(coords) // 2``)."""

    @staticmethod
    def box(x1: float, y1: float, x2: float, y2: float) -> Shape:
        return Shape("box", (float(x1), float(y1), float(x2), float(y2)))

    @staticmethod
    def point(x: float, y: float) -> Shape:
        return Shape("point", (float(x), float(y)))

    @staticmethod
    def polyline(points: Sequence[tuple[float, float]]) -> Shape:
        return Shape("polyline", tuple(float(v) for p in points for v in p))

    @staticmethod
    def polygon(rings: Sequence[Sequence[float]]) -> Shape:
        """A COCO-style polygon ``[[x1, y1, x2, y2, …], …]`` (pixels), one flat list per ring."""
        coords = tuple(float(v) for ring in rings for v in ring)
        return Shape("polygon", coords, parts=tuple(len(ring) // 2 for ring in rings))

    def rings(self) -> list[list[float]]:
        """A polygon's rings as flat ``[x1, y1, x2, y2, …]`` lists (the whole shape for other kinds)."""
        out, at = [], 0
        for n in self.parts or (len(self.coords) // 2,):
            out.append(list(self.coords[at : at + 2 * n]))
            at += 2 * n
        return out

    def points(self) -> list[tuple[float, float]]:
        return [(self.coords[k], self.coords[k + 1]) for k in range(0, len(self.coords), 2)]

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "coords": list(self.coords)}
        if self.anchors is not None:
            out["anchors"] = [list(a) for a in self.anchors]
        if self.parts is not None:
            out["parts"] = list(self.parts)
        return out


@dataclass(frozen=True)
class Grounding:
    """One phrase/label (or none) and the shapes it refers to, in order."""

    label: str | None
    shapes: tuple[Shape, ...]


@dataclass(frozen=True)
class DecodeIssue:
    """A span the decoder could not turn into geometry: where it is and why."""

    start: int
    end: int
    text: str
    message: str

    def to_json(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "text": self.text, "message": self.message}


@dataclass
class Decoded:
    groundings: list[Grounding] = field(default_factory=list)
    errors: list[DecodeIssue] = field(default_factory=list)
    spans: list[tuple[int, int]] = field(default_factory=list)
    """Character span of each grounding in the decoded text (same order as ``groundings``)."""

    def shapes(self) -> list[Shape]:
        return [s for g in self.groundings for s in g.shapes]


@dataclass(frozen=True)
class ErrorBound:
    """Worst-case round-trip error of one coordinate, per axis.

    ``normalised``: in units of the normalised coordinate (0..1), along x and y (they differ for schemes
    that quantise on a square canvas or a resized image). ``pixels(size)`` converts to original pixels.
    """

    norm_x: float
    norm_y: float

    def pixels(self, size: Size) -> tuple[float, float]:
        w, h = size
        return (self.norm_x * w, self.norm_y * h)

    def max_pixels(self, size: Size) -> float:
        return max(self.pixels(size))


class Codec(ABC):
    """A token scheme: encode/decode, vocabulary, parameters, worst-case error."""

    name: ClassVar[str]
    kinds: ClassVar[frozenset[str]] = frozenset({"box"})
    """Shape kinds the scheme can write."""
    carries_label: ClassVar[bool] = False
    """Whether the span itself carries the phrase/label (so decode returns it)."""
    fed_image: ClassVar[bool] = False
    """Whether the numbers are pixels of the image the model is fed, so a trainer's resize changes them (it
    then takes ``trainer`` / ``image_max_pixels``); False for schemes of fractions of the image, which no
    resize of the whole image changes (docs/spec.md#trainers)."""

    # ---- description -------------------------------------------------------------------------------------
    @abstractmethod
    def params(self) -> dict[str, Any]:
        """Every parameter that changes the text (written into manifests; ``from_params`` reads it back)."""

    @abstractmethod
    def vocab(self) -> list[str]:
        """Added tokens, in a stable order (empty when the scheme uses plain text)."""

    @abstractmethod
    def bound(self, size: Size) -> ErrorBound:
        """Worst-case |decode(encode(x)) − x| of one coordinate for this image size."""

    def shape_order(self, shapes: Sequence[Shape], size: Size) -> list[int]:
        """The order :meth:`encode` writes one grounding's ``shapes`` in, as indices into ``shapes``: the
        identity, except for formats that sort a phrase's shapes (``molmo``). Export keeps its truth in it."""
        return list(range(len(shapes)))

    def describe(self) -> dict[str, Any]:
        return {"scheme": self.name, "params": self.params()}

    # ---- text --------------------------------------------------------------------------------------------
    @abstractmethod
    def encode(self, groundings: Sequence[Grounding], size: Size) -> str:
        """Text for a sequence of groundings (labels written where the format carries them)."""

    @abstractmethod
    def decode(self, text: str, size: Size) -> Decoded:
        """Every spatial span in free text, as geometry in original pixels, plus what could not be read."""

    # ---- conveniences ------------------------------------------------------------------------------------
    def encode_box(self, box: Sequence[float], size: Size, label: str | None = None) -> str:
        return self.encode([Grounding(label, (Shape.box(*box),))], size)

    def encode_boxes(
        self,
        boxes: npt.ArrayLike,
        sizes: npt.ArrayLike,
        labels: Sequence[str | None] | None = None,
    ) -> list[str]:
        """Batch form: one box per item (``boxes`` N×4 pixels, ``sizes`` N×2 ``(w, h)``).

        Schemes override this with a vectorised version; the result must equal ``encode_box`` item by item.
        """
        b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        s = np.asarray(sizes).reshape(-1, 2)
        out = []
        for k in range(len(b)):
            size = (int(s[k, 0]), int(s[k, 1]))
            out.append(self.encode_box(b[k], size, labels[k] if labels is not None else None))
        return out

    def decode_boxes_exact(
        self, texts: Sequence[str], sizes: npt.ArrayLike
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
        """:meth:`decode_boxes` and, per text, whether it is known to be exactly one canonical box, i.e.
        ``encode_boxes`` of the decoded box gives the text back (verify then need not re-encode it). The
        default knows nothing (all False); codecs with a canonical fast path say which rows took it."""
        out = self.decode_boxes(texts, sizes)
        return out, np.zeros(len(texts), dtype=bool)

    def decode_boxes(self, texts: Sequence[str], sizes: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Batch form: the first box of each text (N×4 pixels; NaN row where none could be read)."""
        s = np.asarray(sizes).reshape(-1, 2)
        out = np.full((len(texts), 4), math.nan)
        for k, text in enumerate(texts):
            dec = self.decode(text, (int(s[k, 0]), int(s[k, 1])))
            boxes = [sh for sh in dec.shapes() if sh.kind == "box"]
            if boxes and not dec.errors:
                out[k] = boxes[0].coords
        return out
