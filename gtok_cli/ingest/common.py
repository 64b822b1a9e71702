"""What every ingest source shares: the item stream, rejects, the reconciling summary.

A source is a generator of :data:`IngestItem`: a canonical record (dict), a :class:`Rejected` (bad input,
with its InputError), or an :class:`Excluded` (valid but deliberately not written: crowd regions, Flickr30k
chain-0 "not visual" phrases, phrases without boxes). :func:`run_ingest` drives one: it writes records,
fails on the first rejection (``on_error="fail"``) or writes every rejection to the rejects file
(``"skip"``), and returns counts that reconcile exactly::

    read == written + rejected + excluded
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from gtok_cli.errors import InputError
from gtok_cli.jsonio import dumps_line, open_output

OnError = Literal["fail", "skip"]


@dataclass(frozen=True)
class Rejected:
    """An input item that could not become a record."""

    error: InputError
    item: str = "record"
    """What was rejected (``"annotation"``, ``"ref"``, ``"sentence"``, ``"image"``…), for the summary."""


@dataclass(frozen=True)
class Excluded:
    """A valid input item left out on purpose (counted separately, never silently)."""

    reason: str
    """e.g. ``"crowd"``, ``"not_visual"``, ``"no_box"``."""
    item: str = "record"
    count: int = 1


IngestItem = dict[str, Any] | bytes | Rejected | Excluded
"""A record (a dict, or ``bytes``: the record already serialised as one JSONL line, exactly as
``jsonio.dumps_line`` would write it, for sources that serialise as they read), or Rejected / Excluded."""


@dataclass
class IngestStats:
    read: int = 0
    written: int = 0
    rejected: int = 0
    excluded: int = 0
    rejected_by_reason: Counter[str] = field(default_factory=Counter)
    excluded_by_reason: Counter[str] = field(default_factory=Counter)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def reconciles(self) -> bool:
        return self.read == self.written + self.rejected + self.excluded

    def to_json(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "written": self.written,
            "rejected": self.rejected,
            "excluded": self.excluded,
            "rejected_by_reason": dict(sorted(self.rejected_by_reason.items())),
            "excluded_by_reason": dict(sorted(self.excluded_by_reason.items())),
            "reconciles": self.reconciles,
            **self.extra,
        }

    def human(self) -> str:
        parts = [
            f"read {self.read}",
            f"written {self.written}",
            f"rejected {self.rejected}",
            f"excluded {self.excluded}",
        ]
        line = ", ".join(parts) + (" (reconciles)" if self.reconciles else " (DOES NOT RECONCILE)")
        details = [f"  rejected {k}: {v}" for k, v in sorted(self.rejected_by_reason.items())]
        details += [f"  excluded {k}: {v}" for k, v in sorted(self.excluded_by_reason.items())]
        return "\n".join([line, *details])


def run_ingest(
    items: Iterable[IngestItem],
    out: str | Path,
    *,
    on_error: OnError = "fail",
    rejects: str | Path | None = None,
) -> IngestStats:
    """Write the records of ``items`` to ``out`` (JSONL, ``-`` = stdout); see the module doc."""
    stats = IngestStats()
    with ExitStack() as stack:
        out_fh = stack.enter_context(open_output(out))
        rejects_fh: IO[bytes] | None = None
        if on_error == "skip" and rejects is not None:
            rejects_fh = stack.enter_context(open_output(rejects))
        write = out_fh.write
        for item in items:
            if isinstance(item, dict):
                stats.read += 1
                stats.written += 1
                write(dumps_line(item))
            elif isinstance(item, bytes):
                stats.read += 1
                stats.written += 1
                write(item)
            elif isinstance(item, Rejected):
                if on_error == "fail":
                    raise item.error
                stats.read += 1
                stats.rejected += 1
                stats.rejected_by_reason[item.error.reason] += 1
                if rejects_fh is not None:
                    rejects_fh.write(dumps_line({"item": item.item, **item.error.to_json()}))
            else:
                stats.read += item.count
                stats.excluded += item.count
                stats.excluded_by_reason[item.reason] += item.count
    return stats


def reject_on(errors: Iterator[InputError], item: str) -> Iterator[Rejected]:
    """Wrap InputErrors as Rejected items (helper for sources that collect errors in bulk)."""
    for err in errors:
        yield Rejected(err, item)
