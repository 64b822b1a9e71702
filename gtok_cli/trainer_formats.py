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
- ``swift``: ms-swift's grounding rows: ``messages`` and ``images`` as above, every spatial span written as
  the placeholders ``<ref-object>`` / ``<bbox>`` and the geometry in ``"objects": {"ref": [...],
  "bbox": [[x1, y1, x2, y2] | [x, y], ...], "bbox_type": "real", "image_id": [0, ...]}`` in original-image
  pixels, so ms-swift renders each box per model template on the image it feeds
  (docs/source_en/Customization/Custom-dataset.md, "Grounding"; ``Template._pre_tokenize`` fills
  ``<ref-object>``/``<bbox>`` in order across all turns from ``objects.ref``/``objects.bbox``,
  ``Template.normalize_bbox`` scales ``real`` boxes by the fed image,
  ``replace_ref``/``replace_bbox`` render them: ``swift/template/base.py``, ms-swift 4.6.0).
  :class:`ObjectsWriter` writes the placeholders and objects, :meth:`TrainerFormat.object_shapes` reads them
  back, :meth:`TrainerFormat.fill` renders the turns the way a template does.

Every line may end with ``"meta"`` (the truth verify compares with). Keys are written in the entry's fixed
order. Turns are ``(role, text)`` with the roles ``user`` / ``assistant`` whatever a format calls them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import msgspec

