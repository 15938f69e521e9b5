"""Typed errors: every failure a user can cause names the file and, for TFRecords, the
record index and byte offset. The CLI catches :class:`TFRecordToolsError` at its boundary,
prints the message and exits non-zero."""

from __future__ import annotations

from .format.errors import Damage, FormatError, RecordError, TFRecordToolsError

__all__ = [
    "ConversionError",
    "Damage",
    "DownloadError",
    "FormatError",
    "IDXFormatError",
    "InvalidImageError",
    "RecordError",
    "TFRecordToolsError",
]


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
