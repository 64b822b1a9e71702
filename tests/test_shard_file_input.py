"""One shard file as input (issue 12, row 11): `show` and `stats` read just that shard's lines with the
manifest beside it; `verify` says in one line that it checks a whole export and names the folder to pass
(exit 2)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from _export_helpers import gtok, region, write_records
from PIL import Image


def _record(k: int) -> dict[str, Any]:
    return {
        "id": f"r{k}",
        "dataset": "refcoco",
        "split": "val",
        "task": "referring",
        "text": f"thing {k}",
        "image": {"file": "blank.png", "width": 640, "height": 480, "id": k},
        "regions": [region([10.0 + k, 20.0, 200.0, 300.0], label="dog")],
        "source": {"image_id": k},
    }


def _export(tmp_path: Path, *args: str) -> Path:
    """Five records, two a shard: r0 r1 | r2 r3 | r4 (per part when there are parts)."""
    src = write_records(tmp_path / "records.jsonl", [_record(k) for k in range(5)])
    out = tmp_path / "shards"
    res = gtok("export", src, "--scheme", "loc", "--task", "rec", "--out", out, "--shard-size", "2", *args)
    assert res.exit_code == 0, res.output
    return out


def _shard_ids(shard: Path) -> list[str]:
    from gtok_cli.jsonio import iter_jsonl

    return [line["meta"]["record_id"] for _, line in iter_jsonl(shard)]


@pytest.fixture
def images(tmp_path: Path) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    Image.new("RGB", (640, 480), (128, 128, 128)).save(folder / "blank.png")
    return folder


@pytest.mark.parametrize(
    ("args", "shard", "ids"),
    [
        ((), "gtok-00001.jsonl", ["r2", "r3"]),
        ((), "gtok-00002.jsonl", ["r4"]),  # the last, short shard
        (("--gzip",), "gtok-00000.jsonl.gz", ["r0", "r1"]),
        # one part of a job array: its manifest is manifest-part-00000-of-00002.json
        (("--num-shards", "2", "--shard-index", "0"), "gtok-00000-00000.jsonl", None),
    ],
)
def test_stats_of_one_shard_counts_only_its_lines(
    tmp_path: Path, args: tuple[str, ...], shard: str, ids: list[str] | None
) -> None:
    out = _export(tmp_path, *args)
    path = out / shard
    want = _shard_ids(path)
    if ids is not None:
        assert want == ids
    res = gtok("stats", path, "--json")
    assert res.exit_code == 0, res.output
    r = orjson.loads(res.stdout)
    assert r["kind"] == "export"
    assert r["samples"] == r["regions"] == len(want)
    assert r["round_trip"]["error_px"]["count"] == len(want)


@pytest.mark.parametrize(
    ("select", "code", "message"),
    [
        (("--id", "r3"), 0, None),  # in the shard
        (("--index", "1"), 0, None),  # the shard's second line
        (("--id", "r0"), 2, "no sample with this id"),  # in the export, not in this shard
        (("--index", "2"), 2, "0..1"),  # the shard has two lines
    ],
)
def test_show_of_one_shard_draws_only_its_lines(
    tmp_path: Path, images: Path, select: tuple[str, ...], code: int, message: str | None
) -> None:
    shard = _export(tmp_path) / "gtok-00001.jsonl"
    png = tmp_path / "page.png"
    res = gtok("show", shard, "--images", images, "--out", png, *select)
    assert res.exit_code == code, res.output
    if code == 0:
        assert png.is_file()
    else:
        assert message is not None and message in res.output
        assert len(res.output.strip().splitlines()) == 1 and "Traceback" not in res.output
        assert not png.exists()


@pytest.mark.parametrize(
    ("args", "name", "to_pass"),
    [
        ((), "gtok-00001.jsonl", "export folder '{out}' (or its manifest.json)"),
        (("--gzip",), "gtok-00000.jsonl.gz", "export folder '{out}' (or its manifest.json)"),
        (
            ("--num-shards", "2", "--shard-index", "1"),
            "gtok-00001-00000.jsonl",
            "part manifest '{out}/manifest-part-00001-of-00002.json'",
        ),
    ],
)
def test_verify_of_one_shard_names_what_to_pass(
    tmp_path: Path, args: tuple[str, ...], name: str, to_pass: str
) -> None:
    out = _export(tmp_path, *args)
    res = gtok("verify", out / name)
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.output, res.output
    assert "one shard of an export" in lines[0] and to_pass.format(out=out) in lines[0]
    assert "not a gtok record" not in lines[0]
    target = out / "manifest-part-00001-of-00002.json" if "--num-shards" in args else out
    assert gtok("verify", target).exit_code == 0  # what it names verifies


def test_shard_without_its_manifest_says_so(tmp_path: Path, images: Path) -> None:
    out = _export(tmp_path)
    (out / "manifest.json").unlink()
    shard = out / "gtok-00001.jsonl"  # still recognised by its done marker
    for args in (("stats", shard), ("show", shard, "--images", images, "--out", tmp_path / "x.png")):
        res = gtok(*args)
        assert res.exit_code == 2, res.output
        assert len(res.output.strip().splitlines()) == 1 and "no manifest beside it" in res.output


def test_a_records_file_is_still_read_as_records(tmp_path: Path) -> None:
    src = write_records(tmp_path / "records.jsonl", [_record(k) for k in range(3)])
    res = gtok("stats", src, "--json")
    assert res.exit_code == 0, res.output
    assert orjson.loads(res.stdout)["kind"] == "records"
    res = gtok("verify", src)
    assert res.exit_code == 2 and "one shard" not in res.output
