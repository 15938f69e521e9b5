"""TFRecord record framing: the bytes around each serialized Example.

Data flow: Example bytes -> **framing** -> shard file (and back). A record is::

    uint64 length (little-endian) | uint32 masked CRC32C of those 8 bytes
    data (length bytes)           | uint32 masked CRC32C of the data

The one owner of that layout: the writer, the scanner, the readers and the compression
sniffer all take the header struct, the CRC and the checks from here. This module knows
nothing about Examples or TensorFlow. Every CRC that is read is also checked, and a length
field is checked against the bytes left before anything is allocated.
"""

from __future__ import annotations

import functools
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import starmap
from typing import BinaryIO

from ..errors import Damage, RecordError

HEADER_SIZE = 12  # uint64 length + uint32 masked crc
FOOTER_SIZE = 4
OVERHEAD = HEADER_SIZE + FOOTER_SIZE

_MASK_DELTA = 0xA282EAD8
LENGTH = struct.Struct("<Q")
#: A record header: the length and the masked CRC32C of its 8 bytes.
HEADER = struct.Struct("<QI")
#: The data's masked CRC32C after the data.
FOOTER = struct.Struct("<I")


def mask(crc: int) -> int:
    """TFRecord's masking of a CRC32C: rotate right by 15 bits, add a constant."""
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


_crc32c = None  # crc32c.crc32c once loaded


def _load_crc32c():
    """The ``crc32c`` package's function, imported on first use: its ``__init__`` looks up
    its own version in the installed metadata (40 ms here, 70-90 ms in a fresh install),
    which commands that check no CRC (``count`` from a manifest or ``.idx`` files) need not
    pay."""
    global _crc32c
    import crc32c as package

    _crc32c = package.crc32c
    return _crc32c


def masked_crc32c(data: bytes | memoryview) -> int:
    """TFRecord's masked CRC32C of ``data``."""
    return mask((_crc32c or _load_crc32c())(data))


def crc32c_function():
    """``crc32c(data, value=0)``: the running (unmasked) CRC32C, for data in several parts."""
    return _crc32c or _load_crc32c()


@functools.lru_cache(maxsize=8192)  # small records' lengths repeat
def header(length: int) -> bytes:
    """A record's length field and its masked CRC."""
    return HEADER.pack(length, masked_crc32c(LENGTH.pack(length)))


def header_ok(head: bytes | memoryview) -> bool:
    """Do these 12 bytes carry a length whose masked CRC matches?"""
    return len(head) >= HEADER_SIZE and masked_crc32c(head[:8]) == HEADER.unpack_from(head)[1]


def frame_parts(data: bytes) -> tuple[bytes, bytes]:
    """The header and footer that go before and after ``data`` (no copy of ``data``)."""
    return header(len(data)), FOOTER.pack(masked_crc32c(data))


def frame(data: bytes) -> bytes:
    """One complete record."""
    header, footer = frame_parts(data)
    return header + data + footer


@dataclass(frozen=True, slots=True)
class Record:
    """A record read back: its 0-based index, the offset of its first byte in the
    (uncompressed) stream, and its data."""

    index: int
    offset: int
    data: bytes
    length: int = -1  # of the data; -1: len(data)

    @property
    def size(self) -> int:
        """The whole record's size including framing (what index files store)."""
        return (len(self.data) if self.length < 0 else self.length) + OVERHEAD


def iter_records(
    path: str | os.PathLike,
    compression: str = "none",
    *,
    check_crc: bool = True,
    size: int | None = None,
) -> Iterator[Record]:
    """Yield every record of a shard, local or at a URL, read once front to back
    (``storage.streams``: 8 MiB ranged reads for a URL), checking the length CRC and (by
    default) the data CRC. The one record reader of the package: every tool and reader that
    walks a shard in Python goes through here or the scanner built on the same framing.

    Raises :class:`RecordError` naming the file, record index and byte offset at the first
    damaged record. A length field larger than what is left in a plain file is an error
    before anything is allocated; compressed streams are read in bounded chunks. ``size``:
    the file's size when a listing gave it (saves a request for a URL).
    """
    from ..storage import Location
    from .compression import MAX_INFLATE_RATIO, normalize_compression, open_source, reader_of

    name = normalize_compression(compression)
    loc = Location(path)
    with loc.open_stream(size=size) as raw:
        # a length field is checked against what is left: of the file, or of the most a
        # compressed file can inflate to (a bomb's length field allocates nothing)
        total = raw.size * (1 if name == "none" else MAX_INFLATE_RATIO)  # type: ignore[attr-defined]
        with reader_of(open_source(raw, name)) as stream:
            frames = read_frames(stream, loc.shown, size=total, check_crc=check_crc)
            yield from starmap(Record, frames)


