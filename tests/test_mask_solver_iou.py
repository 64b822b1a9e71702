"""`verify` and `stats` report the mask solver's IoU (``mask_tokens.iou``) of mask regions, and
``--min-mask-iou`` flags masks below a floor (issue 12, row 16): mask tokens round-trip with error 0 by
construction, so the solver IoU is what says how well they draw the object.

Data: sample_data/refcoco → `gtok masks --backend cells` → `gtok export --scheme grid --task rec --shape
mask`.
Every expected number is computed here from the masks records file, not from gtok's report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from _export_helpers import gtok

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data" / "refcoco"


@pytest.fixture(scope="module")
def masked(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The masks records file, its export, and per record (id, solver IoU) in record (= line) order."""
    d = tmp_path_factory.mktemp("maskiou")
    ref, masks, out = d / "ref.jsonl", d / "masks.jsonl", d / "mask-export"
    ingest = ["ingest", "refcoco", "--dataset", "refcoco", "--refs", SAMPLE / "refs(unc).p"]
    assert gtok(*ingest, "--instances", SAMPLE / "instances.json", "--out", ref).exit_code == 0
    res = gtok("masks", ref, "--backend", "cells", "--out", masks)
    assert res.exit_code == 0, res.output
    res = gtok("export", masks, "--scheme", "grid", "--task", "rec", "--shape", "mask", "--out", out)
    assert res.exit_code == 0, res.output
    records = [orjson.loads(x) for x in masks.read_bytes().splitlines()]
    ious = []
    for r in records:
        assert len(r["regions"]) == 1  # one region per RefCOCO record: line k is record k
        ious.append((r["id"], r["regions"][0]["mask_tokens"]["iou"]))
    manifest = orjson.loads((out / "manifest.json").read_bytes())
    assert manifest["counts"]["written"] == len(records) and len(manifest["shards"]) == 1
    assert len({iou for _, iou in ious}) >= 3  # distinct values, so a floor between them means something
    return {"dir": d, "masks": masks, "out": out, "ious": ious}


def _json(*args: Any) -> Any:
    res = gtok(*args, "--json")
    return res.exit_code, orjson.loads(res.stdout)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def test_verify_reports_the_solver_iou_of_the_records(masked: dict[str, Any]) -> None:
    values = [iou for _, iou in masked["ious"]]
    code, report = _json("verify", masked["out"])
    assert code == 0 and report["ok"]
    m = report["mask_solver_iou"]
    assert m["count"] == len(values) and m["not_recorded"] == 0
    assert m["mean"] == pytest.approx(_mean(values), abs=1e-12)
    assert m["percentiles"]["0"] == min(values) and m["percentiles"]["100"] == max(values)
    assert m["min_mask_iou"] is None and m["below"] is None  # default: report only
    human = gtok("verify", masked["out"])
    assert human.exit_code == 0
    assert f"mask solver IoU  n={len(values)}  mean={_mean(values):.4f}" in human.stdout


