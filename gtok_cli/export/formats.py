"""Trainer formats: how a rendered sample becomes one JSON line (docs/spec.md#shards).

- ``llava``: ``{"id", "image", "conversations": [{"from": "human"|"gpt", "value"}]}``, ``<image>\\n`` opens
  the first human turn (LLaVA's own data files).
- ``messages``: ``{"messages": [{"role": "user"|"assistant", "content"}], "images": [file]}``, ``<image>``
  opens the first user turn (LLaMA-Factory's sharegpt-style ``messages`` columns and ms-swift's standard
  format); :func:`dataset_info` writes LLaMA-Factory's ``dataset_info.json`` entries.
- ``conversations``: the seed's ``{"image", "conversations": [{"role", "content"}]}``, ``<image>\\n`` first.

Every line may end with ``"meta"`` (the truth verify compares with). Keys are written in this fixed order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

FORMATS = ("llava", "messages", "conversations")

Turns = list[tuple[str, str]]
LineBuilder = Callable[[str, str, Turns], dict[str, Any]]

_LLAVA_ROLE = {"user": "human", "assistant": "gpt"}


def _with_image(turns: Turns, tag: str) -> Turns:
    """The image tag at the start of the first user turn."""
    out = list(turns)
    for k, (role, text) in enumerate(out):
        if role == "user":
            out[k] = (role, tag + text)
            break
    return out


def llava_line(sample_id: str, image: str, turns: Turns) -> dict[str, Any]:
    conv = [{"from": _LLAVA_ROLE[r], "value": t} for r, t in _with_image(turns, "<image>\n")]
    return {"id": sample_id, "image": image, "conversations": conv}


def messages_line(sample_id: str, image: str, turns: Turns) -> dict[str, Any]:
    msgs = [{"role": r, "content": t} for r, t in _with_image(turns, "<image>")]
    return {"messages": msgs, "images": [image]}


def conversations_line(sample_id: str, image: str, turns: Turns) -> dict[str, Any]:
    conv = [{"role": r, "content": t} for r, t in _with_image(turns, "<image>\n")]
    return {"image": image, "conversations": conv}


BUILDERS: dict[str, LineBuilder] = {
    "llava": llava_line,
    "messages": messages_line,
    "conversations": conversations_line,
}


def line_turns(fmt: str, line: dict[str, Any]) -> Turns:
    """Inverse of the builders: ``[(role, text)]``, roles ``user``/``assistant``, the image tag removed.

    Raises KeyError/TypeError on a line of another shape (callers validate against the schema first).
    """
    if fmt == "llava":
        raw = [("user" if t["from"] == "human" else "assistant", t["value"]) for t in line["conversations"]]
        tag = "<image>\n"
    elif fmt == "messages":
        raw = [(t["role"], t["content"]) for t in line["messages"]]
        tag = "<image>"
    else:
        raw = [(t["role"], t["content"]) for t in line["conversations"]]
        tag = "<image>\n"
    for k, (role, text) in enumerate(raw):
        if role == "user":
            if text.startswith(tag):
                raw[k] = (role, text[len(tag) :])
            break
    return raw


def line_image(fmt: str, line: dict[str, Any]) -> str:
    return str(line["images"][0] if fmt == "messages" else line["image"])


def dataset_info(dataset_names: dict[str, str]) -> dict[str, Any]:
    """LLaMA-Factory ``dataset_info.json`` entries (``{name: file}``) for ``messages`` shards.

    LLaMA-Factory loads one file (or a folder of same-type files) per entry; list the entries comma-separated
    in its ``dataset:`` option to train on every shard.
    """
    entry = {
        "formatting": "sharegpt",
        "columns": {"messages": "messages", "images": "images"},
        "tags": {
            "role_tag": "role",
            "content_tag": "content",
            "user_tag": "user",
            "assistant_tag": "assistant",
        },
    }
    return {name: {"file_name": file, **entry} for name, file in sorted(dataset_names.items())}
