"""What ``gtok show --grid-overlay`` draws: the lattice a sample's scheme quantises coordinates to.

Every scheme gtok writes quantises each coordinate to a lattice of values; the overlay shows that lattice in
one of two forms.

Cells (lines across the image, at the interior cell edges of :func:`gtok_cli.masks.candidates.cell_edges`):

- ``grid`` and ``kosmos2``: the n×n cells (``grid`` parameter, 32 by default) their tokens name;
- a records JSONL: the grid of its regions' ``mask_tokens``.

Ticks (too fine for lines; drawn along the four image edges, see :func:`gtok_cli.show.draw.ticks`). Lattice
value q of an axis of extent E sits at pixel ``q·step − shift``:

==============================  ===================  =========================================================
scheme                          step (x; y alike)    value q is
==============================  ===================  =========================================================
``bins``, ``loc`` (N = bins)    W / N                the left edge of bin q (floor bins; for ``bins`` the
                                                     token ``q/N`` itself)
``qwen-vl``, ``ferret``         W / 1000             the left edge of bin q (floor, q = 0..999)
``qwen2-vl``, ``qwen3-vl``      W / 1000             the value q/1000 (round, q = 0..1000)
``paligemma``                   W / 1023             the value q/1023 (round, q = 0..1023)
``qwen2.5-vl``                  W / W'               pixel q of the resized image W'×H' (``smart_resize``)
                                                     the model sees: its integers are the lattice
``shikra`` (precision p)        S / 10^p             the decimal ``q·10^-p`` on the square canvas of side
                                shift (S − W) // 2   S = max(W, H) the image is centred on (labels: decimals)
``cogvlm``                      W / 1000             the left edge of bin q (floor, q = 000..999)
``internvl``, ``gemini``        W / 1000             the value q/1000 (round, q = 0..1000)
``deepseek-vl2``                W / 999              the value q/999 (round, q = 0..999)
``minigpt-v2``                  W / 100              the left edge of bin q (floor, q = 0..100)
``molmo``                       W / 1000             the percentage ``q/10`` (round to 0.1; labels: decimals)
==============================  ===================  =========================================================

So no scheme lacks a lattice; only a records input whose regions carry no ``mask_tokens`` has none (no
scheme at all), and ``--grid-overlay`` on such an input is refused.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from gtok_cli.codecs import Codec, Size, codec_from_params
from gtok_cli.show.sample import View

MIN_TICK_PX = 8
"""Ticks mark every k-th lattice value, k the smallest of 1, 2, 5, 10, 20, 50, … this far apart."""
MIN_LABEL_PX = 64
"""Labelled ticks: every L-th value, L the smallest such number (a multiple of k) at least this far apart."""


@dataclass(frozen=True)
class Cells:
    """An n×n grid of cells."""

    n: int


@dataclass(frozen=True)
class Axis:
    """The lattice along one axis: value q at pixel ``q·step − shift``, for the q that fall on the image."""

    step: float
    shift: float = 0.0
    decimals: int | None = None
    """Labels as decimals ``q·10^-decimals`` (shikra) instead of the integer q."""

    def position(self, q: int) -> float:
        return q * self.step - self.shift

    def label(self, q: int) -> str:
        return str(q) if self.decimals is None else f"{q / 10**self.decimals:.{self.decimals}f}"


@dataclass(frozen=True)
class Ticks:
    x: Axis
    y: Axis


Lattice = Cells | Ticks


def _one(n: int) -> Callable[[Codec, Size], Lattice]:
    return lambda codec, size: Ticks(Axis(size[0] / n), Axis(size[1] / n))


def _cells(codec: Codec, size: Size) -> Lattice:
    return Cells(int(codec.params()["grid"]))


def _bins(codec: Codec, size: Size) -> Lattice:
    return _one(int(codec.params()["bins"]))(codec, size)


def _qwen25(codec: Codec, size: Size) -> Lattice:
    from gtok_cli.codecs.qwen import Qwen25VLCodec

    assert isinstance(codec, Qwen25VLCodec)
    rw, rh = codec.resized(size)
    return Ticks(Axis(size[0] / rw), Axis(size[1] / rh))


def _shikra(codec: Codec, size: Size) -> Lattice:
    from gtok_cli.codecs.shikra import square_canvas

    p = int(codec.params()["precision"])
    side, dx, dy = (int(v) for v in square_canvas(size[0], size[1]))
    return Ticks(Axis(side / 10**p, dx, p), Axis(side / 10**p, dy, p))


SCHEMES: dict[str, Callable[[Codec, Size], Lattice]] = {
    "grid": _cells,
    "kosmos2": _cells,
    "bins": _bins,
    "loc": _bins,
    "paligemma": _one(1023),
    "qwen-vl": _one(1000),
    "qwen2-vl": _one(1000),
    "qwen3-vl": _one(1000),
    "ferret": _one(1000),
    "qwen2.5-vl": _qwen25,
    "shikra": _shikra,
    "internvl": _one(1000),
    "gemini": _one(1000),
    "cogvlm": _one(1000),
    "deepseek-vl2": _one(999),
    "minigpt-v2": _one(100),
    "molmo": lambda codec, size: Ticks(Axis(size[0] / 1000, 0.0, 1), Axis(size[1] / 1000, 0.0, 1)),
}
"""Scheme name → its lattice on an image of a given size (the table in this module's docstring)."""


def has_lattice(view: View) -> bool:
    if view.scheme is not None:
        return view.scheme["scheme"] in SCHEMES
    return view.grid is not None


def lattice(view: View, size: Size) -> Lattice | None:
    """The lattice of the view's scheme on an image of ``size`` (the size its geometry refers to)."""
    if view.scheme is not None:
        build = SCHEMES.get(view.scheme["scheme"])
        return build(codec_from_params(view.scheme), size) if build else None
    return Cells(int(view.grid)) if view.grid else None


def nice_every(step: float, min_px: float, multiple_of: int = 1) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50, … that is a multiple of ``multiple_of`` and at least
    ``min_px / step``."""
    need = min_px / step if step > 0 else math.inf
    for decade in range(20):
        for m in (1, 2, 5):
            k = m * 10**decade
            if k >= need and k % multiple_of == 0:
                return k
    raise ValueError(f"lattice step {step} is too small to draw")


def tick_marks(axis: Axis, extent: float, scale: float = 1.0) -> list[tuple[float, str | None]]:
    """``(position in drawn pixels, label or None)`` of the ticks along an axis of ``extent`` original
    pixels drawn at ``scale``: every k-th lattice value on the image (``0 ≤ position ≤ extent``), labels
    at every L-th."""
    step = axis.step * scale
    every = nice_every(step, MIN_TICK_PX)
    labelled = nice_every(step, MIN_LABEL_PX, every)
    first = math.ceil(axis.shift / axis.step / every) * every
    out: list[tuple[float, str | None]] = []
    q = first
    while axis.position(q) <= extent + 1e-9:
        out.append((axis.position(q) * scale, axis.label(q) if q % labelled == 0 else None))
        q += every
    return out
