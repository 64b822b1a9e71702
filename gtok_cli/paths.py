"""No command writes over a file it reads (issue 12): the one output-path guard.

Each writing command calls :func:`refuse_overwrite` with its inputs and outputs before it writes anything.
"The same file" is ``os.path.samefile`` (device and inode), so the same path, a symlink to it and a hard link
to it are all caught; an output that does not exist yet cannot be an input. An input folder (images,
Flickr30k annotations) counts through the files in it: an output that is an existing file under it is refused.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from gtok_cli.errors import UsageError
from gtok_cli.jsonio import STDIO

PathArg = str | Path | None
Named = Mapping[str, PathArg | Iterable[PathArg]]
"""Option name (``"--out"``, ``"RECORDS"``) → one path or several; ``None`` and ``-`` are skipped."""


def _pairs(named: Named) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for option, value in named.items():
        values = [value] if value is None or isinstance(value, str | Path) else list(value)
        out += [(option, str(v)) for v in values if v is not None and str(v) != STDIO]
    return out


def file_id(path: str) -> tuple[int, int] | None:
    """``(st_dev, st_ino)``: equal for the same path, a symlink to it and a hard link to it."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):  # does not exist (yet): cannot be an input
        return None
    return st.st_dev, st.st_ino


def _folder_holding(folders: list[tuple[str, str]], path: str) -> tuple[str, str] | None:
    """The input folder an existing output file ``path`` lies under, if any."""
    if not folders or not os.path.isfile(path):
        return None
    target = os.path.realpath(path)
    for option, folder in folders:
        root = os.path.realpath(folder)
        if os.path.commonpath([root, target]) == root:
            return option, folder
    return None


def refuse_overwrite(inputs: Named, outputs: Named) -> None:
    """UsageError (exit 2) when an output is one of the inputs, or two outputs are the same file."""
    ins = _pairs(inputs)
    ids = {fid: pair for pair in ins if (fid := file_id(pair[1])) is not None}
    folders = [pair for pair in ins if os.path.isdir(pair[1])]
    seen: dict[tuple[int, int] | str, tuple[str, str]] = {}
    for out_opt, out in _pairs(outputs):
        fid = file_id(out)
        hit = ids.get(fid) if fid is not None else None
        what = "the input"
        if hit is None:
            hit, what = _folder_holding(folders, out), "a file in the input folder"
        if hit is not None:
            raise UsageError(
                f"{out_opt} {out} is {what} {hit[0]} {hit[1]}; gtok never writes over its input, "
                "choose another output path"
            )
        key = fid if fid is not None else os.path.abspath(out)
        if key in seen and seen[key][0] != out_opt:
            raise UsageError(f"{seen[key][0]} and {out_opt} are the same file {out}; give each its own path")
        seen[key] = (out_opt, out)


def files_written_in(folder: str | Path, wanted: Iterable[str]) -> list[str]:
    """The existing files of ``folder`` whose names match one of the glob patterns ``wanted`` (what a
    command that writes a folder will replace), for :func:`refuse_overwrite`."""
    d = Path(folder)
    if not d.is_dir():
        return []
    return sorted({str(p) for pattern in wanted for p in d.glob(pattern) if p.is_file()})


def source_files(source: str | Path) -> list[str]:
    """A source argument as the files read: an export (its folder or its manifest) → the folder's JSON /
    JSONL files; a records file → itself."""
    folder: str | Path = source
    if str(source) != STDIO and os.path.isfile(source) and Path(source).name.startswith("manifest"):
        folder = Path(source).parent
    if str(source) != STDIO and os.path.isdir(folder):
        return files_written_in(folder, ("*.json", "*.jsonl", "*.jsonl.gz"))
    return [str(source)]


__all__ = ["files_written_in", "refuse_overwrite", "source_files"]


def check_distinct_inputs(paths: Sequence[str | Path]) -> None:
    """Raise :class:`UsageError` when one input file is given twice (same path, or the same file by a link).

    ``-`` (stdin) counts as one file; paths that do not exist are left to the reader to report.
    """
    seen: dict[tuple[int, int] | str, str] = {}
    for p in paths:
        name = str(p)
        key = STDIO if name == STDIO else file_id(name)
        if key is None:
            continue
        if key in seen:
            same = "" if seen[key] == name else f" (the same file as {seen[key]})"
            raise UsageError(f"input {name} is given twice{same}: each record would be read twice")
        seen[key] = name
