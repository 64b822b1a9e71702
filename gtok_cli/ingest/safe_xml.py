"""Parse untrusted XML without entity expansion (Flickr30k Entities ``Annotations/*.xml``).

Entity bombs ("billion laughs") and external entities (``SYSTEM "file:///etc/passwd"``) both need a
``<!DOCTYPE …>`` with entity declarations. Annotation files never have one, so any DOCTYPE, entity
declaration or external entity reference is refused with :class:`UnsafeInputError` the moment expat reports
it, before any entity is expanded or fetched. The tree is built with ``xml.etree`` elements.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, NoReturn
from xml.parsers import expat

from gtok_cli.errors import InputError, UnsafeInputError


def parse_xml_bytes(data: bytes, *, name: str) -> ET.Element:
    """The root element of ``data``; refuses DTDs and entities, names ``name`` in errors."""
    if not data.strip():
        raise InputError("file is empty", file=name, reason="file.empty")

    def refuse(what: str, found: Any) -> NoReturn:
        raise UnsafeInputError(
            f"XML {what} refused (entities are never expanded)",
            file=name,
            field="DOCTYPE",
            expected="plain XML without DOCTYPE or entities",
            found=found,
            reason="xml.entity",
        )

    builder = ET.TreeBuilder()
    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = lambda doctype, *_: refuse("DOCTYPE", doctype)
    parser.EntityDeclHandler = lambda entity, *_: refuse("entity declaration", entity)
    parser.UnparsedEntityDeclHandler = lambda entity, *_: refuse("unparsed entity", entity)
    parser.ExternalEntityRefHandler = lambda _ctx, _base, system_id, _pub: refuse(
        "external entity", system_id
    )
    parser.StartElementHandler = builder.start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise InputError(f"not well-formed XML: {exc}", file=name, reason="xml.invalid") from None
    return builder.close()


def parse_xml_file(path: str | Path) -> ET.Element:
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read file: {exc.strerror}", file=str(p), reason="file.unreadable") from None
    return parse_xml_bytes(data, name=str(p))
