"""Phrasings of each export task, and the deterministic choice among them.

A template is a plain string with ``{name}`` slots; each task names the slots its templates must use
(``REQUIRED_SLOTS``). The choice for a sample is ``crc32(seed, task, sample id) mod len(templates)``:
stable across Python versions, processes and machines (Python's salted ``hash()`` is never used).
A user file (``--templates FILE``, JSON ``{"rec": ["…{expression}…", …], …}``) replaces the lists it names.
"""

from __future__ import annotations

import hashlib
import string
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import orjson

from gtok_cli.errors import InputError
from gtok_cli.jsonio import load_json

REQUIRED_SLOTS: dict[str, frozenset[str]] = {
    "rec": frozenset({"expression"}),
    "reg": frozenset({"region"}),
    "grounded-caption": frozenset(),
    "multi": frozenset({"label"}),
    "point": frozenset({"expression"}),
    "point-all": frozenset(),
    "detect": frozenset(),
    "refine": frozenset(),
    "count": frozenset({"label"}),
    "relation-yesno": frozenset({"subject", "relation", "object"}),
    "relation-what": frozenset({"subject", "object"}),
    "relation-answer": frozenset({"subject", "statement", "object"}),
    "relation-which": frozenset({"relation", "object"}),
}
"""Slots each template list must contain (``point-all``: the point task on an ``instances`` record;
``refine``: the question of each refinement turn; ``relation-*``: the relation task's forms and its
statement, docs/spec.md#relations)."""


def _slots(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


@dataclass(frozen=True)
class Templates:
    by_task: Mapping[str, tuple[str, ...]]

    def choose(self, task: str, seed: int, sample_id: str) -> str:
        options = self.by_task[task]
        return options[choice_index(seed, task, sample_id, len(options))]

    def digest(self) -> str:
        """sha256 of the template set (in the manifest: other phrasings make another dataset)."""
        data = orjson.dumps({k: list(v) for k, v in self.by_task.items()}, option=orjson.OPT_SORT_KEYS)
        return hashlib.sha256(data).hexdigest()


def choice_index(seed: int, task: str, sample_id: str, n: int) -> int:
    return zlib.crc32(f"{seed}\x1f{task}\x1f{sample_id}".encode()) % n


def _check(by_task: Mapping[str, Any], file: str) -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    for task, options in by_task.items():
        if task not in REQUIRED_SLOTS:
            raise InputError(
                "unknown task in templates",
                file=file,
                field=task,
                expected=", ".join(REQUIRED_SLOTS),
                found=task,
                reason="templates.task",
            )
        if not isinstance(options, list) or not options or not all(isinstance(t, str) for t in options):
            raise InputError(
                "templates must be a non-empty list of strings",
                file=file,
                field=task,
                expected="[str, ...]",
                found=options,
                reason="templates.type",
            )
        for t in options:
            try:
                slots = _slots(t)
            except ValueError as exc:
                raise InputError(
                    f"bad template: {exc}", file=file, field=task, found=t, reason="templates.syntax"
                ) from None
            if slots != REQUIRED_SLOTS[task]:
                raise InputError(
                    "template slots differ from the task's",
                    file=file,
                    field=task,
                    expected=str(sorted(REQUIRED_SLOTS[task])),
                    found=t,
                    reason="templates.slots",
                )
        out[task] = tuple(options)
    return out


def default_templates() -> Templates:
    raw = orjson.loads(resources.files("gtok_cli.templates").joinpath("default.json").read_bytes())
    return Templates(_check(raw, "gtok_cli/templates/default.json"))


def load_templates(path: str | Path | None) -> Templates:
    """The default phrasings, with the lists a user file names replaced."""
    base = dict(default_templates().by_task)
    if path is not None:
        raw = load_json(path)
        if not isinstance(raw, dict):
            raise InputError(
                "templates file must be a JSON object",
                file=str(path),
                expected='{"task": [templates]}',
                found=type(raw).__name__,
                reason="templates.type",
            )
        base.update(_check(raw, str(path)))
    return Templates(base)
