"""``gtok reward`` as a library call: sampled answers scored against an export, one line per sample.

The predictions file and its matching to export lines are ``gtok eval``'s (``scoring.predictions``,
``scoring.matching``, ``scoring.export_index``), except that several predictions of one line are samples
(rejection sampling, best-of-n), each scored. The scheme comes from the export's manifest. The completion
scored is a prediction's last turn; the turns before it (else the export line's own assistant turns before its
last: a refine export's proposal) are ``previous`` for the offset stage.

Output, one JSON line per prediction in input order: ``{"id", "line", "sample", "rewards": {name: value}}``
(``id``: the export line's id; ``line``: its 0-based index; ``sample``: 0, 1, … among the predictions of that
line). A prediction whose id is not in the export keeps its own ``id``, with ``line`` null and no rewards; a
reward that does not apply to a line is null.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gtok_cli.codecs import Codec, codec_from_params
from gtok_cli.errors import InputError, UsageError
from gtok_cli.jsonio import dumps_line, open_output
from gtok_cli.rewards.context import NotApplicable
from gtok_cli.rewards.registry import BATCHES, REWARD_NAMES, accepted_params, full_name, get_reward
from gtok_cli.scoring.export_index import ExportIndex, SampleMeta, open_export
from gtok_cli.scoring.matching import match
from gtok_cli.scoring.predictions import Prediction, read_predictions
from gtok_cli.shards.read import load_manifest

CandidatesFor = Callable[[str, int, tuple[int, int]], Any]
"""``(image file, grid, (w, h)) -> Candidates``: SAM candidates of a line's image (``--mask-backend sam``)."""


def parse_rewards(spec: str | Sequence[str]) -> list[str]:
    """``"format,box"`` (or a list of names) → the rewards' full names, in order, each once."""
    parts = spec.split(",") if isinstance(spec, str) else [p for s in spec for p in s.split(",")]
    names: list[str] = []
    for part in (p.strip() for p in parts):
        if not part:
            continue
        name = full_name(part)  # an unknown name is a UsageError listing the known ones
        if name not in names:
            names.append(name)
    if not names:
        raise UsageError(f"--reward names no reward; choose from {', '.join(REWARD_NAMES)}")
    return names


@dataclass
class RewardStats:
    n: int = 0
    not_applicable: int = 0
    total: float = 0.0
    low: float = math.inf
    high: float = -math.inf

    def add(self, value: float | None) -> None:
        if value is None:
            self.not_applicable += 1
            return
        self.n += 1
        self.total += value
        self.low = min(self.low, value)
        self.high = max(self.high, value)

    def to_json(self) -> dict[str, Any]:
        if not self.n:
            return {"n": 0, "not_applicable": self.not_applicable, "mean": None, "min": None, "max": None}
        return {
            "n": self.n,
            "not_applicable": self.not_applicable,
            "mean": self.total / self.n,
            "min": self.low,
            "max": self.high,
        }


@dataclass
class RewardReport:
    out: str
    scheme: dict[str, Any]
    task: str
    rewards: list[str]
    counts: Counter[str] = field(default_factory=Counter)
    stats: dict[str, RewardStats] = field(default_factory=dict)
    listed: dict[str, list[str]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "out": self.out,
            "task": self.task,
            "scheme": self.scheme,
            "counts": dict(self.counts),
            "rewards": {name: self.stats[name].to_json() for name in self.rewards},
            "listed": self.listed,
        }

    def human(self) -> str:
        c = self.counts
        lines = [
            f"gtok reward: {c['scored']} of {c['predictions']} predictions scored "
            f"({self.task}, {self.scheme['scheme']}) → {self.out}",
        ]
        for name in self.rewards:
            s = self.stats[name].to_json()
            if s["n"]:
                lines.append(
                    f"  {name}: mean {s['mean']:.4f}  min {s['min']:.4f}  max {s['max']:.4f}  (n={s['n']})"
                )
            else:
                lines.append(f"  {name}: no sample it applies to")
            if s["not_applicable"]:
                lines[-1] += f"; not applicable to {s['not_applicable']}"
        for what in ("unknown_id", "lines_without_prediction"):
            if c[what]:
                shown = self.listed.get(what, [])[:5]
                more = " …" if c[what] > len(shown) else ""
                lines.append(f"  {what}: {c[what]} ({', '.join(shown)}{more})")
        return "\n".join(lines)


