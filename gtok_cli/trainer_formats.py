"""Trainer formats: how a sample's turns become one JSON line, and how a line is read back.

One :class:`TrainerFormat` entry per format in :data:`FORMATS` says everything the stages need: export builds
lines with it (:meth:`TrainerFormat.build`, and through that the fast path's line template), verify, show and
stats read turns, image and assistant texts back from parsed (dict) lines and from msgspec-typed lines
(:func:`line_struct` makes the typed view from the same entry). A new format is one entry (and its
``$defs/<format>`` in ``schemas/shard_line.schema.json``, which verify checks lines against).

- ``llava``: ``{"id", "image", "conversations": [{"from": "human"|"gpt", "value"}]}``, ``<image>\\n`` opens
  the first human turn (LLaVA's own data files).
- ``messages``: ``{"messages": [{"role": "user"|"assistant", "content"}], "images": [file]}``, ``<image>``
  opens the first user turn (LLaMA-Factory's sharegpt-style ``messages`` columns and ms-swift's standard
  format); :func:`dataset_info` writes LLaMA-Factory's ``dataset_info.json`` entries.
- ``conversations``: the seed's ``{"image", "conversations": [{"role", "content"}]}``, ``<image>\\n`` first.

Every line may end with ``"meta"`` (the truth verify compares with). Keys are written in the entry's fixed
order. Turns are ``(role, text)`` with the roles ``user`` / ``assistant`` whatever a format calls them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import msgspec

Turns = list[tuple[str, str]]
ROLES = ("user", "assistant")


@dataclass(frozen=True)
class TrainerFormat:
    """One trainer format, as data: its keys, its role names and its image tag."""

    name: str
    turns_key: str
    """The list of turns (``conversations``, ``messages``)."""
    role_key: str
    """A turn's speaker key (``from``, ``role``)."""
    text_key: str
    """A turn's text key (``value``, ``content``)."""
    role_names: tuple[str, str]
    """What the format calls the ``user`` and the ``assistant``."""
    image_key: str
    image_tag: str
    """Opens the first user turn's text."""
    layout: tuple[Literal["id", "image", "turns"], ...]
    """The line's keys in written order (``meta`` comes last)."""
    image_list: bool = False
    """The image is written as a one-item list."""
    sharegpt_info: bool = False
    """LLaMA-Factory reads it through a ``dataset_info.json`` (export writes one, :func:`dataset_info`)."""
    _role_of: dict[str, str] = field(init=False, repr=False, compare=False)
    _name_of: dict[str, str] = field(init=False, repr=False, compare=False)
    _build: Callable[[str, str, Turns], dict[str, Any]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "_role_of", dict(zip(self.role_names, ROLES, strict=True)))
        set_(self, "_name_of", dict(zip(ROLES, self.role_names, strict=True)))
        set_(self, "_build", self._compile_build())

    def _compile_build(self) -> Callable[[str, str, Turns], dict[str, Any]]:
        """:meth:`build` as straight-line code with this entry's keys as literals (the generic export path
        builds every line with it: as fast as a hand-written builder)."""
        rk, tk = repr(self.role_key), repr(self.text_key)
        role = "r" if self.role_names == ROLES else "NAME[r]"
        value = {
            "id": ("'id'", "sample_id"),
            "image": (repr(self.image_key), "[image]" if self.image_list else "image"),
            "turns": (repr(self.turns_key), "conv"),
        }
        src = (
            "def build(sample_id, image, turns):\n"
            f"    conv = [{{{rk}: {role}, {tk}: t}} for r, t in turns]\n"
            "    for turn, (role, _) in zip(conv, turns):\n"
            "        if role == 'user':\n"
            f"            turn[{tk}] = TAG + turn[{tk}]\n"
            "            break\n"
            "    return {" + ", ".join(f"{value[k][0]}: {value[k][1]}" for k in self.layout) + "}\n"
        )
        ns: dict[str, Any] = {"NAME": self._name_of, "TAG": self.image_tag}
        exec(compile(src, f"<gtok format {self.name}>", "exec"), ns)
        fn: Callable[[str, str, Turns], dict[str, Any]] = ns["build"]
        return fn

    @property
    def assistant_name(self) -> str:
        return self.role_names[1]

    # -- writing --
    def build(self, sample_id: str, image: str, turns: Turns) -> dict[str, Any]:
        """The line of a sample (``meta`` is added by the caller); keys in :attr:`layout` order."""
        return self._build(sample_id, image, turns)

    def with_tag(self, turns: Turns) -> Turns:
        """The image tag at the start of the first user turn."""
        out = list(turns)
        for k, (role, text) in enumerate(out):
            if role == "user":
                out[k] = (role, self.image_tag + text)
                break
        return out

    # -- reading a parsed line --
    def turns(self, line: dict[str, Any]) -> Turns:
        """Inverse of :meth:`build`: ``[(role, text)]``, roles ``user``/``assistant`` (a role the format does
        not name is kept as written), the image tag removed. Raises KeyError/TypeError on a line of another
        shape (callers validate against the schema first, or catch them)."""
        rk, tk, role_of = self.role_key, self.text_key, self._role_of
        raw = [(role_of.get(t[rk], t[rk]), t[tk]) for t in line[self.turns_key]]
        tag = self.image_tag
        for k, (role, text) in enumerate(raw):
            if role == "user":
                if text.startswith(tag):
                    raw[k] = (role, text[len(tag) :])
                break
        return raw

    def image(self, line: dict[str, Any]) -> str:
        value = line[self.image_key]
        return str(value[0] if self.image_list else value)

    def assistant_texts(self, line: dict[str, Any]) -> list[str]:
        """The assistant turns' texts of a schema-valid line (:meth:`turns` filtered, without its copies)."""
        rk, tk, who = self.role_key, self.text_key, self.assistant_name
        return [t[tk] for t in line[self.turns_key] if t[rk] == who]


