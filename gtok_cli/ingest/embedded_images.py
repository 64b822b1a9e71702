"""Images embedded in parquet rows (Hugging Face ``Image`` columns: ``{"bytes": …, "path": …}``).

:func:`embedded_bytes` takes the bytes out of a row's image cell; :func:`size_of_image_bytes` reads the size a
viewer shows (header and EXIF only, as :func:`gtok_cli.images.image_size`); :class:`ImageWriter` writes them
out under ``--extract-images DIR`` by the row's file name, once per name, never outside DIR and never over a
different file of that name.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gtok_cli.errors import InputError
from gtok_cli.images import image_size, safe_image_path
from gtok_cli.jsonio import atomic_path


def embedded_bytes(cell: Any) -> bytes | None:
    """The image bytes of an ``Image`` cell (a struct with ``bytes``), or None when the cell holds none."""
    if type(cell) is dict:
        data = cell.get("bytes")
        return data if type(data) is bytes and data else None
    return None


def size_of_image_bytes(data: bytes, *, file: str, record: str, field: str = "image") -> tuple[int, int]:
    """``(width, height)`` of an encoded image, EXIF orientation applied."""
    try:
        return image_size(io.BytesIO(data))
    except OSError as exc:  # PIL.UnidentifiedImageError is an OSError
        raise InputError(
            f"embedded image cannot be read: {exc}", file=file, record=record, field=field,
            reason="image.unreadable",
        ) from None  # fmt: skip


@dataclass
class ImageWriter:
    """Writes embedded images to ``root/<file_name>``; ``written`` counts the files written."""

    root: Path
    written: int = 0
    done: set[str] = field(default_factory=set)

    def write(self, file_name: str, data: bytes, *, file: str, record: str) -> None:
        if file_name in self.done:
            return
        path = safe_image_path(self.root, file_name, file=file, record=record)
        if path.exists():
            if path.read_bytes() != data:
                raise InputError(
                    "a different image of this name is already in --extract-images", file=file,
                    record=record, field="file_name", expected=f"{path} absent or identical", found=file_name,
                    reason="image.conflict",
                )  # fmt: skip
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(path) as tmp:
                tmp.write_bytes(data)
            self.written += 1
        self.done.add(file_name)
