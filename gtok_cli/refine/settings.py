"""Refinement settings as one JSON object: what export records (manifest ``refine``, line ``meta.refine``)
and what verify recomputes the targets with.

::

    {"turns": K,
     "lattice": {"grid": n, "steps_per_cell": m},
     "proposal": {"steps": [P(0), P(1), …], "extra_rate": r},
     "targets": {"delete_radius_cells": d | null},
     "mask_classes": {"erode_steps": e, "dilate_steps": g,
                      "ratios": {"inside": …, "ring": …, "far": …, "hard": …}}}
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from gtok_cli.errors import UsageError
from gtok_cli.refine.classify import ClassRatios, MaskClassConfig
from gtok_cli.refine.lattice import OffsetLattice
from gtok_cli.refine.proposals import ProposalConfig, StepDistribution
from gtok_cli.refine.targets import TargetConfig


@dataclass(frozen=True)
class RefineSettings:
    lattice: OffsetLattice
    turns: int = 1
    proposal: ProposalConfig = field(default_factory=ProposalConfig)
    targets: TargetConfig = field(default_factory=TargetConfig)
    classes: MaskClassConfig = field(default_factory=MaskClassConfig)

    def to_json(self) -> dict[str, Any]:
        r = self.classes.ratios
        return {
            "turns": self.turns,
            "lattice": {"grid": self.lattice.grid, "steps_per_cell": self.lattice.steps_per_cell},
            "proposal": {
                "steps": [float(p) for p in self.proposal.steps.probs],
                "extra_rate": float(self.proposal.extra_rate),
            },
            "targets": {"delete_radius_cells": self.targets.delete_radius_cells},
            "mask_classes": {
                "erode_steps": float(self.classes.erode_steps),
                "dilate_steps": float(self.classes.dilate_steps),
                "ratios": {"inside": r.inside, "ring": r.ring, "far": r.far, "hard": r.hard},
            },
        }

    @staticmethod
    def from_json(d: dict[str, Any]) -> RefineSettings:
        """Inverse of :meth:`to_json`; raises KeyError / TypeError / ValueError on a malformed object."""
        lat = d["lattice"]
        prop = d["proposal"]
        mc = d["mask_classes"]
        ratios = mc["ratios"]
        radius = d["targets"]["delete_radius_cells"]
        return RefineSettings(
            lattice=OffsetLattice(int(lat["grid"]), int(lat["steps_per_cell"])),
            turns=int(d["turns"]),
            proposal=ProposalConfig(
                StepDistribution(tuple(float(p) for p in prop["steps"])), float(prop["extra_rate"])
            ),
            targets=TargetConfig(None if radius is None else float(radius)),
            classes=MaskClassConfig(
                float(mc["erode_steps"]),
                float(mc["dilate_steps"]),
                ClassRatios(
                    float(ratios["inside"]),
                    float(ratios["ring"]),
                    float(ratios["far"]),
                    float(ratios["hard"]),
                ),
            ),
        )


def _numbers(text: str, option: str, count: int | None = None) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise UsageError(f"{option} takes comma-separated numbers, got {text!r}") from None
    if count is not None and len(values) != count:
        raise UsageError(f"{option} takes {count} comma-separated numbers, got {text!r}")
    if any(not math.isfinite(v) or v < 0 for v in values) or sum(values) <= 0:
        raise UsageError(f"{option}: numbers must be finite, >= 0 and not all zero, got {text!r}")
    return values


STEPS_SUM_TOLERANCE = 1e-9
"""How far ``--refine-steps`` may sum from 1 (decimal fractions such as 0.1 are not exact in binary)."""


def _step_probabilities(text: str) -> tuple[float, ...]:
    """``--refine-steps``: P(an axis is off by k cells) for k = 0, 1, …, a distribution, so summing to 1."""
    values = _numbers(text, "--refine-steps")
    total = math.fsum(values)
    if abs(total - 1.0) > STEPS_SUM_TOLERANCE:
        raise UsageError(
            f"--refine-steps must sum to 1 (P(0 cells), P(1 cell), …), got {text!r}: sum {total!r}"
        )
    return values


def settings_from_options(
    lattice: OffsetLattice,
    turns: int = 1,
    steps: str | None = None,
    extra_rate: float | None = None,
    delete_radius: float | None = None,
    erode_steps: float | None = None,
    dilate_steps: float | None = None,
    class_ratios: str | None = None,
) -> RefineSettings:
    """The CLI options (None = default) as settings; bad values → UsageError (exit 2)."""
    if turns < 1:
        raise UsageError(f"--refine-turns must be at least 1, got {turns}")
    base = RefineSettings(lattice)
    prop_steps = base.proposal.steps if steps is None else StepDistribution(_step_probabilities(steps))
    rate = base.proposal.extra_rate if extra_rate is None else extra_rate
    if not 0.0 <= rate <= 1.0:
        raise UsageError(f"--refine-extra-rate must be in [0, 1], got {rate}")
    radius = base.targets.delete_radius_cells
    if delete_radius is not None:
        if not delete_radius > 0:
            raise UsageError(f"--delete-radius must be > 0 cells (inf: never DELETE), got {delete_radius}")
        radius = None if math.isinf(delete_radius) else delete_radius
    erode = base.classes.erode_steps if erode_steps is None else erode_steps
    dilate = base.classes.dilate_steps if dilate_steps is None else dilate_steps
    for name, v in (("--erode-steps", erode), ("--dilate-steps", dilate)):
        if not (math.isfinite(v) and v > 0):
            raise UsageError(f"{name} must be > 0 offset steps, got {v}")
    ratios = base.classes.ratios
    if class_ratios is not None:
        ratios = ClassRatios(*_numbers(class_ratios, "--class-ratios", 4))
    return RefineSettings(
        lattice,
        turns,
        ProposalConfig(prop_steps, rate),
        TargetConfig(radius),
        MaskClassConfig(erode, dilate, ratios),
    )


def csv(values: Sequence[float]) -> str:
    """Numbers as the CLI writes them back (``repr`` of floats: round-trips exactly)."""
    return ",".join(repr(float(v)) for v in values)
