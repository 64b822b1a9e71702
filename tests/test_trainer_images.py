"""`--trainer`: the image the trainer feeds, the codec's coordinates on it, and the manifest pinning it.

Expected sizes are worked by hand from the references' formulas (cited in gtok_cli/trainer_images.py):
LLaMA-Factory ``_preprocess_image`` (f = sqrt(max/(w·h)), int() of each side), ms-swift ``rescale_image``
(hs = sqrt(max/(w/h)), ws = hs·(w/h), int()), then the Qwen2-VL ``smart_resize`` (factor 28).
"""

from __future__ import annotations

import math
from pathlib import Path

import orjson
import pytest
from _export_helpers import gtok, referring, write_records

from gtok_cli.codecs import codec_from_params, get_codec
from gtok_cli.errors import InputError, UsageError
from gtok_cli.trainer_images import TrainerImage

LF = TrainerImage("llamafactory")  # budget 768*768 = 589824


def test_worked_example_1920x1080_by_hand() -> None:
    # f = sqrt(589824 / 2073600) = sqrt(0.2844…) = 8/15 exactly in reals; 1920·8/15 = 1024, 1080·8/15 = 576
    assert LF.fed_size(1920, 1080) == (1024, 576)
    # smart_resize(1024x576): round(1024/28) = 37 → 1036, round(576/28) = round(20.57) = 21 → 588;
    # 1036·588 = 609168 lies within [3136, 12845056], so 1036x588 (the original would be 1932x1092)
    lf = get_codec("qwen2.5-vl", trainer="llamafactory")
    assert lf.resized((1920, 1080)) == (1036, 588)
    assert get_codec("qwen2.5-vl").resized((1920, 1080)) == (1932, 1092)
    # a box [480, 270, 1440, 810] (the middle half): x·1036/1920, y·588/1080, half-even
    # 480·1036/1920 = 259, 270·588/1080 = 147, 1440·1036/1920 = 777, 810·588/1080 = 441
    assert lf.encode_box([480, 270, 1440, 810], (1920, 1080)) == '[{"bbox_2d": [259, 147, 777, 441]}]'
    # under hf the same box is written on 1932x1092: 483, 273, 1449, 819 (~1.87x the llamafactory numbers)
    hf = get_codec("qwen2.5-vl")
    assert hf.encode_box([480, 270, 1440, 810], (1920, 1080)) == '[{"bbox_2d": [483, 273, 1449, 819]}]'
    # and decoding maps back to the original pixels
    dec = lf.decode('[{"bbox_2d": [259, 147, 777, 441]}]', (1920, 1080))
    assert dec.shapes()[0].coords == pytest.approx((480, 270, 1440, 810))


@pytest.mark.parametrize(
    ("size", "budget", "expected"),
    [
        ((768, 768), 768 * 768, (768, 768)),  # exactly at the budget: left alone (the rule is w·h > max)
        # one column over: f = sqrt(589824/590592) = 0.999350; 769·f = 768.4998 → 768, 768·f = 767.50 → 767
        ((769, 768), 768 * 768, (768, 767)),
        # f = sqrt(1e6/1.2e7) = 0.288675; 4000·f = 1154.70 → 1154, 3000·f = 866.03 → 866
        ((4000, 3000), 1000 * 1000, (1154, 866)),
        # extreme aspect: f = sqrt(589824/2e6) = 0.543059; 20000·f = 10861.2 → 10861, 100·f = 54.3 → 54
        ((20000, 100), 768 * 768, (10861, 54)),
        ((20, 20), 768 * 768, (32, 32)),  # tiny: 400 < 32·32, enlarged by f = sqrt(1024/400) = 1.6
        # 1023 px, one under 1024: f = sqrt(1024/1023) = 1.000489; 31.015 → 31, 33.016 → 33 (size kept)
        ((31, 33), 768 * 768, (31, 33)),
        ((1, 1), 768 * 768, (32, 32)),  # a 1x1 image: f = sqrt(1024) = 32
    ],
)
def test_llamafactory_rule_table(size: tuple[int, int], budget: int, expected: tuple[int, int]) -> None:
    assert TrainerImage("llamafactory", budget).fed_size(*size) == expected


def test_llamafactory_side_shrunk_to_zero_is_refused() -> None:
    # 1000x1 with budget 100: f = 0.316, 1·f truncates to 0 and LLaMA-Factory's enlargement then divides by
    # zero (ZeroDivisionError in its _preprocess_image): gtok refuses the image instead of writing numbers
    with pytest.raises(InputError, match="LLaMA-Factory"):
        TrainerImage("llamafactory", 100).fed_size(1000, 1)


