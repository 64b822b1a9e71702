"""The read side of a shard folder: what show, stats, verify (and eval) open.

- :func:`load_manifest`: the manifest of a folder or a manifest file, checked against manifest.schema.json.
- :func:`is_export`: a folder, a manifest file or a shard file (as opposed to a records file).
- :class:`ExportFolder`: an export opened from any of those three; :meth:`ExportFolder.lines` gives every
  line of the shards it covers (one shard when a shard file was opened) with its shard and line number.
- :func:`source_provenance`: record id → (dataset, split) from the source records the manifest lists.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import orjson

from gtok_cli.errors import InputError
from gtok_cli.jsonio import decode_lines_typed, iter_jsonl, load_json, read_input_bytes
from gtok_cli.schemas import load_schema
from gtok_cli.shards.layout import MANIFEST, PART_MANIFEST_GLOB, marker_path


def is_manifest_file(path: Path) -> bool:
    return path.suffix == ".json" and path.name.startswith("manifest")


def is_shard_file(path: Path) -> bool:
    """A file with its done marker beside it, or listed by a manifest in its folder."""
    return path.is_file() and (marker_path(path).is_file() or shard_manifest(path) is not None)


def is_export(path: Path) -> bool:
    return path.is_dir() or is_manifest_file(path) or is_shard_file(path)


def shard_manifest(shard: Path) -> Path | None:
    """The manifest in the shard's folder that lists it (``manifest.json`` first, then part manifests)."""
    folder = shard.parent
    candidates = [folder / MANIFEST, *sorted(folder.glob(PART_MANIFEST_GLOB))]
    for m in candidates:
        try:
            listed = orjson.loads(m.read_bytes()).get("shards")
        except (OSError, orjson.JSONDecodeError, AttributeError):
            continue
        names = [s.get("name") for s in listed if isinstance(s, dict)] if isinstance(listed, list) else []
        if shard.name in names:
            return m
    return None


def load_manifest(target: str | Path) -> tuple[dict[str, Any], Path]:
    """The manifest of a folder (``DIR/manifest.json``) or a manifest file; unusable → InputError (exit 2).
    A shard file is refused with the folder to pass instead."""
    import jsonschema

    p = Path(target)
    if p.is_file() and not is_manifest_file(p) and is_shard_file(p):
        listed_in = shard_manifest(p)
        if listed_in is not None and listed_in.name != MANIFEST:
            hint = f"pass its part manifest {str(listed_in)!r}"
        else:
            hint = f"pass the export folder {str(p.parent)!r} (or its manifest.json)"
        raise InputError(
            f"this is one shard of an export; {hint}", file=str(p), reason="manifest.shard_given"
        )
    mpath = p / MANIFEST if p.is_dir() else p
    if not mpath.is_file():
        parts = sorted(p.glob("manifest-part-*.json")) if p.is_dir() else []
        hint = "; run `gtok merge-manifests` first or pass a part manifest" if parts else ""
        raise InputError(f"no manifest found{hint}", file=str(mpath), reason="manifest.missing")
    manifest = load_json(mpath)
    validator = jsonschema.Draft202012Validator(load_schema("manifest"))
    err = jsonschema.exceptions.best_match(validator.iter_errors(manifest))
    if err is not None:
        where = "/".join(str(x) for x in err.absolute_path) or "(root)"
        raise InputError(
            f"manifest does not match manifest.schema.json: {where}: {err.message}",
            file=str(mpath),
            reason="manifest.schema",
        )
    return manifest, mpath.parent


@dataclass
class ExportFolder:
    """An export: its manifest, its folder and the shards to read (every one, in name order, or one)."""

    manifest: dict[str, Any]
    folder: Path
    shards: list[dict[str, Any]]
    """The manifest's entries of the shards read."""

    @staticmethod
    def open(path: str | Path) -> ExportFolder:
        """A folder, a manifest file, or one shard file (its folder's manifest that lists it is used)."""
        p = Path(path)
        if p.is_file() and not is_manifest_file(p) and is_shard_file(p):
            mpath = shard_manifest(p)
            if mpath is None:
                raise InputError(
                    "shard has no manifest beside it that lists it",
                    file=str(p),
                    expected=f"{MANIFEST} in {p.parent}",
                    reason="manifest.missing",
                )
            manifest, folder = load_manifest(mpath)
            return ExportFolder(manifest, folder, [s for s in manifest["shards"] if s["name"] == p.name])
        manifest, folder = load_manifest(p)
        return ExportFolder(manifest, folder, sorted(manifest["shards"], key=lambda s: s["name"]))

    def shard_paths(self) -> Iterator[Path]:
        for info in self.shards:
            shard = self.folder / info["name"]
            if not shard.is_file():
                raise InputError("shard listed in the manifest is missing", file=str(shard))
            yield shard

    def lines(self) -> Iterator[tuple[Path, int, Any]]:
        """``(shard path, 1-based line number, parsed line)`` for every non-blank line, in shard order."""
        for shard in self.shard_paths():
            for lineno, line in iter_jsonl(shard):
                yield shard, lineno, line


UNKNOWN = "unknown"


class _Provenance(msgspec.Struct, gc=False):
    """The fields of a record provenance needs (the others are skipped by the decoder)."""

    id: Any = None
    dataset: Any = None
    split: Any = None


_PROVENANCE = msgspec.json.Decoder(_Provenance)


def source_provenance(manifest: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """record id → (dataset, split) from the source records the manifest lists, when every one is still on
    disk (else empty: callers fall back to the record id's prefix and the split ``unknown``). Read typed
    (msgspec, only these three fields); a file that does not decode so is read line by line (its errors name
    the line)."""
    out: dict[str, tuple[str, str]] = {}
    paths = [Path(s["path"]) for s in manifest.get("sources", [])]
    if not paths or not all(p.is_file() for p in paths):
        return out
    for p in paths:
        rows = decode_lines_typed(_PROVENANCE, read_input_bytes(p))
        if rows is None:
            rows = [
                _Provenance(r.get("id"), r.get("dataset"), r.get("split"))
                for _, r in iter_jsonl(p)
                if isinstance(r, dict)
            ]
        for r in rows:
            out[str(r.id)] = (str(r.dataset or UNKNOWN), str(r.split or UNKNOWN))
    return out
