"""`gtok ingest refcoco`: the lichengunc/refer format, every split of RefCOCO / RefCOCO+ / RefCOCOg.

The refs pickles are built here, in the format ``refer.py`` reads (``REFER.__init__`` / ``createIndex``):
a list of refs ``{ref_id, ann_id, image_id, category_id, split, file_name, sent_ids, sentences: [{tokens, raw,
sent_id, sent}]}``, pickled as Python 2 wrote them (protocol 2, byte strings) with the pickler of
``scripts/make_sample_refcoco.py`` (its bytes are checked against a hand-assembled stream below) and, in
one case, with Python 3's protocol 2. ``instances.json`` is ``sample_data/refcoco/instances.json``: genuine
COCO val2017 records. Expected values are worked out by hand from those records.
"""

from __future__ import annotations

import importlib.util
import json
import pickle
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from pycocotools import mask as mask_utils
from typer.testing import CliRunner

from gtok_cli.cli import app
from gtok_cli.ingest.common import Rejected, Tally, run_ingest
from gtok_cli.ingest.refcoco import exclusions, iter_refcoco, split_matches, strip_ref_suffix
from gtok_cli.records import record_validator

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data" / "refcoco"
INSTANCES = SAMPLE / "instances.json"
COCO_IMAGES = ROOT / "sample_data" / "coco" / "val2017"

# this file's own pycocotools.mask.decode calls: pycocotools 2.0.x passes copy=False to an __array__ without
# that keyword, which numpy 2 deprecates (one warning per decode; the result is right)
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "make_sample_refcoco", ROOT / "scripts" / "make_sample_refcoco.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


dumps_py2 = _load_script().dumps_py2

# genuine annotations in sample_data/refcoco/instances.json: ann_id → (image_id, file, category_id, xywh)
ANNS = {
    554513: (229358, "000000229358.jpg", 1, [464.46, 0.0, 175.54, 423.0]),  # person, image 640x423
    1968752: (255165, "000000255165.jpg", 72, [358.07, 237.81, 137.05, 124.7]),  # tv
    450473: (311002, "000000311002.jpg", 1, [35.5, 148.97, 220.7, 273.47]),  # person
    1070826: (160012, "000000160012.jpg", 59, [99.79, 200.49, 520.66, 260.33]),  # pizza
    430057: (311002, "000000311002.jpg", 1, [276.35, 147.77, 64.29, 147.77]),  # person
}
SPLIT_ANN = {"train": 554513, "val": 1968752, "testA": 450473, "testB": 1070826, "test": 430057}


def make_ref(ref_id: int, ann_id: int, split: str, sents: list[str], first_sent_id: int) -> dict[str, Any]:
    """One ref as in refs(*).p; the file_name suffix is the ann_id here (readers only strip it)."""
    image_id, file_name, category_id, _ = ANNS[ann_id]
    sentences = [
        {"tokens": s.split(), "raw": s.upper(), "sent_id": first_sent_id + k, "sent": s}
        for k, s in enumerate(sents)
    ]
    return {
        "sent_ids": [s["sent_id"] for s in sentences],
        "file_name": file_name.replace(".jpg", f"_{ann_id}.jpg"),
        "ann_id": ann_id,
        "ref_id": ref_id,
        "image_id": image_id,
        "split": split,
        "sentences": sentences,
        "category_id": category_id,
    }


def build_refs(sentences_per_split: dict[str, int]) -> list[dict[str, Any]]:
    refs, sent_id = [], 0
    for ref_id, (split, n) in enumerate(sentences_per_split.items()):
        refs.append(
            make_ref(ref_id, SPLIT_ANN[split], split, [f"thing {sent_id + k}" for k in range(n)], sent_id)
        )
        sent_id += n
    return refs


def write_refs(tmp_path: Path, split_by: str, refs: list[Any], py2: bool = True) -> Path:
    path = tmp_path / f"refs({split_by}).p"
    path.write_bytes(dumps_py2(refs) if py2 else pickle.dumps(refs, protocol=2))
    return path


