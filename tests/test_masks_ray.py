"""`gtok masks --engine ray` (issue 18) on a local Ray cluster started here: 2 CPUs, no GPU.

Every test compares the Ray engine's output with the local engine's, byte for byte, on the same input and
options: the cells backend through the CLI, the small random-weight SAM of test_masks_sam through the library
(it is an in-memory model: Ray ships it to the actors), a worker killed mid-run, a run interrupted and
resumed, and images rejected under ``--on-error skip``. One cluster serves the module (starting one costs
seconds); its temp dir and logs live under /tmp/gtok-ray-*, removed with it.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from test_masks_cli import fixture_records, masks_cli, write_jsonl

from gtok_cli.masks import MaskSolverConfig, run_masks
from gtok_cli.masks import run as run_mod
from gtok_cli.masks.engine_ray import FAULT_ENV, RayEngine

ray = pytest.importorskip("ray")  # the [test] extra installs it: CI runs these

REPO = Path(__file__).resolve().parents[1]
SAMPLE_IMAGES = REPO / "sample_data" / "coco" / "val2017"
CELLS = ["--grid", "8", "--tau", "0.8", "--variant", "best-gain"]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Path]:
    """A 2-CPU Ray cluster for the module; yields the fault-hook file path its workers watch."""
    temp = Path(tempfile.mkdtemp(prefix="gtok-ray-", dir="/tmp"))  # short: Ray's socket paths must fit
    fault = temp / "fault"
    os.environ[FAULT_ENV] = str(fault)  # before ray.init: the workers inherit it
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=200 << 20,
        _temp_dir=str(temp / "r"),
        logging_level="WARNING",
        log_to_driver=False,
    )
    try:
        yield fault
    finally:
        ray.shutdown()
        os.environ.pop(FAULT_ENV, None)
        shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="module")
def sample_src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Records of the 12 sample_data COCO images (4 records per image, masks from the genuine annotations)."""
    src = tmp_path_factory.mktemp("src") / "in.jsonl"
    records = []
    for r in fixture_records(79):
        if (SAMPLE_IMAGES / r["image"]["file"]).is_file():
            records.append(r)
    assert len({r["image"]["file"] for r in records}) == 12
    return write_jsonl(src, records)


def image_files(src: Path) -> list[str]:
    """Images in output order (first appearance), read from the input by hand."""
    seen: dict[str, None] = {}
    for line in src.read_bytes().splitlines():
        seen.setdefault(orjson.loads(line)["image"]["file"], None)
    return list(seen)


# -- cells backend through the CLI -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cells_local(sample_src: Path, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    out = tmp_path_factory.mktemp("local") / "local.jsonl"
    result = masks_cli(sample_src, out, *CELLS, "--batch-images", "2")
    assert result.exit_code == 0, result.output
    return out.read_bytes()


@pytest.mark.parametrize("workers", [1, 2])
def test_cells_ray_is_byte_identical(
    cluster: Path, sample_src: Path, cells_local: bytes, tmp_path: Path, workers: int
) -> None:
    out = tmp_path / "ray.jsonl"
    result = masks_cli(
        sample_src, out, *CELLS, "--batch-images", "2", "--engine", "ray", "--workers", str(workers)
    )
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == cells_local
    assert "12 images, 48 records" in result.output
    assert not list(tmp_path.glob("*.partial")) and not list(tmp_path.glob("*.progress"))


def test_killed_worker_is_restarted_and_its_images_redone(
    cluster: Path, sample_src: Path, cells_local: bytes, tmp_path: Path
) -> None:
    """The worker that meets the 7th image exits (os._exit: as if killed); Ray restarts it and retries."""
    victim = image_files(sample_src)[6]
    cluster.write_text(victim)
    out = tmp_path / "ray.jsonl"
    result = masks_cli(sample_src, out, *CELLS, "--batch-images", "2", "--engine", "ray", "--workers", "2")
    assert result.exit_code == 0, result.output
    assert not cluster.exists() and cluster.with_name("fault.done").exists()  # the hook did fire
    cluster.with_name("fault.done").unlink()
    assert out.read_bytes() == cells_local


