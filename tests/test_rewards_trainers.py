"""The rewards in the shapes the trainers call them, against the plain functions.

- TRL ``GRPOTrainer._calculate_rewards`` calls ``reward_func(prompts=…, completions=…, completion_ids=…,
  **reward_kwargs)`` with every dataset column but prompt/completion/completion_ids as a list, plus
  ``trainer_state``, ``log_extra``, ``log_metric`` (trl/trainer/grpo_trainer.py; the call is read back from
  the installed trl's source below, without importing it);
- verl's reward managers call ``compute_score(data_source=…, solution_str=…, ground_truth=…, extra_info=…)``
  and merge the config's ``reward_kwargs`` in (verl/workers/reward_manager/naive.py,
  verl/trainer/ppo/reward.py);
- ms-swift builds ``orms[name](args=args)`` and calls ``reward_func(completions, **reward_kwargs)`` with the
  dataset columns batched (swift/rl_core/grpo_algorithm.py). ms-swift 4.6.0 pins transformers<5.20,
  trl<1.0 and datasets<4.8.5, so it cannot live in this environment: the plugin is tested against a stand-in
  ``swift.rewards`` with the interface of swift/rewards/orm.py (``class ORM: __init__(self, args=None,
  **kwargs)``, an ``orms`` dict).
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import sys
import types
from functools import partial
from pathlib import Path
from typing import Any

import orjson
import pytest
from _export_helpers import gtok, referring, write_records

from gtok_cli.codecs import get_codec
from gtok_cli.rewards import box_refine_reward, box_reward, format_reward, non_repetition_reward
from gtok_cli.rewards import trl as trl_rewards
from gtok_cli.rewards.verl import compute_score

META = {
    "record_id": "r1",
    "image_size": [640, 480],
    "regions": [{"kind": "box", "bbox": [10.0, 7.5, 310.0, 232.5], "mask_tokens": None, "label": None}],
}
ANSWERS = [
    "<box><grid_0_0><grid_15_15></box>",
    "<box><grid_1_0><grid_16_15></box>",
    "```\n<box><grid_0_0><grid_15_15></box>\n```",
    "garbage",
    "",
]
PROPOSAL = "<box><grid_1_1><grid_16_16></box>"


def trl_call(fn: Any, prompts: list[Any], completions: list[Any], **columns: Any) -> list[float | None]:
    """What GRPOTrainer._calculate_rewards passes: keyword arguments, columns as lists, trainer extras."""
    reward_kwargs = {**columns, "trainer_state": object(), "log_extra": lambda *a: None, "log_metric": print}
    ids = [[1, 2, 3] for _ in completions]
    out: list[float | None] = fn(
        prompts=prompts, completions=completions, completion_ids=ids, **reward_kwargs
    )
    return out


# ---- TRL ---------------------------------------------------------------------------------------------------
def test_trl_string_and_conversational_completions_equal_the_plain_function() -> None:
    want = [box_reward(a, META) for a in ANSWERS]
    metas = [META] * len(ANSWERS)
    assert trl_call(trl_rewards.box_reward, ["Where?"] * len(ANSWERS), ANSWERS, meta=metas) == want
    conversational = [[{"role": "assistant", "content": a}] for a in ANSWERS]
    prompts = [[{"role": "user", "content": "Where is the dog?"}]] * len(ANSWERS)
    assert trl_call(trl_rewards.box_reward, prompts, conversational, meta=metas) == want
    blocks = [[{"role": "assistant", "content": [{"type": "text", "text": a}]}] for a in ANSWERS]
    assert trl_call(trl_rewards.box_reward, prompts, blocks, meta=metas) == want
    as_json = [orjson.dumps(META).decode()] * len(ANSWERS)
    assert trl_call(trl_rewards.box_reward, prompts, conversational, meta=as_json) == want
    assert trl_rewards.box_reward.__name__ == "box_reward"  # TRL logs rewards under the function's name


def test_trl_every_name_and_bound_parameters() -> None:
    for name in ("format_reward", "non_repetition_reward"):
        fn = getattr(trl_rewards, name)
        plain = {"format_reward": format_reward, "non_repetition_reward": non_repetition_reward}[name]
        assert trl_call(fn, ["q"] * len(ANSWERS), ANSWERS, meta=[META] * len(ANSWERS)) == [
            plain(a, META) for a in ANSWERS
        ]
    qwen = '[{"bbox_2d": [100, 100, 500, 500]}]'
    truth = {**META, "regions": [{"kind": "box", "bbox": [64.0, 48.0, 320.0, 240.0]}]}
    fn = trl_rewards.make_reward("box_reward", scheme="qwen3-vl")
    assert trl_call(fn, ["q"], [qwen], meta=[truth]) == [2.0]
    # a `scheme` column sets it per row
    assert trl_call(trl_rewards.box_reward, ["q", "q"], [qwen, qwen], meta=[truth] * 2,
                    scheme=["qwen3-vl", "grid"]) == [2.0, 0.0]  # fmt: skip


def test_trl_offset_stage_reads_the_proposal_from_the_prompt() -> None:
    step = "<offset><box><OFF_-1_-1><OFF_-1_-1></box></offset>"
    want = box_refine_reward(step, META, previous=[PROPOSAL])
    prompt = [
        {"role": "user", "content": "Where is the dog?"},
        {"role": "assistant", "content": PROPOSAL},
        {"role": "user", "content": "Correct your previous answer with offset tokens."},
    ]
    assert trl_call(trl_rewards.box_refine_reward, [prompt], [[{"role": "assistant", "content": step}]],
                    meta=[META]) == [want]  # fmt: skip
    text_prompt = f"<|user|>Where is the dog?<|assistant|>{PROPOSAL}<|user|>Correct it.<|assistant|>"
    assert trl_call(trl_rewards.box_refine_reward, [text_prompt], [step], meta=[META]) == [want]
    assert trl_call(trl_rewards.format_reward, [prompt], [step], meta=[META]) == [1.0]


def test_trl_not_applicable_is_none_and_missing_meta_is_an_error() -> None:
    from gtok_cli.errors import UsageError

    assert trl_call(trl_rewards.mask_iou_reward, ["q"], ANSWERS[:1], meta=[META]) == [None]
    with pytest.raises(UsageError, match="meta"):
        trl_call(trl_rewards.box_reward, ["q"], ANSWERS[:1])


def test_trl_calls_reward_functions_as_reproduced_here() -> None:
    """The installed trl's GRPOTrainer._calculate_rewards, read as source: the call and the columns."""
    spec = importlib.util.find_spec("trl")
    assert spec is not None and spec.origin is not None, "trl==1.16.0 comes with the test extra"
    source = (Path(spec.origin).parent / "trainer" / "grpo_trainer.py").read_text(encoding="utf-8")
    fn = next(
        n
        for n in ast.walk(ast.parse(source))
        if isinstance(n, ast.FunctionDef) and n.name == "_calculate_rewards"
    )
    calls = [
        c
        for c in ast.walk(fn)
        if isinstance(c, ast.Call) and isinstance(c.func, ast.Name) and c.func.id == "reward_func"
    ]
    shapes = {
        tuple(sorted(k.arg or "**" + ast.unparse(k.value) for k in c.keywords)) for c in calls if c.keywords
    }
    assert ("**reward_kwargs", "completion_ids", "completions", "prompts") in shapes
    excluded = next(
        ast.literal_eval(c.comparators[0])
        for c in ast.walk(fn)
        if isinstance(c, ast.Compare)
        and isinstance(c.ops[0], ast.NotIn)
        and isinstance(c.comparators[0], ast.List)
    )
    assert excluded == ["prompt", "completion", "completion_ids"]  # every other column is passed as a list
    assert {"trainer_state", "log_extra", "log_metric"} <= {
        t.slice.value
        for t in ast.walk(fn)
        if isinstance(t, ast.Subscript) and isinstance(t.value, ast.Name) and t.value.id == "reward_kwargs"
        and isinstance(t.slice, ast.Constant)
    }  # fmt: skip
    assert "reward if reward is not None else torch.nan" in ast.unparse(fn)  # None is "no reward"


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("reward_exports")
    src = write_records(root / "r.jsonl", [referring(k) for k in range(6)])
    out = {}
    for name, args in {
        "rec": ("--task", "rec"),
        "refine": ("--task", "refine", "--refine-turns", "2"),
    }.items():
        out[name] = root / name
        res = gtok("export", src, "--scheme", "grid", "--format", "messages", "--out", out[name], *args)
        assert res.exit_code == 0, res.output
    return out


