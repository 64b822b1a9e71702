"""Rewards of the two tasks VLMs still fail: counting (``--task count``) and spatial relations
(``--task relation``), read with the readers ``gtok eval`` scores them with (docs/rewards.md#questions).

Both are ``(answer, meta, **params) -> float`` like every reward; a line without ``meta.count`` /
``meta.relation`` raises :class:`~gtok_cli.rewards.context.NotApplicable` (the trainer adapters give None:
no reward from this function for that row).
"""

from __future__ import annotations

from typing import Any

from gtok_cli.counting import meta_count, stated_count
from gtok_cli.geometry.relation_answers import stated_relation_right
from gtok_cli.rewards.context import SchemeSpec, not_applicable
from gtok_cli.rewards.reading import read_line
from gtok_cli.scoring.instances import grounding_score, instance_matches


def count_reward(
    answer: str, meta: Any, *, scheme: SchemeSpec = None, strict: bool = False, **codec_params: Any
) -> float:
    """(count term + grounding term) / 2; range 0–1.

    - count term ``1 − min(1, |ĉ − n| / max(n, 1))``: ``n`` = ``meta.count.n``, ``ĉ`` the number the answer
      states (:func:`gtok_cli.counting.stated_count`), else its number of shapes; an answer with neither
      (no number, no shape) scores 0 here, even on a zero-count line: saying nothing is not saying "0";
    - grounding term: for ``n > 0`` the F1 of the answer's shapes against the counted regions, matched one to
      one as ``gtok eval`` matches them (:func:`gtok_cli.scoring.instances.instance_matches`: boxes at
      IoU ≥ 0.5, points inside, masks as their cells' box): ``2·m / (shapes + n)``; for ``n = 0``, 1 when the
      answer grounds nothing, else 0.

    Example (truth 2 dogs, the answer "2: " with one of them boxed right): count term 1, F1 = 2·1 / (1 + 2)
    = 0.667, reward 0.833.
    """
    reading = read_line("count_reward", answer, meta, scheme, strict, codec_params)
    counted = meta_count(reading.meta)
    if counted is None:
        raise not_applicable("count_reward", reading.meta, "the line has no meta.count (not a count line)")
    n = counted[1]
    shapes = reading.shapes()
    stated = stated_count(answer if isinstance(answer, str) else "")
    if stated is None and shapes:
        stated = len(shapes)
    count_term = 0.0 if stated is None else 1.0 - min(1.0, abs(stated - n) / max(n, 1))
    if n == 0:
        grounding = 0.0 if shapes else 1.0
    else:
        grid = reading.codec.params().get("grid") if "mask" in reading.codec.kinds else None
        matched = instance_matches(shapes, reading.truth, grid)
        grounding = 2.0 * matched / (len(shapes) + n)
    return (count_term + grounding) / 2.0


def relation_reward(
    answer: str, meta: Any, *, scheme: SchemeSpec = None, strict: bool = False, **codec_params: Any
) -> float:
    """The relation line's own measure, as ``gtok eval`` reads it; range 0–1.

    - ``yesno``: 1 when the answer's first whole ``yes`` / ``no`` is the line's answer, else 0;
    - ``what`` (geometry): 1 when the predicate the answer names is right for the pair (the line's, or one
      that decidedly holds under its rule; names taken out, negations passed over:
      :func:`gtok_cli.geometry.relation_answers.read_relation`), else 0;
    - ``what`` (annotation, Visual Genome): 1 when the answer holds the labelled predicate's words, whole;
    - ``which``: the IoU of the answer's first box with the subject's box (a point: 1 inside it, else 0; 0
      without either): graded where ``gtok eval``'s ``which_acc@0.5`` thresholds it at 0.5.
    """
    reading = read_line("relation_reward", answer, meta, scheme, strict, codec_params)
    rel = reading.meta.get("relation")
    if not isinstance(rel, dict):
        raise not_applicable("relation_reward", reading.meta, "the line has no meta.relation")
    text = answer if isinstance(answer, str) else ""
    if rel.get("source") == "annotation" or rel.get("form") in ("yesno", "what"):
        return float(bool(stated_relation_right(rel, reading.meta["regions"], reading.truth.size, text)))
    return grounding_score(reading.shapes(), reading.truth, int(rel["subject"]))
