"""``detect`` / ``multi`` scores: ``map``, ``ap50``, ``ap75`` from pycocotools' ``COCOeval`` (the field's
reference implementation), and ``precision@0.5`` / ``recall@0.5`` with one-to-one greedy matching by label.

Each export line is one COCO image; its truth regions are the ground truth (category = the region's label),
each decoded box a detection with score ``1 − rank/len(answer)`` (rank 0-based over the answer's boxes, so
the answer's order is its ranking: a model that lists its surest boxes first loses nothing). A box's label is
the label its span carries (schemes that write one: Kosmos-2 phrases, PaliGemma, the Qwen JSON), else the
text just before the span (``label <span>; label <span>``, how gtok writes labelled lists in the other
schemes), else the category its turn asks for (``multi``: one question per category, in the order the truth
lists them). Labels compare case-folded, blanks collapsed. A label no truth region has is a category of its
own (false positives that ``COCOeval`` counts in no category's AP, as in COCO).

Greedy matching: per line, the boxes in answer order each take the unmatched truth box of their label with
the highest IoU, when it is ≥ 0.5. ``precision@0.5`` = matched / predicted boxes, ``recall@0.5`` = matched /
truth boxes, pooled over the lines.
"""

from __future__ import annotations

import contextlib
import io
import re
from collections import Counter
from typing import Any

import numpy as np

from gtok_cli.codecs import Codec
from gtok_cli.eval.scored import Inputs, Rows, Scored, zeros
from gtok_cli.scoring import read_answer
from gtok_cli.scoring.instances import greedy_matches

_BLANKS = re.compile(r"\s+")
_LEAD = re.compile(r"^[\s;,.:]+|[\s;,.:]+$")


def norm_label(label: str | None) -> str:
    return _BLANKS.sub(" ", label or "").strip().casefold()


def _label_before(text: str, start: int, prev_end: int) -> str:
    """The words between the previous span (or the start) and this one: ``dog`` in ``cat <…>; dog <…>``."""
    return _LEAD.sub("", text[prev_end:start])


def turn_labels(regions: list[Any]) -> list[str]:
    """The category each ``multi`` question asks for: the truth labels in first-appearance order."""
    out: list[str] = []
    for r in regions:
        lab = norm_label(r.category or r.label)
        if lab not in out:
            out.append(lab)
    return out


def read_detections(
    turns: list[str], codec: Codec, size: tuple[int, int], strict: bool, asked: list[str]
) -> tuple[list[tuple[str, tuple[float, ...]]], Any]:
    """``(label, box)`` of every decoded box in answer order, and the answers read (one per turn)."""
    boxes: list[tuple[str, tuple[float, ...]]] = []
    answers = []
    for t, text in enumerate(turns):
        a = read_answer(text, codec, size, strict=strict)
        answers.append(a)
        if strict and a.issues:
            continue
        prev_end = 0
        for g, (start, end) in zip(a.groundings, a.spans, strict=False):
            label = norm_label(g.label)
            if not label and not codec.carries_label:
                label = norm_label(_label_before(a.text, start, prev_end))
            if not label and t < len(asked):
                label = asked[t]
            prev_end = end
            boxes += [(label, s.coords) for s in g.shapes if s.kind == "box"]
    return boxes, answers


def coco_xywh(box: tuple[float, ...]) -> list[float]:
    x1, y1, x2, y2 = box
    return [float(x1), float(y1), float(x2 - x1), float(y2 - y1)]


def coco_stats(gt: Any, dets: list[dict[str, Any]], image_ids: list[int]) -> dict[str, float | None]:
    """``map``, ``ap50``, ``ap75`` of ``COCOeval`` over ``image_ids`` (None where it has nothing to say)."""
    from pycocotools.cocoeval import COCOeval

    if not any(gt.getAnnIds(imgIds=image_ids)):
        return {"map": None, "ap50": None, "ap75": None}
    chosen = set(image_ids)
    mine = [d for d in dets if d["image_id"] in chosen]
    if not mine:
        return {"map": 0.0, "ap50": 0.0, "ap75": 0.0}
    with contextlib.redirect_stdout(io.StringIO()):
        dt = gt.loadRes(mine)
        ev = COCOeval(gt, dt, "bbox")
        ev.params.imgIds = sorted(chosen)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    stats = [float(v) for v in ev.stats[:3]]
    return {k: (v if v >= 0 else None) for k, v in zip(("map", "ap50", "ap75"), stats, strict=True)}


def score_detection(inp: Inputs) -> Scored:
    index, answers, codec, strict = inp.index, inp.answers, inp.codec, inp.strict
    from pycocotools.coco import COCO

    n = index.n
    tp, npred, ntruth = zeros(n), zeros(n), zeros(n)
    categories: dict[str, int] = {}
    gt_anns: list[dict[str, Any]] = []
    dets: list[dict[str, Any]] = []
    decoded: dict[int, list[dict[str, Any]]] = {}
    fe = np.zeros(n, dtype=bool)
    issues: dict[int, str] = {}
    lenient: Counter[str] = Counter()

    def cat(label: str) -> int:
        return categories.setdefault(label, len(categories) + 1)

    for k in range(n):
        truth = inp.truth(k)
        want = [(norm_label(r.category or r.label), r.bbox) for r in truth.regions if r.bbox is not None]
        for label, box in want:
            x, y, w, h = coco_xywh(box)
            gt_anns.append(
                {
                    "id": len(gt_anns) + 1,
                    "image_id": k,
                    "category_id": cat(label),
                    "bbox": [x, y, w, h],
                    "area": w * h,
                    "iscrowd": 0,
                }
            )
        ntruth[k] = len(want)
        turns = answers[k]
        if turns is None:
            continue
        got, read = read_detections(turns, codec, truth.size, strict, turn_labels(truth.regions))
        for a in read:
            lenient.update(a.lenient)
        problems = [i.message for a in read for i in a.issues]
        if problems or not got:
            fe[k] = True
            issues[k] = problems[0] if problems else "no box"
        decoded[k] = [{"kind": "box", "coords": list(b), "label": lab} for lab, b in got]
        for rank, (label, pbox) in enumerate(got):
            dets.append(
                {
                    "image_id": k,
                    "category_id": cat(label),
                    "bbox": coco_xywh(pbox),
                    "score": 1.0 - rank / len(got),
                }
            )
        npred[k] = len(got)
        tp[k] = greedy_matches(got, want)

    gt = COCO()
    gt.dataset = {
        "images": [{"id": k} for k in range(n)],
        "annotations": gt_anns,
        "categories": [{"id": c, "name": name} for name, c in categories.items()],
    }
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()

    def aggregate(rows: Rows) -> dict[str, float | None]:
        out = coco_stats(gt, dets, [int(r) for r in rows])
        p, t = float(npred[rows].sum()), float(ntruth[rows].sum())
        out["precision@0.5"] = float(tp[rows].sum()) / p if p else (0.0 if t else None)
        out["recall@0.5"] = float(tp[rows].sum()) / t if t else None
        return out

    recall = np.divide(tp, ntruth, out=np.full(n, np.nan), where=ntruth > 0)
    scored = Scored(n, aggregate, {"recall@0.5": recall}, fe, issues, lenient, decoded)
    return scored
