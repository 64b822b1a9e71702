"""Load untrusted pickles that may hold plain data only (RefCOCO ``refs(*).p``).

A pickle is a program: its ``GLOBAL`` / ``STACK_GLOBAL`` / ``INST`` / ``OBJ`` / ``EXT*`` opcodes import any
callable and ``REDUCE`` calls it, so ``pickle.load`` on a downloaded file can run ``os.system``. Every one of
those opcodes resolves its callable through :meth:`pickle.Unpickler.find_class`; refusing every name there
leaves only the opcodes that build ``None``, bools, numbers, strings, bytes, lists, tuples, dicts and
sets, and without a callable there is nothing for ``REDUCE`` / ``BUILD`` to run. Persistent ids are refused by
:meth:`persistent_load`, out-of-band buffers by not passing any.

RefCOCO's files were written by Python 2 (protocol 2, byte strings as ``SHORT_BINSTRING``); ``latin1``
decoding maps each byte to one code point, the only lossless choice (the text is ASCII in practice).
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

from gtok_cli.errors import InputError, UnsafeInputError


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that builds plain containers and scalars and refuses every global."""

    def __init__(self, file: io.BufferedIOBase | io.BytesIO, *, name: str) -> None:
        super().__init__(file, encoding="latin1")
        self._name = name

    def find_class(self, module: str, name: str) -> Any:
        raise UnsafeInputError(
            "pickle refers to a global; only plain containers and scalars are allowed, nothing was executed",
            file=self._name,
            field="pickle global",
            expected="lists, dicts, strings and numbers only",
            found=f"{module}.{name}",
            reason="pickle.global",
        )

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafeInputError(
            "pickle uses a persistent id; only plain containers and scalars are allowed",
            file=self._name,
            field="pickle persistent id",
            expected="no persistent ids",
            found=pid,
            reason="pickle.persistent_id",
        )


def loads_plain(data: bytes, *, name: str) -> Any:
    """Unpickle ``data`` (plain data only); ``name`` is the file named in errors."""
    if not data:
        raise InputError("file is empty", file=name, reason="file.empty")
    try:
        return RestrictedUnpickler(io.BytesIO(data), name=name).load()
    except InputError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError,
            AttributeError, UnicodeDecodeError, MemoryError, RecursionError) as exc:  # fmt: skip
        # everything the unpickler raises on a truncated or corrupt stream
        raise InputError(
            f"not a valid pickle: {type(exc).__name__}: {exc}", file=name, reason="pickle.invalid"
        ) from None


def load_plain(path: str | Path) -> Any:
    """Read and unpickle a file with :func:`loads_plain`."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read file: {exc.strerror}", file=str(p), reason="file.unreadable") from None
    return loads_plain(data, name=str(p))


def load_plain_list(path: str | Path) -> list[Any]:
    """:func:`load_plain`, requiring a list at the top (the refer format's refs file)."""
    obj = load_plain(path)
    if not isinstance(obj, list):
        raise InputError(
            "pickle does not hold a list",
            file=str(path),
            field="(top level)",
            expected="a list of ref dicts",
            found=type(obj).__name__,
            reason="pickle.not_list",
        )
    return obj
