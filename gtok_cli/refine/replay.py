"""A propose-and-refine conversation replayed: the answer left after its offset turns (``gtok show`` draws
it, ``gtok eval`` and the rewards score it turn by turn).

An export made with ``--task refine`` or ``--refine`` answers first in grid tokens (the proposal, decoded as
usual), then each refinement turn holds, for every shape still alive, one offset per anchor, in order
(``docs/spec.md``, grid scheme: offsets). :func:`replay` applies the turns one after the other with
:meth:`GridCodec.apply_refinement`, shape by shape so every refined shape keeps the truth region (colour)
of its proposal; a shape whose anchors are all deleted is gone from the next turn on. A turn that does not
pair one-to-one with the shapes alive before it is reported and ends the replay (pairing would be a guess).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from gtok_cli.codecs import Codec, Shape, Size
from gtok_cli.codecs.grid import OFFSET_TAG, GridCodec


@dataclass
class Replay:
    shapes: list[tuple[int, Shape]] = field(default_factory=list)
    """(region, shape) left after the last turn applied, in answer order."""
    turns: int = 0
    """Offset turns applied."""
    errors: list[str] = field(default_factory=list)


def is_refinement(codec: Codec, text: str) -> bool:
    """Whether a turn is a refinement turn (offset tokens of the grid scheme), not an answer."""
    return isinstance(codec, GridCodec) and f"<{OFFSET_TAG}>" in text


def replay(codec: Codec, proposal: Sequence[tuple[int, Shape]], turns: Sequence[str], size: Size) -> Replay:
    """``proposal`` ((region, shape) in answer order) after the offset turns ``turns``."""
    out = Replay(list(proposal))
    if not isinstance(codec, GridCodec):
        return out
    for t, text in enumerate(turns, start=1):
        dec = codec.decode_refinement(text)
        if dec.errors:
            out.errors += [f"refinement turn {t}: {e.message}: {e.text!r}" for e in dec.errors]
            break
        if len(dec.shapes) != len(out.shapes):
            out.errors.append(
                f"refinement turn {t} has offsets for {len(dec.shapes)} shapes, "
                f"the answer before it {len(out.shapes)}: not applied"
            )
            break
        alive: list[tuple[int, Shape]] = []
        for k, ((region, shape), offsets) in enumerate(zip(out.shapes, dec.shapes, strict=True)):
            moved = codec.apply_refinement([shape], [offsets], size)  # its messages say "shape 0"
            out.errors += [
                f"refinement turn {t}: {e.replace('shape 0', f'shape {k}', 1)}" for e in moved.errors
            ]
            alive += [(region, s) for s in moved.shapes]
        out.shapes = alive
        out.turns = t
    return out
