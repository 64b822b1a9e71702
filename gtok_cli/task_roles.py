"""Task facts every reader of an export needs, one floor below the stages: the task names and which role's
turns carry the spatial spans (export writes them there; verify, show and stats decode them there)."""

from __future__ import annotations

TASKS = ("rec", "reg", "grounded-caption", "multi", "point", "detect", "refine", "count", "relation")
ANY_ROLE = "any"
"""Spans in the turns of every role (``relation``: the question grounds both regions, or one and the answer
the other)."""
GEOMETRY_ROLE: dict[str, str] = {"reg": "user", "relation": ANY_ROLE}
"""Which role's turns carry the spatial spans verify decodes (default: the assistant's)."""


def geometry_role(task: str) -> str:
    return GEOMETRY_ROLE.get(task, "assistant")


def carries_geometry(task_role: str, role: str) -> bool:
    """Whether a turn of ``role`` carries spans under a task whose geometry role is ``task_role``."""
    return task_role in (ANY_ROLE, role)