FORMATS: dict[str, TrainerFormat] = {
    f.name: f
    for f in (
        TrainerFormat(
            "llava",
            turns_key="conversations",
            role_key="from",
            text_key="value",
            role_names=("human", "gpt"),
            image_key="image",
            image_tag="<image>\n",
            layout=("id", "image", "turns"),
        ),
        TrainerFormat(
            "messages",
            turns_key="messages",
            role_key="role",
            text_key="content",
            role_names=("user", "assistant"),
            image_key="images",
            image_tag="<image>",
            layout=("turns", "image"),
            image_list=True,
            sharegpt_info=True,
        ),
        TrainerFormat(
            "conversations",
            turns_key="conversations",
            role_key="role",
            text_key="content",
            role_names=("user", "assistant"),
            image_key="image",
            image_tag="<image>\n",
            layout=("image", "turns"),
        ),
    )
}
NAMES = tuple(FORMATS)


def get_format(name: str) -> TrainerFormat:
    """The entry of ``name`` (KeyError for an unknown name: callers check :data:`NAMES` first)."""
    return FORMATS[name]


# ---- typed lines (msgspec) ---------------------------------------------------------------------------------
NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]


def line_struct(fmt: TrainerFormat, meta: Any, one_box: bool = False) -> type[msgspec.Struct]:
    """A msgspec Struct for a line of ``fmt`` whose ``meta`` has type ``meta`` (required when ``one_box``).

    Attributes are the same for every format: ``id`` (llava), ``image``, ``turns`` (each turn ``.role`` with
    the format's own role name, ``.text``), ``meta``. The constraints are the schema's (``minItems: 2`` turns,
    non-empty strings, no unknown keys); ``one_box``: exactly one user turn then one assistant turn, meta
    present (a ``rec`` line).
    """
    rename = {"role": fmt.role_key, "text": fmt.text_key}
    opts: dict[str, Any] = {"forbid_unknown_fields": True, "gc": False}
    kind = "OneBox" if one_box else ""
    title = fmt.name.capitalize()

    def turn(role: Any, suffix: str) -> Any:
        fields = [("role", role), ("text", str)]
        return msgspec.defstruct(f"{kind}{title}{suffix}Turn", fields, rename=rename, **opts)

    user, assistant = fmt.role_names
    turns: Any
    if one_box:
        first, second = turn(_literal(user), "User"), turn(_literal(assistant), "Assistant")
        turns = tuple.__class_getitem__((first, second))
    else:
        any_turn = turn(_literal(user, assistant), "")
        turns = Annotated[list.__class_getitem__(any_turn), msgspec.Meta(min_length=2)]
    image: Any = tuple[NonEmpty] if fmt.image_list else NonEmpty
    types: dict[str, Any] = {"id": NonEmpty, "image": image, "turns": turns}
    fields: list[Any] = [(k, types[k]) for k in fmt.layout]
    fields.append(("meta", meta) if one_box else ("meta", meta | msgspec.UnsetType, msgspec.UNSET))
    keys = {"image": fmt.image_key, "turns": fmt.turns_key}
    return msgspec.defstruct(f"{kind}{title}Line", fields, rename=keys, **opts)


def _literal(*values: str) -> Any:
    """``Literal[values]`` for values known at run time."""
    return Literal.__getitem__(values)


def typed_assistant_texts(fmt: TrainerFormat, line: Any) -> list[str]:
    """The assistant turns' texts of a typed line (:meth:`TrainerFormat.assistant_texts` of a parsed one)."""
    who = fmt.assistant_name
    return [t.text for t in line.turns if t.role == who]


def one_box_answers(lines: list[Any]) -> list[str]:
    """The answer of each one-box typed line (:func:`line_struct` with ``one_box``)."""
    return [t.turns[1].text for t in lines]


# ---- LLaMA-Factory -----------------------------------------------------------------------------------------
def dataset_info(fmt: TrainerFormat, dataset_names: dict[str, str]) -> dict[str, Any]:
    """LLaMA-Factory ``dataset_info.json`` entries (``{name: file}``) for shards of a sharegpt-style format.

    LLaMA-Factory loads one file (or a folder of same-type files) per entry; list the entries comma-separated
    in its ``dataset:`` option to train on every shard.
    """
    user, assistant = fmt.role_names
    entry = {
        "formatting": "sharegpt",
        "columns": {"messages": fmt.turns_key, "images": fmt.image_key},
        "tags": {
            "role_tag": fmt.role_key,
            "content_tag": fmt.text_key,
            "user_tag": user,
            "assistant_tag": assistant,
        },
    }
    return {name: {"file_name": file, **entry} for name, file in sorted(dataset_names.items())}
