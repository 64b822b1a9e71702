"""The package's shape: no import cycles, and stages stand side by side (docs/architecture.md).

Reads every module of ``gtok_cli`` with :mod:`ast` (nothing is imported), builds the graph of imports between
gtok_cli modules (module-level and function-level imports alike) and checks it. ``-s`` prints the floors.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "gtok_cli"

STAGES = ("ingest", "masks", "export", "verify", "show", "stats", "eval", "rewards")
"""The stage packages: none of them imports another."""

PENDING_R13B: set[tuple[str, str]] = set()

PENDING_CYCLES = [
    # Opened in other branches of issue 13 (r13b: the task dispatcher above refine_task; the ingest helper:
    # commands/ingest.py <-> commands/ingest_refs.py). The lead empties this list after the merge.
]


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported(path: Path, name: str, modules: set[str]) -> set[str]:
    """The gtok_cli modules ``path`` imports, anywhere in it (``from pkg import mod`` names the module)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in modules:  # `import gtok_cli.x.y` of a name inside a module
                t = t.rpartition(".")[0]
            if t.startswith("gtok_cli") and t != name:
                out.add(t)
    return out


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    files = {module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    modules = set(files)
    return {name: imported(path, name, modules) for name, path in files.items()}


def stage_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in STAGES else None


def stage_edges(graph: dict[str, set[str]]) -> set[tuple[str, str]]:
    """Imports from one stage package into another (a package's ``__init__`` importing itself is fine)."""
    return {
        (a, b)
        for a, deps in graph.items()
        for b in deps
        if stage_of(a) is not None and stage_of(b) is not None and stage_of(a) != stage_of(b)
    }


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def floors(graph: dict[str, set[str]]) -> dict[str, int]:
    """Floor 0: imports no gtok_cli module; otherwise one above the highest module it imports."""
    memo: dict[str, int] = {}

    def floor(v: str) -> int:
        if v not in memo:
            memo[v] = 0  # a cycle (reported by its own test) must not recurse forever
            memo[v] = 1 + max((floor(w) for w in graph[v] if w in graph), default=-1)
        return memo[v]

    return {v: floor(v) for v in graph}


# ---- the checks themselves, on small made-up packages ------------------------------------------------------
def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "gtok_cli"
    for rel, text in {"__init__.py": "", **files}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


@pytest.mark.parametrize(
    ("files", "want_cycles", "want_stage_edges"),
    [
        ({"a.py": "from gtok_cli import b\n", "b.py": "import os\n"}, [], set()),
        (  # a cycle through a function-level import counts
            {"a.py": "from gtok_cli.b import x\n", "b.py": "def f():\n    from gtok_cli.a import y\n"},
            [["gtok_cli.a", "gtok_cli.b"]],
            set(),
        ),
        (  # relative imports resolve; a stage may import its own package and floors below
            {
                "jsonio.py": "",
                "show/__init__.py": "from .draw import f\n",
                "show/draw.py": "from gtok_cli import jsonio\n",
            },
            [],
            set(),
        ),
        (  # stage → stage, even inside a function
            {
                "verify/__init__.py": "",
                "verify/run.py": "def f():\n    from gtok_cli.export.run import gc_paused\n",
                "export/__init__.py": "",
                "export/run.py": "",
            },
            [],
            {("gtok_cli.verify.run", "gtok_cli.export.run")},
        ),
        (  # `from gtok_cli.stage import module` names the module
            {"stats/x.py": "from gtok_cli.show import sample\n", "show/sample.py": ""},
            [],
            {("gtok_cli.stats.x", "gtok_cli.show.sample")},
        ),
    ],
)
def test_the_checks_find_what_they_look_for(
    tmp_path: Path,
    files: dict[str, str],
    want_cycles: list[list[str]],
    want_stage_edges: set[tuple[str, str]],
) -> None:
    graph = import_graph(_package(tmp_path, files))
    assert cycles(graph) == want_cycles
    assert stage_edges(graph) == want_stage_edges


# ---- the package -----------------------------------------------------------------------------------------
def test_no_import_cycles() -> None:
    found = cycles(import_graph())
    assert [c for c in found if c not in PENDING_CYCLES] == []
    assert [c for c in PENDING_CYCLES if c not in found] == [], "cycle gone: take it out of PENDING_CYCLES"


def test_no_stage_imports_another_stage() -> None:
    edges = stage_edges(import_graph())
    assert sorted(edges - PENDING_R13B) == []
    assert sorted(PENDING_R13B - edges) == [], "edge gone: take it out of PENDING_R13B"


TOP = ("gtok_cli.cli", "gtok_cli.__main__", "gtok_cli.commands")
"""The CLI layer: above every stage."""


def unit(module: str) -> str:
    """The top-level package or module of ``gtok_cli`` a module belongs to."""
    return ".".join(module.split(".")[:2])


def test_lower_floors_import_no_stage_and_no_cli() -> None:
    graph = import_graph()
    lower = [m for m in graph if stage_of(m) is None and unit(m) not in TOP and m != "gtok_cli"]
    assert len(lower) > 20
    up = {(m, d) for m in lower for d in graph[m] if stage_of(d) is not None or unit(d) in TOP}
    assert sorted(up) == []


def test_print_floors() -> None:
    """Floors of the top-level packages and modules (``pytest -s`` shows them; docs/architecture.md)."""
    graph = import_graph()
    units: dict[str, set[str]] = {}
    for mod, deps in graph.items():
        if mod != "gtok_cli":
            units.setdefault(unit(mod), set()).update(unit(d) for d in deps if unit(d) != unit(mod))
    for deps in units.values():
        deps.discard("gtok_cli")  # the package's __init__ (its version string)
    by_floor: dict[int, list[str]] = {}
    for u, f in floors(units).items():
        by_floor.setdefault(f, []).append(u.removeprefix("gtok_cli."))
    for f in sorted(by_floor):
        print(f"floor {f}: {' '.join(sorted(by_floor[f]))}")
    assert set(STAGES) - {"eval"} <= {stage_of(m) for m in graph}