def test_qwen_plugin_steps() -> None:
    # sides under 28 are raised to 28 (Qwen2VLPlugin), after the base step
    assert LF.fed_size(40, 30, qwen_plugin=True) == (40, 30)  # 1200 px: not tiny, sides >= 28
    assert LF.fed_size(100, 11, qwen_plugin=True) == (100, 28)  # 1100 px >= 1024; 11 → 28
    # aspect above 200 cut to 180: 6000x28 (168000 px, under the budget), ratio 214 → width 28·180 = 5040
    assert LF.fed_size(6000, 28, qwen_plugin=True) == (5040, 28)
    assert LF.fed_size(28, 6000, qwen_plugin=True) == (28, 5040)
    # the 20000x100 row of the table: 10861x54 is 201:1, cut to 54·180 = 9720
    assert LF.fed_size(20000, 100, qwen_plugin=True) == (9720, 54)
    assert get_codec("qwen2.5-vl", trainer="llamafactory").resized((20000, 100)) == (9716, 56)


@pytest.mark.parametrize(
    ("size", "budget", "expected"),
    [
        ((1920, 1080), 768 * 768, (1024, 576)),
        ((768, 768), 768 * 768, (768, 768)),  # at the budget: left alone (w·h <= max)
        ((769, 768), 768 * 768, (768, 767)),  # ratio 1.0013; hs = sqrt(589824/1.0013) = 767.50 → 767
        ((20, 20), 768 * 768, (20, 20)),  # ms-swift never enlarges
    ],
)
def test_swift_rule_table(size: tuple[int, int], budget: int, expected: tuple[int, int]) -> None:
    w, h = size
    if w * h > budget:  # rescale_image by hand
        ratio = w / h
        hs = math.sqrt(budget / ratio)
        w, h = int(hs * ratio), int(hs)
    assert (w, h) == expected
    assert TrainerImage("swift", budget).fed_size(*size) == expected


def test_swift_default_is_no_resize_and_qwen_vl_utils_rounding() -> None:
    assert TrainerImage("swift").fed_size(1920, 1080) == (1920, 1080)
    assert get_codec("qwen2.5-vl", trainer="swift").resized((1920, 1080)) == (1932, 1092)
    # qwen_vl_utils keeps a first-rounded side at >= 28: 200x10 → h_bar 28, w_bar 196, 5488 >= 3136 → 196x28;
    # the HF processor rounds 10 to 0 and takes the min_pixels branch: beta = sqrt(3136/2000) = 1.2522,
    # ceil(200·1.2522/28)·28 = 252, ceil(10·1.2522/28)·28 = 28
    assert get_codec("qwen2.5-vl", trainer="swift").resized((200, 10)) == (196, 28)
    assert get_codec("qwen2.5-vl").resized((200, 10)) == (252, 28)


def test_budget_counts_and_bad_options() -> None:
    assert LF.shrinks([768, 769, 1920], [768, 768, 1080]).tolist() == [False, True, True]
    assert not TrainerImage("hf").shrinks(10_000, 10_000)
    with pytest.raises(UsageError, match="--image-max-pixels needs"):
        TrainerImage("hf", 100)
    with pytest.raises(UsageError, match="unknown --trainer"):
        TrainerImage("axolotl")
    with pytest.raises(UsageError, match="positive"):
        TrainerImage("swift", 0)
    with pytest.raises(UsageError, match="unknown --trainer"):
        get_codec("loc", trainer="axolotl")  # checked even where the scheme is immune


def test_params_pin_the_trainer_and_relative_schemes_are_immune() -> None:
    codec = get_codec("qwen2.5-vl", trainer="llamafactory")
    assert codec.params()["trainer"] == "llamafactory"
    assert codec.params()["image_max_pixels"] == 768 * 768  # the default written out
    again = codec_from_params(codec.describe())
    assert again.params() == codec.params() and again.resized((1920, 1080)) == (1036, 588)
    assert "trainer" not in get_codec("qwen2.5-vl").params()  # hf: today's params, unchanged
    box, size = [150, 100, 400, 350], (1920, 1080)
    relative = ("bins", "loc", "kosmos2", "paligemma", "qwen-vl", "qwen2-vl", "qwen3-vl", "shikra", "ferret")
    relative += ("grid",)
    for scheme in relative:
        plain = get_codec(scheme)
        fed = get_codec(scheme, trainer="llamafactory", image_max_pixels=1000)
        assert fed.params() == plain.params()
        assert fed.encode_box(box, size) == plain.encode_box(box, size)


