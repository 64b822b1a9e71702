"""gtok's rewards as an ms-swift ORM plugin: ``swift rlhf --rlhf_type grpo --external_plugins
gtok_cli/rewards/swift_plugin.py --reward_funcs gtok_format gtok_box …``.

ms-swift imports an ``--external_plugins`` file for its side effects (``swift/arguments/base_args/
base_args.py``, ``_import_external_plugins``); a plugin adds classes to the ``orms`` registry, each a subclass
of ``ORM`` built as ``orms[name](args=args)`` and called ``reward_func(completions, **reward_kwargs)`` with
the completions as strings and every dataset column batched as a keyword (``swift/rl_core/grpo_algorithm.py``,
``compute_rewards_per_func``). ``ORM`` and ``orms`` live in ``swift/rewards/orm.py`` from ms-swift 4
(``swift/plugin/orm.py`` in 3.x); :func:`register` looks in both, and imports swift only when called (this
module imports without swift). ms-swift decodes completions through its template
(``swift/template/base.py``, ``decode_generate_ids``: ``tokenizer.decode`` with special tokens kept), so the
scheme's tokens survive whatever the tokenizer marks special.

Registered names: ``gtok_format``, ``gtok_non_repetition``, ``gtok_box``, ``gtok_mask_iou``, ``gtok_point``,
``gtok_point_refine``, ``gtok_box_refine``, ``gtok_mask_refine``. The truth comes from the dataset's ``meta``
column (an export in the ``messages`` format is ms-swift's standard format, ``meta`` kept as an extra column);
the offset-stage rewards read the answer being refined from the ``messages`` column (the assistant turns
before the completion). A ``scheme`` column (or ``grid`` …) sets the scheme per row, else ``grid`` 32×32. For
other fixed parameters register your own: ``orms["my_box"] = orm_class("box_reward", scheme="qwen2.5-vl")``.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Mapping, MutableMapping, Sequence
from typing import Any

from gtok_cli.rewards.completions import completion_text, previous_turns
from gtok_cli.rewards.context import NotApplicable, as_meta
from gtok_cli.rewards.registry import REWARD_NAMES, accepted_params, get_reward, takes_previous

ORM_NAMES: dict[str, str] = {f"gtok_{name.removesuffix('_reward')}": name for name in REWARD_NAMES}
"""ms-swift registry name → gtok reward name."""

ROW_PARAMS = ("scheme", "bins", "grid", "offset_step", "min_pixels", "max_pixels")


def orm_class(name: str, base: type | None = None, **params: Any) -> type:
    """A class in ms-swift's ORM shape for the reward ``name`` with ``params`` bound; ``base`` is swift's
    ``ORM`` (looked up when not given)."""
    plain = get_reward(name)
    accepted = accepted_params(name)
    with_previous = takes_previous(name)

    def __init__(self: Any, args: Any = None, **kwargs: Any) -> None:
        self.args = args

    def __call__(self: Any, completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        metas = kwargs.get("meta")
        if metas is None or len(metas) != len(completions):
            raise ValueError(
                f"{name}: needs the dataset's `meta` column (a gtok export line's meta), one per completion"
            )
        messages = kwargs.get("messages")
        out: list[float | None] = []
        for k, completion in enumerate(completions):
            row = dict(params)
            for key in ROW_PARAMS:
                column = kwargs.get(key)
                if key not in row and key in accepted and column is not None:
                    row[key] = column[k]
            if with_previous and "previous" not in row and messages is not None:
                row["previous"] = previous_turns(list(messages[k])[:-1])
            try:
                out.append(plain(completion_text(completion), as_meta(metas[k]), **row))
            except NotApplicable:
                out.append(None)  # ms-swift reads None as NaN (swift/rl_core/grpo_algorithm.py)
        return out

    namespace = {"__init__": __init__, "__call__": __call__, "__doc__": plain.__doc__, "reward_name": name}
    return type(f"Gtok_{name}", (base if base is not None else _swift()[0],), namespace)


def register(
    orms: MutableMapping[str, Any] | None = None, base: type | None = None, **params: Any
) -> dict[str, type]:
    """Add every gtok reward to ms-swift's ``orms`` (``ORM_NAMES``); ``orms`` and ``base`` default to swift's
    own. Returns the classes registered."""
    if orms is None or base is None:
        swift_base, swift_orms = _swift()
        base = base if base is not None else swift_base
        orms = orms if orms is not None else swift_orms
    made = {key: orm_class(name, base, **params) for key, name in ORM_NAMES.items()}
    orms.update(made)
    return made


def _swift() -> tuple[type, MutableMapping[str, Any]]:
    """``(ORM, orms)`` from ms-swift 4 (``swift.rewards``) or 3.x (``swift.plugin``)."""
    last: ImportError | None = None
    for module_name in ("swift.rewards", "swift.plugin"):
        try:
            module = importlib.import_module(module_name)
            base, orms = module.ORM, module.orms
        except (ImportError, AttributeError) as exc:
            last = exc if isinstance(exc, ImportError) else ImportError(str(exc))
            continue
        if isinstance(orms, Mapping):
            return base, orms  # type: ignore[return-value]
    raise ImportError(f"ms-swift is not importable (swift.rewards / swift.plugin): {last}")


# loaded by ms-swift's --external_plugins: register at import, as its plugins do; imported without ms-swift
# (docs, tests), there is nothing to register into
with contextlib.suppress(ImportError):
    register()

__all__ = ["ORM_NAMES", "orm_class", "register"]
