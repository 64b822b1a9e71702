"""What every `gtok ingest SOURCE` command shares: the common options' help, where rejects go, and
:func:`run_and_report` (write the records, handle rejects and empty output, print the summary).

The coco command (``commands.ingest``) and the refcoco / flickr30k commands (``commands.ingest_refs``) both
import this module; neither imports the other.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import typer

from gtok_cli.errors import InputError, UsageError
from gtok_cli.ingest.common import IngestItem, IngestStats, run_ingest
from gtok_cli.jsonio import STDIO, dumps

ON_ERROR_HELP = (
    "fail: stop at the first bad item (exit 2); skip: leave each bad item out, write it with its reason to "
    "the rejects file, keep the rest."
)
REJECTS_HELP = "Rejects file for --on-error skip (default: OUT.rejects.jsonl)."
ALLOW_EMPTY_HELP = (
    "Accept an output with no records (exit 0); without it, writing nothing is an error (exit 2)."
)
JSON_HELP = "Print the summary as one JSON object (on stdout; on stderr when the records go to stdout)."

# the options every ingest command ends with, declared once (typer reads each default's OptionInfo)
OUT_OPTION: Any = typer.Option(..., "--out", "-o", help="Output JSONL (.gz compresses; - = stdout).")
ON_ERROR_OPTION: Any = typer.Option("fail", "--on-error", help=ON_ERROR_HELP)
REJECTS_OPTION: Any = typer.Option(None, "--rejects", help=REJECTS_HELP)
JSON_OPTION: Any = typer.Option(False, "--json", help=JSON_HELP)
ALLOW_EMPTY_OPTION: Any = typer.Option(False, "--allow-empty", help=ALLOW_EMPTY_HELP)

EmptyHint = Callable[[IngestStats], str]
"""The likely fix when nothing was written, from what was read."""


def rejects_path(out: str, on_error: str, rejects: str | None) -> str | None:
    """Where rejected items go: ``--rejects``, else ``OUT.rejects.jsonl`` under skip (never dropped)."""
    if on_error not in ("fail", "skip"):
        raise UsageError(f"--on-error must be fail or skip, not {on_error!r}")
    if on_error == "fail":
        return rejects
    if rejects is None:
        if out == STDIO:
            raise UsageError(
                "--on-error skip with --out - needs --rejects FILE (rejected items are never dropped)"
            )
        rejects = out + ".rejects.jsonl"
    if rejects != STDIO and out != STDIO and Path(rejects).resolve() == Path(out).resolve():
        raise UsageError("--rejects must differ from --out")
    return rejects


def nothing_written(what: str, hint: EmptyHint | None = None) -> Callable[[IngestStats], InputError]:
    """The error for an ingest that wrote no record: what was read (``what``: the input), why nothing came
    of it, the likely fix, and ``--allow-empty``."""

    def error(stats: IngestStats) -> InputError:
        why = Counter(stats.rejected_by_reason)
        for unit in stats.units.values():
            why.update(unit.excluded_by_reason)
        reasons = ", ".join(f"{k} {v}" for k, v in why.most_common(3))
        text = f"no records written: read {stats.brief()}" + (f" ({reasons})" if reasons else "")
        fix = hint(stats) if hint is not None else ""
        if fix:
            text += f"; {fix}"
        return InputError(text + "; --allow-empty accepts an empty output", file=what, reason="output.empty")

    return error


def run_and_report(
    items: Iterable[IngestItem],
    out: str,
    on_error: str,
    rejects: str | None,
    json_summary: bool,
    *,
    what: str,
    allow_empty: bool = False,
    empty_hint: EmptyHint | None = None,
    extra: Callable[[], dict[str, Any]] | None = None,
) -> None:
    """Write ``items`` to ``out`` and print the summary.

    The summary goes to stderr as text, or as one JSON object with ``json_summary`` (to stdout, or to stderr
    when the records themselves go to stdout). Bad input under ``fail`` raises InputError (exit 2); so does
    an output with no record, unless ``allow_empty`` (``what`` names the input in that error). ``extra``: more
    summary figures, asked for once the records are written (e.g. images extracted).
    """
    rejects = rejects_path(out, on_error, rejects)
    stats = run_ingest(
        items,
        out,
        on_error="skip" if on_error == "skip" else "fail",
        rejects=rejects,
        if_empty=None if allow_empty else nothing_written(what, empty_hint),
    )
    if on_error == "skip":
        stats.extra["rejects_file"] = rejects
    if extra is not None:
        stats.extra.update(extra())
    if json_summary:
        stream = sys.stderr if out == STDIO else sys.stdout
        stream.write(dumps(stats.to_json()).decode() + "\n")
        stream.flush()
    else:
        text = f"gtok ingest: {stats.human()}"
        if stats.rejected:
            text += f"\n  rejects written to {rejects}"
        text += "".join(
            f"\n  {key}: {value}" for key, value in (extra() if extra is not None else {}).items()
        )
        typer.echo(text, err=True)
