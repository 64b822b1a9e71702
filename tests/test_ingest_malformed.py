"""Malformed COCO inputs via the CLI: one-line error and exit 2; under --on-error skip, exact reconciliation.

Each row derives a copy of a small genuine base (3 images of the COCO val2017 fixture with all their
annotations, and all 80 categories) and breaks one thing. Expected counts under skip are worked out here from
the base by the rule the ingest documents: an image with any bad annotation is rejected whole; each accepted
image gives 1 instances record + 1 record per non-crowd category (both kinds asked for with --tasks), and its
crowd annotations are excluded.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from gtok_cli.cli import app

BASE_IMAGES = (139, 255165, 18575)  # 139: 20 annotations; 255165: one crowd RLE; 18575: a small one
CROWD_IMAGE = 255165

Data = dict[str, Any]


@pytest.fixture(scope="module")
def base(coco_fixtures: Path) -> Data:
    full = json.loads((coco_fixtures / "annotations" / "instances_val2017.json").read_text())
    return {
        "info": full["info"],
        "licenses": full["licenses"],
        "images": [i for i in full["images"] if i["id"] in BASE_IMAGES],
        "annotations": [a for a in full["annotations"] if a["image_id"] in BASE_IMAGES],
        "categories": full["categories"],
    }


@pytest.fixture(scope="module")
def captions(coco_fixtures: Path) -> Data:
    full = json.loads((coco_fixtures / "annotations" / "captions_val2017.json").read_text())
    return {**full, "annotations": [c for c in full["annotations"] if c["image_id"] in BASE_IMAGES]}


def expected_counts(
    data: Data, rejected_images: set[int], bad: list[dict[str, Any]]
) -> tuple[int, int, dict[int, int]]:
    """(records written, crowd annotations excluded, {image: its annotations rejected}) for the accepted
    images, counted by the rule: a bad annotation is left out alone, its image keeps the others."""
    written = excluded = 0
    incomplete: dict[int, int] = {}
    for img in {i["id"] for i in data["images"]} - rejected_images:
        all_anns = [a for a in data["annotations"] if isinstance(a, dict) and a["image_id"] == img]
        anns = [a for a in all_anns if not any(a is b for b in bad)]
        if len(anns) < len(all_anns):
            incomplete[img] = len(all_anns) - len(anns)
        cats = {a["category_id"] for a in anns if not a["iscrowd"]}
        written += 1 + len(cats) if cats else 0
        excluded += sum(1 for a in anns if a["iscrowd"])
    return written, excluded, incomplete


def first_ann(data: Data, image_id: int = 139, crowd: bool = False) -> dict[str, Any]:
    return next(a for a in data["annotations"] if a["image_id"] == image_id and bool(a["iscrowd"]) == crowd)


def image(data: Data, image_id: int) -> dict[str, Any]:
    return next(i for i in data["images"] if i["id"] == image_id)


def setter(path: Callable[[Data], dict[str, Any]], key: str, value: Any) -> Callable[[Data], None]:
    def mutate(data: Data) -> None:
        path(data)[key] = value

    return mutate


def deleter(path: Callable[[Data], dict[str, Any]], key: str) -> Callable[[Data], None]:
    def mutate(data: Data) -> None:
        del path(data)[key]

    return mutate


def add_annotation(**changes: Any) -> Callable[[Data], None]:
    def mutate(data: Data) -> None:
        data["annotations"].append({**copy.deepcopy(first_ann(data)), "id": 9_000_000_001, **changes})

    return mutate


def ann139(data: Data) -> dict[str, Any]:
    return first_ann(data)


def crowd_seg(data: Data) -> dict[str, Any]:
    return first_ann(data, CROWD_IMAGE, crowd=True)["segmentation"]  # type: ignore[no-any-return]


def _swap_rle_size(data: Data) -> None:
    seg = crowd_seg(data)
    seg["size"] = seg["size"][::-1]


def _short_counts(data: Data) -> None:
    crowd_seg(data)["counts"][-1] += 7


def _negative_count(data: Data) -> None:
    crowd_seg(data)["counts"][1] = -3


def _bad_compressed(data: Data) -> None:
    crowd_seg(data)["counts"] = "PPYo1~~"  # '~' is beyond the 64-symbol alphabet


def _duplicate_ann_id(data: Data) -> None:
    first_ann(data, 18575)["id"] = first_ann(data)["id"]


def _duplicate_image(data: Data) -> None:
    data["images"].append(copy.deepcopy(image(data, 18575)))


def _first139(data: Data) -> list[dict[str, Any]]:
    return [first_ann(data)]


def _crowd255165(data: Data) -> list[dict[str, Any]]:
    return [first_ann(data, CROWD_IMAGE, crowd=True)]


def _both_ids(data: Data) -> list[dict[str, Any]]:
    return [first_ann(data), first_ann(data, 18575)]


def _not_object_ann(data: Data) -> None:
    data["annotations"].append(42)


@dataclass(frozen=True)
class Case:
    name: str
    mutate: Callable[[Data], None] | None = None
    field: str | None = None  # named in the error line
    reason: str = ""
    rejected_images: tuple[
        int, ...
    ] = ()  # rejected whole under skip; () with fatal=True: the run cannot go on
    rejected_items: int = 0  # other rejected items (orphan annotations, captions, a second image entry)
    bad: Callable[[Data], list[dict[str, Any]]] | None = (
        None  # annotations rejected alone (found pre-mutation)
    )
    fatal: bool = False
    images_dir: bool = False
    captions: Callable[[Data], None] | None = None
    raw: bytes | None = None  # the file's bytes, instead of a mutated base


def _truncated(data: Data) -> bytes:
    text = json.dumps(data).encode()
    return text[: len(text) // 2]


def _raw(transform: Callable[[bytes], bytes]) -> Callable[[Data], bytes]:
    def make(data: Data) -> bytes:
        return transform(json.dumps(data).encode())

    return make


_BBOX_139 = "__BBOX139__"


CASES = [
    # ---- the file itself: nothing can be read, so skip cannot go on either (exit 2 in both modes)
    Case("empty file", raw=b"", reason="file.empty", fatal=True),
    Case("whitespace only", raw=b" \n\t ", reason="file.empty", fatal=True),
    Case("truncated JSON", reason="json.invalid", fatal=True),
    Case("NaN literal", reason="json.invalid", fatal=True),
    Case("number overflowing to infinity", reason="json.invalid", fatal=True),
    Case("non-UTF-8 byte in a string", reason="text.encoding", fatal=True),
    Case("top level is a list", raw=b"[1, 2, 3]", field="(top level)", reason="coco.structure", fatal=True),
    Case(
        "annotations missing", deleter(lambda d: d, "annotations"), "annotations", "field.missing", fatal=True
    ),
    Case("images not a list", setter(lambda d: d, "images", {"139": {}}), "images", "field.type", fatal=True),
    Case(
        "category without name",
        deleter(lambda d: d["categories"][3], "name"),
        "name",
        "field.missing",
        fatal=True,
    ),
    Case(
        "duplicate category id",
        setter(lambda d: d["categories"][1], "id", 1),
        "id",
        "id.duplicate",
        fatal=True,
    ),
    Case(
        "category id a string",
        setter(lambda d: d["categories"][0], "id", "1"),
        "id",
        "field.type",
        fatal=True,
    ),
    # ---- one image or annotation: that image is rejected, the rest is written
    Case("zero-width box", setter(ann139, "bbox", [10, 10, 0, 5]), "bbox", "bbox.nonpositive", bad=_first139),
    Case("negative box", setter(ann139, "bbox", [10, 10, -4, 5]), "bbox", "bbox.nonpositive", bad=_first139),
    Case(
        "box outside the image",
        setter(ann139, "bbox", [700, 10, 20, 20]),
        "bbox",
        "bbox.outside",
        bad=_first139,
    ),
    Case(
        "huge finite number",
        setter(ann139, "bbox", [1e308, 10, 1e308, 5]),
        "bbox",
        "bbox.nonfinite",
        bad=_first139,
    ),
    Case("box with 3 numbers", setter(ann139, "bbox", [1, 2, 3]), "bbox", "field.type", bad=_first139),
    Case(
        "box number as string", setter(ann139, "bbox", ["10", 2, 3, 4]), "bbox", "field.type", bad=_first139
    ),
    Case("box missing", deleter(ann139, "bbox"), "bbox", "field.missing", bad=_first139),
    Case(
        "2-point polygon",
        setter(ann139, "segmentation", [[10.0, 10.0, 20.0, 20.0]]),
        "segmentation[0]",
        "polygon.too_few_points",
        bad=_first139,
    ),
    Case(
        "odd polygon length",
        setter(ann139, "segmentation", [[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]]),
        "segmentation[0]",
        "polygon.too_few_points",
        bad=_first139,
    ),
    Case(
        "polygon with a string",
        setter(ann139, "segmentation", [[1.0, 2.0, "3", 4.0, 5.0, 6.0]]),
        "segmentation[0]",
        "field.type",
        bad=_first139,
    ),
    Case(
        "segmentation a number",
        setter(ann139, "segmentation", 5),
        "segmentation",
        "field.type",
        bad=_first139,
    ),
    Case("RLE size mismatch", _swap_rle_size, "segmentation.size", "rle.size_mismatch", bad=_crowd255165),
    Case("RLE counts do not cover", _short_counts, "segmentation.counts", "rle.counts", bad=_crowd255165),
    Case("RLE negative count", _negative_count, "segmentation.counts", "field.type", bad=_crowd255165),
    Case("RLE bad compressed string", _bad_compressed, "segmentation.counts", "field.type", bad=_crowd255165),
    Case("duplicate annotation id", _duplicate_ann_id, "id", "id.duplicate", bad=_both_ids),
    Case("duplicate image id", _duplicate_image, "id", "id.duplicate", (18575,), 1),
    Case(
        "unknown category",
        setter(ann139, "category_id", 999),
        "category_id",
        "category.unknown",
        bad=_first139,
    ),
    Case(
        "category_id as string",
        setter(ann139, "category_id", "18"),
        "category_id",
        "field.type",
        bad=_first139,
    ),
    Case("iscrowd 2", setter(ann139, "iscrowd", 2), "iscrowd", "field.type", bad=_first139),
    Case("annotation id missing", deleter(ann139, "id"), "id", "field.missing", bad=_first139),
    Case("image width missing", deleter(lambda d: image(d, 139), "width"), "width", "field.missing", (139,)),
    Case("image height 0", setter(lambda d: image(d, 139), "height", 0), "height", "field.type", (139,)),
    Case("annotation for unknown image", add_annotation(image_id=424242), "image_id", "image.unknown", (), 1),
    Case("annotation image_id a string", add_annotation(image_id="139"), "image_id", "field.type", (), 1),
    Case("annotation not an object", _not_object_ann, "(annotation)", "field.type", (), 1),
    Case(
        "../ in file_name with --images",
        setter(lambda d: image(d, 18575), "file_name", "../val2017/000000018575.jpg"),
        "file_name",
        "path.escape",
        (18575,),
        images_dir=True,
    ),
    Case(
        "image size mismatch with --images",
        setter(lambda d: image(d, 139), "width", 641),
        "width/height",
        "image.size_mismatch",
        (139,),
        images_dir=True,
    ),
    Case(
        "image file missing with --images",
        setter(lambda d: image(d, 139), "file_name", "nope.jpg"),
        "file_name",
        "image.missing",
        (139,),
        images_dir=True,
    ),
    Case(
        "caption for unknown image",
        field="image_id",
        reason="image.unknown",
        rejected_items=1,
        captions=lambda c: c["annotations"].append({"image_id": 7, "id": 1, "caption": "x"}),
    ),
    Case(
        "caption not a string",
        field="caption",
        reason="field.type",
        rejected_items=1,
        captions=lambda c: c["annotations"][0].update(caption=["a", "b"]),
    ),
]

RAW_BUILDERS: dict[str, Callable[[Data], bytes]] = {
    "truncated JSON": _truncated,
    "NaN literal": _raw(lambda b: b.replace(b'"bbox": [', b'"bbox": [NaN, ', 1)),
    "number overflowing to infinity": _raw(lambda b: b.replace(b'"area": ', b'"area": 1e400, "x": ', 1)),
    "non-UTF-8 byte in a string": _raw(lambda b: b.replace(b'"name": "person"', b'"name": "pers\xffon"', 1)),
}


def write_inputs(case: Case, base: Data, captions: Data, tmp_path: Path) -> tuple[Path, Path | None]:
    instances = tmp_path / "instances_val2017.json"
    data = copy.deepcopy(base)
    if case.raw is not None:
        instances.write_bytes(case.raw)
    elif case.name in RAW_BUILDERS:
        instances.write_bytes(RAW_BUILDERS[case.name](data))
    else:
        if case.mutate is not None:
            case.mutate(data)
        instances.write_text(json.dumps(data))
    caps_path = None
    if case.captions is not None:
        caps = copy.deepcopy(captions)
        case.captions(caps)
        caps_path = tmp_path / "captions_val2017.json"
        caps_path.write_text(json.dumps(caps))
    return instances, caps_path


def cli_args(case: Case, instances: Path, caps: Path | None, coco_fixtures: Path, out: Path) -> list[str]:
    # both record kinds, so the counts below also cover the (opt-in) category records
    args = [
        "ingest",
        "coco",
        "--instances",
        str(instances),
        "--out",
        str(out),
        "--tasks",
        "instances,category",
    ]
    if caps is not None:
        args += ["--captions", str(caps)]
    if case.images_dir:
        args += ["--images", str(coco_fixtures / "val2017")]
    return args


def test_table_has_at_least_30_rows() -> None:
    assert len(CASES) >= 30
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_fail_mode_one_line_exit_2(
    case: Case, base: Data, captions: Data, coco_fixtures: Path, tmp_path: Path
) -> None:
    instances, caps = write_inputs(case, base, captions, tmp_path)
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(app, cli_args(case, instances, caps, coco_fixtures, out))
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    assert line.startswith("gtok: error: ")
    named = str(caps) if case.captions is not None else str(instances)
    assert named in line
    if case.field is not None:
        assert f"field {case.field}" in line
    else:
        assert "char" in line or "empty" in line  # where in the file: orjson's position, or "empty"
    assert not out.exists()  # atomic output: nothing under the final name on failure


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_skip_mode_reconciles(
    case: Case, base: Data, captions: Data, coco_fixtures: Path, tmp_path: Path
) -> None:
    instances, caps = write_inputs(case, base, captions, tmp_path)
    out = tmp_path / "out.jsonl"
    rejects = tmp_path / "rejects.jsonl"
    args = cli_args(case, instances, caps, coco_fixtures, out)
    result = CliRunner().invoke(app, [*args, "--on-error", "skip", "--rejects", str(rejects), "--json"])
    if case.fatal:  # nothing could be read: still one line and exit 2
        assert result.exit_code == 2
        assert len(result.stderr.strip().splitlines()) == 1
        return
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    data = copy.deepcopy(base)
    bad = case.bad(data) if case.bad is not None else []
    if case.mutate is not None:
        case.mutate(data)
    rows = [json.loads(line) for line in rejects.read_bytes().splitlines()]
    assert len(rows) == len(case.rejected_images) + len(bad) + case.rejected_items
    assert {r["reason"] for r in rows} == {case.reason}
    assert all(r["file"] and r["record"] and r["field"] and r["message"] for r in rows)
    assert summary["rejected"] == len(rows)
    assert summary["rejected_by_reason"] == {case.reason: len(rows)}
    ann_rows = [r for r in rows if r["item"] == "annotation"]
    if bad:  # one line per bad annotation, naming its image and (when it has one) its id
        assert sorted((r["image_id"], r.get("ann_id", -1)) for r in ann_rows) == sorted(
            (b["image_id"], b["id"] if type(b.get("id")) is int else -1) for b in bad
        )
    written, crowd, incomplete = expected_counts(data, set(case.rejected_images), bad)
    records = [json.loads(line) for line in out.read_bytes().splitlines()]
    assert summary["written"] == written == len(records)
    assert {
        r["image"]["id"]: r["incomplete"]["rejected_annotations"] for r in records if "incomplete" in r
    } == incomplete
    units = summary["units"]
    assert units["annotations"]["excluded_by_reason"].get("crowd", 0) == crowd
    assert units["annotations"]["rejected"] == len(ann_rows)
    assert units["images"]["read"] == len(data["images"])
    assert units["annotations"]["read"] == len(data["annotations"])
    for unit in units.values():
        assert unit["read"] == unit["kept"] + unit["excluded"] + unit["rejected"]
    assert summary["reconciles"] is True


def test_skip_without_rejects_writes_beside_out(base: Data, tmp_path: Path) -> None:
    data = copy.deepcopy(base)
    ann139(data)["bbox"] = [10, 10, 0, 5]
    instances = tmp_path / "instances_val2017.json"
    instances.write_text(json.dumps(data))
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(
        app, ["ingest", "coco", "--instances", str(instances), "--out", str(out), "--on-error", "skip"]
    )
    assert result.exit_code == 0
    assert "rejected 1" in result.stderr
    rows = (tmp_path / "out.jsonl.rejects.jsonl").read_bytes().splitlines()
    assert [json.loads(r)["reason"] for r in rows] == ["bbox.nonpositive"]


def test_skip_to_stdout_needs_rejects_file(base: Data, tmp_path: Path) -> None:
    instances = tmp_path / "instances_val2017.json"
    instances.write_text(json.dumps(base))
    result = CliRunner().invoke(
        app, ["ingest", "coco", "--instances", str(instances), "--out", "-", "--on-error", "skip"]
    )
    assert result.exit_code == 2
    assert "--rejects" in result.stderr


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_forked_read_gives_the_same_results(
    case: Case,
    base: Data,
    captions: Data,
    coco_fixtures: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The CLI reading the annotations with forked workers (2, besides this process) gives the very same error
    line, records, rejects and summary as one process."""
    from gtok_cli.ingest import coco, json_chunks

    instances, caps = write_inputs(case, base, captions, tmp_path)

    def run(processes: int) -> tuple[Any, ...]:
        monkeypatch.setattr(coco, "MAX_PROCESSES", processes)
        got: list[Any] = []
        for mode in ("fail", "skip"):
            out, rejects = tmp_path / f"out-{mode}.jsonl", tmp_path / f"rejects-{mode}.jsonl"
            args = [*cli_args(case, instances, caps, coco_fixtures, out), "--on-error", mode, "--json"]
            result = CliRunner().invoke(app, [*args, "--rejects", str(rejects)])
            got += [result.exit_code, result.stdout, result.stderr]
            got += [p.read_bytes() if p.exists() else None for p in (out, rejects)]
        return tuple(got)

    monkeypatch.setattr(coco, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(coco, "usable_cpus", lambda: 3)
    # one annotation per slice, the slices shared out over 3 processes (the largest of the base is ~2.8 kB)
    monkeypatch.setattr(json_chunks, "CHUNK_BYTES", 1)
    monkeypatch.setattr(json_chunks, "WINDOW_BYTES", 3_000)
    calls: list[int] = []
    real = coco.scan_forked
    monkeypatch.setattr(coco, "scan_forked", lambda *a: calls.append(1) or real(*a))
    forked = run(3)
    try:
        doc = json_chunks.split_array(instances.read_bytes(), "annotations")
        chunkable = len(doc.bounds) > 1 and "categories" in doc.head and bool(list(doc.chunks))
    except json_chunks.NotChunkable:  # e.g. a last element that is no object: whole-document parse
        chunkable = False
    if chunkable and not case.fatal:
        assert calls, "the forked reader was not used"
    assert run(1) == forked
