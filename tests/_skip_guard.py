"""A test skipped because its data is missing fails the run instead.

The suite's data lives in the repository (``tests/data/``, ``sample_data/``), so a skip whose reason says that
data or fixtures were not found means a broken checkout, not an optional extra: report it as a failure so that
``make test`` can never pass while silently running less. Skips for other reasons (an optional extra not
installed, an xfail) are left as they are.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

MISSING_DATA = re.compile(
    r"\b(fixtures?|data|dataset|sample_data|files?)\b[^.]*"
    r"\b(not found|missing|absent|unavailable|not present)\b"
    r"|\bmissing\b[^.]*\b(fixtures?|data|dataset)\b",
    re.IGNORECASE,
)


def is_missing_data(reason: str) -> bool:
    """Whether a skip reason says that test data or fixtures are missing."""
    return MISSING_DATA.search(reason) is not None


def _fail_missing_data_skip(report: Any) -> None:
    if not report.skipped or hasattr(report, "wasxfail") or not isinstance(report.longrepr, tuple):
        return
    reason = str(report.longrepr[2]).removeprefix("Skipped: ")
    if is_missing_data(reason):
        report.outcome = "failed"
        report.longrepr = (
            f"skipped for missing test data: {reason} (the repository must hold every file a test reads)"
        )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    _fail_missing_data_skip(report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Any:
    report = yield
    _fail_missing_data_skip(report)
    return report
