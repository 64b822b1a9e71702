"""``gtok export --task relation`` end to end (docs/spec.md#relations): hand-built scenes whose every relation
is known, exact yes/no balance per predicate, determinism from --seed, ambiguous and unbalanced pairs skipped
and counted, every scheme exported and verified on the genuine COCO sample, Visual Genome relations kept
apart, verify failing on tampered lines, and stats' predicate balance."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from _export_helpers import folder_bytes, gtok, write_records
from _relation_helpers import ROW, X, lines_of, manifest, scene

from gtok_cli.codecs import SCHEMES
from gtok_cli.geometry.relations import PREDICATES

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data" / "coco"
VG = Path(__file__).resolve().parent / "data" / "vg"


def export(records: Path, out: Path, *args: str) -> Any:
    res = gtok("export", records, "--task", "relation", "--out", out, *args)
    return res


@pytest.fixture(scope="module")
def coco_records(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("coco") / "coco.jsonl"
    res = gtok(
        "ingest", "coco", "--instances", SAMPLE / "annotations" / "instances_val2017_sample.json",
        "--images", SAMPLE / "val2017", "--out", out,
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    return out


def _row_truth(line: dict[str, Any]) -> None:
    """Each line of the row scene against what the positions say, worked out by hand: a subject further left
    is "left of"; no other predicate holds for any pair (same row, equal sizes, 30 px apart)."""
    meta = line["meta"]
    rel = meta["relation"]
    subj = meta["regions"][rel["subject"]]["label"]
    obj = meta["regions"][rel["object"]]["label"]
    left = X[subj] < X[obj]
    if rel["form"] == "yesno":
        want = {"left of": left, "right of": not left}.get(rel["predicate"], False)
        assert rel["answer"] is want, line
        assert line["conversations"][1]["value"] == ("Yes." if want else "No.")
    else:
        assert rel["predicate"] == ("left of" if left else "right of"), line
    if rel["form"] == "which":  # only the end boxes have one neighbour on that side
        assert (rel["predicate"], obj) in {("left of", "bowl"), ("right of", "dish")}, line
        assert subj == {"bowl": "apple", "dish": "egg"}[obj]


def test_row_scene_every_line_is_what_the_positions_say(tmp_path: Path) -> None:
    src = write_records(tmp_path / "r.jsonl", [scene(f"row{k}", ROW) for k in range(6)])
    out = tmp_path / "out"
    res = export(src, out, "--scheme", "qwen2-vl")
    assert res.exit_code == 0, res.output
    lines = lines_of(out)
    for line in lines:
        _row_truth(line)
    forms = Counter(x["meta"]["relation"]["form"] for x in lines)
    assert set(forms) == {"yesno", "what", "which"}, forms
    counts = manifest(out)["counts"]  # 6 images x C(5, 2) = 10 pairs, every one a line or a counted skip
    assert counts["read"] == 60 == counts["written"] + sum(counts["skipped"].values())
    assert counts["written_by"] == {"relation.geometry": counts["written"]}
    assert gtok("verify", out).exit_code == 0
    # ids: one per pair, unique
    assert len({x["id"] for x in lines}) == len(lines)


def test_which_needs_every_object_listed(tmp_path: Path) -> None:
    partial = [scene(f"row{k}", ROW, exhaustive=False) for k in range(6)]
    crowd = scene("crowd", {**ROW, "people": [60, 0, 100, 20]})
    crowd["regions"][-1]["iscrowd"] = True
    src = write_records(tmp_path / "r.jsonl", [*partial, crowd])
    out = tmp_path / "out"
    assert export(src, out, "--scheme", "bins").exit_code == 0
    lines = lines_of(out)
    assert lines and all(x["meta"]["relation"]["form"] != "which" for x in lines)
    # the crowd region takes part in no pair
    assert all(r["label"] != "people" for x in lines for r in x["meta"]["regions"])
    assert manifest(out)["counts"]["read"] == 7 * 10


def test_yes_no_balance_is_exact_per_predicate_on_the_coco_sample(coco_records: Path, tmp_path: Path) -> None:
    for seed in ("0", "7"):
        out = tmp_path / f"out{seed}"
        assert export(coco_records, out, "--scheme", "grid", "--seed", seed).exit_code == 0
        answers: Counter[tuple[str, bool]] = Counter()
        for x in lines_of(out):
            rel = x["meta"]["relation"]
            if rel["form"] == "yesno":
                answers[(rel["predicate"], rel["answer"])] += 1
        asked = {p for p, _ in answers}
        assert len(asked) >= 6, answers  # the sample asks about most predicates
        for p in asked:
            assert answers[(p, True)] == answers[(p, False)] > 0, (p, answers)


def test_deterministic_from_the_seed(coco_records: Path, tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for out, seed in ((a, "3"), (b, "3"), (c, "4")):
        assert export(coco_records, out, "--scheme", "loc", "--seed", seed, "--workers", "1").exit_code == 0
    shards = [{k: v for k, v in folder_bytes(o).items() if k.endswith(".jsonl")} for o in (a, b, c)]
    assert shards[0] == shards[1]
    assert shards[0] != shards[2]


def test_ambiguous_pairs_are_skipped_and_counted(tmp_path: Path) -> None:
    # on a 4x4 grid, two 4-px boxes in one cell decode to the same point: no verdict of the truth survives the
    # tokens, so no form can be written
    src = write_records(tmp_path / "r.jsonl", [scene("tiny", {"ant": [1, 1, 5, 5], "bee": [30, 12, 34, 16]})])
    out = tmp_path / "out"
    res = export(src, out, "--scheme", "grid", "--grid", "4")
    assert res.exit_code == 2
    assert "pair.ambiguous=1" in res.output
    assert export(src, out, "--scheme", "grid", "--grid", "4", "--allow-empty").exit_code == 0
    assert manifest(out)["counts"] == {"read": 1, "written": 0, "skipped": {"pair.ambiguous": 1}}


def test_a_yes_without_its_no_is_not_written(tmp_path: Path) -> None:
    # one diagonal pair with a corner overlap of 4 %: left of / above hold, but no other pair can answer "no",
    # the pair has no one relation (overlap ambiguous) and the record is not exhaustive (no "which")
    diag = scene("diag", {"ant": [0, 0, 10, 10], "bee": [8, 8, 18, 18]}, exhaustive=False)
    lone = scene("lone", {"ant": [0, 0, 10, 10]})
    src = write_records(tmp_path / "r.jsonl", [diag, lone])
    out = tmp_path / "out"
    assert export(src, out, "--scheme", "bins", "--allow-empty").exit_code == 0
    assert manifest(out)["counts"]["skipped"] == {"pair.unbalanced": 1, "record.no_pairs": 1}


def test_non_box_shapes_and_refinement_are_refused(tmp_path: Path) -> None:
    src = write_records(tmp_path / "r.jsonl", [scene("row", ROW)])
    res = export(src, tmp_path / "out", "--scheme", "grid", "--shape", "mask")
    assert res.exit_code == 2 and "--task relation writes boxes" in res.output


def _export_flags(scheme: str) -> list[str]:
    return ["--box-as", "center"] if scheme == "molmo" else []


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_every_scheme_exports_and_verifies_on_the_coco_sample(
    coco_records: Path, tmp_path: Path, scheme: str
) -> None:
    out = tmp_path / "out"
    res = export(coco_records, out, "--scheme", scheme, *_export_flags(scheme))
    assert res.exit_code == 0, res.output
    res = gtok("verify", out)
    assert res.exit_code == 0, res.output
    lines = lines_of(out)
    assert len(lines) > 100
    assert {x["meta"]["relation"]["predicate"] for x in lines} <= set(PREDICATES)


def test_visual_genome_relations_are_written_and_counted_apart(tmp_path: Path) -> None:
    records = tmp_path / "vg.jsonl"
    res = gtok(
        "ingest", "vg", "--image-data", VG / "image_data.json", "--objects", VG / "objects.json",
        "--relationships", VG / "relationships.json", "--out", records,
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    want = sum(len(e["relationships"]) for e in orjson.loads((VG / "relationships.json").read_bytes()))
    out = tmp_path / "out"
    assert export(records, out, "--scheme", "kosmos2").exit_code == 0
    counts = manifest(out)["counts"]
    assert counts["written_by"]["relation.annotation"] == want
    assert sum(counts["written_by"].values()) == counts["written"]
    ann = [x for x in lines_of(out) if x["meta"]["relation"]["source"] == "annotation"]
    assert len(ann) == want
    first = orjson.loads((VG / "relationships.json").read_bytes())[0]["relationships"][0]
    rel_id = first["relationship_id"]
    line = next(x for x in ann if x["meta"]["relation"]["rule"]["relationship_id"] == rel_id)
    assert first["predicate"] in line["conversations"][1]["value"]
    s = first["subject"]  # VG xywh -> the record's xyxy
    assert line["meta"]["regions"][0]["bbox"] == [s["x"], s["y"], s["x"] + s["w"], s["y"] + s["h"]]
    assert gtok("verify", out).exit_code == 0


# ---- tampering ---------------------------------------------------------------------------------------------
def _edit_first(out: Path, form: str, edit: Callable[[dict[str, Any]], None]) -> None:
    shard = next(iter(sorted(out.glob("*.jsonl"))))
    lines = shard.read_bytes().split(b"\n")
    for k, raw in enumerate(lines):
        if raw and orjson.loads(raw)["meta"]["relation"]["form"] == form:
            obj = orjson.loads(raw)
            edit(obj)
            lines[k] = orjson.dumps(obj)
            break
    shard.write_bytes(b"\n".join(lines))


def flip_answer_text(obj: dict[str, Any]) -> None:
    turn = obj["conversations"][1]
    turn["value"] = "No." if turn["value"] == "Yes." else "Yes."


def flip_answer(obj: dict[str, Any]) -> None:
    flip_answer_text(obj)
    obj["meta"]["relation"]["answer"] = not obj["meta"]["relation"]["answer"]


def swap_predicate(obj: dict[str, Any]) -> None:
    from gtok_cli.geometry.relations import CONVERSE, STATEMENT

    rel = obj["meta"]["relation"]
    other = CONVERSE[rel["predicate"]]
    turn = obj["conversations"][1]
    turn["value"] = turn["value"].replace(STATEMENT[rel["predicate"]], STATEMENT[other])
    rel["predicate"] = other


def swap_ends_and_answer(obj: dict[str, Any]) -> None:
    """Subject and object swapped in the meta and the answer flipped to match: a consistent-looking lie (the
    text still asks about the first region)."""
    rel = obj["meta"]["relation"]
    rel["subject"], rel["object"] = rel["object"], rel["subject"]
    flip_answer(obj)


def loosen_the_rule(obj: dict[str, Any]) -> None:
    """A size threshold of the line's own, that makes its answer true."""
    rel = obj["meta"]["relation"]
    rel["rule"]["direction_margin"] = -100.0
    rel["rule"]["size_ratio"] = 0.01


