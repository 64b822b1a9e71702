"""Issue 12, ingest side: one table per row, driving the CLI on the repo's sample data (sample_data/).

- damaged ``.gz`` input (row 4): one line naming the file, the line reached and gzip's reason; exit 2;
  nothing written;
- nothing written (row 5): exit 2 naming what was read and the likely fix, no file left; ``--allow-empty``;
- ``--on-error skip`` (row 6): a bad annotation / object / ref is one reject line and takes nothing else
  with it; an ``instances`` record missing a rejected annotation is ``incomplete`` and export skips it for
  detect only;
- summary counts (row 7): per unit, counted here from the source files, read = kept + excluded + rejected.
"""

from __future__ import annotations

import copy
import gzip
import json
import pickle
import re
import shutil
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from gtok_cli.cli import app

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "sample_data"
COCO_INSTANCES = SAMPLE / "coco" / "annotations" / "instances_val2017_sample.json"
COCO_CAPTIONS = SAMPLE / "coco" / "annotations" / "captions_val2017_sample.json"
REFS = SAMPLE / "refcoco" / "refs(unc).p"
REF_INSTANCES = SAMPLE / "refcoco" / "instances.json"
FLICKR = SAMPLE / "flickr30k"

runner = CliRunner()


def one_error_line(result: Any) -> str:
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("gtok: error: ")
    return lines[0]


def files_under(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file())


# ---------------------------------------------------------------------------------------------- row 4: .gz


def _truncate(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _bad_crc(data: bytes) -> bytes:
    b = bytearray(data)
    b[-8] ^= 0xFF  # the trailer's CRC-32 (the last 8 bytes: CRC-32, then the length)
    return bytes(b)


def _bad_block(data: bytes) -> bytes:
    b = bytearray(data)
    b[10] |= 0x06  # the first deflate block's type bits (after the 10-byte header) → 3, a reserved type
    return bytes(b)


DAMAGE: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "truncated": (_truncate, "Compressed file ended before the end-of-stream marker was reached"),
    "flipped CRC byte": (_bad_crc, "CRC check failed"),
    "flipped block-type bits": (_bad_block, "invalid block type"),
}


def line_reached(damaged: bytes) -> int:
    """The uncompressed line a reader is on when the damage stops it, worked out with zlib directly:
    1 + the newlines of what decompresses before the damage (the CRC is checked only at the end)."""
    unzip = zlib.decompressobj(wbits=-15)  # raw deflate: no header, no CRC check
    body = damaged[10:]
    text = b""
    for k in range(len(body)):
        try:
            text += unzip.decompress(body[k : k + 1])
        except zlib.error:
            break
        if unzip.eof:
            break
    return text.count(b"\n") + 1


