"""``grounded-caption`` scores: ``recall@1`` and ``phrase_precision``.

The truth phrases of a line are its regions grouped by phrase (consecutive regions with one phrase are one
phrase with several boxes, as export writes them). A predicted grounding names a phrase by the label its span
carries (Kosmos-2 ``<phrase>``), else by the caption text just before its span (gtok's other schemes write
the phrase, then its span). Each truth phrase, in order, takes the first unused predicted grounding that
names it (case-folded, blanks collapsed; the text before a span must end with the phrase).

- ``recall@1``: a truth phrase counts when its grounding's first box has IoU ≥ 0.5 with one of the phrase's
  truth boxes (the Flickr30k Entities "any box" protocol: Plummer et al., and MDETR's
  ``flickr_eval.py``), over all truth phrases.
- ``phrase_precision``: predicted groundings that count so, over all predicted groundings with a box.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from gtok_cli.eval.detection import norm_label
from gtok_cli.eval.scored import Inputs, Rows, Scored, zeros
from gtok_cli.scoring import box_iou, read_answer
from gtok_cli.scoring.instances import MATCH_IOU


def truth_phrases(regions: list[object]) -> list[tuple[str, list[tuple[float, ...]]]]:
    out: list[tuple[str, list[tuple[float, ...]]]] = []
    for r in regions:
        phrase = norm_label(getattr(r, "phrase", None) or getattr(r, "label", None))
        box = getattr(r, "bbox", None)
        if box is None:
            continue
        if out and out[-1][0] == phrase:
            out[-1][1].append(box)
        else:
            out.append((phrase, [box]))
    return out


def score_captions(inp: Inputs) -> Scored:
    index, answers, codec, strict = inp.index, inp.answers, inp.codec, inp.strict
    n = index.n
    hits, phrases, correct, predicted = zeros(n), zeros(n), zeros(n), zeros(n)
    fe = np.zeros(n, dtype=bool)
    issues: dict[int, str] = {}
    lenient: Counter[str] = Counter()
    decoded: dict[int, list[dict[str, object]]] = {}
    for k in range(n):
        truth = inp.truth(k)
        want = truth_phrases(list(truth.regions))
        phrases[k] = len(want)
        turns = answers[k]
        if turns is None:
            continue
        # (name, text before the span, first box) of every predicted grounding with a box
        got: list[tuple[str, str, tuple[float, ...]]] = []
        for text in turns:
            a = read_answer(text, codec, truth.size, strict=strict)
            lenient.update(a.lenient)
            if a.issues or not a.groundings:
                fe[k] = True
                issues.setdefault(k, a.issues[0].message if a.issues else "no shape")
            if strict and a.issues:
                continue
            prev = 0
            for g, (start, end) in zip(a.groundings, a.spans, strict=False):
                boxes = [s.coords for s in g.shapes if s.kind == "box"]
                if boxes:
                    got.append((norm_label(g.label), norm_label(a.text[prev:start]), boxes[0]))
                prev = end
        decoded[k] = [{"kind": "box", "coords": list(b), "label": name or before} for name, before, b in got]
        predicted[k] = len(got)
        used = [False] * len(got)
        for phrase, boxes in want:
            for j, (name, before, box) in enumerate(got):
                if used[j] or not (name == phrase or (not name and before.endswith(phrase) and phrase)):
                    continue
                used[j] = True
                iou = box_iou(np.tile(box, (len(boxes), 1)), np.asarray(boxes, dtype=np.float64))
                if float(iou.max()) >= MATCH_IOU:
                    hits[k] += 1
                    correct[k] += 1
                break

    def aggregate(rows: Rows) -> dict[str, float | None]:
        p, q = float(phrases[rows].sum()), float(predicted[rows].sum())
        return {
            "recall@1": float(hits[rows].sum()) / p if p else None,
            "phrase_precision": float(correct[rows].sum()) / q if q else (0.0 if p else None),
        }

    recall = np.divide(hits, phrases, out=np.full(n, np.nan), where=phrases > 0)
    return Scored(n, aggregate, {"recall@1": recall}, fe, issues, lenient, decoded)
