"""`gtok eval`: score a model's answers against an export (docs/spec.md#eval).

Predictions (JSONL ``{"id" | "line", "text" | "turns"}``) are matched to the export's lines, read under the
export's scheme (leniently by default: :mod:`gtok_cli.scoring.answers`), compared with each line's truth
(``meta``, or ``--records``) and summarised with the task's metrics:

=================  ==========================================================
task               metrics (keys of ``"metrics"``)
=================  ==========================================================
rec (boxes)        ``acc@0.5``, ``acc@0.75``, ``acc@0.9``, ``miou``
rec (masks)        ``giou``, ``ciou``
point              ``hit_rate``
detect, multi      ``map``, ``ap50``, ``ap75``, ``precision@0.5``, ``recall@0.5``
grounded-caption   ``recall@1``, ``phrase_precision``
refine             ``miou_turn0`` … ``miou_turnK``, ``gain``
=================  ==========================================================

Example:

    >>> from gtok_cli.eval import evaluate                             # doctest: +SKIP
    >>> report = evaluate("preds.jsonl", "shards/rec-bins")            # doctest: +SKIP
    >>> report.metrics["acc@0.5"], report.counts["missing"]            # doctest: +SKIP
"""

from gtok_cli.eval.report import EvalReport, parse_floors
from gtok_cli.eval.run import EvalOptions, evaluate, score
from gtok_cli.eval.truth_answers import ground_truth_predictions
from gtok_cli.scoring.export_index import ExportIndex, open_export
from gtok_cli.scoring.predictions import Prediction, read_predictions

__all__ = [
    "EvalOptions",
    "EvalReport",
    "ExportIndex",
    "Prediction",
    "evaluate",
    "ground_truth_predictions",
    "open_export",
    "parse_floors",
    "read_predictions",
    "score",
]
