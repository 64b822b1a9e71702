"""The mask solver's IoU, as written beside mask tokens (docs/spec.md, "Mask tokens"): read from a region,
floor-checked, summarised.

Mask tokens round-trip exactly (decoding a grid answer gives back its anchors, error 0 by construction), so
what says how well they draw the object is the IoU the greedy reached against the region's mask:
``mask_tokens.iou``, which ``gtok masks`` writes and export copies into each line's ``meta``. ``verify`` and
``stats`` report its distribution over mask regions and, with ``--min-mask-iou``, the masks below a floor.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gtok_cli.errors import UsageError

OPTION = "--min-mask-iou"


def check_floor(value: float | None) -> float | None:
    """``--min-mask-iou``: None (no floor) or a number in [0, 1]; NaN or out of range is a usage error."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise UsageError(f"{OPTION} must be a number in [0, 1], got {value!r}")
    if not 0.0 <= value <= 1.0:
        raise UsageError(f"{OPTION} must be in [0, 1], got {value}")
    return float(value)


def solver_iou(region: Mapping[str, Any]) -> float | None:
    """The IoU the solver reached for this region's mask tokens; None when not recorded."""
    mt = region.get("mask_tokens")
    iou = mt.get("iou") if isinstance(mt, Mapping) else None
    if isinstance(iou, bool) or not isinstance(iou, int | float):
        return None
    return float(iou)


@dataclass
class SolverIoUs:
    """Solver IoUs of the mask regions seen, and how many mask regions had none recorded."""

    values: list[float] = field(default_factory=list)
    not_recorded: int = 0

    def add(self, region: Mapping[str, Any]) -> float | None:
        iou = solver_iou(region)
        if iou is None:
            self.not_recorded += 1
        else:
            self.values.append(iou)
        return iou

    def merge(self, other: SolverIoUs) -> None:
        self.values += other.values
        self.not_recorded += other.not_recorded

    def below(self, floor: float | None) -> int | None:
        """How many recorded IoUs are below ``floor`` (None: no floor given)."""
        return None if floor is None else sum(v < floor for v in self.values)


__all__ = ["OPTION", "SolverIoUs", "check_floor", "solver_iou"]
