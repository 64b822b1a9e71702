"""A line's turns as text a scheme decodes: for ``--format swift`` the placeholders rendered with the codec.

An ms-swift line holds ``<ref-object>``/``<bbox>`` placeholders and its geometry in ``objects``
(:mod:`gtok_cli.trainer_formats`); readers that decode turns with the manifest's scheme (``stats``, ``show``,
``eval``) first render each run ``<ref-object><bbox>…`` as one grounding of the codec (the label and its
shapes; a lone ``<ref-object>`` as its plain label), as a template renders it for training. Other formats'
turns are returned as they are.
"""

from __future__ import annotations

import re
from typing import Any

from gtok_cli.codecs import Codec, Grounding, Shape, Size
from gtok_cli.trainer_formats import BBOX_TAG, REF_TAG, TrainerFormat, Turns

_RUN = re.compile(f"({re.escape(REF_TAG)})?((?:{re.escape(BBOX_TAG)})*)")


def decodable_turns(fmt: TrainerFormat, line: dict[str, Any], codec: Codec, size: Size) -> Turns:
    """:meth:`TrainerFormat.turns`, with a swift line's placeholders rendered by ``codec`` on ``size``."""
    if fmt.objects_key is None:
        return fmt.turns(line)
    objects = line[fmt.objects_key]
    refs, boxes = iter(objects["ref"]), iter(objects["bbox"])

    def run(m: re.Match[str]) -> str:
        label = next(refs) if m[1] else None
        n = len(m[2]) // len(BBOX_TAG)
        if not n:
            return label or ""
        shapes = []
        for _ in range(n):
            c = [float(v) for v in next(boxes)]
            shapes.append(Shape.box(*c) if len(c) == 4 else Shape.point(*c))
        return codec.encode([Grounding(label, tuple(shapes))], size)

    return [(role, _RUN.sub(run, text)) for role, text in fmt.turns(line)]
