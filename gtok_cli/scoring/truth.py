"""The truth of an export line, read from its ``meta`` (docs/spec.md#shards): what eval, the rewards and
``gtok show`` compare answers with.

``meta`` = ``{"record_id", "image_size": [w, h], "regions": [{"kind", "bbox", "mask_tokens", "label",
"phrase", "point"?, "polyline"?, "mask"?}, …]}``, one region per shape in answer order (``refine`` lines add
``meta.refine``). A region's real mask (COCO polygons / RLE) is in ``meta`` only for mask refinement; else it
comes from the records (:func:`attach_record_masks`, matched by record id and bbox, each record region used
once).

Example:

    >>> t = truth_of({"record_id": "r1", "image_size": [640, 480],
    ...               "regions": [{"kind": "box", "bbox": [10, 20, 110, 220], "mask_tokens": None,
    ...                            "label": "dog", "phrase": "the dog"}]})
    >>> t.size, t.regions[0].bbox, t.regions[0].label
    ((640, 480), (10.0, 20.0, 110.0, 220.0), 'the dog')
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from gtok_cli.errors import InputError

BBox = tuple[float, float, float, float]


@dataclass
class TruthRegion:
    """One ground-truth region in answer order."""

    kind: str
    """box | point | polyline | mask (as the sample writes it)."""
    bbox: BBox | None
    label: str | None = None
    """The name to show and to match a phrase against: the region's phrase, else its category label."""
    point: tuple[float, float] | None = None
    mask: Any = None
    """The record's mask (RLE / polygons), rasterised only when needed (:meth:`mask_array`)."""
    polyline: tuple[float, ...] | None = None
    mask_tokens: dict[str, Any] | None = None
    """The solver's ``{"grid", "anchors", "iou", …}`` of the region, when it has one."""
    phrase: str | None = None
    category: str | None = None
    """The region's category label (``meta.regions[k].label``)."""

    @property
    def anchors(self) -> list[tuple[int, int]]:
        """The mask-token anchors ``(i, j)`` (empty when the region has none)."""
        mt = self.mask_tokens or {}
        return [(int(i), int(j)) for i, j in mt.get("anchors") or []]

    @property
    def grid(self) -> int | None:
        mt = self.mask_tokens or {}
        return int(mt["grid"]) if mt.get("grid") else None

    def mask_array(self, size: tuple[int, int], record: str | None = None) -> npt.NDArray[np.bool_] | None:
        """The real mask as a bool ``(H, W)`` array (the one rasteriser), or None when the region has none."""
        if self.mask is None:
            return None
        from gtok_cli.geometry.rasterize import region_mask_to_bool  # pycocotools, only for masks

        return region_mask_to_bool(self.mask, size[0], size[1], record=record, field="regions[].mask")

    def truth_mask(
        self, size: tuple[int, int], record: str | None = None
    ) -> tuple[npt.NDArray[np.bool_] | None, str | None]:
        """The mask to score against and where it came from: the real mask (``"mask"``), else the union of
        the region's mask-token anchors' grid cells (``"anchors"``), else ``(None, None)``."""
        real = self.mask_array(size, record)
        if real is not None:
            return real, "mask"
        if self.anchors and self.grid:
            from gtok_cli.scoring.measures import cells_mask

            return cells_mask(self.anchors, self.grid, size), "anchors"
        return None, None


@dataclass
class Truth:
    """One export line's truth: record id, image size ``(w, h)``, regions in answer order, and the rest of its
    meta (``refine`` settings, …)."""

    record_id: str
    size: tuple[int, int]
    regions: list[TruthRegion] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def boxes(self) -> npt.NDArray[np.float64]:
        """The regions' boxes, n×4 (NaN row for a region without one)."""
        out = np.full((len(self.regions), 4), np.nan)
        for k, r in enumerate(self.regions):
            if r.bbox is not None:
                out[k] = r.bbox
        return out


def _bbox(b: Any) -> BBox | None:
    return (float(b[0]), float(b[1]), float(b[2]), float(b[3])) if b else None


def meta_region(r: Mapping[str, Any]) -> TruthRegion:
    """One ``meta.regions`` entry as a :class:`TruthRegion`."""
    p = r.get("point")
    pl = r.get("polyline")
    return TruthRegion(
        kind=str(r["kind"]),
        bbox=_bbox(r.get("bbox")),
        label=r.get("phrase") or r.get("label"),
        point=(float(p[0]), float(p[1])) if p else None,
        mask=r.get("mask"),
        polyline=tuple(float(v) for v in pl) if pl else None,
        mask_tokens=r.get("mask_tokens"),
        phrase=r.get("phrase"),
        category=r.get("label"),
    )


def truth_of(meta: Mapping[str, Any], *, where: str | None = None) -> Truth:
    """An export line's ``meta`` as a :class:`Truth`; a meta that is not one is an InputError naming
    ``where`` and the field."""
    try:
        w, h = meta["image_size"]
        size = (int(w), int(h))
        regions = [meta_region(r) for r in meta["regions"]]
        rid = str(meta["record_id"])
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise InputError(
            "meta is not a gtok export meta",
            file=where,
            field="meta",
            expected='{"record_id", "image_size": [w, h], "regions": [...]}',
            found=str(exc),
            reason="meta.invalid",
        ) from None
    extra = {k: v for k, v in meta.items() if k not in ("record_id", "image_size", "regions")}
    return Truth(rid, size, regions, extra)


def attach_record_masks(regions: list[TruthRegion], record: Mapping[str, Any] | None) -> int:
    """Give each region without a mask the mask of the record region with the same bbox (each record region
    used once); returns how many got one."""
    if record is None:
        return 0
    free = [r for r in record.get("regions") or [] if r.get("mask") is not None]
    got = 0
    for t in regions:
        if t.mask is not None or t.bbox is None:
            continue
        for k, r in enumerate(free):
            if list(t.bbox) == [float(v) for v in r["bbox"]]:
                t.mask = r["mask"]
                del free[k]
                got += 1
                break
    return got
