"""gtok ingest vg on files in the Visual Genome v1.2 layout (tests/data/vg: COCO val2017 boxes re-expressed as
VG regions / objects / relationships, see tests/data/README.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from _source_helpers import DATA, export_and_verify, ingest, reconciles, rejects

VG = DATA / "vg"
FILES = (
    "--image-data",
    VG / "image_data.json",
    "--regions",
    VG / "region_descriptions.json",
    "--objects",
    VG / "objects.json",
    "--relationships",
    VG / "relationships.json",
)


def load(name: str) -> Any:
    return json.loads((VG / name).read_text())


def test_records_equal_an_independent_reading(tmp_path: Path) -> None:
    code, output, records, summary = ingest("vg", *FILES, "--out", tmp_path / "vg.jsonl")
    assert code == 0, output
    assert summary is not None and reconciles(summary)
    images = {im["image_id"]: im for im in load("image_data.json")}
    # regions: one referring record each, box = x, y, x + w, y + h
    want = {}
    for entry in load("region_descriptions.json"):
        for r in entry["regions"]:
            want[f"vg:{entry['id']}:region{r['region_id']}"] = (
                r["phrase"],
                [r["x"], r["y"], r["x"] + r["width"], r["y"] + r["height"]],
                entry["id"],
            )
    got = {rec["id"]: rec for rec in records if rec["task"] == "referring"}
    assert set(got) == set(want)
    for rid, (phrase, box, iid) in want.items():
        rec = got[rid]
        assert rec["text"] == phrase and rec["regions"][0]["bbox"] == box
        url = images[iid]["url"]
        assert rec["image"] == {
            "file": "/".join(url.split("/")[-2:]),
            "width": images[iid]["width"],
            "height": images[iid]["height"],
            "id": iid,
        }
        assert rec["source"]["coco_id"] == images[iid]["coco_id"]
    # objects + relationships on one instances record per image
    objs = {rec["image"]["id"]: rec for rec in records if rec["task"] == "instances"}
    for entry in load("objects.json"):
        rec = objs[entry["image_id"]]
        assert rec["exhaustive"] is False
        assert [(r["ann_id"], r["label"], r["bbox"]) for r in rec["regions"]] == [
            (o["object_id"], o["names"][0], [o["x"], o["y"], o["x"] + o["w"], o["y"] + o["h"]])
            for o in entry["objects"]
        ]
    for entry in load("relationships.json"):
        rels = objs[entry["image_id"]]["relations"]
        assert [
            (r["relationship_id"], r["predicate"], r["subject"]["object_id"], r["object"]["bbox"])
            for r in rels
        ] == [
            (
                r["relationship_id"],
                r["predicate"],
                r["subject"]["object_id"],
                [
                    r["object"]["x"],
                    r["object"]["y"],
                    r["object"]["x"] + r["object"]["w"],
                    r["object"]["y"] + r["object"]["h"],
                ],
            )
            for r in entry["relationships"]
        ]
    n_regions = sum(len(e["regions"]) for e in load("region_descriptions.json"))
    assert summary["units"]["regions"]["kept"] == n_regions == len(got)


def test_image_key_id_or_image_id(tmp_path: Path) -> None:
    """image_data with "id" (the files) and region entries with "image_id" (the docs): same records."""
    data = load("image_data.json")
    for im in data:
        im["id"] = im.pop("image_id")
    (tmp_path / "image_data.json").write_text(json.dumps(data))
    regions = load("region_descriptions.json")
    for entry in regions:
        entry["image_id"] = entry.pop("id")
    (tmp_path / "regions.json").write_text(json.dumps(regions))
    a = ingest(
        "vg",
        "--image-data",
        tmp_path / "image_data.json",
        "--regions",
        tmp_path / "regions.json",
        "--out",
        tmp_path / "a.jsonl",
    )
    b = ingest("vg", *FILES[:4], "--out", tmp_path / "b.jsonl")
    assert a[0] == b[0] == 0
    assert a[2] == b[2]


def test_referring_records_export_and_verify(tmp_path: Path) -> None:
    out = tmp_path / "vg.jsonl"
    assert ingest("vg", *FILES[:4], "--out", out)[0] == 0
    export_and_verify(out, tmp_path, "rec", ("qwen2.5-vl", "grid"))


def test_objects_never_claim_every_instance(tmp_path: Path) -> None:
    out = tmp_path / "vg.jsonl"
    assert ingest("vg", *FILES[:2], *FILES[4:], "--out", out)[0] == 0
    from _export_helpers import gtok

    res = gtok(
        "export", out, "--scheme", "bins", "--task", "detect", "--out", tmp_path / "d", "--allow-empty"
    )
    assert res.exit_code == 0, res.output
    manifest = json.loads((tmp_path / "d" / "manifest.json").read_text())
    assert manifest["counts"]["written"] == 0
    assert manifest["counts"]["skipped"] == {"record.not_exhaustive": 3}


def _mutate(tmp_path: Path, name: str, change: Any) -> Path:
    data = load(name)
    change(data)
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


BAD = [
    ("wrong type", lambda d: d[0]["regions"][0].__setitem__("x", "12"), "field.type", "field x"),
    ("missing key", lambda d: d[0]["regions"][0].pop("phrase"), "field.missing", "field phrase"),
    ("box outside", lambda d: d[0]["regions"][0].__setitem__("width", 5000), "bbox.outside", "x,y,w,h"),
    (
        "duplicate id",
        lambda d: d[1]["regions"][0].__setitem__("region_id", d[0]["regions"][0]["region_id"]),
        "id.duplicate",
        "region_id",
    ),
    ("other image", lambda d: d[0]["regions"][0].__setitem__("image_id", 7), "image.mismatch", "image_id"),
]


@pytest.mark.parametrize(("case", "change", "reason", "named"), BAD, ids=[b[0] for b in BAD])
def test_bad_region_fails_or_is_a_counted_reject(
    tmp_path: Path, case: str, change: Any, reason: str, named: str
) -> None:
    regions = _mutate(tmp_path, "region_descriptions.json", change)
    args = ("vg", "--image-data", VG / "image_data.json", "--regions", regions)
    code, output, _, _ = ingest(*args, "--out", tmp_path / "fail.jsonl")
    assert code == 2 and named in output and "region_descriptions.json" in output
    assert "Traceback" not in output and not (tmp_path / "fail.jsonl").exists()
    code, output, records, summary = ingest(*args, "--out", tmp_path / "skip.jsonl", "--on-error", "skip")
    assert code == 0, output
    assert summary is not None and reconciles(summary)
    assert summary["units"]["regions"]["rejected_by_reason"] == {reason: 1}
    [line] = rejects(tmp_path / "skip.jsonl.rejects.jsonl")
    assert line["reason"] == reason and line["item"] == "region"
    assert len(records) == summary["units"]["regions"]["read"] - 1


def test_truncated_file(tmp_path: Path) -> None:
    text = (VG / "region_descriptions.json").read_text()
    bad = tmp_path / "regions.json"
    bad.write_text(text[: len(text) // 2])
    args = ("vg", "--image-data", VG / "image_data.json", "--regions", bad)
    code, output, _, _ = ingest(*args, "--out", tmp_path / "o.jsonl")
    assert code == 2 and "not valid JSON" in output and "regions.json" in output
    # a broken file stops the run under skip too: what follows the break cannot be read
    code, output, _, _ = ingest(*args, "--out", tmp_path / "s.jsonl", "--on-error", "skip")
    assert code == 2 and "not valid JSON" in output


def test_bad_entry_and_bad_image_are_counted(tmp_path: Path) -> None:
    images = _mutate(tmp_path, "image_data.json", lambda d: d[0].__setitem__("width", "640"))
    regions = _mutate(tmp_path, "region_descriptions.json", lambda d: d[1].__setitem__("regions", None))
    code, output, records, summary = ingest(
        "vg",
        "--image-data",
        images,
        "--regions",
        regions,
        "--out",
        tmp_path / "o.jsonl",
        "--on-error",
        "skip",
    )
    assert code == 0, output
    assert summary is not None and reconciles(summary)
    first = load("region_descriptions.json")
    assert summary["units"]["images"]["rejected"] == 1
    assert summary["units"]["entries"]["rejected"] == 1
    assert summary["units"]["regions"]["excluded_by_reason"] == {"image.rejected": len(first[0]["regions"])}
    assert len(records) == len(first[2]["regions"])


def test_usage_errors(tmp_path: Path) -> None:
    code, output, _, _ = ingest("vg", "--image-data", VG / "image_data.json", "--out", tmp_path / "o.jsonl")
    assert code == 2 and "--regions" in output
    code, output, _, _ = ingest("vg", *FILES[:2], *FILES[6:], "--out", tmp_path / "o.jsonl")
    assert code == 2 and "--objects" in output


def test_images_checked_on_disk(tmp_path: Path) -> None:
    """--images: an image missing from the folder rejects its image entry; its regions go with it."""
    folder = tmp_path / "VG"
    (folder / "VG_100K_2").mkdir(parents=True)
    args = ("vg", *FILES[:4], "--images", folder)
    code, output, _, _ = ingest(*args, "--out", tmp_path / "f.jsonl")
    assert code == 2 and "image file not found" in output
    code, output, _, _ = ingest(*args, "--out", tmp_path / "s.jsonl", "--on-error", "skip")
    assert code == 2 and "no records written" in output  # every image is missing


def test_seen_ids_bitmap_and_fallback() -> None:
    from gtok_cli.ingest.seen_ids import SeenIds

    seen = SeenIds()
    keys = [0, 7, 8, 2**32 - 1, 2**32, -1, "7", True, 10**20]
    assert [seen.add(k) for k in keys] == [False] * len(keys)
    assert [seen.add(k) for k in keys] == [True] * len(keys)
    assert seen.add(9) is False and seen.add(6) is False


def test_images_resolve_under_their_url_folder(tmp_path: Path, coco_fixtures: Path) -> None:
    import shutil

    folder = tmp_path / "VG"
    for im in load("image_data.json"):
        sub, name = im["url"].split("/")[-2:]
        (folder / sub).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(coco_fixtures / "val2017" / f"{im['coco_id']:012d}.jpg", folder / sub / name)
    code, output, records, _ = ingest("vg", *FILES[:4], "--images", folder, "--out", tmp_path / "o.jsonl")
    assert code == 0, output
    assert {r["image"]["file"] for r in records} == {
        "VG_100K_2/2400000.jpg",
        "VG_100K_2/2400001.jpg",
        "VG_100K_2/2400002.jpg",
    }


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"x": 1.5},  # float coordinates: the checked path only
        {"region_id": None, "id": 77},  # "id" for "region_id" (the driver accepts both)
        {"width": 0},
        {"phrase": "  "},
        {"image_id": 5},
    ],
)
def test_fast_and_checked_region_paths_agree(change: dict[str, Any]) -> None:
    from gtok_cli.errors import InputError
    from gtok_cli.ingest.seen_ids import SeenIds
    from gtok_cli.ingest.vg import VgImage, _fast_region_record, _Reader

    image = VgImage(2400000, "VG_100K_2/2400000.jpg", 640, 426, 139, None)
    reader = _Reader("image_data.json", None)
    for region in load("region_descriptions.json")[0]["regions"]:
        region = {**region, **change}
        if region.get("region_id") is None:
            region.pop("region_id")
        fast = _fast_region_record(region, image, SeenIds())
        try:
            checked: Any = reader._region_record(region, 0, image, "r.json", SeenIds())
        except InputError:
            checked = None
        if fast is not None:
            assert fast == checked
        assert (fast is None) == (change != {})
