"""Records entering a stage (masks, export): one check of what the stages read, and of record ids.

Ingest writes records it has checked (``records.check_box_xyxy``); a stage that reads records may be given
a hand-edited or foreign file, so it checks again, without changing a byte of a record it accepts:

- ``id`` a non-empty string, unique in the run (``id.duplicate`` names the line that had it first);
- ``image`` ``{"file": non-empty str, "width": int > 0, "height": int > 0}``;
- ``regions`` a list of objects, each ``bbox`` 4 numbers (not strings, not booleans), finite, corners in
  order (``x1 <= x2``, ``y1 <= y2``: the codecs' rule), touching the image and at most one image width
  (height) beyond its edges; a ``polyline``, when present, even-length numbers under the same bounds.
  Boxes slightly outside the image are kept: the codecs clamp them to the image edge. Anything further
  (``1e308``, a box in other units) is an error.

Each failure is an :class:`~gtok_cli.errors.InputError` naming the file, the line, the record and the field,
with a ``reason`` tag for rejects files (``--on-error skip``). Use one :class:`RecordEntry` per run; it
remembers the ids it accepted. The same input file given twice is
:func:`gtok_cli.paths.check_distinct_inputs`'s.
"""

from __future__ import annotations

import math
from typing import Any, NoReturn

from gtok_cli.errors import InputError

MARGIN = 1.0
"""How far (in image widths/heights) a coordinate may lie beyond the image's edges."""


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


class RecordEntry:
    """The entry check of one run: ``check(record, file=..., lineno=...)`` raises :class:`InputError`.

    A record that fails is not remembered, so under ``--on-error skip`` a later record with its id is
    kept (the rejected one was never written).
    """

    def __init__(self) -> None:
        self.first_seen: dict[str, tuple[str, int]] = {}

    def check(self, record: Any, *, file: str, lineno: int) -> None:
        """Raise :class:`InputError` unless ``record`` (line ``lineno`` of ``file``) may enter the stage."""
        if not _plainly_valid(record):
            _explain(record, file, lineno)  # raises, naming the field, unless the record is valid after all
        rid: str = record["id"]
        first = self.first_seen.get(rid)
        if first is not None:
            at = f"line {first[1]}" if first[0] == file else f"line {first[1]} of {first[0]}"
            where = _Where(file, lineno, record)
            where.fail("id", f"repeats the id of {at}", "ids unique in the run", rid, "id.duplicate")
        self.first_seen[rid] = (file, lineno)


_NUMBER = (int, float)


def _plainly_valid(record: Any) -> bool:
    """The fast path (a few µs): True only for records :func:`_explain` accepts; False sends the record
    there (also for what this path does not look at, e.g. a polyline, or a float subclass)."""
    try:
        rid, image, regions = record["id"], record["image"], record["regions"]
        width, height, file = image["width"], image["height"], image["file"]
        if type(rid) is not str or not rid or type(file) is not str or not file or type(regions) is not list:
            return False
        if type(width) is not int or type(height) is not int or width <= 0 or height <= 0:
            return False
        bx, by = MARGIN * width, MARGIN * height
        for region in regions:
            box = region["bbox"]
            if type(box) is not list or region.get("polyline") is not None:
                return False
            x1, y1, x2, y2 = box
            if not (
                type(x1) in _NUMBER and type(y1) in _NUMBER and type(x2) in _NUMBER and type(y2) in _NUMBER
            ):
                return False
            # NaN fails every comparison, inf the bounds
            if not (-bx <= x1 <= x2 <= width + bx and -by <= y1 <= y2 <= height + by):
                return False
            if x1 > width or y1 > height or x2 < 0 or y2 < 0:
                return False
    except (KeyError, TypeError, ValueError):
        return False
    return True