def records(items: list[Any]) -> list[dict[str, Any]]:
    """The records of a run with nothing rejected or excluded (the counts, Tally items, left out)."""
    items = [i for i in items if not isinstance(i, Tally)]
    bad = [i for i in items if not isinstance(i, dict)]
    assert not bad, bad
    return items


# The splits each released refs file has (refer README / getRefIds), sentences per split chosen distinct so a
# wrong filter shows; expected counts by refer.py's getRefIds: "test" takes every split containing "test".
LAYOUTS: dict[tuple[str, str], dict[str, int]] = {
    ("refcoco", "unc"): {"train": 3, "val": 2, "testA": 1, "testB": 4},
    ("refcoco+", "unc"): {"train": 3, "val": 2, "testA": 1, "testB": 4},
    ("refcoco", "google"): {"train": 3, "val": 2, "test": 1},
    ("refcocog", "google"): {"train": 3, "val": 2},
    ("refcocog", "umd"): {"train": 3, "val": 2, "test": 1},
}
EXPECTED_COUNTS = [
    ("refcoco", "unc", None, 10),
    ("refcoco", "unc", "train", 3),
    ("refcoco", "unc", "val", 2),
    ("refcoco", "unc", "testA", 1),
    ("refcoco", "unc", "testB", 4),
    ("refcoco", "unc", "test", 5),
    ("refcoco+", "unc", None, 10),
    ("refcoco+", "unc", "train", 3),
    ("refcoco+", "unc", "val", 2),
    ("refcoco+", "unc", "testA", 1),
    ("refcoco+", "unc", "testB", 4),
    ("refcoco", "google", None, 6),
    ("refcoco", "google", "train", 3),
    ("refcoco", "google", "val", 2),
    ("refcoco", "google", "test", 1),
    ("refcoco", "google", "testA", 0),
    ("refcocog", "google", None, 5),
    ("refcocog", "google", "train", 3),
    ("refcocog", "google", "val", 2),
    ("refcocog", "google", "test", 0),
    ("refcocog", "umd", None, 6),
    ("refcocog", "umd", "train", 3),
    ("refcocog", "umd", "val", 2),
    ("refcocog", "umd", "test", 1),
]


@pytest.mark.parametrize(("dataset", "split_by", "split", "expected"), EXPECTED_COUNTS)
def test_one_record_per_sentence_of_the_split(
    tmp_path: Path, dataset: str, split_by: str, split: str | None, expected: int
) -> None:
    refs_path = write_refs(tmp_path, split_by, build_refs(LAYOUTS[(dataset, split_by)]))
    out = records(list(iter_refcoco(dataset, refs_path, INSTANCES, split=split)))
    assert len(out) == expected
    for rec in out:
        assert rec["dataset"] == dataset
        assert rec["task"] == "referring"
        assert rec["id"].startswith(f"{dataset}:{split_by}:{rec['split']}:ref")
        if split is not None:
            assert split_matches(rec["split"], split)


def test_python3_protocol2_pickle_reads_the_same(tmp_path: Path) -> None:
    refs = build_refs(LAYOUTS[("refcoco", "unc")])
    (tmp_path / "py2").mkdir()
    (tmp_path / "py3").mkdir()
    from_py2 = list(iter_refcoco("refcoco", write_refs(tmp_path / "py2", "unc", refs), INSTANCES))
    from_py3 = list(iter_refcoco("refcoco", write_refs(tmp_path / "py3", "unc", refs, py2=False), INSTANCES))
    assert from_py2 == from_py3 and len(records(from_py2)) == 10


def test_py2_pickler_writes_python2_opcodes() -> None:
    # cPickle.dumps([{'a': 1}], 2) in Python 2.7, assembled by hand: PROTO 2, EMPTY_LIST, BINPUT 0,
    # EMPTY_DICT, BINPUT 1, SHORT_BINSTRING 'a', BINPUT 2, BININT1 1, SETITEM, APPEND, STOP
    assert dumps_py2([{"a": 1}]) == b"\x80\x02]q\x00}q\x01U\x01aq\x02K\x01sa."


