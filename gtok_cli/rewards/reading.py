"""One answer read against one line: the codec, the line's truth and the answer's shapes, as every reward
needs them. The reading itself is the scoring floor's (:func:`gtok_cli.scoring.read_answer`, lenient unless
``strict``; :func:`gtok_cli.scoring.truth_of`): rewards and ``gtok eval`` read answers the same way. Lenient
reading also puts back the box tags a ``skip_special_tokens=True`` decode strips from the Qwen tag schemes
(:func:`gtok_cli.scoring.stripped.rewrap`, counted as ``unwrapped``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gtok_cli.codecs import Codec, Shape
from gtok_cli.errors import UsageError
from gtok_cli.rewards.context import CODEC_PARAMS, SchemeSpec, as_meta, resolve_codec
from gtok_cli.scoring import Answer, Truth, read_answer, truth_of
from gtok_cli.scoring.stripped import rewrap


@dataclass
class Reading:
    codec: Codec
    truth: Truth
    meta: dict[str, Any]
    answer: Answer
    strict: bool

    def shapes(self, kind: str | None = None) -> list[Shape]:
        """The answer's shapes (of ``kind``) a reward scores: every shape read, or none at all when ``strict``
        and something in the answer could not be read (a strict answer is all or nothing)."""
        if self.strict and not self.answer.ok:
            return []
        return [s for s in self.answer.shapes() if kind is None or s.kind == kind]

    def regions(self, kind: str) -> list[int]:
        """Indices of the truth regions of ``kind``, in answer order."""
        return [k for k, r in enumerate(self.truth.regions) if r.kind == kind]


def check_codec_params(name: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` must all be codec parameters (:data:`~gtok_cli.rewards.context.CODEC_PARAMS`)."""
    unknown = sorted(set(params) - set(CODEC_PARAMS))
    if unknown:
        raise UsageError(
            f"{name}: unknown parameter(s) {', '.join(unknown)}; "
            f"codec parameters are {', '.join(CODEC_PARAMS)}"
        )
    return dict(params)


def read_line(
    name: str, answer: str, meta: Any, scheme: SchemeSpec, strict: bool, codec_params: Mapping[str, Any]
) -> Reading:
    """``answer`` read under the line's codec against the line's truth (``meta``)."""
    m = as_meta(meta)
    truth = truth_of(m)
    codec = resolve_codec(m, scheme, **check_codec_params(name, codec_params))
    text = answer if isinstance(answer, str) else ""
    unwrapped = 0
    if (
        not strict
    ):  # the Qwen tag schemes after skip_special_tokens=True: bare corner pairs (scoring.stripped)
        text, unwrapped = rewrap(text, codec)
    read = read_answer(text, codec, truth.size, strict=strict)
    if unwrapped:
        read.lenient["unwrapped"] += unwrapped
    return Reading(codec, truth, m, read, strict)
