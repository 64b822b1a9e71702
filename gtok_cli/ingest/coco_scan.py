"""The COCO annotations array → per-image region entries, in one process or split over forked ones.

:func:`scan` checks each annotation of some slices of the array and files its entry under its image (the hot
loop: 860k times on COCO-train). :func:`scan_forked` runs it over contiguous shares of the slices at once:
this process takes the first share, forked children (``fork``: the input bytes and the image table are
shared copy-on-write, nothing is sent to them) take the rest and send their :class:`Scan` back pickled
(through memory mapped before the fork and shared with it; the pipe only says how long the pickle is). The
caller merges the scans in array order (:func:`gtok_cli.ingest.coco.merge_scans`), which gives exactly what
one scan of the whole array gives (a bad annotation rejects itself only, so the shares are independent).
"""

from __future__ import annotations

import mmap
import multiprocessing
import pickle
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from gtok_cli.errors import InputError
from gtok_cli.ingest.coco_validate import AnnotationContext, CocoImage, checked_region, fast_region
from gtok_cli.ingest.json_chunks import parse_slice
from gtok_cli.jsonio import dumps

Entry = tuple[int, int, Any]
"""(ann_id, category_id, region dict | its JSON bytes | None for a crowd region left out)."""


@dataclass(frozen=True)
class ScanContext:
    """What checking annotations needs: the file (named in errors) and what the images table gave."""

    file: str
    names: dict[int, str]
    images: dict[int, CocoImage]
    """The valid image entries."""
    known: frozenset[int]
    """Every image id in the file (valid or not): an annotation naming another is an orphan."""
    bad_before: frozenset[int]
    """Images already rejected by their own entry: their annotations are skipped."""
    include_crowd: bool
    as_bytes: bool
    fill_missing: tuple[tuple[str, Any], ...] = ()
    """Annotation keys the file's flavor leaves out, with the value they mean (LVIS: no ``iscrowd``)."""


@dataclass
class Scan:
    """What one pass over some of the array's slices found."""

    groups: dict[int, list[Entry]] = field(default_factory=dict)
    """Image id → its annotations' entries in array order (only images with entries)."""
    bad: dict[int, list[tuple[int | None, InputError]]] = field(default_factory=dict)
    """Image id → (ann id if an integer, error) of its bad annotations here, in array order (each left out,
    alone)."""
    skipped: dict[int, int] = field(default_factory=dict)
    """Image id (of a bad image entry) → its annotations here, not checked (they go with their image)."""
    orphans: list[tuple[int, Any]] = field(default_factory=list)
    """(index within this scan, annotation) for each annotation naming no image of the file."""
    seen: set[int] = field(default_factory=set)
    """Annotation ids of the entries."""
    duplicates: set[int] = field(default_factory=set)
    """Annotation ids that occur more than once among the entries."""
    crowd_images: set[int] = field(default_factory=set)
    """Images with an entry left out as crowd (the others need no filtering when their records are made)."""
    count: int = 0
    """Annotations read (entries, skipped and orphans)."""


def scan(chunks: Iterable[list[Any]], ctx: ScanContext) -> Scan:
    """Check every annotation of ``chunks`` (consecutive slices of the array)."""
    result = Scan()
    groups: dict[int, list[Entry]] = {}
    bad, orphans, seen, duplicates = result.bad, result.orphans, result.seen, result.duplicates
    crowd_images, skipped = result.crowd_images, result.skipped
    names, images, known = ctx.names, ctx.images, ctx.known
    skip = ctx.bad_before
    sizes = {iid: (image.width, image.height) for iid, image in images.items()}
    checking = AnnotationContext(ctx.file, names)
    keep_crowd, as_bytes = ctx.include_crowd, ctx.as_bytes
    fill = ctx.fill_missing
    base = 0
    for anns in chunks:
        for index, ann in enumerate(anns, base):
            try:
                iid = ann["image_id"]
                if type(iid) is not int or iid not in known:
                    raise KeyError(iid)
            except (KeyError, TypeError, IndexError):
                orphans.append((index, ann))
                continue
            if iid in skip:
                skipped[iid] = skipped.get(iid, 0) + 1
                continue
            for key, value in fill:
                ann.setdefault(key, value)
            width, height = sizes[iid]
            region = fast_region(ann, width, height, names)
            if region is None:
                try:
                    region = checked_region(ann, images[iid], checking)
                except InputError as err:
                    aid = ann.get("id")
                    bad.setdefault(iid, []).append((aid if type(aid) is int else None, err))
                    continue
            aid = region["ann_id"]
            if aid in seen:
                duplicates.add(aid)
            else:
                seen.add(aid)
            if region["iscrowd"] and not keep_crowd:
                entry: Entry = (aid, region["category_id"], None)
                crowd_images.add(iid)
            else:
                entry = (aid, region["category_id"], _compact(dumps(region)) if as_bytes else region)
            group = groups.get(iid)
            if group is None:
                groups[iid] = [entry]
            else:
                group.append(entry)
        base += len(anns)
    result.groups = groups
    result.count = base
    return result


