"""`gtok reward` run as a user runs it: sampled answers against a gtok export, one output line per sample."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from _export_helpers import RUNNER, gtok, referring, write_records

from gtok_cli.cli import app
from gtok_cli.rewards import box_refine_reward, box_reward, format_reward

SHARD = "gtok-00000.jsonl"


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("reward_cli")
    src = write_records(root / "r.jsonl", [referring(k) for k in range(6)])
    out = {}
    for name, args in {"rec": ("--task", "rec"), "refine": ("--task", "refine")}.items():
        out[name] = root / name
        res = gtok("export", src, "--scheme", "grid", "--format", "messages", "--out", out[name], *args)
        assert res.exit_code == 0, res.output
    return out


def lines(folder: Path) -> list[dict[str, Any]]:
    return [orjson.loads(x) for x in (folder / SHARD).read_bytes().splitlines()]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return path


def test_samples_scored_one_line_each(exports: dict[str, Path], tmp_path: Path) -> None:
    export = lines(exports["rec"])
    assert [x["meta"]["record_id"] for x in export] == [f"ref-{k}" for k in range(6)]
    samples = [
        {"id": "ref-0", "text": "<box><grid_0_0><grid_15_15></box>"},
        {"id": "ref-0", "text": export[0]["messages"][1]["content"]},  # the export's own answer
        {"id": "nobody", "text": "<box><grid_0_0><grid_1_1></box>"},
        {"line": 2, "text": "```\n" + export[2]["messages"][1]["content"] + "\n```"},
    ]
    preds, out = write_jsonl(tmp_path / "s.jsonl", samples), tmp_path / "r.jsonl"
    res = gtok("reward", preds, "--against", exports["rec"], "--reward", "format,box", "--out", out, "--json")
    assert res.exit_code == 0, res.output
    summary = orjson.loads(res.stdout)
    assert summary["counts"] == {
        "predictions": 4, "scored": 3, "unknown_id": 1, "lines_without_prediction": 4,
    }  # fmt: skip
    got = [orjson.loads(x) for x in out.read_bytes().splitlines()]
    assert [(g["id"], g["line"], g["sample"]) for g in got] == [
        ("ref-0", 0, 0), ("ref-0", 0, 1), ("nobody", None, None), ("ref-2", 2, 0),
    ]  # fmt: skip
    for g, s in zip(got, samples, strict=True):
        if g["line"] is None:
            assert g["rewards"] == {}
            continue
        meta = export[g["line"]]["meta"]
        assert g["rewards"] == {
            "format_reward": format_reward(s["text"], meta),
            "box_reward": box_reward(s["text"], meta),
        }
    assert got[1]["rewards"]["format_reward"] == 1.0 and got[1]["rewards"]["box_reward"] > 1.8
    assert got[3]["rewards"]["format_reward"] == 1.0  # the fence is prose around a good span
    box = summary["rewards"]["box_reward"]
    values = [g["rewards"]["box_reward"] for g in got if g["line"] is not None]
    assert box["n"] == 3 and box["mean"] == pytest.approx(sum(values) / 3) and box["max"] == max(values)


def test_offset_stage_reads_the_exports_proposal(exports: dict[str, Path], tmp_path: Path) -> None:
    line = lines(exports["refine"])[0]
    turns = [m["content"] for m in line["messages"] if m["role"] == "assistant"]
    step = "<offset><box><OFF_0_0><OFF_1_1></box></offset>"
    samples = [
        {"id": "ref-0", "text": step},
        {"id": "ref-0", "turns": [turns[0], step]},
        {"id": "ref-0", "text": "no"},
    ]
    preds, out = write_jsonl(tmp_path / "s.jsonl", samples), tmp_path / "r.jsonl"
    args = ("--reward", "box_refine", "--reward", "format", "--out", out)
    res = gtok("reward", preds, "--against", exports["refine"], *args)
    assert res.exit_code == 0, res.output
    assert "3 of 3 predictions scored" in res.stderr
    got = [orjson.loads(x)["rewards"] for x in out.read_bytes().splitlines()]
    want = box_refine_reward(step, line["meta"], previous=turns[:-1])
    assert [g["box_refine_reward"] for g in got[:2]] == [want, want]
    assert got[2] == {"box_refine_reward": box_refine_reward("no", line["meta"], previous=turns[:1]),
                      "format_reward": 0.0}  # fmt: skip
    assert [g["format_reward"] for g in got[:2]] == [1.0, 1.0]


def test_not_applicable_is_null(exports: dict[str, Path], tmp_path: Path) -> None:
    preds, out = write_jsonl(tmp_path / "s.jsonl", [{"id": "ref-1", "text": "x"}]), tmp_path / "r.jsonl"
    res = gtok(
        "reward", preds, "--against", exports["rec"], "--reward", "mask_iou,box", "--out", out, "--json"
    )
    assert res.exit_code == 0, res.output
    assert orjson.loads(out.read_bytes())["rewards"] == {"mask_iou_reward": None, "box_reward": 0.0}
    assert orjson.loads(res.stdout)["rewards"]["mask_iou_reward"] == {
        "n": 0, "not_applicable": 1, "mean": None, "min": None, "max": None,
    }  # fmt: skip


def test_stdin(exports: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    data = orjson.dumps({"id": "ref-3", "text": "<box><grid_0_0><grid_15_15></box>"}).decode() + "\n"
    res = RUNNER.invoke(
        app,
        ["reward", "-", "--against", str(exports["rec"]), "--reward", "box", "--out", str(out)],
        input=data,
    )
    assert res.exit_code == 0, res.output
    assert len(out.read_bytes().splitlines()) == 1


@pytest.mark.parametrize(
    ("rows", "args", "message"),
    [
        ([{"id": "ref-0", "text": "x"}], ("--reward", "iou"), "unknown reward 'iou'"),
        ([{"id": "ref-0", "text": "x"}], ("--reward", ","), "names no reward"),
        ([{"id": "ghost", "text": "x"}], ("--reward", "box"), "nothing scored"),
        ([{"id": "ref-0"}], ("--reward", "box"), "text"),
        ([{"id": "ref-0", "text": "x"}], ("--reward", "box", "--mask-backend", "sam"), "--sam-checkpoint"),
        ([{"id": "ref-0", "text": "x"}], ("--reward", "box", "--mask-backend", "pixels"), "cells or sam"),
    ],
)
def test_bad_input_exits_2(
    exports: dict[str, Path], tmp_path: Path, rows: list[dict[str, Any]], args: tuple[str, ...], message: str
) -> None:
    preds = write_jsonl(tmp_path / "s.jsonl", rows)
    res = gtok("reward", preds, "--against", exports["rec"], "--out", tmp_path / "r.jsonl", *args)
    assert res.exit_code == 2, res.output
    assert message in res.output and "Traceback" not in res.output
    assert not (tmp_path / "r.jsonl").exists()


def test_refuses_to_write_over_its_input(exports: dict[str, Path], tmp_path: Path) -> None:
    preds = write_jsonl(tmp_path / "s.jsonl", [{"id": "ref-0", "text": "x"}])
    before = preds.read_bytes()
    res = gtok("reward", preds, "--against", exports["rec"], "--reward", "box", "--out", preds)
    assert res.exit_code == 2 and preds.read_bytes() == before


def test_not_json_names_the_line(exports: dict[str, Path], tmp_path: Path) -> None:
    preds = tmp_path / "s.jsonl"
    preds.write_text('{"id": "ref-0", "text": "x"}\n{oops\n')
    res = gtok("reward", preds, "--against", exports["rec"], "--reward", "box", "--out", tmp_path / "r.jsonl")
    assert res.exit_code == 2 and "line 2" in res.output


def test_mask_rewards_with_candidates_per_image(tmp_path: Path) -> None:
    """`--mask-backend sam` hands each line's image to a candidate maker (here a stand-in for SAM's):
    the rewards written equal the plain function given that image's candidates."""
    import numpy as np

    from gtok_cli.geometry.bits import pack_rows
    from gtok_cli.geometry.candidates import Candidates
    from gtok_cli.rewards import mask_iou_reward
    from gtok_cli.rewards.offline import score_predictions

    records = []
    for k in range(3):
        rec = referring(k, image_id=k, w=64, h=48)
        rec["regions"][0]["bbox"] = [0.0, 0.0, 6.0, 3.0]
        tokens = {"grid": 32, "anchors": [[0, 0], [1, 0], [2, 1]], "iou": 1.0, "backend": "cells", "tau": 0.9,
                  "variant": "sorted"}  # fmt: skip
        rec["regions"][0]["mask_tokens"] = tokens
        records.append(rec)
    src = write_records(tmp_path / "r.jsonl", records)
    export = tmp_path / "masks"
    res = gtok("export", src, "--scheme", "grid", "--task", "rec", "--shape", "mask", "--format", "llava",
               "--out", export)  # fmt: skip
    assert res.exit_code == 0, res.output
    asked: list[tuple[str, int, tuple[int, int]]] = []

    def candidates_for(image: str, grid: int, size: tuple[int, int]) -> Candidates:
        asked.append((image, grid, size))
        dense = np.zeros((grid * grid, size[1], size[0]), dtype=bool)
        dense[:, : 2 + int(image[4]), :] = True  # img-K.jpg: the first K + 2 pixel rows, whatever the anchor
        return Candidates(grid, size[0], size[1], packed=pack_rows(dense))

    preds = write_jsonl(
        tmp_path / "s.jsonl", [{"id": f"ref-{k}", "text": "<seg><grid_0_0></seg>"} for k in range(3)]
    )
    out = tmp_path / "r.jsonl"
    score_predictions(preds, export, "mask_iou", out, candidates_for=candidates_for)
    assert asked == [(f"img-{k}.jpg", 32, (64, 48)) for k in range(3)]
    got = [orjson.loads(x)["rewards"]["mask_iou_reward"] for x in out.read_bytes().splitlines()]
    for k, (line, value) in enumerate(zip(lines(export), got, strict=True)):
        want = mask_iou_reward(
            "<seg><grid_0_0></seg>", line["meta"], candidates=candidates_for(f"img-{k}.jpg", 32, (64, 48))
        )
        assert value == want and 0 < value < 1
