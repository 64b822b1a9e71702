"""``count`` scores: how often the stated number is right, and whether the instances it grounds are the real
ones (docs/spec.md#counting).

- The predicted count is the number the answer states (:func:`gtok_cli.counting.stated_count`: a JSON
  ``"count"``, else the first number, digits or words, in the prose before the first span); an answer stating
  none counts its decoded shapes instead (``count_from_shapes`` in ``info``); one with neither is unanswered
  (``count_unstated``, a format error: saying nothing is not saying "0"). A missing or unanswered prediction
  is wrong.
- ``count_exact``: share of lines whose predicted count equals ``meta.count.n``; ``count_off_by_one``: share
  within one of it; ``count_mae``: mean absolute error over the lines with a prediction.
- ``precision@0.5`` / ``recall@0.5``: the grounded instances. Boxes are matched one to one to the truth
  regions at IoU ≥ 0.5, greedily in answer order (every box of the one category asked;
  :func:`gtok_cli.scoring.instances.instance_matches`, shared with the count reward); points
  (``--shape point``) hit a region whose real mask (else box) holds them, each region once; masks
  (``--shape mask``) as the box enclosing their anchors' grid cells. Pooled over lines: matched / predicted
  shapes and matched / truth regions (a zero-count line adds only its false positives).
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from gtok_cli.counting import meta_count, stated_count
from gtok_cli.errors import InputError
from gtok_cli.eval.scored import Inputs, Rows, Scored, mean, read_turns, shapes_json, zeros
from gtok_cli.scoring.instances import instance_matches


def score_count(inp: Inputs) -> Scored:
    index, answers, codec, strict = inp.index, inp.answers, inp.codec, inp.strict
    n = index.n
    grid = codec.params().get("grid") if "mask" in codec.kinds else None
    want, got = zeros(n), np.full(n, np.nan)
    matched, npred, ntruth = zeros(n), zeros(n), zeros(n)
    info: Counter[str] = Counter()

    def aggregate(rows: Rows) -> dict[str, float | None]:
        answered = ~np.isnan(got[rows])
        err = np.abs(got[rows] - want[rows])
        p, t = float(npred[rows].sum()), float(ntruth[rows].sum())
        return {
            "count_exact": mean(np.where(answered, err == 0, False)),
            "count_off_by_one": mean(np.where(answered, err <= 1, False)),
            "count_mae": mean(err[answered]),
            "precision@0.5": float(matched[rows].sum()) / p if p else (0.0 if t else None),
            "recall@0.5": float(matched[rows].sum()) / t if t else None,
        }

    out = Scored(n, aggregate, {"count": got}, np.zeros(n, dtype=bool))
    for k in range(n):
        meta = index.meta(k)
        c = meta_count(meta)
        if c is None:
            raise InputError(
                "a count line without meta.count {label, n}", field="meta.count", reason="meta.count"
            )
        want[k] = c[1]
        truth = inp.truth(k)
        ntruth[k] = len(truth.regions)
        turns = answers[k]
        if turns is None:
            continue
        answer, _ = read_turns(turns, codec, truth.size, strict)
        out.lenient.update(answer.lenient)
        if answer.issues:  # a zero answer has no shape and is fine; only what could not be read is an error
            out.format_error[k] = True
            out.issues[k] = answer.issues[0].message
        shapes = [(g.label, s) for g in answer.groundings for s in g.shapes]
        out.decoded[k] = shapes_json(shapes)
        stated = stated_count(" ".join(turns))
        if stated is None and shapes:
            info["count_from_shapes"] += 1
            stated = len(shapes)
        elif stated is None:  # no number, no shape: unanswered (wrong), not "0"
            info["count_unstated"] += 1
            out.format_error[k] = True
            out.issues.setdefault(k, "states no number and grounds nothing")
        if stated is not None:
            got[k] = stated
        npred[k] = len(shapes)
        matched[k] = instance_matches([s for _, s in shapes], truth, grid)
    out.info.update(info)
    return out
