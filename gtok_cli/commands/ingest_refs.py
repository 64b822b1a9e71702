"""`gtok ingest refcoco` and `gtok ingest flickr30k`. (Placeholder: filled in by the ingest issue.)"""

from __future__ import annotations

import typer


def register(ingest_app: typer.Typer) -> None:
    """Add the refcoco and flickr30k subcommands to the `ingest` group."""