def test_encode_cli_with_trainer() -> None:
    res = gtok(
        "encode", "-s", "qwen2.5-vl", "--trainer", "llamafactory", "--size", "1920x1080", "480,270,1440,810"
    )
    assert res.exit_code == 0, res.output
    assert res.output.strip() == '[{"bbox_2d": [259, 147, 777, 441]}]'
    res = gtok(
        "decode", "-s", "qwen2.5-vl", "--trainer", "llamafactory", "--size", "1920x1080",
        '[{"bbox_2d": [259, 147, 777, 441]}]',
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert orjson.loads(res.output)["regions"][0]["box"] == pytest.approx([480, 270, 1440, 810])
    res = gtok("encode", "-s", "qwen2.5-vl", "--image-max-pixels", "9", "--size", "1920x1080", "1,1,2,2")
    assert res.exit_code == 2 and "needs --trainer" in res.output


def test_export_verify_round_trip_with_llamafactory(tmp_path: Path) -> None:
    records = [referring(k, w=1920, h=1080) for k in range(6)] + [referring(9, w=640, h=480)]
    src = write_records(tmp_path / "r.jsonl", records)
    out = tmp_path / "out"
    res = gtok("export", src, "-s", "qwen2.5-vl", "-t", "rec", "-f", "messages", "--trainer", "llamafactory",
               "--out", out)  # fmt: skip
    assert res.exit_code == 0, res.output
    manifest = orjson.loads((out / "manifest.json").read_bytes())
    params = manifest["scheme"]["params"]
    assert params["trainer"] == "llamafactory" and params["image_max_pixels"] == 589824
    assert manifest["command"][manifest["command"].index("--trainer") + 1] == "llamafactory"
    lines = [orjson.loads(x) for x in next(out.glob("gtok-*.jsonl")).read_bytes().splitlines()]
    first = lines[0]
    x1, y1, x2, y2 = first["meta"]["regions"][0]["bbox"]
    want = [round(x1 * 1036 / 1920), round(y1 * 588 / 1080), round(x2 * 1036 / 1920), round(y2 * 588 / 1080)]
    assert orjson.loads(first["messages"][1]["content"])[0]["bbox_2d"] == want
    small = lines[-1]  # 640x480 = 307200 px is under the budget: smart_resize(640, 480) = 644x476 as before
    assert small["messages"][1]["content"] == get_codec("qwen2.5-vl").encode_box(
        small["meta"]["regions"][0]["bbox"], (640, 480), "the person number 9"
    )
    assert gtok("verify", out).exit_code == 0
    # the command in the manifest re-runs the same export
    again = tmp_path / "again"
    cmd = manifest["command"][1:]
    cmd[cmd.index("--out") + 1] = str(again)
    assert gtok(*cmd).exit_code == 0
    assert (again / "manifest.json").exists()
    assert orjson.loads((again / "manifest.json").read_bytes())["scheme"] == manifest["scheme"]


def test_verify_catches_hf_text_under_a_llamafactory_manifest(tmp_path: Path) -> None:
    src = write_records(tmp_path / "r.jsonl", [referring(k, w=1920, h=1080) for k in range(3)])
    out = tmp_path / "out"
    assert gtok("export", src, "-s", "qwen2.5-vl", "-t", "rec", "--out", out).exit_code == 0
    manifest = orjson.loads((out / "manifest.json").read_bytes())
    manifest["scheme"]["params"].update(trainer="llamafactory", image_max_pixels=589824)
    (out / "manifest.json").write_bytes(orjson.dumps(manifest))
    res = gtok("verify", out)
    assert res.exit_code == 1  # the hf numbers (~1.87x) are out of range or far off on the fed image


def test_export_notes_immune_schemes(tmp_path: Path) -> None:
    src = write_records(tmp_path / "r.jsonl", [referring(0)])
    res = gtok("export", src, "-s", "loc", "-t", "rec", "--trainer", "llamafactory", "--out", tmp_path / "o")
    assert res.exit_code == 0, res.output
    assert "does not change its text" in res.output


def test_stats_counts_images_the_budget_shrinks(tmp_path: Path) -> None:
    # images: img-0 and img-1 are 1920x1080 (2073600 px > 589824: shrunk), img-4 is 640x480 (307200: kept);
    # two records share each image id (referring(k) uses image k // 2): 3 distinct images
    records = [referring(k, w=1920, h=1080) for k in range(4)] + [referring(9)]
    src = write_records(tmp_path / "r.jsonl", records)
    res = gtok("stats", src, "--json")
    assert res.exit_code == 0, res.output
    tr = orjson.loads(res.output)["trainer_resize"]
    got = (tr["trainer"], tr["image_max_pixels"], tr["images"], tr["shrunk"])
    assert got == ("llamafactory", 589824, 3, 2)
    # a budget of 300000 also takes the 640x480 image (307200 > 300000); swift's default shrinks nothing
    res = gtok("stats", src, "--json", "--trainer", "swift", "--image-max-pixels", "300000")
    assert orjson.loads(res.output)["trainer_resize"]["shrunk"] == 3
    res = gtok("stats", src, "--json", "--trainer", "swift")
    assert orjson.loads(res.output)["trainer_resize"]["shrunk"] == 0
    # an export: the pinned trainer is the default; the human report says what it means for the boxes
    out = tmp_path / "o"
    assert gtok("export", src, "-s", "qwen2.5-vl", "-t", "rec", "--out", out).exit_code == 0
    res = gtok("stats", out)
    assert "2 of 3 images shrunk" in res.output and "wrong boxes" in res.output
    pinned = tmp_path / "lf"
    res = gtok("export", src, "-s", "qwen2.5-vl", "-t", "rec", "--trainer", "llamafactory", "--out", pinned)
    assert res.exit_code == 0
    res = gtok("stats", pinned)
    assert "2 of 3 images shrunk" in res.output and "pixels of the image this trainer feeds" in res.output