def _floors(ious: list[float]) -> list[tuple[str, float]]:
    s = sorted(set(ious))
    return [
        ("zero", 0.0),
        ("the minimum: nothing strictly below", s[0]),
        ("between the two smallest", (s[0] + s[1]) / 2),
        ("between the middle values", (s[len(s) // 2 - 1] + s[len(s) // 2]) / 2),
        ("the maximum: all but the maxima", s[-1]),
        ("one", 1.0),
    ]


@pytest.mark.parametrize("row", range(6))
def test_min_mask_iou_fails_exactly_the_regions_below(masked: dict[str, Any], row: int) -> None:
    name, floor = _floors([iou for _, iou in masked["ious"]])[row]
    want = {(k + 1, rid, iou) for k, (rid, iou) in enumerate(masked["ious"]) if iou < floor}
    code, report = _json("verify", masked["out"], "--min-mask-iou", repr(floor))
    assert code == (1 if want else 0), name
    got = {(f["line"], f["id"], f["message"]) for f in report["failures"]}
    assert {(ln, rid) for ln, rid, _ in got} == {(ln, rid) for ln, rid, _ in want}, name
    for ln, _, message in got:  # each failure names the region's IoU
        iou = next(i for k, _, i in want if k == ln)
        assert f"solver IoU {iou:.6g} is below --min-mask-iou" in message
    assert report["failure_counts"] == ({"mask.solver_iou": len(want)} if want else {})
    assert all(f["shard"] == "gtok-00000.jsonl" for f in report["failures"])
    assert report["mask_solver_iou"]["below"] == len(want)
    human = gtok("verify", masked["out"], "--min-mask-iou", repr(floor)).stdout
    assert f"; {len(want)} below --min-mask-iou {floor!r}\n" in human
    assert human.count("mask.solver_iou: region 0: solver IoU ") == len(want)
    # stats counts the same masks below the same floor, from the same numbers
    code, st = _json("stats", masked["out"], "--min-mask-iou", repr(floor))
    mt = st["mask_tokens"]
    assert code == 0 and mt["below_min_mask_iou"] == len(want) and mt["min_mask_iou"] == floor
    assert mt["solver_iou"]["count"] == report["mask_solver_iou"]["count"]
    assert mt["solver_iou"]["mean"] == pytest.approx(report["mask_solver_iou"]["mean"], abs=1e-12)
    assert (
        f"{len(want)} below --min-mask-iou {floor!r}"
        in gtok("stats", masked["out"], "--min-mask-iou", repr(floor)).stdout
    )


@pytest.mark.parametrize("source", ["export", "records"])
def test_stats_reports_the_same_numbers(masked: dict[str, Any], source: str) -> None:
    values = [iou for _, iou in masked["ious"]]
    code, st = _json("stats", masked["out" if source == "export" else "masks"])
    s = st["mask_tokens"]["solver_iou"]
    assert code == 0 and s["count"] == len(values)
    assert s["mean"] == pytest.approx(_mean(values), abs=1e-12)
    assert (s["min"], s["max"]) == (min(values), max(values))
    assert st["mask_tokens"]["solver_iou_not_recorded"] == 0
    assert st["mask_tokens"]["below_min_mask_iou"] is None


@pytest.mark.parametrize("command", ["verify", "stats"])
@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("-1", "--min-mask-iou must be in [0, 1], got -1.0"),
        ("2", "--min-mask-iou must be in [0, 1], got 2.0"),
        ("1.0000001", "--min-mask-iou must be in [0, 1], got 1.0000001"),
        ("nan", "--min-mask-iou must be a number in [0, 1], got nan"),
        ("inf", "--min-mask-iou must be in [0, 1], got inf"),
    ],
)
def test_bad_floor_is_one_line_exit_2(masked: dict[str, Any], command: str, value: str, words: str) -> None:
    res = gtok(command, masked["out"], "--min-mask-iou", value)
    assert res.exit_code == 2, res.output
    assert res.stderr.strip().splitlines() == [f"gtok: error: {words}"]
    assert res.stdout == ""


def test_iou_not_recorded_is_said_not_zero(masked: dict[str, Any]) -> None:
    """Mask tokens without ``iou`` (hand-made records, older exports): "not recorded", never a 0."""
    lines = []
    for raw in masked["masks"].read_bytes().splitlines():
        rec = orjson.loads(raw)
        for r in rec["regions"]:
            del r["mask_tokens"]["iou"]
        lines.append(orjson.dumps(rec) + b"\n")
    src, out = masked["dir"] / "no-iou.jsonl", masked["dir"] / "no-iou-export"
    src.write_bytes(b"".join(lines))
    res = gtok("export", src, "--scheme", "grid", "--task", "rec", "--shape", "mask", "--out", out)
    assert res.exit_code == 0, res.output
    n = len(lines)
    code, report = _json("verify", out)
    assert code == 0
    assert report["mask_solver_iou"] == {
        "count": 0,
        "not_recorded": n,
        "mean": None,
        "percentiles": {},
        "min_mask_iou": None,
        "below": None,
    }
    assert f"mask solver IoU  not recorded ({n} mask region(s))" in gtok("verify", out).stdout
    # a floor cannot be proven for a mask without its IoU: each one fails, saying why
    code, report = _json("verify", out, "--min-mask-iou", "0.5")
    assert code == 1 and report["failure_counts"] == {"mask.solver_iou": n}
    assert (
        "solver IoU not recorded in meta, cannot check --min-mask-iou 0.5" in report["failures"][0]["message"]
    )
    code, st = _json("stats", out)
    assert (
        st["mask_tokens"]["solver_iou"] == {"count": 0} and st["mask_tokens"]["solver_iou_not_recorded"] == n
    )
    assert f"not recorded ({n} mask region(s))" in gtok("stats", out).stdout


def test_box_answers_have_no_mask_solver_iou(masked: dict[str, Any]) -> None:
    """``--shape box`` of the same records: the answers draw boxes, so there is no mask IoU to report."""
    out = masked["dir"] / "box-export"
    res = gtok("export", masked["masks"], "--scheme", "grid", "--task", "rec", "--shape", "box", "--out", out)
    assert res.exit_code == 0, res.output
    code, report = _json("verify", out, "--min-mask-iou", "1")
    assert code == 0 and report["mask_solver_iou"] is None
    assert "mask solver IoU" not in gtok("verify", out).stdout
    _, st = _json("stats", out)
    assert st["mask_tokens"]["solver_iou"] == {"count": 0}


def test_tampered_iou_out_of_range_is_a_schema_failure(masked: dict[str, Any]) -> None:
    """``meta.regions[].mask_tokens.iou`` is in [0, 1] (shard_line.schema.json): a line with 1.5 fails."""
    out = masked["dir"] / "tampered"
    out.mkdir()
    for p in masked["out"].iterdir():
        (out / p.name).write_bytes(p.read_bytes())
    shard = out / "gtok-00000.jsonl"
    lines = shard.read_bytes().splitlines()
    first = orjson.loads(lines[0])
    first["meta"]["regions"][0]["mask_tokens"]["iou"] = 1.5
    lines[0] = orjson.dumps(first)
    shard.write_bytes(b"\n".join(lines) + b"\n")
    code, report = _json("verify", out)
    assert code == 1
    schema = [f for f in report["failures"] if f["check"] == "line.schema"]
    assert [(f["line"], "1.5" in f["message"]) for f in schema] == [(1, True)]
    assert report["mask_solver_iou"]["count"] == len(masked["ious"]) - 1  # the refused line is not counted
