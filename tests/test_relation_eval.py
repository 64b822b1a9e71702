"""``gtok eval`` of a relation export (docs/spec.md#relations): yes/no, relation and which accuracy worked out
by hand from predictions built to be right or wrong on chosen lines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from _export_helpers import gtok, write_records
from _relation_helpers import ROW, lines_of, scene

from gtok_cli.codecs import get_codec
from gtok_cli.eval import ground_truth_predictions


def _export(tmp_path: Path) -> Path:
    src = write_records(tmp_path / "r.jsonl", [scene(f"row{k}", ROW) for k in range(8)])
    out = tmp_path / "out"
    res = gtok("export", src, "--task", "relation", "--scheme", "qwen2-vl", "--out", out)
    assert res.exit_code == 0, res.output
    return out


def _eval(tmp_path: Path, out: Path, preds: list[dict[str, Any]]) -> dict[str, Any]:
    p = tmp_path / "preds.jsonl"
    p.write_bytes(b"".join(orjson.dumps(x) + b"\n" for x in preds))
    res = gtok("eval", p, "--against", out, "--json")
    assert res.exit_code == 0, res.output
    report: dict[str, Any] = orjson.loads(res.output)
    return report


def test_accuracies_by_form(tmp_path: Path) -> None:
    out = _export(tmp_path)
    lines = lines_of(out)
    codec = get_codec("qwen2-vl")
    by_form: dict[str, list[dict[str, Any]]] = {"yesno": [], "what": [], "which": []}
    for x in lines:
        by_form[x["meta"]["relation"]["form"]].append(x)
    sizes = {k: len(v) for k, v in by_form.items()}
    assert all(n >= 2 for n in sizes.values()) and sizes["yesno"] >= 3, sizes
    preds = []
    # yes/no: the first two answered wrongly, the third missing, the rest right (with extra words)
    yesno = by_form["yesno"]
    for k, x in enumerate(yesno):
        right = x["meta"]["relation"]["answer"]
        if k == 2:
            continue
        said = (not right) if k < 2 else right
        preds.append({"id": x["id"], "text": ("yes, it is" if said else "No, it is not")})
    # what: only the first answered with its own relation; the others "above" (never true in a row)
    what = by_form["what"]
    for k, x in enumerate(what):
        preds.append({"id": x["id"], "text": x["conversations"][1]["value"] if k == 0 else "It is above it."})
    # which: the first answered with the object's own box (IoU 0 with the subject), the rest with the
    # subject's
    which = by_form["which"]
    for k, x in enumerate(which):
        rel, regions = x["meta"]["relation"], x["meta"]["regions"]
        box = regions[rel["object"] if k == 0 else rel["subject"]]["bbox"]
        preds.append({"id": x["id"], "text": codec.encode_box(box, (200, 100))})
    report = _eval(tmp_path, out, preds)
    m = report["metrics"]
    assert m["yes_no_acc"] == (len(yesno) - 3) / len(yesno)
    assert m["relation_acc"] == 1 / len(what)
    assert m["which_acc@0.5"] == (len(which) - 1) / len(which)
    assert m["annotation_acc"] is None
    assert report["counts"]["missing"] == 1


def test_own_answers_score_one(tmp_path: Path) -> None:
    out = _export(tmp_path)
    report = _eval(tmp_path, out, list(ground_truth_predictions(out)))
    assert report["metrics"] == {
        "yes_no_acc": 1.0,
        "relation_acc": 1.0,
        "annotation_acc": None,
        "which_acc@0.5": 1.0,
    }


def test_own_answers_of_a_points_only_scheme_score_one(tmp_path: Path) -> None:
    """molmo writes points (--box-as center): a which answer's point inside the subject is right."""
    src = write_records(tmp_path / "r.jsonl", [scene(f"row{k}", ROW) for k in range(8)])
    out = tmp_path / "out"
    res = gtok("export", src, "--task", "relation", "--scheme", "molmo", "--box-as", "center", "--out", out)
    assert res.exit_code == 0, res.output
    forms = {
        orjson.loads(x)["meta"]["relation"]["form"]
        for x in (out / "gtok-00000.jsonl").read_bytes().splitlines()
    }
    assert "which" in forms
    report = _eval(tmp_path, out, list(ground_truth_predictions(out)))
    assert report["metrics"]["which_acc@0.5"] == 1.0
