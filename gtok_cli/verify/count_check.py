"""One ``--task count`` line checked: the count recomputed from the meta and from the tokens
(docs/spec.md#counting).

Four numbers must agree: ``meta.count.n``, the number of ``meta.regions`` (the counted instances), the
number the answer states (:func:`gtok_cli.counting.stated_count`) and the number of shapes its tokens decode
to; the answer is spelled as export writes it (``N: `` then the shapes, or ``0`` alone); every region is
labelled as the count's label. The shapes themselves are compared with the regions by
verify's general check (kind, error bound, IoU).

Example:

    >>> meta = {"record_id": "r", "image_size": [100, 100], "count": {"label": "dog", "n": 1},
    ...         "regions": [{"kind": "box", "bbox": [10, 10, 50, 50], "label": "dog"}]}
    >>> check_count_line(["2: <box>10,10,50,50</box>"], 1, meta)
    [('count.answer', 'the answer states 2, meta.count.n is 1')]
"""

from __future__ import annotations

from typing import Any

from gtok_cli.counting import count_answer_head, meta_count, stated_count


def check_count_line(geo: list[str], shapes: int, truth: dict[str, Any]) -> list[tuple[str, str]]:
    """``(check, message)`` for each disagreement of a count line: ``geo`` its answer turn(s), ``shapes`` the
    number of shapes they decode to, ``truth`` its meta."""
    got = meta_count(truth)
    if got is None:
        return [("count.meta", "no meta.count {label: str, n: int >= 0}: nothing to check the answer with")]
    label, n = got
    problems = []
    regions = truth.get("regions") or []
    if len(regions) != n:
        problems.append(("count.regions", f"meta.count.n is {n}, meta.regions holds {len(regions)}"))
    other = sorted({str(r.get("label")) for r in regions if r.get("label") != label})
    if other:
        problems.append(("count.label", f"regions labelled {', '.join(other)}, the count is of {label!r}"))
    stated = stated_count(geo[0]) if len(geo) == 1 else None
    if len(geo) != 1:
        problems.append(("count.answer", f"{len(geo)} answer turns, a count line has one"))
    elif stated != n:
        said = "no number" if stated is None else str(stated)
        problems.append(("count.answer", f"the answer states {said}, meta.count.n is {n}"))
    elif (geo[0] != "0") if n == 0 else not geo[0].startswith(count_answer_head(n)):
        head = "0 alone" if n == 0 else repr(count_answer_head(n))
        problems.append(("count.answer", f"the answer is not spelled as export writes it: {head} first"))
    if shapes != n:
        msg = f"the answer's tokens decode to {shapes} shapes, meta.count.n is {n}"
        problems.append(("count.shapes", msg))
    return problems
