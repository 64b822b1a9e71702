"""Parquet files read with pyarrow a batch of rows at a time (memory: one batch, not the file).

The Hugging Face copies of grounding datasets (lmms-lab/RefCOCO, jxu124/refcoco, zzliang/GRIT) are parquet.
:func:`open_parquet` opens one file and checks its columns; a file that cannot be opened (not parquet,
truncated: its footer is gone) or lacks a column is an InputError naming the file, which the readers turn
into a rejected ``file`` item (the other files still count). :func:`iter_rows` yields each row as a plain
dict (``RecordBatch.to_pylist``) with its 0-based index in the file; a file that breaks in the middle (a
damaged page) stops the run: rows before it were already written and cannot be un-counted.

pyarrow is the ``[parquet]`` extra: :func:`require_pyarrow` turns its absence into the install line.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from gtok_cli.errors import InputError
from gtok_cli.extras import require

BATCH_ROWS = 256
"""Rows per batch: small enough that a batch of embedded images (lmms-lab: ~200 kB each) stays small."""


def require_pyarrow(feature: str) -> None:
    require("pyarrow", "pyarrow.parquet", feature=feature)


def open_parquet(path: str | Path, required: Iterable[str]) -> Any:
    """A ``pyarrow.parquet.ParquetFile`` holding every column in ``required``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    file = str(path)
    if not Path(file).is_file():
        raise InputError("file not found", file=file, reason="file.missing")
    try:
        pf = pq.ParquetFile(file)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(
            f"not a readable parquet file (truncated or damaged?): {exc}", file=file, reason="parquet.invalid"
        ) from None
    names = set(pf.schema_arrow.names)
    missing = [c for c in required if c not in names]
    if missing:
        raise InputError(
            "parquet file lacks a column this layout needs",
            file=file,
            field=missing[0],
            expected="columns " + ", ".join(required),
            found="columns " + ", ".join(pf.schema_arrow.names),
            reason="parquet.column_missing",
        )
    return pf


def columns_present(pf: Any, wanted: Sequence[str]) -> list[str]:
    """The columns of ``wanted`` the file has (optional columns are read only when there)."""
    names = set(pf.schema_arrow.names)
    return [c for c in wanted if c in names]


def iter_rows(pf: Any, columns: Sequence[str], file: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(row index, row)`` for every row, read ``BATCH_ROWS`` at a time, only ``columns``."""
    import pyarrow as pa

    index = 0
    batches = pf.iter_batches(batch_size=BATCH_ROWS, columns=list(columns))
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except (pa.ArrowException, OSError) as exc:
            raise InputError(
                f"parquet data damaged after row {index}: {exc}", file=file, record=f"row {index}",
                reason="parquet.invalid",
            ) from None  # fmt: skip
        for row in batch.to_pylist():
            yield index, row
            index += 1