def rule_of_strings(obj: dict[str, Any]) -> None:
    obj["meta"]["relation"]["rule"]["direction_margin"] = "0.5"


def rule_not_an_object(obj: dict[str, Any]) -> None:
    obj["meta"]["relation"]["rule"] = ["x"]


def bool_subject(obj: dict[str, Any]) -> None:
    obj["meta"]["relation"]["subject"] = False


@pytest.mark.parametrize(
    ("form", "edit", "check"),
    [
        ("yesno", flip_answer_text, "relation.text"),
        ("yesno", flip_answer, "relation.geometry"),
        ("what", swap_predicate, "relation.geometry"),
        ("yesno", swap_ends_and_answer, "relation.meta"),
        ("what", loosen_the_rule, "relation.rule"),
        ("yesno", rule_of_strings, "relation.rule"),
        ("yesno", rule_not_an_object, "relation.rule"),
        ("yesno", bool_subject, "relation.meta"),
    ],
)
def test_verify_fails_a_tampered_relation(
    tmp_path: Path, form: str, edit: Callable[[dict[str, Any]], None], check: str
) -> None:
    src = write_records(tmp_path / "r.jsonl", [scene(f"row{k}", ROW) for k in range(6)])
    out = tmp_path / "out"
    assert export(src, out, "--scheme", "qwen3-vl").exit_code == 0
    _edit_first(out, form, edit)
    res = gtok("verify", out, "--json")
    assert res.exit_code == 1, res.output  # a failed line, not a crash
    checks = {f["check"] for f in orjson.loads(res.output)["failures"]}
    assert check in checks, checks