def read_frames(
    stream: BinaryIO,
    where: str | os.PathLike,
    *,
    index: int = 0,
    offset: int = 0,
    size: int | None = None,
    check_crc: bool = True,
) -> Iterator[tuple[int, int, bytes]]:
    """(index, offset, data) of each record of an open uncompressed record stream
    (``compression.reader_of`` / ``open_reader``: damage in a compressed stream comes as
    ``EOFError(kind, detail)``), every length CRC and (by default) data CRC checked;
    :class:`RecordError` naming ``where``, the record index and byte offset at the first
    damage. The one record parser: :func:`iter_records` for local shards, the Python
    reader of remote ones (``read/stream.py``). ``index``/``offset``: of the first record
    (a run read from the middle of a shard); ``size``: the stream's byte count, when known,
    which a length field is checked against before anything is allocated."""
    used = 0  # bytes of the stream read so far

    def damage(kind: str, detail: str = "") -> RecordError:
        return Damage(index, offset, offset, kind, detail).error(where)

    while True:
        try:
            head = _read_exact(stream, HEADER_SIZE)
            if not head:
                return
            if len(head) < HEADER_SIZE:
                raise damage("truncated header", f"{len(head)} of {HEADER_SIZE} bytes")
            length, length_crc = HEADER.unpack(head)
            if masked_crc32c(head[:8]) != length_crc:
                raise damage("length CRC mismatch")
            left = None if size is None else size - used - HEADER_SIZE
            if left is not None and length + FOOTER_SIZE > left:
                raise damage(
                    "truncated record", f"length field says {length} bytes, {max(left, 0)} left"
                )
            data = _read_exact(stream, length)
            footer = _read_exact(stream, FOOTER_SIZE)
        except EOFError as e:  # a compressed stream that ends early or is corrupt
            raise damage(*e.args) from None
        if len(data) < length or len(footer) < FOOTER_SIZE:
            raise damage("truncated record", f"length field says {length} bytes")
        if check_crc and masked_crc32c(data) != FOOTER.unpack(footer)[0]:
            raise damage("data CRC mismatch")
        yield index, offset, data
        index += 1
        offset += length + OVERHEAD
        used += length + OVERHEAD


def iter_headers(path: str | os.PathLike, compression: str = "none") -> Iterator[Record]:
    """Every record's place from its header alone (``data`` empty); raises
    :class:`RecordError` at the first damaged header. Plain files: 12 bytes read per record,
    the payload skipped (no data CRC). Compressed files must be decompressed, but payloads
    are not kept or checksummed."""
    from .. import storage
    from .compression import normalize_compression

    if normalize_compression(compression) != "none" or storage.is_url(path):
        for record in iter_records(path, compression, check_crc=False):
            yield Record(record.index, record.offset, b"", len(record.data))
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        index = pos = 0
        while pos < size:
            head = os.pread(fd, HEADER_SIZE, pos)
            problem: tuple[str, str] | None = None
            if len(head) < HEADER_SIZE:
                problem = (
                    "truncated header",
                    f"{len(head)} of {HEADER_SIZE} bytes at the end of the file",
                )
            else:
                length, crc = HEADER.unpack(head)
                left = size - pos - HEADER_SIZE
                if masked_crc32c(head[:8]) != crc:
                    problem = ("length CRC mismatch", "")
                elif length + FOOTER_SIZE > left:
                    problem = ("truncated record", f"length field says {length} bytes, {left} left")
            if problem is not None:
                raise Damage(index, pos, pos, *problem).error(path)
            yield Record(index, pos, b"", length)
            index += 1
            pos += length + OVERHEAD
    finally:
        os.close(fd)


def _read_exact(stream: BinaryIO, n: int, chunk: int = 1 << 24) -> bytes:
    """Read ``n`` bytes or fewer at the end of the stream; allocate in bounded chunks so a
    corrupt length in a compressed stream cannot ask for gigabytes at once."""
    if n <= chunk:
        return stream.read(n)
    parts = []
    while n > 0:
        part = stream.read(min(n, chunk))
        if not part:
            break
        parts.append(part)
        n -= len(part)
    return b"".join(parts)
