"""gtok's rewards in the shape TRL's ``GRPOTrainer`` calls: ``f(prompts, completions, **columns) -> list``.

``GRPOTrainer._calculate_rewards`` (trl/trainer/grpo_trainer.py) calls every reward function as
``reward_func(prompts=prompts, completions=completions, completion_ids=completion_ids_list,
**reward_kwargs)``, where ``reward_kwargs`` holds every dataset column but ``prompt`` / ``completion`` /
``completion_ids`` as a list (one value per completion, repeated per generation) plus ``trainer_state``,
``log_extra`` and ``log_metric``. Completions are strings for standard prompts and ``[{"role": "assistant",
"content": …}]`` for conversational ones, decoded with ``skip_special_tokens=True``. The functions here read
the truth from the ``meta`` column, so a gtok export loaded with ``datasets`` (which gives ``meta`` back as a
dict; a JSON string works too) carries it as is; :func:`grpo_example` makes the ``prompt`` column GRPO needs
from an export line.

Every name of :mod:`gtok_cli.rewards` is here with the defaults (scheme ``grid`` 32×32, lenient reading);
:func:`make_reward` binds other parameters (``scheme="qwen2.5-vl"``, ``strict=True``, ``candidates``, …) and,
with ``tokenizer=``, re-reads each completion from its token ids keeping the scheme's own tokens, for a model
whose tokenizer marks them special (docs/rewards.md#special-tokens). A dataset column named like a parameter
(``scheme``, ``grid``) sets it per row.

Example::

    from trl import GRPOConfig, GRPOTrainer
    from gtok_cli.rewards import trl as gtok_rewards

    trainer = GRPOTrainer(
        model=model,
        reward_funcs=[gtok_rewards.format_reward, gtok_rewards.box_reward],
        train_dataset=dataset.map(gtok_rewards.grpo_example),  # columns: prompt, images, meta
        args=GRPOConfig(output_dir="out"),
    )
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from gtok_cli.errors import UsageError
from gtok_cli.rewards.completions import Tokenizer, completion_text, decode_keeping, previous_turns
from gtok_cli.rewards.context import CODEC_PARAMS, NotApplicable, as_meta, resolve_codec, split_params
from gtok_cli.rewards.registry import BATCHES, REWARD_NAMES, full_name, get_reward, takes_previous
from gtok_cli.trainer_formats import get_format

TrlReward = Callable[..., list[float | None]]

ROW_PARAMS = ("scheme", *CODEC_PARAMS)
"""Dataset columns that set a reward parameter per row (when the function does not bind it)."""


def make_reward(name: str, *, tokenizer: Tokenizer | None = None, **params: Any) -> TrlReward:
    """The reward ``name`` of :mod:`gtok_cli.rewards` as a TRL reward function, with ``params`` bound.

    ``tokenizer``: when given and TRL passes ``completion_ids``, each completion is re-decoded keeping the
    scheme's tokens (:func:`~gtok_cli.rewards.completions.decode_keeping`) instead of the text TRL decoded
    with ``skip_special_tokens=True``.
    """
    name = full_name(name)
    plain = get_reward(name)
    batch = BATCHES.get(name)
    with_previous = takes_previous(name)
    codec_params, _ = split_params(params)

    def reward(
        prompts: Sequence[Any] | None = None,
        completions: Sequence[Any] | None = None,
        completion_ids: Sequence[Sequence[int]] | None = None,
        **columns: Any,
    ) -> list[float | None]:
        if completions is None:
            raise UsageError(f"{name}: called without completions")
        metas = columns.get("meta")
        if metas is None or len(metas) != len(completions):
            raise UsageError(
                f"{name}: needs the dataset's `meta` column (a gtok export line's meta), one per completion; "
                f"found {'none' if metas is None else len(metas)} for {len(completions)} completions"
            )
        per_row = [key for key in ROW_PARAMS if key not in params and columns.get(key) is not None]
        rows, texts, parsed = [], [], []
        for k, completion in enumerate(completions):
            row = dict(params)
            row.update({key: columns[key][k] for key in per_row})
            meta = as_meta(metas[k])
            if tokenizer is not None and completion_ids is not None:
                row_codec = {k2: v for k2, v in row.items() if k2 in CODEC_PARAMS}
                codec = resolve_codec(meta, row.get("scheme"), **{**codec_params, **row_codec})
                text = decode_keeping(completion_ids[k], tokenizer, _vocab(codec.name, codec.vocab))
            else:
                text = completion_text(completion)
            if with_previous and "previous" not in row and prompts is not None:
                row["previous"] = previous_turns(prompts[k])
            rows.append(row)
            texts.append(text)
            parsed.append(meta)
        if batch is not None and not per_row:  # one vectorised call (TRL reads None as NaN: no reward)
            return batch(texts, parsed, **params)
        out: list[float | None] = []
        for text, meta, row in zip(texts, parsed, rows, strict=True):
            try:
                out.append(plain(text, meta, **row))
            except NotApplicable:
                out.append(None)  # TRL reads None as NaN: no reward from this function for this row
        return out

    reward.__name__ = name
    reward.__qualname__ = name
    # the plain function's text, not its examples: they call it as (answer, meta), this takes TRL's columns
    doc = (plain.__doc__ or "").split("Example")[0].rstrip()
    reward.__doc__ = (
        f"TRL reward function of :func:`gtok_cli.rewards.{name}`: "
        f"``reward(prompts, completions, completion_ids, **columns)`` with a ``meta`` column.\n\n{doc}"
    )
    return reward


_VOCABS: dict[str, frozenset[str]] = {}


def _vocab(key: str, make: Callable[[], list[str]]) -> frozenset[str]:
    if key not in _VOCABS:
        _VOCABS[key] = frozenset(make())
    return _VOCABS[key]


def grpo_example(line: Mapping[str, Any], image_root: str | None = None) -> dict[str, Any]:
    """A gtok export line (llava, messages or conversations) → the ``prompt`` column GRPO needs: every turn
    before the last assistant turn, as ``{"role", "content"}`` messages, the ``<image>`` tag taken out (TRL
    inserts the image itself from the ``images`` / ``image`` column; ``trainer_formats`` reads the turns).
    ``meta`` is passed through. With ``image_root``, ``images`` becomes the list of the image paths under it
    (cast the column to ``datasets.List(datasets.Image())`` to load them). For ``datasets.Dataset.map``
    (``fn_kwargs={"image_root": …}``)."""
    fmt = get_format(_format_of(line))
    try:
        turns = fmt.turns(dict(line))
    except (KeyError, TypeError):
        raise UsageError(f"not a gtok {fmt.name} export line: its turns cannot be read") from None
    last = max((k for k, (role, _) in enumerate(turns) if role == "assistant"), default=len(turns))
    out: dict[str, Any] = {"prompt": [{"role": role, "content": text} for role, text in turns[:last]]}
    if image_root is not None:
        out["images"] = [str(Path(image_root) / fmt.image(dict(line)))]
    if "meta" in line:
        out["meta"] = line["meta"]
    return out


def _format_of(line: Mapping[str, Any]) -> str:
    if "messages" in line:
        return "messages"
    turns = line.get("conversations")
    if isinstance(turns, list) and turns and isinstance(turns[0], Mapping):
        return "llava" if "from" in turns[0] else "conversations"
    raise UsageError("not a gtok export line: no `messages` or `conversations` list")


format_reward = make_reward("format_reward")
non_repetition_reward = make_reward("non_repetition_reward")
box_reward = make_reward("box_reward")
mask_iou_reward = make_reward("mask_iou_reward")
point_reward = make_reward("point_reward")
point_refine_reward = make_reward("point_refine_reward")
box_refine_reward = make_reward("box_refine_reward")
mask_refine_reward = make_reward("mask_refine_reward")
count_reward = make_reward("count_reward")
relation_reward = make_reward("relation_reward")

__all__ = [*REWARD_NAMES, "grpo_example", "make_reward"]
