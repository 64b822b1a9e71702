"""End to end on sample_data/ for the newer schemes: ingest → export → verify (meta and --against) → stats.

Each new scheme's answers verify clean; ``molmo`` refuses boxes (exit 2) unless ``--box-as center``, which the
manifest records and the re-run command spells; ``loc --shape polygon`` writes each region's COCO polygon.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from _export_helpers import gtok

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data"


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("records")
    coco, ref = out / "coco.jsonl", out / "refcoco.jsonl"
    res = gtok(
        "ingest",
        "coco",
        "--instances",
        SAMPLE / "coco/annotations/instances_val2017_sample.json",
        "--out",
        coco,
    )
    assert res.exit_code == 0, res.output
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
    return {"coco": coco, "refcoco": ref}


def export_and_verify(tmp: Path, source: Path, *args: str) -> dict:
    out = tmp / "out"
    res = gtok("export", source, "--out", out, *args)
    assert res.exit_code == 0, res.output
    for extra in ([], ["--against", source]):
        checked = gtok("verify", out, "--json", *extra)
        assert checked.exit_code == 0, checked.output
    assert gtok("stats", out).exit_code == 0
    manifest: dict = orjson.loads((out / "manifest.json").read_bytes())
    assert manifest["counts"]["written"] > 0
    return manifest


@pytest.mark.parametrize("scheme", ["internvl", "deepseek-vl2", "gemini", "cogvlm", "minigpt-v2"])
@pytest.mark.parametrize(("task", "source"), [("rec", "refcoco"), ("detect", "coco")])
def test_box_schemes_verify_clean(
    tmp_path: Path, records: dict[str, Path], scheme: str, task: str, source: str
) -> None:
    manifest = export_and_verify(tmp_path, records[source], "--scheme", scheme, "--task", task)
    assert manifest["scheme"]["scheme"] == scheme


def test_molmo_box_needs_box_as_center(tmp_path: Path, records: dict[str, Path]) -> None:
    res = gtok("export", records["refcoco"], "--scheme", "molmo", "--task", "rec", "--out", tmp_path / "x")
    assert res.exit_code == 2 and "--box-as center" in res.stderr and "Traceback" not in res.output
    manifest = export_and_verify(
        tmp_path, records["refcoco"], "--scheme", "molmo", "--task", "rec", "--box-as", "center"
    )
    assert manifest["box_as"] == "center"
    assert manifest["command"][-2:] == ["--box-as", "center"]
    line = orjson.loads((tmp_path / "out" / manifest["shards"][0]["name"]).read_bytes().splitlines()[0])
    [region] = line["meta"]["regions"]
    x1, y1, x2, y2 = region["bbox"]
    assert region["kind"] == "point" and region["point_from"] == "box"
    assert region["point"] == [(x1 + x2) / 2, (y1 + y2) / 2]
    assert line["conversations"][1]["value"].startswith("<point x=")


def test_molmo_point_task_keeps_its_truth_in_text_order(tmp_path: Path, records: dict[str, Path]) -> None:
    manifest = export_and_verify(
        tmp_path, records["coco"], "--scheme", "molmo", "--task", "multi", "--box-as", "center"
    )
    assert manifest["counts"]["written"] > 0  # several points a phrase: sorted by x in the text and in meta


def test_loc_polygon_export(tmp_path: Path, records: dict[str, Path]) -> None:
    manifest = export_and_verify(
        tmp_path, records["coco"], "--scheme", "loc", "--task", "detect", "--shape", "polygon"
    )
    assert manifest["shape"] == "polygon"
    line = orjson.loads((tmp_path / "out" / manifest["shards"][0]["name"]).read_bytes().splitlines()[0])
    region = line["meta"]["regions"][0]
    assert region["kind"] == "polygon" and len(region["polygon"][0]) >= 6
    assert "<poly><loc_" in line["conversations"][1]["value"]
    refused = gtok(
        "export",
        records["coco"],
        "--scheme",
        "qwen3-vl",
        "--task",
        "detect",
        "--shape",
        "polygon",
        "--out",
        tmp_path / "q",
    )
    assert refused.exit_code == 2 and "cannot write polygon" in refused.stderr
