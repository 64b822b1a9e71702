"""``point`` scores: ``hit_rate``, the share of truth regions hit by a predicted point.

A point hits a region when it lies inside the region's real mask (from ``meta`` or ``--records``), or inside
its box where there is no mask (the report counts each). With several regions (every instance of an image)
the first as many predicted points as there are regions are matched one to one, in answer order, each to the
first region it hits that no earlier point took: extra points earn nothing, and the order of the answer does
not matter. A referring line has one region: its first point is the answer (the REC convention).
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from gtok_cli.eval.scored import Inputs, Rows, Scored, read_turns, shapes_json, zeros
from gtok_cli.scoring.instances import point_matches


def score_points(inp: Inputs) -> Scored:
    index, answers, codec, strict = inp.index, inp.answers, inp.codec, inp.strict
    n = index.n
    hits, regions = zeros(n), zeros(n)
    hit = np.full(n, np.nan)

    def aggregate(rows: Rows) -> dict[str, float | None]:
        total = float(regions[rows].sum())
        return {"hit_rate": float(hits[rows].sum()) / total if total else None}

    out = Scored(n, aggregate, {"hit": hit}, np.zeros(n, dtype=bool))
    sources: Counter[str] = Counter()
    for k in range(n):
        truth = inp.truth(k)
        regions[k] = len(truth.regions)
        sources.update("mask" if r.mask is not None else "box" for r in truth.regions)
        turns = answers[k]
        if turns is None:
            hit[k] = 0.0
            continue
        answer, _ = read_turns(turns, codec, truth.size, strict)
        out.note(k, answer)
        pts = [(g.label, s) for g in answer.groundings for s in g.shapes if s.kind == "point"]
        out.decoded[k] = shapes_json(pts)
        hits[k] = point_matches([s for _, s in pts[: len(truth.regions)]], truth)
        hit[k] = hits[k] / regions[k] if regions[k] else np.nan
    out.info["truth"] = dict(sources)
    return out
