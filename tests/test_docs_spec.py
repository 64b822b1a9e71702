"""docs/spec.md is the spec the repository cites: every cited section exists, and nothing cites DESIGN."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SPEC = REPO / "docs" / "spec.md"
SEARCHED = ("gtok_cli", "tests", "docs", "benchmarks", "scripts")
SUFFIXES = {".py", ".md", ".json", ".sh", ".toml"}


def _texts() -> list[Path]:
    files = [REPO / "README.md"]
    for top in SEARCHED:
        files += [p for p in sorted((REPO / top).rglob("*")) if p.suffix in SUFFIXES and p.is_file()]
    return [f for f in files if "data" not in f.relative_to(REPO).parts[:2]]


ANCHORS = set(re.findall(r'<a id="([a-z0-9-]+)"></a>', SPEC.read_text()))
CITED = re.compile(r"(?:docs/)?spec\.md#([A-Za-z0-9-]+)")


def test_spec_sections() -> None:
    expected = {"coordinates", "schemes", "getok-v1", "refinement", "mask-tokens", "records"}
    assert expected | {"shards", "manifest", "errors", "on-error"} <= ANCHORS


def test_every_citation_names_a_section() -> None:
    cited = {(f.relative_to(REPO).as_posix(), m) for f in _texts() for m in CITED.findall(f.read_text())}
    assert len(cited) > 20  # the code cites the spec throughout
    assert {(f, m) for f, m in cited if m not in ANCHORS} == set()


def test_nothing_cites_design() -> None:
    design = re.compile(r"DESIGN(\.md)? ?§")
    hits = [
        f"{f.relative_to(REPO)}:{k}"
        for f in _texts()
        if f != Path(__file__).resolve()
        for k, line in enumerate(f.read_text().splitlines(), 1)
        if design.search(line)
    ]
    assert hits == []
