"""Which records a gallery page shows: a page of a shard or a split, a seeded random
sample, or the records of one class found by reading forward from a place.

Data flow: query (numbers only) -> **gallery** (``data.Dataset.records`` / ``sample``) ->
a :class:`GalleryPage` the page renders. Reading is bounded: a class filter reads at most
:data:`SCAN_BUDGET` records per page and says where it stopped, so the next page goes on
from there; nothing here ever reads a whole dataset.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .data import Dataset
from .model import Entry

__all__ = ["PAGE_SIZES", "SCAN_BUDGET", "GalleryPage", "Query", "gallery"]

#: Records read at most for one page of a class filter.
SCAN_BUDGET = 4096
_CHUNK = 256
PAGE_SIZES = (24, 60, 100, 200)
DEFAULT_PAGE = 60
MAX_PAGE = 500


@dataclass(frozen=True)
class Query:
    """A gallery request; every field a number (or absent)."""

    split: int = 0
    shard: int | None = None
    klass: int | None = None  # a label number
    start: int = 0
    n: int = DEFAULT_PAGE
    seed: int | None = None  # a random sample with this seed
    stored: bool = False  # images as stored (no EXIF orientation applied)


@dataclass(frozen=True)
class GalleryPage:
    query: Query
    entries: list[Entry]
    total: int | None  # records in the shard or split, when known
    next_start: int | None = None
    prev_start: int | None = None
    scanned: int = 0  # records read to find ``entries`` (class filter)
    notes: list[str] = field(default_factory=list)


def gallery(dataset: Dataset, query: Query) -> GalleryPage:
    """The records of one gallery page (NotFound for numbers the dataset lacks)."""
    n = max(1, min(query.n, MAX_PAGE))
    total = _total(dataset, query)
    if query.seed is not None:
        entries, left_out = dataset.sample(query.split, query.shard, n, query.seed)
        notes = []
        if left_out:
            notes.append(
                f"{left_out} shard(s) left out of the sample: their record count is not known "
                "without reading them (`tfrecord-tools index` writes their .idx files)"
            )
        if query.klass is not None:
            entries = [e for e in entries if e.label == query.klass]
            notes.append("the class filter keeps the sampled records of that class")
        return GalleryPage(query, entries, total, notes=notes)
    if query.klass is None:
        entries = dataset.records(query.split, query.shard, query.start, n)
        more = len(entries) == n and (total is None or query.start + n < total)
        return GalleryPage(
            query,
            entries,
            total,
            next_start=query.start + n if more else None,
            prev_start=max(0, query.start - n) if query.start > 0 else None,
        )
    found: list[Entry] = []
    at = query.start
    scanned = 0
    ended = False
    while len(found) < n and scanned < SCAN_BUDGET:
        chunk = dataset.records(query.split, query.shard, at, _CHUNK)
        for entry in chunk:
            scanned += 1
            at += 1
            if entry.label == query.klass:
                found.append(entry)
                if len(found) == n:
                    break
        if len(chunk) < _CHUNK and len(found) < n:
            ended = True
            break
    return GalleryPage(
        query,
        found,
        total,
        next_start=None if ended else at,
        prev_start=0 if query.start > 0 else None,
        scanned=scanned,
    )


def _total(dataset: Dataset, query: Query) -> int | None:
    if query.shard is not None:
        return dataset.count(query.split, query.shard)
    counts = [dataset.count(query.split, k) for k in range(len(dataset.shards_of(query.split)))]
    return None if None in counts else sum(counts)  # type: ignore[arg-type]
