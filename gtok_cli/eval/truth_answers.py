"""An export's own answers as predictions: what a perfect model of the scheme says. Scoring them measures the
ceiling that the scheme's quantisation itself sets (``gtok eval`` of a grid-32 export's own answers: the
best ``acc@0.9`` any model trained on it can reach)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gtok_cli.scoring.export_index import open_export


def ground_truth_predictions(export: str | Path) -> Iterator[dict[str, Any]]:
    """``{"line": k, "turns": [...]}`` for every line: its assistant turns as written."""
    index = open_export(export, keep_answers=True)
    for k, turns in enumerate(index.answers):
        yield {"line": k, "turns": turns}
