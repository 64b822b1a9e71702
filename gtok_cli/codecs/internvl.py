"""``internvl``: InternVL grounding, ``<ref>a dog</ref><box>[[234, 208, 625, 729]]</box>``.

Conventions, from InternVL's own code (OpenGVLab/InternVL):

- ``internvl_chat/eval/refcoco/evaluate_grounding.py`` reads an answer with
  ``PATTERN = r'\\[*\\[(.*?),(.*?),(.*?),(.*?)\\]\\]*'`` and maps it back with ``/ 1000 * W`` (x) and
  ``/ 1000 * H`` (y): x1 y1 x2 y2 on a 0..1000 scale of the original image;
- ``<ref>``, ``</ref>``, ``<box>``, ``</box>`` are added tokens of every InternVL chat tokenizer
  (``added_tokens.json`` of the released checkpoints), so :meth:`vocab` lists them;
- several boxes of one phrase share one ``<box>``: ``[[…], […]]``, ``", "`` between boxes and numbers.

Quantisation: ``q = round_half_even(v·1000)`` clamped to ``0..1000`` (Python ``round``, as gtok's other
1000-scale schemes); decode ``q/1000``. Bound ``0.5/1000`` per axis. Boxes only (InternVL has no point
syntax).
"""

from __future__ import annotations

from gtok_cli.codecs._ref_boxes import RefBoxListCodec


class InternVLCodec(RefBoxListCodec):
    name = "internvl"
    ref_open, ref_close, box_open, box_close = "<ref>", "</ref>", "<box>", "</box>"
    scale = 1000


__all__ = ["InternVLCodec"]
