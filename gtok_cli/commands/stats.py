"""`gtok stats` command(s). (Placeholder: filled in by its issue.)"""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's command(s) to the app."""
