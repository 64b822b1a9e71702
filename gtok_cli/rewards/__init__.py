"""GETok's reward functions for RL on spatial tokens, as plain, documented Python (docs/rewards.md).

Every reward is ``f(answer: str, meta: dict, **params) -> float``: ``answer`` is a model's raw text,
``meta`` an export line's ``meta`` (the truth; a dict or its JSON text). The scheme comes from ``scheme=``
(a name, a manifest's ``{"scheme", "params"}`` or a codec), else ``meta["scheme"]``, else ``grid`` (32×32);
codec parameters (``grid=``, ``offset_step=``, ``bins=``, …) go beside it. Answers are read leniently as
``gtok eval`` reads them (``strict=True`` to read them as ``verify`` does); ``format_reward`` is always
strict.

Grid stage (:mod:`.grid_stage`):

- ``format_reward``: 1 if the answer decodes with no issue into shapes of the expected kinds, else 0;
- ``non_repetition_reward``: unique anchors / anchors (1 when nothing repeats; 0 for no anchor);
- ``box_reward``: IoU + (1 − min(1, L1)), L1 the mean of the four corner coordinates' absolute errors
  normalised by the image width / height; 0–2;
- ``mask_iou_reward``: mask IoU of the anchors' cells (or SAM candidates) with the truth mask; 0–1;
- ``point_reward``: hit_rate · (1 − e^(−m/5)) − 0.02·m for m predicted points.

Offset stage (:mod:`.offset_stage`, ``previous=`` the turns before the completion):

- ``point_refine_reward``: mean over anchors of s ∈ {−1, 0, +1} (−1 left the truth, +1 entered or stayed in);
- ``box_refine_reward``: IoU after − IoU before; ``mask_refine_reward``: mask IoU after − before.

Questions (:mod:`.question_stage`):

- ``count_reward``: (closeness of the stated count + F1 of the grounded instances at IoU 0.5) / 2; 0–1;
- ``relation_reward``: the yes/no answer, the named predicate, or the IoU of a ``which`` answer's box.

A reward that does not apply to a line (a box reward on a line with no box region) raises
:class:`~gtok_cli.rewards.context.NotApplicable`. Trainer shapes: :mod:`gtok_cli.rewards.trl` (TRL
``GRPOTrainer``), :mod:`gtok_cli.rewards.verl` (``compute_score``), ``gtok_cli/rewards/swift_plugin.py``
(ms-swift ``--external_plugins``); ``gtok reward`` scores a file of sampled answers offline.

Example:

    >>> from gtok_cli.rewards import box_reward, format_reward
    >>> meta = {"record_id": "r", "image_size": [640, 480],
    ...         "regions": [{"kind": "box", "bbox": [150, 100, 400, 350]}]}
    >>> answer = "<box><grid_7_6><grid_19_23></box>"
    >>> format_reward(answer, meta), round(box_reward(answer, meta), 3)
    (1.0, 1.929)
"""

from gtok_cli.rewards.context import NotApplicable
from gtok_cli.rewards.grid_stage import (
    box_reward,
    format_reward,
    mask_iou_reward,
    non_repetition_reward,
    point_reward,
)
from gtok_cli.rewards.offset_stage import box_refine_reward, mask_refine_reward, point_refine_reward
from gtok_cli.rewards.question_stage import count_reward, relation_reward
from gtok_cli.rewards.registry import REWARD_NAMES, REWARDS, call_reward, get_reward

__all__ = [
    "REWARDS",
    "REWARD_NAMES",
    "NotApplicable",
    "box_refine_reward",
    "box_reward",
    "call_reward",
    "count_reward",
    "format_reward",
    "get_reward",
    "mask_iou_reward",
    "mask_refine_reward",
    "non_repetition_reward",
    "point_refine_reward",
    "point_reward",
    "relation_reward",
]
