"""chain_forked: the second half of an item stream made by a forked child comes out in order, its errors at
their place, and stopping early ends the child."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gtok_cli.ingest import forked_items
from gtok_cli.ingest.forked_items import chain_forked


def _items(start: int, stop: int, fail_at: int | None = None) -> Iterator[object]:
    for k in range(start, stop):
        if k == fail_at:
            raise ValueError(f"item {k} is bad")
        yield k if k % 3 else f"{k}".encode() * 50  # bytes and other items mixed


@pytest.mark.parametrize("batch_bytes", [1, 100, 1 << 20])
def test_items_come_out_in_order(monkeypatch: pytest.MonkeyPatch, batch_bytes: int) -> None:
    monkeypatch.setattr(forked_items, "BATCH_BYTES", batch_bytes)  # one item a message … all in one
    got = list(chain_forked(lambda: _items(0, 500), lambda: _items(500, 1200)))
    assert got == list(_items(0, 1200))


def test_empty_halves() -> None:
    assert list(chain_forked(lambda: iter(()), lambda: iter(()))) == []
    assert list(chain_forked(lambda: _items(0, 3), lambda: iter(()))) == list(_items(0, 3))


def test_an_error_in_the_child_is_raised_after_the_items_before_it() -> None:
    got: list[object] = []
    with pytest.raises(ValueError, match="item 700 is bad"):
        for item in chain_forked(lambda: _items(0, 500), lambda: _items(500, 1200, fail_at=700)):
            got.append(item)
    assert got == list(_items(0, 700))


def test_stopping_early_ends_the_child(tmp_path: Path) -> None:
    marker = tmp_path / "child.pid"

    def slow_second() -> Iterator[int]:
        marker.write_text(str(os.getpid()))
        while True:  # never ends on its own
            yield 1
            time.sleep(0.001)

    stream = chain_forked(lambda: iter(range(3)), slow_second)
    assert [next(stream) for _ in range(3)] == [0, 1, 2]
    for _ in range(200):
        if marker.exists() and marker.read_text():
            break
        time.sleep(0.01)
    pid = int(marker.read_text())
    stream.close()  # what a consumer stopping early does (GeneratorExit in the generator)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # terminated and reaped
