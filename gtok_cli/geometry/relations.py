"""Spatial relations between two regions of one image, decided from their boxes and masks
(docs/spec.md#relations): export writes them, verify recomputes them, eval scores them, stats counts them.

Every predicate has two thresholds: at or past the *yes* threshold it holds (``True``), at or short of the
*no* threshold it does not (``False``), and in the band between it is *ambiguous* (``None``): such a pair is
never labelled. With ``a`` the subject and ``b`` the object (boxes ``[x1, y1, x2, y2]`` in pixels, y down),
``w``/``h`` a box's width/height, ``c`` its centre, and the default :class:`RelationRule`:

- ``left of``: yes when ``c_b.x − c_a.x ≥ 0.5 · min(w_a, w_b)`` and the boxes' x-extents overlap by at most
  ``0.5 · min(w_a, w_b)``; no when ``c_b.x − c_a.x ≤ 0``. ``right of``: ``a`` and ``b`` swapped.
- ``above``: the same along y (``c_a.y`` smaller: higher in the image). ``below``: swapped.
- ``inside``: yes when ``|a ∩ b| / |a| ≥ 0.9`` and not ``|a ∩ b| / |b| ≥ 0.9`` (near-equal regions are in
  neither); no when ``|a ∩ b| / |a| ≤ 0.5``. Areas of the masks when both regions have one, else of the
  boxes. ``contains``: swapped.
- ``overlaps``: yes when ``|a ∩ b| / min(|a|, |b|) ≥ 0.1`` (masks, else boxes); no when ``|a ∩ b| = 0``.
- ``next to``: yes when the box gap ``≤ 0.25 · s`` and ``|a ∩ b| / min(|a|, |b|) < 0.1``; no when the gap
  ``≥ 1.0 · s``; ``s`` the shortest side of the two boxes, the gap the Euclidean distance between the boxes
  (0 when they touch or overlap).
- ``larger than``: yes when ``|a| / |b| ≥ 1.5`` (mask areas when both have masks, else box areas); no when
  ``|a| / |b| ≤ 1.0``. ``smaller than``: swapped.

:func:`relation_of` names *the* spatial relation of a pair (the "what is the relation" answer), by precedence:
``inside`` / ``contains`` when one holds (ambiguous containment: none); then ``overlaps`` (ambiguous overlap:
none); then, for disjoint regions, the one direction that holds (two, a diagonal: none); then ``next to``;
else none. Sizes are never the answer to "what is the relation" (they are asked in yes/no form).

Example::

    >>> cup = Geom.of({"bbox": [10, 10, 30, 30]}, (100, 100))
    >>> laptop = Geom.of({"bbox": [50, 0, 90, 40]}, (100, 100))
    >>> holds("left of", cup, laptop, RelationRule()), relation_of(cup, laptop, RelationRule())
    (True, 'left of')
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, NamedTuple, cast

PREDICATES = (
    "left of",
    "right of",
    "above",
    "below",
    "inside",
    "contains",
    "overlaps",
    "next to",
    "larger than",
    "smaller than",
)
CONVERSE = {
    "left of": "right of",
    "right of": "left of",
    "above": "below",
    "below": "above",
    "inside": "contains",
    "contains": "inside",
    "overlaps": "overlaps",
    "next to": "next to",
    "larger than": "smaller than",
    "smaller than": "larger than",
}
"""``P(a, b)`` ⇔ ``CONVERSE[P](b, a)``."""
RULE_NAME = "gtok-relations-v1"
# the words export writes and verify / eval read back (docs/spec.md#relations)
QUESTION_PHRASE = {
    "left of": "to the left of",
    "right of": "to the right of",
    "above": "above",
    "below": "below",
    "inside": "inside",
    "contains": "containing",
    "overlaps": "overlapping",
    "next to": "next to",
    "larger than": "larger than",
    "smaller than": "smaller than",
}
"""``Is A … B?`` / ``Which object is … B?``"""
STATEMENT = {
    "left of": "is to the left of",
    "right of": "is to the right of",
    "above": "is above",
    "below": "is below",
    "inside": "is inside",
    "contains": "contains",
    "overlaps": "overlaps",
    "next to": "is next to",
    "larger than": "is larger than",
    "smaller than": "is smaller than",
}
"""``A … B.`` (the answer of the ``what`` form)."""
YES, NO = "Yes.", "No."


Verdict = bool | None
"""True: holds; False: does not; None: ambiguous under the margins (never labelled)."""


@dataclass(frozen=True)
class RelationRule:
    """The thresholds of every predicate (see the module docstring); written into each line's
    ``meta.relation.rule`` so verify recomputes with the rule the export used."""

    direction_margin: float = 0.5
    """Centres at least this many times the smaller extent apart (along the axis): left / right / above /
    below."""
    direction_overlap: float = 0.5
    """… and the extents along that axis overlapping by at most this many times the smaller extent."""
    contain_yes: float = 0.9
    contain_no: float = 0.5
    overlap_yes: float = 0.1
    next_to_gap: float = 0.25
    apart_gap: float = 1.0
    size_ratio: float = 1.5
    use_masks: bool = True
    """Areas and intersections of the masks when both regions have one (else of the boxes)."""

    def to_json(self) -> dict[str, Any]:
        return {"name": RULE_NAME, **asdict(self)}

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> RelationRule:
        """The rule a line names (unknown names or keys: ``ValueError``)."""
        if data.get("name") != RULE_NAME:
            raise ValueError(f"unknown relation rule {data.get('name')!r} (expected {RULE_NAME!r})")
        known = {f.name for f in fields(RelationRule)}
        extra = set(data) - known - {"name", "areas"}  # areas: what one pair was measured on
        if extra:
            raise ValueError(f"unknown relation rule keys {sorted(extra)}")
        values = {k: data[k] for k in known if k in data}
        for k, v in values.items():
            want = bool if k == "use_masks" else (int, float)
            if not isinstance(v, want) or (k != "use_masks" and isinstance(v, bool)):
                raise ValueError(
                    f"rule {k} must be a {'bool' if k == 'use_masks' else 'number'}, found {v!r}"
                )
        return replace(RelationRule(), **values)


@dataclass(frozen=True)
class Geom:
    """One region as the rules see it: its box, and its mask as one COCO RLE (None without a mask)."""

    box: tuple[float, float, float, float]
    rle: Any = None
    mask_area: float | None = None

    @staticmethod
    def of(region: Mapping[str, Any], size: tuple[int, int], with_mask: bool = True) -> Geom:
        """A region ``{"bbox", "mask"?}`` (record or meta region) of a ``(width, height)`` image."""
        x1, y1, x2, y2 = (float(v) for v in region["bbox"])
        mask = region.get("mask") if with_mask else None
        if mask is None:
            return Geom((x1, y1, x2, y2))
        from pycocotools import mask as mask_utils  # only for regions with masks

        from gtok_cli.geometry.rasterize import region_mask_rle

        rle = region_mask_rle(mask, size[0], size[1])
        return Geom((x1, y1, x2, y2), rle, float(mask_utils.area(rle)))

    def with_box(self, box: tuple[float, float, float, float]) -> Geom:
        """The same region with another box (the decoded one), its mask kept."""
        return replace(self, box=box)

    @property
    def box_area(self) -> float:
        x1, y1, x2, y2 = self.box
        return max(0.0, x2 - x1) * max(0.0, y2 - y1)


class Measures(NamedTuple):
    """What the rules read of an ordered pair ``(a, b)`` (a named tuple: built once per ordered pair, many
    times per image, where a frozen dataclass cost a third of the measuring)."""

    dx: float
    """``(c_b.x − c_a.x) / min(w_a, w_b)``: positive when ``a`` is left of ``b``."""
    dy: float
    x_overlap: float
    """Overlap of the x-extents / ``min(w_a, w_b)`` (0 when apart)."""
    y_overlap: float
    in_b: float
    """``|a ∩ b| / |a|``."""
    in_a: float
    """``|a ∩ b| / |b|``."""
    overlap: float
    """``|a ∩ b| / min(|a|, |b|)``."""
    gap: float
    """Euclidean distance between the boxes / the shortest side of the two."""
    ratio: float
    """``|a| / |b|``."""
    areas: str
    """``"mask"`` or ``"box"``: what the areas and intersections were measured on."""


def _extent_overlap(lo1: float, hi1: float, lo2: float, hi2: float) -> float:
    return max(0.0, min(hi1, hi2) - max(lo1, lo2))


def mask_intersection(a: Geom, b: Geom) -> float:
    """``|a ∩ b|`` of two regions' masks, in pixels (pycocotools RLE)."""
    from pycocotools import mask as mask_utils

    return float(mask_utils.area(mask_utils.merge([a.rle, b.rle], intersect=True)))