@pytest.mark.parametrize(
    ("ann_id", "xyxy"),
    [
        # x, y, x + w, y + h of the genuine bbox, added by hand
        (554513, [464.46, 0.0, 640.0, 423.0]),
        (1968752, [358.07, 237.81, 495.12, 362.51]),
        (450473, [35.5, 148.97, 256.2, 422.44]),
        (1070826, [99.79, 200.49, 620.45, 460.82]),
        (430057, [276.35, 147.77, 340.64, 295.54]),
    ],
)
def test_box_is_the_instances_bbox_as_xyxy(tmp_path: Path, ann_id: int, xyxy: list[float]) -> None:
    refs = [make_ref(0, ann_id, "val", ["the one"], 0)]
    (rec,) = records(list(iter_refcoco("refcoco", write_refs(tmp_path, "unc", refs), INSTANCES)))
    region = rec["regions"][0]
    assert region["bbox"] == pytest.approx(xyxy, abs=1e-9)
    image_id, file_name, category_id, _ = ANNS[ann_id]
    assert region["ann_id"] == ann_id and region["category_id"] == category_id
    assert rec["image"]["file"] == file_name and rec["image"]["id"] == image_id
    assert rec["source"] == {
        "image_id": image_id,
        "ann_id": ann_id,
        "ref_id": 0,
        "sent_id": 0,
        "split": "val",
        "split_by": "unc",
        "raw": "THE ONE",
    }


def _shoelace(poly: list[float]) -> float:
    xs, ys = poly[0::2], poly[1::2]
    n = len(xs)
    return abs(sum(xs[i] * ys[(i + 1) % n] - xs[(i + 1) % n] * ys[i] for i in range(n))) / 2


def test_polygon_masks_are_kept_losslessly(tmp_path: Path) -> None:
    instances = json.loads(INSTANCES.read_text())
    anns = {a["id"]: a for a in instances["annotations"]}
    refs = [make_ref(i, ann_id, "train", ["x"], i) for i, ann_id in enumerate(ANNS)]
    out = records(list(iter_refcoco("refcoco", write_refs(tmp_path, "unc", refs), INSTANCES)))
    assert len(out) == len(ANNS)
    for rec in out:
        ann = anns[rec["source"]["ann_id"]]
        mask = rec["regions"][0]["mask"]
        assert mask == ann["segmentation"]
        # COCO's polygon area is the polygons' exact (shoelace) area
        assert sum(_shoelace(p) for p in mask) == pytest.approx(ann["area"], abs=1.0)
        h, w = rec["image"]["height"], rec["image"]["width"]
        decoded = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(mask, h, w)))
        # rasterising a polygon moves its area by at most about half its perimeter
        perimeter = sum(
            sum(((p[i] - p[i - 2]) ** 2 + (p[i + 1] - p[i - 1]) ** 2) ** 0.5 for i in range(0, len(p), 2))
            for p in mask
        )
        assert abs(int(decoded.sum()) - ann["area"]) <= perimeter / 2


@pytest.mark.parametrize("compressed", [False, True])
def test_rle_mask_decodes_to_its_area(tmp_path: Path, compressed: bool) -> None:
    # a 10 x 20 px block at columns 5..14, rows 10..29 of image 311002 (640x427):
    # area 200, bbox [5, 10, 10, 20]
    import numpy as np

    block = np.zeros((427, 640), dtype=np.uint8, order="F")
    block[10:30, 5:15] = 1
    rle = mask_utils.encode(block)
    counts: Any = rle["counts"].decode() if compressed else _uncompressed_counts(block)
    instances = json.loads(INSTANCES.read_text())
    for ann in instances["annotations"]:
        if ann["id"] == 430057:
            ann.update(segmentation={"size": [427, 640], "counts": counts}, bbox=[5, 10, 10, 20], area=200)
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(instances))
    refs = [make_ref(0, 430057, "testA", ["block"], 0)]
    (rec,) = records(list(iter_refcoco("refcoco", write_refs(tmp_path, "unc", refs), path)))
    region = rec["regions"][0]
    assert region["bbox"] == [5.0, 10.0, 15.0, 30.0]
    assert region["mask"] == {"size": [427, 640], "counts": counts}
    # pycocotools reads compressed counts as they are (bytes) and list counts through frPyObjects
    rle_obj = (
        {"size": [427, 640], "counts": counts.encode()}
        if compressed
        else mask_utils.frPyObjects(region["mask"], 427, 640)
    )
    assert abs(float(mask_utils.area(rle_obj)) - 200) <= 1
    assert int(mask_utils.decode(rle_obj).sum()) == 200


