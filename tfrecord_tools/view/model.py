"""What the viewer's pages show, as plain values: the overview, a record's entry, a
sample's statistics, verify's findings. ``data`` makes them (it alone reads the dataset);
``pages``, ``report`` and ``sheet`` render them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DamagedRecord",
    "Entry",
    "Overview",
    "RecordView",
    "Sample",
    "ShardInfo",
    "SplitInfo",
    "Verified",
]


@dataclass(frozen=True)
class ShardInfo:
    number: int
    name: str
    records: int | None  # None: not known without reading the shard
    bytes: int | None  # None: missing
    compression: str
    indexed: bool
    count_source: str | None  # manifest | dataset_info | index | None


@dataclass(frozen=True)
class SplitInfo:
    number: int
    name: str
    shards: tuple[ShardInfo, ...]

    @property
    def records(self) -> int | None:
        counts = [s.records for s in self.shards]
        return None if None in counts else sum(counts)  # type: ignore[arg-type]

    @property
    def bytes(self) -> int:
        return sum(s.bytes or 0 for s in self.shards)


@dataclass(frozen=True)
class Overview:
    """What the overview shows, from metadata only."""

    shown: str  # the PATH as messages show it
    name: str
    kind: str  # "tfrecord-tools dataset" | "TFDS folder" | "TFRecord files"
    splits: tuple[SplitInfo, ...]
    classes: tuple[str, ...] | None
    compression: tuple[str, ...]
    image_formats: dict[str, int] = field(default_factory=dict)
    image_kinds: dict[str, int] = field(default_factory=dict)
    image_shape: tuple[int, ...] | None = None
    orientations: dict[str, int] = field(default_factory=dict)
    converted_from: dict[str, int] = field(default_factory=dict)
    stored: dict[str, Any] = field(default_factory=dict)  # max_size, encoding
    skipped: tuple[tuple[str, str], ...] = ()
    extra: tuple[str, ...] = ()  # shard files the metadata does not list
    metadata_name: str | None = None  # dataset.json / dataset_info.json
    metadata: dict[str, Any] | None = None  # that file's JSON, as read
    notes: tuple[str, ...] = ()

    @property
    def records(self) -> int | None:
        counts = [s.records for s in self.splits]
        return None if None in counts else sum(counts)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Entry:
    """One record as a gallery tile shows it. ``damage`` set: the record could not be read
    (``offset`` is where it starts); then only the place is known."""

    split: int
    shard: int
    index: int
    offset: int | None
    size: int | None  # the whole record's bytes, framing included
    label: int | None = None
    klass: str | None = None  # the class as text: its name, else the label number
    filename: str | None = None
    image_format: str | None = None  # jpeg, png, raw, gif...; None: no image
    width: int | None = None
    height: int | None = None
    orientation: int = 1
    damage: str | None = None


@dataclass(frozen=True)
class RecordView:
    """One record in full: its entry and every feature as (key, type, values shown)."""

    entry: Entry
    shard_name: str
    split_name: str
    features: tuple[tuple[str, str, str], ...]
    count: int | None  # records in the shard, when known


@dataclass(frozen=True)
class Sample:
    """What a small sample of records shows (the overview's class and size charts)."""

    records: int
    shards: int
    classes: dict[str, int]
    sizes: dict[str, int]
    formats: dict[str, int]
    orientations: dict[str, int]
    damaged: int


@dataclass(frozen=True)
class DamagedRecord:
    split: int
    shard: int
    shard_name: str
    index: int
    offset: int | None
    kind: str
    detail: str


@dataclass(frozen=True)
class Verified:
    """verify's results as the pages show them. ``state``: idle, running, done, failed."""

    state: str
    records: tuple[DamagedRecord, ...] = ()
    problems: tuple[str, ...] = ()  # the other problems: sizes, sha256, indexes, files
    summary: str = ""
