"""Scoring floor shared by ``gtok eval`` and ``gtok_cli.rewards``: a model's answer read leniently under a
codec (:mod:`.answers`), an export line's truth from its ``meta`` (:mod:`.truth`), and the measures that
compare them (:mod:`.measures`). Not a stage: it imports only lower floors (codecs, geometry, refine, errors).

Example:

    >>> from gtok_cli.codecs import get_codec
    >>> from gtok_cli.scoring import box_iou, read_answer, truth_of
    >>> meta = {"record_id": "r", "image_size": [1000, 1000],
    ...         "regions": [{"kind": "box", "bbox": [100, 100, 500, 500], "mask_tokens": None,
    ...                      "label": None, "phrase": "a cat"}]}
    >>> answer = read_answer('[{"bbox_2d": [100, 100, 500, 600]}]', get_codec("qwen3-vl"), (1000, 1000))
    >>> float(box_iou(answer.first("box").coords, truth_of(meta).regions[0].bbox)[0])
    0.8
"""

from gtok_cli.scoring.answers import LENIENCIES, Answer, FirstBoxes, first_boxes, read_answer, strip_fence
from gtok_cli.scoring.measures import (
    anchors_mask,
    box_iou,
    box_iou_matrix,
    cells_mask,
    corner_l1,
    mask_iou,
    mask_overlap,
    point_hits,
    point_in_box,
    point_in_mask,
)
from gtok_cli.scoring.truth import Truth, TruthRegion, attach_record_masks, meta_region, truth_of

__all__ = [
    "LENIENCIES",
    "Answer",
    "FirstBoxes",
    "Truth",
    "TruthRegion",
    "anchors_mask",
    "attach_record_masks",
    "box_iou",
    "box_iou_matrix",
    "cells_mask",
    "corner_l1",
    "first_boxes",
    "mask_iou",
    "mask_overlap",
    "meta_region",
    "point_hits",
    "point_in_box",
    "point_in_mask",
    "read_answer",
    "strip_fence",
    "truth_of",
]
