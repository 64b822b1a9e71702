"""An export that writes nothing: the one-line error naming why every record was skipped, and the likely fix.

``gtok export`` exits 2 when no line is written (docs/spec.md, export: "Nothing written is an error"),
unless ``--allow-empty``. :data:`HINTS` maps the common skip reasons (``tasks.Skip``) to what the user
most likely meant.
"""

from __future__ import annotations

from collections.abc import Mapping

from gtok_cli.errors import UsageError

TASK_FOR_KIND: dict[str, str] = {
    "referring": "rec",
    "instances": "detect",
    "grounded_caption": "grounded-caption",
    "category": "multi",
}
"""The task that serves each kind of record (``record["task"]``)."""
TAKES: dict[str, str] = {
    "rec": "referring",
    "reg": "referring",
    "refine": "referring",
    "grounded-caption": "grounded_caption",
    "multi": "category or instances",
    "point": "referring or instances",
    "detect": "instances",
    "count": "instances",
    "relation": "instances or grounded_caption",
}
"""The kinds of record each export task takes (see the builders in :mod:`.tasks`)."""
HINTS: dict[str, str] = {
    "region.no_mask_tokens": "--shape mask needs mask_tokens: run `gtok masks` first, or use --shape auto",
    "mask_tokens.grid_mismatch": "the records' mask_tokens are on another grid: export with their --grid, "
    "or re-run `gtok masks` with this one",
    "mask_tokens.empty": "the records' mask_tokens hold no anchors: re-run `gtok masks`",
    "region.no_polyline": "--shape polyline needs regions with a polyline: use --shape box",
    "region.no_polygon": "--shape polygon needs regions with a COCO polygon mask (not RLE): use --shape box",
    "region.no_mask": "refining masks needs regions with a segmentation mask: use --shape box",
    "record.incomplete": "ingest left out bad annotations of these images and detection needs every "
    "object: fix the annotations, or use --task multi or --task point",
    "record.not_exhaustive": "the source did not box every instance (Visual Genome objects, LVIS "
    "not_exhaustive_category_ids): use --task rec, grounded-caption or multi on exhaustive categories",
    "count.crowd": "every category asked about has a crowd region in its image (not countable): "
    "use images without crowd annotations",
    "count.over_max": "every category has more instances than --max-count: raise --max-count",
    "record.no_text": "the records have no text",
    "record.no_regions": "the records have no regions",
    "record.no_label": "the regions have no label",
    "record.no_pairs": "--task relation needs two or more named regions per image",
    "pair.ambiguous": "every pair's relation lies within the margins of docs/spec.md#relations",
    "pair.unbalanced": "no pair of the image answers no where another answers yes (balance per predicate)",
}


def hint(reason: str, task: str) -> str:
    """The likely fix for ``reason`` (a skip reason) under ``--task task``."""
    if reason.startswith("record_task."):
        kind = reason.removeprefix("record_task.")
        if task == "refine" and kind == "instances":
            return "`--task refine` takes referring records; for instances use `--task detect --refine`"
        other = TASK_FOR_KIND.get(kind)
        use = f"; for {kind} records use `--task {other}`" if other else ""
        return f"`--task {task}` takes {TAKES.get(task, 'other')} records{use}"
    return HINTS.get(reason, "see the skip reasons")


def nothing_written(read: int, skipped: Mapping[str, int], task: str) -> UsageError:
    """The error of an export that wrote no line: what was read, every skip reason with its count (most
    frequent first), the fix for the most frequent one."""
    counts = sorted(((k, v) for k, v in skipped.items() if v), key=lambda kv: (-kv[1], kv[0]))
    if not read or not counts:
        why = "the record file(s) hold no records"
    else:
        reasons = ", ".join(f"{k}={v}" for k, v in counts)
        why = f"all {read} record(s) read were skipped ({reasons}): {hint(counts[0][0], task)}"
    return UsageError(f"nothing written: {why}; pass --allow-empty if an empty export is meant")
