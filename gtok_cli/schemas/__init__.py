"""JSON Schemas shipped with the package (also visible at the repo root as ``schemas/``)."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import orjson


@cache
def load_schema(name: str) -> Any:
    """``load_schema("record")`` → the parsed ``record.schema.json``."""
    text = resources.files("gtok_cli.schemas").joinpath(f"{name}.schema.json").read_bytes()
    return orjson.loads(text)
