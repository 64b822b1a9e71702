"""Token-scheme registry: ``get_codec("loc")``, ``get_codec("bins", bins=500)``, ``codec_from_params(d)``.

One module per scheme family; each is imported only when asked for.
"""

from __future__ import annotations

import importlib
from typing import Any

from gtok_cli import limits
from gtok_cli.codecs.base import Codec, Decoded, DecodeIssue, ErrorBound, Grounding, Shape, Size
from gtok_cli.errors import UsageError
from gtok_cli.trainer_images import trainer_image

# scheme name -> "module:Class"
SCHEMES: dict[str, str] = {
    "bins": "gtok_cli.codecs.bins:BinsCodec",
    "loc": "gtok_cli.codecs.loc:LocCodec",
    "kosmos2": "gtok_cli.codecs.kosmos2:Kosmos2Codec",
    "paligemma": "gtok_cli.codecs.paligemma:PaliGemmaCodec",
    "qwen-vl": "gtok_cli.codecs.qwen:QwenVLCodec",
    "qwen2-vl": "gtok_cli.codecs.qwen:Qwen2VLCodec",
    "qwen2.5-vl": "gtok_cli.codecs.qwen:Qwen25VLCodec",
    "qwen3-vl": "gtok_cli.codecs.qwen:Qwen3VLCodec",
    "shikra": "gtok_cli.codecs.shikra:ShikraCodec",
    "ferret": "gtok_cli.codecs.ferret:FerretCodec",
    "grid": "gtok_cli.codecs.grid:GridCodec",
    "internvl": "gtok_cli.codecs.internvl:InternVLCodec",
    "deepseek-vl2": "gtok_cli.codecs.deepseek:DeepSeekVL2Codec",
    "gemini": "gtok_cli.codecs.gemini:GeminiCodec",
    "molmo": "gtok_cli.codecs.molmo:MolmoCodec",
    "cogvlm": "gtok_cli.codecs.cogvlm:CogVLMCodec",
    "minigpt-v2": "gtok_cli.codecs.minigpt:MiniGPTv2Codec",
}


def codec_class(name: str) -> type[Codec]:
    try:
        target = SCHEMES[name]
    except KeyError:
        raise UsageError(f"unknown scheme {name!r}; choose one of: {', '.join(SCHEMES)}") from None
    module_name, class_name = target.split(":")
    cls: type[Codec] = getattr(importlib.import_module(module_name), class_name)
    return cls


TRAINER_PARAMS = ("trainer", "image_max_pixels")
"""The image the trainer feeds (:mod:`gtok_cli.trainer_images`): taken by every scheme, kept only by those
whose numbers are pixels of that image (``Codec.fed_image``); the others are immune, their text the same."""


def get_codec(name: str, **params: Any) -> Codec:
    """A codec instance; ``params`` are the scheme's own keyword parameters (``bins``, ``grid``, …)."""
    cls = codec_class(name)
    limits.check_all(params)
    if not cls.fed_image:
        feed = {k: params.pop(k) for k in TRAINER_PARAMS if k in params}
        trainer_image(feed.get("trainer"), feed.get("image_max_pixels"))  # still checked
    try:
        return cls(**{k: v for k, v in params.items() if v is not None})
    except TypeError as exc:
        raise UsageError(f"scheme {name!r}: bad parameters {params!r}: {exc}") from None


def codec_from_params(described: dict[str, Any]) -> Codec:
    """Inverse of ``Codec.describe()``: ``{"scheme": name, "params": {...}}`` → the same codec."""
    return get_codec(described["scheme"], **described.get("params", {}))


__all__ = [
    "SCHEMES",
    "Codec",
    "DecodeIssue",
    "Decoded",
    "ErrorBound",
    "Grounding",
    "Shape",
    "Size",
    "codec_class",
    "codec_from_params",
    "get_codec",
]
