"""A skip for missing data fails the run (tests/_skip_guard.py); other skips stay skips."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from _skip_guard import is_missing_data

TESTS = Path(__file__).resolve().parent


@pytest.mark.parametrize(
    ("reason", "missing"),
    [
        ("shared fixtures not found", True),
        ("shared fixtures not found (<repo>/shared/fixtures or <repo>/../shared/fixtures)", True),
        ("test data missing: tests/data/coco", True),
        ("missing fixture file instances_val2017.json", True),
        ("COCO dataset not present", True),
        ("sample_data not found", True),
        ("could not import 'torch': No module named 'torch'", False),
        ("needs a CUDA device", False),
        ("the [sam] extra is not installed", False),
        ("", False),
    ],
)
def test_reason_table(reason: str, missing: bool) -> None:
    assert is_missing_data(reason) is missing


RUNTIME_SKIP = 'import pytest\n\ndef test_data():\n    pytest.skip("{reason}")\n'
COLLECTION_SKIP = 'import pytest\n\npytest.skip("{reason}", allow_module_level=True)\n'
IMPORT_SKIP = 'import pytest\n\npytest.importorskip("no_such_module_gtok")\n\ndef test_data():\n    pass\n'


@pytest.mark.parametrize(
    ("body", "reason", "rc", "summary"),
    [
        (RUNTIME_SKIP, "shared fixtures not found", 1, "1 failed, 1 passed"),
        (COLLECTION_SKIP, "test data missing", 2, "1 error"),  # a collection error stops the run
        (RUNTIME_SKIP, "needs the [sam] extra", 0, "1 passed, 1 skipped"),
        (COLLECTION_SKIP, "needs a CUDA device", 0, "1 passed, 1 skipped"),
        (IMPORT_SKIP, "", 0, "1 passed, 1 skipped"),  # an optional extra not installed stays a skip
    ],
    ids=["run-missing", "collect-missing", "run-extra", "collect-device", "importorskip"],
)
def test_run_outcome(tmp_path: Path, body: str, reason: str, rc: int, summary: str) -> None:
    (tmp_path / "test_it.py").write_text(body.format(reason=reason))
    (tmp_path / "test_ok.py").write_text("def test_ok():\n    pass\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "_skip_guard",
        "-p",
        "no:randomly",
        "-p",
        "no:cacheprovider",
    ]
    result = subprocess.run([*cmd, str(tmp_path)], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == rc, result.stdout
    assert result.stdout.splitlines()[-1].startswith(summary), result.stdout
    assert ("skipped for missing test data: " + reason in result.stdout) is bool(rc)
