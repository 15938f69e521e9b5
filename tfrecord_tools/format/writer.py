"""Shard writing: records -> one shard file plus its index, appearing atomically.

Data flow: Example bytes -> framing -> **shard writer** -> ``NAME-split.tfrecord-i-of-n``
and ``.idx``. The shard is written under a hidden temporary name in the same folder and
renamed only when complete, so a shard under its final name is always whole. The sha256
and size of the on-disk bytes are computed while writing, never by reading back.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

from .compression import normalize_compression, open_compressed_writer
from .framing import FOOTER, OVERHEAD, crc32c_function, header, mask
from .index import index_line, index_path
from .manifest import ShardEntry
from .naming import temp_path


class _HashingFile:
    """Counts and hashes what goes to the underlying file (the on-disk bytes)."""

    def __init__(self, fd: int):
        self.fd = fd
        self.sha256 = hashlib.sha256()
        self.size = 0
        self._discard = False

    def discard(self) -> None:
        """Drop every later write: the descriptor is about to close, and its number may be
        reused by another file."""
        self._discard = True

    def write(self, data) -> int:
        return self.writev((data,))

    def writev(self, parts) -> int:
        """Write all ``parts`` with as few system calls as possible, no copying."""
        if self._discard:
            return sum(len(p) for p in parts)
        for part in parts:
            self.sha256.update(part)
        total = sum(len(p) for p in parts)
        done = os.writev(self.fd, parts)
        while done < total:  # a short write: finish the rest
            rest = b"".join(parts)[done:]
            done += os.write(self.fd, rest)
        self.size += total
        return total

    def flush(self) -> None:
        pass


_SMALL_RECORD = 64 << 10  # records smaller than this are gathered ...
_FLUSH_AT = 256 << 10  # ... and written 256 KiB at a time (a 1 MiB buffer held ~3 MB of RSS)


class ShardWriter:
    """Write records to ``path`` atomically; ``commit()`` makes shard and index appear.

    Use as a context manager: leaving the block by an exception removes the temporary files.
    """

    def __init__(self, path: str | os.PathLike, compression: str = "none"):
        self.path = Path(path)
        self._tmp = temp_path(self.path)
        self._index_path = index_path(self.path)
        self._index_tmp = temp_path(self._index_path)
        self._compressed = normalize_compression(compression) != "none"
        self._fd = os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        self._closed = False
        try:
            self._hashing = _HashingFile(self._fd)
            self._out = open_compressed_writer(self._hashing, compression)  # type: ignore[arg-type]
            # the index goes to its own temporary file as records are written: memory stays
            # flat however many records a shard holds
            self._index = open(self._index_tmp, "w", encoding="ascii")  # noqa: SIM115
        except BaseException:
            self.abort()  # neither the shard's descriptor nor its temporary file is kept
            raise
        self._count = 0
        self._offset = 0
        self._pending = bytearray()

    def _flush(self) -> None:
        if self._pending:
            self._out.write(self._pending)
            self._pending = bytearray()

    def write(self, data: bytes) -> None:
        """Append one record (``data`` is a serialised Example)."""
        self.write_parts((data,))

    def write_parts(self, parts: tuple[bytes, ...] | list[bytes]) -> None:
        """Append one record whose data is the concatenation of ``parts`` (not copied)."""
        length = sum(len(p) for p in parts)
        crc32c, crc = crc32c_function(), 0
        for part in parts:
            crc = crc32c(part, crc)
        head = header(length)
        footer = FOOTER.pack(mask(crc))
        if length < _SMALL_RECORD:  # gather small records: one big write, not a syscall each
            pending = self._pending
            pending += head
            for part in parts:
                pending += part
            pending += footer
            if len(pending) >= _FLUSH_AT:
                self._flush()
        else:
            self._flush()
            if self._compressed:
                for piece in (head, *parts, footer):
                    self._out.write(piece)
            else:
                self._hashing.writev((head, *parts, footer))
        size = length + OVERHEAD
        self._add_index([index_line(self._offset, size)])
        self._offset += size

    def write_many(self, records: Sequence[bytes]) -> None:
        """Append many records (serialised Examples): the same as ``write`` on each, with
        the framing of small records done in one tight loop."""
        pending, offset = self._pending, self._offset
        crc32c, head = crc32c_function(), header
        index: list[str] = []
        for data in records:
            length = len(data)
            if length >= _SMALL_RECORD:
                self._add_index(index)
                index.clear()
                self._offset = offset
                self.write_parts((data,))
                pending, offset = self._pending, self._offset
                continue
            pending += head(length)
            pending += data
            pending += FOOTER.pack(mask(crc32c(data)))
            size = length + OVERHEAD
            index.append(index_line(offset, size))
            offset += size
            if len(pending) >= _FLUSH_AT:
                self._flush()
                pending = self._pending
        self._add_index(index)
        self._offset = offset

    def _add_index(self, lines: list[str]) -> None:
        self._index.writelines(lines)
        self._count += len(lines)

    @property
    def num_records(self) -> int:
        return self._count

    def commit(self) -> ShardEntry:
        """Finish the file, write the index, then rename the shard to its final name."""
        self._flush()
        if self._out is not self._hashing:
            self._out.close()  # flushes the compressor's tail into the hashing file
        self._close_fd()
        self._index.close()
        os.replace(self._index_tmp, self._index_path)
        os.replace(self._tmp, self.path)
        return ShardEntry(
            self.path.name, self._count, self._hashing.size, self._hashing.sha256.hexdigest()
        )

    def abort(self) -> None:
        """Drop the unfinished shard: both temporary files go even when closing them fails
        (a full disk fails the index's last flush), and nothing is written after this."""
        hashing = getattr(self, "_hashing", None)
        if hashing is not None:
            hashing.discard()  # a compressor closed later (or collected) writes nowhere
        try:
            with contextlib.suppress(OSError):
                self._close_fd()
            index = getattr(self, "_index", None)  # None: __init__ failed to open it
            if index is not None:
                with contextlib.suppress(OSError):
                    index.close()
        finally:
            for tmp in (self._tmp, self._index_tmp):
                with contextlib.suppress(OSError):  # never hide the error that got us here
                    tmp.unlink(missing_ok=True)

    def _close_fd(self) -> None:
        if not self._closed:
            self._closed = True  # closed once, even if close() reports an error
            os.close(self._fd)

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()