def measure(a: Geom, b: Geom, rule: RelationRule, mask_inter: float | None = None) -> Measures:
    """What the rules read of ``(a, b)``; ``mask_inter``: :func:`mask_intersection` of the two when the
    caller has it already (the same both ways, and for the decoded boxes of the same masks)."""
    ax1, ay1, ax2, ay2 = a.box
    bx1, by1, bx2, by2 = b.box
    wa, ha, wb, hb = ax2 - ax1, ay2 - ay1, bx2 - bx1, by2 - by1
    min_w, min_h = max(min(wa, wb), 1e-9), max(min(ha, hb), 1e-9)
    dx = ((bx1 + bx2) - (ax1 + ax2)) / 2 / min_w
    dy = ((by1 + by2) - (ay1 + ay2)) / 2 / min_h
    ox = _extent_overlap(ax1, ax2, bx1, bx2)
    oy = _extent_overlap(ay1, ay2, by1, by2)
    masks = rule.use_masks and a.rle is not None and b.rle is not None
    if masks:
        inter = mask_intersection(a, b) if mask_inter is None else mask_inter
        area_a, area_b = float(a.mask_area or 0.0), float(b.mask_area or 0.0)
    else:
        inter, area_a, area_b = ox * oy, a.box_area, b.box_area
    gx = max(0.0, max(ax1, bx1) - min(ax2, bx2))
    gy = max(0.0, max(ay1, by1) - min(ay2, by2))
    side = max(min(wa, ha, wb, hb), 1e-9)
    tiny = 1e-12
    return Measures(
        dx=dx,
        dy=dy,
        x_overlap=ox / min_w,
        y_overlap=oy / min_h,
        in_b=inter / max(area_a, tiny),
        in_a=inter / max(area_b, tiny),
        overlap=inter / max(min(area_a, area_b), tiny),
        gap=math.hypot(gx, gy) / side,
        ratio=1.0 if max(area_a, area_b) < tiny else area_a / max(area_b, tiny),
        areas="mask" if masks else "box",
    )


