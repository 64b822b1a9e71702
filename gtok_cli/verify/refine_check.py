"""Verify one propose-and-refine conversation (``--task refine`` / ``--refine`` exports).

From the text alone (the truth only gives the targets' reference):

1. decode the first geometry turn (the grid proposal): as many shapes as truth regions, each of its kind (a
   polyline with the truth's vertex count); their anchors are the lattice positions of turn 0;
2. for each refinement turn: ``GridCodec.decode_refinement`` (no malformed ``<offset>`` region, no grid
   token); one wrapped shape per shape still alive, of its kind; **exactly one offset token per anchor**
   (``refine.apply_turn``, via ``refine.check_turn``); each offset equal to what the targets rule gives
   (``refine.check_turn``: ``targets`` for boxes / points / polylines, ``classify`` for masks, with the
   line's ``meta.refine`` settings); the positions are moved (one implementation: ``OffsetLattice.apply``);
3. as many refinement turns as the settings ask (fewer only when every shape was deleted);
4. the final geometry: every surviving box / point / polyline whose anchors the rule leaves in place (a
   further turn would be all ``<OFF_0_0>``) lies within the offset lattice's bound of the truth
   (``refine.within_bound``: half a step per axis). Anchors still on their way (a proposal farther than K
   steps) are counted as ``unconverged``, not failed.

Returns problems as ``(check, message)`` pairs and tallies for the summary.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gtok_cli.codecs.grid import GridCodec
from gtok_cli.refine import (
    OffsetLattice,
    TurnMismatch,
    cell_union_mask,
    check_turn,
    corner_errors,
    expected_offsets,
    within_bound,
)
from gtok_cli.refine.lattice import BoolArray, IntArray
from gtok_cli.refine.settings import RefineSettings

Problem = tuple[str, str]


@dataclass
class RefineLineCheck:
    problems: list[Problem] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    values: dict[str, list[float]] = field(default_factory=dict)

    def note(self, key: str, value: float) -> None:
        self.values.setdefault(key, []).append(value)


@dataclass
class _Track:
    kind: str
    positions: IntArray
    truth: list[float] | None
    mask: BoolArray | None


def _truth_of(kind: str, region: dict[str, Any], size: tuple[int, int]) -> tuple[list[float] | None, Any]:
    if kind == "box":
        return [float(v) for v in region["bbox"]], None
    if kind == "point":
        return [float(v) for v in region["point"]], None
    if kind == "polyline":
        return [float(v) for v in region["polyline"]], None
    from gtok_cli.geometry.rasterize import region_mask_to_bool  # pycocotools, only for masks

    return None, region_mask_to_bool(region["mask"], size[0], size[1], field="meta.regions.mask")


def check_refine_line(codec: GridCodec, geo: list[str], truth: dict[str, Any]) -> RefineLineCheck:
    out = RefineLineCheck()
    out.counts["lines"] += 1
    raw = truth.get("refine")
    if raw is None:
        out.problems.append(("refine.meta", "no refine settings in the truth (meta.refine)"))
        return out
    try:
        settings = RefineSettings.from_json(raw)
    except (KeyError, TypeError, ValueError) as exc:
        out.problems.append(("refine.meta", f"malformed refine settings: {exc!r}"))
        return out
    lattice = settings.lattice
    if lattice != OffsetLattice.from_codec(codec):
        out.problems.append(("refine.meta", f"lattice {lattice} is not the scheme's"))
        return out
    size = (int(truth["image_size"][0]), int(truth["image_size"][1]))
    if not geo:
        out.problems.append(("regions.count", "no answer turn"))
        return out
    tracks = _proposal(codec, geo[0], truth["regions"], size, lattice, out)
    if tracks is None:
        return out
    _before(tracks, size, lattice, out)
    done = 0
    for t, text in enumerate(geo[1:], start=1):
        alive = [k for k, tr in enumerate(tracks) if len(tr.positions)]
        if t > settings.turns or not alive:
            why = f"settings ask {settings.turns}" if alive else "every shape was deleted before it"
            out.problems.append(("refine.turns", f"refinement turn {t} is one too many ({why})"))
            return out
        if not _turn(codec, t, text, tracks, alive, size, settings, out):
            return out
        done = t
    if done < settings.turns and any(len(tr.positions) for tr in tracks):
        out.problems.append(
            ("refine.turns", f"{done} refinement turn(s), settings ask {settings.turns} and shapes remain")
        )
        return out
    _final(tracks, size, settings, out)
    return out


def _proposal(
    codec: GridCodec,
    text: str,
    regions: list[dict[str, Any]],
    size: tuple[int, int],
    lattice: OffsetLattice,
    out: RefineLineCheck,
) -> list[_Track] | None:
    dec = codec.decode(text, size)
    for issue in dec.errors:
        out.problems.append(("span.invalid", f"proposal: {issue.message}: {issue.text!r}"))
    if "<offset>" in text:
        out.problems.append(("refine.invalid", "the proposal turn holds offset tokens"))
    shapes = dec.shapes()
    if len(shapes) != len(regions):
        out.problems.append(
            ("regions.count", f"proposal has {len(shapes)} shapes, truth has {len(regions)} regions")
        )
        return None
    if out.problems:
        return None
    tracks = []
    for k, (shape, region) in enumerate(zip(shapes, regions, strict=True)):
        kind = region["kind"]
        if shape.kind != kind:
            out.problems.append(("region.kind", f"region {k}: proposal is a {shape.kind}, truth a {kind}"))
            return None
        try:
            coords, mask = _truth_of(kind, region, size)
        except (KeyError, TypeError, ValueError) as exc:
            out.problems.append(("refine.truth", f"region {k}: no usable {kind} truth ({exc})"))
            return None
        # decoded anchors sit at cell centres, i.e. exactly on the lattice (q = m·(i, j))
        pos = lattice.nearest_index(np.asarray(shape.points(), dtype=np.float64), size)
        if kind == "polyline" and coords is not None and len(coords) != 2 * len(pos):
            out.problems.append(
                ("region.error", f"region {k}: proposal has {len(pos)} vertices, truth {len(coords) // 2}")
            )
            return None
        tracks.append(_Track(kind, pos, coords, mask))
    out.counts["shapes"] += len(tracks)
    return tracks


def _turn(
    codec: GridCodec,
    t: int,
    text: str,
    tracks: list[_Track],
    alive: list[int],
    size: tuple[int, int],
    settings: RefineSettings,
    out: RefineLineCheck,
) -> bool:
    dec = codec.decode_refinement(text)
    for issue in dec.errors:
        out.problems.append(("refine.invalid", f"turn {t}: {issue.message}: {issue.text!r}"))
    if codec.decode(text, size).groundings:
        out.problems.append(("refine.invalid", f"turn {t}: grid tokens in a refinement turn"))
    if out.problems:
        return False
    if len(dec.shapes) != len(alive):
        out.problems.append(
            ("refine.count", f"turn {t}: offsets for {len(dec.shapes)} shapes, {len(alive)} shapes to refine")
        )
        return False
    out.counts["turns"] += 1
    for k, so in zip(alive, dec.shapes, strict=True):
        tr = tracks[k]
        where = f"turn {t}, shape {k} ({tr.kind})"
        if so.kind != tr.kind:
            out.problems.append(("refine.kind", f"{where}: offsets wrapped as a {so.kind}"))
            return False
        offsets = list(so.offsets)
        try:
            moved, problems = check_turn(
                tr.kind,
                tr.positions,
                offsets,
                size,
                settings.lattice,
                coords=tr.truth,
                mask=tr.mask,
                target_cfg=settings.targets,
                class_cfg=settings.classes,
            )
        except TurnMismatch as exc:
            out.problems.append(("refine.count", f"{where}: {exc}"))
            return False
        for p in problems:
            out.problems.append(("refine.target", f"{where}: {p}"))
        if problems:
            return False
        out.counts["offset_tokens"] += len(offsets)
        for off in offsets:
            out.counts["delete" if off is None else ("stay" if off == (0, 0) else "move")] += 1
        if tr.kind == "polyline" and tr.truth is not None:  # deleted vertices take their truth with them
            keep = [o is not None for o in offsets]
            pts = np.asarray(tr.truth, dtype=np.float64).reshape(-1, 2)[np.asarray(keep, dtype=bool)]
            tr.truth = pts.ravel().tolist()
        tr.positions = moved
        if not len(moved):
            out.counts["shapes_deleted"] += 1
    return True


def _error(tr: _Track, size: tuple[int, int], lattice: OffsetLattice) -> float:
    assert tr.truth is not None
    return float(corner_errors(tr.positions, tr.truth, size, lattice).max())


def _mask_iou(tr: _Track, size: tuple[int, int], lattice: OffsetLattice) -> float:
    assert tr.mask is not None
    got = cell_union_mask(tr.positions, size, lattice)
    union = int(np.count_nonzero(got | tr.mask))
    return int(np.count_nonzero(got & tr.mask)) / union if union else 1.0


def _before(
    tracks: list[_Track], size: tuple[int, int], lattice: OffsetLattice, out: RefineLineCheck
) -> None:
    for tr in tracks:
        if tr.kind == "mask":
            out.note("mask_iou_before", _mask_iou(tr, size, lattice))
        else:
            out.note("error_px_before", _error(tr, size, lattice))


def _final(
    tracks: list[_Track], size: tuple[int, int], settings: RefineSettings, out: RefineLineCheck
) -> None:
    lattice = settings.lattice
    for k, tr in enumerate(tracks):
        if tr.kind == "mask":
            if len(tr.positions):
                out.note("mask_iou_after", _mask_iou(tr, size, lattice))
            continue
        if not len(tr.positions):
            continue
        assert tr.truth is not None
        out.note("error_px_after", _error(tr, size, lattice))
        nxt, _ = expected_offsets(
            tr.kind, tr.positions, size, lattice, coords=tr.truth, target_cfg=settings.targets
        )
        if any(o != (0, 0) for o in nxt):
            out.counts["unconverged"] += 1
            continue
        out.counts["converged"] += 1
        if not within_bound(tr.positions, tr.truth, size, lattice):
            bx, by = lattice.bound_pixels(size)
            out.problems.append(
                (
                    "refine.bound",
                    f"shape {k} ({tr.kind}): refined geometry {_error(tr, size, lattice):.3f} px from the "
                    f"truth, beyond the lattice bound ({bx:.3f}, {by:.3f}) px",
                )
            )
