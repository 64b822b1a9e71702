"""A progress bar for long ingest reads: tqdm on stderr when it is a terminal, nothing otherwise (CI)."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def progress(items: Iterable[T], *, total: int | None, desc: str, unit: str) -> Iterator[T]:
    """``items`` unchanged; a bar counts them when stderr is a TTY."""
    if not sys.stderr.isatty():
        yield from items
        return
    from tqdm import tqdm

    yield from tqdm(
        items, total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True, leave=False
    )
