"""Propose-and-refine samples (GETok): ``--task refine`` and ``--refine`` on the other tasks
(docs/spec.md#refinement).

The base task's sample is built as usual; then every shape of its answer (in answer order, which is the order
of ``meta.regions``) is replaced by a simulated turn-1 proposal in grid tokens
(:func:`gtok_cli.refine.make_refinement`, random stream ``rng_for(seed, record id, "refine/<k>")``), and K
refinement turns are appended::

    user:      <the base task's question>
    assistant: <box><grid_7_6><grid_19_23></box>                     (the proposal)
    user:      <a "refine" phrasing>
    assistant: <offset><box><OFF_1_0><OFF_0_-1></box></offset>       (one offset per anchor, in order)
    …          (K turns; turn k+1 answers the geometry left by turn k)

A turn lists the shapes that still have anchors (a shape whose anchors were all deleted is gone, as in
``GridCodec.apply_refinement``); when none is left the conversation ends early. ``--task refine`` is ``rec``
(``point`` with ``--shape point``) on referring records. ``meta.regions`` keeps the truth (``bbox``,
``point``, ``polyline``, ``mask_tokens`` and, for masks, the record's ``mask``) and ``meta.refine`` the
settings (:mod:`gtok_cli.refine.settings`), from which verify recomputes every target.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from gtok_cli.codecs.base import Codec, Shape
from gtok_cli.codecs.grid import WRAPPER, GridCodec
from gtok_cli.errors import UsageError
from gtok_cli.export import tasks
from gtok_cli.refine import ShapeRefinement, make_refinement, rng_for
from gtok_cli.refine.lattice import OffsetLattice
from gtok_cli.refine.settings import RefineSettings

NOT_REFINABLE = {"reg": "its spatial tokens are in the question, not the answer"}


def grid_codec(codec: Codec, what: str) -> GridCodec:
    if not isinstance(codec, GridCodec):
        raise UsageError(f"{what} needs --scheme grid (offset tokens are GETok's), not {codec.name!r}")
    return codec


def lattice_of(codec: GridCodec) -> OffsetLattice:
    try:
        return OffsetLattice.from_codec(codec)
    except ValueError as exc:
        raise UsageError(f"--offset-step: {exc}") from None


def check_options(task: str, settings: RefineSettings | None, codec: Codec) -> None:
    """UsageError unless the task can be refined, the scheme is grid and the settings fit its lattice."""
    grid = grid_codec(codec, "--task refine" if task == "refine" else "--refine")
    if task in NOT_REFINABLE:
        raise UsageError(f"--refine does not apply to --task {task}: {NOT_REFINABLE[task]}")
    if settings is None:
        raise UsageError("--task refine needs refinement settings (the CLI always passes them)")
    if settings.lattice != lattice_of(grid):
        raise UsageError(
            f"refinement lattice {settings.lattice} differs from the scheme's {lattice_of(grid)}"
        )


def refine_builder(task: str, settings: RefineSettings | None, codec: Codec) -> tasks.Builder:
    """A builder: the base task's sample turned into a propose-and-refine conversation."""
    grid = grid_codec(codec, "refinement")
    if settings is None:
        raise UsageError("refinement needs its settings")
    meta = {"refine": settings.to_json()}

    def build(record: dict[str, Any], size: tuple[int, int], ctx: tasks.TaskContext) -> tasks.Sample:
        base: tasks.Builder
        if task == "refine":
            tasks._expect(record, "referring")
            base = tasks.build_point if ctx.shape == "point" else tasks.build_rec
        else:
            base = tasks.BUILDERS[task]
        sample = base(record, size, dataclasses.replace(ctx, truth_masks=True))
        return refine_sample(sample, record, size, ctx, grid, settings, meta)

    return build


def _request_shapes(req: tasks.Request) -> list[Shape]:
    if isinstance(req, tuple):  # the fast path's one-box request
        return [Shape.box(*req[:4])]
    return [s for g in req for s in g.shapes]


def _truth_coords(kind: str, truth: dict[str, Any]) -> list[float]:
    if kind == "box":
        return [float(v) for v in truth["bbox"]]
    if kind == "point":
        return [float(v) for v in truth["point"]]
    return [float(v) for v in truth["polyline"]]


def refine_shape(
    shape: Shape,
    truth: dict[str, Any],
    size: tuple[int, int],
    settings: RefineSettings,
    rng: np.random.Generator,
    record_id: str,
) -> ShapeRefinement:
    """Proposal + turns of one shape of the answer against its truth region."""
    if shape.kind == "mask":
        from gtok_cli.geometry.rasterize import region_mask_to_bool  # pycocotools, only for masks

        if truth.get("mask") is None:
            raise tasks.Skip("region.no_mask")
        mask = region_mask_to_bool(truth["mask"], size[0], size[1], record=record_id, field="regions.mask")
        return make_refinement(
            "mask",
            size,
            settings.lattice,
            rng,
            settings.turns,
            mask=mask,
            mask_anchors=np.asarray(shape.anchors, dtype=np.int64),
            proposal_cfg=settings.proposal,
            target_cfg=settings.targets,
            class_cfg=settings.classes,
        )
    return make_refinement(
        shape.kind,
        size,
        settings.lattice,
        rng,
        settings.turns,
        coords=_truth_coords(shape.kind, truth),
        proposal_cfg=settings.proposal,
        target_cfg=settings.targets,
        class_cfg=settings.classes,
    )


def proposal_text(codec: GridCodec, ref: ShapeRefinement) -> str:
    tag = WRAPPER[ref.kind]
    return f"<{tag}>" + "".join(codec.token(int(i), int(j)) for i, j in ref.proposal) + f"</{tag}>"


def refine_sample(
    sample: tasks.Sample,
    record: dict[str, Any],
    size: tuple[int, int],
    ctx: tasks.TaskContext,
    codec: GridCodec,
    settings: RefineSettings,
    meta: dict[str, Any],
) -> tasks.Sample:
    rid = record["id"]
    per_request = [_request_shapes(r) for r in sample.requests]
    shapes = [s for group in per_request for s in group]
    if len(shapes) != len(sample.regions):  # builders write one truth region per shape, in order
        raise AssertionError(f"{len(shapes)} shapes but {len(sample.regions)} truth regions")
    refs = [
        refine_shape(s, t, size, settings, rng_for(ctx.seed, rid, f"refine/{k}"), rid)
        for k, (s, t) in enumerate(zip(shapes, sample.regions, strict=True))
    ]
    texts: list[str] = []
    at = 0
    for group in per_request:  # a request's shapes are written ", "-separated (GridCodec.encode)
        texts.append(", ".join(proposal_text(codec, ref) for ref in refs[at : at + len(group)]))
        at += len(group)
    turns: list[tuple[str, list[tasks.Piece]]] = []
    for role, pieces in sample.turns:
        if role != "assistant" and any(isinstance(p, int) for p in pieces):
            raise AssertionError("refinement rewrites assistant answers only")
        turns.append((role, [p if isinstance(p, str) else texts[p] for p in pieces]))
    lattice = settings.lattice
    for t in range(1, settings.turns + 1):
        alive = [ref for ref in refs if len(ref.positions(t - 1, lattice))]
        if not alive:
            break  # everything was deleted: nothing left to refine
        prompt = ctx.templates.choose("refine", ctx.seed, f"{rid}#{t}")
        answer = codec.encode_refinement([ref.shape_offsets(t) for ref in alive])
        turns += [("user", [prompt]), ("assistant", [answer])]
    return dataclasses.replace(sample, turns=turns, requests=[], extra_meta=meta)
