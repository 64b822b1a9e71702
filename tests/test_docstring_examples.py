"""Every ``>>>`` example in gtok_cli's docstrings runs and prints what it says (a wrong example in a docstring
is a wrong promise: the box_reward example said 1.935 after the L1 definition had moved it to 1.929)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import gtok_cli


def _modules() -> list[str]:
    names = [gtok_cli.__name__]
    for info in pkgutil.walk_packages(gtok_cli.__path__, prefix="gtok_cli."):
        if info.name.endswith(
            ("swift_plugin", "__main__")
        ):  # ms-swift plugin needs swift; __main__ runs the CLI
            continue
        names.append(info.name)
    return sorted(names)


def _with_examples(name: str) -> bool:
    module = importlib.import_module(name)
    return any(t.examples for t in doctest.DocTestFinder().find(module))


MODULES = [m for m in _modules() if _with_examples(m)]


def test_examples_are_found() -> None:
    """The walk sees the modules known to carry examples (a broken walk would pass every case below)."""
    assert {"gtok_cli.rewards", "gtok_cli.counting", "gtok_cli.geometry.relation_answers"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(
        module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, report=False
    )
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