from gtok_cli.task_roles import carries_geometry

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
    layout: tuple[Literal["id", "image", "turns", "objects"], ...]
    """The line's keys in written order (``meta`` comes last)."""
    image_list: bool = False
    """The image is written as a one-item list."""
    sharegpt_info: bool = False
    """LLaMA-Factory reads it through a ``dataset_info.json`` (export writes one, :func:`dataset_info`)."""
    objects_key: str | None = None
    """Geometry goes into this key of the line, the turns hold placeholders (``swift``); None: the turns hold
    the scheme's text."""
    _role_of: dict[str, str] = field(init=False, repr=False, compare=False)
    _name_of: dict[str, str] = field(init=False, repr=False, compare=False)
    _build: Callable[..., dict[str, Any]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "_role_of", dict(zip(self.role_names, ROLES, strict=True)))
        set_(self, "_name_of", dict(zip(ROLES, self.role_names, strict=True)))
        set_(self, "_build", self._compile_build())

    def _compile_build(self) -> Callable[..., dict[str, Any]]:
        """:meth:`build` as straight-line code with this entry's keys as literals (the generic export path
        builds every line with it: as fast as a hand-written builder)."""
        rk, tk = repr(self.role_key), repr(self.text_key)
        role = "r" if self.role_names == ROLES else "NAME[r]"
        value = {
            "id": ("'id'", "sample_id"),
            "image": (repr(self.image_key), "[image]" if self.image_list else "image"),
            "turns": (repr(self.turns_key), "conv"),
            "objects": (repr(self.objects_key), "objects"),
        }
        src = (
            "def build(sample_id, image, turns, objects=None):\n"
            f"    conv = [{{{rk}: {role}, {tk}: t}} for r, t in turns]\n"
            "    for turn, (role, _) in zip(conv, turns):\n"
            "        if role == 'user':\n"
            f"            turn[{tk}] = TAG + turn[{tk}]\n"
            "            break\n"
            "    return {" + ", ".join(f"{value[k][0]}: {value[k][1]}" for k in self.layout) + "}\n"
        )
        ns: dict[str, Any] = {"NAME": self._name_of, "TAG": self.image_tag}
        exec(compile(src, f"<gtok format {self.name}>", "exec"), ns)
        fn: Callable[..., dict[str, Any]] = ns["build"]
        return fn

    @property
    def assistant_name(self) -> str:
        return self.role_names[1]

    # -- writing --
    def build(
        self, sample_id: str, image: str, turns: Turns, objects: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """The line of a sample (``meta`` is added by the caller); keys in :attr:`layout` order. ``objects``
        (:meth:`ObjectsWriter.objects`) for a format with :attr:`objects_key`; a ValueError when the turns'
        placeholders do not match them (a text that holds a placeholder itself)."""
        if self.objects_key is not None:
            objects = objects if objects is not None else ObjectsWriter().objects()
            problem = placeholder_problem(turns, objects)
            if problem is not None:
                raise ValueError(problem)
        return self._build(sample_id, image, turns, objects)

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

    # -- reading the objects of a line (formats with objects_key) --
    def object_shapes(self, line: dict[str, Any], role: str) -> tuple[list[tuple[float, ...]], list[str]]:
        """The boxes ``[x1, y1, x2, y2]`` / points ``[x, y]`` that the ``<bbox>`` placeholders of the turns of
        ``role`` stand for, in text order (ms-swift fills placeholders in order across all turns), and the
        problems found: placeholder counts that differ from ``objects``, a ``bbox_type`` other than
        ``real``, an ``image_id`` list that does not name image 0 once per box."""
        assert self.objects_key is not None
        turns = self.turns(line)
        objects = line[self.objects_key]
        problem = placeholder_problem(turns, objects)
        problems = [] if problem is None else [problem]
        if objects.get("bbox_type", "real") != "real":
            problems.append(f"bbox_type is {objects.get('bbox_type')!r}, gtok writes 'real' (pixels)")
        ids = objects.get("image_id")
        if ids is not None and list(ids) != [0] * len(objects["bbox"]):
            problems.append(f"image_id {ids!r}: one 0 per box expected (one image per line)")
        shapes: list[tuple[float, ...]] = []
        boxes = objects["bbox"]
        at = 0
        for r, text in turns:
            n = text.count(BBOX_TAG)
            if carries_geometry(role, r):
                shapes += [tuple(float(v) for v in b) for b in boxes[at : at + n]]
            at += n
        return shapes, problems

    def fill(
        self, line: dict[str, Any], ref: Callable[[str], str], bbox: Callable[[list[float]], str]
    ) -> Turns:
        """The turns with each ``<ref-object>`` replaced by ``ref(label)`` and each ``<bbox>`` by
        ``bbox(coords)``, in order across all turns (what ms-swift's ``_pre_tokenize`` does with a template's
        ``replace_ref``/``replace_bbox``): e.g. a codec's rendering, for comparing model answers."""
        assert self.objects_key is not None
        objects = line[self.objects_key]
        refs, boxes = iter(objects["ref"]), iter(objects["bbox"])
        out: Turns = []
        for r, text in self.turns(line):
            parts = _PLACEHOLDER.split(text)
            for k in range(1, len(parts), 2):
                parts[k] = ref(next(refs)) if parts[k] == REF_TAG else bbox(list(next(boxes)))
            out.append((r, "".join(parts)))
        return out


# ---- ms-swift's grounding placeholders ---------------------------------------------------------------------
REF_TAG = "<ref-object>"
BBOX_TAG = "<bbox>"
_PLACEHOLDER = re.compile("(<ref-object>|<bbox>)")


class ObjectsWriter:
    """Writes spatial spans as ms-swift placeholders and collects the line's ``objects``.

    >>> w = ObjectsWriter()
    >>> w.write("a dog", [(150.0, 100.0, 400.0, 350.0)])
    '<ref-object><bbox>'
    >>> w.objects()
    {'ref': ['a dog'], 'bbox': [[150.0, 100.0, 400.0, 350.0]], 'bbox_type': 'real', 'image_id': [0]}
    """

    def __init__(self) -> None:
        self.ref: list[str] = []
        self.bbox: list[list[float]] = []

    def write(self, label: str | None, shapes: Sequence[Sequence[float]]) -> str:
        """``<ref-object>`` (when ``label``) then one ``<bbox>`` per shape (4 numbers: a box, 2: a point)."""
        for s in shapes:
            if len(s) not in (2, 4):
                raise ValueError(f"ms-swift objects hold boxes (4 numbers) or points (2), got {len(s)}")
            self.bbox.append([float(v) for v in s])
        head = ""
        if label is not None:
            self.ref.append(label)
            head = REF_TAG
        return head + BBOX_TAG * len(shapes)

    def objects(self) -> dict[str, Any]:
        return {"ref": self.ref, "bbox": self.bbox, "bbox_type": "real", "image_id": [0] * len(self.bbox)}


def placeholder_problem(turns: Turns, objects: dict[str, Any]) -> str | None:
    """Why the turns' placeholders do not match ``objects`` (counts of ``<ref-object>`` and ``<bbox>``)."""
    refs = sum(t.count(REF_TAG) for _, t in turns)
    boxes = sum(t.count(BBOX_TAG) for _, t in turns)
    if refs != len(objects["ref"]) or boxes != len(objects["bbox"]):
        return (
            f"the turns hold {refs} {REF_TAG} and {boxes} {BBOX_TAG}, objects has {len(objects['ref'])} ref "
            f"and {len(objects['bbox'])} bbox"
        )
    return None


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
            "swift",
            turns_key="messages",
            role_key="role",
            text_key="content",
            role_names=("user", "assistant"),
            image_key="images",
            image_tag="<image>",
            layout=("turns", "image", "objects"),
            image_list=True,
            objects_key="objects",
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
    types: dict[str, Any] = {"id": NonEmpty, "image": image, "turns": turns, "objects": Objects}
    fields: list[Any] = [(k, types[k]) for k in fmt.layout]
    fields.append(("meta", meta) if one_box else ("meta", meta | msgspec.UnsetType, msgspec.UNSET))
    keys = {"image": fmt.image_key, "turns": fmt.turns_key, "objects": fmt.objects_key or "objects"}
    return msgspec.defstruct(f"{kind}{title}Line", fields, rename=keys, **opts)


class Objects(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """The typed ``objects`` of a ``swift`` line: boxes only (a point line is stricter than the schema here,
    so it takes the general path: the typed view may refuse what the schema accepts, never the reverse)."""

    ref: list[str]
    bbox: list[tuple[float, float, float, float]]
    bbox_type: Literal["real"]
    image_id: list[Annotated[int, msgspec.Meta(ge=0, le=0)]]


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