def _uncompressed_counts(block: Any) -> list[int]:
    flat = block.flatten(order="F")
    counts, current, run = [], 0, 0
    for v in flat:
        if v != current:
            counts.append(run)
            current, run = v, 0
        run += 1
    counts.append(run)
    return counts


def test_sentences_of_one_object_are_consecutive(tmp_path: Path) -> None:
    # two refs on ann 554513 with another object between them: output groups by ann_id, first appearance first
    refs = [
        make_ref(0, 554513, "train", ["a", "b"], 0),
        make_ref(1, 1968752, "train", ["c"], 2),
        make_ref(2, 554513, "train", ["d"], 3),
    ]
    out = records(list(iter_refcoco("refcoco", write_refs(tmp_path, "unc", refs), INSTANCES)))
    assert [r["text"] for r in out] == ["a", "b", "d", "c"]
    assert [r["source"]["ann_id"] for r in out] == [554513, 554513, 554513, 1968752]


def test_text_is_sent_and_raw_is_kept(tmp_path: Path) -> None:
    refs = [make_ref(0, 554513, "val", ["man on the right"], 7)]
    (rec,) = records(list(iter_refcoco("refcocog", write_refs(tmp_path, "umd", refs), INSTANCES)))
    assert rec["text"] == "man on the right"
    assert rec["source"]["raw"] == "MAN ON THE RIGHT"
    assert rec["id"] == "refcocog:umd:val:ref0:sent7"


@pytest.mark.parametrize(
    ("file_name", "stripped"),
    [
        ("COCO_train2014_000000581857_16.jpg", "COCO_train2014_000000581857.jpg"),  # genuine refs(unc).p[0]
        ("000000229358_554513.jpg", "000000229358.jpg"),
        ("a_b_12.png", "a_b.png"),
        ("COCO_train2014_000000581857.jpg", "COCO_train2014.jpg"),  # the id itself looks like a suffix
        ("plain.jpg", None),
        ("x_.jpg", None),
        ("_12", None),
    ],
)
def test_strip_ref_suffix(file_name: str, stripped: str | None) -> None:
    assert strip_ref_suffix(file_name) == stripped


def test_suffix_need_not_be_the_ann_id(tmp_path: Path) -> None:
    # the released refs(unc).p[0] has ann_id 1719310 and suffix _16: only the stripped name must match
    ref = make_ref(0, 554513, "train", ["x"], 0)
    ref["file_name"] = "000000229358_16.jpg"
    assert len(records(list(iter_refcoco("refcoco", write_refs(tmp_path, "unc", [ref]), INSTANCES)))) == 1


@pytest.mark.parametrize(
    ("ref_split", "wanted", "selected"),
    [
        ("train", "train", True),
        ("val", "train", False),
        ("testA", "testA", True),
        ("testB", "testA", False),
        ("testAB", "testA", True),
        ("testAB", "testB", True),
        ("testA", "test", True),
        ("test", "test", True),
        ("test", "testA", False),
        ("val", "val", True),
    ],
)
def test_split_selection_follows_get_ref_ids(ref_split: str, wanted: str, selected: bool) -> None:
    assert split_matches(ref_split, wanted) is selected


def test_exclusions_are_non_train_images() -> None:
    refs = build_refs({"train": 1, "val": 1, "testA": 1, "testB": 1})
    refs.append(make_ref(9, 430057, "testA", ["again"], 9))  # image 311002 again: listed once
    # by hand: val → 255165, testA → 311002, testB → 160012; train's 229358 stays
    assert exclusions(refs) == [160012, 255165, 311002]


def test_records_validate_against_the_schema(tmp_path: Path) -> None:
    refs_path = write_refs(tmp_path, "unc", build_refs(LAYOUTS[("refcoco", "unc")]))
    validator = record_validator()
    out = records(list(iter_refcoco("refcoco", refs_path, INSTANCES)))
    for rec in out:
        assert not list(validator.iter_errors(rec)), rec["id"]


