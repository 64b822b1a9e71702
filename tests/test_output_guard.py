"""Issue 12 row 1: no command writes over one of its inputs (same path, symlink or hard link): exit 2, one
line, the input byte-identical and still the same file."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from _export_helpers import gtok, referring, write_records
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
COCO = ROOT / "sample_data" / "coco"
REFCOCO = ROOT / "sample_data" / "refcoco"
FLICKR = ROOT / "sample_data" / "flickr30k"

Case = Callable[[Path, Callable[[Path, Path], Path]], tuple[list[object], Path]]
"""(workspace, alias(victim, where)) → (argv, victim): argv writes to an alias of the victim input."""


def _copy(src: Path, dst: Path) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(src, dst)
    return dst


def _records(ws: Path, name: str = "records.jsonl") -> Path:
    # images blank-0.png / blank-1.png exist under ws/images (640x480)
    (ws / "images").mkdir(exist_ok=True)
    for k in range(2):
        Image.new("RGB", (640, 480), (128, 128, 128)).save(ws / "images" / f"blank-{k}.png")
    recs = [referring(k, w=640, h=480) for k in range(4)]
    for r in recs:
        r["image"]["file"] = f"blank-{r['image']['id']}.png"
    return write_records(ws / name, recs)


def _export(ws: Path, *extra: str) -> Path:
    out = ws / "shards"
    res = gtok("export", _records(ws), "--scheme", "loc", "--task", "rec", "--out", out, *extra)
    assert res.exit_code == 0, res.output
    return out


def ingest_coco_out(ws: Path, alias: Callable[[Path, Path], Path]) -> tuple[list[object], Path]:
    v = _copy(COCO / "annotations" / "instances_val2017_sample.json", ws / "in" / "instances.json")
    return ["ingest", "coco", "--instances", v, "--out", alias(v, ws / "o.json")], v


def ingest_coco_captions(ws: Path, alias: Callable[[Path, Path], Path]) -> tuple[list[object], Path]:
    i = _copy(COCO / "annotations" / "instances_val2017_sample.json", ws / "in" / "instances.json")
    v = _copy(COCO / "annotations" / "captions_val2017_sample.json", ws / "in" / "captions.json")
    return ["ingest", "coco", "--instances", i, "--captions", v, "--out", alias(v, ws / "o.json")], v


def ingest_coco_rejects(ws: Path, alias: Callable[[Path, Path], Path]) -> tuple[list[object], Path]:
    v = _copy(COCO / "annotations" / "instances_val2017_sample.json", ws / "in" / "instances.json")
    argv: list[object] = ["ingest", "coco", "--instances", v, "--out", ws / "o.jsonl", "--on-error", "skip"]
    return [*argv, "--rejects", alias(v, ws / "r.json")], v


def _refcoco(ws: Path) -> tuple[Path, Path]:
    return _copy(REFCOCO / "refs(unc).p", ws / "in" / "refs(unc).p"), _copy(
        REFCOCO / "instances.json", ws / "in" / "instances.json"
    )


def ingest_refcoco_out(ws: Path, alias: Callable[[Path, Path], Path]) -> tuple[list[object], Path]:
    refs, inst = _refcoco(ws)
    argv: list[object] = ["ingest", "refcoco", "--dataset", "refcoco", "--refs", refs, "--instances", inst]
    return [*argv, "--out", alias(refs, ws / "o.p")], refs


def ingest_refcoco_exclusions(ws: Path, alias: Callable[[Path, Path], Path]) -> tuple[list[object], Path]:
    refs, inst = _refcoco(ws)
    argv: list[object] = ["ingest", "refcoco", "--dataset", "refcoco", "--refs", refs, "--instances", inst]
    return [*argv, "--out", ws / "o.jsonl", "--exclusions", alias(inst, ws / "x.json")], inst


def ingest_flickr_split(ws: Path, alias: Callable[[Path, Path], Path]) -> tuple[list[object], Path]:
    v = ws / "in" / "train.txt"
    v.parent.mkdir(parents=True)
    v.write_text("4945942737\n")
    argv: list[object] = ["ingest", "flickr30k", "--annotations", FLICKR / "Annotations"]
    return [*argv, "--sentences", FLICKR / "Sentences", "--split-file", v, "--out", alias(v, ws / "o.txt")], v


def masks_out(ws: Path, alias: Callable[[Path, Path], Path]) -> tuple[list[object], Path]:
    v = _records(ws)
    return ["masks", v, "--out", alias(v, ws / "o.jsonl")], v


def export_shard_in_folder(ws: Path, alias: Callable[[Path, Path], Path]) -> tuple[list[object], Path]:
    # the records (or a link to them) sit in the output folder under the name export writes first
    v = _records(ws)
    out = ws / "shards"
    out.mkdir()
    link = alias(v, out / "gtok-00000.jsonl")
    if link == v:  # "same": the records file itself is the folder's first shard name
        link = v = Path(shutil.move(v, out / "gtok-00000.jsonl"))
    return ["export", link, "--scheme", "loc", "--task", "rec", "--out", out], v


def export_out_is_input(ws: Path, alias: Callable[[Path, Path], Path]) -> tuple[list[object], Path]:
    v = _records(ws)
    return ["export", v, "--scheme", "loc", "--task", "rec", "--out", alias(v, ws / "o")], v


def show_out(ws: Path, alias: Callable[[Path, Path], Path]) -> tuple[list[object], Path]:
    v = _export(ws) / "manifest.json"
    argv: list[object] = ["show", ws / "shards", "--images", ws / "images", "--index", "0"]
    return [*argv, "--out", alias(v, ws / "page.png")], v


def show_out_over_a_shard(ws: Path, alias: Callable[[Path, Path], Path]) -> tuple[list[object], Path]:
    # the source named by its manifest: the shards it lists are inputs too
    v = _export(ws) / "gtok-00000.jsonl"
    argv: list[object] = ["show", ws / "shards" / "manifest.json", "--images", ws / "images", "--index", "0"]
    return [*argv, "--out", alias(v, ws / "page.png")], v


def stats_plots(ws: Path, alias: Callable[[Path, Path], Path]) -> tuple[list[object], Path]:
    v = _records(ws)
    return ["stats", v, "--plots", alias(v, ws / "plots")], v


def merge_manifests(ws: Path, alias: Callable[[Path, Path], Path]) -> tuple[list[object], Path]:
    out = _export(ws, "--num-shards", "2", "--shard-index", "0")
    v = out / "manifest-part-00000-of-00002.json"
    alias(v, out / "manifest.json")
    return ["merge-manifests", out], v


CASES = [
    ingest_coco_out,
    ingest_coco_captions,
    ingest_coco_rejects,
    ingest_refcoco_out,
    ingest_refcoco_exclusions,
    ingest_flickr_split,
    masks_out,
    export_shard_in_folder,
    export_out_is_input,
    show_out,
    show_out_over_a_shard,
    stats_plots,
    merge_manifests,
]


def _aliaser(how: str) -> Callable[[Path, Path], Path]:
    def alias(victim: Path, where: Path) -> Path:
        """The victim itself ("same"), or a new symlink / hard link to it at ``where``."""
        if how == "symlink":
            where.symlink_to(victim)
        elif how == "hardlink":
            os.link(victim, where)
        return victim if how == "same" else where

    return alias


@pytest.mark.parametrize(
    ("case", "how"),
    [
        pytest.param(case, how, id=f"{case.__name__}-{how}")
        for case in CASES
        for how in ("same", "symlink", "hardlink")
        # merge-manifests writes manifest.json, never named like a part: only a link can alias one
        if not (case is merge_manifests and how == "same")
    ],
)
def test_an_output_that_is_an_input_is_refused(tmp_path: Path, case: Case, how: str) -> None:
    argv, victim = case(tmp_path, _aliaser(how))
    before, ident = victim.read_bytes(), os.stat(victim).st_ino
    res = gtok(*map(str, argv))
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1, res.output
    assert lines[0].startswith("gtok: error: ") and "gtok never writes over its input" in lines[0]
    assert victim.read_bytes() == before and os.stat(victim).st_ino == ident and victim.is_file()


def test_an_output_inside_an_input_folder_is_refused(tmp_path: Path) -> None:
    # `show --out` naming one of the images under --images would replace a source image
    _export(tmp_path)
    victim = tmp_path / "images" / "blank-0.png"
    before = victim.read_bytes()
    res = gtok("show", tmp_path / "shards", "--images", tmp_path / "images", "--index", "0", "--out", victim)
    assert res.exit_code == 2
    assert "is a file in the input folder --images" in res.output.strip()
    assert victim.read_bytes() == before


def test_two_outputs_on_one_file_are_refused(tmp_path: Path) -> None:
    refs, inst = _refcoco(tmp_path)
    out = tmp_path / "o.jsonl"
    res = gtok(
        "ingest", "refcoco", "--dataset", "refcoco", "--refs", str(refs), "--instances", str(inst),
        "--out", str(out), "--exclusions", str(out),
    )  # fmt: skip
    assert res.exit_code == 2
    assert "--out and --exclusions are the same file" in res.output
    assert not out.exists()


def test_a_distinct_output_is_written(tmp_path: Path) -> None:
    """The guard does not refuse a fresh path beside the input, nor a re-run over its own output."""
    v = _copy(COCO / "annotations" / "instances_val2017_sample.json", tmp_path / "instances.json")
    for _ in range(2):
        res = gtok("ingest", "coco", "--instances", str(v), "--out", str(tmp_path / "records.jsonl"))
        assert res.exit_code == 0, res.output
    out = _export(tmp_path)
    res = gtok("export", tmp_path / "records.jsonl", "--scheme", "loc", "--task", "rec", "--out", out)
    assert res.exit_code == 0, res.output  # a re-export over its own shards is not an input overwrite
