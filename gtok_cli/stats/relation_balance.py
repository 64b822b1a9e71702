"""``gtok stats`` of a relation export: the predicate balance (docs/spec.md#relations).

Each line's ``meta.relation`` is counted under its predicate by what the line asks: ``yes`` / ``no`` (the
yes/no form, by answer), ``what`` and ``which``; human-labelled (Visual Genome) relations by their own
predicate, apart.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from gtok_cli.geometry.relations import PREDICATES

COLUMNS = ("yes", "no", "what", "which")


def relation_key(relation: Any) -> tuple[str, str] | None:
    """``(source, predicate/column)`` of one ``meta.relation``; None when it is not one."""
    if not isinstance(relation, dict):
        return None
    predicate = str(relation.get("predicate"))
    if relation.get("source") == "annotation":
        return ("annotation", predicate)
    form = relation.get("form")
    column = ("yes" if relation.get("answer") else "no") if form == "yesno" else str(form)
    return ("geometry", f"{predicate}\x1f{column}")


def balance(counts: Counter[tuple[str, str]]) -> dict[str, Any] | None:
    """``{"geometry": {predicate: {yes, no, what, which, total}}, "annotation": {predicate: n},
    "lines": {"geometry", "annotation"}}``"""
    if not counts:
        return None
    geo: dict[str, dict[str, int]] = {}
    for (source, key), n in counts.items():
        if source != "geometry":
            continue
        predicate, column = key.split("\x1f", 1)
        row = geo.setdefault(predicate, dict.fromkeys(COLUMNS, 0))
        row[column] = row.get(column, 0) + n
    order = {p: k for k, p in enumerate(PREDICATES)}
    geometry = {
        p: {**geo[p], "total": sum(geo[p].values())} for p in sorted(geo, key=lambda p: order.get(p, 99))
    }
    ann = Counter({k: n for (s, k), n in counts.items() if s == "annotation"})
    return {
        "geometry": geometry,
        "annotation": dict(sorted(ann.items(), key=lambda kv: (-kv[1], kv[0]))),
        "lines": {"geometry": sum(r["total"] for r in geometry.values()), "annotation": sum(ann.values())},
    }


def human(b: dict[str, Any]) -> list[str]:
    lines = b["lines"]
    out = [f"  relations    geometry {lines['geometry']} lines, annotation {lines['annotation']} lines"]
    out.append(f"    {'predicate':<14}" + "".join(f"{c:>7}" for c in (*COLUMNS, "total")))
    for p, row in b["geometry"].items():
        out.append(f"    {p:<14}" + "".join(f"{row[c]:>7}" for c in (*COLUMNS, "total")))
    if b["annotation"]:
        items = list(b["annotation"].items())
        text = ", ".join(f"{k}={v}" for k, v in items[:12])
        out.append(f"    annotated: {text}" + (f", … ({len(items) - 12} more)" if len(items) > 12 else ""))
    return out