def test_an_image_that_always_kills_its_worker_is_rejected_alone(
    cluster: Path, sample_src: Path, cells_local: bytes, tmp_path: Path
) -> None:
    """Every worker that meets the 5th image dies (as out of memory would): after 1 retry its batch is
    rejected with reason worker.died; the job queued behind it on the same worker is redone, not lost."""
    victim = image_files(sample_src)[4]
    cluster.write_text(f"always {victim}")
    try:
        out, rej = tmp_path / "ray.jsonl", tmp_path / "rejects.jsonl"
        cfg = MaskSolverConfig(grid=8, tau=0.8, variant="best-gain")
        stats = run_masks(
            sample_src, out, cfg, batch_images=2, on_error="skip", rejects=rej,
            engine=RayEngine(workers=1, retries=1),
        )  # fmt: skip
    finally:
        cluster.unlink()
    batch = image_files(sample_src)[4:6]  # --batch-images 2: the victim's job holds images 5 and 6
    want = b"".join(x + b"\n" for x in cells_local.splitlines() if not any(f.encode() in x for f in batch))
    assert out.read_bytes() == want
    assert (stats.images, stats.rejected_images, stats.rejected_records) == (10, 2, 8)
    got = [(r["image"], r["reason"]) for r in map(orjson.loads, rej.read_bytes().splitlines())]
    assert got == [(batch[0], "worker.died"), (batch[1], "worker.died")]


