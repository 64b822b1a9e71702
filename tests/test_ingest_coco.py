"""`gtok ingest coco` on the genuine COCO val2017 fixtures (79 images, 624 annotations: 619 polygons and
5 crowd RLE).

Expected values come from pycocotools (an independent reader) and from the source file, converted by hand
here: box [x, y, w, h] → [x, y, x + w, y + h]; polygon area by the shoelace formula.
"""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from typer.testing import CliRunner

from gtok_cli.cli import app
from gtok_cli.ingest import json_chunks
from gtok_cli.ingest.coco import iter_coco, split_from_filename
from gtok_cli.ingest.coco_validate import (
    AnnotationContext,
    check_image_entry,
    checked_region,
    decode_rle_string,
    fast_region,
)
from gtok_cli.ingest.common import Excluded, Rejected, run_ingest
from gtok_cli.jsonio import dumps, dumps_line
from gtok_cli.records import record_validator

# pycocotools 2.0.x under numpy 2 warns on every decode
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pycocotools")


@pytest.fixture(scope="module")
def instances_path(coco_fixtures: Path) -> Path:
    return coco_fixtures / "annotations" / "instances_val2017.json"


@pytest.fixture(scope="module")
def captions_path(coco_fixtures: Path) -> Path:
    return coco_fixtures / "annotations" / "captions_val2017.json"


@pytest.fixture(scope="module")
def source(instances_path: Path) -> dict[str, Any]:
    return json.loads(instances_path.read_text())


@pytest.fixture(scope="module")
def coco_api(instances_path: Path) -> COCO:
    with redirect_stdout(io.StringIO()):
        return COCO(str(instances_path))


BOTH = ("instances", "category")  # the category records are opt-in


def _records(items: Any) -> list[dict[str, Any]]:
    return [i for i in items if isinstance(i, dict)]


@pytest.mark.parametrize("include_crowd", [False, True])
def test_counts_equal_pycocotools(instances_path: Path, coco_api: COCO, include_crowd: bool) -> None:
    items = list(iter_coco(instances_path, include_crowd=include_crowd, tasks=BOTH))
    records = _records(items)
    # independent expectations from pycocotools' index
    crowd_filter = None if include_crowd else False
    pairs = set()
    images_with_regions = set()
    for img_id in coco_api.getImgIds():
        for ann in coco_api.loadAnns(coco_api.getAnnIds(imgIds=img_id, iscrowd=crowd_filter)):
            pairs.add((img_id, ann["category_id"]))
            images_with_regions.add(img_id)
    instances = [r for r in records if r["task"] == "instances"]
    categories = [r for r in records if r["task"] == "category"]
    assert len(instances) == len(images_with_regions)
    assert {(r["image"]["id"], r["source"]["category_id"]) for r in categories} == pairs
    assert len(categories) == len(pairs)
    excluded = sum(i.count for i in items if isinstance(i, Excluded) and i.reason == "crowd")
    assert excluded == (0 if include_crowd else len(coco_api.getAnnIds(iscrowd=True)))
    assert not any(isinstance(i, Rejected) for i in items)
    n_regions = sum(len(r["regions"]) for r in instances)
    assert n_regions == len(coco_api.getAnnIds(iscrowd=crowd_filter))


def test_boxes_converted_by_hand(instances_path: Path, source: dict[str, Any]) -> None:
    anns = {a["id"]: a for a in source["annotations"]}
    images = {i["id"]: i for i in source["images"]}
    seen = 0
    for record in _records(iter_coco(instances_path, include_crowd=True, tasks=BOTH)):
        for region in record["regions"]:
            ann = anns[region["ann_id"]]
            x, y, w, h = ann["bbox"]
            assert region["bbox"] == [x, y, x + w, y + h]  # no fixture box overshoots its image
            img = images[ann["image_id"]]
            assert x + w <= img["width"] and y + h <= img["height"]
            assert region["category_id"] == ann["category_id"]
            assert region["iscrowd"] is bool(ann["iscrowd"])
            seen += record["task"] == "instances"
    assert seen == len(anns)


