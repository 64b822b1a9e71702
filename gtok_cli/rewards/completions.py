"""A trainer's completion (and the turns before it) as the text a reward reads.

Trainers hand completions over in two shapes: a string (TRL standard prompts, verl, ms-swift) or a list of
messages (TRL conversational prompts: ``[{"role": "assistant", "content": text}]``, where ``content`` may
itself be a list of ``{"type": "text", "text": …}`` blocks). The offset stage also needs the answer being
refined: the assistant turns before the completion, taken from a conversational prompt, or the prompt string
itself (a refine prompt's only spatial spans are the proposal and the earlier offset turns).

Trainers decode with ``skip_special_tokens=True`` (TRL ``GRPOTrainer``, verl's reward managers); a scheme
whose tokens the model's tokenizer marks special loses them there (docs/rewards.md#special-tokens).
:func:`decode_keeping` re-decodes the completion's token ids keeping the scheme's own tokens and dropping only
the tokenizer's other special tokens (end of turn, padding).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any, Protocol


class Tokenizer(Protocol):
    """The part of a Hugging Face tokenizer :func:`decode_keeping` uses."""

    all_special_ids: list[int]

    def convert_ids_to_tokens(self, ids: list[int]) -> list[str]: ...

    def decode(self, ids: list[int], skip_special_tokens: bool = ...) -> str: ...


def content_text(content: Any) -> str:
    """A message's ``content``: a string, or the text blocks of a multimodal content list joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, Iterable) and not isinstance(content, (bytes, Mapping)):
        parts = []
        for block in content:
            if isinstance(block, str):
                parts.append(block)
            elif isinstance(block, Mapping) and isinstance(block.get("text"), str):
                parts.append(block["text"])
        return "".join(parts)
    return ""


def completion_text(completion: Any) -> str:
    """The answer text of one completion: a string as is; a message list → its assistant contents joined."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Mapping):
        return content_text(completion.get("content"))
    if isinstance(completion, Sequence):
        texts = [content_text(m.get("content")) for m in completion if isinstance(m, Mapping)]
        roles = [m.get("role") for m in completion if isinstance(m, Mapping)]
        if any(r == "assistant" for r in roles):
            texts = [t for t, r in zip(texts, roles, strict=True) if r == "assistant"]
        return "".join(texts)
    return ""


def previous_turns(prompt: Any) -> list[str]:
    """The assistant turns of a conversational prompt, in order (the answer being refined and earlier offset
    turns); a string prompt is one turn (its spatial spans are what the model answered before)."""
    if prompt is None:
        return []
    if isinstance(prompt, str):
        return [prompt]
    if isinstance(prompt, Sequence):
        return [
            content_text(m.get("content"))
            for m in prompt
            if isinstance(m, Mapping) and m.get("role") in ("assistant", "gpt")
        ]
    return []


def decode_keeping(ids: Sequence[int], tokenizer: Tokenizer, keep: Collection[str]) -> str:
    """``ids`` decoded with the tokenizer's special tokens removed except those named in ``keep`` (a scheme's
    vocabulary): what ``skip_special_tokens=True`` would give, had the scheme's tokens not been special.

    Example (a tokenizer that made ``<|box_start|>`` / ``<|box_end|>`` special, as Qwen2-VL's does):

        >>> decode_keeping(ids, tok, get_codec("qwen2-vl").vocab())  # doctest: +SKIP
        'dog<|box_start|>(234,208),(625,729)<|box_end|>'
    """
    ids = [int(i) for i in ids]
    special = set(tokenizer.all_special_ids)
    tokens = tokenizer.convert_ids_to_tokens(ids)
    kept = [i for i, t in zip(ids, tokens, strict=True) if i not in special or t in keep]
    return tokenizer.decode(kept, skip_special_tokens=False)
