"""The rewards by name: what the trainer adapters (TRL, verl, ms-swift) and ``gtok reward`` look up."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from gtok_cli.errors import UsageError
from gtok_cli.rewards.context import CODEC_PARAMS
from gtok_cli.rewards.grid_stage import (
    box_reward,
    box_reward_batch,
    format_reward,
    mask_iou_reward,
    non_repetition_reward,
    point_reward,
)
from gtok_cli.rewards.offset_stage import box_refine_reward, mask_refine_reward, point_refine_reward
from gtok_cli.rewards.question_stage import count_reward, relation_reward

Reward = Callable[..., float]

REWARDS: dict[str, Reward] = {
    "format_reward": format_reward,
    "non_repetition_reward": non_repetition_reward,
    "box_reward": box_reward,
    "mask_iou_reward": mask_iou_reward,
    "point_reward": point_reward,
    "point_refine_reward": point_refine_reward,
    "box_refine_reward": box_refine_reward,
    "mask_refine_reward": mask_refine_reward,
    "count_reward": count_reward,
    "relation_reward": relation_reward,
}
REWARD_NAMES = tuple(REWARDS)

BatchReward = Callable[..., list[float | None]]
BATCHES: dict[str, BatchReward] = {"box_reward": box_reward_batch}
"""Vectorised forms ``f(answers, metas, **params) -> list[float | None]`` (None: not applicable), equal item
by item to the plain function; the adapters and ``gtok reward`` use them where nothing varies per row."""


def full_name(name: str) -> str:
    """A reward's name as registered: ``box`` → ``box_reward``; an unknown name is a UsageError."""
    key = name if name in REWARDS else f"{name}_reward"
    if key not in REWARDS:
        raise UsageError(f"unknown reward {name!r}; choose from {', '.join(REWARD_NAMES)}")
    return key


def get_reward(name: str) -> Reward:
    """The plain reward function ``name`` (``box_reward``, …; ``box`` works too)."""
    return REWARDS[full_name(name)]


def accepted_params(name: str) -> frozenset[str]:
    """The keyword parameters reward ``name`` takes (its own and the codec's)."""
    sig = inspect.signature(get_reward(name))
    own = {p.name for p in sig.parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY}
    return frozenset(own | set(CODEC_PARAMS))


def takes_previous(name: str) -> bool:
    """Whether reward ``name`` reads the turns before the completion (the offset stage, and format)."""
    return "previous" in accepted_params(name)


def call_reward(name: str, answer: str, meta: Any, **params: Any) -> float:
    """Reward ``name`` with only the parameters it takes (the others are ignored)."""
    accepted = accepted_params(name)
    return get_reward(name)(answer, meta, **{k: v for k, v in params.items() if k in accepted})
