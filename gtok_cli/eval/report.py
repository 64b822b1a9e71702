"""The report of ``gtok eval``: human summary, ``--json`` form, ``--min`` floors (docs/spec.md#eval)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from gtok_cli.errors import UsageError

COUNTS = ("missing", "unknown_id", "duplicate", "format_error")


@dataclass
class EvalReport:
    task: str
    scheme: dict[str, Any]
    n: int
    metrics: dict[str, float | None]
    counts: dict[str, Any]
    """``missing``, ``unknown_id``, ``duplicate``, ``format_error`` and ``lenient`` (repairs by name)."""
    strict: bool = False
    breakdown: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    """``{"dataset": {name: {"n", metrics…}}, "split": {…}}``."""
    listed: dict[str, list[str]] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "scheme": self.scheme,
            "n": self.n,
            "metrics": self.metrics,
            "counts": self.counts,
            "strict": self.strict,
            "breakdown": self.breakdown,
            "listed": self.listed,
            "info": self.info,
        }

    def human(self) -> str:
        params = " ".join(f"{k}={v}" for k, v in sorted(self.scheme.get("params", {}).items()))
        mode = "strict" if self.strict else "lenient"
        lines = [
            f"gtok eval: task {self.task} · scheme {self.scheme['scheme']} {params} · {self.n} lines · {mode}"
        ]
        width = max((len(k) for k in self.metrics), default=0)
        for name, value in self.metrics.items():
            lines.append(f"  {name:<{width}}  {_num(value)}")
        c = self.counts
        lines.append("  counts: " + " · ".join(f"{k} {c.get(k, 0)}" for k in COUNTS))
        lenient = c.get("lenient") or {}
        if not self.strict:
            used = ", ".join(f"{k} {v}" for k, v in lenient.items() if v) or "none used"
            lines.append(f"  leniencies: {used}")
        for key, value in self.info.items():
            lines.append(f"  {key.replace('_', ' ')}: {_info(value)}")
        for by, groups in self.breakdown.items():
            if len(groups) < 2 and "unknown" in groups:
                continue
            lines.append(f"  by {by}:")
            for name, vals in groups.items():
                shown = "  ".join(f"{k} {_num(v)}" for k, v in vals.items() if k != "n")
                lines.append(f"    {name} (n={vals['n']}): {shown}")
        for what, examples in self.listed.items():
            if examples:
                more = "" if c.get(what, 0) <= len(examples) else f" … ({c[what]} in all)"
                lines.append(f"  {what}: " + ", ".join(examples) + more)
        return "\n".join(lines)

    def below(self, floors: dict[str, float]) -> list[str]:
        """The floors not met, one line each (a metric with no value is below any floor)."""
        out = []
        for name, floor in floors.items():
            value = self.metrics.get(name)
            if value is None or not value >= floor:
                out.append(f"{name} {_num(value)} is below --min {name}={floor:g}")
        return out


def parse_floors(items: list[str] | None, known: list[str] | None = None) -> dict[str, float]:
    """``["acc@0.5=0.8", …]`` → ``{"acc@0.5": 0.8}``; a malformed item, a non-finite value or (with
    ``known``) a metric the task does not have is a UsageError (exit 2)."""
    out: dict[str, float] = {}
    for item in items or []:
        name, sep, raw = item.partition("=")
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not sep or not name or not math.isfinite(value):
            raise UsageError(f"--min takes NAME=VALUE with a finite number, e.g. acc@0.5=0.8; got {item!r}")
        if known is not None and name not in known:
            raise UsageError(f"--min {name}: this task has no metric {name!r}; it has: {', '.join(known)}")
        out[name] = value
    return out


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:.4f}"


def _info(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items()) or "-"
    return str(value)
