"""Every error the package raises on bad input or bad options: the ground floor, it imports
nothing of the package. Each message names the file and, for TFRecords, the record index and
byte offset. The CLI catches :class:`TFRecordToolsError` at its boundary, prints the message
and exits non-zero."""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = [
    "ConversionError",
    "Damage",
    "DownloadError",
    "FormatError",
    "IDXFormatError",
    "InvalidImageError",
    "RecordError",
    "StorageError",
    "TFRecordToolsError",
]


class TFRecordToolsError(Exception):
    """Base of every error this package raises on bad input or bad options."""


class FormatError(TFRecordToolsError):
    """A file that breaks the format's contract (FORMAT.md): a manifest key of the wrong
    type, a malformed index line, an unfinished conversion. The message names the file."""


@dataclass(frozen=True, slots=True)
class Damage:
    """A damaged stretch of a shard's (uncompressed) record stream: ``[offset, end)`` holds no
    good record. The one type for damage, whoever finds it: the scanner reports it, verify
    lists it, repair drops it, a reader raises it (as :class:`RecordError`).

    ``index`` is the index the damaged record had (counting each damaged stretch as one
    record); ``offset`` is where that record starts and ``end`` where the next good record
    (or the end of the stream) starts (``end == offset`` when unknown).
    """

    index: int
    offset: int
    end: int
    kind: str
    detail: str = ""

    def error(self, path: str | os.PathLike) -> RecordError:
        return RecordError(os.fspath(path), self)

    def describe(self) -> str:
        extra = f": {self.detail}" if self.detail else ""
        return f"record {self.index} at byte {self.offset}: {self.kind}{extra}"


class RecordError(TFRecordToolsError):
    """A damaged TFRecord record: names the file, the 0-based record index and the byte
    offset where the record starts (in the uncompressed stream)."""

    def __init__(self, path: str, damage: Damage):
        self.path = path
        self.damage = damage
        self.index, self.offset, self.kind = damage.index, damage.offset, damage.kind
        self.detail = damage.detail
        super().__init__(f"{path}: {damage.describe()}")


class StorageError(TFRecordToolsError):
    """A storage operation that failed (server gone, access denied, back end missing); the
    message names the URL."""


class InvalidImageError(TFRecordToolsError):
    """An image file that would break a reader: empty, not an image, truncated, corrupt.

    ``reason`` is a short, stable phrase ("truncated JPEG", "PNG chunk CRC mismatch") used
    to count skipped files by reason; the message adds the path and the details.
    """

    def __init__(self, reason: str, path: str | None = None, detail: str | None = None):
        self.reason = reason
        self.path = path
        self.detail = detail
        where = f"{path}: " if path else ""
        extra = f" ({detail})" if detail else ""
        super().__init__(f"{where}{reason}{extra}")

    def with_path(self, path: str) -> InvalidImageError:
        """The same error, naming ``path``."""
        return InvalidImageError(self.reason, path, self.detail)


class IDXFormatError(TFRecordToolsError):
    """An MNIST IDX file whose header or size is not what the format requires."""


class DownloadError(TFRecordToolsError):
    """A download that failed (offline, HTTP error) or whose checksum did not match."""


class ConversionError(TFRecordToolsError):
    """A conversion that cannot go on: bad options, unusable source, --strict failures."""
