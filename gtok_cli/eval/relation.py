"""``relation`` scores (docs/spec.md#relations): each form of the relation task by its own measure.

- ``yes_no_acc``: over ``yesno`` lines, the share whose answer's first whole word ``yes`` / ``no``
  (:func:`~gtok_cli.geometry.relation_answers.read_yes_no`) is the line's answer (none: wrong);
- ``relation_acc``: over geometric ``what`` lines, the share whose answer names a predicate that is right for
  the pair: the line's, or any other that decidedly holds under the line's rule
  (:func:`~gtok_cli.geometry.relation_answers.read_relation`: the regions' names taken out, negations passed
  over, synonyms read, names in swapped order read as the converse);
- ``annotation_acc``: over annotated (Visual Genome) ``what`` lines, the share whose answer holds the labelled
  predicate's words, whole;
- ``which_acc@0.5``: over ``which`` lines, the share whose first decoded box has IoU ≥ 0.5 with the subject
  (a point, ``--box-as center``: inside it; :func:`gtok_cli.scoring.instances.grounding_score`).

A missing answer is wrong. Per line ``correct`` is 1 / 0 (``--per-sample``).
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from gtok_cli.eval.scored import Inputs, Rows, Scored, read_turns, shapes_json
from gtok_cli.geometry.relation_answers import stated_relation_right
from gtok_cli.scoring.instances import MATCH_IOU, grounding_score

KINDS = ("yes_no_acc", "relation_acc", "annotation_acc", "which_acc@0.5")


def _kind(relation: dict[str, object]) -> str:
    if relation.get("source") == "annotation":
        return "annotation_acc"
    return {"yesno": "yes_no_acc", "what": "relation_acc", "which": "which_acc@0.5"}[str(relation["form"])]


def score_relation(inp: Inputs) -> Scored:
    index, answers, codec, strict = inp.index, inp.answers, inp.codec, inp.strict
    n = index.n
    correct = np.zeros(n, dtype=np.float64)
    kind = np.zeros(n, dtype=np.int64)

    def aggregate(rows: Rows) -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        for k, name in enumerate(KINDS):
            sel = rows[kind[rows] == k]
            out[name] = float(correct[sel].mean()) if len(sel) else None
        return out

    out = Scored(n, aggregate, {"correct": correct}, np.zeros(n, dtype=bool))
    forms: Counter[str] = Counter()
    for k in range(n):
        meta = index.meta(k)
        rel = meta["relation"]
        name = _kind(rel)
        kind[k] = KINDS.index(name)
        forms[name] += 1
        turns = answers[k]
        if turns is None:
            continue
        size = (int(meta["image_size"][0]), int(meta["image_size"][1]))
        if name != "which_acc@0.5":
            right = stated_relation_right(rel, meta["regions"], size, " ".join(turns))
            out.format_error[k] = right is None and name != "annotation_acc"
            correct[k] = float(bool(right))
        else:
            answer, _ = read_turns(turns, codec, size, strict)
            out.note(k, answer)
            found = [(g.label, s) for g in answer.groundings for s in g.shapes if s.kind in ("box", "point")]
            out.decoded[k] = shapes_json(found)
            score = grounding_score([s for _, s in found], inp.truth(k), int(rel["subject"]))
            correct[k] = float(score >= MATCH_IOU)
        if out.format_error[k] and k not in out.issues:
            out.issues[k] = "no yes/no" if name == "yes_no_acc" else "no predicate named"
    out.info["lines"] = dict(forms)
    return out