def test_run_ingest_reconciles_with_a_bad_sentence(tmp_path: Path) -> None:
    refs = build_refs({"train": 2, "val": 1})
    refs[0]["sentences"][1]["sent"] = "   "
    items = list(iter_refcoco("refcoco", write_refs(tmp_path, "unc", refs), INSTANCES))
    kinds = [type(i).__name__ for i in items if not isinstance(i, Tally)]
    assert kinds == ["dict", "Rejected", "dict"]
    bad = [i for i in items if isinstance(i, Rejected)]
    assert bad[0].error.reason == "sentence.empty"
    assert bad[0].ids == {"ref_id": 0, "ann_id": 554513, "image_id": 229358, "sent_id": 1}
    stats = run_ingest(items, tmp_path / "out.jsonl", on_error="skip")
    assert (stats.written, stats.rejected) == (2, 1)
    # 2 refs (2 + 1 sentences): ref 0 keeps its good sentence, the bad one is rejected alone
    assert stats.units["refs"].to_json() == {
        "read": 2,
        "kept": 2,
        "excluded": 0,
        "rejected": 0,
        "excluded_by_reason": {},
        "rejected_by_reason": {},
        "reconciles": True,
    }
    sentences = stats.units["sentences"]
    assert (sentences.read, sentences.kept, sentences.rejected, sentences.excluded) == (3, 2, 1, 0)


runner = CliRunner()


def test_cli_on_the_sample(tmp_path: Path) -> None:
    out, excl = tmp_path / "refs.jsonl", tmp_path / "excl.txt"
    result = runner.invoke(
        app,
        [
            "ingest",
            "refcoco",
            "--dataset",
            "refcoco",
            "--refs",
            str(SAMPLE / "refs(unc).p"),
            "--instances",
            str(INSTANCES),
            "--images",
            str(COCO_IMAGES),
            "--exclusions",
            str(excl),
            "--out",
            str(out),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    # sample: 12 refs with 3+2+1 (train) + 2+2+1 (val) + 2+2+2 (testA) + 2+1+2 (testB) = 22 sentences
    assert (summary["written"], summary["rejected"], summary["reconciles"]) == (22, 0, True)
    units = {k: (u["read"], u["kept"], u["excluded"], u["rejected"]) for k, u in summary["units"].items()}
    assert units == {"refs": (12, 12, 0, 0), "sentences": (22, 22, 0, 0)}
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 22
    assert {r["split"] for r in lines} == {"train", "val", "testA", "testB"}
    # by hand from scripts/make_sample_refcoco.py: val 255165, testA 311002, testB 160012
    assert excl.read_text() == "160012\n255165\n311002\n"


def test_cli_split_filter(tmp_path: Path) -> None:
    out = tmp_path / "val.jsonl"
    result = runner.invoke(
        app,
        [
            "ingest",
            "refcoco",
            "--dataset",
            "refcoco",
            "--refs",
            str(SAMPLE / "refs(unc).p"),
            "--instances",
            str(INSTANCES),
            "--split",
            "val",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    ids = [json.loads(line)["id"] for line in out.read_text().splitlines()]
    # val refs of the sample: ref 3 (sents 6, 7), ref 4 (8, 9), ref 5 (10)
    assert ids == [
        "refcoco:unc:val:ref3:sent6",
        "refcoco:unc:val:ref3:sent7",
        "refcoco:unc:val:ref4:sent8",
        "refcoco:unc:val:ref4:sent9",
        "refcoco:unc:val:ref5:sent10",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--split", "testD"], "unknown split"),
        (["--dataset", "refclef"], "unknown dataset"),
        (["--on-error", "maybe"], "--on-error"),
    ],
)
def test_cli_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    base = {"--dataset": "refcoco", "--refs": str(SAMPLE / "refs(unc).p"), "--instances": str(INSTANCES)}
    base["--out"] = str(tmp_path / "o.jsonl")
    for k in range(0, len(args), 2):
        base[args[k]] = args[k + 1]
    flat = [x for kv in base.items() for x in kv]
    result = runner.invoke(app, ["ingest", "refcoco", *flat])
    assert result.exit_code == 2
    assert message in result.stderr
