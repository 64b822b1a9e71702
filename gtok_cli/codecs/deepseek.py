"""``deepseek-vl2``: DeepSeek-VL2 grounding, ``<|ref|>a dog<|/ref|><|det|>[[234, 208, 624, 728]]<|/det|>``.

Conventions, from DeepSeek-VL2's own parser (deepseek-ai/DeepSeek-VL2,
``deepseek_vl2/serve/app_modules/utils.py`` ``parse_ref_bbox``; supervision's ``from_deepseek_vl_2`` in
``supervision/detection/vlm.py`` is the same): every ``<|ref|>…<|/ref|>`` pairs with the next
``<|det|>…<|/det|>``, which holds ``[[x1, y1, x2, y2], …]`` mapped back with ``v / 999 * W``, i.e. a
0..999 scale of the original image. ``<|ref|>``, ``<|/ref|>``, ``<|det|>``, ``<|/det|>`` are special tokens
of its tokenizer (:meth:`vocab`).

Quantiser (DeepSeek published no encoder; this one is the exact inverse of their parser):
``q = round_half_even(v·999)`` clamped to ``0..999``, decode ``q/999`` (their ``v / 999 * W``).
Bound ``0.5/999`` per axis. Boxes only. An unlabelled grounding writes its ``<|det|>`` alone (their parsers
pair refs with dets one to one, so give every grounding a label when their parser reads the text).
"""

from __future__ import annotations

from gtok_cli.codecs._ref_boxes import RefBoxListCodec


class DeepSeekVL2Codec(RefBoxListCodec):
    name = "deepseek-vl2"
    ref_open, ref_close, box_open, box_close = "<|ref|>", "<|/ref|>", "<|det|>", "<|/det|>"
    scale = 999


__all__ = ["DeepSeekVL2Codec"]