def score_predictions(
    predictions: str | Path,
    export: str | Path,
    rewards: str | Sequence[str],
    out: str | Path,
    *,
    strict: bool = False,
    candidates_for: CandidatesFor | None = None,
    records: list[str] | None = None,
    rebuild: SampleMeta | None = None,
) -> RewardReport:
    """Score every prediction of ``predictions`` against the export ``export`` with ``rewards``; write one
    JSON line per prediction to ``out``. No prediction scored → InputError (exit 2): nothing to filter on.

    ``records`` / ``rebuild``: the truth of a ``--no-meta`` export, as ``gtok eval --records`` takes it."""
    names = parse_rewards(rewards)
    manifest, _ = load_manifest(export)
    index = open_export(
        export,
        records=records,
        rebuild=rebuild,
        keep_answers=manifest.get("refine") is not None,  # the proposal of a refine line is its `previous`
        keep_images=candidates_for is not None,
    )
    codec = codec_from_params(index.manifest["scheme"])
    source = str(predictions)
    matched = match(read_predictions(predictions), index.ids, source, keep_all=True)
    report = RewardReport(str(out), index.manifest["scheme"], index.task, names)
    report.stats = {name: RewardStats() for name in names}
    line_of: dict[int, tuple[int, int]] = {}  # prediction file line → (export line, sample number)
    for k, preds in enumerate(matched.all):
        for n, p in enumerate(preds):
            line_of[p.lineno] = (k, n)
    report.counts["predictions"] = len(line_of) + len(matched.unknown)
    report.counts["unknown_id"] = len(matched.unknown)
    report.counts["lines_without_prediction"] = sum(1 for preds in matched.all if not preds)
    report.listed = {
        "unknown_id": [_label(p) for p in matched.unknown[:20]],
        "lines_without_prediction": [index.ids[k] or f"line {k}" for k, p in enumerate(matched.all) if not p][
            :20
        ],
    }
    ordered = sorted([*(p for preds in matched.all for p in preds), *matched.unknown], key=lambda p: p.lineno)
    # nothing to filter on: an error, and no output is written
    if not line_of:
        raise InputError(
            "no prediction names a line of the export: nothing scored",
            file=source,
            expected=f'ids of {export} (a line\'s id, else its meta.record_id) or {{"line": N}}',
            found=report.listed["unknown_id"][:3],
            reason="reward.nothing_scored",
        )
    scored = [p for preds in matched.all for p in preds]
    values = _score_all(scored, line_of, index, codec, names, strict, candidates_for)
    with open_output(out) as f:
        for p in ordered:
            row: dict[str, Any] = {"id": _key(p), "line": None, "sample": None, "rewards": {}}
            where = line_of.get(p.lineno)
            if where is not None:
                k, n = where
                row.update(id=index.ids[k] or k, line=k, sample=n, rewards=values[p.lineno])
                report.counts["scored"] += 1
                for name in names:
                    report.stats[name].add(row["rewards"][name])
            f.write(dumps_line(row))
    return report


def _score_all(
    scored: list[Prediction],
    line_of: dict[int, tuple[int, int]],
    index: ExportIndex,
    codec: Codec,
    names: list[str],
    strict: bool,
    candidates_for: CandidatesFor | None,
) -> dict[int, dict[str, float | None]]:
    """Every reward of every prediction that names a line, by prediction file line; a reward with a vectorised
    form (``registry.BATCHES``) is computed in one call over all of them."""
    lines = [line_of[p.lineno][0] for p in scored]
    metas = [index.meta(k) for k in lines]
    answers = [p.turns[-1] for p in scored]
    out: dict[int, dict[str, float | None]] = {p.lineno: {} for p in scored}
    for name in names:
        batch = BATCHES.get(name)
        if batch is not None:
            got = batch(answers, metas, scheme=codec, strict=strict)
        else:
            got = [
                _score_one(name, p, k, meta, index, codec, strict, candidates_for)
                for p, k, meta in zip(scored, lines, metas, strict=True)
            ]
        for p, value in zip(scored, got, strict=True):
            out[p.lineno][name] = value
    return out


def _score_one(
    name: str,
    p: Prediction,
    k: int,
    meta: dict[str, Any],
    index: ExportIndex,
    codec: Codec,
    strict: bool,
    candidates_for: CandidatesFor | None,
) -> float | None:
    accepted = accepted_params(name)
    params: dict[str, Any] = {"scheme": codec, "strict": strict}
    if "previous" in accepted:
        params["previous"] = p.turns[:-1] or (index.answers[k][:-1] if index.answers else [])
    if "candidates" in accepted and candidates_for is not None:
        w, h = (int(v) for v in meta["image_size"])
        params["candidates"] = candidates_for(index.images[k], int(getattr(codec, "grid", 0)), (w, h))
    try:
        return get_reward(name)(p.turns[-1], meta, **{a: v for a, v in params.items() if a in accepted})
    except NotApplicable:
        return None


def _key(p: Prediction) -> str | int:
    return p.key


def _label(p: Prediction) -> str:
    return f"line {p.key}" if isinstance(p.key, int) else p.key


__all__ = ["RewardReport", "parse_rewards", "score_predictions"]
