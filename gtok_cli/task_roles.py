"""Task facts every reader of an export needs, one floor below the stages: the task names and which role's
turns carry the spatial spans (export writes them there; verify, show and stats decode them there)."""

from __future__ import annotations

TASKS = ("rec", "reg", "grounded-caption", "multi", "point", "detect", "refine", "count")
GEOMETRY_ROLE: dict[str, str] = {"reg": "user"}
"""Which role's turns carry the spatial spans verify decodes (default: the assistant's)."""


def geometry_role(task: str) -> str:
    return GEOMETRY_ROLE.get(task, "assistant")
