"""`gtok encode / decode / vocab` through the CLI: docs/spec.md#schemes' worked example in every scheme,
bad input."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from gtok_cli import __version__
from gtok_cli.cli import app

runner = CliRunner()
SIZE = ["--size", "640x480"]
BOX = "150,100,400,350"

# the exact strings of docs/spec.md#schemes (image 640×480, box [150,100,400,350]); label given where the
# table shows one
WORKED = [
    ("bins", None, "<box> 0.234 0.208 0.625 0.729"),
    ("loc", None, "<loc_234><loc_208><loc_625><loc_729>"),
    ("kosmos2", "a dog", "<phrase> a dog</phrase><object><patch_index_0199><patch_index_0755></object>"),
    ("paligemma", "dog", "<loc0213><loc0240><loc0746><loc0639> dog"),
    ("qwen-vl", "a dog", "<ref>a dog</ref><box>(234,208),(625,729)</box>"),
    (
        "qwen2-vl",
        "a dog",
        "<|object_ref_start|>a dog<|object_ref_end|><|box_start|>(234,208),(625,729)<|box_end|>",
    ),
    ("qwen2.5-vl", "dog", '[{"bbox_2d": [151, 99, 402, 347], "label": "dog"}]'),
    ("qwen3-vl", "dog", '[{"bbox_2d": [234, 208, 625, 729], "label": "dog"}]'),
    ("shikra", None, "[0.234,0.281,0.625,0.672]"),
    ("ferret", "a dog", "a dog [234, 208, 625, 729]"),
    ("grid", None, "<box><grid_7_6><grid_19_23></box>"),
    ("internvl", "dog", "<ref>dog</ref><box>[[234, 208, 625, 729]]</box>"),
    ("deepseek-vl2", "dog", "<|ref|>dog<|/ref|><|det|>[[234, 208, 624, 728]]<|/det|>"),
    ("gemini", "dog", '[{"box_2d": [208, 234, 729, 625], "label": "dog"}]'),
    ("cogvlm", None, "[[234,208,625,729]]"),
    ("minigpt-v2", "a dog", "<p>a dog</p> {<23><20><62><72>}"),
]


@pytest.mark.parametrize(("scheme", "label", "text"), WORKED)
def test_encode_worked_example(scheme: str, label: str | None, text: str) -> None:
    args = ["encode", "--scheme", scheme, *SIZE, *(["--label", label] if label else []), BOX]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert result.stdout == text + "\n"


@pytest.mark.parametrize(("scheme", "label", "text"), WORKED)
def test_decode_worked_example(scheme: str, label: str | None, text: str) -> None:
    result = runner.invoke(app, ["decode", "-s", scheme, *SIZE], input=f"The answer: {text}.")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["errors"] == []
    [region] = out["regions"]
    assert set(region) == {"label", "box"}
    # every scheme's bound at 640×480 is under one 32-cell (20 px × 15 px) of kosmos2/grid
    assert region["box"] == pytest.approx([150, 100, 400, 350], abs=20)


def test_molmo_worked_example_is_the_box_centre() -> None:
    args = ["encode", "-s", "molmo", *SIZE, "--label", "dog", "--box-as", "center", BOX]
    assert runner.invoke(app, args).stdout == '<point x="43.0" y="46.9" alt="dog">dog</point>\n'
    result = runner.invoke(
        app, ["decode", "-s", "molmo", *SIZE, '<point x="43.0" y="46.9" alt="dog">dog</point>']
    )
    assert json.loads(result.stdout)["regions"] == [{"label": "dog", "point": pytest.approx([275.2, 225.12])}]


def test_vocab_of_the_new_tagged_schemes() -> None:
    out = runner.invoke(app, ["vocab", "-s", "deepseek-vl2", "--json"])
    assert json.loads(out.stdout) == ["<|ref|>", "<|/ref|>", "<|det|>", "<|/det|>"]
    assert runner.invoke(app, ["vocab", "-s", "internvl"]).stdout.split() == [
        "<ref>",
        "</ref>",
        "<box>",
        "</box>",
    ]
    assert runner.invoke(app, ["vocab", "-s", "loc"]).stdout.split()[-3:] == ["<poly>", "</poly>", "<sep>"]
    for scheme in ("gemini", "molmo", "cogvlm", "minigpt-v2"):
        assert runner.invoke(app, ["vocab", "-s", scheme, "--json"]).stdout.strip() == "[]"


def test_decode_argument_and_points() -> None:
    text = '[{"point_2d": [500, 500], "label": "nose"}]'
    result = runner.invoke(app, ["decode", "-s", "qwen3-vl", *SIZE, text])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {
        "regions": [{"label": "nose", "point": [320.0, 240.0]}],
        "errors": [],
    }


def test_encode_points_and_several_boxes() -> None:
    result = runner.invoke(
        app, ["encode", "-s", "ferret", *SIZE, "--label", "dog", BOX, "0,0,64,48", "--point", "320,240"]
    )
    assert result.exit_code == 0
    assert result.stdout == "dog [234, 208, 625, 729], [0, 0, 100, 100], [500, 500]\n"


def test_decode_errors_exit_1_and_are_listed() -> None:
    result = runner.invoke(app, ["decode", "-s", "qwen-vl", *SIZE, "<box>(1,2)</box>"])
    assert result.exit_code == 1
    out = json.loads(result.stdout)
    assert out["regions"] == [] and out["errors"][0]["text"] == "<box>(1,2)</box>"


def test_scheme_parameters_pass_through() -> None:
    result = runner.invoke(app, ["encode", "-s", "bins", "--bins", "10", *SIZE, BOX])
    assert result.exit_code == 0
    assert result.stdout.startswith("<box>") and result.stdout != "<box> 0.234 0.208 0.625 0.729\n"
    resized = runner.invoke(app, ["encode", "-s", "qwen2.5-vl", "--max-pixels", "3136", *SIZE, BOX])
    assert resized.stdout == '[{"bbox_2d": [13, 6, 35, 20]}]\n'  # 56×28: 150·56/640 = 13.1, 100·28/480 = 5.8…


def test_vocab_lines_and_json() -> None:
    lines = runner.invoke(app, ["vocab", "-s", "qwen2-vl"])
    assert lines.exit_code == 0
    assert lines.stdout.split() == [
        "<|object_ref_start|>",
        "<|object_ref_end|>",
        "<|box_start|>",
        "<|box_end|>",
    ]
    as_json = runner.invoke(app, ["vocab", "-s", "qwen-vl", "--json"])
    assert json.loads(as_json.stdout) == ["<ref>", "</ref>", "<box>", "</box>"]
    assert runner.invoke(app, ["vocab", "-s", "ferret", "--json"]).stdout.strip() == "[]"
    assert len(runner.invoke(app, ["vocab", "-s", "loc"]).stdout.split()) >= 1000


@pytest.mark.parametrize(
    "args",
    [
        ["encode", "-s", "qwen-vl", "--size", "640", BOX],
        ["encode", "-s", "qwen-vl", "--size", "0x480", BOX],
        ["encode", "-s", "qwen-vl", *SIZE, "150,100,400"],
        ["encode", "-s", "qwen-vl", *SIZE, "a,b,c,d"],
        ["encode", "-s", "qwen-vl", *SIZE],
        ["encode", "-s", "qwen-vl", *SIZE, "--point", "1"],
        ["encode", "-s", "nope", *SIZE, BOX],
        ["encode", "-s", "qwen-vl", "--bins", "10", *SIZE, BOX],
        ["encode", "-s", "qwen-vl", *SIZE, "400,100,150,350"],
        ["decode", "-s", "qwen-vl", "--size", "axb", "x"],
        ["vocab", "-s", "nope"],
    ],
)
def test_bad_input_is_one_line_exit_2(args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("gtok: error:")


@pytest.mark.parametrize("command", ["encode", "decode", "vocab"])
def test_help_has_examples(command: str) -> None:
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert "Examples" in result.stdout and f"gtok {command}" in result.stdout


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout == f"gtok {__version__}\n"