def _explain(record: Any, file: str, lineno: int) -> None:
    """Every entry rule, one at a time: raise :class:`InputError` for the first that ``record`` breaks."""
    where = _Where(file, lineno, record)
    if not isinstance(record, dict):
        where.fail("record", "is not a JSON object", "a gtok record", record, "record.type")
    rid = record.get("id")
    if not isinstance(rid, str) or not rid:
        where.fail("id", "has no record id", "a non-empty string", rid, "id.missing")
    width, height = _check_image(record.get("image"), where)
    regions = record.get("regions")
    if not isinstance(regions, list):
        where.fail("regions", "has no regions list", "a list", regions, "record.regions")
    for k, region in enumerate(regions):
        if not isinstance(region, dict):
            where.fail(f"regions[{k}]", "region is not an object", "an object", region, "region.type")
        _check_box(region.get("bbox"), width, height, where=where, field=f"regions[{k}].bbox")
        polyline = region.get("polyline")
        if polyline is not None:
            _check_polyline(polyline, width, height, where, f"regions[{k}].polyline")


class _Where:
    """File, line and record of the record being checked: builds its one-line errors."""

    def __init__(self, file: str, lineno: int, record: Any) -> None:
        self.file, self.lineno = file, lineno
        rid = record.get("id") if isinstance(record, dict) else None
        self.record = rid if isinstance(rid, str) and rid else None

    def fail(self, field: str, message: str, expected: str, found: Any, reason: str) -> NoReturn:
        raise InputError(
            f"line {self.lineno}: {message}",
            file=self.file,
            record=self.record,
            field=field,
            expected=expected,
            found=found,
            reason=reason,
        )


def _check_image(image: Any, where: _Where) -> tuple[int, int]:
    expected = '{"file": str, "width": int > 0, "height": int > 0}'
    if not isinstance(image, dict):
        where.fail("image", "record has no usable image", expected, image, "record.image")
    file = image.get("file")
    if not isinstance(file, str) or not file:
        where.fail("image.file", "image has no file name", "a non-empty string", file, "record.image")
    size = []
    for key in ("width", "height"):
        v = image.get(key)
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            where.fail(f"image.{key}", f"image {key} is not a positive integer", "int > 0", v, "record.image")
        size.append(v)
    return size[0], size[1]


def _check_coords(coords: list[Any], width: int, height: int, where: _Where, field: str, what: str) -> None:
    """Numbers, finite, x within [-margin·W, (1+margin)·W] and y likewise (x at even, y at odd indices)."""
    tag = "bbox" if what == "box" else what
    for v in coords:
        if not _is_number(v):
            where.fail(field, f"{what} coordinate is not a number", "numbers", coords, f"{tag}.type")
    for v in coords:
        if not math.isfinite(v):
            where.fail(
                field, f"{what} has a non-finite coordinate", "finite numbers", coords, f"{tag}.nonfinite"
            )
    xs, ys = coords[0::2], coords[1::2]
    bx, by = MARGIN * width, MARGIN * height
    if min(xs) < -bx or max(xs) > width + bx or min(ys) < -by or max(ys) > height + by:
        where.fail(
            field,
            f"{what} lies far outside the {width}x{height} image",
            f"x in {-bx:g}..{width + bx:g}, y in {-by:g}..{height + by:g}",
            coords,
            f"{tag}.outside",
        )


def _check_box(box: Any, width: int, height: int, *, where: _Where, field: str) -> None:
    """A region's xyxy pixel box as a stage reads it (see the module docstring); never changed."""
    if not isinstance(box, list) or len(box) != 4:
        where.fail(field, "box must have 4 numbers", "[x1, y1, x2, y2]", box, "bbox.shape")
    _check_coords(box, width, height, where, field, "box")
    x1, y1, x2, y2 = box
    if x2 < x1 or y2 < y1:
        where.fail(field, "box corners are out of order", "x1 <= x2 and y1 <= y2", box, "bbox.order")
    if x1 > width or y1 > height or x2 < 0 or y2 < 0:
        where.fail(
            field, "box lies outside the image", f"touching 0..{width} x 0..{height}", box, "bbox.outside"
        )


def _check_polyline(line: Any, width: int, height: int, where: _Where, field: str) -> None:
    if not isinstance(line, list) or len(line) < 4 or len(line) % 2:
        where.fail(field, "polyline must be x, y pairs", "[x1, y1, x2, y2, ...]", line, "polyline.shape")
    _check_coords(line, width, height, where, field, "polyline")
