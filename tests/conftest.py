"""Shared test fixtures: where the genuine third-party data and sample_data live.

The shared fixtures (read-only, genuine data) are ``<repo>/shared/fixtures`` in some checkouts and
``<repo>/../shared/fixtures`` in others (CI clones beside ``shared/``); tests that need them are skipped when
neither exists.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def find_shared_fixtures() -> Path | None:
    for base in (REPO / "shared" / "fixtures", REPO.parent / "shared" / "fixtures"):
        if base.is_dir():
            return base
    return None


@pytest.fixture(scope="session")
def shared_fixtures() -> Path:
    base = find_shared_fixtures()
    if base is None:
        pytest.skip("shared fixtures not found (<repo>/shared/fixtures or <repo>/../shared/fixtures)")
    return base


@pytest.fixture(scope="session")
def coco_fixtures(shared_fixtures: Path) -> Path:
    """The genuine COCO val2017 subset: annotations/instances_val2017.json, captions, val2017/*.jpg."""
    return shared_fixtures / "coco"


@pytest.fixture(scope="session")
def sample_data() -> Path:
    return REPO / "sample_data"