def test_resume_after_an_interrupted_ray_run(
    cluster: Path, sample_src: Path, cells_local: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C on the driver after 3 batches (6 images) written; --resume solves only the 6 left."""
    real = run_mod._Appender.__call__
    calls = {"n": 0}

    def stops(self: Any, *args: Any, **kw: Any) -> None:
        calls["n"] += 1
        if calls["n"] > 3:
            raise KeyboardInterrupt
        real(self, *args, **kw)

    out = tmp_path / "ray.jsonl"
    args = [*CELLS, "--batch-images", "2", "--engine", "ray", "--workers", "2"]
    with monkeypatch.context() as m:
        m.setattr(run_mod._Appender, "__call__", stops)
        assert masks_cli(sample_src, out, *args).exit_code != 0
    assert not out.exists() and out.with_name("ray.jsonl.partial").exists()
    result = masks_cli(sample_src, out, *args, "--resume")
    assert result.exit_code == 0, result.output
    assert "resuming" in result.output and "image 7 of 12" in result.output
    assert "6 images, 24 records" in result.output  # 4 records per image: only the 6 left were solved
    assert out.read_bytes() == cells_local


def test_bad_mask_rejected_alike_under_skip(cluster: Path, sample_src: Path, tmp_path: Path) -> None:
    """A mask that does not rasterise: its image's records go to the rejects file, the rest is written."""
    records = [orjson.loads(x) for x in sample_src.read_bytes().splitlines()]
    bad_file = records[8]["image"]["file"]
    records[8]["regions"][0]["mask"] = [[1, 2, 3, 4]]  # a polygon of two points
    src = write_jsonl(tmp_path / "in.jsonl", records)
    outs = {}
    for engine in ("local", "ray"):
        out = tmp_path / f"{engine}.jsonl"
        workers = ["--workers", "2"] if engine == "ray" else []
        result = masks_cli(src, out, *CELLS, "--on-error", "skip", "--engine", engine, *workers)
        assert result.exit_code == 0, result.output
        assert "1 images (4 records) rejected" in result.output
        outs[engine] = (out.read_bytes(), Path(f"{out}.rejects.jsonl").read_bytes())
    assert outs["ray"] == outs["local"]
    data, rejects = outs["local"]
    assert bad_file.encode() not in data and data.count(b"\n") == 44
    (reject,) = [orjson.loads(x) for x in rejects.splitlines()]
    assert reject["image"] == bad_file and reject["field"] == "regions[0].mask[0]"
    assert reject["record_ids"] == [r["id"] for r in records if r["image"]["file"] == bad_file]


def test_fail_is_one_line_exit_2_from_a_worker(cluster: Path, sample_src: Path, tmp_path: Path) -> None:
    records = [orjson.loads(x) for x in sample_src.read_bytes().splitlines()]
    records[5]["regions"][0]["mask"] = [[1, 2, 3, 4]]
    src = write_jsonl(tmp_path / "in.jsonl", records)
    said = {}
    for engine in ("local", "ray"):
        workers = ["--workers", "2"] if engine == "ray" else []
        result = masks_cli(src, tmp_path / "o.jsonl", *CELLS, "--engine", engine, *workers)
        assert result.exit_code == 2
        assert "Traceback" not in result.output and not (tmp_path / "o.jsonl").exists()
        said[engine] = result.output
        (tmp_path / "o.jsonl.partial").unlink()  # what it wrote before the bad image: kept for --resume
    assert said["ray"] == said["local"]
    where = f"{src}, record {records[5]['id']}, field regions[0].mask[0]"
    assert said["local"].startswith(f"gtok: error: {where}")


# -- the random-weight SAM through the library -------------------------------------------------------------
@pytest.mark.sam
@pytest.mark.parametrize("workers", [1, 2])
def test_sam_ray_is_byte_identical(cluster: Path, tmp_path: Path, workers: int) -> None:
    """The tiny random SAM (test_masks_sam) on 6 real images, one missing and one of another size: the
    records, the rejects and the counts agree with the local engine."""
    pytest.importorskip("segment_anything")
    from test_masks_sam import tiny_sam

    records = [r for r in fixture_records(79) if (SAMPLE_IMAGES / r["image"]["file"]).is_file()][:24]
    records[4] = {**records[4], "image": {**records[4]["image"], "file": "missing.jpg"}}  # one record alone
    wrong = records[12]["image"]["file"]
    for r in records[12:16]:
        r["image"] = {**r["image"], "width": r["image"]["width"] + 1}
    src = write_jsonl(tmp_path / "in.jsonl", records)
    cfg = MaskSolverConfig(backend="sam", grid=8, tau=0.5, model_type="tiny", device="cpu")
    got = {}
    for name, engine in (("local", None), ("ray", RayEngine(workers=workers))):
        out, rej = tmp_path / f"{name}.jsonl", tmp_path / f"{name}.rejects.jsonl"
        stats = run_masks(
            src, out, cfg, images_root=SAMPLE_IMAGES, batch_images=2, sam_model=tiny_sam(),
            on_error="skip", rejects=rej, engine=engine,
        )  # fmt: skip
        got[name] = (out.read_bytes(), rej.read_bytes(), stats.images, stats.rejected_images)
    assert got["ray"] == got["local"]
    data, rejects, images, rejected = got["local"]
    assert (images, rejected) == (5, 2)
    reasons = [(r["image"], r["reason"]) for r in map(orjson.loads, rejects.splitlines())]
    assert reasons == [("missing.jpg", "image.missing"), (wrong, "image.size_mismatch")]
    assert data.count(b"\n") == 24 - 1 - 4 and data.count(b'"backend":"sam"') > 0


# -- without a cluster -------------------------------------------------------------------------------------
def test_without_the_ray_extra_exit_2(
    sample_src: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails, as without the extra
    out = tmp_path / "o.jsonl"
    result = masks_cli(sample_src, out, "--engine", "ray")
    assert result.exit_code == 2
    hint = "--engine ray needs the [ray] extra (cannot import ray): pip install -e '.[ray]'"
    assert result.output.strip() == f"gtok: error: {hint}"
    assert not out.exists() and not Path(f"{out}.partial").exists()


@pytest.mark.parametrize(
    ("kwargs", "device", "backend", "want"),
    [
        ({"gpus_per_worker": 0}, "auto", "sam", "cpu"),
        ({"gpus_per_worker": 1}, "auto", "sam", "cuda"),
        ({"gpus_per_worker": 0.5}, "auto", "cells", "cpu"),  # as the local engine: cells stays on CPU
        ({"gpus_per_worker": 0.5}, "cuda", "cells", "cuda"),
        ({"gpus_per_worker": 0}, "cuda", "sam", "needs --gpus-per-worker > 0"),
        ({"gpus_per_worker": 1}, "cuda:1", "sam", "Ray assigns the GPUs"),
    ],
)
def test_device_of_the_workers(kwargs: dict[str, Any], device: str, backend: str, want: str) -> None:
    from gtok_cli.errors import UsageError

    engine = RayEngine(**kwargs)
    if want in ("cpu", "cuda"):
        assert engine.resolve_device(device, backend) == want
    else:
        with pytest.raises(UsageError, match=want):
            engine.resolve_device(device, backend)


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--engine", "ray", "--workers", "-1"], "--workers must be >= 0"),
        (["--engine", "ray", "--cpus-per-worker", "0"], "--cpus-per-worker must be > 0"),
        (["--engine", "spark"], "--engine must be one of local, ray"),
        (["--workers", "2"], "--workers: only with --engine ray"),
        (["--ray-address", "auto", "--gpus-per-worker", "1"], "--ray-address, --gpus-per-worker: only with"),
    ],
)
def test_bad_engine_options_exit_2(sample_src: Path, tmp_path: Path, args: list[str], said: str) -> None:
    result = masks_cli(sample_src, tmp_path / "o.jsonl", *args)
    assert result.exit_code == 2 and said in result.output, result.output
    assert "Traceback" not in result.output
