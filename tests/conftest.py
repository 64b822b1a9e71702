"""Shared test fixtures: where the genuine third-party data and sample_data live.

Every file a test reads is in the repository: ``tests/data/`` (provenance in ``tests/data/README.md``) and
``sample_data/``. Nothing is skipped for missing data: a skip whose reason says data or fixtures were not
found fails the run (``_skip_guard``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from _skip_guard import pytest_make_collect_report, pytest_runtest_makereport

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"
SAMPLE_DATA = REPO / "sample_data"

__all__ = ["pytest_make_collect_report", "pytest_runtest_makereport"]


@pytest.fixture(scope="session")
def coco_fixtures(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The genuine COCO val2017 subset: annotations/instances_val2017.json, captions, val2017/*.jpg.

    The annotations (79 images) are ``tests/data/coco/annotations``; ``val2017`` holds the 13 of their images
    that a test opens: image 139 from ``tests/data/coco/val2017`` and the 12 already in
    ``sample_data/coco/val2017`` (the same files, not copied twice in the repository). They are copied
    into one folder here because ``--images`` takes one folder and refuses symlinks that leave it.
    """
    root = tmp_path_factory.mktemp("coco")
    shutil.copytree(DATA / "coco" / "annotations", root / "annotations")
    images = root / "val2017"
    images.mkdir()
    for src in (DATA / "coco" / "val2017", SAMPLE_DATA / "coco" / "val2017"):
        for jpg in sorted(src.glob("*.jpg")):
            shutil.copyfile(jpg, images / jpg.name)
    return root


@pytest.fixture(scope="session")
def sample_data() -> Path:
    return SAMPLE_DATA
