"""Backend ``cells``: the candidate of grid point (i, j) is its own cell (see ``candidates.cell_edges``).

Needs no weights and no image pixels; an exact reference for tests and an offline pipeline.
"""

from __future__ import annotations

import numpy as np

from gtok_cli.geometry.bits import pack_rows
from gtok_cli.geometry.candidates import Candidates, CandidateStats, cell_edges


def cell_candidates(grid: int, width: int, height: int) -> Candidates:
    xe = cell_edges(width, grid)
    ye = cell_edges(height, grid)
    row_patterns = np.zeros((grid, width), dtype=bool)
    for i in range(grid):
        row_patterns[i, xe[i] : xe[i + 1]] = True
    packed_rows = pack_rows(row_patterns)  # (n, ceil(W/8)): the packed row of each cell column
    packed = np.zeros((grid * grid, height, packed_rows.shape[1]), dtype=np.uint8)
    for j in range(grid):
        y0, y1 = int(ye[j]), int(ye[j + 1])
        if y1 > y0:
            packed[j * grid : (j + 1) * grid, y0:y1, :] = packed_rows[:, None, :]
    # areas and bboxes are known without scanning the masks
    wb = packed_rows.shape[1]
    cols = np.tile(np.arange(grid), grid)
    rows = np.repeat(np.arange(grid), grid)
    cw = (xe[1:] - xe[:-1])[cols]
    ch = (ye[1:] - ye[:-1])[rows]
    empty = (cw == 0) | (ch == 0)
    stats = CandidateStats(
        areas=(cw * ch).astype(np.int64),
        y0=np.where(empty, height, ye[:-1][rows]),
        y1=np.where(empty, 0, ye[1:][rows]),
        b0=np.where(empty, wb, xe[:-1][cols] // 8),
        b1=np.where(empty, 0, -(-xe[1:][cols] // 8)),
    )
    return Candidates(grid, width, height, packed=packed, stats=stats, source="cells")
