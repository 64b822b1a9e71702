"""``gtok export --task relation``: questions and statements about the spatial relation of two regions of
one image, both grounded in the scheme's tokens (docs/spec.md#relations; the rules:
:mod:`gtok_cli.geometry.relations`).

One record (``instances`` or ``grounded_caption``) gives one line per written *item*:

- **geometric pairs**: every unordered pair of its regions (crowd regions and unnamed regions left out), at
  most :data:`PAIRS_PER_IMAGE` of them (drawn at random; the rest are skipped as ``pair.over_cap``). Each
  pair is given one of three forms at random, falling back to the next form when its form cannot be written:

  - ``yesno``: "Is the dog <box> to the left of the cat <box>?" → "Yes." / "No.". Every "yes" for a predicate
    is matched by a "no" for the same predicate from another pair of the same image (exact balance per
    predicate, image by image; a "yes" left without its "no" is written in another form or skipped as
    ``pair.unbalanced``);
  - ``what``: "What is the spatial relation between …?" → "The dog is to the left of the cat." (the one
    relation :func:`~gtok_cli.geometry.relations.relation_of` names);
  - ``which``: "Which object is to the left of the cat <box>?" → "The dog <box>." (only when exactly one other
    region is, every other region decidedly is not, and the record lists every object: exhaustive, no crowd
    region, nothing left out at ingest).

  A verdict is used only when it is the same on the truth boxes and on the boxes the scheme's tokens decode
  to (so ``gtok verify`` recomputes the same from the decoded tokens); a pair no form can use is skipped as
  ``pair.ambiguous``.
- **annotated relations** (Visual Genome ``relations`` on the record): each written in the ``what`` form with
  its own predicate ("The man wearing the hat."), ``source: "annotation"``.

Each line's ``meta.relation``: ``{"form", "predicate", "subject": i, "object": j, "answer": true | false |
null, "source": "geometry" | "annotation", "rule": {…}}`` with ``i``, ``j`` indexing ``meta.regions``.
Randomness: a PCG64 generator per record from ``(seed, record id)``
(:func:`gtok_cli.refine.proposals.rng_for`).
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from gtok_cli.codecs.base import Grounding
from gtok_cli.export import tasks
from gtok_cli.geometry.relation_answers import region_name
from gtok_cli.geometry.relations import (
    NO,
    PREDICATES,
    QUESTION_PHRASE,
    STATEMENT,
    YES,
    Geom,
    Measures,
    RelationRule,
    mask_intersection,
    measure,
    relation_from,
    verdict,
)
from gtok_cli.refine.proposals import rng_for

TASK = "relation"
PAIRS_PER_IMAGE = 24
"""Pairs considered per image (a 30-object image has 435): drawn at random, the rest counted as skipped."""
FORMS = ("yesno", "what", "which")
RULE = RelationRule()
RULE_JSON = RULE.to_json()
"""``meta.relation.rule`` of every geometric line (built once: ``asdict`` per line cost ~10 % of the task)."""


@dataclass
class _Obj:
    """A region taking part in pairs: its record region, name, geometry (truth box, and decoded box)."""

    region: dict[str, Any]
    name: str
    geom: Geom
    decoded: Geom


def _object_name(record: dict[str, Any], region: dict[str, Any], ctx: tasks.TaskContext) -> str | None:
    """The region's own ``phrase``, else an expression referring to its object (``--phrases``), else its
    label."""
    own = region.get("phrase")
    if isinstance(own, str) and own.strip():
        return own.strip()
    if ctx.phrases is not None:
        image_id = record["image"].get("id")
        named = ctx.phrases.name_for(region, image_id=image_id, seed=ctx.seed, record_id=record["id"])
        if named is not None:
            return named
    return region_name(region)


def _decoded_boxes(groundings: list[Grounding], size: tuple[int, int], ctx: tasks.TaskContext) -> list[Any]:
    """The box each grounding's tokens decode to (None where it is not written as a box: a point).

    One encode and one decode for the whole record (a call per region cost ~30 % of the task's time): the
    groundings decode in the order written, except where a scheme orders shapes itself (molmo, points only,
    so no box) or a count differs, where each is encoded alone."""
    boxes = [g.shapes[0] if g.shapes[0].kind == "box" else None for g in groundings]
    written = [g for g, b in zip(groundings, boxes, strict=True) if b is not None]
    if not written:
        return boxes
    decoded = ctx.codec.decode(ctx.codec.encode(written, size), size).shapes()
    if len(decoded) != len(written) or any(s.kind != "box" for s in decoded):
        decoded = [s for g in written for s in ctx.codec.decode(ctx.codec.encode([g], size), size).shapes()]
    if len(decoded) != len(written):
        return [None] * len(groundings)
    it = iter(decoded)
    return [None if b is None else next(it).coords for b in boxes]


def _objects(record: dict[str, Any], size: tuple[int, int], ctx: tasks.TaskContext) -> list[_Obj]:
    named = []
    for r in record["regions"]:
        name = _object_name(record, r, ctx)
        if r.get("iscrowd") or name is None:
            continue
        shape, _ = tasks.region_shape(r, size, ctx, None)
        named.append((r, name, Grounding(name, (shape,))))
    boxes = _decoded_boxes([g for _, _, g in named], size, ctx)
    out = []
    for (r, name, _), box in zip(named, boxes, strict=True):
        geom = Geom.of(r, size, with_mask=RULE.use_masks)
        out.append(_Obj(r, name, geom, geom if box is None else geom.with_box(tuple(box))))
    return out


def exhaustive(record: dict[str, Any]) -> bool:
    """Whether the record lists every object of its image (the ``which`` form names the only one): an
    ``instances`` record (a caption grounds only what it mentions) that is exhaustive, with no crowd region
    (kept, or left out at ingest: ``crowd_category_ids``), no annotation rejected at ingest, and a name for
    every region (an unnamed one takes part in no pair, so "the only one" could not be checked against it)."""
    if record["task"] != "instances" or record.get("exhaustive") is False:
        return False
    if record.get("not_exhaustive_category_ids") or record.get("crowd_category_ids"):
        return False
    if record.get("incomplete"):
        return False
    return not any(r.get("iscrowd") or region_name(r) is None for r in record["regions"])


class _Pairs:
    """Verdicts of the ordered pairs of a record's objects: the truth's where the decoded boxes agree."""

    def __init__(self, objs: list[_Obj]) -> None:
        self.objs = objs
        self._measures: dict[tuple[int, int], tuple[Measures, Measures]] = {}
        self._inters: dict[tuple[int, int], float] = {}
        self._cache: dict[tuple[int, int], tuple[dict[str, bool | None], str | None]] = {}
        self._true: dict[tuple[int, int], list[str]] = {}

    def _measured(self, a: int, b: int) -> tuple[Measures, Measures]:
        """The pair measured on the truth and on the decoded boxes (once per ordered pair)."""
        hit = self._measures.get((a, b))
        if hit is None:
            oa, ob = self.objs[a], self.objs[b]
            # the masks' intersection is the same both ways and for the decoded boxes: one RLE merge per pair
            key = (min(a, b), max(a, b))
            inter = self._inters.get(key)
            if inter is None and oa.geom.rle is not None and ob.geom.rle is not None and RULE.use_masks:
                inter = self._inters[key] = mask_intersection(oa.geom, ob.geom)
            m = measure(oa.geom, ob.geom, RULE, mask_inter=inter)
            hit = self._measures[(a, b)] = (m, measure(oa.decoded, ob.decoded, RULE, mask_inter=inter))
        return hit

    def get(self, a: int, b: int) -> tuple[dict[str, bool | None], str | None]:
        hit = self._cache.get((a, b))
        if hit is None:
            m, md = self._measured(a, b)
            vs = {}
            for p in PREDICATES:
                v = verdict(p, m, RULE)
                vs[p] = v if v == verdict(p, md, RULE) else None
            rel = relation_from(m, RULE)
            hit = (vs, rel if rel == relation_from(md, RULE) else None)
            self._cache[(a, b)] = hit
        return hit

    def verdict(self, p: str, a: int, b: int) -> bool | None:
        """One predicate's verdict (the which form asks one predicate of every other object: measuring the
        pair is needed, the other nine verdicts are not)."""
        full = self._cache.get((a, b))
        if full is not None:
            return full[0][p]
        m, md = self._measured(a, b)
        v = verdict(p, m, RULE)
        return v if v == verdict(p, md, RULE) else None

    def true(self, a: int, b: int) -> list[str]:
        """The predicates that decidedly hold of ``(a, b)``, in :data:`PREDICATES` order."""
        hit = self._true.get((a, b))
        if hit is None:
            vs = self.get(a, b)[0]
            hit = self._true[(a, b)] = [p for p in PREDICATES if vs[p]]
        return hit


@dataclass
class _Item:
    """One line to write: the form, predicate, answer and the two objects (subject, object)."""

    form: str
    predicate: str
    subject: int
    obj: int
    answer: bool | None
    pair: tuple[int, int]


def build_relation(record: dict[str, Any], size: tuple[int, int], ctx: tasks.TaskContext) -> tasks.Samples:
    if record["task"] not in ("instances", "grounded_caption"):
        raise tasks.Skip(f"record_task.{record['task']}")
    rid = record["id"]
    rng = rng_for(ctx.seed, rid, TASK)
    skipped: Counter[str] = Counter()
    samples: list[tasks.Sample] = []
    objs = _objects(record, size, ctx) if record["regions"] else []
    pairs = list(itertools.combinations(range(len(objs)), 2))
    order = rng.permutation(len(pairs)) if pairs else np.zeros(0, dtype=np.int64)
    if len(order) > PAIRS_PER_IMAGE:
        skipped["pair.over_cap"] += len(order) - PAIRS_PER_IMAGE
        order = order[:PAIRS_PER_IMAGE]
    chosen = [pairs[k] for k in order.tolist()]
    items = _geometric_items(chosen, _Pairs(objs), exhaustive(record), rng, skipped)
    for item in items:
        samples.append(_geometric_sample(record, size, ctx, objs, item))
    annotated = 0
    for k, rel in enumerate(record.get("relations") or ()):
        try:
            sample = _annotation_sample(record, size, ctx, rel, k)
        except tasks.Skip as skip:  # one bad relation is counted; the record's other lines are kept
            skipped[skip.reason] += 1
            continue
        if sample is None:
            skipped["relation.unnamed"] += 1
            continue
        samples.append(sample)
        annotated += 1
    if not samples and not skipped:
        raise tasks.Skip("record.no_pairs")
    written_by = {"relation.geometry": len(samples) - annotated, "relation.annotation": annotated}
    return tasks.Samples(samples, skipped, {k: v for k, v in written_by.items() if v})


def _geometric_items(
    pairs: list[tuple[int, int]],
    verdicts: _Pairs,
    which_ok: bool,
    rng: np.random.Generator,
    skipped: Counter[str],
) -> list[_Item]:
    """One item per pair that some form can use, yes/no balanced per predicate (see the module docstring)."""
    items: list[_Item | None] = []
    owed: dict[str, list[int]] = {}  # predicate -> indices of "yes" items still waiting for their "no"
    forms = rng.integers(0, len(FORMS), size=len(pairs)).tolist()
    flips = rng.integers(0, 2, size=len(pairs)).tolist()
    picks = rng.random(len(pairs)).tolist()
    makers: dict[str, Callable[[int, int, float], _Item | None]] = {
        "yesno": lambda a, b, u: _yesno(a, b, u, verdicts, owed, len(items)),
        "what": lambda a, b, u: _what(a, b, verdicts),
        "which": lambda a, b, u: _which(a, b, u, verdicts) if which_ok else None,
    }
    for (i, j), f, flip, u in zip(pairs, forms, flips, picks, strict=True):
        a, b = (j, i) if flip else (i, j)
        item = None
        for form in FORMS[f:] + FORMS[:f]:
            item = makers[form](a, b, u)
            if item is not None:
                break
        if item is None:
            skipped["pair.ambiguous"] += 1
        else:
            items.append(item)
    for waiting in owed.values():  # a "yes" without its "no": another form, else skipped
        for k in waiting:
            yes = items[k]
            assert yes is not None
            a, b = yes.pair
            other = _what(a, b, verdicts) or (_which(a, b, 0.0, verdicts) if which_ok else None)
            items[k] = other
            if other is None:
                skipped["pair.unbalanced"] += 1
    return [it for it in items if it is not None]


def _yesno(a: int, b: int, u: float, verdicts: _Pairs, owed: dict[str, list[int]], at: int) -> _Item | None:
    for p in PREDICATES:  # a "no" first when one is owed
        if owed.get(p):
            for s, o in ((a, b), (b, a)):
                if verdicts.verdict(p, s, o) is False:
                    owed[p].pop()
                    return _Item("yesno", p, s, o, False, (a, b))
    yes = [(p, s, o) for s, o in ((a, b), (b, a)) for p in verdicts.true(s, o)]
    if not yes:
        return None
    p, s, o = yes[min(int(u * len(yes)), len(yes) - 1)]
    owed.setdefault(p, []).append(at)
    return _Item("yesno", p, s, o, True, (a, b))


def _what(a: int, b: int, verdicts: _Pairs) -> _Item | None:
    rel = verdicts.get(a, b)[1]
    return None if rel is None else _Item("what", rel, a, b, None, (a, b))


def _which(a: int, b: int, u: float, verdicts: _Pairs) -> _Item | None:
    """``a`` is the only object that is ``P`` ``b``: every other object decidedly is not."""
    n = len(verdicts.objs)
    true = verdicts.true(a, b)
    if not true:
        return None
    start = min(int(u * len(true)), len(true) - 1)
    for p in true[start:] + true[:start]:
        if all(verdicts.verdict(p, r, b) is False for r in range(n) if r not in (a, b)):
            return _Item("which", p, a, b, None, (a, b))
    return None


# ---- samples -----------------------------------------------------------------------------------------------
DETERMINERS = frozenset(
    {
        *("a", "an", "the", "this", "that", "these", "those", "his", "her", "its", "their", "my", "our"),
        *("your", "some", "another", "one", "two", "three", "four", "five"),
    }
)
"""First words that make a name a noun phrase already (Flickr30k's "A girl", GRIT's "the dog"): no "the"."""


def noun_phrase(name: str) -> str:
    """``name`` as it reads inside a sentence: ``dog`` → ``the dog``, ``A girl`` → ``a girl``."""
    first, _, rest = name.partition(" ")
    if first.lower() in DETERMINERS:
        return f"{first.lower()} {rest}".rstrip()
    return f"the {name}"


def _mention(ctx: tasks.TaskContext, name: str, request: int) -> list[tasks.Piece]:
    """A grounded mention: ``the dog <box>``, or the scheme's own labelled span."""
    return [request] if ctx.codec.carries_label else [f"{noun_phrase(name)} ", request]


