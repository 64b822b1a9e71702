"""``--task count``: "How many X are in the image?" answered with the number and one grounded shape per
counted instance (docs/spec.md#counting).

One ``instances`` record gives one question per category present (first-appearance order) and, at the rate
``--negatives R``, zero-count questions about categories verified absent. Each is a line of its own
(:class:`~gtok_cli.export.tasks.Samples`), ``meta.count = {"label", "n"}`` and the counted regions in
``meta.regions`` in the order their shapes are written. A question is skipped, and counted by reason, when:

- ``count.crowd``: X has a crowd region in the image (``iscrowd: true``, or X in ``crowd_category_ids``:
  crowd annotations ingest left out): its instances cannot be counted;
- ``record.not_exhaustive``: the source did not box every X (``exhaustive: false``, X in LVIS's
  ``not_exhaustive_category_ids``; :func:`tasks._check_exhaustive`, the rule of detect / point);
- ``count.over_max``: more than ``--max-count`` instances;
- ``record.no_label``: the regions have no label (nothing to ask about);
- a shape the scheme cannot write for one of them (``region.no_mask_tokens`` …, as the other tasks).

Negatives: verified absent are, in an exhaustive record, the categories of the record files' category
table (:func:`category_table`: every ``(dataset, category_id, label)`` the files name) of the same dataset
that the image lacks (neither present, nor crowd, nor not-exhaustive); in an LVIS record (it has
``neg_category_ids``) only its ``neg_category_ids`` (LVIS is federated: any other category is unverified).
Per image ``k = floor(R · positives written + u)`` of them are drawn (``u`` uniform in [0, 1) from crc32 of
the seed and record id; the draw orders the candidates by crc32 of seed, record id and category), so the rate
is R over the export and the choice is fixed by ``--seed``.
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Iterable
from typing import Any

import orjson

from gtok_cli.codecs.base import Grounding, Shape
from gtok_cli.counting import CountSettings, count_answer_head
from gtok_cli.errors import InputError, UsageError
from gtok_cli.export import tasks
from gtok_cli.jsonio import STDIO, open_binary_input

Key = int | str
"""A category: its ``category_id``, else its label."""


def category_key(region: dict[str, Any]) -> Key | None:
    cid = region.get("category_id")
    if isinstance(cid, int) and not isinstance(cid, bool):
        return cid
    label = region.get("label")
    return label if isinstance(label, str) and label.strip() else None


def category_table(records: Iterable[str]) -> tuple[tuple[str, Key, str], ...]:
    """Every ``(dataset, key, label)`` the record files name (sorted): the universe of negatives. A key named
    with two labels is a UsageError (two category lists under one dataset name: COCO-format files of other
    vocabularies all ingest as ``coco``). Read once, line by line."""
    seen: dict[tuple[str, Key], str] = {}
    for path in records:
        if path == STDIO:
            raise UsageError("--task count with --negatives reads the records twice: give a file, not stdin")
        with open_binary_input(path) as fh:
            for lineno, raw in enumerate(fh, 1):
                if not raw.strip():
                    continue
                try:
                    record = orjson.loads(raw)
                    dataset = str(record.get("dataset") or "")
                    regions = record.get("regions") or ()
                except (orjson.JSONDecodeError, AttributeError):
                    raise InputError(
                        f"line {lineno} is not a JSON record", file=path, reason="json.invalid"
                    ) from None
                for r in regions:
                    if not isinstance(r, dict):
                        continue
                    key, label = category_key(r), r.get("label")
                    if key is None or not isinstance(label, str) or not label.strip():
                        continue
                    old = seen.setdefault((dataset, key), label)
                    if old != label:  # two category lists under one dataset name: negatives would mislabel
                        raise UsageError(
                            f"{path} line {lineno}: category {key!r} of dataset {dataset!r} is {label!r} "
                            f"here and {old!r} in an earlier record; --negatives draws from one category "
                            "list per dataset: export record files with different category lists separately"
                        )
    return tuple(sorted(((d, k, v) for (d, k), v in seen.items()), key=lambda t: (t[0], str(t[1]), t[2])))


def _uniform(*parts: object) -> float:
    """A uniform in [0, 1) fixed by ``parts`` (crc32: stable across processes and machines)."""
    return zlib.crc32("\x1f".join(str(p) for p in parts).encode()) / 2**32


def _members(regions: list[dict[str, Any]]) -> dict[Key | None, list[dict[str, Any]]]:
    by_key: dict[Key | None, list[dict[str, Any]]] = {}
    for r in regions:
        by_key.setdefault(category_key(r), []).append(r)
    return by_key


def _crowd_keys(record: dict[str, Any], regions: list[dict[str, Any]]) -> set[Key | None]:
    keys: set[Key | None] = {category_key(r) for r in regions if r.get("iscrowd")}
    keys.update(record.get("crowd_category_ids") or ())
    return keys


def _question(
    record: dict[str, Any],
    size: tuple[int, int],
    ctx: tasks.TaskContext,
    key: Key,
    label: str,
    members: list[dict[str, Any]],
) -> tasks.Sample:
    shapes: list[Shape] = []
    truths: list[dict[str, Any]] = []
    for r in members:
        if ctx.shape == "point":
            s, t = tasks.point_shape(r, size, label)
        else:
            s, t = tasks.region_shape(r, size, ctx, label)
        shapes.append(s)
        truths.append(t)
    shapes, truths = tasks.in_written_order(ctx, size, shapes, truths)
    rid = record["id"]
    sid = f"{rid}:count:{key}"
    prompt = ctx.templates.choose("count", ctx.seed, sid).format(label=label)
    n = len(members)
    answer: list[tasks.Piece] = [count_answer_head(n)]
    requests: list[tasks.Request] = []
    if n:
        answer.append(0)
        requests.append([Grounding(label, tuple(shapes))])
    return tasks.Sample(
        sid,
        rid,
        record["image"]["file"],
        size,
        [("user", [prompt]), ("assistant", answer)],
        requests,
        truths,
        {"count": {"label": label, "n": n}},
    )


def build_count(record: dict[str, Any], size: tuple[int, int], ctx: tasks.TaskContext) -> tasks.Samples:
    tasks._expect(record, "instances")
    if record.get("incomplete"):  # ingest rejected annotations of unknown category: no count is certain
        raise tasks.Skip("record.incomplete")
    settings = ctx.count or CountSettings()
    regions = list(record["regions"])
    out = tasks.Samples([], Counter())
    crowd = _crowd_keys(record, regions)
    present: set[Key | None] = set()
    for key, members in _members(regions).items():
        present.add(key)
        try:
            if key is None:
                raise tasks.Skip("record.no_label")
            if key in crowd:
                raise tasks.Skip("count.crowd")
            tasks._check_exhaustive(record, members)
            counted = [r for r in members if not r.get("iscrowd")]
            if settings.max_count is not None and len(counted) > settings.max_count:
                raise tasks.Skip("count.over_max")
            label = next(str(r["label"]) for r in counted if isinstance(r.get("label"), str))
            out.samples.append(_question(record, size, ctx, key, label, counted))
        except tasks.Skip as skip:
            out.skipped[skip.reason] += 1
        except StopIteration:
            out.skipped["record.no_label"] += 1
    if not out.samples and not out.skipped:
        raise tasks.Skip("record.no_regions")
    if settings.negatives > 0 and out.samples:
        out.samples += _negatives(record, size, ctx, settings, present | crowd, len(out.samples))
    return out


def _negatives(
    record: dict[str, Any],
    size: tuple[int, int],
    ctx: tasks.TaskContext,
    settings: CountSettings,
    excluded: set[Key | None],
    positives: int,
) -> list[tasks.Sample]:
    """The zero-count questions of one record (module docstring: which categories, how many)."""
    if record.get("exhaustive") is False:
        return []
    table = settings.by_dataset.get(str(record.get("dataset") or ""), {})
    excluded = excluded | set(record.get("not_exhaustive_category_ids") or ())
    verified = record.get("neg_category_ids")
    pool = table.keys() if verified is None else [k for k in verified if k in table]
    candidates = sorted((k for k in pool if k not in excluded), key=str)
    rid = record["id"]
    k = min(len(candidates), int(settings.negatives * positives + _uniform(ctx.seed, rid, "negatives")))
    if not k:
        return []
    # crc32 chains: crc32(b, crc32(a)) == crc32(a + b), so the record's prefix is hashed once
    head = zlib.crc32(f"{ctx.seed}\x1f{rid}\x1f".encode())
    chosen = sorted(candidates, key=lambda c: (zlib.crc32(str(c).encode(), head), str(c)))[:k]
    return [_question(record, size, ctx, c, table[c], []) for c in chosen]
