"""TFRecord record framing: the bytes around each serialized Example.

Data flow: Example bytes -> **framing** -> shard file (and back). A record is::

    uint64 length (little-endian) | uint32 masked CRC32C of those 8 bytes
    data (length bytes)           | uint32 masked CRC32C of the data

This module knows nothing about Examples or TensorFlow. Every CRC that is read is also
checked, and a length field is checked against the bytes left before anything is allocated.
"""

from __future__ import annotations

import gzip
import io
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from .errors import RecordError, TFRecordToolsError

HEADER_SIZE = 12  # uint64 length + uint32 masked crc
FOOTER_SIZE = 4
OVERHEAD = HEADER_SIZE + FOOTER_SIZE
COMPRESSIONS = ("none", "gzip", "zlib")

_MASK_DELTA = 0xA282EAD8
_LEN = struct.Struct("<Q")
_LEN_CRC = struct.Struct("<QI")
_CRC = struct.Struct("<I")


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


def __getattr__(name: str):
    # ``crc32c(data, value)``: the running (unmasked) CRC32C, for data in several parts
    if name == "crc32c":
        return _crc32c or _load_crc32c()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def frame_parts(data: bytes) -> tuple[bytes, bytes]:
    """The header and footer that go before and after ``data`` (no copy of ``data``)."""
    length = _LEN.pack(len(data))
    header = _LEN_CRC.pack(len(data), masked_crc32c(length))
    return header, _CRC.pack(masked_crc32c(data))


def frame(data: bytes) -> bytes:
    """One complete record."""
    header, footer = frame_parts(data)
    return header + data + footer


def normalize_compression(value: str | None) -> str:
    """``None``/``""``/``NONE``/``gzip``/``ZLIB`` -> ``none``/``gzip``/``zlib``."""
    name = (value or "none").strip().lower()
    if name not in COMPRESSIONS:
        raise TFRecordToolsError(
            f"unknown compression {value!r}: expected one of {', '.join(COMPRESSIONS)}"
        )
    return name


def tf_compression_type(compression: str) -> str:
    """The spelling ``tf.data.TFRecordDataset`` wants: ``""``, ``"GZIP"``, ``"ZLIB"``."""
    name = normalize_compression(compression)
    return "" if name == "none" else name.upper()


def open_compressed_writer(raw: BinaryIO, compression: str) -> BinaryIO:
    """Wrap a binary file so that what is written to it is compressed as TensorFlow reads it."""
    name = normalize_compression(compression)
    if name == "none":
        return raw
    if name == "gzip":
        # mtime=0 and no file name: the same input gives the same bytes (stable sha256).
        return gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0)  # type: ignore[return-value]
    return _ZlibWriter(raw)


class _ZlibWriter(io.RawIOBase):
    """A write-only file that zlib-compresses into another file (TF's ZLIB records)."""

    def __init__(self, raw: BinaryIO):
        self._raw = raw
        self._z = zlib.compressobj(6, zlib.DEFLATED, zlib.MAX_WBITS)

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:  # type: ignore[override]
        self._raw.write(self._z.compress(data))
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._raw.write(self._z.flush())
        super().close()


def open_reader(path: str | os.PathLike, compression: str = "none") -> BinaryIO:
    """Open a shard for reading its uncompressed record stream."""
    name = normalize_compression(compression)
    if name == "gzip":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    raw = open(path, "rb")  # noqa: SIM115 - returned to the caller
    if name == "zlib":
        return _ZlibReader(raw)  # type: ignore[return-value]
    return raw


class _ZlibReader(io.RawIOBase):
    """A read-only stream of a zlib-compressed file, decompressed in bounded chunks."""

    def __init__(self, raw: BinaryIO, chunk: int = 1 << 20):
        self._raw = raw
        self._z = zlib.decompressobj(zlib.MAX_WBITS)
        self._buf = b""
        self._chunk = chunk

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[override]
        while not self._buf:
            if self._z.eof:
                return 0
            compressed = self._z.unconsumed_tail or self._raw.read(self._chunk)
            if not compressed:
                if not self._z.eof:
                    raise EOFError("zlib stream ends before its end marker")
                return 0
            self._buf = self._z.decompress(compressed, self._chunk)
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n

    def close(self) -> None:
        self._raw.close()
        super().close()


@dataclass(frozen=True, slots=True)
class Record:
    """A record read back: its 0-based index, the offset of its first byte in the
    (uncompressed) stream, and its data."""

    index: int
    offset: int
    data: bytes

    @property
    def size(self) -> int:
        """The whole record's size including framing (what index files store)."""
        return len(self.data) + OVERHEAD


def iter_records(
    path: str | os.PathLike, compression: str = "none", *, check_crc: bool = True
) -> Iterator[Record]:
    """Yield every record of a shard, checking the length CRC and (by default) the data CRC.

    Raises :class:`RecordError` naming the file, record index and byte offset at the first
    damaged record. A length field larger than what is left in a plain file is an error
    before anything is allocated; for compressed streams data is read in bounded chunks.
    """
    name = normalize_compression(compression)
    total = os.path.getsize(path) if name == "none" else None
    with open_reader(path, name) as f:
        stream = f if name == "none" else io.BufferedReader(f, 1 << 20)
        index = offset = 0
        while True:
            header = _read_exact(stream, HEADER_SIZE)
            if not header:
                return
            if len(header) < HEADER_SIZE:
                raise RecordError(
                    str(path),
                    index,
                    offset,
                    "truncated header",
                    f"{len(header)} of {HEADER_SIZE} bytes",
                )
            length, length_crc = _LEN_CRC.unpack(header)
            if masked_crc32c(header[:8]) != length_crc:
                raise RecordError(str(path), index, offset, "length CRC mismatch")
            left = None if total is None else total - offset - HEADER_SIZE
            if left is not None and length + FOOTER_SIZE > left:
                raise RecordError(
                    str(path),
                    index,
                    offset,
                    "truncated record",
                    f"length field says {length} bytes, {max(left, 0)} left",
                )
            data = _read_exact(stream, length)
            footer = _read_exact(stream, FOOTER_SIZE)
            if len(data) < length or len(footer) < FOOTER_SIZE:
                raise RecordError(
                    str(path),
                    index,
                    offset,
                    "truncated record",
                    f"length field says {length} bytes",
                )
            if check_crc and masked_crc32c(data) != _CRC.unpack(footer)[0]:
                raise RecordError(str(path), index, offset, "data CRC mismatch")
            yield Record(index, offset, data)
            index += 1
            offset += length + OVERHEAD


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