def _pieces(template: str, slots: dict[str, list[tasks.Piece]], **plain: str) -> list[tasks.Piece]:
    """``template`` with each of ``slots`` replaced by its pieces (literal strings and request indices)."""
    marks = {k: f"\x00{k}\x00" for k in slots}
    text = template.format(**marks, **plain)
    out: list[tasks.Piece] = []
    for part in text.split("\x00"):
        if part in slots:
            out += slots[part]
        elif part:
            out.append(part)
    return out


def _capital(pieces: list[tasks.Piece]) -> list[tasks.Piece]:
    if pieces and isinstance(pieces[0], str) and pieces[0]:
        pieces = [pieces[0][0].upper() + pieces[0][1:], *pieces[1:]]
    return pieces


def _relation_sample(
    record: dict[str, Any],
    size: tuple[int, int],
    ctx: tasks.TaskContext,
    sample_id: str,
    user: list[tasks.Piece],
    answer: list[tasks.Piece],
    shown: list[tuple[dict[str, Any], str]],
    relation: dict[str, Any],
) -> tasks.Sample:
    """A sample whose requests ``0, 1`` are the regions ``shown`` (in text order)."""
    requests: list[tasks.Request] = []
    truths = []
    for region, name in shown:
        shape, truth = tasks.region_shape(region, size, ctx, name)
        if relation["rule"].get("areas") == "mask":
            truth["mask"] = region.get("mask")
        truths.append(truth)
        requests.append([Grounding(name if ctx.codec.carries_label else None, (shape,))])
    return tasks.Sample(
        sample_id,
        record["id"],
        record["image"]["file"],
        size,
        [("user", user), ("assistant", answer)],
        requests,
        truths,
        {"relation": relation},
    )