def test_trl_on_a_gtok_export_loaded_with_datasets(exports: dict[str, Path]) -> None:
    import datasets

    for name, fn, plain in (
        ("rec", trl_rewards.box_reward, box_reward),
        ("refine", trl_rewards.box_refine_reward, box_refine_reward),
    ):
        shard = exports[name] / "gtok-00000.jsonl"
        lines = [orjson.loads(x) for x in shard.read_bytes().splitlines()]
        ds = datasets.load_dataset("json", data_files=str(shard), split="train")
        ds = ds.map(trl_rewards.grpo_example)
        assert isinstance(ds[0]["meta"], dict) and isinstance(ds[0]["prompt"], list)
        # the export's own last assistant turn as the completion, the way the trainer hands it over
        answers = [[m["content"] for m in x["messages"] if m["role"] == "assistant"] for x in lines]
        rows = [dict(ds[k]) for k in range(len(ds))]
        columns = {key: [r[key] for r in rows] for key in rows[0] if key not in ("prompt", "completion")}
        got = trl_call(fn, [r["prompt"] for r in rows], [a[-1] for a in answers], **columns)
        want = [plain(a[-1], x["meta"], previous=a[:-1]) if name == "refine" else plain(a[-1], x["meta"])
                for a, x in zip(answers, lines, strict=True)]  # fmt: skip
        assert got == pytest.approx(want) and len(got) == 6
        assert all(v is not None and v > 0 for v in got) or name == "refine"


