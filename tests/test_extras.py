"""Issue 12 row 8: a missing optional package is an install hint (exit 2, one line), not a traceback."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from _export_helpers import gtok, referring, write_records

import gtok_cli.extras

HINT = "needs the [sam] extra (cannot import {module}): pip install -e '.[sam]'"


@pytest.fixture
def records(tmp_path: Path) -> Path:
    (tmp_path / "images").mkdir()
    (tmp_path / "sam.pth").write_bytes(b"not weights")
    return write_records(tmp_path / "records.jsonl", [referring(k) for k in range(2)])


def _hide(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    """``import MODULE`` raises ModuleNotFoundError, as on an install without the extra."""
    for name in modules:
        monkeypatch.setitem(sys.modules, name, None)


@pytest.mark.parametrize(
    ("hidden", "args", "feature", "module"),
    [
        (["torch"], ["--backend", "sam"], "--backend sam", "torch"),
        (["segment_anything"], ["--backend", "sam"], "--backend sam", "segment_anything"),
        (["torch"], ["--device", "cuda"], "--device cuda", "torch"),
    ],
)
def test_masks_without_the_sam_extra(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    records: Path,
    hidden: list[str],
    args: list[str],
    feature: str,
    module: str,
) -> None:
    _hide(monkeypatch, *hidden)
    out = tmp_path / "out.jsonl"
    res = gtok(
        "masks", records, "--images", tmp_path / "images", "--sam-checkpoint", tmp_path / "sam.pth",
        "--out", out, *args,
    )  # fmt: skip
    assert res.exit_code == 2, res.output
    assert res.stderr.strip() == f"gtok: error: {feature} {HINT.format(module=module)}"
    assert not out.exists() and not (tmp_path / "out.jsonl.partial").exists()


def test_show_with_sam_weights_without_the_extra(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, records: Path
) -> None:
    _hide(monkeypatch, "torch")
    res = gtok(
        "show", records, "--images", tmp_path / "images", "--sam-checkpoint", tmp_path / "sam.pth",
        "--out", tmp_path / "p.png",
    )  # fmt: skip
    assert res.exit_code == 2
    assert res.stderr.strip() == f"gtok: error: --sam-checkpoint (SAM) {HINT.format(module='torch')}"


def test_an_import_no_check_saw_is_still_the_hint(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, records: Path
) -> None:
    """The CLI's last resort: a ModuleNotFoundError of an extra's module, wherever it is raised."""
    _hide(monkeypatch, "torch")
    monkeypatch.setattr(gtok_cli.extras, "require", lambda *modules, feature: None)
    res = gtok(
        "masks", records, "--images", tmp_path / "images", "--sam-checkpoint", tmp_path / "sam.pth",
        "--out", tmp_path / "o.jsonl", "--backend", "sam",
    )  # fmt: skip
    assert res.exit_code == 2
    assert res.stderr.strip() == f"gtok: error: this command (torch) {HINT.format(module='torch')}"
