"""The errors of the on-disk format: the package's base error, and a damaged record named by
file, record index and byte offset. (``tfrecord_tools.errors`` adds the conversion errors.)"""

from __future__ import annotations

import os
from dataclasses import dataclass


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
