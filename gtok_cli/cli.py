"""The `gtok` command line: a thin Typer layer over the library.

Each command lives in ``gtok_cli/commands/<name>.py`` and registers itself on the app; command modules
import heavy libraries (torch, transformers) only inside the command body so ``gtok --help`` stays fast.
"""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperGroup

from gtok_cli import __version__
from gtok_cli.errors import EXIT_BAD_INPUT, GtokError, last_resort_line


class _GtokGroup(TyperGroup):
    """Turns every GtokError into one line on stderr and its exit code (DESIGN §6), and an OS error about a
    path or a missing optional package into one line and exit 2."""

    def invoke(self, ctx: Any) -> Any:  # the vendored click Context
        try:
            return super().invoke(ctx)
        except GtokError as exc:
            if (ctx.obj or {}).get("debug"):
                raise
            typer.echo(f"gtok: error: {exc.one_line()}", err=True)
            raise typer.Exit(exc.exit_code) from None
        except BrokenPipeError:
            # `gtok … | head` is normal shell use, not an error
            raise typer.Exit(0) from None
        except (OSError, ImportError) as exc:
            # the writers turn their own errors into WriteError; this catches what no writer saw (an output
            # folder that is a file, a missing optional package) so it is still one line and exit 2
            line = last_resort_line(exc)
            if line is None or (ctx.obj or {}).get("debug"):
                raise
            typer.echo(f"gtok: error: {line}", err=True)
            raise typer.Exit(EXIT_BAD_INPUT) from None


app = typer.Typer(
    name="gtok",
    cls=_GtokGroup,
    help="Visual-grounding datasets → spatial-token instruction-tuning data, verified.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"gtok {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    ctx: typer.Context,
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks instead of one-line errors."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    ctx.obj = {"debug": debug}


def _register_commands() -> None:
    from gtok_cli.commands import codec, export, ingest, masks, show, stats, verify

    for module in (codec, ingest, masks, export, verify, show, stats):
        module.register(app)


_register_commands()


def main() -> None:
    app(prog_name="gtok")


if __name__ == "__main__":  # pragma: no cover
    main()