def _geometric_sample(
    record: dict[str, Any], size: tuple[int, int], ctx: tasks.TaskContext, objs: list[_Obj], item: _Item
) -> tasks.Sample:
    subj, obj = objs[item.subject], objs[item.obj]
    i, j = sorted(item.pair)
    sid = f"{record['id']}:pair{i}-{j}"
    areas = "mask" if RULE.use_masks and subj.geom.rle is not None and obj.geom.rle is not None else "box"
    rule = {**RULE_JSON, "areas": areas}
    pick = f"{sid}:{item.form}"
    if item.form == "which":  # the object is asked about (region 0), the subject answers (region 1)
        user = _pieces(
            ctx.templates.choose("relation-which", ctx.seed, pick),
            {"object": _mention(ctx, obj.name, 0)},
            relation=QUESTION_PHRASE[item.predicate],
        )
        answer = [*_capital(_mention(ctx, subj.name, 1)), "."]
        shown = [(obj.region, obj.name), (subj.region, subj.name)]
        s_at, o_at = 1, 0
    else:
        slots = {"subject": _mention(ctx, subj.name, 0), "object": _mention(ctx, obj.name, 1)}
        if item.form == "yesno":
            user = _capital(
                _pieces(
                    ctx.templates.choose("relation-yesno", ctx.seed, pick),
                    slots,
                    relation=QUESTION_PHRASE[item.predicate],
                )
            )
            answer = [YES if item.answer else NO]
        else:
            user = _pieces(ctx.templates.choose("relation-what", ctx.seed, pick), slots)
            answer = [_statement(ctx, pick, subj.name, STATEMENT[item.predicate], obj.name)]
        shown = [(subj.region, subj.name), (obj.region, obj.name)]
        s_at, o_at = 0, 1
    relation = {
        "form": item.form,
        "predicate": item.predicate,
        "subject": s_at,
        "object": o_at,
        "answer": item.answer,
        "source": "geometry",
        "rule": rule,
    }
    return _relation_sample(record, size, ctx, sid, user, answer, shown, relation)