def test_which_needs_crowds_named_and_every_region_named(tmp_path: Path) -> None:
    """A crowd left out at ingest (crowd_category_ids) or an unnamed region could be "the other object left of
    the cat": the record is not exhaustive, no which line; the 6 row scenes give which lines otherwise."""
    crowd = [scene(f"c{k}", ROW, crowd_category_ids=[7]) for k in range(6)]
    unnamed = [scene(f"u{k}", ROW) for k in range(6)]
    for rec in unnamed:
        rec["regions"].append({**rec["regions"][0], "bbox": [0, 0, 10, 10], "label": None, "ann_id": 99})
    for name, records in (("crowd", crowd), ("unnamed", unnamed)):
        src = write_records(tmp_path / f"{name}.jsonl", records)
        out = tmp_path / name
        assert export(src, out, "--scheme", "bins").exit_code == 0
        forms = {x["meta"]["relation"]["form"] for x in lines_of(out)}
        assert forms and "which" not in forms, (name, forms)


def test_a_bad_annotated_relation_is_skipped_and_counted(tmp_path: Path) -> None:
    rec = scene("vg", {"man": [0, 0, 50, 80], "horse": [40, 20, 190, 90]}, exhaustive=False)
    good = {"relationship_id": 1, "predicate": "on", "subject": {"label": "man", "bbox": [0, 0, 50, 80]},
            "object": {"label": "horse", "bbox": [40, 20, 190, 90]}}  # fmt: skip
    bad = {**good, "relationship_id": 2, "subject": {"label": "man", "bbox": [10, 10, 10, 50]}}
    rec["relations"] = [good, bad]
    src = write_records(tmp_path / "r.jsonl", [rec])
    out = tmp_path / "out"
    res = export(src, out, "--scheme", "bins")
    assert res.exit_code == 0, res.output
    counts = manifest(out)["counts"]
    assert counts["skipped"]["relation.bad_box"] == 1
    assert counts["written_by"]["relation.annotation"] == 1
    assert counts["read"] == counts["written"] + sum(counts["skipped"].values())


