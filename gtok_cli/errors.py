"""The one error hierarchy of gtok.

Every error a user can cause is a :class:`GtokError`; the CLI turns it into one line on stderr and its
``exit_code`` (docs/spec.md#errors: 0 success, 1 verification failed, 2 bad usage or bad input), with no
traceback unless ``--debug`` is given. Library users catch these like any exception.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

EXIT_OK = 0
EXIT_VERIFY_FAILED = 1
EXIT_BAD_INPUT = 2


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class GtokError(Exception):
    """Base of every error gtok raises on purpose."""

    exit_code: int = EXIT_BAD_INPUT

    def one_line(self) -> str:
        return " ".join(str(self).split())


class UsageError(GtokError):
    """Bad options or arguments (exit 2)."""


@dataclass
class InputError(GtokError):
    """Bad input: names the file, the record, the field, what was expected and what was found (exit 2).

    ``reason`` is a short machine-readable tag (e.g. ``"bbox.nonpositive"``) used in rejects files and
    summaries; the message is the human line.
    """

    message: str
    file: str | None = None
    record: str | None = None
    field: str | None = None
    expected: str | None = None
    found: Any = None
    reason: str = "invalid"

    def __post_init__(self) -> None:
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = []
        if self.file is not None:
            where.append(str(self.file))
        if self.record is not None:
            where.append(f"record {self.record}")
        if self.field is not None:
            where.append(f"field {self.field}")
        text = ": ".join([", ".join(where), self.message]) if where else self.message
        if self.expected is not None:
            text += f" (expected {self.expected}, found {_short(self.found)})"
        return " ".join(text.split())

    def to_json(self) -> dict[str, Any]:
        """The form written to rejects files."""
        return {
            "file": self.file,
            "record": self.record,
            "field": self.field,
            "reason": self.reason,
            "message": str(self),
        }


class UnsafeInputError(InputError):
    """Input that tried to do something it must not (pickle globals, XML entities, path escape)."""


class WriteError(GtokError):
    """An output that cannot be written (full disk, read-only folder, a file where a folder is needed).

    Exit 2. Names the path the user gave and the OS's reason; the writer has removed its temp file.
    """

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"cannot write {path}: {reason}")
        self.path = path
        self.reason = reason


class DecodeError(GtokError):
    """A spatial span that cannot be decoded (malformed, out of vocabulary)."""


class VerificationFailed(GtokError):
    """`gtok verify` found something wrong (exit 1)."""

    exit_code = EXIT_VERIFY_FAILED