def _shoelace(poly: list[float]) -> float:
    xs, ys = np.array(poly[0::2]), np.array(poly[1::2])
    return float(abs(np.dot(xs, np.roll(ys, 1)) - np.dot(ys, np.roll(xs, 1))) / 2)


def test_masks_lossless_and_areas(instances_path: Path, source: dict[str, Any], coco_api: COCO) -> None:
    """What is compared, and why:

    - polygons: COCO's ``area`` is the polygon's own area, not the rasterised one (they differ by up to
      240 px² on these 619 polygons), so the shoelace area of the mask we wrote must equal ``area`` within
      1 px²; and our mask rasterised by pycocotools must equal pycocotools' rasterisation of the source;
    - crowd RLE: COCO's ``area`` disagrees with its own mask for 4 of these 5 (a known COCO quirk), so the
      RLE we wrote must decode to exactly the source mask, and pycocotools.mask.area must agree.
    """
    anns = {a["id"]: a for a in source["annotations"]}
    checked = {"polygon": 0, "rle": 0}
    for record in _records(iter_coco(instances_path, include_crowd=True)):
        if record["task"] != "instances":
            continue
        h, w = record["image"]["height"], record["image"]["width"]
        for region in record["regions"]:
            ann = anns[region["ann_id"]]
            ours = mask_utils.frPyObjects(region["mask"], h, w)
            ours = mask_utils.merge(ours) if isinstance(ours, list) else ours
            theirs = coco_api.annToRLE(ann)
            assert np.array_equal(mask_utils.decode(ours), mask_utils.decode(theirs))
            assert mask_utils.area(ours) == mask_utils.area(theirs)
            if isinstance(region["mask"], list):
                assert abs(sum(_shoelace(p) for p in region["mask"]) - ann["area"]) <= 1.0
                checked["polygon"] += 1
            else:
                assert region["mask"] == ann["segmentation"]  # kept as given: list counts stay a list
                checked["rle"] += 1
    assert checked == {"polygon": 619, "rle": 5}


@pytest.mark.parametrize("include_crowd", [False, True])
def test_records_validate_against_schema(
    instances_path: Path, captions_path: Path, include_crowd: bool
) -> None:
    validator = record_validator()
    records = _records(iter_coco(instances_path, captions_path, include_crowd=include_crowd, tasks=BOTH))
    assert records
    for record in records:
        errors = [e.message for e in validator.iter_errors(record)]
        assert not errors, (record["id"], errors)


def test_ids_order_and_provenance(instances_path: Path, source: dict[str, Any]) -> None:
    records = _records(iter_coco(instances_path, tasks=BOTH))
    keys = [(r["image"]["id"], r["task"] != "instances", r["source"].get("category_id", 0)) for r in records]
    assert keys == sorted(keys)
    first = records[0]
    assert first["id"] == "coco:val2017:139:instances" and first["split"] == "val2017"
    # image 139's non-crowd annotations, by hand from the file
    mine = sorted(a["id"] for a in source["annotations"] if a["image_id"] == 139 and not a["iscrowd"])
    assert first["source"] == {"image_id": 139, "ann_ids": mine}
    assert [r["ann_id"] for r in first["regions"]] == mine
    cat = next(r for r in records if r["task"] == "category" and r["image"]["id"] == 139)
    assert cat["id"] == f"coco:val2017:139:cat{cat['source']['category_id']}"
    names = {c["id"]: c["name"] for c in source["categories"]}
    assert cat["text"] == names[cat["source"]["category_id"]]
    assert {r["label"] for r in cat["regions"]} == {cat["text"]}
    assert len({r["id"] for r in records}) == len(records)


def test_captions_ride_on_instances_records(instances_path: Path, captions_path: Path) -> None:
    caps = json.loads(captions_path.read_text())["annotations"]
    items = list(iter_coco(instances_path, captions_path, tasks=BOTH))
    inst = {r["image"]["id"]: r for r in _records(items) if r["task"] == "instances"}
    for image_id, record in inst.items():
        mine = sorted((c["id"], c["caption"]) for c in caps if c["image_id"] == image_id)
        assert record["captions"] == [t for _, t in mine]
        assert record["source"]["caption_ids"] == [i for i, _ in mine]
    assert all("captions" not in r for r in _records(items) if r["task"] == "category")
    assert not any(isinstance(i, Excluded) and i.reason == "caption.no_record" for i in items)