def _band(value: float, yes: float, no: float) -> Verdict:
    """``value ≥ yes`` → True, ``value ≤ no`` → False, between → None (``yes > no``)."""
    if value >= yes:
        return True
    if value <= no:
        return False
    return None


def verdict(predicate: str, m: Measures, rule: RelationRule) -> Verdict:
    """Whether ``predicate(a, b)`` holds for the pair measured in ``m`` (``measure(a, b)``)."""
    if predicate in ("left of", "right of", "above", "below"):
        sign = 1.0 if predicate in ("left of", "above") else -1.0
        d, ov = (m.dx, m.x_overlap) if predicate in ("left of", "right of") else (m.dy, m.y_overlap)
        d *= sign
        if d <= 0:
            return False
        return True if d >= rule.direction_margin and ov <= rule.direction_overlap else None
    if predicate in ("inside", "contains"):
        part, whole = (m.in_b, m.in_a) if predicate == "inside" else (m.in_a, m.in_b)
        v = _band(part, rule.contain_yes, rule.contain_no)
        if v and whole >= rule.contain_yes:  # (near) the same region: neither is inside the other
            return None
        return v
    if predicate == "overlaps":
        if m.overlap <= 0:
            return False
        return True if m.overlap >= rule.overlap_yes else None
    if predicate == "next to":
        if m.gap >= rule.apart_gap:
            return False
        return True if m.gap <= rule.next_to_gap and m.overlap < rule.overlap_yes else None
    if predicate in ("larger than", "smaller than"):
        r = m.ratio if predicate == "larger than" else 1.0 / max(m.ratio, 1e-12)
        return _band(r, rule.size_ratio, 1.0)
    raise ValueError(f"unknown predicate {predicate!r} (expected one of {', '.join(PREDICATES)})")


def holds(predicate: str, a: Geom, b: Geom, rule: RelationRule) -> Verdict:
    """Whether ``a`` is ``predicate`` ``b`` (True / False / None = ambiguous)."""
    return verdict(predicate, measure(a, b, rule), rule)


DIRECTIONS = ("left of", "right of", "above", "below")


def relation_from(m: Measures, rule: RelationRule) -> str | None:
    """:func:`relation_of` from the pair's measures."""
    inside, contains = verdict("inside", m, rule), verdict("contains", m, rule)
    if inside:
        return "inside"
    if contains:
        return "contains"
    if inside is None or contains is None:
        return None
    over = verdict("overlaps", m, rule)
    if over:
        return "overlaps"
    if over is None:
        return None
    ways = [p for p in DIRECTIONS if verdict(p, m, rule)]
    if len(ways) == 1:
        return ways[0]
    if ways:
        return None  # a diagonal: two directions hold
    return "next to" if verdict("next to", m, rule) else None


