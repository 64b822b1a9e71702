"""Shards: byte-identical reruns, SIGKILL + rerun == uninterrupted, job-array parts merge == one run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from _export_helpers import folder_bytes, gtok, referring, write_records

from gtok_cli.parallel import run_batches

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


# ---- the parallel hand-back: batch outputs come back through shared-memory slots ---------------------------
def _export_folder(src: Path, out: Path, workers: int) -> dict[str, bytes]:
    from gtok_cli.codecs import get_codec
    from gtok_cli.export.run import ExportOptions, export

    opts = ExportOptions(
        (str(src),), get_codec("loc").describe(), "rec", "llava", str(out), shard_size=37, workers=workers
    )
    export(opts)
    files = folder_bytes(out)
    manifest = orjson.loads(files.pop("manifest.json"))
    return {**files, "manifest": orjson.dumps({k: v for k, v in manifest.items() if k != "command"})}


# 2400 bytes: some batches' output fits a slot, some comes back through the pipe; 16: none fits
@pytest.mark.parametrize(("slot_bytes", "all_in_slots"), [(1 << 20, True), (2400, None), (16, False)])
def test_parallel_batches_through_slots_equal_one_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, slot_bytes: int, all_in_slots: bool | None
) -> None:
    from gtok_cli import parallel
    from gtok_cli.export import run

    monkeypatch.setattr(parallel, "BATCH_BYTES", 2000)  # ~4 records a batch: ~75 batches, far more than slots
    monkeypatch.setattr(parallel, "SLOT_BYTES", slot_bytes)
    in_slots: list[bool] = []
    real = run.BatchResult.from_shared

    def spy(self: run.BatchResult, memory: memoryview) -> list[memoryview]:
        in_slots.append(bool(self.shared))
        return real(self, memory)

    monkeypatch.setattr(run.BatchResult, "from_shared", spy)
    src = write_records(tmp_path / "r.jsonl", [referring(k) for k in range(300)])
    one = _export_folder(src, tmp_path / "one", workers=1)
    assert not in_slots  # one process: no slots
    two = _export_folder(src, tmp_path / "two", workers=2)
    assert len(in_slots) > 2 * 2 + 2  # more batches than slots: every slot was handed out again
    if all_in_slots is not None:
        assert set(in_slots) == {all_in_slots}
    else:
        assert set(in_slots) == {True, False}
    assert two == one
    assert sum(1 for n in one if n.endswith(".jsonl")) == 9  # 300 lines / 37 a shard


def test_parallel_error_late_in_the_input_stops_cleanly(tmp_path: Path) -> None:
    """A bad record far into the input, with forked workers and every slot in use: exit 2 naming the line,
    no hang (the feeder waiting for a slot is woken), the shards completed before it kept (a re-run resumes
    them), no partial shard, temp file or manifest left behind."""
    records = [referring(k) for k in range(300)]
    del records[250]["image"]["width"]
    src = write_records(tmp_path / "r.jsonl", records)
    out = tmp_path / "out"
    code = "import gtok_cli.parallel as r; r.BATCH_BYTES = 2000; from gtok_cli.cli import main; main()"
    args = [*_args(src, out, "--workers", "2")][1:]
    proc = subprocess.run(
        [sys.executable, "-c", code, "export", *args], capture_output=True, check=False, timeout=120
    )
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr.decode()
    assert "line 251" in err and "Traceback" not in err
    names = sorted(p.name for p in out.iterdir())
    # whole shards up to the failing batch (a batch of ~4 records fails as a whole), each with its marker
    shards = len(names) // 2
    assert 240 // SHARD_SIZE <= shards <= 250 // SHARD_SIZE
    assert names == [f"gtok-{k:05d}.jsonl{suffix}" for k in range(shards) for suffix in ("", ".stats.json")]


@pytest.mark.parametrize("compress", [False, True])
def test_shard_writer_as_context_manager_leaves_no_temp_on_error(tmp_path: Path, compress: bool) -> None:
    """Leaving the ``with`` block on an exception removes the shard in progress; finished shards stay."""
    from gtok_cli.shards.writer import ShardWriter

    line = b'{"a":1}\n'
    with pytest.raises(RuntimeError, match="boom"), ShardWriter(tmp_path, "p", 0, 1, 2, compress) as w:
        w.add([line] * 3)  # one finished shard (2 lines), one in progress (1 line)
        raise RuntimeError("boom")
    ext = ".jsonl.gz" if compress else ".jsonl"
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"p-00000{ext}", f"p-00000{ext}.stats.json"]
    with ShardWriter(tmp_path / "ok", "p", 0, 1, 2, compress) as w:
        w.add([line] * 3)
        infos = w.close()
    assert [i.lines for i in infos] == [2, 1]
    assert not [p for p in (tmp_path / "ok").iterdir() if p.name.endswith(".tmp")]


# ---- a re-run over a finished output renders nothing; any difference falls back to the full path ----------
def _no_render(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*_: object, **__: object) -> None:
        raise AssertionError("rendered although the output was up to date")

    monkeypatch.setattr("gtok_cli.export.run.run_batches", fail)


def _without_command(files: dict[str, bytes]) -> dict[str, object]:
    out: dict[str, object] = dict(files)
    manifest = orjson.loads(files["manifest.json"])
    manifest.pop("command")
    out["manifest.json"] = manifest
    return out


def test_finished_rerun_renders_nothing_and_keeps_every_byte(
    src: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "o"
    assert gtok(*_args(src, out)).exit_code == 0
    before = folder_bytes(out)
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    _no_render(monkeypatch)
    res = gtok(*_args(src, out))
    assert res.exit_code == 0, res.output
    assert res.stderr.splitlines()[0] == "gtok export: up to date: 5 shards checked"
    assert folder_bytes(out) == before
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == mtimes  # nothing rewritten
    # the same input under another path changes only the manifest's command and source path: nothing rendered
    copy = tmp_path / "copy.jsonl"
    copy.write_bytes(src.read_bytes())
    res = gtok(*_args(copy, out, "--workers", "2"))
    assert res.exit_code == 0, res.output
    assert res.stderr.splitlines()[0] == "gtok export: up to date: 5 shards checked"
    after = _without_command(folder_bytes(out))
    assert str(copy) in orjson.loads(folder_bytes(out)["manifest.json"])["command"]
    manifest = after["manifest.json"]
    assert isinstance(manifest, dict) and [s["path"] for s in manifest["sources"]] == [str(copy)]
    manifest["sources"][0]["path"] = str(src)
    assert after == _without_command(before)


def _flip_byte(out: Path, src: Path, t: Path) -> list[str]:
    p = out / "gtok-00002.jsonl"
    data = bytearray(p.read_bytes())
    data[10] = ord("X") if data[10] != ord("X") else ord("Y")
    p.write_bytes(bytes(data))
    return []


def _drop_marker(out: Path, src: Path, t: Path) -> list[str]:
    (out / "gtok-00001.jsonl.stats.json").unlink()
    return []


def _edit_marker_sha(out: Path, src: Path, t: Path) -> list[str]:
    p = out / "gtok-00003.jsonl.stats.json"
    marker = orjson.loads(p.read_bytes())
    marker["sha256"] = "0" * 64
    p.write_bytes(orjson.dumps(marker))
    return []


def _drop_shard(out: Path, src: Path, t: Path) -> list[str]:
    (out / "gtok-00004.jsonl").unlink()
    return []


def _change_source(out: Path, src: Path, t: Path) -> list[str]:
    records = [referring(k) for k in range(N_RECORDS)]
    records[7]["text"] = "someone else"
    write_records(src, records)
    return []


def _garble_manifest(out: Path, src: Path, t: Path) -> list[str]:
    (out / "manifest.json").write_bytes(b"{not json")
    return []


def _change_option(out: Path, src: Path, t: Path) -> list[str]:
    return ["--seed", "7"]


def _change_templates(out: Path, src: Path, t: Path) -> list[str]:
    t.write_bytes(orjson.dumps({"rec": ["Where is {expression}?"]}))
    return []


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (_flip_byte, "shard gtok-00002.jsonl does not match its sha256"),
        (_drop_marker, "shard gtok-00001.jsonl has no readable done marker"),
        (_edit_marker_sha, "the done marker of gtok-00003.jsonl does not match the manifest"),
        (_drop_shard, "shard gtok-00004.jsonl is missing"),
        (_change_source, "changed since the manifest was written"),
        (_garble_manifest, "manifest.json is unreadable"),
        (_change_option, "the options differ from the manifest's (seed)"),
        (_change_templates, "the options differ from the manifest's (templates)"),
    ],
)
def test_any_difference_falls_back_and_equals_a_clean_run(
    tmp_path: Path, change: Any, why: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = write_records(tmp_path / "r.jsonl", [referring(k) for k in range(N_RECORDS)])
    t = tmp_path / "t.json"
    t.write_bytes(orjson.dumps({"rec": ["Box for: {expression}"]}))
    out = tmp_path / "o"
    assert gtok(*_args(src, out, "--templates", str(t))).exit_code == 0
    extra = change(out, src, t)
    rendered: list[int] = []
    real = run_batches

    def counting(*a: Any, **kw: Any) -> Any:
        rendered.append(1)
        return real(*a, **kw)

    monkeypatch.setattr("gtok_cli.export.run.run_batches", counting)
    res = gtok(*_args(src, out, "--templates", str(t), *extra))
    assert res.exit_code == 0, res.output
    line = res.stderr.splitlines()[0]  # one line saying why, then the usual summary
    assert line.startswith("gtok export: re-exporting: ") and why in line, res.stderr
    assert rendered == [1]
    clean = tmp_path / "clean"
    assert gtok(*_args(src, clean, "--templates", str(t), *extra)).exit_code == 0
    assert _without_command(folder_bytes(out)) == _without_command(folder_bytes(clean))
    # and now it is up to date again
    res = gtok(*_args(src, out, "--templates", str(t), *extra))
    assert res.stderr.splitlines()[0] == "gtok export: up to date: 5 shards checked"
