"""`gtok export`'s options, typed, and the one description of how each is spelled on the command line.

:class:`ExportOptions` is what the library takes (the CLI maps its flags to it and does nothing else).
:meth:`ExportOptions.command` writes the manifest's ``command`` from :data:`OPTION_FLAGS`,
:data:`SCHEME_FLAGS` and :func:`refine_args`, so the command re-runs the export (tests/test_export_command.py
re-runs it and checks every flag it writes is one ``gtok export`` declares).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from gtok_cli.codecs import Codec
from gtok_cli.counting import CountSettings
from gtok_cli.errors import UsageError
from gtok_cli.export import dispatch, tasks
from gtok_cli.refine.settings import RefineSettings, csv, settings_from_options
from gtok_cli.task_roles import TASKS
from gtok_cli.trainer_formats import NAMES as FORMAT_NAMES
from gtok_cli.trainer_formats import get_format


@dataclass(frozen=True)
class ExportOptions:
    records: tuple[str, ...]
    scheme: dict[str, Any]
    """``codec.describe()``: ``{"scheme": name, "params": {...}}``."""
    task: str
    fmt: str
    out_dir: str
    shard_size: int = 100_000
    seed: int = 0
    num_shards: int = 1
    shard_index: int | None = None
    templates_file: str | None = None
    prefix: str = "gtok"
    compress: bool = False
    meta: bool = True
    shape: tasks.ShapeOption = "box"
    workers: int = 0
    """0: automatic (one per core for large input, else in-process)."""
    refine: RefineSettings | None = None
    """Refinement settings for --task refine / --refine (None: no refinement)."""
    allow_empty: bool = False
    """Write the manifest of an export with no line instead of failing (exit 2)."""
    box_as: str | None = None
    """``"center"``: write each box as its centre point (``--box-as center``; schemes of points: molmo)."""
    negatives: float | None = None
    """``--task count``: zero-count questions per positive question (``--negatives``; None: 0)."""
    max_count: int | None = None
    """``--task count``: skip a category with more instances (``--max-count``; None: no cap)."""

    phrases: str | None = None
    """``--task relation``: a records file of ``referring`` records naming objects (``--phrases``,
    :mod:`.phrases`)."""

    def count_settings(self) -> CountSettings | None:
        """``--task count``'s settings (None for the other tasks)."""
        if self.task != "count":
            return None
        return CountSettings(self.negatives or 0.0, self.max_count)

    def indices(self) -> list[int]:
        return list(range(self.num_shards)) if self.shard_index is None else [self.shard_index]

    def command(self) -> list[str]:
        """The canonical full command: every option that shapes the output spelled out (``--workers`` does
        not), so the manifest alone repeats the export."""
        cmd = ["gtok", "export", *self.records, "--scheme", self.scheme["scheme"]]
        for k, v in sorted(self.scheme.get("params", {}).items()):
            if k in SCHEME_FLAGS:  # the others are pinned by the scheme (rounding, scale, …)
                cmd += [SCHEME_FLAGS[k], v if isinstance(v, str) else orjson.dumps(v).decode()]
        for name, flag, kind in OPTION_FLAGS:
            value = getattr(self, name)
            if kind == "value" and value is not None:
                cmd += [flag, str(value)]
            elif (kind == "switch" and value) or (kind == "negated" and not value):
                cmd.append(flag)
        return cmd + refine_args(self.refine)


FlagKind = Literal["value", "switch", "negated"]
OPTION_FLAGS: tuple[tuple[str, str, FlagKind], ...] = (
    ("task", "--task", "value"),
    ("fmt", "--format", "value"),
    ("out_dir", "--out", "value"),
    ("shard_size", "--shard-size", "value"),
    ("seed", "--seed", "value"),
    ("shape", "--shape", "value"),
    ("prefix", "--prefix", "value"),
    ("num_shards", "--num-shards", "value"),
    ("shard_index", "--shard-index", "value"),
    ("templates_file", "--templates", "value"),
    ("compress", "--gzip", "switch"),
    ("meta", "--no-meta", "negated"),
    ("allow_empty", "--allow-empty", "switch"),
    ("box_as", "--box-as", "value"),
    ("negatives", "--negatives", "value"),
    ("max_count", "--max-count", "value"),
    ("phrases", "--phrases", "value"),
)
"""``(ExportOptions field, flag, how)`` in the command's order: ``value`` is written when not None,
``switch`` when true, ``negated`` when false."""
SCHEME_FLAGS: dict[str, str] = {
    "bins": "--bins",
    "grid": "--grid",
    "offset_step": "--offset-step",
    "min_pixels": "--min-pixels",
    "max_pixels": "--max-pixels",
    "trainer": "--trainer",
    "image_max_pixels": "--image-max-pixels",
}
"""The scheme parameters `gtok export` takes as flags; a scheme's other parameters are fixed by the scheme."""
REFINE_FLAGS = (
    "--refine",
    "--refine-turns",
    "--refine-steps",
    "--refine-extra-rate",
    "--delete-radius",
    "--erode-steps",
    "--dilate-steps",
    "--class-ratios",
)
UNSPELLED_FLAGS = ("--workers",)
"""Flags the command leaves out: the output does not depend on them."""


