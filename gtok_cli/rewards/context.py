"""What every reward needs before it scores: the line's ``meta`` as a dict, the image size, and the codec.

- ``meta`` arrives as an export line's ``meta`` dict, as the JSON string of one (verl's parquet
  ``ground_truth``, a ``meta`` column stored as text), or as the dict ``datasets`` gives back, where Arrow
  fills a key some rows lack with ``None`` (``"point": None`` on a box region): :func:`as_meta` reads all
  three.
- Its truth is read by :func:`gtok_cli.scoring.truth_of` (the one reader eval shares).
- The scheme is not in an export line's ``meta`` (it is in the export's manifest), so a reward takes it from
  ``scheme=`` (a name, a manifest's ``{"scheme", "params"}`` or a :class:`~gtok_cli.codecs.Codec`), else from
  ``meta["scheme"]`` when a caller put one there, else the GETok default ``grid`` (32×32, offset step ½).
  The scheme's own parameters (``grid=``, ``offset_step=``, ``bins=``, …) are keyword parameters beside it.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import orjson

from gtok_cli.codecs import Codec, get_codec
from gtok_cli.errors import InputError, UsageError

DEFAULT_SCHEME = "grid"
"""The GETok scheme: the rewards are GETok's, so a caller that names no scheme means it."""

CODEC_PARAMS = ("bins", "grid", "offset_step", "min_pixels", "max_pixels")
"""Keyword parameters that belong to the codec, not to the reward."""

SchemeSpec = str | Mapping[str, Any] | Codec | None


def as_meta(meta: Any) -> dict[str, Any]:
    """An export line's ``meta`` from a dict or its JSON text (str / bytes); anything else → InputError."""
    if isinstance(meta, (str, bytes, bytearray)):
        try:
            meta = orjson.loads(meta)
        except orjson.JSONDecodeError as exc:
            raise InputError(f"meta is not JSON: {exc}", field="meta", reason="meta.json") from None
    if not isinstance(meta, Mapping):
        raise InputError(
            "meta must be an export line's meta object",
            field="meta",
            expected="a dict or its JSON text",
            found=type(meta).__name__,
            reason="meta.type",
        )
    return dict(meta)


def resolve_codec(meta: Mapping[str, Any], scheme: SchemeSpec = None, **codec_params: Any) -> Codec:
    """The codec a reward reads answers with (see the module docstring for the order of sources)."""
    if isinstance(scheme, Codec):
        return scheme
    if scheme is None:
        scheme = meta.get("scheme") or DEFAULT_SCHEME
    params = {k: v for k, v in codec_params.items() if v is not None}
    if isinstance(scheme, Mapping):
        name = scheme.get("scheme")
        if not isinstance(name, str):
            raise UsageError(f"scheme must name a scheme, got {scheme!r}")
        return _cached(name, _freeze({**dict(scheme.get("params") or {}), **params}))
    if not isinstance(scheme, str):
        raise UsageError(
            f"scheme must be a scheme name, a manifest's scheme object or a codec, got {scheme!r}"
        )
    return _cached(scheme, _freeze(params))


def split_params(params: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``params`` split into the codec's (:data:`CODEC_PARAMS`) and the rest."""
    codec = {k: v for k, v in params.items() if k in CODEC_PARAMS}
    rest = {k: v for k, v in params.items() if k not in CODEC_PARAMS}
    return codec, rest


def _freeze(params: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted(params.items()))


@functools.lru_cache(maxsize=64)
def _cached(name: str, params: tuple[tuple[str, Any], ...]) -> Codec:
    # building a codec makes its token tables (1,044 strings for grid 32): once per scheme, not per answer
    return get_codec(name, **dict(params))


class NotApplicable(InputError):
    """The reward does not apply to this line (a box reward on a line without a box region, a refinement
    reward without an answer to refine). TRL and ms-swift wrappers turn it into ``None``, which both trainers
    read as "no reward from this function for this row" (NaN); plain calls and verl see the error."""


def not_applicable(name: str, meta: Mapping[str, Any], why: str) -> NotApplicable:
    rid = meta.get("record_id")
    return NotApplicable(
        f"{name} does not apply: {why}",
        record=rid if isinstance(rid, str) else None,
        field="meta.regions",
        reason="reward.not_applicable",
    )
