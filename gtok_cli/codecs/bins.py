"""``bins``: the seed "Grounding Head" scheme, ``<box> 0.234 0.208 0.625 0.729``.

Quantisation (v = normalised coordinate, N = ``bins``): bin ``k = floor(v·N)`` clamped to ``0..N−1``
(``quantize.floor_bins``). Each coordinate is ONE vocabulary token: the bin's lower edge ``k/N`` printed with
``d = len(str(N−1))`` decimals ("0.234" for N = 1000). Because ``10^d ≥ N``, the printed value is within
``0.5·10^−d`` of ``k/N``, so ``round(value·N) = k`` and the N tokens are distinct for every N. Decoding maps
the exact token back to k (the vocabulary lookup is the same as ``round(value·N)`` for every token and
refuses anything that is not a token) and returns the bin centre ``(k + 0.5)/N``.

Bound: ``|decode(encode(v)) − v| ≤ 0.5/N`` per axis (normalised), i.e. ``0.5·W/N`` and ``0.5·H/N`` pixels.

Text: box ``<box> x1 y1 x2 y2``, point ``<point> x y``; several shapes separated by ``", "``. The scheme
carries no label (the phrase lives in the surrounding template), so ``decode`` returns ``label=None``.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from gtok_cli import quantize
from gtok_cli.codecs._common import (
    BatchBoxCodec,
    FloatArray,
    IntArray,
    batch_arrays,
    batch_decode,
    check_param,
    check_shape,
    check_size,
    issue,
    joined_groups,
    table,
)
from gtok_cli.codecs.base import Decoded, ErrorBound, Grounding, Shape, Size
from gtok_cli.errors import UsageError

_ARITY = {"box": 4, "point": 2}
# A tag followed by its run of number-like words; a number must end where its digits end ("0.729." is fine).
_SPAN = re.compile(r"<(box|point)>((?:[ \t]*[-+]?\d+(?:\.\d+)?(?!\d))*)")
_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")
# one box exactly (what ``_parse_one`` fullmatches), per line of newline-joined texts; other lines: no groups
_CANONICAL_LINES = re.compile(r"^(?:<box> (\S+) (\S+) (\S+) (\S+)$)?.*$", re.M)


def coordinate_tokens(bins: int) -> list[str]:
    """The N coordinate tokens: lower edge ``k/N`` with ``len(str(N−1))`` decimals."""
    decimals = len(str(bins - 1))
    return [f"{k / bins:.{decimals}f}" for k in range(bins)]


class BinsCodec(BatchBoxCodec):
    name = "bins"
    kinds = frozenset({"box", "point"})
    carries_label = False

    def __init__(self, bins: int = 1000, rounding: str = "floor") -> None:
        if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
            raise UsageError(f"bins must be a positive integer, got {bins!r}")
        check_param("rounding", rounding, "floor")
        self.bins = bins
        self._tokens = coordinate_tokens(bins)
        self._index = {t: k for k, t in enumerate(self._tokens)}
        if len(self._index) != bins:  # cannot happen (10^d ≥ N); guards the proof above
            raise UsageError(f"bins={bins}: coordinate tokens are not distinct")
        self._spaced = table([" " + t for t in self._tokens])
        self._fast = re.compile(r"<box> (\S+) (\S+) (\S+) (\S+)")
        self._fixed_width_layout()

    # ---- description -------------------------------------------------------------------------------------
    def params(self) -> dict[str, Any]:
        return {"bins": self.bins, "rounding": "floor"}

    def vocab(self) -> list[str]:
        return ["<box>", "<point>", *self._tokens]

    def bound(self, size: Size) -> ErrorBound:
        return ErrorBound(0.5 / self.bins, 0.5 / self.bins)

    # ---- text --------------------------------------------------------------------------------------------
    def _shape_text(self, shape: Shape, w: int, h: int) -> str:
        check_shape(shape, self.name, self.kinds)
        n = self.bins
        ext = [w, h] * (len(shape.coords) // 2)
        q = quantize.floor_bins(np.asarray(shape.coords), np.asarray(ext), n)
        return f"<{shape.kind}>" + "".join(" " + self._tokens[int(k)] for k in q)

    def encode(self, groundings: Sequence[Grounding], size: Size) -> str:
        w, h = check_size(size)
        return ", ".join(self._shape_text(s, w, h) for g in groundings for s in g.shapes)

    def decode(self, text: str, size: Size) -> Decoded:
        w, h = check_size(size)
        out = Decoded()
        for m in _SPAN.finditer(text):
            kind = m.group(1)
            words = _NUMBER.findall(m.group(2))
            problem = self._check(kind, words)
            if problem:
                out.errors.append(issue(text, m.start(), m.end(), problem))
                continue
            k = np.asarray([self._index[t] for t in words], dtype=np.float64)
            centres = quantize.bin_centres(k, self.bins) * np.asarray([w, h] * (len(k) // 2))
            shape = Shape.box(*centres) if kind == "box" else Shape.point(*centres)
            out.groundings.append(Grounding(None, (shape,)))
            out.spans.append((m.start(), m.end()))
        return out

    def _check(self, kind: str, words: list[str]) -> str | None:
        arity = _ARITY[kind]
        if len(words) != arity:
            return f"<{kind}> needs {arity} coordinates, found {len(words)}"
        unknown = [t for t in words if t not in self._index]
        if unknown:
            return f"{unknown[0]!r} is not a coordinate token of bins={self.bins}"
        if kind == "box":
            k = [self._index[t] for t in words]
            if k[2] < k[0] or k[3] < k[1]:
                return "box corners out of order"
        return None

    # ---- batch -------------------------------------------------------------------------------------------
    def encode_boxes(
        self,
        boxes: npt.ArrayLike,
        sizes: npt.ArrayLike,
        labels: Sequence[str | None] | None = None,
    ) -> list[str]:
        b, w, h = batch_arrays(boxes, sizes)
        n, t = self.bins, self._spaced
        parts = [t[quantize.floor_bins(b[:, c], w if c % 2 == 0 else h, n)] for c in range(4)]
        out: list[str] = ("<box>" + parts[0] + parts[1] + parts[2] + parts[3]).tolist()
        return out

    def decode_boxes(self, texts: Sequence[str], sizes: npt.ArrayLike) -> FloatArray:
        return self.decode_boxes_exact(texts, sizes)[0]

    def decode_boxes_exact(
        self, texts: Sequence[str], sizes: npt.ArrayLike
    ) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
        """Exact rows: texts that are ``<box>`` and four vocabulary tokens in order, nothing else (the
        fixed-width and joined-regex paths' ``ok``); their tokens are those ``encode`` writes for the
        decoded bin centres."""
        fixed = self._decode_fixed_width(texts, sizes)
        if fixed is not None:
            return fixed
        rows = joined_groups(texts, _CANONICAL_LINES)
        if rows is None:
            out = batch_decode(texts, sizes, self._parse_one, self._to_pixels, self._slow_first)
            return out, np.zeros(len(texts), dtype=bool)
        # canonical texts: their four tokens → bin indices in one pass (unknown or missing → -1)
        n = len(texts)
        tokens = itertools.chain.from_iterable(rows)
        q = np.fromiter(map(self._index.get, tokens, itertools.repeat(-1)), np.int64, 4 * n).reshape(n, 4)
        ok = (q >= 0).all(axis=1) & (q[:, 2] >= q[:, 0]) & (q[:, 3] >= q[:, 1])
        s = np.asarray(sizes, dtype=np.float64).reshape(-1, 2)
        if len(s) == 1 and n != 1:
            s = np.broadcast_to(s, (n, 2))
        out = np.full((n, 4), np.nan)
        out[ok] = self._to_pixels(q[ok], s[ok, 0], s[ok, 1])
        for k in np.nonzero(~ok)[0].tolist():  # everything else: the full decoder, as batch_decode does
            out[k] = self._slow_first(texts[k], (int(s[k, 0]), int(s[k, 1])))
        return out, ok

    def _decode_fixed_width(
        self, texts: Sequence[str], sizes: npt.ArrayLike
    ) -> tuple[FloatArray, npt.NDArray[np.bool_]] | None:
        """``decode_boxes`` when token k is "0." + k's d digits (N a power of ten), so a one-box text has one
        fixed width, and every text has that width and is ASCII: the texts become one byte matrix, checked
        and read column-wise. Rows that are not a canonical box take the full decoder, as elsewhere. None
        when the shortcut does not apply."""
        width = self._fixed_width
        n = len(texts)
        if width is None or n == 0:
            return None
        lengths = np.fromiter(map(len, texts), np.int64, n)
        joined = "".join(texts)
        if not joined.isascii() or not bool((lengths == width).all()):
            return None
        a = np.frombuffer(joined.encode("ascii"), np.uint8).reshape(n, width)
        ok = (a[:, self._literal_at] == self._literal_bytes).all(axis=1)
        digits = a[:, self._digit_at].astype(np.int64) - 48
        ok &= ((digits >= 0) & (digits <= 9)).all(axis=1)
        q = (digits.reshape(n, 4, -1) * self._place).sum(axis=2)
        ok &= (q < self.bins).all(axis=1) & (q[:, 2] >= q[:, 0]) & (q[:, 3] >= q[:, 1])
        s = np.asarray(sizes, dtype=np.float64).reshape(-1, 2)
        if len(s) == 1 and n != 1:
            s = np.broadcast_to(s, (n, 2))
        out = np.full((n, 4), np.nan)
        out[ok] = self._to_pixels(q[ok], s[ok, 0], s[ok, 1])
        for k in np.nonzero(~ok)[0].tolist():
            out[k] = self._slow_first(texts[k], (int(s[k, 0]), int(s[k, 1])))
        return out, ok

    def _fixed_width_layout(self) -> None:
        """Where a one-box text's literal characters and digits sit, when every token is "0." + d digits."""
        self._fixed_width: int | None = None
        d = len(str(self.bins - 1))
        if any(t != f"0.{k:0{d}d}" for k, t in enumerate(self._tokens)):
            return
        sample = "<box>" + " 0." + "#" * d + (" 0." + "#" * d) * 3
        self._fixed_width = len(sample)
        self._digit_at = np.asarray([k for k, c in enumerate(sample) if c == "#"], dtype=np.int64)
        self._literal_at = np.asarray([k for k, c in enumerate(sample) if c != "#"], dtype=np.int64)
        self._literal_bytes = np.frombuffer(sample.encode("ascii"), np.uint8)[self._literal_at]
        self._place = 10 ** np.arange(d - 1, -1, -1, dtype=np.int64)

    def _parse_one(self, text: str) -> tuple[int, ...] | None:
        m = self._fast.fullmatch(text)
        if m is None:
            return None
        idx = self._index
        try:
            q = (idx[m[1]], idx[m[2]], idx[m[3]], idx[m[4]])
        except KeyError:
            return None
        return q if q[2] >= q[0] and q[3] >= q[1] else None

    def _to_pixels(self, q: IntArray, w: FloatArray, h: FloatArray) -> FloatArray:
        c = quantize.bin_centres(q, self.bins)
        return c * np.stack([w, h, w, h], axis=1)


__all__ = ["BinsCodec", "coordinate_tokens"]
