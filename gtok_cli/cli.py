"""The `gtok` command line: a thin Typer layer over the library.

Each command lives in ``gtok_cli/commands/<name>.py`` and registers itself on the app; command modules
import heavy libraries (torch, transformers) only inside the command body so ``gtok --help`` stays fast.
"""

from __future__ import annotations

import errno
import os
from typing import Any

import typer
from typer.core import TyperGroup

from gtok_cli import __version__
from gtok_cli.errors import EXIT_BAD_INPUT, GtokError
from gtok_cli.extras import install_hint

_WRITE_ERRNOS = frozenset(
    {
        errno.ENOSPC,
        errno.EDQUOT,
        errno.EFBIG,
        errno.EROFS,
        errno.EEXIST,
        errno.ENOTDIR,
        errno.EISDIR,
    }
)
"""The reasons an output cannot be created (a read-only or full file system, a file where a folder is
needed or the reverse). A permission error may be a read as well, so it is reported as the path and reason."""


def _last_resort_line(exc: BaseException) -> str | None:
    """The one line for an OSError or ImportError no gtok code turned into a GtokError, else None.

    An OSError that names a path (``mkdir`` of an output folder that is a file, …) or one only a write
    raises; a missing module of an optional extra (:mod:`gtok_cli.extras`) as its install hint.
    """
    if isinstance(exc, ImportError):
        return install_hint(exc.name) if exc.name else None
    if not isinstance(exc, OSError):
        return None
    reason = exc.strerror or str(exc)
    if exc.filename is None:
        return f"cannot write output: {reason}" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else None
    if exc.errno in (errno.EEXIST, errno.ENOTDIR) and os.path.isfile(exc.filename):
        return f"cannot write {exc.filename}: it is a file, not a folder ({reason})"
    if exc.errno in _WRITE_ERRNOS:
        return f"cannot write {exc.filename}: {reason}"
    return f"{exc.filename}: {reason}"


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
        except (OSError, ImportError) as exc:
            # the writers turn their own errors into WriteError; this catches what no writer saw (an output
            # folder that is a file, a missing optional package) so it is still one line and exit 2
            line = _last_resort_line(exc)
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
    from gtok_cli.commands import codec, export, ingest, masks, reward, show, stats, verify
    from gtok_cli.commands import eval as eval_

    for module in (codec, ingest, masks, export, verify, show, stats, eval_, reward):
        module.register(app)


_register_commands()


def main() -> None:
    app(prog_name="gtok")


if __name__ == "__main__":  # pragma: no cover
    main()
