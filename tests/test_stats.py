"""`gtok stats`: totals agree with the manifest, COCO size buckets, spatial-token counts, plots (issue 7)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from _export_helpers import gtok, region, write_records
from PIL import Image

from gtok_cli.codecs import get_codec
from gtok_cli.stats.measure import SpatialTokenCounter, box_size


def _record(k: int, bbox: list[float], **kw: Any) -> dict[str, Any]:
    return {
        "id": f"r{k}",
        "dataset": "refcoco" if k % 2 else "refcocog",
        "split": "train" if k < 3 else "val",
        "task": "referring",
        "text": f"thing {k}",
        "image": {"file": f"img{k}.jpg", "width": 640, "height": 480, "id": k},
        "regions": [region(bbox, label="dog" if k % 2 else "cat", **kw)],
        "source": {"image_id": k},
    }


@pytest.mark.parametrize(
    ("bbox", "bucket"),
    [
        ([0, 0, 31, 33], "small"),  # 1023 = 32² - 1
        ([0, 0, 32, 32], "medium"),  # 1024 = 32²: COCO's small is area < 32²
        ([10, 10, 105, 107], "medium"),  # 95 x 97 = 9215 = 96² - 1
        ([0, 0, 96, 96], "large"),  # 9216 = 96²
        ([0.5, 0.5, 1.5, 1.5], "small"),  # area 1
        ([0, 0, 640, 480], "large"),
    ],
)
def test_box_size_buckets_at_coco_thresholds(bbox: list[float], bucket: str) -> None:
    assert box_size(bbox) == bucket


@pytest.mark.parametrize(
    ("scheme", "text", "want"),
    [
        # qwen2-vl: 4 wrapper tokens + 4 plain-text coordinates (hand count)
        (
            "qwen2-vl",
            "<|object_ref_start|>dog<|object_ref_end|><|box_start|>(234,208),(625,729)<|box_end|>",
            8,
        ),
        ("loc", "<loc_234><loc_208><loc_625><loc_729>", 4),
        ("bins", "<box> 0.234 0.208 0.625 0.729", 5),
        ("grid", "<seg><grid_1_2><grid_3_4><grid_5_6></seg>", 5),
        (
            "qwen2.5-vl",
            '[{"bbox_2d": [151, 99, 402, 347], "label": "dog 2"}]',
            4,
        ),  # the label's 2 is no coordinate
    ],
)
def test_spatial_token_count(scheme: str, text: str, want: int) -> None:
    codec = get_codec(scheme)
    counter = SpatialTokenCounter(codec)
    total, per_shape = counter.count(text, codec.decode(text, (640, 480)))
    assert total == want
    assert per_shape == [want]


@pytest.fixture
def records(tmp_path: Path) -> Path:
    boxes = [[0, 0, 31, 33], [0, 0, 32, 32], [0, 0, 96, 96], [10, 20, 300, 400], [5, 5, 20, 20]]
    return write_records(tmp_path / "records.jsonl", [_record(k, b) for k, b in enumerate(boxes)])


def _json(*args: Any) -> dict[str, Any]:
    res = gtok("stats", *args, "--json")
    assert res.exit_code == 0, res.output
    out: dict[str, Any] = orjson.loads(res.stdout)
    return out


def test_export_stats_totals_equal_manifest(tmp_path: Path, records: Path) -> None:
    out = tmp_path / "shards"
    assert (
        gtok(
            "export", records, "--scheme", "loc", "--task", "rec", "--out", out, "--shard-size", "2"
        ).exit_code
        == 0
    )
    manifest = orjson.loads((out / "manifest.json").read_bytes())
    r = _json(out)
    assert r["samples"] == manifest["counts"]["written"] == 5
    assert r["regions"] == 5
    assert r["manifest_counts"] == manifest["counts"]
    for key in ("by_dataset", "by_split", "by_task"):
        assert sum(r[key].values()) == r["samples"]
    # the manifest's source records are on disk, so dataset and split come from them (hand count above)
    assert r["by_dataset"] == {"refcoco": 2, "refcocog": 3}
    assert r["by_split"] == {"train": 3, "val": 2}
    assert r["by_category"] == {"cat": 3, "dog": 2}
    assert {k: r["box_sizes"][k] for k in ("small", "medium", "large")} == {
        "small": 2,
        "medium": 1,
        "large": 2,
    }
    assert r["tokens"]["per_sample"]["max"] == r["tokens"]["per_sample"]["min"] == 4  # <loc_..> x 4
    rt = r["round_trip"]
    assert rt["error_px"]["count"] == 5 and rt["problems"] == {}
    assert rt["error_px"]["max"] <= 0.5 * 640 / 1000 + 1e-9  # loc's bound: half a bin


def test_mask_tokens_per_mask_and_iou(tmp_path: Path) -> None:
    tokens = {
        "grid": 32,
        "anchors": [[1, 1], [2, 1], [1, 2]],
        "iou": 0.75,
        "backend": "cells",
        "tau": 0.9,
        "variant": "sorted",
    }
    recs = [_record(k, [20.0, 15.0, 60.0, 45.0], mask_tokens=tokens) for k in range(2)]
    src = write_records(tmp_path / "m.jsonl", recs)
    rec_stats = _json(src)
    assert rec_stats["kind"] == "records" and rec_stats["samples"] == 2
    assert rec_stats["mask_tokens"]["tokens_per_mask"]["mean"] == 3
    assert rec_stats["mask_tokens"]["solver_iou"]["mean"] == 0.75
    out = tmp_path / "shards"
    assert (
        gtok("export", src, "--scheme", "grid", "--task", "rec", "--shape", "mask", "--out", out).exit_code
        == 0
    )
    r = _json(out)
    assert r["mask_tokens"]["tokens_per_mask"]["mean"] == 3  # the 3 anchors
    assert r["tokens"]["per_region"]["mean"] == 5  # <seg> + 3 grid tokens + </seg>
    assert r["round_trip"]["problems"] == {} and r["round_trip"]["error_px"]["max"] == 0


def test_human_output_and_plots(tmp_path: Path, records: Path) -> None:
    out = tmp_path / "shards"
    assert gtok("export", records, "--scheme", "bins", "--task", "rec", "--out", out).exit_code == 0
    plots = tmp_path / "plots"
    res = gtok("stats", out, "--plots", plots)
    assert res.exit_code == 0, res.output
    assert "samples 5, regions 5" in res.stdout
    names = sorted(p.name for p in plots.iterdir())
    assert "box_sizes.png" in names and "round_trip_error_px.png" in names
    for p in plots.iterdir():
        assert Image.open(p).size == (560, 340)


def test_missing_input_exits_2(tmp_path: Path) -> None:
    res = gtok("stats", tmp_path / "nope.jsonl")
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1