def relation_of(a: Geom, b: Geom, rule: RelationRule) -> str | None:
    """The one spatial relation of ``a`` to ``b`` by the precedence in the module docstring, or None when the
    pair is ambiguous."""
    return relation_from(measure(a, b, rule), rule)


def verdicts(a: Geom, b: Geom, rule: RelationRule) -> dict[str, Verdict]:
    """Every predicate's verdict for ``(a, b)`` (one measurement)."""
    m = measure(a, b, rule)
    return {p: verdict(p, m, rule) for p in PREDICATES}


# ---- a line's relation recomputed (verify) and a model's answer read (eval) --------------------------------
FORMS = ("yesno", "what", "which")


def recompute(
    relation: Mapping[str, Any],
    regions: list[Mapping[str, Any]],
    size: tuple[int, int],
    boxes: list[tuple[float, float, float, float] | None] | None = None,
) -> str | None:
    """What is wrong with a geometric ``meta.relation`` recomputed from ``meta.regions`` (with ``boxes``: each
    region's box replaced by the decoded one where not None, its mask kept), or None when it holds."""
    form, predicate, answer = relation.get("form"), relation.get("predicate"), relation.get("answer")
    i, j = relation.get("subject"), relation.get("object")
    if form not in FORMS:
        return f"form {form!r} is not one of {', '.join(FORMS)}"
    if predicate not in PREDICATES:
        return f"predicate {predicate!r} is not a geometric predicate"
    if not _indexes_pair(i, j, len(regions)):
        return f"subject {i!r} / object {j!r} do not index two of the {len(regions)} regions"
    if (answer is None) != (form != "yesno") or not (answer is None or isinstance(answer, bool)):
        return f"answer {answer!r} does not fit the {form} form"
    measured = _pair_measures(relation, regions, size, boxes)
    if isinstance(measured, str):
        return measured
    m, rule = measured
    if form == "what":
        got = relation_from(m, rule)
        return None if got == predicate else f"the relation is {got or 'ambiguous'}, not {predicate!r}"
    v = verdict(predicate, m, rule)
    want = answer if form == "yesno" else True
    if v is None:
        return f"{predicate!r} is ambiguous for this pair"
    return None if v == want else f"{predicate!r} is {v}, the line says {want}"


def _indexes_pair(i: Any, j: Any, n: int) -> bool:
    """``i``, ``j`` index two different regions of ``n`` (integers, not bools)."""
    ints = all(isinstance(v, int) and not isinstance(v, bool) for v in (i, j))
    return ints and i != j and 0 <= min(i, j) <= max(i, j) < n


def _pair_measures(
    relation: Mapping[str, Any],
    regions: list[Mapping[str, Any]],
    size: tuple[int, int],
    boxes: list[tuple[float, float, float, float] | None] | None = None,
) -> tuple[Measures, RelationRule] | str:
    """The measures of a line's ``(subject, object)`` under its rule, or what makes them unreadable."""
    i, j = relation.get("subject"), relation.get("object")
    if not _indexes_pair(i, j, len(regions)):
        return f"subject {i!r} / object {j!r} do not index two of the {len(regions)} regions"
    pair = (cast(int, i), cast(int, j))
    raw = relation.get("rule")
    if not isinstance(raw, Mapping):
        return f"rule {raw!r} is not an object"
    try:
        rule = RelationRule.from_json(raw)
    except (TypeError, ValueError) as exc:
        return f"rule: {exc}"
    areas = raw.get("areas")
    if areas == "mask" and not all(regions[k].get("mask") is not None for k in pair):
        return "rule measured areas on masks but the regions carry none"
    geoms = []
    try:
        for k in pair:
            g = Geom.of(regions[k], size, with_mask=areas == "mask")
            box = boxes[k] if boxes is not None else None
            geoms.append(g if box is None else g.with_box(box))
        m = measure(geoms[0], geoms[1], rule)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:  # a meta region that is not one
        return f"regions {pair} are not readable regions: {exc!r}"
    if areas is not None and m.areas != areas:
        return f"areas measured on {m.areas}, the rule says {areas}"
    return m, rule


def pair_verdicts(
    relation: Mapping[str, Any], regions: list[Mapping[str, Any]], size: tuple[int, int]
) -> dict[str, Verdict] | None:
    """Every predicate's verdict for a line's ``(subject, object)`` from its meta (None: unreadable meta)."""
    measured = _pair_measures(relation, regions, size)
    if isinstance(measured, str):
        return None
    m, rule = measured
    return {p: verdict(p, m, rule) for p in PREDICATES}
