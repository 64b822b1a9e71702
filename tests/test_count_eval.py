"""`gtok eval` of a count export: exact and off-by-one accuracy, MAE, and the grounded instances matched at
IoU 0.5 (docs/spec.md#counting). Every expected number is worked out by hand in the comments."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from _export_helpers import gtok, region, write_records

from gtok_cli.codecs import Grounding, Shape, get_codec

SIZE = (1000, 1000)
DOGS = [[0.0, 0.0, 100.0, 100.0], [200.0, 0.0, 300.0, 100.0], [400.0, 0.0, 500.0, 100.0]]
CAT = [600.0, 600.0, 800.0, 800.0]


def _record(rid: str, regions: list[dict[str, Any]]) -> dict[str, Any]:
    image = {"file": f"{rid}.jpg", "width": SIZE[0], "height": SIZE[1], "id": rid}
    return {"id": rid, "dataset": "coco", "split": "val", "task": "instances", "text": None, "image": image,
            "regions": regions, "source": {}}  # fmt: skip


def _two_images() -> list[dict[str, Any]]:
    # image i1: 3 dogs; image i2: 1 cat. The table is {dog, cat}; with --negatives 1 each image has one
    # positive and one absent category: i1 asks cat = 0, i2 asks dog = 0 (floor(1·1 + u) = 1, one candidate)
    return [
        _record("i1", [region(b, label="dog", category_id=18, ann_id=k) for k, b in enumerate(DOGS)]),
        _record("i2", [region(CAT, label="cat", category_id=17, ann_id=9)]),
    ]


@pytest.fixture()
def export(tmp_path: Path) -> Path:
    src = write_records(tmp_path / "r.jsonl", _two_images())
    out = tmp_path / "out"
    res = gtok("export", src, "--scheme", "bins", "--task", "count", "--negatives", "1", "--out", out)
    assert res.exit_code == 0, res.output
    ids = [orjson.loads(x)["id"] for x in (out / "gtok-00000.jsonl").read_bytes().splitlines()]
    assert sorted(ids) == ["i1:count:17", "i1:count:18", "i2:count:17", "i2:count:18"]
    return out


def _boxes(*boxes: list[float]) -> str:
    return get_codec("bins").encode([Grounding("x", tuple(Shape.box(*b) for b in boxes))], SIZE)


def _eval(tmp: Path, export: Path, preds: dict[str, str], *extra: str) -> dict[str, Any]:
    path = tmp / "preds.jsonl"
    path.write_bytes(b"".join(orjson.dumps({"id": k, "text": v}) + b"\n" for k, v in preds.items()))
    res = gtok("eval", path, "--against", export, "--json", *extra)
    assert res.exit_code == 0, res.output
    report: dict[str, Any] = orjson.loads(res.output)
    return report


def test_hand_computed_accuracies_and_matching(tmp_path: Path, export: Path) -> None:
    far = [900.0, 900.0, 950.0, 950.0]
    preds = {
        # 3 dogs said, boxes: two true dogs (IoU 1), one far away -> exact; 2 of 3 boxes match
        "i1:count:18": "3: " + _boxes(DOGS[0], DOGS[2], far),
        # 2 cats said (truth 1): off by one; the cat box matches (IoU 0.6: 200x120 inside the 200x200 cat)
        "i2:count:17": "2: " + _boxes([600.0, 600.0, 800.0, 720.0], far),
        # the negative said 0, no box: exact
        "i1:count:17": "0",
        # the negative said 1 with a box: off by one, a false positive
        "i2:count:18": "1: " + _boxes(far),
    }
    r = _eval(tmp_path, export, preds)
    m = r["metrics"]
    assert m["count_exact"] == pytest.approx(2 / 4)
    assert m["count_off_by_one"] == pytest.approx(4 / 4)
    assert m["count_mae"] == pytest.approx((0 + 1 + 0 + 1) / 4)
    assert m["precision@0.5"] == pytest.approx((2 + 1 + 0 + 0) / (3 + 2 + 0 + 1))
    assert m["recall@0.5"] == pytest.approx((2 + 1) / (3 + 1))
    assert r["counts"]["format_error"] == 0


def test_missing_wrong_and_number_words(tmp_path: Path, export: Path) -> None:
    preds = {
        "i1:count:18": "There are two of them.",  # 2 for 3: off by one; no box
        "i2:count:17": _boxes(CAT),  # no number: the shapes count (1): exact, matched
        "i1:count:17": "5",  # 5 for 0: wrong
        # i2:count:18 missing: wrong, scores nothing
    }
    r = _eval(tmp_path, export, preds)
    m = r["metrics"]
    assert m["count_exact"] == pytest.approx(1 / 4)
    assert m["count_off_by_one"] == pytest.approx(2 / 4)
    assert m["count_mae"] == pytest.approx((1 + 0 + 5) / 3)  # over the three answered lines
    assert m["precision@0.5"] == pytest.approx(1 / 1)
    assert m["recall@0.5"] == pytest.approx(1 / 4)
    assert r["counts"]["missing"] == 1
    assert r["info"]["count_from_shapes"] == 1


def test_own_answers_score_perfectly(tmp_path: Path, export: Path) -> None:
    preds = {}
    for raw in (export / "gtok-00000.jsonl").read_bytes().splitlines():
        line = orjson.loads(raw)
        preds[line["id"]] = line["conversations"][1]["value"]
    m = _eval(tmp_path, export, preds)["metrics"]
    assert m == {"count_exact": 1.0, "count_off_by_one": 1.0, "count_mae": 0.0, "precision@0.5": 1.0,
                 "recall@0.5": 1.0}  # fmt: skip


def test_min_floor_on_count_metric(tmp_path: Path, export: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_bytes(orjson.dumps({"id": "i1:count:18", "text": "1"}) + b"\n")
    res = gtok("eval", path, "--against", export, "--min", "count_exact=0.5")
    assert res.exit_code == 1


def test_stats_count_histogram(export: Path) -> None:
    res = gtok("stats", export, "--json")
    assert res.exit_code == 0, res.output
    # i1 dog 3, i2 cat 1, two negatives
    assert orjson.loads(res.output)["count_histogram"] == {"0": 2, "1": 1, "3": 1}
    human = gtok("stats", export)
    assert "count histogram (n: lines) 0: 2, 1: 1, 3: 1" in human.output


def test_saying_nothing_is_not_saying_zero(tmp_path: Path, export: Path) -> None:
    """An answer with no number and no shape is unanswered: wrong on every line, a zero line included."""
    preds = {"i1:count:17": "I don't know.", "i1:count:18": "There are 3 of them."}
    r = _eval(tmp_path, export, preds)
    assert r["info"]["count_unstated"] == 1
    assert r["metrics"]["count_exact"] == pytest.approx(1 / 4)  # only i1:count:18 (3 dogs) is right
    assert r["metrics"]["count_mae"] == 0.0  # over the one answered line (its "3" read in the prose)


def test_stats_count_histogram_of_a_no_meta_export(tmp_path: Path) -> None:
    """--no-meta lines have no meta.count: the histogram comes from the numbers their answers state."""
    src = write_records(tmp_path / "r.jsonl", _two_images())
    out = tmp_path / "out"
    args = ("--scheme", "bins", "--task", "count", "--negatives", "1", "--no-meta", "--out", out)
    assert gtok("export", src, *args).exit_code == 0
    res = gtok("stats", out, "--json")
    assert res.exit_code == 0, res.output
    assert orjson.loads(res.output)["count_histogram"] == {"0": 2, "1": 1, "3": 1}


def test_own_polygon_answers_ground_every_instance(tmp_path: Path) -> None:
    """--shape polygon (loc, Florence-2's polygons): a polygon is matched by the box of its vertices."""
    src = tmp_path / "coco.jsonl"
    sample = Path(__file__).resolve().parents[1] / "sample_data" / "coco" / "annotations"
    assert (
        gtok(
            "ingest", "coco", "--instances", sample / "instances_val2017_sample.json", "--out", src
        ).exit_code
        == 0
    )
    out = tmp_path / "out"
    res = gtok("export", src, "--scheme", "loc", "--task", "count", "--shape", "polygon", "--out", out)
    assert res.exit_code == 0, res.output
    from gtok_cli.eval import ground_truth_predictions

    preds = tmp_path / "preds.jsonl"
    preds.write_bytes(b"".join(orjson.dumps(p) + b"\n" for p in ground_truth_predictions(out)))
    res = gtok("eval", preds, "--against", out, "--json")
    assert res.exit_code == 0, res.output
    m = orjson.loads(res.output)["metrics"]
    assert m["count_exact"] == 1.0
    assert m["precision@0.5"] == 1.0 and m["recall@0.5"] == 1.0, m
