"""A line's turns as text a scheme decodes: for ``--format swift`` the placeholders rendered with the codec.

An ms-swift line holds ``<ref-object>``/``<bbox>`` placeholders and its geometry in ``objects``
(:mod:`gtok_cli.trainer_formats`); readers that decode turns with the manifest's scheme (``stats``, ``show``,
``eval``) first render each ``<bbox>`` with the codec (each ``<ref-object>`` as its plain label), as a
template renders it for training. Other formats' turns are returned as they are.
"""

from __future__ import annotations

from typing import Any

from gtok_cli.codecs import Codec, Grounding, Shape, Size
from gtok_cli.trainer_formats import TrainerFormat, Turns


def decodable_turns(fmt: TrainerFormat, line: dict[str, Any], codec: Codec, size: Size) -> Turns:
    """:meth:`TrainerFormat.turns`, with a swift line's placeholders rendered by ``codec`` on ``size``."""
    if fmt.objects_key is None:
        return fmt.turns(line)

    def bbox(coords: list[float]) -> str:
        shape = Shape.box(*coords) if len(coords) == 4 else Shape.point(*coords)
        return codec.encode([Grounding(None, (shape,))], size)

    return fmt.fill(line, ref=lambda label: label, bbox=bbox)