@pytest.fixture(scope="module")
def records_gz(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The sample COCO records as a .jsonl.gz (written by ingest, read back whole to check it)."""
    out = tmp_path_factory.mktemp("gz") / "records.jsonl.gz"
    result = runner.invoke(app, ["ingest", "coco", "--instances", str(COCO_INSTANCES), "--out", str(out)])
    assert result.exit_code == 0, result.output
    data = out.read_bytes()
    assert gzip.decompress(data).count(b"\n") == 12
    return data


GZ_COMMANDS: dict[str, Callable[[Path, Path], list[str]]] = {
    "export": lambda src, out: ["export", str(src), "-s", "bins", "-t", "detect", "-o", str(out)],
    "masks": lambda src, out: ["masks", str(src), "-o", str(out)],
}


@pytest.mark.parametrize("damage", list(DAMAGE))
@pytest.mark.parametrize("command", list(GZ_COMMANDS))
def test_damaged_gz_records_one_line_exit_2(
    records_gz: bytes, tmp_path: Path, command: str, damage: str
) -> None:
    corrupt, reason = DAMAGE[damage]
    src = tmp_path / "records.jsonl.gz"
    src.write_bytes(corrupt(records_gz))
    out = tmp_path / ("out" if command == "export" else "out.jsonl")
    line = one_error_line(runner.invoke(app, GZ_COMMANDS[command](src, out)))
    expected_line = line_reached(src.read_bytes())
    if damage == "flipped CRC byte":
        assert expected_line == 13  # all 12 lines decompress; the CRC fails at the end
    assert f"{src}: damaged gzip data, reading line {expected_line}: " in line and reason in line
    assert not out.is_file() and (not out.is_dir() or files_under(out) == [])


@pytest.mark.parametrize("damage", list(DAMAGE))
@pytest.mark.parametrize("source", ["coco", "refcoco"])
def test_damaged_gz_ingest_input(tmp_path: Path, source: str, damage: str) -> None:
    """ingest reads a .json.gz instances file (COCO and RefCOCO); damaged, it is one line and exit 2."""
    corrupt, reason = DAMAGE[damage]
    plain = COCO_INSTANCES if source == "coco" else REF_INSTANCES
    good = tmp_path / "good" / "instances_val2017.json.gz"
    good.parent.mkdir()
    good.write_bytes(gzip.compress(plain.read_bytes(), mtime=0))
    bad = tmp_path / "instances_val2017.json.gz"
    bad.write_bytes(corrupt(good.read_bytes()))
    if source == "coco":
        args = ["ingest", "coco", "--instances"]
    else:
        args = ["ingest", "refcoco", "--dataset", "refcoco", "--refs", str(REFS), "--instances"]
    ok = runner.invoke(app, [*args, str(good), "--out", str(tmp_path / "ok.jsonl")])
    assert ok.exit_code == 0, ok.output  # the undamaged .gz reads like the plain file
    plain_out = tmp_path / "plain.jsonl"
    assert runner.invoke(app, [*args, str(plain), "--out", str(plain_out)]).exit_code == 0
    assert (tmp_path / "ok.jsonl").read_bytes() == plain_out.read_bytes()
    out = tmp_path / "out.jsonl"
    line = one_error_line(runner.invoke(app, [*args, str(bad), "--out", str(out)]))
    assert f"{bad}: damaged gzip data, reading line {line_reached(bad.read_bytes())}: " in line
    assert line.endswith(reason)
    assert not out.exists()


# ---------------------------------------------------------------------------------------------- row 5: empty


def _coco_without_images(tmp: Path) -> list[str]:
    data = json.loads(COCO_INSTANCES.read_bytes())
    path = tmp / "instances_val2017.json"
    path.write_text(json.dumps({**data, "images": [], "annotations": []}))
    return ["ingest", "coco", "--instances", str(path)]


def _coco_every_image_bad(tmp: Path) -> list[str]:
    data = json.loads(COCO_INSTANCES.read_bytes())
    for img in data["images"]:
        img["width"] = 0
    path = tmp / "instances_val2017.json"
    path.write_text(json.dumps(data))
    return [
        "ingest",
        "coco",
        "--instances",
        str(path),
        "--on-error",
        "skip",
        "--rejects",
        str(tmp / "rej.jsonl"),
    ]


def _refcoco_split(split: str) -> Callable[[Path], list[str]]:
    def args(tmp: Path) -> list[str]:
        base = ["ingest", "refcoco", "--dataset", "refcoco", "--refs", str(REFS), "--instances"]
        return [*base, str(REF_INSTANCES), "--split", split]

    return args


def _flickr(swapped: bool = False, empty: bool = False) -> Callable[[Path], list[str]]:
    def args(tmp: Path) -> list[str]:
        ann, sent = FLICKR / "Annotations", FLICKR / "Sentences"
        if empty:
            sent = tmp / "Sentences"
            sent.mkdir()
        if swapped:
            ann, sent = sent, ann
        return ["ingest", "flickr30k", "--annotations", str(ann), "--sentences", str(sent)]

    return args


EMPTY_CASES = [
    # (id, args, words in the one line, --allow-empty accepts it)
    (
        "coco no images",
        _coco_without_images,
        ["read 0 images, 0 annotations", "the file has no images"],
        True,
    ),
    ("coco every image rejected", _coco_every_image_bad, ["read 12 images", "field.type 12"], True),
    (
        "refcoco split with no refs",
        _refcoco_split("testC"),
        [
            "refs(unc).p: no records written: read 0 refs, 0 sentences",
            "--split testC: no refs with that split; splits present: train, val, testA, testB",
        ],
        True,
    ),
    ("flickr empty sentences", _flickr(empty=True), ["read 0 images", "no <id>.txt files in"], True),
    (
        "flickr swapped folders",
        _flickr(swapped=True),
        ["look swapped", "--annotations takes Annotations/"],
        False,
    ),
]


@pytest.mark.parametrize(
    ("build", "words", "allowed"), [c[1:] for c in EMPTY_CASES], ids=[c[0] for c in EMPTY_CASES]
)
def test_nothing_written_is_an_error(
    tmp_path: Path, build: Callable[[Path], list[str]], words: list[str], allowed: bool
) -> None:
    out = tmp_path / "out.jsonl"
    args = [*build(tmp_path), "--out", str(out)]
    line = one_error_line(runner.invoke(app, args))
    for word in words:
        assert word in line, line
    assert ("--allow-empty" in line) is allowed
    assert not out.exists() and not (tmp_path / "rej.jsonl").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp file left
    result = runner.invoke(app, [*args, "--allow-empty"])
    if allowed:
        assert result.exit_code == 0, result.output
        assert out.read_bytes() == b""  # a valid, empty JSONL file
    else:
        assert result.exit_code == 2 and not out.exists()


# ---------------------------------------------------------------------------------------------- row 6: skip


def _coco_two_bad_annotations(tmp: Path) -> Path:
    """Image 139-like: the sample image with the most annotations, two of them broken (different fields)."""
    data = json.loads(COCO_INSTANCES.read_bytes())
    by_image: dict[int, list[dict[str, Any]]] = {}
    for ann in data["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    iid = max(by_image, key=lambda i: len(by_image[i]))
    anns = sorted((a for a in by_image[iid] if not a["iscrowd"]), key=lambda a: a["id"])
    anns[0]["bbox"] = [10, 10, 0, 5]
    anns[-1]["category_id"] = 999
    path = tmp / "instances_val2017.json"
    path.write_text(json.dumps(data))
    return path


def test_skip_keeps_the_good_annotations_and_rejects_each_bad_one(tmp_path: Path) -> None:
    path = _coco_two_bad_annotations(tmp_path)
    data = json.loads(path.read_bytes())
    broken = [a for a in data["annotations"] if a["bbox"] == [10, 10, 0, 5] or a["category_id"] == 999]
    iid = broken[0]["image_id"]
    total = sum(a["image_id"] == iid for a in data["annotations"])
    assert total >= 11  # "11 good annotations gone" is what this guards
    out, rejects = tmp_path / "out.jsonl", tmp_path / "rej.jsonl"
    args = ["ingest", "coco", "--instances", str(path), "--out", str(out), "--on-error", "skip"]
    result = runner.invoke(app, [*args, "--rejects", str(rejects), "--json"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in rejects.read_bytes().splitlines()]
    assert [(r["item"], r["image_id"], r["ann_id"], r["field"], r["reason"]) for r in rows] == [
        ("annotation", iid, broken[0]["id"], "bbox", "bbox.nonpositive"),
        ("annotation", iid, broken[1]["id"], "category_id", "category.unknown"),
    ]
    assert all(
        r["file"] == str(path) and f"annotation {r['ann_id']} (image {iid})" == r["record"] for r in rows
    )
    records = {r["image"]["id"]: r for r in map(json.loads, out.read_bytes().splitlines())}
    kept = records[iid]
    crowd = sum(a["iscrowd"] for a in data["annotations"] if a["image_id"] == iid)
    assert len(kept["regions"]) == total - 2 - crowd
    assert {r["ann_id"] for r in kept["regions"]} & {a["id"] for a in broken} == set()
    assert kept["incomplete"] == {"rejected_annotations": 2}
    assert all("incomplete" not in r for i, r in records.items() if i != iid)
    summary = json.loads(result.stdout)
    assert summary["units"]["annotations"]["rejected_by_reason"] == {
        "bbox.nonpositive": 1,
        "category.unknown": 1,
    }
    assert summary["units"]["images"]["kept"] == 12

    from gtok_cli.records import record_validator

    assert not list(record_validator().iter_errors(kept))  # the schema knows "incomplete"

    # export: detect skips the incomplete record (and says so); multi still uses it
    for task, skipped in (("detect", {"record.incomplete": 1}), ("multi", {})):
        folder = tmp_path / task
        done = runner.invoke(app, ["export", str(out), "-s", "bins", "-t", task, "-o", str(folder)])
        assert done.exit_code == 0, done.output
        counts = json.loads((folder / "manifest.json").read_bytes())["counts"]
        assert counts["skipped"] == skipped, counts


def test_skip_flickr_bad_box_rejects_that_object_only(tmp_path: Path) -> None:
    ann_dir, sent_dir = tmp_path / "Annotations", tmp_path / "Sentences"
    shutil.copytree(FLICKR / "Sentences", sent_dir)
    ann_dir.mkdir()
    xml = (FLICKR / "Annotations" / "4945942737.xml").read_text()
    # chain 221796 ("A girl", 1 box): its box made invalid; every other object stays good
    broken = re.sub(r"(<name>221796</name>\s*<bndbox>\s*<xmin>)\d+", r"\g<1>999", xml, count=1)
    assert broken != xml
    (ann_dir / "4945942737.xml").write_text(broken)
    out, rejects = tmp_path / "out.jsonl", tmp_path / "rej.jsonl"
    args = [
        "ingest",
        "flickr30k",
        "--annotations",
        str(ann_dir),
        "--sentences",
        str(sent_dir),
        "--out",
        str(out),
    ]
    result = runner.invoke(app, [*args, "--on-error", "skip", "--rejects", str(rejects), "--json"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in rejects.read_bytes().splitlines()]
    assert [(r["item"], r["image_id"], r["field"], r["reason"]) for r in rows] == [
        ("object", "4945942737", "bndbox", "bbox.nonpositive")
    ]
    records = [json.loads(line) for line in out.read_bytes().splitlines()]
    # every caption with another boxed phrase is still written (worked out from the files)
    root = ET.fromstring(xml)
    boxed = {
        n.text for o in root.findall("object") if o.find("bndbox") is not None for n in o.findall("name")
    }
    lines = [x for x in (sent_dir / "4945942737.txt").read_text().split("\n") if x]
    chains = [re.findall(r"\[/EN#(\d+)/", line) for line in lines]
    assert len(records) == sum(bool(set(c) & (boxed - {"221796"})) for c in chains) == 4
    girls = [r for r in records if any(g["chain_id"] == "221796" for g in r["regions"])]
    assert girls == []  # the chain's only box was rejected: its phrases are excluded, counted
    summary = json.loads(result.stdout)
    phrases = summary["units"]["phrases"]
    girl_phrases = sum(c.count("221796") for c in chains)
    assert girl_phrases >= 2
    assert phrases["excluded_by_reason"] == {"box.rejected": girl_phrases, "no_box": 7}
    assert summary["units"]["captions"]["excluded_by_reason"] == {"no_grounded_phrase": 1}
    assert summary["units"]["objects"] == {
        "read": 7,
        "kept": 6,
        "excluded": 0,
        "rejected": 1,
        "excluded_by_reason": {},
        "rejected_by_reason": {"bbox.nonpositive": 1},
        "reconciles": True,
    }


def test_skip_refcoco_bad_ref_is_one_line(tmp_path: Path) -> None:
    refs = pickle.loads(REFS.read_bytes(), encoding="latin1")
    bad = copy.deepcopy(refs)
    victim = next(r for r in bad if len(r["sentences"]) >= 2)
    victim["ann_id"] = 999999999
    path = tmp_path / "refs(unc).p"
    path.write_bytes(pickle.dumps(bad, protocol=2))
    out, rejects = tmp_path / "out.jsonl", tmp_path / "rej.jsonl"
    args = [
        "ingest",
        "refcoco",
        "--dataset",
        "refcoco",
        "--refs",
        str(path),
        "--instances",
        str(REF_INSTANCES),
    ]
    result = runner.invoke(
        app, [*args, "--out", str(out), "--on-error", "skip", "--rejects", str(rejects), "--json"]
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in rejects.read_bytes().splitlines()]
    assert [(r["item"], r["ref_id"], r["field"], r["reason"]) for r in rows] == [
        ("ref", victim["ref_id"], "ann_id", "ref.unknown_ann")
    ]
    sentences = json.loads(result.stdout)["units"]["sentences"]
    assert sentences["excluded_by_reason"] == {"ref.rejected": len(victim["sentences"])}


# ---------------------------------------------------------------------------------------------- row 7: counts


def _coco_expected() -> dict[str, tuple[int, int, int, int]]:
    data = json.loads(COCO_INSTANCES.read_bytes())
    caps = json.loads(COCO_CAPTIONS.read_bytes())["annotations"]
    crowd = sum(bool(a["iscrowd"]) for a in data["annotations"])
    n, m = len(data["images"]), len(data["annotations"])
    return {
        "images": (n, n, 0, 0),
        "annotations": (m, m - crowd, crowd, 0),
        "captions": (len(caps), len(caps), 0, 0),
    }


def _refcoco_expected() -> dict[str, tuple[int, int, int, int]]:
    refs = pickle.loads(REFS.read_bytes(), encoding="latin1")
    n = sum(len(r["sentences"]) for r in refs)
    return {"refs": (len(refs), len(refs), 0, 0), "sentences": (n, n, 0, 0)}


def _flickr_expected() -> dict[str, tuple[int, int, int, int]]:
    lines = [x for x in (FLICKR / "Sentences" / "4945942737.txt").read_text().split("\n") if x]
    root = ET.parse(FLICKR / "Annotations" / "4945942737.xml").getroot()
    objects = root.findall("object")
    boxed = {n.text for o in objects if o.find("bndbox") is not None for n in o.findall("name")}
    chains = [c for line in lines for c in re.findall(r"\[/EN#(\d+)/", line)]
    kept = sum(c in boxed for c in chains)
    return {
        "images": (1, 1, 0, 0),
        "captions": (len(lines), len(lines), 0, 0),
        "objects": (len(objects), len(objects), 0, 0),
        "phrases": (len(chains), kept, len(chains) - kept, 0),
    }


COUNT_CASES = [
    (
        "coco",
        ["coco", "--instances", str(COCO_INSTANCES), "--captions", str(COCO_CAPTIONS)],
        _coco_expected,
    ),
    (
        "refcoco",
        ["refcoco", "--dataset", "refcoco", "--refs", str(REFS), "--instances", str(REF_INSTANCES)],
        _refcoco_expected,
    ),
    (
        "flickr30k",
        ["flickr30k", "--annotations", str(FLICKR / "Annotations"), "--sentences", str(FLICKR / "Sentences")],
        _flickr_expected,
    ),
]


@pytest.mark.parametrize(("args", "expected"), [c[1:] for c in COUNT_CASES], ids=[c[0] for c in COUNT_CASES])
def test_summary_counts_units_that_reconcile(
    tmp_path: Path, args: list[str], expected: Callable[[], dict[str, tuple[int, int, int, int]]]
) -> None:
    want = expected()
    out = tmp_path / "out.jsonl"
    result = runner.invoke(app, ["ingest", *args, "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    got = {k: (u["read"], u["kept"], u["excluded"], u["rejected"]) for k, u in summary["units"].items()}
    assert got == want
    assert all(r == k + e + j for r, k, e, j in got.values())
    assert summary["written"] == len(out.read_bytes().splitlines())
    # the human summary says the same, one line per unit
    text = runner.invoke(app, ["ingest", *args, "--out", str(out)])
    assert text.exit_code == 0
    for name, (read, kept, excluded, rejected) in want.items():
        assert f"  {name}: read {read} = kept {kept} + excluded {excluded}" in text.stderr
        assert f"+ rejected {rejected}" in text.stderr
    assert f"{summary['written']} records written, 0 items rejected (counts reconcile)" in text.stderr
