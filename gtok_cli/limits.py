"""The one table of sane maxima for sizes a typo can blow up (issue 12).

``--bins 1000000000`` builds a billion-token table before anything is written; ``--grid 100000`` a
10^10-token vocabulary. Each row below is a parameter whose memory or time grows with its value, the most it
may be, and why that is enough. :func:`check` is called where options are parsed (every codec's parameters
pass :func:`gtok_cli.codecs.get_codec`; export, masks and show check their own options), so a value over
its limit is a one-line usage error (exit 2) naming the option, the value and the limit, before any work.
Lower bounds (``>= 1``) stay with the code that owns each option.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gtok_cli.errors import UsageError


@dataclass(frozen=True)
class Limit:
    option: str
    """The command-line spelling, used in the message."""
    maximum: int
    why: str


LIMITS: dict[str, Limit] = {
    # codec parameters (every scheme's params pass get_codec)
    "bins": Limit(
        "--bins",
        10_000,
        "one token per bin; the largest any model uses is 1024 (PaliGemma), so 10x headroom",
    ),
    "grid": Limit(
        "--grid",
        1024,
        "n x n tokens and anchors: 1024 is 1M tokens, 32x the grid Kosmos-2 and GETok use",
    ),
    "min_pixels": Limit(
        "--min-pixels",
        16384 * 16384,
        "a 16384 x 16384 image: 20x qwen2.5-vl's default max_pixels (12,845,056)",
    ),
    "max_pixels": Limit(
        "--max-pixels",
        16384 * 16384,
        "a 16384 x 16384 image: 20x qwen2.5-vl's default max_pixels (12,845,056)",
    ),
    # export
    "shard_size": Limit(
        "--shard-size",
        10_000_000,
        "lines per shard: 100x the default; a larger shard is one file no loader can split",
    ),
    "num_shards": Limit(
        "--num-shards",
        10_000,
        "job-array parts: 10x SLURM's default MaxArraySize (1001)",
    ),
    "workers": Limit(
        "--workers",
        64,
        "each worker is a forked process with two 16 MiB shared slots; 16x the automatic choice (<= 4), "
        "beyond which the one writing process is the bottleneck",
    ),
    "refine_turns": Limit(
        "--refine-turns",
        32,
        "each turn adds a question and an answer to every sample; a proposal off by a few cells is fixed "
        "in a few turns",
    ),
    # masks
    "batch_images": Limit(
        "--batch-images",
        256,
        "images held in memory at once for one SAM encoder batch",
    ),
    # show
    "sample": Limit(
        "--sample",
        1024,
        "tiles in one contact sheet (32 x 32); more are too small to read",
    ),
}


def check(param: str, value: int | float | None) -> None:
    """Raise UsageError when ``value`` is over ``param``'s limit (``None``: option not given)."""
    limit = LIMITS.get(param)
    if limit is None or isinstance(value, bool) or not isinstance(value, int | float):
        return  # no row, not given, or not a number (the owner of the option reports that)
    if value > limit.maximum:
        raise UsageError(f"{limit.option} {value} is over the limit of {limit.maximum:,} ({limit.why})")


def check_all(values: Mapping[str, int | float | None]) -> None:
    """:func:`check` every ``param: value`` (parameters without a row pass)."""
    for param, value in values.items():
        check(param, value)


__all__ = ["LIMITS", "Limit", "check", "check_all"]