def test_fast_path_agrees_with_checked_path(source: dict[str, Any]) -> None:
    names = {c["id"]: c["name"] for c in source["categories"]}
    images = {i["id"]: check_image_entry(i, 0, "f") for i in source["images"]}
    ctx = AnnotationContext("f", names)
    fast = 0
    for ann in source["annotations"]:
        image = images[ann["image_id"]]
        quick = fast_region(ann, image.width, image.height, names)
        slow = checked_region(ann, image, ctx)
        if quick is not None:
            fast += 1
            assert dumps(quick) == dumps(slow)  # same keys, same order, same values
    assert fast == 619  # every polygon annotation; the 5 crowd RLE take the checked path


@pytest.mark.parametrize("include_crowd", [False, True])
def test_bytes_mode_is_byte_identical(
    instances_path: Path,
    captions_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    include_crowd: bool,
) -> None:
    def lines(path: Path) -> list[Any]:
        return [
            dumps_line(i) if isinstance(i, dict) else i
            for i in iter_coco(path, captions_path, include_crowd=include_crowd)
        ]

    expected = lines(instances_path)
    got = list(iter_coco(instances_path, captions_path, include_crowd=include_crowd, as_bytes=True))
    assert got == expected
    # many small chunks
    monkeypatch.setattr(json_chunks, "CHUNK_BYTES", 20_000)
    monkeypatch.setattr(json_chunks, "WINDOW_BYTES", 200_000)
    assert (
        list(iter_coco(instances_path, captions_path, include_crowd=include_crowd, as_bytes=True)) == expected
    )
    # pretty-printed: the chunked reader gives up, the whole-document parse gives the same records
    pretty = tmp_path / "instances_val2017.json"
    pretty.write_text(json.dumps(json.loads(instances_path.read_text()), indent=2))
    assert lines(pretty) == expected


