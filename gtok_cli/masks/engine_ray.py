"""``gtok masks --engine ray``: the same :class:`~gtok_cli.masks.work.ImageBatchSolver` in Ray actors.

The driver (this process) cuts the input into the jobs the local engine would run (``--batch-images``
images each), hands them to ``--workers`` actors — each builds its backend once (SAM on its GPU, or the
cells backend) — and yields the results **in job order** to the one writer (:func:`run_masks`), which
writes, marks progress and resumes exactly as with the local engine: the output is byte-identical.

Why actors and an ordered window rather than Ray Data (docs/scale.md): the writer must see results in input
order and mark progress per batch for ``--resume``; with actors the driver holds that order itself (a
bounded reorder window), a job is a plain actor call, and a worker that dies is restarted by Ray
(``max_restarts=-1``) while the driver runs its unfinished jobs again, so their images are redone. Ray is
imported only in this module, lazily, behind the ``[ray]`` extra.

Library use::

    with RayEngine(workers=2) as engine:          # ray.init() unless already connected
        run_masks("in.jsonl", "out.jsonl", config, engine=engine)
"""

from __future__ import annotations

import os
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from gtok_cli.errors import GtokError, InputError, UsageError
from gtok_cli.masks.work import BatchResult, ImageBatchSolver, ImageJob, reject_object

INSTALL_FEATURE = "--engine ray"
WINDOW_PER_WORKER = 2
"""Jobs queued per actor: one running, one waiting, so an actor never idles while the driver writes."""
FAULT_ENV = "GTOK_MASKS_RAY_FAULT_FILE"
"""Test hook: a file naming one image; the actor that meets it takes the file and exits (a killed worker);
``always IMAGE``: every actor that meets it exits (an image that always runs its worker out of memory)."""


def require_ray() -> Any:
    """``import ray``, or exit 2 with the install line."""
    from gtok_cli.extras import require

    require("ray", feature=INSTALL_FEATURE)
    import ray

    return ray


class SolverActor:
    """One Ray actor: the solver it was given (by value: small, or with an in-memory SAM model, shipped
    once per actor), its backend built on first use on the actor's device."""

    def __init__(self, solver: ImageBatchSolver) -> None:
        self.solver = solver

    def solve(self, job: ImageJob) -> BatchResult:
        _die_if_asked(job)
        return self.solver(job)


def _die_if_asked(job: ImageJob) -> None:
    """The fault-injection hook of the tests (FAULT_ENV): exit the worker process once, mid-run."""
    path = os.environ.get(FAULT_ENV)
    if not path:
        return
    try:
        with open(path, encoding="utf-8") as fh:
            target = fh.read().strip()
        always, _, target = target.rpartition(" ")
        if not any(ref.file == target for ref, _ in job.images):
            return
        if always != "always":
            os.rename(path, path + ".done")  # one worker claims it, once
    except OSError:  # no fault asked for, or another worker took it
        return
    os._exit(1)