def test_stats_show_the_predicate_balance(tmp_path: Path) -> None:
    src = write_records(tmp_path / "r.jsonl", [scene(f"row{k}", ROW) for k in range(6)])
    out = tmp_path / "out"
    assert export(src, out, "--scheme", "bins").exit_code == 0
    want: Counter[tuple[str, str]] = Counter()
    for x in lines_of(out):
        rel = x["meta"]["relation"]
        col = ("yes" if rel["answer"] else "no") if rel["form"] == "yesno" else rel["form"]
        want[(rel["predicate"], col)] += 1
    res = gtok("stats", out, "--json")
    assert res.exit_code == 0, res.output
    got = orjson.loads(res.output)["relations"]["geometry"]
    assert {(p, c): n for p, row in got.items() for c, n in row.items() if c != "total" and n} == dict(want)
    assert "relations" in gtok("stats", out).output


@pytest.mark.parametrize("fmt", ["messages", "conversations", "swift"])
def test_every_format_verifies(tmp_path: Path, fmt: str) -> None:
    src = write_records(tmp_path / "r.jsonl", [scene(f"row{k}", ROW) for k in range(4)])
    out = tmp_path / "out"
    assert export(src, out, "--scheme", "qwen2-vl", "--format", fmt).exit_code == 0
    res = gtok("verify", out)
    assert res.exit_code == 0, res.output
    # a which line's answer region is in the assistant turn: verify reads the spans of both roles
    assert f" {2 * len(lines_of(out))} region(s)" in res.output


