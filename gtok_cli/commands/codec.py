"""`gtok encode`, `gtok decode`, `gtok vocab`: the codecs from the shell (docs/spec.md#schemes).

A thin layer: parse the strings, call :func:`gtok_cli.codecs.get_codec`, print. Scheme parameters are passed
to the codec only when given on the command line, so each scheme keeps its own defaults.
"""

from __future__ import annotations

import re
import sys
from typing import Any

import typer

from gtok_cli.codecs import SCHEMES, Codec, Decoded, Grounding, Shape, get_codec
from gtok_cli.errors import EXIT_VERIFY_FAILED, UsageError

_SIZE = re.compile(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*")
_NUMBER = r"\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*"
_SCHEMES = ", ".join(SCHEMES)

SCHEME_OPT = typer.Option(..., "--scheme", "-s", help=f"Token scheme: {_SCHEMES}.")
SIZE_OPT = typer.Option(..., "--size", help="Image size WIDTHxHEIGHT in pixels, e.g. 640x480.")
BINS_OPT = typer.Option(None, "--bins", help="bins: number of coordinate bins.")
GRID_OPT = typer.Option(None, "--grid", help="grid: grid side n.")
OFFSET_OPT = typer.Option(None, "--offset-step", help="grid: offset lattice step, in cells.")
MIN_PIX_OPT = typer.Option(None, "--min-pixels", help="qwen2.5-vl: processor min_pixels.")
MAX_PIX_OPT = typer.Option(None, "--max-pixels", help="qwen2.5-vl: processor max_pixels.")
TRAINER_OPT = typer.Option(
    None,
    "--trainer",
    help="Who feeds the images: hf (default: as they are) | llamafactory | swift (qwen2.5-vl's pixels are "
    "those of the image it feeds; the other schemes are immune).",
)
IMAGE_MAX_PIX_OPT = typer.Option(
    None,
    "--image-max-pixels",
    help="The trainer's image budget (llamafactory --image_max_pixels, default 589824 = 768*768; swift "
    "--max_pixels, default none).",
)


def parse_size(text: str) -> tuple[int, int]:
    """``"640x480"`` → ``(640, 480)``; anything else is a one-line usage error."""
    m = _SIZE.fullmatch(text)
    if m is None or int(m[1]) <= 0 or int(m[2]) <= 0:
        raise UsageError(f"--size must be WIDTHxHEIGHT with positive integers, e.g. 640x480; got {text!r}")
    return int(m[1]), int(m[2])


def parse_numbers(text: str, count: int, what: str) -> tuple[float, ...]:
    """``"150,100,400,350"`` → floats; the wrong count or a non-number is a one-line usage error."""
    m = re.fullmatch(",".join([_NUMBER] * count), text)
    if m is None:
        example = "150,100,400,350" if count == 4 else "150,100"
        raise UsageError(f"{what} must be {count} comma-separated numbers like {example}; got {text!r}")
    return tuple(float(v) for v in m.groups())


def _codec(scheme: str, **params: Any) -> Codec:
    return get_codec(scheme, **{k: v for k, v in params.items() if v is not None})


def regions_json(decoded: Decoded) -> dict[str, Any]:
    """The `gtok decode` output: one region per shape, in text order, in original-image pixels."""
    regions: list[dict[str, Any]] = []
    for g in decoded.groundings:
        for s in g.shapes:
            region: dict[str, Any] = {"label": g.label}
            if s.kind in ("box", "point"):
                region[s.kind] = list(s.coords)
            elif s.kind == "polyline":
                region["polyline"] = [list(p) for p in s.points()]
            elif s.kind == "polygon":
                region["polygon"] = s.rings()
            else:
                region["anchors"] = [list(a) for a in s.anchors or ()]
                region["points"] = [list(p) for p in s.points()]
            regions.append(region)
    return {"regions": regions, "errors": [e.to_json() for e in decoded.errors]}


def encode_command(
    boxes: list[str] = typer.Argument(None, help="Boxes x1,y1,x2,y2 in pixels of the original image."),
    scheme: str = SCHEME_OPT,
    size: str = SIZE_OPT,
    label: str | None = typer.Option(
        None, "--label", "-l", help="Phrase/label (where the scheme writes one)."
    ),
    point: list[str] = typer.Option(None, "--point", help="A point X,Y in pixels (repeatable)."),
    box_as: str | None = typer.Option(
        None, "--box-as", help="center: write each box as its centre point (points-only schemes: molmo)."
    ),
    bins: int | None = BINS_OPT,
    grid: int | None = GRID_OPT,
    offset_step: float | None = OFFSET_OPT,
    min_pixels: int | None = MIN_PIX_OPT,
    max_pixels: int | None = MAX_PIX_OPT,
    trainer: str | None = TRAINER_OPT,
    image_max_pixels: int | None = IMAGE_MAX_PIX_OPT,
) -> None:
    """Write boxes/points as a scheme's text (one grounding: the label with all its shapes)."""
    wh = parse_size(size)
    if box_as not in (None, "center"):
        raise UsageError(f"--box-as must be center; got {box_as!r}")
    shapes = [Shape.box(*parse_numbers(b, 4, "a box")) for b in boxes or []]
    if box_as == "center":  # x1,y1,x2,y2 → its centre point
        shapes = [
            Shape.point((s.coords[0] + s.coords[2]) / 2, (s.coords[1] + s.coords[3]) / 2) for s in shapes
        ]
    shapes += [Shape.point(*parse_numbers(p, 2, "--point")) for p in point or []]
    if not shapes:
        raise UsageError("give at least one box x1,y1,x2,y2 or one --point X,Y")
    codec = _codec(
        scheme,
        bins=bins,
        grid=grid,
        offset_step=offset_step,
        min_pixels=min_pixels,
        max_pixels=max_pixels,
        trainer=trainer,
        image_max_pixels=image_max_pixels,
    )
    typer.echo(codec.encode([Grounding(label, tuple(shapes))], wh))


def decode_command(
    text: str = typer.Argument("-", help="Model text to decode; '-' or nothing reads stdin."),
    scheme: str = SCHEME_OPT,
    size: str = SIZE_OPT,
    bins: int | None = BINS_OPT,
    grid: int | None = GRID_OPT,
    offset_step: float | None = OFFSET_OPT,
    min_pixels: int | None = MIN_PIX_OPT,
    max_pixels: int | None = MAX_PIX_OPT,
    trainer: str | None = TRAINER_OPT,
    image_max_pixels: int | None = IMAGE_MAX_PIX_OPT,
) -> None:
    """Find every spatial span in TEXT; print {"regions": […], "errors": […]} as JSON.

    Exit status: 0 when every span decoded; 1 when some span was malformed or out of range (the JSON,
    with those spans under "errors", is still printed), like a failed verification; 2 on bad usage.
    """
    wh = parse_size(size)
    source = sys.stdin.read() if text == "-" else text
    codec = _codec(
        scheme,
        bins=bins,
        grid=grid,
        offset_step=offset_step,
        min_pixels=min_pixels,
        max_pixels=max_pixels,
        trainer=trainer,
        image_max_pixels=image_max_pixels,
    )
    decoded = codec.decode(source, wh)
    from gtok_cli.jsonio import dumps

    typer.echo(dumps(regions_json(decoded)).decode())
    if decoded.errors:
        raise typer.Exit(EXIT_VERIFY_FAILED)


def vocab_command(
    scheme: str = SCHEME_OPT,
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list instead of one token a line."),
    bins: int | None = BINS_OPT,
    grid: int | None = GRID_OPT,
    offset_step: float | None = OFFSET_OPT,
    min_pixels: int | None = MIN_PIX_OPT,
    max_pixels: int | None = MAX_PIX_OPT,
    trainer: str | None = TRAINER_OPT,
    image_max_pixels: int | None = IMAGE_MAX_PIX_OPT,
) -> None:
    """Print the tokens a scheme adds to a tokenizer (nothing for plain-text schemes), for add_tokens."""
    codec = _codec(
        scheme,
        bins=bins,
        grid=grid,
        offset_step=offset_step,
        min_pixels=min_pixels,
        max_pixels=max_pixels,
        trainer=trainer,
        image_max_pixels=image_max_pixels,
    )
    tokens = codec.vocab()
    if as_json:
        from gtok_cli.jsonio import dumps

        typer.echo(dumps(tokens).decode())
    elif tokens:
        typer.echo("\n".join(tokens))


_ENCODE_EPILOG = (
    "Examples:\n\n"
    "  gtok encode --scheme qwen2-vl --size 640x480 --label dog 150,100,400,350\n\n"
    "  gtok encode -s bins --bins 500 --size 640x480 150,100,400,350 10,10,20,20\n\n"
    "  gtok encode -s qwen2.5-vl --size 640x480 --label nose --point 320,200\n\n"
    "  gtok encode -s molmo --size 640x480 --label dog --box-as center 150,100,400,350\n\n"
    "  gtok encode -s qwen2.5-vl --trainer llamafactory --size 1920x1080 0,0,1920,1080"
)
_DECODE_EPILOG = (
    "Examples:\n\n"
    "  gtok decode -s qwen-vl --size 640x480 '<ref>dog</ref><box>(234,208),(625,729)</box>'\n\n"
    "  model_output | gtok decode -s qwen2.5-vl --size 640x480 -\n\n"
    "Exit 0: all spans decoded; 1: some span malformed (listed under errors); 2: bad usage."
)
_VOCAB_EPILOG = "Examples:\n\n  gtok vocab --scheme loc > tokens.txt\n\n  gtok vocab -s grid --grid 32 --json"


def register(app: typer.Typer) -> None:
    """Add `encode`, `decode` and `vocab` to the app."""
    app.command("encode", epilog=_ENCODE_EPILOG)(encode_command)
    app.command("decode", epilog=_DECODE_EPILOG)(decode_command)
    app.command("vocab", epilog=_VOCAB_EPILOG)(vocab_command)
