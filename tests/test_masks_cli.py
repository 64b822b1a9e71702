"""`gtok masks` end to end with the cells backend: pass-through, duplicates, resume, errors."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from typer.testing import CliRunner

from gtok_cli.cli import app
from gtok_cli.masks import (
    MaskSolverConfig,
    MaskTokenizer,
    anchors_to_mask,
    cell_candidates,
    region_mask_to_bool,
)
from gtok_cli.masks import run as run_mod
from gtok_cli.records import record_validator

REPO = Path(__file__).resolve().parents[1]


COCO_INSTANCES = REPO / "tests" / "data" / "coco" / "annotations" / "instances_val2017.json"


def fixture_records(n_images: int = 3) -> list[dict[str, Any]]:
    """Records built by hand from the genuine COCO fixture (record.schema.json), one per image, plus
    RefCOCO-style
    referring records (same annotation, other text) and a record without masks."""
    d = json.loads(COCO_INSTANCES.read_text())
    out = []
    for im in d["images"][:n_images]:
        anns = [a for a in d["annotations"] if a["image_id"] == im["id"]][:4]
        regions = [
            {
                "bbox": [
                    a["bbox"][0],
                    a["bbox"][1],
                    a["bbox"][0] + a["bbox"][2],
                    a["bbox"][1] + a["bbox"][3],
                ],
                "mask": a["segmentation"],
                "label": None,
                "category_id": a["category_id"],
                "iscrowd": bool(a["iscrowd"]),
                "ann_id": a["id"],
                "phrase": None,
                "span": None,
            }
            for a in anns
        ]
        base = {
            "dataset": "coco",
            "split": "val2017",
            "text": None,
            "image": {"file": im["file_name"], "width": im["width"], "height": im["height"], "id": im["id"]},
            "source": {"image_id": im["id"]},
        }
        out.append({"id": f"i{im['id']}", "task": "instances", "regions": regions, **base})
        for s in range(2):  # two expressions for the first annotation
            out.append(
                {
                    "id": f"r{im['id']}-{s}",
                    "task": "referring",
                    "regions": regions[:1],
                    **base,
                    "text": f"e{s}",
                }
            )
        nomask = {**regions[0], "mask": None}
        out.append(
            {"id": f"n{im['id']}", "task": "referring", "regions": [nomask], **base, "text": "box only"}
        )
    return out


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(x) for x in path.read_bytes().splitlines() if x.strip()]


def test_cells_cli_end_to_end(tmp_path: Path) -> None:
    records = fixture_records()
    src = write_jsonl(tmp_path / "in.jsonl", records)
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(app, ["masks", str(src), "--out", str(out), "--grid", "16", "--tau", "0.8"])
    assert result.exit_code == 0, result.output
    got = read_jsonl(out)
    assert [r["id"] for r in got] == [r["id"] for r in records]  # input grouped by image: order kept
    validator = record_validator()
    by_id = {r["id"]: r for r in got}
    for before in records:
        after = by_id[before["id"]]
        assert list(validator.iter_errors(after)) == []
        for rb, ra in zip(before["regions"], after["regions"], strict=True):
            if rb["mask"] is None:
                assert ra == rb  # passes through untouched
                continue
            ra = dict(ra)
            mt = ra.pop("mask_tokens")
            assert ra == rb
            assert (mt["grid"], mt["backend"], mt["tau"], mt["variant"]) == (16, "cells", 0.8, "sorted")
            assert mt["anchors"] == sorted(mt["anchors"], key=lambda a: (a[1], a[0]))  # row-major order
            w, h = before["image"]["width"], before["image"]["height"]
            gt = region_mask_to_bool(rb["mask"], w, h)
            union = anchors_to_mask(mt["anchors"], cell_candidates(16, w, h))
            assert mt["iou"] == (gt & union).sum() / (gt | union).sum()
    # the referring duplicates carry the instance record's tokens for the same annotation
    first = records[0]["image"]["id"]
    assert (
        by_id[f"r{first}-0"]["regions"][0]["mask_tokens"] == by_id[f"i{first}"]["regions"][0]["mask_tokens"]
    )
    assert "masks solved" in result.output


def test_duplicates_are_solved_once(tmp_path: Path) -> None:
    records = [r for r in fixture_records(1) if r["image"]["id"] == fixture_records(1)[0]["image"]["id"]]
    tok = MaskTokenizer(MaskSolverConfig(grid=8))
    im = records[0]["image"]
    tok.tokenize_image(records, cell_candidates(8, im["width"], im["height"]))
    n_instances = len(records[0]["regions"])
    # the instance record's masks + 2 referring copies of its first mask; the box-only region is skipped
    assert tok.stats.regions_tokenised == n_instances + 2
    assert tok.stats.objects_solved == n_instances


def test_output_order_groups_by_first_appearance(tmp_path: Path) -> None:
    recs = fixture_records(2)
    a, b = recs[:4], recs[4:]
    shuffled = [a[0], b[0], a[1], b[1], a[2], a[3], b[2], b[3]]
    out = tmp_path / "o.jsonl"
    run_mod.run_masks(write_jsonl(tmp_path / "in.jsonl", shuffled), out, MaskSolverConfig(grid=8))
    assert [r["id"] for r in read_jsonl(out)] == [r["id"] for r in a + b]


def test_resume_after_a_kill_gives_the_same_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", fixture_records(3))
    cfg = MaskSolverConfig(grid=8, variant="best-gain")
    full = tmp_path / "full.jsonl"
    run_mod.run_masks(src, full, cfg)

    out = tmp_path / "out.jsonl"
    real = MaskTokenizer.tokenize_image
    calls = {"n": 0}

    def dies_on_third(self: MaskTokenizer, *args: Any, **kw: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(self, *args, **kw)

    monkeypatch.setattr(MaskTokenizer, "tokenize_image", dies_on_third)
    with pytest.raises(KeyboardInterrupt):
        run_mod.run_masks(src, out, cfg)
    monkeypatch.setattr(MaskTokenizer, "tokenize_image", real)
    partial = out.with_name(out.name + ".partial")
    assert not out.exists() and partial.exists()
    with open(partial, "ab") as fh:  # a torn write after the last progress mark
        fh.write(b'{"id": "half a rec')
    stats = run_mod.run_masks(src, out, cfg, resume=True)
    assert stats.images == 1  # only the third image was left
    assert out.read_bytes() == full.read_bytes()
    assert not partial.exists() and not out.with_name(out.name + ".progress").exists()
    # resuming a finished run does nothing
    assert run_mod.run_masks(src, out, cfg, resume=True).images == 0


def test_resume_with_other_parameters_starts_over(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", fixture_records(2))
    out = tmp_path / "out.jsonl"
    monkeypatch.setattr(
        MaskTokenizer, "tokenize_image", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt)
    )
    with pytest.raises(KeyboardInterrupt):
        run_mod.run_masks(src, out, MaskSolverConfig(grid=8))
    monkeypatch.undo()
    stats = run_mod.run_masks(src, out, MaskSolverConfig(grid=4), resume=True)
    assert stats.images == 2
    grids = {g["mask_tokens"]["grid"] for r in read_jsonl(out) for g in r["regions"] if g["mask"] is not None}
    assert grids == {4}


def test_gzip_output(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", fixture_records(1))
    out = tmp_path / "out.jsonl.gz"
    assert CliRunner().invoke(app, ["masks", str(src), "--out", str(out), "--grid", "4"]).exit_code == 0
    lines = gzip.decompress(out.read_bytes()).splitlines()
    assert len(lines) == 4 and b"mask_tokens" in lines[0]


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda r: r.pop("image"), "field image"),
        (lambda r: r["regions"][0].__setitem__("mask", [[1, 2, 3, 4]]), "field regions[0].mask[0]"),
        (
            lambda r: r["regions"][0].__setitem__("mask", {"size": [1, 1], "counts": [1]}),
            "field regions[0].mask",
        ),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path: Path, mutate: Any, needle: str) -> None:
    records = fixture_records(1)[:1]
    mutate(records[0])
    src = write_jsonl(tmp_path / "in.jsonl", records)
    result = CliRunner().invoke(app, ["masks", str(src), "--out", str(tmp_path / "o.jsonl"), "--grid", "4"])
    assert result.exit_code == 2
    assert needle in result.output and str(src) in result.output and "Traceback" not in result.output
    assert not (tmp_path / "o.jsonl").exists()


@pytest.mark.parametrize(
    "args",
    [["--tau", "0"], ["--variant", "x"], ["--backend", "magic"], ["--grid", "0"], ["--max-tokens", "0"]],
)
def test_bad_options_exit_2(tmp_path: Path, args: list[str]) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", fixture_records(1)[:1])
    result = CliRunner().invoke(app, ["masks", str(src), "--out", str(tmp_path / "o.jsonl"), *args])
    assert result.exit_code == 2, result.output


def test_sam_backend_needs_local_weights(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", fixture_records(1)[:1])
    result = CliRunner().invoke(
        app, ["masks", str(src), "--out", str(tmp_path / "o.jsonl"), "--backend", "sam", "--device", "cpu"]
    )
    assert result.exit_code == 2 and "--sam-checkpoint" in result.output


def test_anchor_union_is_the_library_decoder() -> None:
    cands = cell_candidates(2, 4, 4)
    m = anchors_to_mask([[1, 0], [0, 1]], cands)
    assert m.astype(int).tolist() == [[0, 0, 1, 1], [0, 0, 1, 1], [1, 1, 0, 0], [1, 1, 0, 0]]
    with pytest.raises(ValueError):
        anchors_to_mask([[2, 0]], cands)
    assert np.array_equal(anchors_to_mask([], cands), np.zeros((4, 4), dtype=bool))


# -- issue 12, rows 12 and 13: records checked where they enter; resume checks what it resumes from ---------
# These use sample_data/ only (genuine COCO val2017 annotations, 12 images): ingest → 78 records.

GRID = ["--grid", "8"]


@pytest.fixture(scope="module")
def sample_src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """sample_data's COCO annotations as records: 12 images, 78 records (instances + per-category)."""
    out = tmp_path_factory.mktemp("sample") / "coco.jsonl"
    instances = REPO / "sample_data/coco/annotations/instances_val2017_sample.json"
    args = [
        "ingest",
        "coco",
        "--instances",
        str(instances),
        "--tasks",
        "instances,category",
        "--out",
        str(out),
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def sample_clean(sample_src: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted run over ``sample_src``: what every resumed run must reproduce byte for byte."""
    out = tmp_path_factory.mktemp("clean") / "clean.jsonl"
    result = CliRunner().invoke(app, ["masks", str(sample_src), "--out", str(out), *GRID])
    assert result.exit_code == 0, result.output
    return out


def masks_cli(src: Path, out: Path, *extra: str) -> Any:
    return CliRunner().invoke(app, ["masks", str(src), "--out", str(out), *extra])


def lines_per_image(src: Path) -> list[int]:
    """Records per image in output order (images by first appearance), counted from the input by hand."""
    counts: dict[tuple[str, int, int], int] = {}
    for r in read_jsonl(src):
        key = (r["image"]["file"], r["image"]["width"], r["image"]["height"])
        counts[key] = counts.get(key, 0) + 1
    return list(counts.values())


def killed_run(src: Path, out: Path, monkeypatch: pytest.MonkeyPatch, images: int, *extra: str) -> None:
    """``gtok masks`` interrupted (Ctrl-C) while solving image ``images + 1``: ``images`` images written."""
    real = MaskTokenizer.tokenize_image
    calls = {"n": 0}

    def dies(self: MaskTokenizer, *args: Any, **kw: Any) -> Any:
        calls["n"] += 1
        if calls["n"] > images:
            raise KeyboardInterrupt
        return real(self, *args, **kw)

    with monkeypatch.context() as m:
        m.setattr(MaskTokenizer, "tokenize_image", dies)
        result = masks_cli(src, out, *GRID, *extra)
    assert result.exit_code != 0 and not out.exists()


def side_files(out: Path) -> tuple[Path, Path]:
    return out.with_name(out.name + ".partial"), out.with_name(out.name + ".progress")


def line_start(data: bytes, line: int) -> int:
    """Byte offset of 1-based ``line`` in ``data``."""
    pos = 0
    for _ in range(line - 1):
        pos = data.index(b"\n", pos) + 1
    return pos


def stderr_lines(result: Any) -> list[str]:
    return [x for x in result.output.splitlines() if x.strip()]


def test_entry_check_duplicate_id_message_names_both_lines(sample_src: Path, tmp_path: Path) -> None:
    records = read_jsonl(sample_src)[:3]
    records[2]["id"] = records[0]["id"]
    src = write_jsonl(tmp_path / "in.jsonl", records)
    result = masks_cli(src, tmp_path / "o.jsonl", *GRID)
    assert result.exit_code == 2
    assert stderr_lines(result) == [
        f"gtok: error: {src}, record {records[0]['id']}, field id: line 3: repeats the id of line 1 "
        f"(expected ids unique in the run, found '{records[0]['id']}')"
    ]


def _set_bbox(value: Any) -> Any:
    return lambda r: r["regions"][0].__setitem__("bbox", value)


def _set_coord(k: int, value: Any) -> Any:
    return lambda r: r["regions"][0]["bbox"].__setitem__(k, value)


def _w(r: dict[str, Any]) -> int:
    return int(r["image"]["width"])


# (case, mutation of the 2nd record, field named, message part); the 2nd record is on line 2
BAD_RECORDS: list[tuple[str, Any, str, str]] = [
    ("x2 = 1e308", _set_coord(2, 1e308), "regions[0].bbox", "box lies far outside the"),
    ("x1 = -1e308", _set_coord(0, -1e308), "regions[0].bbox", "box lies far outside the"),
    (
        "two widths right",
        lambda r: r["regions"][0].__setitem__("bbox", [0, 0, 2 * _w(r) + 1, 5]),
        "regions[0].bbox",
        "box lies far outside the",
    ),
    ("bbox 'x'", _set_bbox("x"), "regions[0].bbox", "box must have 4 numbers"),
    ("a coordinate 'x'", _set_coord(1, "x"), "regions[0].bbox", "box coordinate is not a number"),
    ("a coordinate true", _set_coord(1, True), "regions[0].bbox", "box coordinate is not a number"),
    ("a coordinate null", _set_coord(3, None), "regions[0].bbox", "box coordinate is not a number"),
    ("3 numbers", _set_bbox([1, 2, 3]), "regions[0].bbox", "box must have 4 numbers"),
    ("bbox missing", lambda r: r["regions"][0].pop("bbox"), "regions[0].bbox", "box must have 4 numbers"),
    ("x2 < x1", _set_bbox([50, 10, 40, 20]), "regions[0].bbox", "box corners are out of order"),
    (
        "right of the image",
        lambda r: r["regions"][0].__setitem__("bbox", [_w(r) + 1, 0, _w(r) + 9, 5]),
        "regions[0].bbox",
        "box lies outside the image",
    ),
    ("above the image", _set_bbox([0, -20, 10, -1]), "regions[0].bbox", "box lies outside the image"),
    (
        "polyline 1e308",
        lambda r: r["regions"][0].__setitem__("polyline", [0, 0, 1e308, 1]),
        "regions[0].polyline",
        "polyline lies far outside",
    ),
    (
        "polyline odd",
        lambda r: r["regions"][0].__setitem__("polyline", [0, 0, 1, 1, 2]),
        "regions[0].polyline",
        "polyline must be x, y pairs",
    ),
    (
        "region not an object",
        lambda r: r["regions"].__setitem__(0, "x"),
        "regions[0]",
        "region is not an object",
    ),
    ("regions not a list", lambda r: r.__setitem__("regions", {}), "regions", "has no regions list"),
    (
        "width 0",
        lambda r: r["image"].__setitem__("width", 0),
        "image.width",
        "image width is not a positive integer",
    ),
    (
        "height true",
        lambda r: r["image"].__setitem__("height", True),
        "image.height",
        "image height is not a positive integer",
    ),
    (
        "width 640.5",
        lambda r: r["image"].__setitem__("width", 640.5),
        "image.width",
        "image width is not a positive integer",
    ),
    ("image file ''", lambda r: r["image"].__setitem__("file", ""), "image.file", "image has no file name"),
    ("id an int", lambda r: r.__setitem__("id", 7), "id", "has no record id"),
    ("id ''", lambda r: r.__setitem__("id", ""), "id", "has no record id"),
]


@pytest.mark.parametrize(
    ("mutate", "field", "message"), [r[1:] for r in BAD_RECORDS], ids=[r[0] for r in BAD_RECORDS]
)
def test_entry_check_rejects_bad_geometry_and_ids(
    sample_src: Path, tmp_path: Path, mutate: Any, field: str, message: str
) -> None:
    records = read_jsonl(sample_src)[:3]
    mutate(records[1])
    src = write_jsonl(tmp_path / "in.jsonl", records)
    out = tmp_path / "o.jsonl"
    result = masks_cli(src, out, *GRID)
    assert result.exit_code == 2, result.output
    (line,) = stderr_lines(result)  # one line, no traceback
    rid = records[1]["id"]
    named = f", record {rid}" if isinstance(rid, str) and rid else ""
    assert line.startswith(f"gtok: error: {src}{named}, field {field}: line 2: {message}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]  # nothing written, not even .partial


@pytest.mark.parametrize(
    "raw",
    [
        b'{"id": "a", "regions": [{"bbox": [0, 0, 1e999, 1]}]}',
        b'{"id": "a", "regions": [{"bbox": [NaN, 0, 1, 1]}]}',
    ],
    ids=["1e999", "NaN"],
)
def test_entry_check_non_finite_json_is_invalid_json(tmp_path: Path, raw: bytes) -> None:
    src = tmp_path / "in.jsonl"
    src.write_bytes(raw + b"\n")
    result = masks_cli(src, tmp_path / "o.jsonl", *GRID)
    assert result.exit_code == 2
    (line,) = stderr_lines(result)
    assert line.startswith(f"gtok: error: {src}: line 1 is not valid JSON")


# boxes a stage takes as they are (the codecs clamp at the image edge); masks passes them through unchanged
GOOD_BOXES: list[tuple[str, Any]] = [
    ("slightly outside", lambda w, h: [-3.5, -2, w + 5, h + 0.25]),
    ("one width outside", lambda w, h: [-w, -h, 2 * w, 2 * h]),
    ("zero width", lambda w, h: [10, 10, 10, 20]),
    ("touching the right edge", lambda w, h: [w, 0, w + 4, 5]),
    ("integers", lambda w, h: [0, 0, w, h]),
]


@pytest.mark.parametrize("box", [r[1] for r in GOOD_BOXES], ids=[r[0] for r in GOOD_BOXES])
def test_entry_check_keeps_boxes_the_codecs_clamp(sample_src: Path, tmp_path: Path, box: Any) -> None:
    records = read_jsonl(sample_src)[:2]
    w, h = records[1]["image"]["width"], records[1]["image"]["height"]
    records[1]["regions"][0]["bbox"] = box(w, h)
    src = write_jsonl(tmp_path / "in.jsonl", records)
    out = tmp_path / "o.jsonl"
    result = masks_cli(src, out, *GRID)
    assert result.exit_code == 0, result.output
    assert read_jsonl(out)[1]["regions"][0]["bbox"] == box(w, h)


def test_stdin_input_with_a_file_output(sample_src: Path, sample_clean: Path, tmp_path: Path) -> None:
    out = tmp_path / "o.jsonl"
    result = CliRunner().invoke(app, ["masks", "-", "--out", str(out), *GRID], input=sample_src.read_bytes())
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == sample_clean.read_bytes()


# Runs killed after 8 of the 12 images have 54 lines (7+4+4+6+8+9+9+7 records); image 6 is lines 30-38.
KILLED_AFTER = 8


def _flip(line: int, where: Any) -> Any:
    """Damage the partial file: XOR 1 into the byte ``where(line's bytes)`` bytes into ``line``."""

    def damage(partial: Path, progress: Path) -> None:
        data = bytearray(partial.read_bytes())
        start = line_start(bytes(data), line)
        pos = start + where(bytes(data[start:]))
        data[pos] ^= 1
        partial.write_bytes(bytes(data))

    return damage


def _first_digit_of_iou(rest: bytes) -> int:
    pos = rest.index(b'"iou":') + len(b'"iou":') + 2  # "0.27…": the digit after "0."
    assert rest[pos - 1 : pos] == b"." and rest[pos : pos + 1].isdigit()
    return pos


def _append(partial: Path, progress: Path) -> None:
    with open(partial, "ab") as fh:
        fh.write(b'{"id":"coco:val2017:1')  # the torn line a kill leaves


def _cut_partial(partial: Path, progress: Path) -> None:
    data = partial.read_bytes()
    partial.write_bytes(data[: line_start(data, 32) + 10])


def _damage_mark(partial: Path, progress: Path) -> None:
    lines = progress.read_bytes().split(b"\n")
    lines[6] = b'{"done":6,"end":1' + b"x" * 5  # progress line 7: the mark of image 6
    progress.write_bytes(b"\n".join(lines))


def _old_version(partial: Path, progress: Path) -> None:
    progress.write_bytes(
        progress.read_bytes().replace(b'"gtok_masks_progress":2', b'"gtok_masks_progress":1', 1)
    )


# (case, damage, warning after "gtok: warning: <partial>: " (None: no warning), images solved again)
RESUME_CASES: list[tuple[str, Any, str | None, int]] = [
    ("torn last line", _append, None, 12 - 8),
    (
        "flipped byte makes line 32 invalid JSON",
        _flip(32, lambda rest: 0),
        "PARTIAL line 32 is not valid JSON; resuming from line 30 (image 6 of 12), the last that checks",
        12 - 5,
    ),
    (
        "flipped digit keeps line 32 valid JSON",
        _flip(32, _first_digit_of_iou),
        "PARTIAL lines 30-38 differ from what was written there (sha256 or line count); "
        "resuming from line 30 (image 6 of 12), the last that checks",
        12 - 5,
    ),
    (
        "flipped byte in the first image",
        _flip(3, lambda rest: 0),
        "PARTIAL line 3 is not valid JSON; starting over",
        12,
    ),
    (
        "partial file cut inside line 32",
        _cut_partial,
        "PARTIAL ends before the end its progress file records (line 30 onward is missing); "
        "resuming from line 30 (image 6 of 12), the last that checks",
        12 - 5,
    ),
    (
        "progress mark of image 6 damaged",
        _damage_mark,
        "PROGRESS line 7 is damaged; resuming from line 30 (image 6 of 12), the last that checks",
        12 - 5,
    ),
    (
        "progress file missing",
        lambda partial, progress: progress.unlink(),
        "PROGRESS is missing; starting over",
        12,
    ),
    (
        "progress file of an older gtok",
        _old_version,
        "PROGRESS is from another version of gtok masks; starting over",
        12,
    ),
]


@pytest.mark.parametrize(
    ("damage", "warning", "solved"), [r[1:] for r in RESUME_CASES], ids=[r[0] for r in RESUME_CASES]
)
def test_resume_checks_what_it_resumes_from(
    sample_src: Path,
    sample_clean: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    damage: Any,
    warning: str | None,
    solved: int,
) -> None:
    assert lines_per_image(sample_src) == [7, 4, 4, 6, 8, 9, 9, 7, 5, 5, 6, 8]  # the line numbers below
    out = tmp_path / "out.jsonl"
    killed_run(sample_src, out, monkeypatch, KILLED_AFTER)
    partial, progress = side_files(out)
    assert len(partial.read_bytes().splitlines()) == 54
    damage(partial, progress)
    result = masks_cli(sample_src, out, *GRID, "--resume")
    assert result.exit_code == 0, result.output
    lines = stderr_lines(result)
    if warning is None:
        assert lines[0] == f"gtok masks: resuming {partial} at line 55 (image 9 of 12)"
    else:
        text = warning.replace("PARTIAL", partial.name).replace("PROGRESS", progress.name)
        assert lines[0] == f"gtok: warning: {partial}: {text}"
    assert lines[1].startswith(f"gtok masks: {solved} images, ") and len(lines) == 2
    assert out.read_bytes() == sample_clean.read_bytes()  # every line valid, the same bytes as a clean run
    assert not partial.exists() and not progress.exists()


def test_resume_twice_after_a_damaged_mark(
    sample_src: Path, sample_clean: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A resume drops the marks after its resume point, so a second kill and resume still check out."""
    out = tmp_path / "out.jsonl"
    killed_run(sample_src, out, monkeypatch, KILLED_AFTER)
    partial, progress = side_files(out)
    _damage_mark(partial, progress)
    killed_run(sample_src, out, monkeypatch, 1, "--resume")  # redoes image 6 only, then dies
    result = masks_cli(sample_src, out, *GRID, "--resume")
    assert result.exit_code == 0, result.output
    assert stderr_lines(result)[0] == f"gtok masks: resuming {partial} at line 39 (image 7 of 12)"
    assert out.read_bytes() == sample_clean.read_bytes()


def _other_input(src: Path, tmp_path: Path) -> Path:
    records = read_jsonl(src)
    records[0]["text"] = "another input"
    return write_jsonl(tmp_path / "other.jsonl", records)


@pytest.mark.parametrize(
    ("make_src", "params", "why"),
    [
        (_other_input, GRID, "it was written from another input (sha256 differs)"),
        (lambda src, _tmp: src, ["--grid", "4"], "it was written with other parameters (grid)"),
    ],
    ids=["another input", "other parameters"],
)
def test_resume_does_not_trust_a_partial_of_another_run(
    sample_src: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    make_src: Any,
    params: list[str],
    why: str,
) -> None:
    src = make_src(sample_src, tmp_path)
    clean = tmp_path / "clean.jsonl"
    assert masks_cli(src, clean, *params).exit_code == 0
    out = tmp_path / "out.jsonl"
    killed_run(sample_src, out, monkeypatch, KILLED_AFTER)  # grid 8, sample_src
    partial, _progress = side_files(out)
    result = masks_cli(src, out, *params, "--resume")
    assert result.exit_code == 0, result.output
    lines = stderr_lines(result)
    assert lines[0] == f"gtok: warning: {partial}: {why}; starting over"
    assert lines[1].startswith("gtok masks: 12 images, ")
    assert out.read_bytes() == clean.read_bytes()


def test_rerun_without_resume_says_resuming_is_possible(
    sample_src: Path, sample_clean: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out.jsonl"
    killed_run(sample_src, out, monkeypatch, KILLED_AFTER)
    partial, progress = side_files(out)
    before = (partial.read_bytes(), progress.read_bytes())
    result = masks_cli(sample_src, out, *GRID)
    assert result.exit_code == 2
    assert stderr_lines(result) == [
        f"gtok: error: {partial} holds the first 54 lines (8 of 12 images) of this same run, checked; "
        "add --resume to continue from line 55, or delete it to start over"
    ]
    assert (partial.read_bytes(), progress.read_bytes()) == before and not out.exists()  # nothing touched
    result = masks_cli(sample_src, out, *GRID, "--resume")
    assert result.exit_code == 0 and "gtok masks: 4 images, " in result.output
    assert out.read_bytes() == sample_clean.read_bytes()


@pytest.mark.parametrize(
    ("killed_after", "other_input", "warning"),
    [
        (0, False, None),  # killed before the first image was written: nothing to keep
        (KILLED_AFTER, True, "replacing PARTIAL: it was written from another input (sha256 differs)"),
    ],
    ids=["empty partial", "partial of another input"],
)
def test_rerun_without_resume_replaces_what_cannot_be_resumed(
    sample_src: Path,
    sample_clean: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    killed_after: int,
    other_input: bool,
    warning: str | None,
) -> None:
    out = tmp_path / "out.jsonl"
    first = sample_src
    if other_input:
        first = write_jsonl(tmp_path / "other.jsonl", read_jsonl(sample_src)[:-1])
    killed_run(first, out, monkeypatch, killed_after)
    partial, _progress = side_files(out)
    assert partial.exists()
    result = masks_cli(sample_src, out, *GRID)
    assert result.exit_code == 0, result.output
    lines = stderr_lines(result)
    if warning is not None:
        assert lines.pop(0) == "gtok: warning: " + warning.replace("PARTIAL", str(partial))
    assert len(lines) == 1 and lines[0].startswith("gtok masks: 12 images, ")
    assert out.read_bytes() == sample_clean.read_bytes()


# -- issue 18: --on-error skip (both engines share the worker and the writer; Ray in test_masks_ray) ---------
def _one_bad_mask(src: Path, tmp_path: Path, line: int) -> tuple[Path, dict[str, Any]]:
    records = read_jsonl(src)
    records[line]["regions"][0]["mask"] = {"size": [1, 1], "counts": [1]}  # not the image's size
    return write_jsonl(tmp_path / "bad.jsonl", records), records[line]


def test_skip_leaves_the_image_out_and_resumes_with_its_reject(
    sample_src: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Image 3 has a bad mask: its records go to the rejects file; a run killed at image 6 and resumed
    writes the same output and the same rejects as an uninterrupted one."""
    src, bad = _one_bad_mask(sample_src, tmp_path, lines_per_image(sample_src)[0] + 1)
    bad_file = bad["image"]["file"]
    bad_records = [r["id"] for r in read_jsonl(src) if r["image"]["file"] == bad_file]
    clean = tmp_path / "clean.jsonl"
    result = masks_cli(src, clean, *GRID, "--on-error", "skip")
    assert result.exit_code == 0, result.output
    said = f"1 images ({len(bad_records)} records) rejected, written to {clean}.rejects.jsonl"
    assert said in result.output
    lines = clean.read_bytes().splitlines()
    assert len(lines) == sum(lines_per_image(src)) - len(bad_records)
    assert not any(bad_file.encode() in x for x in lines)
    (reject,) = read_jsonl(Path(f"{clean}.rejects.jsonl"))
    assert (reject["item"], reject["image"], reject["record_ids"]) == ("image", bad_file, bad_records)
    assert (reject["file"], reject["record"], reject["field"]) == (str(src), bad["id"], "regions[0].mask")

    out = tmp_path / "out.jsonl"
    killed_run(src, out, monkeypatch, 5, "--on-error", "skip")  # 5 images done, image 2 left out
    _partial, progress = side_files(out)
    assert b'"rejected":[[1,' in progress.read_bytes()
    assert not Path(f"{out}.rejects.jsonl").exists()  # written whole at the end
    result = masks_cli(src, out, *GRID, "--on-error", "skip", "--resume")
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == clean.read_bytes()
    assert Path(f"{out}.rejects.jsonl").read_bytes() == Path(f"{clean}.rejects.jsonl").read_bytes()


def test_a_skip_partial_is_not_resumed_under_fail(
    sample_src: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A partial that left images out is no prefix of a run that stops at them: it starts over."""
    out = tmp_path / "out.jsonl"
    killed_run(sample_src, out, monkeypatch, 3, "--on-error", "skip")
    result = masks_cli(sample_src, out, *GRID, "--resume")
    assert result.exit_code == 0, result.output
    assert "it was written with --on-error skip; starting over" in result.output
    assert "12 images" in result.output


def test_skip_that_rejects_every_image_is_an_error(sample_src: Path, tmp_path: Path) -> None:
    """Every image has a bad mask: nothing is written, which is exit 2 under skip too (reasons kept)."""
    records = read_jsonl(sample_src)
    for r in records:
        r["regions"][0]["mask"] = {"size": [1, 1], "counts": [1]}  # not the image's size
    src = write_jsonl(tmp_path / "bad.jsonl", records)
    out = tmp_path / "out.jsonl"
    result = masks_cli(src, out, *GRID, "--on-error", "skip")
    assert result.exit_code == 2, result.output
    images = len(lines_per_image(src))
    assert f"every image was rejected ({images}): {out} holds no record" in result.output
    assert len(read_jsonl(Path(f"{out}.rejects.jsonl"))) == images
