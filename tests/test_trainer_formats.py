"""The trainer-format table (gtok_cli/trainer_formats.py): each entry builds a line and reads it back — turns,
image and assistant texts — from the parsed dict and from the msgspec-typed view alike."""

from __future__ import annotations

from typing import Any

import msgspec
import orjson
import pytest

from gtok_cli.trainer_formats import (
    FORMATS,
    dataset_info,
    get_format,
    line_struct,
    one_box_answers,
    typed_assistant_texts,
)

META = {"record_id": "r1", "image_size": [640, 480], "regions": []}

# (format, expected line bytes for TURNS_2 on "a.jpg" with id "s1"): written out by hand from the formats'
# own documentation (LLaVA data files, LLaMA-Factory sharegpt columns, the seed's conversations)
EXPECTED = {
    "llava": b'{"id":"s1","image":"a.jpg","conversations":[{"from":"human","value":"<image>\\nWhere is it?"},'
    b'{"from":"gpt","value":"<box>1</box>"}]}',
    "messages": b'{"messages":[{"role":"user","content":"<image>Where is it?"},'
    b'{"role":"assistant","content":"<box>1</box>"}],"images":["a.jpg"]}',
    "conversations": b'{"image":"a.jpg","conversations":[{"role":"user","content":"<image>\\nWhere is it?"},'
    b'{"role":"assistant","content":"<box>1</box>"}]}',
    # ms-swift's standard messages row with its grounding "objects" (empty: these turns hold no placeholder)
    "swift": b'{"messages":[{"role":"user","content":"<image>Where is it?"},'
    b'{"role":"assistant","content":"<box>1</box>"}],"images":["a.jpg"],'
    b'"objects":{"ref":[],"bbox":[],"bbox_type":"real","image_id":[]}}',
}
TURNS_2 = [("user", "Where is it?"), ("assistant", "<box>1</box>")]

TURN_ROWS = {
    "one question": TURNS_2,
    "refinement turns": [("user", "q"), ("assistant", "a1"), ("user", "refine"), ("assistant", "a2")],
    "empty texts": [("user", ""), ("assistant", "")],
    "tag already in the text": [("user", "<image>\nx"), ("assistant", "y")],
    "unicode and quotes": [("user", 'le "chien" à gauche\n'), ("assistant", "\\ ✓")],
    "geometry in the question (reg)": [("user", "What is <box>3</box>?"), ("assistant", "a dog")],
}


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_build_writes_the_documented_line(fmt: str) -> None:
    line = get_format(fmt).build("s1", "a.jpg", TURNS_2)
    assert orjson.dumps(line) == EXPECTED[fmt]


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@pytest.mark.parametrize("row", sorted(TURN_ROWS))
def test_build_then_read_back_dict_and_typed(fmt: str, row: str) -> None:
    f = get_format(fmt)
    turns = TURN_ROWS[row]
    line = f.build("s1", "dir/a b.jpg", turns)
    want_answers = [t for r, t in turns if r == "assistant"]
    # parsed (dict) line
    parsed = orjson.loads(orjson.dumps({**line, "meta": META}))
    assert f.turns(parsed) == turns
    assert f.image(parsed) == "dir/a b.jpg"
    assert f.assistant_texts(parsed) == want_answers
    # typed line: the same bytes through the format's msgspec view
    typed = msgspec.json.decode(orjson.dumps(parsed), type=line_struct(f, dict[str, Any]))
    assert typed_assistant_texts(f, typed) == want_answers
    assert [(t.role, t.text) for t in typed.turns] == [
        (f.role_names[0] if r == "user" else f.role_names[1], t) for r, t in f.with_tag(turns)
    ]
    assert typed.meta == META


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_one_box_typed_view(fmt: str) -> None:
    f = get_format(fmt)
    one_box = line_struct(f, dict[str, Any], one_box=True)
    good = orjson.dumps({**f.build("s", "a.jpg", TURNS_2), "meta": META})
    assert one_box_answers([msgspec.json.decode(good, type=one_box)]) == ["<box>1</box>"]
    for bad_turns in (
        [("user", "q"), ("assistant", "a"), ("user", "q2"), ("assistant", "a2")],  # more than one answer
        [("assistant", "a"), ("user", "q")],  # answer first
    ):
        bad = orjson.dumps({**f.build("s", "a.jpg", bad_turns), "meta": META})
        with pytest.raises(msgspec.ValidationError):
            msgspec.json.decode(bad, type=one_box)
    no_meta = orjson.dumps(f.build("s", "a.jpg", TURNS_2))
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(no_meta, type=one_box)


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@pytest.mark.parametrize(
    "change",
    ["unknown key", "unknown role", "one turn", "empty image", "turn key missing"],
)
def test_typed_line_refuses_what_the_schema_refuses(fmt: str, change: str) -> None:
    f = get_format(fmt)
    line = f.build("s", "a.jpg", TURNS_2)
    turns = line[f.turns_key]
    if change == "unknown key":
        line["extra"] = 1
    elif change == "unknown role":
        turns[0][f.role_key] = "system"
    elif change == "one turn":
        del turns[1]
    elif change == "empty image":
        line[f.image_key] = [""] if f.image_list else ""
    else:
        del turns[1][f.text_key]
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(orjson.dumps(line), type=line_struct(f, dict[str, Any]))


def test_turns_keep_a_role_the_format_does_not_name() -> None:
    """show/stats read unvalidated lines: an unknown role is passed through, not taken for the assistant."""
    line = {"id": "s", "image": "a", "conversations": [{"from": "system", "value": "x"}]}
    assert get_format("llava").turns(line) == [("system", "x")]
    assert get_format("llava").assistant_texts(line) == []


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_reading_a_line_of_another_shape_raises_key_error(fmt: str) -> None:
    with pytest.raises(KeyError):
        get_format(fmt).turns({"something": []})


def test_dataset_info_only_for_sharegpt_formats() -> None:
    assert [name for name, f in FORMATS.items() if f.sharegpt_info] == ["messages"]
    info = dataset_info(get_format("messages"), {"gtok-00000": "gtok-00000.jsonl"})
    assert info == {
        "gtok-00000": {
            "file_name": "gtok-00000.jsonl",
            "formatting": "sharegpt",
            "columns": {"messages": "messages", "images": "images"},
            "tags": {
                "role_tag": "role",
                "content_tag": "content",
                "user_tag": "user",
                "assistant_tag": "assistant",
            },
        }
    }
