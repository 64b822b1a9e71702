"""What every ingest source shares: the item stream, rejects, the reconciling summary.

A source is a generator of :data:`IngestItem`: a canonical record (dict or its JSONL bytes), a
:class:`Rejected` (a bad input item, with its InputError: one rejects-file line each), an :class:`Excluded`
(valid but deliberately not written: crowd regions, Flickr30k chain-0 "not visual" phrases, the annotations
of a rejected image…), or a :class:`Tally` (how many input items of a unit were read, or kept). Counts are
per unit a user can check against the input (COCO: images, annotations, captions; RefCOCO: refs,
sentences; Flickr30k: images, captions, phrases, objects), and each unit reconciles exactly::

    read == kept + excluded + rejected

:func:`run_ingest` drives a source: it writes the records, fails on the first rejection
(``on_error="fail"``) or writes every rejection to the rejects file (``"skip"``), and returns the counts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from gtok_cli.errors import InputError
from gtok_cli.jsonio import dumps_line, open_output

OnError = Literal["fail", "skip"]


@dataclass(frozen=True)
class Rejected:
    """An input item that could not be used (one line in the rejects file)."""

    error: InputError
    item: str = "record"
    """The unit rejected (``"annotation"``, ``"ref"``, ``"caption"``, ``"image"``…)."""
    ids: dict[str, Any] = field(default_factory=dict)
    """The item's ids in the input (e.g. ``{"image_id": 139, "ann_id": 1}``), copied to its reject line."""


@dataclass(frozen=True)
class Excluded:
    """Valid input items left out on purpose (counted separately, never silently)."""

    reason: str
    """e.g. ``"crowd"``, ``"not_visual"``, ``"no_box"``, ``"image.rejected"``."""
    item: str = "record"
    count: int = 1


@dataclass(frozen=True)
class Tally:
    """Input items of a unit read (counted from the input itself) and kept (in the records written)."""

    item: str
    read: int = 0
    kept: int = 0


IngestItem = dict[str, Any] | bytes | Rejected | Excluded | Tally
"""A record (a dict, or ``bytes``: the record already serialised as one JSONL line, exactly as
``jsonio.dumps_line`` would write it, for sources that serialise as they read), or a count."""


def plural(item: str) -> str:
    """The summary's name of a unit: ``image`` → ``images``."""
    return item if item.endswith("s") else item + "s"


@dataclass
class UnitCounts:
    """One unit's counts: ``read == kept + excluded + rejected``."""

    read: int = 0
    kept: int = 0
    excluded_by_reason: Counter[str] = field(default_factory=Counter)
    rejected_by_reason: Counter[str] = field(default_factory=Counter)

    @property
    def excluded(self) -> int:
        return sum(self.excluded_by_reason.values())

    @property
    def rejected(self) -> int:
        return sum(self.rejected_by_reason.values())

    @property
    def reconciles(self) -> bool:
        return self.read == self.kept + self.excluded + self.rejected

    def to_json(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "kept": self.kept,
            "excluded": self.excluded,
            "rejected": self.rejected,
            "excluded_by_reason": dict(sorted(self.excluded_by_reason.items())),
            "rejected_by_reason": dict(sorted(self.rejected_by_reason.items())),
            "reconciles": self.reconciles,
        }

    def human(self) -> str:
        def by_reason(counts: Counter[str]) -> str:
            return f" ({', '.join(f'{k} {v}' for k, v in sorted(counts.items()))})" if counts else ""

        return (
            f"read {self.read} = kept {self.kept}"
            f" + excluded {self.excluded}{by_reason(self.excluded_by_reason)}"
            f" + rejected {self.rejected}{by_reason(self.rejected_by_reason)}"
        )


@dataclass
class IngestStats:
    written: int = 0
    """Records written."""
    units: dict[str, UnitCounts] = field(default_factory=dict)
    """Per input unit (``images``, ``annotations``…), in the order the source first counts them."""
    extra: dict[str, Any] = field(default_factory=dict)

    def unit(self, item: str) -> UnitCounts:
        name = plural(item)
        counts = self.units.get(name)
        if counts is None:
            counts = self.units[name] = UnitCounts()
        return counts

    @property
    def rejected(self) -> int:
        """Rejected items (= lines in the rejects file)."""
        return sum(u.rejected for u in self.units.values())

    @property
    def rejected_by_reason(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for u in self.units.values():
            total.update(u.rejected_by_reason)
        return total

    @property
    def reconciles(self) -> bool:
        return all(u.reconciles for u in self.units.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "written": self.written,
            "rejected": self.rejected,
            "rejected_by_reason": dict(sorted(self.rejected_by_reason.items())),
            "units": {name: u.to_json() for name, u in self.units.items()},
            "reconciles": self.reconciles,
            **self.extra,
        }

    def human(self) -> str:
        head = f"{self.written} records written, {self.rejected} items rejected"
        head += " (counts reconcile)" if self.reconciles else " (COUNTS DO NOT RECONCILE)"
        return "\n".join([head, *(f"  {name}: {u.human()}" for name, u in self.units.items())])

    def brief(self) -> str:
        """One line: what was read, per unit (for errors)."""
        return ", ".join(f"{u.read} {name}" for name, u in self.units.items()) or "nothing"


def run_ingest(
    items: Iterable[IngestItem],
    out: str | Path,
    *,
    on_error: OnError = "fail",
    rejects: str | Path | None = None,
    if_empty: Callable[[IngestStats], InputError] | None = None,
) -> IngestStats:
    """Write the records of ``items`` to ``out`` (JSONL, ``-`` = stdout); see the module doc.

    ``if_empty``: when no record was written, the error to raise (no output file is left), else None
    (an empty output is accepted).
    """
    stats = IngestStats()
    with ExitStack() as stack:
        out_fh = stack.enter_context(open_output(out))
        rejects_fh: IO[bytes] | None = None
        if on_error == "skip" and rejects is not None:
            rejects_fh = stack.enter_context(open_output(rejects))
        write = out_fh.write
        for item in items:
            if isinstance(item, bytes):
                stats.written += 1
                write(item)
            elif isinstance(item, dict):
                stats.written += 1
                write(dumps_line(item))
            elif isinstance(item, Tally):
                unit = stats.unit(item.item)
                unit.read += item.read
                unit.kept += item.kept
            elif isinstance(item, Rejected):
                if on_error == "fail":
                    raise item.error
                stats.unit(item.item).rejected_by_reason[item.error.reason] += 1
                if rejects_fh is not None:
                    rejects_fh.write(dumps_line({"item": item.item, **item.ids, **item.error.to_json()}))
            else:
                stats.unit(item.item).excluded_by_reason[item.reason] += item.count
        if not stats.written and if_empty is not None:
            raise if_empty(stats)  # inside the outputs' context: their temp files are removed
    return stats


def reject_on(errors: Iterator[InputError], item: str) -> Iterator[Rejected]:
    """Wrap InputErrors as Rejected items (helper for sources that collect errors in bulk)."""
    for err in errors:
        yield Rejected(err, item)