@dataclass
class RayEngine:
    """Runs jobs on a Ray cluster; a context manager that connects (and disconnects if it connected).

    ``address``: ``None`` starts a local cluster on this machine (all its GPUs, or CPUs); ``"auto"`` joins
    the cluster this node belongs to; ``"ray://HOST:PORT"`` a remote one (Ray Client). ``workers``: 0 =
    one per GPU share (``gpus_per_worker``) or per ``cpus_per_worker`` CPUs of the cluster.
    """

    address: str | None = None
    workers: int = 0
    gpus_per_worker: float | None = None
    """None: 1 when the cluster has GPUs and the device asks for one (auto / cuda), else 0"""
    cpus_per_worker: float = 1.0
    retries: int = 3
    """times a job whose worker died is run again (alone on a worker; Ray restarts the dead one)"""
    init_kwargs: dict[str, Any] | None = None
    """extra ``ray.init`` arguments (tests: num_cpus, object_store_memory, _temp_dir)"""

    def __post_init__(self) -> None:
        if self.workers < 0:
            raise UsageError(f"--workers must be >= 0, got {self.workers}")
        if self.gpus_per_worker is not None and self.gpus_per_worker < 0:
            raise UsageError(f"--gpus-per-worker must be >= 0, got {self.gpus_per_worker}")
        if self.retries < 0:
            raise UsageError(f"retries must be >= 0, got {self.retries}")
        if self.cpus_per_worker <= 0:
            raise UsageError(f"--cpus-per-worker must be > 0, got {self.cpus_per_worker}")
        self._owns_connection = False

    # -- connection -----------------------------------------------------------------------------------------
    def __enter__(self) -> RayEngine:
        ray = require_ray()
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": "WARNING"}
            kwargs.update(self.init_kwargs or {})
            try:
                ray.init(address=self.address, **kwargs)
            except (ConnectionError, ValueError, RuntimeError) as exc:
                where = self.address or "a local cluster"
                raise UsageError(
                    f"--engine ray cannot connect to {where}: {str(exc).splitlines()[0]}"
                ) from None
            self._owns_connection = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self._owns_connection:
            import ray

            ray.shutdown()
            self._owns_connection = False

    def cluster_gpus(self) -> float:
        import ray

        return float(ray.cluster_resources().get("GPU", 0.0))

    def gpus(self, device: str) -> float:
        """GPUs per worker: as given, else one when the cluster has GPUs and ``device`` may use one."""
        if self.gpus_per_worker is not None:
            return self.gpus_per_worker
        return 1.0 if device in ("auto", "cuda") and self.cluster_gpus() > 0 else 0.0

    def resolve_device(self, device: str, backend: str) -> str:
        """The device every worker uses: Ray assigns each its GPU (it sees it as ``cuda``)."""
        if device.startswith("cuda:"):
            raise UsageError(f"--device {device} with --engine ray: Ray assigns the GPUs; use --device cuda")
        gpus = self.gpus(device)
        if device == "cuda" and gpus == 0:
            raise UsageError(
                "--device cuda with --engine ray needs --gpus-per-worker > 0 (no GPU in the cluster?)"
            )
        if device == "auto":  # as the local engine: the cells backend stays on CPU unless asked
            return "cuda" if gpus > 0 and backend == "sam" else "cpu"
        return device

    def n_workers(self, device: str, jobs: int) -> int:
        import ray

        n = self.workers
        if n == 0:
            gpus = self.gpus(device)
            if gpus > 0:
                n = int(self.cluster_gpus() // gpus)
            else:
                n = int(float(ray.cluster_resources().get("CPU", 1.0)) // self.cpus_per_worker)
        return max(1, min(n, jobs))

    # -- the distributor ------------------------------------------------------------------------------------
    def __call__(self, solver: ImageBatchSolver, jobs: list[ImageJob]) -> Iterator[BatchResult]:
        if not jobs:
            return
        import ray

        device = solver.config.device
        remote: Any = ray.remote(SolverActor).options(
            num_cpus=self.cpus_per_worker,
            num_gpus=self.gpus(device) if device.startswith("cuda") else 0,
            max_restarts=-1,
            max_task_retries=0,  # the driver runs a job again itself, alone (see _ordered)
        )
        actors: list[Any] = [remote.remote(solver) for _ in range(self.n_workers(device, len(jobs)))]
        try:
            yield from _ordered(ray, actors, jobs, solver, self.retries)
        finally:
            for actor in actors:
                ray.kill(actor, no_restart=True)


def _ordered(
    ray: Any, actors: list[Any], jobs: list[ImageJob], solver: ImageBatchSolver, retries: int
) -> Iterator[BatchResult]:
    """Results in job order; at most WINDOW_PER_WORKER jobs per actor in flight, and at most that many
    per actor done but not yet written (a slow job at the head holds the window, not memory).

    A job whose worker died is run again (up to ``retries`` times) alone on an idle worker, so a job that
    kills its worker (an image that runs it out of memory) takes no other job down with it.
    """
    n = len(actors)
    load = [0] * n
    alone = [False] * n
    pending: dict[Any, tuple[int, int]] = {}  # ObjectRef -> (job index, actor index)
    ready: dict[int, BatchResult] = {}
    again: deque[int] = deque()
    deaths: Counter[int] = Counter()
    submitted = written = 0

    def submit(k: int, a: int) -> None:
        pending[actors[a].solve.remote(jobs[k])] = (k, a)
        load[a] += 1

    while written < len(jobs):
        while again and 0 in load:
            a = load.index(0)
            submit(again.popleft(), a)
            alone[a] = True
        while not again and submitted < len(jobs) and submitted - written < WINDOW_PER_WORKER * n:
            free = [a for a in range(n) if not alone[a] and load[a] < WINDOW_PER_WORKER]
            if not free:
                break
            submit(submitted, min(free, key=load.__getitem__))
            submitted += 1
        if written in ready:
            yield ready.pop(written)
            written += 1
            continue
        done, _ = ray.wait(list(pending), num_returns=1)
        for ref in done:
            k, a = pending.pop(ref)
            load[a] -= 1
            ran_alone, alone[a] = alone[a], False
            result = _result(ray, ref, jobs[k], solver, last_try=ran_alone and deaths[k] >= retries)
            if result is None:  # its worker died: Ray restarts it; the job goes again, alone
                deaths[k] += ran_alone  # only a death alone is this job's doing (Ray says the same for all)
                again.append(k)
            else:
                ready[k] = result


def _result(
    ray: Any, ref: Any, job: ImageJob, solver: ImageBatchSolver, *, last_try: bool
) -> BatchResult | None:
    """The job's result; a gtok error raised in the worker as itself; None when its worker died, unless
    ``last_try``: then an error of its images (rejected under ``--on-error skip``, like an unreadable one)."""
    from ray.exceptions import RayActorError, RayTaskError

    try:
        result: BatchResult = ray.get(ref)
        return result
    except RayTaskError as exc:
        if isinstance(exc.cause, GtokError):
            raise exc.cause from None
        raise
    except RayActorError as exc:
        if not last_try:
            return None
        first, last = job.images[0][0].file, job.images[-1][0].file
        names = first if first == last else f"{first} .. {last}"
        error = InputError(
            f"the Ray worker solving {names} died on every try (out of memory?): "
            f"{str(exc).splitlines()[0][:200]}",
            file=solver.file,
            field="image",
            reason="worker.died",
        )
        result = BatchResult(job.start, len(job.images))
        if solver.on_error == "fail":
            result.error = error
            return result
        for k, (ref_, lines) in enumerate(job.images):
            result.rejected.append((job.start + k, reject_object(ref_, lines, error)))
            result.stats.rejected_images += 1
            result.stats.rejected_records += len(lines)
        return result
