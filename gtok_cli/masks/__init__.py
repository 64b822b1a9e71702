"""GETok mask tokeniser: mask → fewest grid anchors whose candidate masks' union reaches IoU >= tau.

Library API (torch is imported only by the ``sam`` backend and the GPU greedy; ray only by
``gtok_cli.masks.engine_ray``)::

    from gtok_cli.masks import MaskSolverConfig, MaskTokenizer, cell_candidates, greedy_numpy, anchors_to_mask
    from gtok_cli.masks import run_masks, ImageBatchSolver        # the writer, and the worker engines call
"""

from gtok_cli.geometry.candidates import (
    Candidates,
    anchors_to_mask,
    cell_edges,
    cell_of_pixel,
    grid_points_px,
)
from gtok_cli.geometry.cells import cell_candidates
from gtok_cli.geometry.rasterize import region_mask_rle, region_mask_to_bool
from gtok_cli.masks.greedy import VARIANTS, GreedyResult, greedy_numpy
from gtok_cli.masks.run import run_masks
from gtok_cli.masks.solver import MaskSolverConfig, MaskTokenizer, solve_objects
from gtok_cli.masks.work import BatchResult, ImageBatchSolver, ImageJob, local_engine

__all__ = [
    "VARIANTS",
    "BatchResult",
    "Candidates",
    "GreedyResult",
    "ImageBatchSolver",
    "ImageJob",
    "MaskSolverConfig",
    "MaskTokenizer",
    "anchors_to_mask",
    "cell_candidates",
    "cell_edges",
    "cell_of_pixel",
    "greedy_numpy",
    "grid_points_px",
    "local_engine",
    "region_mask_rle",
    "region_mask_to_bool",
    "run_masks",
    "solve_objects",
]
