"""The `gtok` command line: a thin Typer layer over the library.

Each command lives in ``gtok_cli/commands/<name>.py`` and registers itself on the app; command modules
import heavy libraries (torch, transformers) only inside the command body so ``gtok --help`` stays fast.
"""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperGroup

from gtok_cli import __version__
from gtok_cli.errors import GtokError

DEBUG = "--debug"
HELP_NAMES = ["-h", "--help"]


def hoist_debug(args: list[str]) -> list[str]:
    """``--debug`` anywhere before a ``--`` moves to the front, where the root option reads it.

    So ``gtok export … --debug`` works as ``gtok --debug export …`` does; after ``--`` it is an argument.
    """
    end = args.index("--") if "--" in args else len(args)
    if DEBUG not in args[:end]:
        return args
    return [DEBUG, *(a for a in args[:end] if a != DEBUG), *args[end:]]


def hide_flag_types(command: Any) -> None:
    """Leave the type column blank for flags in ``command``'s help and every subcommand's.

    Typer's rich help prints a value type beside every option, so a flag read ``--gzip <bool>`` as if it
    took a value; a flag takes none, so its metavar is set to "" (the help option's too, created here).
    """
    ctx = typer.Context(command, help_option_names=HELP_NAMES)
    for param in command.get_params(ctx):
        if getattr(param, "is_flag", False):
            param.metavar = ""
    for sub in getattr(command, "commands", {}).values():
        hide_flag_types(sub)


class _GtokGroup(TyperGroup):
    """Turns every GtokError into one line on stderr and its exit code (docs/spec.md#errors)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        hide_flag_types(self)

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_debug(args))

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


app = typer.Typer(
    name="gtok",
    cls=_GtokGroup,
    help="Visual-grounding datasets → spatial-token instruction-tuning data, verified.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": HELP_NAMES},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"gtok {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    ctx: typer.Context,
    debug: bool = typer.Option(
        False, DEBUG, help="Show tracebacks instead of one-line errors (also after the command)."
    ),
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
