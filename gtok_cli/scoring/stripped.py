"""Answers of the Qwen tag schemes after a trainer's ``skip_special_tokens=True`` decode: box tags put back.

Qwen-VL's tokenizer makes ``<ref> </ref> <box> </box>`` special (its ``tokenization_qwen.py``: they are in
``IMAGE_ST``, ids above ``eod_id``, and ``_decode(skip_special_tokens=True)`` drops every such id), and
Qwen2-VL's marks ``<|object_ref_start|>`` … ``<|box_end|>`` ``"special": true`` (tokenizer_config.json, ids
151646–151649). TRL and verl decode completions with ``skip_special_tokens=True``, so
``<ref>dog</ref><box>(234,208),(625,729)</box>`` reaches a reward as ``dog(234,208),(625,729)``: the numbers
survive, the spans that carry them do not (docs/rewards.md#special-tokens). :func:`rewrap` puts each bare
``(x1,y1),(x2,y2)`` pair back between the scheme's box tags, only when the text holds none of the scheme's
wrapper tokens (a text that kept them is read as written). The label is not recovered (it is not scored).

Example:

    >>> from gtok_cli.codecs import get_codec
    >>> rewrap("dog(234,208),(625,729)", get_codec("qwen2-vl"))
    ('dog<|box_start|>(234,208),(625,729)<|box_end|>', 1)
"""

from __future__ import annotations

import re

from gtok_cli.codecs import Codec

STRIPPED_SCHEMES = ("qwen-vl", "qwen2-vl")
"""The schemes whose spatial spans are wrapped in tokens the models' own tokenizers mark special."""

_PAIR = re.compile(r"\(\s*-?\d+\s*,\s*-?\d+\s*\)\s*,\s*\(\s*-?\d+\s*,\s*-?\d+\s*\)")


def rewrap(text: str, codec: Codec) -> tuple[str, int]:
    """``text`` with every bare corner pair wrapped in ``codec``'s box tags, and how many were; unchanged (0)
    for another scheme or a text holding any of the scheme's wrapper tokens."""
    if codec.name not in STRIPPED_SCHEMES:
        return text, 0
    tags = codec.vocab()  # ref open/close, box open/close
    if any(t in text for t in tags):
        return text, 0
    box_open, box_close = getattr(codec, "box_open", None), getattr(codec, "box_close", None)
    if not isinstance(box_open, str) or not isinstance(box_close, str):
        return text, 0
    out, n = _PAIR.subn(lambda m: f"{box_open}{m.group(0)}{box_close}", text)
    return out, n


__all__ = ["STRIPPED_SCHEMES", "rewrap"]