def _tokenizer(special: list[str], plain: list[str]) -> Any:
    """A Hugging Face fast tokenizer built in memory (no download) with ``plain`` added by ``add_tokens`` (the
    gtok vocab recipe) and ``special`` added as special tokens (what Florence-2 / Qwen2-VL do with theirs)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["[UNK]", "<eos>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(["the dog (234,208),(625,729) 0.234 [0.1,0.2]"] * 4, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>")
    fast.add_tokens(plain)
    fast.add_special_tokens({"additional_special_tokens": special})
    return fast


SKIP_SPECIAL_CASES = [
    # (scheme, tokens the model's tokenizer marks special, answer, text left by skip_special_tokens=True,
    #  whether the reward still reads the box from that text)
    ("grid", [], "<box><grid_0_0><grid_15_15></box>", "<box><grid_0_0><grid_15_15></box>", True),
    ("grid", "vocab", "<box><grid_0_0><grid_15_15></box>", "", False),
    ("loc", "vocab", "dog<loc_15><loc_15><loc_484><loc_484>", "dog", False),
    ("qwen2-vl", "vocab",
     "<|object_ref_start|>dog<|object_ref_end|><|box_start|>(16,16),(484,484)<|box_end|>",
     "dog(16,16),(484,484)", True),  # the bare pair is put back between the box tags (scoring.stripped)
]  # fmt: skip


@pytest.mark.parametrize(("scheme", "special", "answer", "left", "survives"), SKIP_SPECIAL_CASES)
def test_skip_special_tokens_and_rereading_the_ids(
    scheme: str, special: Any, answer: str, left: str, survives: bool
) -> None:
    codec = get_codec(scheme)
    vocab = codec.vocab()
    tok = _tokenizer(vocab if special == "vocab" else [], [] if special == "vocab" else vocab)
    ids = tok(answer + "<eos>")["input_ids"]
    decoded = tok.decode(ids, skip_special_tokens=True)  # what TRL and verl hand to the reward
    assert decoded == left
    want = box_reward(answer, META, scheme=scheme)
    assert want > 1.8
    plainly = trl_call(trl_rewards.make_reward("box_reward", scheme=scheme), ["q"], [decoded], meta=[META])
    assert plainly == [want if survives else 0.0]
    fn = trl_rewards.make_reward("box_reward", scheme=scheme, tokenizer=tok)
    got = fn(prompts=["q"], completions=[decoded], completion_ids=[ids], meta=[META], trainer_state=None)
    assert got == [want]  # the scheme's tokens kept, the tokenizer's <eos> dropped


# ---- verl --------------------------------------------------------------------------------------------------
def test_verl_compute_score_as_the_reward_manager_calls_it() -> None:
    extra = {"index": 3, "num_turns": None, "rollout_reward_scores": {}}  # what naive.py adds
    for answer in ANSWERS:
        want = box_reward(answer, META)
        got = compute_score(data_source="refcoco", solution_str=answer, ground_truth=META, extra_info=extra)
        assert got == want
        assert compute_score("refcoco", answer, orjson.dumps(META).decode(), None) == want
    both = compute_score(
        data_source="x", solution_str=ANSWERS[1], ground_truth=META,
        extra_info={"reward": ["box_reward", "format_reward"]},
    )  # fmt: skip
    assert both == {"score": box_reward(ANSWERS[1], META) + 1.0, "box_reward": box_reward(ANSWERS[1], META),
                    "format_reward": 1.0}  # fmt: skip
    step = "<offset><box><OFF_-1_-1><OFF_-1_-1></box></offset>"
    got = compute_score("x", step, META, {"reward": "box_refine_reward", "previous": PROPOSAL})
    assert got == box_refine_reward(step, META, previous=PROPOSAL)


def test_verl_config_reward_kwargs_are_merged_like_verl_does() -> None:
    # verl/trainer/ppo/reward.py: partial(_call_with_kwargs, raw_fn, reward_kwargs), reward_kwargs winning
    def call_with_kwargs(raw_fn: Any, extra_kwargs: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        return raw_fn(*args, **{**kwargs, **extra_kwargs})

    fn = partial(call_with_kwargs, compute_score, {"scheme": "qwen3-vl"})
    truth = {**META, "regions": [{"kind": "box", "bbox": [64.0, 48.0, 320.0, 240.0]}]}
    got = fn(data_source="d", solution_str='[{"bbox_2d": [100, 100, 500, 500]}]', ground_truth=truth,
             extra_info={}, reward_router_address=None)  # fmt: skip
    assert got == 2.0


# ---- ms-swift ----------------------------------------------------------------------------------------------
@pytest.fixture
def stand_in_swift(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """``swift.rewards`` with the interface of ms-swift 4.6.0's swift/rewards/orm.py."""

    class ORM:
        def __init__(self, args: Any = None, **kwargs: Any) -> None:
            self.args = args

        def __call__(self, **kwargs: Any) -> list[float]:
            raise NotImplementedError

    orms: dict[str, Any] = {"accuracy": ORM}
    swift = types.ModuleType("swift")
    rewards = types.ModuleType("swift.rewards")
    rewards.ORM, rewards.orms = ORM, orms  # type: ignore[attr-defined]
    swift.rewards = rewards  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "swift", swift)
    monkeypatch.setitem(sys.modules, "swift.rewards", rewards)
    monkeypatch.delitem(sys.modules, "gtok_cli.rewards.swift_plugin", raising=False)
    return {"ORM": ORM, "orms": orms}


