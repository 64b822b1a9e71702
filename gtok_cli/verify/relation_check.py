"""One ``--task relation`` line checked (docs/spec.md#relations): its ``meta.relation`` recomputed from the
meta geometry and again from the boxes its tokens decode to (:func:`gtok_cli.geometry.relations.recompute`),
and its words against the relation: the yes/no answer, the predicate the question or statement names."""

from __future__ import annotations

from typing import Any

from gtok_cli.codecs.base import Shape
from gtok_cli.geometry.relation_answers import states_annotated
from gtok_cli.geometry.relations import NO, QUESTION_PHRASE, STATEMENT, YES, RelationRule, recompute

TEXT_ORDER = {"yesno": (0, 1), "what": (0, 1), "which": (1, 0)}
"""``(subject, object)`` of each form: regions in text order (a which question grounds the object first)."""


def check_relation(
    truth: dict[str, Any], shapes: list[Shape] | None, turns: list[tuple[str, str]]
) -> list[tuple[str, str]]:
    """``(check, message)`` per problem; ``shapes``: the decoded shapes in region order (None when they do
    not match the regions one to one: that is reported already)."""
    rel = truth.get("relation")
    if not isinstance(rel, dict):
        return [("relation.meta", "no meta.relation on a relation line")]
    regions = truth["regions"]
    size = (int(truth["image_size"][0]), int(truth["image_size"][1]))
    user = " ".join(t for r, t in turns if r == "user")
    answer = " ".join(t for r, t in turns if r == "assistant")
    out: list[tuple[str, str]] = []
    source, form = rel.get("source"), rel.get("form")
    pair = (rel.get("subject"), rel.get("object"))
    want_pair = TEXT_ORDER.get(form) if isinstance(form, str) else None
    if want_pair is not None and (pair != want_pair or any(isinstance(v, bool) for v in pair)):
        out.append(
            ("relation.meta", f"a {form} line's subject / object are regions {want_pair}, found {pair}")
        )
    if source == "annotation":
        rule = rel.get("rule")
        if form != "what" or rel.get("answer") is not None:
            out.append(("relation.meta", f"an annotated relation is a what line, found form {form!r}"))
        if not isinstance(rule, dict) or rule.get("name") != "annotation":
            out.append(("relation.meta", f"an annotated relation's rule is named annotation, found {rule!r}"))
        predicate = rel.get("predicate")
        if not isinstance(predicate, str) or not states_annotated(predicate, answer):
            out.append(("relation.text", f"the answer does not state the predicate {predicate!r}"))
        return out
    if source != "geometry":
        return [("relation.meta", f"source {source!r} is not geometry or annotation")]
    if out:
        return out
    rule = rel.get("rule")
    try:
        pinned = RelationRule.from_json(rule) == RelationRule() if isinstance(rule, dict) else False
    except (TypeError, ValueError):
        pinned = False
    if not pinned:  # the rule's name pins its thresholds: a line cannot carry its own
        return [
            ("relation.rule", f"the rule is not {RelationRule().to_json()['name']}'s thresholds: {rule!r}")
        ]
    problem = recompute(rel, regions, size)
    if problem is not None:
        return [("relation.geometry", f"recomputed from meta: {problem}")]
    if shapes is not None:
        boxes = [s.coords if s.kind == "box" else None for s in shapes]
        problem = recompute(rel, regions, size, boxes)  # type: ignore[arg-type]
        if problem is not None:
            out.append(("relation.decoded", f"recomputed from the decoded tokens: {problem}"))
    form, predicate = rel["form"], rel["predicate"]
    if form == "yesno":
        want = YES if rel["answer"] else NO
        if answer.strip() != want:
            out.append(("relation.text", f"the answer is {answer.strip()!r}, meta says {want!r}"))
        if QUESTION_PHRASE[predicate] not in user:
            out.append(("relation.text", f"the question does not ask {QUESTION_PHRASE[predicate]!r}"))
    elif form == "what" and STATEMENT[predicate] not in answer:
        out.append(("relation.text", f"the answer does not state {STATEMENT[predicate]!r}"))
    elif form == "which" and QUESTION_PHRASE[predicate] not in user:
        out.append(("relation.text", f"the question does not ask {QUESTION_PHRASE[predicate]!r}"))
    return out
