"""count_reward and relation_reward (docs/rewards.md#questions): values worked out by hand, the lines they do
not apply to, and ``gtok reward`` over genuine COCO-sample exports scoring each export's own answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from _export_helpers import gtok

from gtok_cli.rewards import NotApplicable, count_reward, relation_reward

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data" / "coco"


def region(bbox: list[float], label: str = "dog") -> dict[str, Any]:
    return {"kind": "box", "bbox": bbox, "mask_tokens": None, "label": label, "phrase": None}


# two dogs on a 1000x1000 image; qwen3-vl writes 0-1000 integers, so pixels = tokens here
DOGS = {
    "record_id": "r",
    "image_size": [1000, 1000],
    "regions": [region([100, 100, 300, 300]), region([600, 600, 900, 900])],
    "count": {"label": "dog", "n": 2},
}
NONE = {"record_id": "z", "image_size": [1000, 1000], "regions": [], "count": {"label": "cat", "n": 0}}
A = '{"bbox_2d": [100, 100, 300, 300], "label": "dog"}'
B = '{"bbox_2d": [600, 600, 900, 900], "label": "dog"}'
FAR = '{"bbox_2d": [400, 0, 500, 50], "label": "dog"}'

COUNT_CASES = [
    # (case, meta, answer, reward): count term, F1 = 2m / (shapes + n), mean of the two
    ("perfect", DOGS, f"2: [{A}, {B}]", 1.0),
    ("right number, one grounded", DOGS, f"2: [{A}]", (1 + 2 * 1 / 3) / 2),
    ("one off, both grounded + a stray", DOGS, f"3: [{A}, {B}, {FAR}]", (0.5 + 2 * 2 / 5) / 2),
    ("number word, nothing grounded", DOGS, "There are two dogs.", (1 + 0) / 2),
    ("no number: the shapes count", DOGS, f"[{A}, {B}]", 1.0),
    ("same box twice matches once", DOGS, f"2: [{A}, {A}]", (1 + 2 * 1 / 4) / 2),
    ("far too many", DOGS, "7", (0 + 0) / 2),
    ("nothing said", DOGS, "I cannot tell.", 0.0),
    ("zero, right", NONE, "0", 1.0),
    ("zero line, a box grounded", NONE, f"1: [{FAR}]", (0 + 0) / 2),
    ("zero line, says nothing", NONE, "", (0 + 1) / 2),
]


@pytest.mark.parametrize(("case", "meta", "answer", "want"), COUNT_CASES, ids=[c[0] for c in COUNT_CASES])
def test_count_reward(case: str, meta: dict[str, Any], answer: str, want: float) -> None:
    assert count_reward(answer, meta, scheme="qwen3-vl") == pytest.approx(want, abs=1e-12)


PAIR = [region([0, 0, 100, 100], "cup"), region([300, 0, 400, 100], "laptop")]


def rel(form: str, predicate: str, answer: bool | None, source: str = "geometry") -> dict[str, Any]:
    relation = {"form": form, "predicate": predicate, "subject": 0, "object": 1, "answer": answer}
    return {
        "record_id": "r",
        "image_size": [1000, 1000],
        "regions": PAIR,
        "relation": {**relation, "source": source},
    }


RELATION_CASES = [
    ("yes right", rel("yesno", "left of", True), "Yes.", 1.0),
    ("yes, lower case, more words", rel("yesno", "left of", True), "yes, it is", 1.0),
    ("no when yes", rel("yesno", "left of", True), "No.", 0.0),
    ("no right", rel("yesno", "right of", False), "No, it is to the left.", 1.0),
    ("neither word", rel("yesno", "right of", False), "Maybe.", 0.0),
    ("what right", rel("what", "left of", None), "The cup is to the left of the laptop.", 1.0),
    ("what wrong", rel("what", "left of", None), "The cup is above the laptop.", 0.0),
    (
        "annotation words",
        rel("what", "sitting on", None, "annotation"),
        "The cup sitting on the laptop.",
        1.0,
    ),
    ("annotation other", rel("what", "sitting on", None, "annotation"), "The cup is near the laptop.", 0.0),
    # which: IoU of the first box with the subject [0, 0, 100, 100]: [0, 0, 100, 200] → 0.5
    ("which exact", rel("which", "left of", None), '[{"bbox_2d": [0, 0, 100, 100]}]', 1.0),
    ("which half", rel("which", "left of", None), '[{"bbox_2d": [0, 0, 100, 200]}]', 0.5),
    ("which the object", rel("which", "left of", None), '[{"bbox_2d": [300, 0, 400, 100]}]', 0.0),
    ("which no box", rel("which", "left of", None), "The cup.", 0.0),
]


@pytest.mark.parametrize(
    ("case", "meta", "answer", "want"), RELATION_CASES, ids=[c[0] for c in RELATION_CASES]
)
def test_relation_reward(case: str, meta: dict[str, Any], answer: str, want: float) -> None:
    assert relation_reward(answer, meta, scheme="qwen3-vl") == pytest.approx(want, abs=1e-12)


def test_not_applicable_to_other_lines() -> None:
    rec = {"record_id": "r", "image_size": [1000, 1000], "regions": PAIR}
    with pytest.raises(NotApplicable, match=r"meta\.count"):
        count_reward("2", rec, scheme="qwen3-vl")
    with pytest.raises(NotApplicable, match=r"meta\.relation"):
        relation_reward("Yes.", rec, scheme="qwen3-vl")


@pytest.fixture(scope="module")
def coco(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("coco") / "coco.jsonl"
    res = gtok(
        "ingest",
        "coco",
        "--instances",
        SAMPLE / "annotations" / "instances_val2017_sample.json",
        "--out",
        out,
    )
    assert res.exit_code == 0, res.output
    return out


@pytest.mark.parametrize(
    ("task", "reward", "extra"), [("count", "count", ("--negatives", "0.5")), ("relation", "relation", ())]
)
def test_gtok_reward_scores_an_exports_own_answers_in_full(
    coco: Path, tmp_path: Path, task: str, reward: str, extra: tuple[str, ...]
) -> None:
    """Each line's own answer is a perfect one: 1.0, except a ``which`` line, whose box is the subject's after
    the scheme's quantisation (IoU close to 1)."""
    out = tmp_path / "export"
    res = gtok("export", coco, "--scheme", "qwen2.5-vl", "--task", task, "--out", out, *extra)
    assert res.exit_code == 0, res.output
    lines = [orjson.loads(x) for x in (out / "gtok-00000.jsonl").read_bytes().splitlines()]
    preds = tmp_path / "preds.jsonl"
    preds.write_bytes(
        b"".join(
            orjson.dumps({"line": k, "text": x["conversations"][1]["value"]}) + b"\n"
            for k, x in enumerate(lines)
        )
    )
    scored = tmp_path / "scored.jsonl"
    res = gtok("reward", preds, "--against", out, "--reward", reward, "--out", scored)
    assert res.exit_code == 0, res.output
    got = [orjson.loads(x) for x in scored.read_bytes().splitlines()]
    assert len(got) == len(lines)
    for g, line in zip(got, lines, strict=True):
        value = g["rewards"][f"{reward}_reward"]
        if task == "relation" and line["meta"]["relation"]["form"] == "which":
            assert 0.9 <= value <= 1.0, g
        else:
            assert value == 1.0, g


def test_every_registered_reward_has_its_trl_function() -> None:
    from gtok_cli.rewards import REWARD_NAMES
    from gtok_cli.rewards import trl as gtok_rewards

    for name in REWARD_NAMES:
        assert callable(getattr(gtok_rewards, name)), name
    row = {"meta": orjson.dumps(DOGS).decode()}
    got = gtok_rewards.make_reward("count_reward", scheme="qwen3-vl")(
        completions=[f"2: [{A}, {B}]"], **{k: [v] for k, v in row.items()}
    )
    assert got == [1.0]
