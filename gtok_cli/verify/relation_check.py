"""One ``--task relation`` line checked (docs/spec.md#relations): its ``meta.relation`` recomputed from the
meta geometry and again from the boxes its tokens decode to (:func:`gtok_cli.geometry.relations.recompute`),
and its words against the relation: the yes/no answer, the predicate the question or statement names."""

from __future__ import annotations

from typing import Any

from gtok_cli.codecs.base import Shape
from gtok_cli.geometry.relations import NO, QUESTION_PHRASE, STATEMENT, YES, recompute


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
    source = rel.get("source")
    if source == "annotation":
        i, j = rel.get("subject"), rel.get("object")
        if not (isinstance(i, int) and isinstance(j, int) and i != j and {i, j} <= set(range(len(regions)))):
            out.append(("relation.meta", f"subject {i!r} / object {j!r} do not index two regions"))
        if not isinstance(rel.get("predicate"), str) or rel["predicate"] not in answer:
            out.append(("relation.text", f"the answer does not state the predicate {rel.get('predicate')!r}"))
        return out
    if source != "geometry":
        return [("relation.meta", f"source {source!r} is not geometry or annotation")]
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
