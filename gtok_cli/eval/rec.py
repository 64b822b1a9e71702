"""``rec`` scores: boxes (REC: ``acc@0.5``, ``acc@0.75``, ``acc@0.9``, ``miou``) and masks (RES: ``giou``,
``ciou``).

Boxes: the IoU of the answer's first decoded box with the truth box (with several truth regions, the best of
them); a miss (no box, no prediction) is IoU 0. ``acc@t`` is the share of lines with IoU ≥ t (the REC
convention of MDETR / Shikra / Qwen-VL evaluations), ``miou`` the mean IoU. One-box lines with a one-turn
answer are scored together: the codec's batch ``decode_boxes`` (verify's fast decode) and one vectorised IoU.

Masks: the predicted mask is the union of every decoded mask's anchors at image resolution (``cells``: their
grid cells; ``sam``: their SAM candidates), the truth mask the union of the line's regions' real masks
(polygons / RLE, from ``meta`` or ``--records``) or, where a region has none, of its mask-token anchors'
cells (the report says how many of each). ``giou`` is the mean of per-line IoUs, ``ciou`` the total
intersection over the total union (a miss adds the truth's area to the union).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from gtok_cli.eval.scored import Inputs, Rows, Scored, mean, read_turns, shapes_json, zeros
from gtok_cli.scoring import box_iou, cells_mask, first_boxes, mask_overlap

THRESHOLDS = (0.5, 0.75, 0.9)
MaskOf = Callable[[int, list[tuple[int, int]], int, tuple[int, int]], npt.NDArray[np.bool_]]
"""``(line, anchors, grid, size) -> bool (H, W)``: the predicted mask of anchors (cells or SAM)."""


def box_metrics(iou: npt.NDArray[np.float64]) -> dict[str, float | None]:
    out: dict[str, float | None] = {f"acc@{t:g}": mean(iou >= t) for t in THRESHOLDS}
    out["miou"] = mean(iou)
    return out


def score_boxes(inp: Inputs) -> Scored:
    index, answers, codec, strict = inp.index, inp.answers, inp.codec, inp.strict
    n = index.n
    iou = zeros(n)
    pred = np.full((n, 4), np.nan)
    out = Scored(n, lambda rows: box_metrics(iou[rows]), {"iou": iou}, np.zeros(n, dtype=bool))
    out.decoded_boxes = pred
    one = ~np.isnan(index.one_box).any(axis=1)
    firsts = np.empty(n, dtype=object)  # the answer of a one-turn prediction (None: missing or several turns)
    firsts[:] = [a[0] if a is not None and len(a) == 1 else None for a in answers]
    single = firsts != None  # noqa: E711 (element-wise on an object array)
    answered = single | np.asarray([a is not None and len(a) != 1 for a in answers], dtype=bool)
    fast = np.flatnonzero(one & single)
    if len(fast):
        texts: list[str] = firsts[fast].tolist()
        got = first_boxes(texts, codec, index.sizes[fast], strict=strict)
        pred[fast] = got.boxes
        iou[fast] = np.nan_to_num(box_iou(got.boxes, index.one_box[fast]), nan=0.0)
        out.format_error[fast] = got.format_error
        out.lenient.update(got.lenient)
        out.issues.update({int(fast[r]): msg for r, msg in got.issues.items()})
    for k in np.flatnonzero(answered & ~(one & single)).tolist():
        turns = answers[k]
        assert turns is not None
        truth = inp.truth(k)
        answer, _ = read_turns(turns, codec, truth.size, strict)
        out.note(k, answer)
        box = answer.first("box")
        truth_boxes = np.asarray([r.bbox for r in truth.regions if r.bbox is not None], dtype=np.float64)
        if box is None or not len(truth_boxes):
            continue
        pred[k] = box.coords
        iou[k] = float(box_iou(np.tile(box.coords, (len(truth_boxes), 1)), truth_boxes).max())
    return out


def score_masks(inp: Inputs, mask_of: MaskOf | None = None) -> Scored:
    """RES scores; ``mask_of`` makes the predicted mask (None: the anchors' cells)."""
    index, answers, codec, strict = inp.index, inp.answers, inp.codec, inp.strict
    n = index.n
    iou, inter, union = zeros(n), zeros(n), zeros(n)

    def aggregate(rows: Rows) -> dict[str, float | None]:
        total = float(union[rows].sum())
        return {"giou": mean(iou[rows]), "ciou": float(inter[rows].sum()) / total if total else None}

    out = Scored(n, aggregate, {"iou": iou}, np.zeros(n, dtype=bool))
    sources: Counter[str] = Counter()
    for k in range(n):
        truth = inp.truth(k)
        w, h = truth.size
        want = np.zeros((h, w), dtype=bool)
        for r in truth.regions:
            m, source = r.truth_mask(truth.size, truth.record_id)
            sources[source or "none"] += 1
            if m is not None:
                want |= m
        turns = answers[k]
        got = np.zeros((h, w), dtype=bool)
        if turns is not None:
            answer, _ = read_turns(turns, codec, truth.size, strict)
            out.note(k, answer)
            masks = [(g.label, s) for g in answer.groundings for s in g.shapes if s.kind == "mask"]
            out.decoded[k] = shapes_json(masks)
            anchors = [a for _, s in masks for a in (s.anchors or ())]
            grid = int(getattr(codec, "grid", 0))
            if anchors and grid:
                got = (
                    mask_of(k, anchors, grid, truth.size)
                    if mask_of
                    else cells_mask(anchors, grid, truth.size)
                )
        i, u = mask_overlap(got, want)
        inter[k], union[k] = i, u
        iou[k] = i / u if u else 0.0
    out.info["truth_mask"] = dict(sources)
    return out
