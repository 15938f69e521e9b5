"""Conversion sources: where samples come from, one picklable object per shard.

Data flow: **source** (image folder listing, MNIST IDX arrays) -> per-shard source object
(``FolderShard``, ``MnistShard``) whose ``items()`` yields an :class:`Item` per sample (or per
block of small samples) -> the shard job writes them. The job knows nothing else about
sources.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = ["Item", "ShardSource"]


@dataclass(frozen=True, slots=True)
class Item:
    """One sample as a source yields it: a serialised Example (in parts, written back to back
    without copying), or the reason it was skipped; or a block of whole Examples of one
    format and kind (``records``), for sources of many small images."""

    example: tuple[bytes, ...] | None = None
    image_format: str = ""
    kind: str = ""
    converted_from: str | None = None
    source_bytes: int = 0  # of all the samples the item stands for
    skipped: tuple[str, str] | None = None  # (path, reason)
    records: Sequence[bytes] | None = None
    shape: tuple[int, int, int] | None = None  # (height, width, channels) of the image(s)
    orientation: int = 1  # EXIF orientation the record carries (the manifest counts them)
    resized: tuple[int, int] | None = None  # (bytes before, after) when --max-size re-encoded it

    @property
    def count(self) -> int:
        return 1 if self.records is None else len(self.records)


class ShardSource(Protocol):
    def __len__(self) -> int: ...  # samples in the shard

    def items(self) -> Iterator[Item]: ...
