"""Progress bars for long ingest reads: tqdm on stderr when it is a terminal, nothing otherwise (CI logs
stay clean). Two shapes: ``progress(items, …)`` counts the items of an iterable; ``read_progress(…)`` gives
an ``update(n)`` callable for sources that report what they consumed (bytes of a file, files of a folder).

Example::

    with read_progress(total=path.stat().st_size, desc="vg regions", unit="B") as update:
        for index, element in iter_json_array(path, on_bytes=update):
            ...
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
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


def _ignore(n: int) -> None:
    return None


@contextmanager
def read_progress(total: int | None, desc: str, unit: str = "B") -> Iterator[Callable[[int], None]]:
    """A callable ``update(n)`` advancing the bar by ``n`` (a no-op unless stderr is a TTY)."""
    if not sys.stderr.isatty():
        yield _ignore
        return
    from tqdm import tqdm

    scale = unit == "B"
    with tqdm(
        total=total, desc=desc, unit=unit, unit_scale=scale, unit_divisor=1024 if scale else 1000,
        file=sys.stderr, dynamic_ncols=True, leave=False,
    ) as bar:  # fmt: skip
        yield bar.update
