"""gtok's rewards as a verl ``compute_score``.

verl's reward managers (``verl/workers/reward_manager/naive.py``, and the reward loop's
``verl/experimental/reward_loop/reward_manager/naive.py``) decode each response with
``skip_special_tokens=True`` and call ``compute_score(data_source=…, solution_str=…, ground_truth=…,
extra_info=…)``; a float or a dict with ``"score"`` (its other keys are logged) comes back. A custom function
is named in the config and its ``reward_kwargs`` are merged into every call
(``verl/trainer/ppo/reward.py``, ``_call_with_kwargs``)::

    custom_reward_function.path=pkg://gtok_cli.rewards.verl
    custom_reward_function.name=compute_score
    +custom_reward_function.reward_kwargs.scheme=grid

Per sample: ``ground_truth`` is the export line's ``meta`` (a dict or its JSON string; store it under
``reward_model.ground_truth`` in the parquet); ``extra_info["reward"]`` names the reward (default
``box_reward``) or a list of names (then the result is ``{"score": sum, name: value, …}``);
``extra_info["previous"]`` is the answer being refined (the offset stage); ``extra_info["reward_params"]``
holds further parameters. verl adds ``num_turns`` and ``rollout_reward_scores`` to ``extra_info``; those and
any keyword a reward does not take are ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gtok_cli.errors import UsageError
from gtok_cli.rewards.context import as_meta
from gtok_cli.rewards.registry import call_reward

DEFAULT_REWARD = "box_reward"


def compute_score(
    data_source: Any = None,
    solution_str: str = "",
    ground_truth: Any = None,
    extra_info: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> float | dict[str, float]:
    """The reward ``extra_info["reward"]`` (default ``box_reward``) of ``solution_str`` against the line's
    ``meta`` given as ``ground_truth``. ``data_source`` is not used (any dataset name works)."""
    info = dict(extra_info or {})
    chosen = info.get("reward", kwargs.pop("reward", DEFAULT_REWARD))
    params: dict[str, Any] = {**kwargs, **dict(info.get("reward_params") or {})}
    for key in ("previous", "scheme"):
        if key in info and info[key] is not None:
            params[key] = info[key]
    meta = as_meta(ground_truth)
    if isinstance(chosen, str):
        return call_reward(chosen, solution_str or "", meta, **params)
    if isinstance(chosen, (list, tuple)) and chosen and all(isinstance(c, str) for c in chosen):
        parts = {name: call_reward(name, solution_str or "", meta, **params) for name in chosen}
        return {"score": float(sum(parts.values())), **parts}
    raise UsageError(f"extra_info['reward'] must name a reward or a list of rewards, got {chosen!r}")


__all__ = ["DEFAULT_REWARD", "compute_score"]
