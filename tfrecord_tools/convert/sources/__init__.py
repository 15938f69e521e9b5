"""Conversion sources: where samples come from, one picklable object per shard.

Data flow: **source** (image folder listing, MNIST IDX arrays) -> per-shard source object
(``FolderShard``, ``MnistShard``) whose ``items()`` yields an :class:`Item` per sample (or per
block of small samples) -> the shard job writes them. The job knows nothing else about
sources.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ...errors import ConversionError

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

    @classmethod
    def of_image(
        cls, example: tuple[bytes, ...], info: Any, source_bytes: int, stored: int, resized: bool
    ) -> Item:
        """The item of one image file stored as ``info`` (an ``images.probe.ImageInfo``)
        says; ``stored``: the bytes stored for it, counted when ``resized``."""
        return cls(
            example,
            info.format,
            info.kind,
            info.converted_from,
            source_bytes,
            shape=(info.height, info.width, info.channels),
            orientation=info.orientation,
            resized=(source_bytes, stored) if resized else None,
        )

    @classmethod
    def skip(cls, where: str, rel: str, reason: str, message: str, size: int, strict: bool) -> Item:
        """A file left out (``where``: it as messages show it); ``strict``: an error instead."""
        if strict:
            raise ConversionError(f"{where}: {reason} (--strict): {message}")
        return cls(skipped=(rel, reason), source_bytes=size)


class ShardSource(Protocol):
    def __len__(self) -> int: ...  # samples in the shard

    def items(self) -> Iterator[Item]: ...
