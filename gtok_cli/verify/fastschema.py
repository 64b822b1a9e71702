"""A JSON Schema → Python predicate compiler for the subset gtok's shard-line schema uses.

``jsonschema`` takes ~200 µs per shard line, far too slow for millions of lines; this compiles the schema once
into straight-line Python (``isinstance`` checks, loops) that answers valid/invalid in a few µs. Unknown
keywords raise at compile time, so nothing is silently ignored. When a line fails, callers ask ``jsonschema``
for the precise message (:func:`explain`). Tests check both agree on valid and mutated lines.

Supported: ``type`` (one or a list), ``enum``, ``const``, ``required``, ``properties``,
``additionalProperties: false``, ``items`` (one schema), ``minItems``/``maxItems``, ``minLength``,
``minimum``/``maximum``, ``oneOf``/``anyOf``, local ``$ref`` (``#/$defs/name``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_IGNORED = {"$schema", "$id", "title", "description", "$comment", "$defs", "examples", "default"}
_TYPE_CHECK = {
    "object": "isinstance({v}, dict)",
    "array": "isinstance({v}, list)",
    "string": "isinstance({v}, str)",
    "integer": "(isinstance({v}, int) and not isinstance({v}, bool))",
    "number": "(isinstance({v}, (int, float)) and not isinstance({v}, bool))",
    "boolean": "isinstance({v}, bool)",
    "null": "{v} is None",
}


# the same tests as _TYPE_CHECK, exact built-in types first (what orjson makes) so most values pass at once
_FAST_TYPE_CHECK = {
    "object": "type({v}) is dict or isinstance({v}, dict)",
    "array": "type({v}) is list or isinstance({v}, list)",
    "string": "type({v}) is str or isinstance({v}, str)",
    "integer": "type({v}) is int or (isinstance({v}, int) and not isinstance({v}, bool))",
    "number": "type({v}) is float or type({v}) is int or "
    "(isinstance({v}, (int, float)) and not isinstance({v}, bool))",
    "boolean": "isinstance({v}, bool)",
    "null": "{v} is None",
}
_GUARD = {
    "object": "isinstance({v}, dict)",
    "array": "isinstance({v}, list)",
    "string": "isinstance({v}, str)",
    "number": "(isinstance({v}, (int, float)) and not isinstance({v}, bool))",
}
"""When keywords of a kind apply to a value of unknown type (JSON Schema ignores them for other types)."""


def _types(schema: dict[str, Any]) -> list[str]:
    t = schema.get("type", [])
    return [t] if isinstance(t, str) else list(t)


class _Compiler:
    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root
        self.consts: dict[str, Any] = {}
        self.funcs: list[str] = []
        self.counter = 0

    def fresh(self, base: str) -> str:
        self.counter += 1
        return f"{base}{self.counter}"

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            ref = schema["$ref"]
            if not ref.startswith("#/$defs/") or len(schema) != 1:
                raise NotImplementedError(f"unsupported $ref use: {schema!r}")
            schema = self.root["$defs"][ref[len("#/$defs/") :]]
        return schema

    def function(self, schema: dict[str, Any]) -> str:
        """A named predicate for a sub-schema (used by oneOf/anyOf)."""
        name = self.fresh("_f")
        body = self.emit(schema, "x", 1)
        self.funcs.append(f"def {name}(x):\n" + "".join(body) + "    return True\n")
        return name

    def emit(self, schema: dict[str, Any], v: str, ind: int) -> list[str]:
        schema = self.resolve(schema)
        pad = "    " * ind
        out: list[str] = []
        unknown = set(schema) - _IGNORED - {
            "type", "enum", "const", "required", "properties", "additionalProperties", "items",
            "minItems", "maxItems", "minLength", "minimum", "maximum", "oneOf", "anyOf",
        }  # fmt: skip
        if unknown:
            raise NotImplementedError(f"unsupported schema keywords: {sorted(unknown)}")
        types = schema.get("type")
        known: str | None = None
        """The one type ``v`` has once the type check passed (guards for it are dropped, others' code too)."""
        if types is not None:
            tl = [types] if isinstance(types, str) else list(types)
            cond = " or ".join(_FAST_TYPE_CHECK[t].format(v=v) for t in tl)
            out.append(f"{pad}if not ({cond}): return False\n")
            if len(tl) == 1:
                known = "number" if tl[0] == "integer" else tl[0]

        def guard(kind: str) -> str | None:
            """``if`` condition under which keywords of ``kind`` apply: "" always, None never."""
            if known is None:
                return _GUARD[kind].format(v=v)
            return "" if known == kind else None

        def when(kind: str, test: str) -> None:
            g = guard(kind)
            if g is not None:
                out.append(f"{pad}if {g + ' and ' if g else ''}{test}: return False\n")

        if "enum" in schema or "const" in schema:
            values = schema["enum"] if "enum" in schema else [schema["const"]]
            name = self.fresh("_E")
            # (type, value) pairs so that 1 == True and 1 == 1.0 do not pass for each other
            pairs = [(type(x), x) for x in values]
            if all(type(x) is str for x in values):  # the same test without building a pair per value
                self.consts[name] = frozenset(values)
                out.append(f"{pad}if type({v}) is not str or {v} not in {name}: return False\n")
            else:
                try:
                    self.consts[name] = frozenset(pairs)
                except TypeError:  # unhashable enum members: a list works too
                    self.consts[name] = pairs
                out.append(f"{pad}if (type({v}), {v}) not in {name}: return False\n")
        if "minLength" in schema:
            n = int(schema["minLength"])
            when("string", f"not {v}" if n == 1 else f"len({v}) < {n}")
        if "minimum" in schema:
            when("number", f"{v} < {schema['minimum']!r}")
        if "maximum" in schema:
            when("number", f"{v} > {schema['maximum']!r}")
        if "minItems" in schema:
            when("array", f"len({v}) < {int(schema['minItems'])}")
        if "maxItems" in schema:
            when("array", f"len({v}) > {int(schema['maxItems'])}")
        if "items" in schema and guard("array") is not None:
            g = guard("array")
            inner = pad + ("    " if g else "")
            if g:
                out.append(f"{pad}if {g}:\n")
            out += self.items(schema["items"], v, inner, ind + (1 if g else 0))
        is_obj = "required" in schema or "properties" in schema or "additionalProperties" in schema
        if is_obj and guard("object") is not None:
            g = guard("object")
            if g:
                out.append(f"{pad}if {g}:\n")
            opad = pad + ("    " if g else "")
            oind = ind + (1 if g else 0)
            required = list(schema.get("required", []))
            for key in required:
                out.append(f"{opad}if {key!r} not in {v}: return False\n")
            props = schema.get("properties", {})
            addl = schema.get("additionalProperties", True)
            if addl is False:
                name = self.fresh("_K")
                self.consts[name] = frozenset(props)
                out.append(f"{opad}for _k in {v}:\n{opad}    if _k not in {name}: return False\n")
            elif addl is not True:
                val = self.fresh("_a")
                name = self.fresh("_K")
                self.consts[name] = frozenset(props)
                out.append(f"{opad}for _k, {val} in {v}.items():\n{opad}    if _k not in {name}:\n")
                out += self.emit(addl, val, oind + 2)
            for key, sub in props.items():
                val = self.fresh("_p")
                if key in required:  # present: checked above
                    out.append(f"{opad}{val} = {v}[{key!r}]\n")
                    out += self.emit(sub, val, oind)
                else:
                    out.append(f"{opad}if {key!r} in {v}:\n{opad}    {val} = {v}[{key!r}]\n")
                    out += self.emit(sub, val, oind + 1)
        for word in ("oneOf", "anyOf"):
            alts = [self.resolve(a) for a in schema.get(word, [])]
            nulls = [a for a in alts if a == {"type": "null"}]
            rest = [a for a in alts if a != {"type": "null"}]
            if len(alts) == 2 and len(nulls) == 1 and "null" not in _types(rest[0]) and "type" in rest[0]:
                # "null or X" (X rejects null): one branch, no function calls
                out.append(f"{pad}if {v} is not None:\n")
                out += self.emit(rest[0], v, ind + 1)
            elif word in schema:
                names = [self.function(s) for s in schema[word]]
                calls = " + ".join(f"{n}({v})" for n in names)
                test = "!= 1" if word == "oneOf" else "== 0"
                out.append(f"{pad}if ({calls}) {test}: return False\n")
        return out or [f"{pad}pass\n"]

    def items(self, item: dict[str, Any], v: str, pad: str, ind: int) -> list[str]:
        """Every item of list ``v`` against ``item``."""
        loop = self.fresh("_i")
        return [f"{pad}for {loop} in {v}:\n", *self.emit(item, loop, ind + 1)]


def compile_schema(root: dict[str, Any], ref: str | None = None) -> Callable[[Any], bool]:
    """A predicate for ``root`` (or for ``root``'s ``#/$defs/<ref>``)."""
    c = _Compiler(root)
    target = {"$ref": f"#/$defs/{ref}"} if ref is not None else root
    body = c.emit(target, "x", 1)
    src = "".join(c.funcs) + "def check(x):\n" + "".join(body) + "    return True\n"
    namespace: dict[str, Any] = dict(c.consts)
    exec(compile(src, "<gtok fastschema>", "exec"), namespace)
    fn: Callable[[Any], bool] = namespace["check"]
    return fn


def explain(root: dict[str, Any], instance: Any, ref: str | None = None) -> str:
    """jsonschema's message for an invalid instance (slow path, failures only)."""
    import jsonschema

    schema = dict(root)
    if ref is not None:
        schema = {"$defs": root["$defs"], "$ref": f"#/$defs/{ref}"}
    validator = jsonschema.Draft202012Validator(schema)
    err = jsonschema.exceptions.best_match(validator.iter_errors(instance))
    if err is None:
        return "valid"
    where = "/".join(str(p) for p in err.absolute_path) or "(root)"
    return f"{where}: {err.message}"
