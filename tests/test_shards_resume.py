"""Shards: byte-identical reruns, SIGKILL + rerun == uninterrupted, job-array parts merge == one run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from _export_helpers import folder_bytes, gtok, referring, write_records

N_RECORDS = 23
SHARD_SIZE = 5  # → shards of 5,5,5,5,3 lines


@pytest.fixture(scope="module")
def src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("src")
    return write_records(d / "r.jsonl", [referring(k) for k in range(N_RECORDS)])


def _args(src: Path, out: Path, *extra: str) -> list[str]:
    return [
        "export",
        str(src),
        "--scheme",
        "loc",
        "--task",
        "rec",
        "--out",
        str(out),
        "--shard-size",
        str(SHARD_SIZE),
        *extra,
    ]


def _run_cli(args: list[str], env_kill: str | None = None) -> subprocess.CompletedProcess[bytes]:
    env = dict(os.environ)
    env.pop("GTOK_TEST_KILL_AFTER", None)
    if env_kill:
        env["GTOK_TEST_KILL_AFTER"] = env_kill
    return subprocess.run(
        [sys.executable, "-m", "gtok_cli", *args], env=env, capture_output=True, check=False
    )


def test_same_input_same_bytes_and_layout(src: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    assert gtok(*_args(src, a)).exit_code == 0
    assert gtok(*_args(src, b, "--workers", "2")).exit_code == 0  # worker count never changes output
    fa, fb = folder_bytes(a), folder_bytes(b)
    shards = sorted(n for n in fa if n.endswith(".jsonl"))
    assert shards == [f"gtok-{k:05d}.jsonl" for k in range(5)]  # 23 lines / 5 per shard → 5 shards
    assert [fa[n].count(b"\n") for n in shards] == [5, 5, 5, 5, 3]
    assert {n: v for n, v in fa.items() if n != "manifest.json"} == {
        n: v for n, v in fb.items() if n != "manifest.json"
    }
    ma, mb = orjson.loads(fa["manifest.json"]), orjson.loads(fb["manifest.json"])
    ma.pop("command"), mb.pop("command")
    assert ma == mb
    # a rerun in place leaves every byte as it was (resume finds every shard done)
    assert gtok(*_args(src, a)).exit_code == 0
    assert folder_bytes(a) == fa


@pytest.mark.parametrize("kill_at", ["shard:1", "marker:1", "shard:3", "marker:4", "shard:5", "manifest"])
def test_sigkill_then_rerun_equals_uninterrupted(src: Path, tmp_path: Path, kill_at: str) -> None:
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    assert _run_cli(_args(src, clean)).returncode == 0
    first = _run_cli(_args(src, killed), env_kill=kill_at)
    assert first.returncode == -9, first.stderr  # really killed
    assert not (killed / "manifest.json").exists()
    if kill_at.startswith("shard:"):  # shard file written, its marker not yet
        k = int(kill_at.split(":")[1]) - 1
        assert (killed / f"gtok-{k:05d}.jsonl").exists()
        assert not (killed / f"gtok-{k:05d}.jsonl.stats.json").exists()
    # no partial file under a final name: every final-named shard is byte-identical to the clean run's
    for name, data in folder_bytes(killed).items():
        if name.endswith(".jsonl"):
            assert data == (clean / name).read_bytes()
    again = _run_cli(_args(src, killed))
    assert again.returncode == 0, again.stderr
    fc, fk = folder_bytes(clean), folder_bytes(killed)
    mc, mk = orjson.loads(fc.pop("manifest.json")), orjson.loads(fk.pop("manifest.json"))
    assert fc == fk
    mc.pop("command"), mk.pop("command")  # differs only by the --out path
    assert mc == mk
    assert not [p for p in killed.iterdir() if p.name.endswith(".tmp")]


def test_kill_leftover_temp_is_removed(src: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    out.mkdir()
    (out / ".gtok-00000.jsonl.abc123.tmp").write_bytes(b"partial")
    assert gtok(*_args(src, out)).exit_code == 0
    assert not list(out.glob("*.tmp"))


def test_shard_index_halves_merge_into_one_run(src: Path, tmp_path: Path) -> None:
    single, parts = tmp_path / "single", tmp_path / "parts"
    assert gtok(*_args(src, single, "--num-shards", "2")).exit_code == 0
    for i in (0, 1):
        res = gtok(*_args(src, parts, "--num-shards", "2", "--shard-index", str(i)))
        assert res.exit_code == 0, res.output
    assert not (parts / "manifest.json").exists()
    assert gtok("verify", parts).exit_code == 2  # nothing to verify before the merge
    res = gtok("merge-manifests", parts)
    assert res.exit_code == 0, res.output
    fs, fp = folder_bytes(single), folder_bytes(parts)
    for name in [n for n in fp if n.startswith("manifest-part-")]:
        fp.pop(name)
    ms, mp = orjson.loads(fs.pop("manifest.json")), orjson.loads(fp.pop("manifest.json"))
    assert fs == fp  # every shard and marker byte-identical
    # the merged command is the single run's, without --shard-index (only the --out folder differs)
    assert "--shard-index" not in mp["command"]
    assert mp.pop("command") == [str(parts) if a == str(single) else a for a in ms.pop("command")]
    assert ms == mp
    m = orjson.loads((single / "manifest.json").read_bytes())
    assert m["counts"]["read"] == N_RECORDS == m["counts"]["written"]
    # one image's records stay in one part: each image id appears in exactly one part's shards
    owner: dict[str, str] = {}
    for s in m["shards"]:
        for line in (single / s["name"]).read_bytes().splitlines():
            image = orjson.loads(line)["image"]
            assert owner.setdefault(image, s["name"][:11]) == s["name"][:11]
    assert gtok("verify", parts).exit_code == 0


def test_merge_refuses_incomplete_or_mismatched_parts(src: Path, tmp_path: Path) -> None:
    parts = tmp_path / "parts"
    assert gtok(*_args(src, parts, "--num-shards", "3", "--shard-index", "0")).exit_code == 0
    res = gtok("merge-manifests", parts)
    assert res.exit_code == 2 and "exactly once" in res.output
    assert gtok(*_args(src, parts, "--num-shards", "3", "--shard-index", "1", "--seed", "9")).exit_code == 0
    assert gtok(*_args(src, parts, "--num-shards", "3", "--shard-index", "2")).exit_code == 0
    res = gtok("merge-manifests", parts)
    assert res.exit_code == 2 and "other options" in res.output


def test_gzip_shards_are_deterministic_and_verify(src: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    assert gtok(*_args(src, a, "--gzip")).exit_code == 0
    assert gtok(*_args(src, b, "--gzip")).exit_code == 0
    assert (a / "gtok-00000.jsonl.gz").read_bytes() == (b / "gtok-00000.jsonl.gz").read_bytes()
    assert gtok("verify", a).exit_code == 0
