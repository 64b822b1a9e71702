"""``refine`` scores (propose and refine, the grid scheme): ``miou_turn0`` (the proposal), ``miou_turn1`` …
``miou_turnK`` after each offset turn applied, and ``gain`` = ``miou_turnK − miou_turn0`` (K = the export's
``--refine-turns``).

A prediction's ``turns`` are the proposal, then its offset turns (``text`` alone is the proposal). The
proposal's shapes pair with the truth regions in order; each offset turn moves them
(``refine.replay``: ``GridCodec.apply_refinement`` shape by shape; a turn that cannot be read or does not pair
one to one with the shapes is a format error and ends the replay, so later turns keep the last answer, as do
the turns a model did not give). A line's value after turn t is the mean over its truth regions of: box IoU
(box), hit 1/0 (point, inside the real mask or the box), mask IoU (mask: the cells under the moved anchors
against the real mask, else the truth anchors' cells); a region whose shape is gone scores 0.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import numpy.typing as npt

from gtok_cli.codecs import Shape
from gtok_cli.eval.scored import Inputs, Rows, Scored, mean, read_turns, shapes_json
from gtok_cli.refine.replay import is_refinement, replay
from gtok_cli.scoring import Truth, box_iou, cells_mask, mask_iou, point_hits


def refine_turns(manifest: dict[str, Any]) -> int:
    settings = manifest.get("refine") or {}
    return int(settings.get("turns", 1))


def _moved_cells(shape: Shape, grid: int, size: tuple[int, int]) -> list[tuple[int, int]]:
    """The grid cells under a (moved) mask's anchor points."""
    w, h = size
    pts = np.asarray(shape.coords, dtype=np.float64).reshape(-1, 2)
    i = np.clip(np.floor(pts[:, 0] * grid / w), 0, grid - 1).astype(int)
    j = np.clip(np.floor(pts[:, 1] * grid / h), 0, grid - 1).astype(int)
    return list(zip(i.tolist(), j.tolist(), strict=True))


def region_value(shape: Shape | None, truth: Truth, r: int, grid: int, cache: dict[int, Any]) -> float:
    """How well ``shape`` draws truth region ``r`` (0 when there is no shape or it is of another kind)."""
    region = truth.regions[r]
    if shape is None or shape.kind != region.kind:
        return 0.0
    if shape.kind == "box" and region.bbox is not None:
        return float(box_iou(shape.coords, region.bbox)[0])
    if shape.kind == "point":
        if r not in cache:
            cache[r] = region.mask_array(truth.size, truth.record_id)
        return float(point_hits([shape.coords], region.bbox, cache[r])[0])
    if shape.kind == "mask":
        if r not in cache:
            cache[r] = region.truth_mask(truth.size, truth.record_id)[0]
        if cache[r] is None:
            return 0.0
        return mask_iou(cells_mask(_moved_cells(shape, grid, truth.size), grid, truth.size), cache[r])
    return 0.0


def line_value(shapes: list[tuple[int, Shape]], truth: Truth, grid: int, cache: dict[int, Any]) -> float:
    if not truth.regions:
        return 0.0
    first: dict[int, Shape] = {}
    for r, s in shapes:
        first.setdefault(r, s)
    vals = [region_value(first.get(r), truth, r, grid, cache) for r in range(len(truth.regions))]
    return float(np.mean(vals))


def score_refine(inp: Inputs) -> Scored:
    index, answers, codec, strict = inp.index, inp.answers, inp.codec, inp.strict
    n = index.n
    turns_k = refine_turns(index.manifest)
    values: npt.NDArray[np.float64] = np.zeros((n, turns_k + 1))
    grid = int(getattr(codec, "grid", 0))
    fe = np.zeros(n, dtype=bool)
    issues: dict[int, str] = {}
    lenient: Counter[str] = Counter()
    decoded: dict[int, list[dict[str, Any]]] = {}
    for k in range(n):
        turns = answers[k]
        if turns is None:
            continue
        truth = inp.truth(k)
        proposal_text = [t for t in turns if not is_refinement(codec, t)][:1]
        offsets = [t for t in turns if is_refinement(codec, t)]
        answer, _ = read_turns(proposal_text or [""], codec, truth.size, strict)
        lenient.update(answer.lenient)
        problems = [i.message for i in answer.issues] + ([] if answer.groundings else ["no shape"])
        state = list(enumerate(answer.shapes()))
        cache: dict[int, Any] = {}
        values[k, 0] = line_value(state, truth, grid, cache)
        for t in range(1, turns_k + 1):
            if t <= len(offsets):
                after = replay(codec, state, [offsets[t - 1]], truth.size)
                if after.errors:
                    problems += after.errors
                    offsets = offsets[: t - 1]  # the replay ends here: later turns keep this answer
                else:
                    state = after.shapes
            values[k, t] = line_value(state, truth, grid, cache)
        decoded[k] = shapes_json([(None, s) for _, s in state])
        if problems:
            fe[k] = True
            issues[k] = problems[0]

    def aggregate(rows: Rows) -> dict[str, float | None]:
        out: dict[str, float | None] = {f"miou_turn{t}": mean(values[rows, t]) for t in range(turns_k + 1)}
        first, last = out["miou_turn0"], out[f"miou_turn{turns_k}"]
        out["gain"] = last - first if first is not None and last is not None else None
        return out

    per_sample = {f"iou_turn{t}": values[:, t] for t in range(turns_k + 1)}
    return Scored(n, aggregate, per_sample, fe, issues, lenient, decoded, info={"turns": turns_k})