def test_swift_plugin_registers_and_scores_like_the_plain_function(stand_in_swift: dict[str, Any]) -> None:
    importlib.import_module("gtok_cli.rewards.swift_plugin")  # what --external_plugins does: import it
    orms = stand_in_swift["orms"]
    assert {"gtok_format", "gtok_box", "gtok_point", "gtok_mask_iou", "gtok_box_refine"} <= set(orms)
    reward = orms["gtok_box"](args=object())  # swift/rlhf_trainers/utils.py: orms[name](args=args)
    assert isinstance(reward, stand_in_swift["ORM"])
    # swift/rl_core/grpo_algorithm.py: completions = messages[-1]["content"]; columns batched from the rows
    messages = [[{"role": "user", "content": "Where?"}, {"role": "assistant", "content": a}] for a in ANSWERS]
    kwargs = {"trainer_state": None, "messages": messages, "meta": [META] * len(ANSWERS),
              "images": [["a.jpg"]] * len(ANSWERS), "request_id": list(range(len(ANSWERS)))}  # fmt: skip
    assert reward(ANSWERS, **kwargs) == [box_reward(a, META) for a in ANSWERS]
    step = "<offset><box><OFF_-1_-1><OFF_-1_-1></box></offset>"
    refine = orms["gtok_box_refine"]()
    conversation = [
        {"role": "user", "content": "Where?"},
        {"role": "assistant", "content": PROPOSAL},
        {"role": "user", "content": "Refine."},
        {"role": "assistant", "content": step},
    ]
    assert refine([step], messages=[conversation], meta=[META]) == [
        box_refine_reward(step, META, previous=PROPOSAL)
    ]
    assert orms["gtok_mask_iou"]()(ANSWERS[:1], meta=[META]) == [None]  # ms-swift reads None as NaN


@pytest.mark.parametrize("fmt", ["llava", "messages", "conversations"])
def test_grpo_example_every_format(fmt: str) -> None:
    from gtok_cli.trainer_formats import get_format

    turns = [("user", "Where is the dog?"), ("assistant", PROPOSAL), ("user", "Refine."), ("assistant", "x")]
    line = {**get_format(fmt).build("id-1", "dog.jpg", turns), "meta": META}
    got = trl_rewards.grpo_example(line, image_root="/data/images")
    assert got["prompt"] == [
        {"role": "user", "content": "Where is the dog?"},
        {"role": "assistant", "content": PROPOSAL},
        {"role": "user", "content": "Refine."},
    ]
    assert got["meta"] == META and got["images"] == ["/data/images/dog.jpg"]