def _statement(ctx: tasks.TaskContext, pick: str, subject: str, statement: str, obj: str) -> str:
    text = ctx.templates.choose("relation-answer", ctx.seed, pick).format(
        subject=noun_phrase(subject), statement=statement, object=noun_phrase(obj)
    )
    return text[:1].upper() + text[1:]


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _annotation_sample(
    record: dict[str, Any], size: tuple[int, int], ctx: tasks.TaskContext, rel: dict[str, Any], k: int
) -> tasks.Sample | None:
    """A human-labelled relation (Visual Genome) in the ``what`` form, with its own predicate."""
    predicate = rel.get("predicate")
    sub, obj = rel.get("subject") or {}, rel.get("object") or {}
    names = [region_name(sub), region_name(obj)]
    if not isinstance(predicate, str) or not predicate.strip() or None in names:
        return None
    for end in (sub, obj):
        box = end.get("bbox")
        if not (isinstance(box, list) and len(box) == 4 and all(_is_number(v) for v in box)):
            raise tasks.Skip("relation.bad_box")
        if not (all(math.isfinite(v) for v in box) and box[2] > box[0] and box[3] > box[1]):
            raise tasks.Skip("relation.bad_box")
    sname, oname = str(names[0]), str(names[1])
    pred = " ".join(predicate.lower().split())
    rel_id = rel.get("relationship_id", k)
    sid = f"{record['id']}:relationship{rel_id}"
    slots = {"subject": _mention(ctx, sname, 0), "object": _mention(ctx, oname, 1)}
    user = _pieces(ctx.templates.choose("relation-what", ctx.seed, sid), slots)
    answer: list[tasks.Piece] = [_statement(ctx, sid, sname, pred, oname)]
    relation = {
        "form": "what",
        "predicate": pred,
        "subject": 0,
        "object": 1,
        "answer": None,
        "source": "annotation",
        "rule": {"name": "annotation", "relationship_id": rel_id},
    }
    regions = [
        {"bbox": [float(v) for v in sub["bbox"]], "label": sname},
        {"bbox": [float(v) for v in obj["bbox"]], "label": oname},
    ]
    return _relation_sample(
        record, size, ctx, sid, user, answer, [(regions[0], sname), (regions[1], oname)], relation
    )