def _compact(data: bytes) -> bytes:
    """A right-sized copy: orjson's output keeps a few kB of buffer each (10x the memory for 860k regions)."""
    return bytes(memoryview(data))


# ---------------------------------------------------------------------------------------------- forking


PARENT_WEIGHT = 1.0
"""The first run's share relative to each child's. A child also pickles its scan and the parent unpickles it
(~0.2 s each on a COCO-train-sized file, now through shared memory, not a pipe); 1.0 to 1.25 measured within
noise of each other, 1.0 a little ahead (2-core VM, 2026-11-29); 1.75 made the parent the laggard."""


def shares(
    bounds: Sequence[tuple[int, int]], n: int, first_weight: float = 1.0
) -> list[list[tuple[int, int]]]:
    """``bounds`` cut into ``n`` (or fewer) contiguous runs of about equal bytes, the first run
    ``first_weight`` times the others'."""
    total = sum(end - start for start, end in bounds)
    unit = total / (first_weight + n - 1)
    runs: list[list[tuple[int, int]]] = [[]]
    done = 0
    for start, end in bounds:
        if runs[-1] and done >= unit * (first_weight + len(runs) - 1):
            runs.append([])
        runs[-1].append((start, end))
        done += end - start
    return runs


def scan_forked(
    data: bytes, bounds: Sequence[tuple[int, int]], ctx: ScanContext, processes: int
) -> list[Scan]:
    """:func:`scan` of the slices ``bounds`` of ``data``, shared out over ``processes`` processes."""
    runs = shares(bounds, processes, PARENT_WEIGHT)
    fork = multiprocessing.get_context("fork")
    sys.stdout.flush()  # a child must not write out a copy of what this process had buffered
    sys.stderr.flush()
    children: list[tuple[Any, Connection, mmap.mmap]] = []
    try:
        for run in runs[1:]:
            receive, send = fork.Pipe(duplex=False)
            memory = mmap.mmap(-1, result_room(run))
            child = fork.Process(target=_child, args=(send, memory, data, run, ctx), daemon=True)
            child.start()
            send.close()
            children.append((child, receive, memory))
        scans = [scan((parse_slice(data, start, end) for start, end in runs[0]), ctx)]
        for child, receive, memory in children:
            try:
                message = receive.recv_bytes()
            except EOFError:
                raise RuntimeError(f"ingest worker {child.pid} died (exit code {child.exitcode})") from None
            if message.startswith(IN_MEMORY):
                with memoryview(memory) as view:
                    ok, value = pickle.loads(view[: int(message[len(IN_MEMORY) :])])
            else:
                ok, value = pickle.loads(message)
            if not ok:
                raise value
            scans.append(value)
        return scans
    finally:
        for child, receive, memory in children:
            receive.close()
            if child.is_alive():
                child.terminate()
            child.join()
            memory.close()


def result_room(run: Sequence[tuple[int, int]]) -> int:
    """Shared memory for the pickled scan of ``run``: twice its bytes (a scan's region JSON is about the size
    of its annotations). Virtual size only: the pages the pickle touches are all it costs; a pickle that does
    not fit goes through the pipe."""
    return 2 * sum(end - start for start, end in run) + (16 << 20)


IN_MEMORY = b"in-memory:"
"""A child's message when its pickle is in the shared memory: this prefix and the pickle's length."""


def _child(
    send: Connection, memory: mmap.mmap, data: bytes, run: list[tuple[int, int]], ctx: ScanContext
) -> None:
    try:
        result: tuple[bool, Any] = (True, scan((parse_slice(data, start, end) for start, end in run), ctx))
        try:  # straight into the shared memory: no copy through the pipe, none in the parent
            pickle.dump(result, memory, protocol=pickle.HIGHEST_PROTOCOL)
            send.send_bytes(IN_MEMORY + str(memory.tell()).encode())
            return
        except ValueError:  # it does not fit: through the pipe
            payload = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
    except BaseException as exc:  # every failure goes back to the parent, which re-raises it
        try:
            payload = pickle.dumps((False, exc), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # an exception that does not pickle
            payload = pickle.dumps((False, RuntimeError(repr(exc))))
    send.send_bytes(payload)
    send.close()
