"""GETok propose-and-refine supervision: simulated proposals, offset / DELETE targets, mask anchor classes.

Library used by ``gtok export --task refine`` and ``gtok verify``. Lattice positions are integer indices on
the offset lattice (:mod:`gtok_cli.refine.lattice`); offsets are ``(du, dv)`` or ``None`` for ``<DELETE>``.
"""

from gtok_cli.refine.classify import (
    AnchorClass,
    Classification,
    ClassRatios,
    MaskClassConfig,
    anchor_classes,
    classify_anchors,
)
from gtok_cli.refine.lattice import MOVES, Offset, OffsetLattice
from gtok_cli.refine.proposals import (
    ProposalConfig,
    StepDistribution,
    propose_mask,
    propose_shape,
    rng_for,
    truth_anchors,
)
from gtok_cli.refine.targets import TargetConfig, anchor_targets, box_targets, shape_targets
from gtok_cli.refine.turns import (
    RefineTurn,
    ShapeRefinement,
    TurnMismatch,
    apply_turn,
    cell_union_mask,
    check_turn,
    corner_errors,
    expected_offsets,
    make_refinement,
    refine_chain,
    refined_shape,
    within_bound,
)

__all__ = [
    "MOVES",
    "AnchorClass",
    "ClassRatios",
    "Classification",
    "MaskClassConfig",
    "Offset",
    "OffsetLattice",
    "ProposalConfig",
    "RefineTurn",
    "ShapeRefinement",
    "StepDistribution",
    "TargetConfig",
    "TurnMismatch",
    "anchor_classes",
    "anchor_targets",
    "apply_turn",
    "box_targets",
    "cell_union_mask",
    "check_turn",
    "classify_anchors",
    "corner_errors",
    "expected_offsets",
    "make_refinement",
    "propose_mask",
    "propose_shape",
    "refine_chain",
    "refined_shape",
    "rng_for",
    "shape_targets",
    "truth_anchors",
    "within_bound",
]