def test_chunked_split_equals_whole_parse(instances_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(json_chunks, "WINDOW_BYTES", 100_000)
    data = instances_path.read_bytes()
    doc = json_chunks.split_array(data, "annotations", chunk_bytes=30_000)
    chunks = list(doc.chunks)
    whole = orjson.loads(data)
    assert len(chunks) > 5
    assert [a for c in chunks for a in c] == whole["annotations"]
    assert {k: v for k, v in doc.head.items() if k != "annotations"} == {
        k: v for k, v in whole.items() if k != "annotations"
    }


@pytest.mark.parametrize(
    ("name", "split"),
    [
        ("instances_val2017.json", "val2017"),
        ("instances_train2017.json", "train2017"),
        ("instances_val2017_sample.json", "val2017"),
        ("captions_val2014.json", "val2014"),
        ("instances.json", None),
        ("my_coco.json", None),
    ],
)
def test_split_from_filename(name: str, split: str | None) -> None:
    assert split_from_filename(name) == split


def test_decode_rle_string_matches_pycocotools(source: dict[str, Any]) -> None:
    crowd = next(a for a in source["annotations"] if a["iscrowd"])
    h, w = crowd["segmentation"]["size"]
    compressed = mask_utils.frPyObjects(crowd["segmentation"], h, w)
    assert decode_rle_string(compressed["counts"].decode()) == crowd["segmentation"]["counts"]


def test_compressed_rle_counts_kept_as_given(
    instances_path: Path, source: dict[str, Any], tmp_path: Path
) -> None:
    data = json.loads(json.dumps(source))
    crowd = next(a for a in data["annotations"] if a["iscrowd"])
    h, w = crowd["segmentation"]["size"]
    text = mask_utils.frPyObjects(crowd["segmentation"], h, w)["counts"].decode()
    crowd["segmentation"] = {"size": [h, w], "counts": text}
    path = tmp_path / "instances_val2017.json"
    path.write_text(json.dumps(data))
    region = next(
        r
        for rec in _records(iter_coco(path, include_crowd=True))
        for r in rec["regions"]
        if r["ann_id"] == crowd["id"]
    )
    assert region["mask"] == {"size": [h, w], "counts": text}


def test_cli_writes_records_and_json_summary(
    instances_path: Path, captions_path: Path, tmp_path: Path
) -> None:
    out = tmp_path / "coco.jsonl"
    result = CliRunner().invoke(
        app,
        [
            "ingest",
            "coco",
            "--instances",
            str(instances_path),
            "--captions",
            str(captions_path),
            "--out",
            str(out),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    lines = out.read_bytes().splitlines()
    # 79 images, all with non-crowd annotations: 79 instances records + the image x category pairs
    assert summary["written"] == len(lines)
    assert summary["units"]["annotations"]["excluded_by_reason"] == {"crowd": 5}
    for unit in summary["units"].values():
        assert unit["read"] == unit["kept"] + unit["excluded"] + unit["rejected"]
    assert summary["reconciles"] is True
    assert sum(json.loads(line)["task"] == "instances" for line in lines) == 79


def test_cli_stdout_records_summary_on_stderr(instances_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["ingest", "coco", "--instances", str(instances_path), "--out", "-", "--json"]
    )
    assert result.exit_code == 0
    records = [json.loads(line) for line in result.stdout.splitlines()]
    summary = json.loads(result.stderr)
    assert len(records) == summary["written"]
    assert records[0]["id"] == "coco:val2017:139:instances"


def test_cli_split_option_and_crowd(instances_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "o.jsonl"
    args = ["ingest", "coco", "--instances", str(instances_path), "--out", str(out), "--split", "mini"]
    result = CliRunner().invoke(app, [*args, "--include-crowd"])
    assert result.exit_code == 0, result.stderr
    assert "excluded 0" in result.stderr
    records = [json.loads(line) for line in out.read_bytes().splitlines()]
    assert records[0]["id"] == "coco:mini:139:instances"
    assert sum(r["iscrowd"] for rec in records if rec["task"] == "instances" for r in rec["regions"]) == 5


def test_sample_data_ingests(sample_data: Path, tmp_path: Path) -> None:
    coco = sample_data / "coco"
    out = tmp_path / "sample.jsonl"
    result = CliRunner().invoke(
        app,
        [
            "ingest",
            "coco",
            "--instances",
            str(coco / "annotations" / "instances_val2017_sample.json"),
            "--captions",
            str(coco / "annotations" / "captions_val2017_sample.json"),
            "--images",
            str(coco / "val2017"),
            "--out",
            str(out),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    records = [json.loads(line) for line in out.read_bytes().splitlines()]
    assert sum(r["task"] == "instances" for r in records) == 12
    # the units, counted here from the files themselves: every image has a non-crowd annotation
    source = json.loads((coco / "annotations" / "instances_val2017_sample.json").read_bytes())
    captions = json.loads((coco / "annotations" / "captions_val2017_sample.json").read_bytes())
    crowd = sum(a["iscrowd"] for a in source["annotations"])
    n_images, n_anns, n_caps = len(source["images"]), len(source["annotations"]), len(captions["annotations"])
    assert (n_images, crowd) == (12, 2)
    units = {k: (u["read"], u["kept"], u["excluded"], u["rejected"]) for k, u in summary["units"].items()}
    assert units == {
        "images": (n_images, n_images, 0, 0),
        "annotations": (n_anns, n_anns - crowd, crowd, 0),
        "captions": (n_caps, n_caps, 0, 0),
    }
    assert summary["units"]["annotations"]["excluded_by_reason"] == {"crowd": 2}
    assert sum(len(r["regions"]) for r in records) == n_anns - crowd
    assert sum(len(r["captions"]) for r in records) == n_caps
    assert summary["reconciles"] is True and summary["written"] == len(records)
    assert all(r["split"] == "val2017" for r in records)


# ---------------------------------------------------------------------------------------------- record tasks


def test_default_tasks_write_instances_records_only(instances_path: Path, tmp_path: Path) -> None:
    records = _records(iter_coco(instances_path))
    assert {r["task"] for r in records} == {"instances"}
    assert len(records) == 79  # every fixture image has a non-crowd annotation
    only_cat = _records(iter_coco(instances_path, tasks=["category"]))
    assert {r["task"] for r in only_cat} == {"category"}
    out = tmp_path / "o.jsonl"
    args = ["ingest", "coco", "--instances", str(instances_path), "--out", str(out)]
    assert CliRunner().invoke(app, args).exit_code == 0
    default = out.read_bytes()
    assert len(default.splitlines()) == 79
    result = CliRunner().invoke(app, [*args, "--tasks", "instances, category"])
    assert result.exit_code == 0, result.stderr
    both = out.read_bytes().splitlines()
    assert [line for line in both if b'"task":"instances"' in line] == default.splitlines()
    assert len(both) == len(_records(iter_coco(instances_path, tasks=BOTH)))


@pytest.mark.parametrize("tasks", ["", "instance", "instances,captions", ","])
def test_bad_tasks_option_is_a_usage_error(instances_path: Path, tmp_path: Path, tasks: str) -> None:
    out = tmp_path / "o.jsonl"
    result = CliRunner().invoke(
        app, ["ingest", "coco", "--instances", str(instances_path), "--out", str(out), "--tasks", tasks]
    )
    assert result.exit_code == 2
    assert "--tasks" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()


# ------------------------------------------------------------------------------------------- forked reading


@pytest.fixture
def forked(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Read even small files with forked workers, one ~20 kB slice each (every slice boundary is a process
    boundary); the list counts the forked reads."""
    from gtok_cli.ingest import coco, coco_scan

    calls: list[int] = []
    real = coco.scan_forked

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(coco, "scan_forked", spy)
    monkeypatch.setattr(coco, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(coco, "usable_cpus", lambda: 4)
    monkeypatch.setattr(coco, "MAX_PROCESSES", 4)
    monkeypatch.setattr(coco_scan, "shares", lambda bounds, n, weight=1.0: [[b] for b in bounds])
    monkeypatch.setattr(json_chunks, "CHUNK_BYTES", 20_000)
    monkeypatch.setattr(json_chunks, "WINDOW_BYTES", 200_000)
    return calls


# the children's scans come back through shared memory, or (too big for it) through the pipe
@pytest.mark.parametrize("through_pipe", [False, True])
@pytest.mark.parametrize("include_crowd", [False, True])
def test_forked_read_is_byte_identical(
    instances_path: Path,
    captions_path: Path,
    include_crowd: bool,
    through_pipe: bool,
    forked: list[int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from gtok_cli.ingest import coco, coco_scan

    if through_pipe:
        monkeypatch.setattr(coco_scan, "result_room", lambda run: 64)

    def lines() -> list[Any]:
        return list(
            iter_coco(instances_path, captions_path, include_crowd=include_crowd, tasks=BOTH, as_bytes=True)
        )

    forked_lines = lines()
    assert forked == [1]
    coco.MAX_PROCESSES = 1  # restored by monkeypatch
    assert lines() == forked_lines
    assert forked == [1]


def _small_ann(image_id: int, ann_id: int, bbox: list[float] | None = None) -> dict[str, Any]:
    return {
        "segmentation": [[10.0, 10.0, 20.0, 10.0, 20.0, 20.0]],
        "area": 50.0,
        "iscrowd": 0,
        "image_id": image_id,
        "bbox": bbox or [10.0, 10.0, 10.0, 10.0],
        "category_id": 1,
        "id": ann_id,
    }


@pytest.mark.parametrize(
    "order", [["ok", "bad", "dup", "other"], ["ok", "dup", "bad", "other"], ["dup", "other", "ok", "bad"]]
)
@pytest.mark.parametrize("fork", [False, True])
def test_bad_annotation_rejects_itself_in_any_slice(
    source: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    forked: list[int],
    order: list[str],
    fork: bool,
) -> None:
    """A bad annotation and a duplicated id, each in its own slice (and process): each bad annotation is one
    rejection, the images keep their good annotations and are marked incomplete, whatever the order."""
    from gtok_cli.ingest import coco

    if not fork:
        monkeypatch.setattr(coco, "MAX_PROCESSES", 1)
    monkeypatch.setattr(json_chunks, "CHUNK_BYTES", 1)  # one annotation per slice
    monkeypatch.setattr(json_chunks, "WINDOW_BYTES", 1_000)
    anns = {
        "ok": _small_ann(139, 1),
        "bad": _small_ann(139, 2, bbox=[10.0, 10.0, 0.0, 5.0]),
        "dup": _small_ann(139, 77),
        "other": _small_ann(18575, 77),
    }
    padding = [_small_ann(18575, 100 + k) for k in range(12)]  # the last ~1 kB is one slice
    data = {
        "images": [i for i in source["images"] if i["id"] in (139, 18575)],
        "annotations": [anns[k] for k in order] + padding,
        "categories": source["categories"],
    }
    path = tmp_path / "instances_val2017.json"
    path.write_text(json.dumps(data))
    items = list(iter_coco(path, as_bytes=True))
    assert forked == ([1] if fork else [])
    rejected = sorted(
        (i.ids["image_id"], i.ids["ann_id"], i.error.reason) for i in items if isinstance(i, Rejected)
    )
    assert rejected == [(139, 2, "bbox.nonpositive"), (139, 77, "id.duplicate"), (18575, 77, "id.duplicate")]
    written = [orjson.loads(i) for i in items if isinstance(i, bytes)]
    assert [(r["source"]["ann_ids"], r["incomplete"]) for r in written] == [
        ([1], {"rejected_annotations": 2}),
        (list(range(100, 112)), {"rejected_annotations": 1}),
    ]
    stats = run_ingest(items, tmp_path / "out.jsonl", on_error="skip")
    assert stats.units["annotations"].to_json()["read"] == 16
    assert (stats.units["annotations"].kept, stats.units["annotations"].rejected) == (13, 3)


def test_forked_worker_failure_falls_back_to_whole_parse(
    source: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, forked: list[int]
) -> None:
    """A slice boundary guessed inside a string ("},{" in a value) makes that slice unparseable in its worker;
    the read falls back to parsing the whole document and gives what one process gives."""
    from gtok_cli.ingest import coco

    monkeypatch.setattr(json_chunks, "CHUNK_BYTES", 1)
    monkeypatch.setattr(json_chunks, "WINDOW_BYTES", 1_000)
    anns = [_small_ann(139, k) for k in range(1, 20)]
    anns[8]["note"] = 'a "},{" inside a string'
    data = {
        "images": [i for i in source["images"] if i["id"] == 139],
        "annotations": anns,
        "categories": source["categories"],
    }
    path = tmp_path / "instances_val2017.json"
    path.write_text(json.dumps(data, separators=(",", ":")))
    got = list(iter_coco(path, as_bytes=True))
    assert forked == [1]
    assert [orjson.loads(i)["source"]["ann_ids"] for i in got if isinstance(i, bytes)] == [list(range(1, 20))]
    monkeypatch.setattr(coco, "MAX_PROCESSES", 1)
    assert list(iter_coco(path, as_bytes=True)) == got


@pytest.mark.parametrize(
    ("n", "weight", "want"),
    [
        (1, 1.0, [10]),
        (2, 1.0, [5, 5]),
        (2, 1.5, [6, 4]),  # 1.5 : 1 of 10 slices → 6 : 4
        (2, 1.25, [6, 4]),  # 5.56 : 4.44 → the first run closes at the first slice past its share
        (3, 1.0, [4, 3, 3]),
        (4, 2.0, [4, 2, 2, 2]),
        (20, 1.0, [1] * 10),  # never more runs than slices
    ],
)
def test_shares_split_contiguously_by_weight(n: int, weight: float, want: list[int]) -> None:
    from gtok_cli.ingest.coco_scan import shares

    bounds = [(k * 100, (k + 1) * 100) for k in range(10)]
    runs = shares(bounds, n, weight)
    assert [len(r) for r in runs] == want
    assert [b for r in runs for b in r] == bounds  # contiguous, in order, nothing lost
