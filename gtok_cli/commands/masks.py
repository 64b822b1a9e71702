"""`gtok masks`: add GETok grid-token sets (``mask_tokens``) to every region that has a mask (issue 5)."""

from __future__ import annotations

import contextlib
import sys
from dataclasses import replace
from pathlib import Path

import typer

from gtok_cli.commands.ingest_run import REJECTS_HELP
from gtok_cli.errors import InputError

ENGINES = ("local", "ray")


def _auto_device(device: str, backend: str) -> str:
    if device != "auto":
        return device
    if backend != "sam":
        return "cpu"  # the cells backend is fastest as bit-packed numpy; ask for cuda explicitly
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def masks(
    records: str = typer.Argument(..., help="Records JSONL (.gz ok, - for stdin)."),
    out: str = typer.Option(..., "--out", "-o", help="Output records JSONL (.gz ok, - for stdout)."),
    images: Path | None = typer.Option(None, "--images", help="Images root (needed by --backend sam)."),
    backend: str = typer.Option("cells", "--backend", help="cells (each grid point's own cell) | sam."),
    sam_checkpoint: Path | None = typer.Option(None, "--sam-checkpoint", help="Local SAM weights (.pth)."),
    model_type: str = typer.Option(
        "vit_h", "--model-type", help="vit_h | vit_l | vit_b (must match weights)."
    ),
    grid: int = typer.Option(32, "--grid", help="Grid size n (n x n anchors)."),
    tau: float = typer.Option(0.9, "--tau", help="Target IoU of the union with the mask."),
    variant: str = typer.Option("sorted", "--variant", help="sorted (paper) | best-gain."),
    max_tokens: int | None = typer.Option(None, "--max-tokens", help="At most K anchors per mask."),
    select: str = typer.Option(
        "max-pred-iou", "--select", help="SAM output per point: max-pred-iou (of 3) | single."
    ),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda[:i]."),
    dtype: str = typer.Option("fp32", "--dtype", help="SAM compute dtype: fp32 | bf16."),
    batch_images: int = typer.Option(1, "--batch-images", help="Images per SAM encoder batch."),
    prompt_chunk: int = typer.Option(64, "--prompt-chunk", help="Grid prompts per SAM decoder call."),
    resume: bool = typer.Option(
        False,
        "--resume",
        help="Continue a killed run from OUT.partial: images already written are kept where their recorded "
        "sha256 checks, the rest is redone.",
    ),
    on_error: str = typer.Option(
        "fail",
        "--on-error",
        help="fail: stop at the first image that cannot be solved (exit 2); skip: leave it out, write it "
        "with its reason to the rejects file, keep the rest.",
    ),
    rejects: str | None = typer.Option(None, "--rejects", help=REJECTS_HELP),
    engine: str = typer.Option("local", "--engine", help="local (this process) | ray (a Ray cluster)."),
    ray_address: str | None = typer.Option(
        None,
        "--ray-address",
        help="--engine ray: auto (the cluster of this node) | ray://HOST:PORT; default: start a local one.",
    ),
    workers: int = typer.Option(
        0, "--workers", help="--engine ray: actors (0: one per GPU share, else one per --cpus-per-worker)."
    ),
    gpus_per_worker: float | None = typer.Option(
        None,
        "--gpus-per-worker",
        help="--engine ray: GPUs per actor (0.5: two share a GPU); default 1 if the cluster has GPUs.",
    ),
    cpus_per_worker: float = typer.Option(1.0, "--cpus-per-worker", help="--engine ray: CPUs per actor."),
) -> None:
    """Solve the fewest grid anchors whose candidate masks' union reaches IoU >= tau with each region mask.

    Anchors are written in ascending grid index (row-major: j, then i). Records without masks pass through.
    """
    from gtok_cli.commands.ingest_run import rejects_path
    from gtok_cli.errors import UsageError
    from gtok_cli.extras import require
    from gtok_cli.jsonio import writing
    from gtok_cli.limits import check_all
    from gtok_cli.masks.run import run_masks
    from gtok_cli.masks.solver import MaskSolverConfig
    from gtok_cli.paths import refuse_overwrite

    check_all({"grid": grid, "batch_images": batch_images})
    if engine not in ENGINES:
        raise UsageError(f"--engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    ray_only = {
        "--ray-address": ray_address is not None,
        "--workers": workers != 0,
        "--gpus-per-worker": gpus_per_worker is not None,
        "--cpus-per-worker": cpus_per_worker != 1.0,
    }
    if engine == "local" and any(ray_only.values()):
        given = ", ".join(k for k, v in ray_only.items() if v)
        raise UsageError(f"{given}: only with --engine ray")
    rejects = rejects_path(out, on_error, rejects)
    refuse_overwrite(
        {"RECORDS": records, "--images": images, "--sam-checkpoint": sam_checkpoint},
        {
            "--out": [out] if out == "-" else [out, out + ".partial", out + ".progress"],
            "--rejects": rejects,
        },
    )
    if backend == "sam":
        require("torch", "torchvision", "segment_anything", feature="--backend sam")
    elif device.startswith("cuda"):
        require("torch", feature=f"--device {device}")
    config = MaskSolverConfig(
        backend=backend,
        grid=grid,
        tau=tau,
        variant=variant,
        max_tokens=max_tokens,
        select=select,
        model_type=model_type,
        sam_checkpoint=str(sam_checkpoint) if sam_checkpoint else None,
        device="cpu" if engine == "ray" else _auto_device(device, backend),  # ray: resolved below
        dtype=dtype,
        prompt_chunk=prompt_chunk,
    )
    with contextlib.ExitStack() as stack:
        distributor = None
        if engine == "ray":
            from gtok_cli.masks.engine_ray import RayEngine

            distributor = stack.enter_context(
                RayEngine(
                    address=ray_address,
                    workers=workers,
                    gpus_per_worker=gpus_per_worker,
                    cpus_per_worker=cpus_per_worker,
                )
            )
            config = replace(config, device=distributor.resolve_device(device, backend))
        # the resumable .partial / .progress files are written in place: an OS error about them names --out
        with writing(out, out + ".partial", out + ".progress") if out != "-" else contextlib.nullcontext():
            stats = run_masks(
                records,
                out,
                config,
                images_root=images,
                batch_images=batch_images,
                resume=resume,
                on_error="skip" if on_error == "skip" else "fail",
                rejects=rejects if on_error == "skip" else None,
                engine=distributor,
            )
    s = stats.summary()
    text = (
        f"gtok masks: {s['images']} images, {s['records']} records, {s['regions_tokenised']} masked regions, "
        f"{s['objects_solved']} masks solved; mean IoU {s['mean_iou']:.4f}, "
        f"mean tokens {s['mean_tokens']:.2f}, {s['reached_tau']}/{s['objects_solved']} reached tau={tau}"
    )
    if on_error == "skip":
        text += f"; {s['rejected_images']} images ({s['rejected_records']} records) rejected"
        text += f", written to {rejects}"
    print(text, file=sys.stderr)
    if s["records"] == 0 and s["rejected_images"] > 0:
        # a run that wrote nothing is a failure even when every failure was "skipped"
        raise InputError(
            f"every image was rejected ({s['rejected_images']}): {out} holds no record; reasons in {rejects}",
            file=str(records),
            reason="masks.all_rejected",
        )


MASKS_EPILOG = (
    "Examples:\n\n"
    "  gtok masks refcoco.jsonl --images train2014 --out refcoco.masks.jsonl\n\n"
    "  gtok masks refcoco.jsonl --images train2014 --backend sam --sam-checkpoint sam_vit_h.pth "
    "--model-type vit_h --device cuda --out refcoco.masks.jsonl\n\n"
    "  gtok ingest coco --instances instances_val2017.json --out - | gtok masks - --out coco.masks.jsonl"
)


def register(app: typer.Typer) -> None:
    """Add this module's command(s) to the app."""
    app.command("masks", epilog=MASKS_EPILOG)(masks)