def test_job_array_parts_and_verify_against_records(coco_records: Path, tmp_path: Path) -> None:
    whole, parts, bare = tmp_path / "whole", tmp_path / "parts", tmp_path / "bare"
    assert export(coco_records, whole, "--scheme", "bins", "--num-shards", "2").exit_code == 0
    for i in ("0", "1"):
        flags = ("--num-shards", "2", "--shard-index", i)
        assert export(coco_records, parts, "--scheme", "bins", *flags).exit_code == 0
    assert gtok("merge-manifests", parts).exit_code == 0
    assert manifest(parts)["counts"] == manifest(whole)["counts"]
    assert gtok("verify", parts).exit_code == 0
    assert export(coco_records, bare, "--scheme", "bins", "--no-meta").exit_code == 0
    res = gtok("verify", bare, "--against", coco_records)
    assert res.exit_code == 0, res.output


def test_show_draws_both_regions_of_a_which_line(tmp_path: Path) -> None:
    from PIL import Image

    from gtok_cli.show.sample import ExportSource

    images = tmp_path / "images"
    images.mkdir()
    recs = [scene(f"row{k}", ROW) for k in range(8)]
    for r in recs:
        Image.new("RGB", (200, 100), (128, 128, 128)).save(images / r["image"]["file"], format="PNG")
    src = write_records(tmp_path / "r.jsonl", recs)
    out = tmp_path / "out"
    assert export(src, out, "--scheme", "grid").exit_code == 0
    which = next(x for x in lines_of(out) if x["meta"]["relation"]["form"] == "which")
    view = ExportSource.open(out).view(which, "test")
    assert len(view.decoded) == 2  # the asked object from the question, the answer from the reply
    rel = which["meta"]["relation"]
    subj = which["meta"]["regions"][rel["subject"]]["label"]
    obj = which["meta"]["regions"][rel["object"]]["label"]
    assert f"relation: {subj} {rel['predicate']} {obj} = stated (geometry, which)" in view.info
    res = gtok("show", out, "--images", images, "--id", which["id"], "--out", tmp_path / "p.png")
    assert res.exit_code == 0, res.output


REFCOCO = Path(__file__).resolve().parents[1] / "sample_data" / "refcoco"


