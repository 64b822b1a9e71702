"""Optional extras: a missing package is an install hint (exit 2), not a ModuleNotFoundError traceback.

``pyproject.toml`` declares the extras; :data:`EXTRA_OF` says which extra brings each optional top-level
module. Code that needs one calls :func:`require` before importing it; the CLI group also turns any
ImportError of these modules into the same hint (:func:`install_hint`).
"""

from __future__ import annotations

import importlib

from gtok_cli.errors import UsageError

EXTRA_OF: dict[str, str] = {
    "torch": "sam",
    "torchvision": "sam",
    "segment_anything": "sam",
    "ray": "ray",
    "pyarrow": "parquet",
}
"""Optional top-level module → the extra that installs it (``pip install -e '.[EXTRA]'``)."""


def install_hint(module: str, feature: str | None = None) -> str | None:
    """The one-line hint for a missing ``module`` (``None`` when it belongs to no extra)."""
    top = module.split(".")[0]
    extra = EXTRA_OF.get(top)
    if extra is None:
        return None
    what = feature or f"this command ({top})"
    return f"{what} needs the [{extra}] extra (cannot import {top}): pip install -e '.[{extra}]'"


def require(*modules: str, feature: str) -> None:
    """Import each of ``modules`` or raise UsageError with the install hint naming ``feature``."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            hint = install_hint(module, feature)
            if hint is None:
                raise
            raise UsageError(hint) from exc


__all__ = ["EXTRA_OF", "install_hint", "require"]
