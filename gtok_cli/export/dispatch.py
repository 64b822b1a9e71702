"""Which sample builder serves an export task: the plain builders (:mod:`.tasks`) or, with refinement
settings, the propose-and-refine wrapper (:mod:`.refine_task`). The dispatcher sits above both, so neither
imports the other's caller (``refine_task`` builds on ``tasks``; ``tasks`` knows nothing of refinement)."""

from __future__ import annotations

from gtok_cli.codecs.base import Codec
from gtok_cli.errors import UsageError
from gtok_cli.export import tasks
from gtok_cli.refine.settings import RefineSettings


def builder_for(task: str, refine: RefineSettings | None, codec: Codec) -> tasks.AnyBuilder:
    """The sample builder of ``task``; with refinement settings, wrapped to add the refinement turns."""
    if task == "count":  # several lines per record (tasks.Samples)
        from gtok_cli.export import count_task

        return count_task.build_count
    if task == "relation":
        from gtok_cli.export import relation_task

        return relation_task.build_relation
    if refine is None and task != "refine":
        return tasks.BUILDERS[task]
    from gtok_cli.export import refine_task  # refine imports numpy-heavy modules only when asked for

    return refine_task.refine_builder(task, refine, codec)


def check_task_options(task: str, shape: str, refine: RefineSettings | None, codec: Codec) -> None:
    """Shape / refinement options that only make sense together (UsageError otherwise)."""
    if task == "relation" and (shape != "box" or refine is not None):
        raise UsageError("--task relation writes boxes (--shape box, or --box-as center), without --refine")
    if shape == "point" and task not in ("point", "refine", "count"):
        raise UsageError("--shape point is for --task refine (the point task writes points already)")
    if task == "count" and refine is not None:
        raise UsageError("--task count writes no refinement turns: leave out --refine")
    if refine is not None or task == "refine":
        from gtok_cli.export import refine_task

        refine_task.check_options(task, refine, codec)