def test_refcoco_expressions_name_the_coco_objects_they_refer_to(coco_records: Path, tmp_path: Path) -> None:
    """The genuine RefCOCO sample refers to 12 objects of 4 images of the COCO sample (same COCO ann ids):
    with --phrases each of those objects is named by one of its own expressions, every other by its
    category."""
    refs = tmp_path / "refcoco.jsonl"
    res = gtok(
        "ingest", "refcoco", "--dataset", "refcoco", "--refs", REFCOCO / "refs(unc).p",
        "--instances", REFCOCO / "instances.json", "--out", refs,
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    expressions: dict[tuple[Any, int], set[str]] = {}
    for raw in refs.read_bytes().splitlines():
        rec = orjson.loads(raw)
        expressions.setdefault((rec["image"]["id"], rec["regions"][0]["ann_id"]), set()).add(rec["text"])
    assert len(expressions) == 12
    out = tmp_path / "out"
    res = export(coco_records, out, "--scheme", "bins", "--phrases", refs)
    assert res.exit_code == 0, res.output
    images = {orjson.loads(r)["id"]: orjson.loads(r) for r in coco_records.read_bytes().splitlines()}
    named = 0
    for line in lines_of(out):
        record = images[line["meta"]["record_id"]]
        for r in line["meta"]["regions"]:
            ann = next(g["ann_id"] for g in record["regions"] if g["bbox"] == r["bbox"])
            want = expressions.get((record["image"]["id"], ann))
            if want is None:
                assert r["phrase"] == r["label"], r
            else:
                assert r["phrase"] in want, r
                said = line["conversations"][0]["value"] + line["conversations"][1]["value"]
                assert f"the {r['phrase']} " in said
                named += 1
    assert named > 0
    m = manifest(out)
    assert m["phrases"]["objects"] == 12 and m["phrases"]["expressions"] == 22 == m["phrases"]["records"]
    assert gtok("verify", out, "--against", coco_records).exit_code == 0
    # the same seed names the same way; a changed phrases file is refused by verify --against
    again = tmp_path / "again"
    assert export(coco_records, again, "--scheme", "bins", "--phrases", refs).exit_code == 0
    assert (again / "gtok-00000.jsonl").read_bytes() == (out / "gtok-00000.jsonl").read_bytes()
    refs.write_bytes(refs.read_bytes() + b"\n")
    res = gtok("verify", out, "--against", coco_records)
    assert res.exit_code == 2 and "changed since the export" in res.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--task", "rec", "--phrases", "P"), "--phrases is an option of --task relation"),
        (("--task", "relation", "--phrases", "-"), "give a file, not stdin"),
    ],
)
def test_phrases_option_misuse_is_a_usage_error(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    src = write_records(tmp_path / "r.jsonl", [scene("row", ROW)])
    res = gtok("export", src, "--scheme", "bins", "--out", tmp_path / "out", *args)
    assert res.exit_code == 2 and message in res.output, res.output


def test_a_phrases_file_that_is_not_json_names_its_line(tmp_path: Path) -> None:
    src = write_records(tmp_path / "r.jsonl", [scene("row", ROW)])
    bad = tmp_path / "refs.jsonl"
    bad.write_text('{"task": "referring"}\nnot json\n')
    res = export(src, tmp_path / "out", "--scheme", "bins", "--phrases", bad)
    assert res.exit_code == 2 and "line 2 is not a JSON record" in res.output and str(bad) in res.output


def test_captions_name_their_phrases_and_never_answer_which(tmp_path: Path) -> None:
    """A grounded caption names its regions by their phrases (a determiner kept: "A girl" reads "a girl", not
    "the A girl") and, grounding only what the caption mentions, never claims an object is the only one."""
    records = [scene(f"cap{k}", ROW, task="grounded_caption", text="A apple, the bowl, cup, dish and egg.")
               for k in range(6)]  # fmt: skip
    for rec in records:  # as instances records these six give every form (test_row_scene_…)
        for r, phrase in zip(rec["regions"], ["A apple", "the bowl", "cup", "dish", "egg"], strict=True):
            r["phrase"] = phrase
    src = write_records(tmp_path / "r.jsonl", records)
    out = tmp_path / "out"
    assert export(src, out, "--scheme", "bins").exit_code == 0
    lines = lines_of(out)
    assert lines and all(x["meta"]["relation"]["form"] != "which" for x in lines)
    text = " ".join(t["value"] for x in lines for t in x["conversations"])
    assert "the A apple" not in text and "the the bowl" not in text
    assert "a apple" in text or "the bowl" in text or "the cup" in text


@pytest.mark.parametrize(
    ("name", "want"),
    [
        ("dog", "the dog"),
        ("A girl", "a girl"),
        ("The man in red", "the man in red"),
        ("two dogs", "two dogs"),
        ("their bikes", "their bikes"),
        ("man on the right", "the man on the right"),
        ("Anne", "the Anne"),  # only whole determiners: "An" is one, "Anne" is not
        ("a", "a"),
    ],
)
def test_noun_phrase(name: str, want: str) -> None:
    from gtok_cli.export.relation_task import noun_phrase

    assert noun_phrase(name) == want