def refine_args(settings: RefineSettings | None) -> list[str]:
    """The refinement settings spelled out as flags (every one, defaults too)."""
    if settings is None:
        return []
    s = settings
    r = s.classes.ratios
    radius = s.targets.delete_radius_cells
    values = (
        str(s.turns),
        csv(s.proposal.steps.probs),
        repr(float(s.proposal.extra_rate)),
        "inf" if radius is None else repr(float(radius)),
        repr(float(s.classes.erode_steps)),
        repr(float(s.classes.dilate_steps)),
        csv((r.inside, r.ring, r.far, r.hard)),
    )
    out = [REFINE_FLAGS[0]]
    for flag, value in zip(REFINE_FLAGS[1:], values, strict=True):
        out += [flag, value]
    return out


def refine_settings(
    codec: Codec,
    task: str,
    refine: bool,
    turns: int | None = None,
    steps: str | None = None,
    extra_rate: float | None = None,
    delete_radius: float | None = None,
    erode_steps: float | None = None,
    dilate_steps: float | None = None,
    class_ratios: str | None = None,
) -> RefineSettings | None:
    """The refinement settings the flags ask for (None = default); None without ``--refine`` / ``--task
    refine``, where any refinement flag is a UsageError."""
    given = (turns, steps, extra_rate, delete_radius, erode_steps, dilate_steps, class_ratios)
    if not refine and task != "refine":
        if any(v is not None for v in given):
            raise UsageError("refinement options need --task refine or --refine")
        return None
    from gtok_cli.export.refine_task import grid_codec, lattice_of

    lattice = lattice_of(grid_codec(codec, "--task refine" if task == "refine" else "--refine"))
    return settings_from_options(
        lattice,
        1 if turns is None else turns,
        steps=steps,
        extra_rate=extra_rate,
        delete_radius=delete_radius,
        erode_steps=erode_steps,
        dilate_steps=dilate_steps,
        class_ratios=class_ratios,
    )


def check_options(opts: ExportOptions, codec: Codec) -> None:
    if opts.task not in TASKS:
        raise UsageError(f"unknown task {opts.task!r}; choose one of: {', '.join(TASKS)}")
    if opts.fmt not in FORMAT_NAMES:
        raise UsageError(f"unknown format {opts.fmt!r}; choose one of: {', '.join(FORMAT_NAMES)}")
    if opts.shape not in tasks.SHAPE_OPTIONS:
        raise UsageError(f"unknown shape {opts.shape!r}; choose one of: {', '.join(tasks.SHAPE_OPTIONS)}")
    if opts.shard_size < 1:
        raise UsageError("--shard-size must be at least 1")
    if opts.num_shards < 1:
        raise UsageError("--num-shards must be at least 1")
    if opts.shard_index is not None and not 0 <= opts.shard_index < opts.num_shards:
        raise UsageError(f"--shard-index must be in 0..{opts.num_shards - 1}")
    if not opts.prefix or "/" in opts.prefix or opts.prefix.startswith("."):
        raise UsageError(f"bad --prefix {opts.prefix!r}: a plain file-name prefix is needed")
    if opts.box_as is not None and opts.box_as not in tasks.BOX_AS_OPTIONS:
        raise UsageError(
            f"unknown --box-as {opts.box_as!r}; choose one of: {', '.join(tasks.BOX_AS_OPTIONS)}"
        )
    if get_format(opts.fmt).objects_key is not None and (opts.shape != "box" or opts.refine is not None):
        raise UsageError(
            f"--format {opts.fmt} writes boxes and points as ms-swift objects: not --shape {opts.shape}"
            + (" nor refinement turns" if opts.refine is not None else "")
        )
    missing = tasks.kinds_needed(opts.task, opts.shape, opts.box_as) - set(codec.kinds)
    if missing:
        hint = " or --box-as center" if missing == {"box"} and "point" in codec.kinds else ""
        raise UsageError(
            f"scheme {codec.name!r} cannot write {', '.join(sorted(missing))} (it writes: "
            f"{', '.join(sorted(codec.kinds))}); choose another --scheme or --shape{hint}"
        )
    dispatch.check_task_options(opts.task, opts.shape, opts.refine, codec)
    check_count_options(opts)
    if opts.phrases is not None and opts.task != "relation":
        raise UsageError("--phrases is an option of --task relation")


def check_count_options(opts: ExportOptions) -> None:
    """``--negatives`` / ``--max-count``: only with ``--task count``, a finite rate ≥ 0, a cap ≥ 1."""
    if opts.task != "count":
        if opts.negatives is not None or opts.max_count is not None:
            raise UsageError("--negatives and --max-count are options of --task count")
        return
    r = opts.negatives
    if r is not None and not (math.isfinite(r) and 0 <= r <= MAX_NEGATIVES_RATE):
        raise UsageError(f"--negatives must be a rate in [0, {MAX_NEGATIVES_RATE:g}], found {r}")
    if opts.max_count is not None and opts.max_count < 1:
        raise UsageError(f"--max-count must be at least 1, found {opts.max_count}")


MAX_NEGATIVES_RATE = 100.0
"""Zero-count questions per positive question: beyond this the negatives drown the counts (a typo)."""
