"""Propose-and-refine export and verify: sample_data end to end, hand-worked lines, tampering, polylines.

Hand-worked rows use ``--refine-steps 1`` (P(0 cells) = 1: the proposal is the exact grid encoding), so every
token is computable: grid 32, offset step ½ cell, lattice index q = 2·cell, truth t = v·64/extent − 1,
offset per axis = sign(t − q) when |t − q| > ½ (docs/spec.md#refinement, refine/targets.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from _export_helpers import gtok, region, write_records

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data"
POLYLINES = ROOT / "tests" / "data" / "polylines.jsonl"
SHARD = "gtok-00000.jsonl"
_TOKEN = re.compile(r"<grid_\d+_\d+>|<OFF_-?\d_-?\d>|<DELETE>")


@pytest.fixture(scope="module")
def refcoco_masks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("refine_records")
    ref, masked = out / "refcoco.jsonl", out / "refcoco.masks.jsonl"
    res = gtok(
        "ingest",
        "refcoco",
        "--dataset",
        "refcoco",
        "--refs",
        SAMPLE / "refcoco/refs(unc).p",
        "--instances",
        SAMPLE / "refcoco/instances.json",
        "--out",
        ref,
    )
    assert res.exit_code == 0, res.output
    res = gtok("masks", ref, "--backend", "cells", "--out", masked)
    assert res.exit_code == 0, res.output  # the cells backend is core: a failure here is a bug, not a skip
    return masked


def _lines(folder: Path) -> list[dict[str, Any]]:
    return [orjson.loads(x) for x in (folder / SHARD).read_bytes().splitlines()]


def _assistant(line: dict[str, Any]) -> list[str]:
    return [t["value"] for t in line["conversations"] if t["from"] == "gpt"]


def _export(src: Path, out: Path, *args: str) -> None:
    res = gtok("export", src, "--scheme", "grid", "--out", out, *args)
    assert res.exit_code == 0, res.output


def _verify_json(out: Path, *args: str) -> dict[str, Any]:
    res = gtok("verify", out, "--json", *args)
    report: dict[str, Any] = orjson.loads(res.output)
    assert res.exit_code == (0 if report["ok"] else 1)
    return report


# ---- sample_data end to end -------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", ["box", "point", "mask"])
@pytest.mark.parametrize("turns", [1, 2])
def test_refine_sample_data_verifies(refcoco_masks: Path, tmp_path: Path, shape: str, turns: int) -> None:
    out = tmp_path / "out"
    _export(refcoco_masks, out, "--task", "refine", "--shape", shape, "--refine-turns", str(turns))
    report = _verify_json(out)
    assert report["ok"], report["failures"][:3]
    lines = _lines(out)
    assert report["refine"]["counts"]["lines"] == len(lines) == 22
    for line in lines:
        answers = _assistant(line)
        # the proposal, then K offset turns (fewer only if every shape was deleted)
        assert 2 <= len(answers) <= 1 + turns
        assert answers[0].startswith({"box": "<box>", "point": "<point>", "mask": "<seg>"}[shape])
        anchors = len(_TOKEN.findall(answers[0]))
        for text in answers[1:]:
            toks = _TOKEN.findall(text)
            assert text.startswith("<offset>") and all(not t.startswith("<grid") for t in toks)
            assert len(toks) == anchors  # one offset token per anchor of the previous answer
            anchors -= toks.count("<DELETE>")
        if len(answers) < 1 + turns:
            assert anchors == 0
        assert line["meta"]["refine"]["turns"] == turns
    manifest = orjson.loads((out / "manifest.json").read_bytes())
    assert manifest["refine"]["turns"] == turns and manifest["shape"] == shape
    assert manifest["command"][manifest["command"].index("--refine-turns") + 1] == str(turns)


def test_refine_option_on_rec_with_against(refcoco_masks: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ("--task", "rec", "--refine", "--shape", "mask", "--no-meta", "--format", "messages")
    _export(refcoco_masks, out, *args, "--refine-turns", "2")
    report = _verify_json(out, "--against", str(refcoco_masks))
    assert report["ok"], report["failures"][:3]
    assert report["truth_from"] == "records" and report["refine"]["counts"]["lines"] == 22


def test_refine_is_deterministic_and_seeded(refcoco_masks: Path, tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for out, seed in ((a, "3"), (b, "3"), (c, "4")):
        _export(refcoco_masks, out, "--task", "refine", "--shape", "mask", "--seed", seed)
    assert (a / SHARD).read_bytes() == (b / SHARD).read_bytes()
    assert (a / SHARD).read_bytes() != (c / SHARD).read_bytes()


# ---- hand-worked lines ------------------------------------------------------------------------------------
def _box_record() -> dict[str, Any]:
    return {
        "id": "hand-1",
        "dataset": "handmade",
        "split": "test",
        "task": "referring",
        "text": "the red car",
        "image": {"file": "car.jpg", "width": 640, "height": 480, "id": 1},
        "regions": [region([100.0, 50.0, 300.5, 200.0])],
        "source": {"image_id": 1},
    }


@pytest.mark.parametrize(
    ("shape", "answers"),
    [
        # box [100, 50, 300.5, 200] in 640×480: TL cell (5, 3), BR ceil(v·32 − 1) = (15, 13); q = (10, 6),
        # (30, 26); t = (9, 5.67), (29.05, 25.67) → (−1, 0), (−1, 0); then d = 0, 0.05 → stay.
        (
            "box",
            [
                "<box><grid_5_3><grid_15_13></box>",
                "<offset><box><OFF_-1_0><OFF_-1_0></box></offset>",
                "<offset><box><OFF_0_0><OFF_0_0></box></offset>",
            ],
        ),
        # point = box centre (200.25, 125) (no mask): cell (10, 8), q = (20, 16), t = (19.025, 15.67)
        # → (−1, 0)
        (
            "point",
            [
                "<point><grid_10_8></point>",
                "<offset><point><OFF_-1_0></point></offset>",
                "<offset><point><OFF_0_0></point></offset>",
            ],
        ),
    ],
)
def test_hand_worked_refine_line(tmp_path: Path, shape: str, answers: list[str]) -> None:
    src = write_records(tmp_path / "r.jsonl", [_box_record()])
    out = tmp_path / "out"
    _export(src, out, "--task", "refine", "--shape", shape, "--refine-steps", "1", "--refine-turns", "2")
    (line,) = _lines(out)
    assert _assistant(line) == answers
    assert _verify_json(out)["ok"]


def test_polyline_export_and_refine(tmp_path: Path) -> None:
    # pl-1 (640×480): vertices (12.5, 400) (200, 350.25) (420, 300) (630, 120) → floor cells (0, 26) (10, 23)
    # (21, 20) (31, 8); q = 2·cell, t = (0.25, 52.33) (19, 45.7) (41, 39) (62, 15) → offsets
    # (0, 0) (−1, 0) (−1, −1) (0, −1). pl-3 has no polyline: skipped.
    rec = tmp_path / "rec"
    res = gtok("export", POLYLINES, "--scheme", "grid", "--task", "rec", "--shape", "polyline", "--out", rec)
    assert res.exit_code == 0, res.output
    assert "region.no_polyline=1" in res.output
    first = _lines(rec)[0]
    assert _assistant(first) == ["<pl><grid_0_26><grid_10_23><grid_21_20><grid_31_8></pl>"]
    assert first["meta"]["regions"][0]["polyline"] == [12.5, 400.0, 200.0, 350.25, 420.0, 300.0, 630.0, 120.0]
    assert _verify_json(rec)["ok"]

    ref = tmp_path / "refine"
    _export(POLYLINES, ref, "--task", "refine", "--shape", "polyline", "--refine-steps", "1")
    offsets = "<OFF_0_0><OFF_-1_0><OFF_-1_-1><OFF_0_-1>"
    assert _assistant(_lines(ref)[0])[1] == f"<offset><pl>{offsets}</pl></offset>"
    assert _verify_json(ref)["ok"]

    # a DELETE radius of 0.01 cells deletes every vertex (each is > 0.02 steps off): the conversation ends
    # after one turn even though two are asked for, and verify accepts that
    gone = tmp_path / "gone"
    _export(
        POLYLINES,
        gone,
        "--task",
        "refine",
        "--shape",
        "polyline",
        "--refine-steps",
        "1",
        "--refine-turns",
        "2",
        "--delete-radius",
        "0.01",
    )
    assert _assistant(_lines(gone)[0])[1:] == ["<offset><pl><DELETE><DELETE><DELETE><DELETE></pl></offset>"]
    assert _verify_json(gone)["ok"]


def test_polyline_random_proposals_verify(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _export(POLYLINES, out, "--task", "refine", "--shape", "polyline", "--refine-turns", "3", "--seed", "5")
    report = _verify_json(out)
    assert report["ok"], report["failures"][:3]
    assert report["refine"]["counts"]["shapes"] == 2


# ---- tampering --------------------------------------------------------------------------------------------
def _edit_refine_turn(
    folder: Path, pick: Callable[[list[str]], int | None], edit: Callable[[list[str]], None]
) -> int:
    """Edit the first refinement turn's tokens of the first line ``pick`` accepts (-1: apply ``edit``, k: swap
    tokens k and k+1); returns that line number."""
    path = folder / SHARD
    raw = path.read_bytes().split(b"\n")
    for k, data in enumerate(raw):
        if not data:
            continue
        obj = orjson.loads(data)
        turn = obj["conversations"][3]
        toks = _TOKEN.findall(turn["value"])
        at = pick(toks)
        if at is None:
            continue
        head, tail = turn["value"].split(toks[0], 1)[0], turn["value"].rsplit(toks[-1], 1)[1]
        new = list(toks)
        if at < 0:
            edit(new)
        else:
            _swap(new, at)
        turn["value"] = head + "".join(new) + tail
        raw[k] = orjson.dumps(obj)
        path.write_bytes(b"\n".join(raw))
        return k + 1
    raise AssertionError("no line to tamper with")


def _swap(toks: list[str], at: int) -> None:
    toks[at], toks[at + 1] = toks[at + 1], toks[at]


def _wrong_direction(toks: list[str]) -> None:
    du, dv = (int(v) for v in toks[0][5:-1].split("_"))
    toks[0] = f"<OFF_{-du}_{-dv}>" if (du, dv) != (0, 0) else "<OFF_1_0>"


def _first_delete_next_to_move(toks: list[str]) -> int | None:
    for k in range(len(toks) - 1):
        if (toks[k] == "<DELETE>") != (toks[k + 1] == "<DELETE>"):
            return k
    return None


TAMPER: dict[str, tuple[str, Callable[[list[str]], int | None], Callable[[list[str]], None], str]] = {
    "removed": ("box", lambda t: -1, lambda t: t.pop(), "refine.count"),
    "wrong_direction": ("box", lambda t: -1, _wrong_direction, "refine.target"),
    "delete_swapped": ("mask", _first_delete_next_to_move, lambda t: None, "refine.target"),
}


@pytest.mark.parametrize("case", sorted(TAMPER))
def test_verify_catches_tampered_refine_turn(refcoco_masks: Path, tmp_path: Path, case: str) -> None:
    shape, pick, edit, check = TAMPER[case]
    out = tmp_path / "out"
    _export(refcoco_masks, out, "--task", "refine", "--shape", shape)
    lineno = _edit_refine_turn(out, pick, edit)
    res = gtok("verify", out)
    assert res.exit_code == 1
    assert f"{SHARD}:{lineno}" in res.output and check in res.output
    report = _verify_json(out)
    hits = [f for f in report["failures"] if f["check"] == check]
    assert hits and {(f["shard"], f["line"]) for f in hits} == {(SHARD, lineno)}


# ---- usage errors -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "args",
    [
        ("--scheme", "bins", "--task", "refine"),
        ("--scheme", "grid", "--task", "reg", "--refine"),
        ("--scheme", "grid", "--task", "rec", "--refine-turns", "2"),
        ("--scheme", "grid", "--task", "rec", "--shape", "point"),
        ("--scheme", "grid", "--task", "refine", "--refine-turns", "0"),
        ("--scheme", "grid", "--task", "refine", "--class-ratios", "1,2,3"),
        ("--scheme", "grid", "--task", "refine", "--refine-steps", "0,0"),
        ("--scheme", "grid", "--task", "refine", "--delete-radius", "0"),
        ("--scheme", "grid", "--offset-step", "0.4", "--task", "refine"),
        ("--scheme", "bins", "--task", "rec", "--shape", "polyline"),
    ],
)
def test_refine_usage_errors(tmp_path: Path, args: tuple[str, ...]) -> None:
    src = write_records(tmp_path / "r.jsonl", [_box_record()])
    res = gtok("export", src, *args, "--out", tmp_path / "out")
    assert res.exit_code == 2, res.output


def test_settings_round_trip() -> None:
    from gtok_cli.refine import OffsetLattice
    from gtok_cli.refine.settings import RefineSettings, settings_from_options

    s = settings_from_options(OffsetLattice(16, 3), 2, "0.7,0.3", 0.25, float("inf"), 1.5, 2.0, "1,1,1,0")
    assert s.targets.delete_radius_cells is None and s.proposal.steps.probs == (0.7, 0.3)
    assert RefineSettings.from_json(orjson.loads(orjson.dumps(s.to_json()))) == s


@pytest.mark.parametrize("seed", range(6))
def test_cropped_bands_equal_whole_image_morphology(seed: int) -> None:
    # classify._bands works on the mask's bounding box grown by the radii + 1; it must equal erode/dilate of
    # the whole image, borders included (blobs are placed to touch the image edge in some seeds)
    import numpy as np

    from gtok_cli.refine import MaskClassConfig, OffsetLattice
    from gtok_cli.refine.classify import _bands
    from gtok_cli.refine.morphology import dilate, erode

    rng = np.random.default_rng(seed)
    h, w = 90 + seed * 7, 130 - seed * 5
    mask = np.zeros((h, w), dtype=bool)
    for _ in range(3):
        y, x = int(rng.integers(0, h)), int(rng.integers(0, w))
        mask[y : y + int(rng.integers(1, 40)), x : x + int(rng.integers(1, 40))] = True
    lat, cfg = OffsetLattice(8, 2), MaskClassConfig(1.5, 2.0)
    (ex, ey), (dx, dy) = cfg.radii(lat, (w, h))
    bands = _bands(mask, lat, (w, h), cfg)
    assert (bands.eroded == erode(mask, ex, ey)).all()
    assert (bands.dilated == dilate(mask, dx, dy)).all()
