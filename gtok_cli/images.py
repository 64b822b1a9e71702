"""Images on disk: paths that never leave their root, and real sizes with EXIF orientation applied; the
font pictures are labelled with (``show`` and ``stats --plots``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import IO

from PIL import Image, ImageFont, ImageOps

from gtok_cli.errors import InputError, UnsafeInputError

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


def safe_image_path(root: str | Path, file_name: str, *, file: str | None, record: str | None) -> Path:
    """``root / file_name``, refusing absolute names, ``..`` parts and symlinks that resolve outside root."""
    name = str(file_name)
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if (
        not name
        or PurePosixPath(name).is_absolute()
        or PureWindowsPath(name).is_absolute()
        or PureWindowsPath(name).drive
        or ".." in parts
        or "\x00" in name
    ):
        raise UnsafeInputError(
            "image file name escapes the images folder",
            file=file,
            record=record,
            field="file_name",
            expected="a relative path inside the images folder",
            found=name,
            reason="path.escape",
        )
    base = Path(root).resolve()
    path = (base / name).resolve()
    if path != base and base not in path.parents:
        raise UnsafeInputError(
            "image path resolves outside the images folder",
            file=file,
            record=record,
            field="file_name",
            expected=f"a path under {base}",
            found=str(path),
            reason="path.escape",
        )
    return path


def image_size(path: str | Path | IO[bytes]) -> tuple[int, int]:
    """``(width, height)`` as a viewer shows the image (a path, or an open binary file): EXIF orientation 5–8
    swaps the axes.

    Reads only the header and EXIF, not the pixels.
    """
    with Image.open(path) as im:
        w, h = im.size
        orientation = im.getexif().get(0x0112, 1)
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


def check_image_size(
    root: str | Path,
    file_name: str,
    width: int,
    height: int,
    *,
    file: str | None,
    record: str | None,
) -> Path:
    """The image's path, after checking it exists and its real size equals the annotation's."""
    path = safe_image_path(root, file_name, file=file, record=record)
    if not path.is_file():
        raise InputError(
            "image file not found",
            file=file,
            record=record,
            field="file_name",
            expected=f"a file under {root}",
            found=file_name,
            reason="image.missing",
        )
    try:
        real = image_size(path)
    except OSError as exc:
        raise InputError(
            f"cannot read image {path}: {exc}",
            file=file,
            record=record,
            field="file_name",
            reason="image.unreadable",
        ) from None
    if real != (width, height):
        raise InputError(
            f"image {path.name} size disagrees with the annotation (EXIF orientation applied)",
            file=file,
            record=record,
            field="width/height",
            expected=f"{width}x{height}",
            found=f"{real[0]}x{real[1]}",
            reason="image.size_mismatch",
        )
    return path


def open_image_rgb(path: str | Path) -> Image.Image:
    """The image as RGB with EXIF orientation applied (what annotations' coordinates refer to)."""
    with Image.open(path) as im:
        return ImageOps.exif_transpose(im).convert("RGB")


@lru_cache(maxsize=8)
def font(size: int) -> Font:
    """Pillow's bundled scalable font (the same on every machine with FreeType), else its bitmap font."""
    try:
        return ImageFont.load_default(size=size)
    except (ImportError, OSError):  # Pillow built without FreeType
        return ImageFont.load_default()
