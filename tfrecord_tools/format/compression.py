"""Shard compression (FORMAT.md: whole-file GZIP or ZLIB, as ``tf.io.TFRecordOptions``
names them): the names, detection from a file's first bytes, and the codecs both ways.

Data flow: shard file -> **compression** (plain read, or gunzip / inflate) -> framing / scan,
and framed records -> **compression** -> shard file. The read side is one decompressor for
every reader: the sources hand every on-disk byte to an optional hook once (for a sha256),
and a damaged compressed stream does not raise: it ends where the damage is, with
``problem`` set, after delivering everything decompressed before it (what ``repair`` needs).
:func:`open_reader` wraps the same source for readers that want an error there instead.
"""

from __future__ import annotations

import gzip
import io
import os
import zlib
from collections.abc import Callable
from typing import Any, BinaryIO

from ..errors import TFRecordToolsError
from .framing import HEADER_SIZE, header_ok

__all__ = [
    "COMPRESSIONS",
    "MAX_INFLATE_RATIO",
    "InflateSource",
    "PlainSource",
    "RawHook",
    "detect_compression",
    "normalize_compression",
    "open_compressed_writer",
    "open_reader",
    "open_source",
    "sniff_compression",
    "tf_compression_type",
]

COMPRESSIONS = ("none", "gzip", "zlib")
_GZIP_MAGIC = b"\x1f\x8b"
#: Deflate cannot expand data by more than 1032:1, so a compressed file of N bytes holds at
#: most 1032 * N bytes: the bound a length field is checked against in compressed streams.
MAX_INFLATE_RATIO = 1032
_CHUNK = 1 << 20

RawHook = Callable[[memoryview], object]


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


def detect_compression(path: str | os.PathLike) -> str:
    """``none``, ``gzip`` or ``zlib`` from a shard's first bytes (see :func:`sniff_compression`)."""
    with open(path, "rb") as f:
        return sniff_compression(f.read(HEADER_SIZE))


def sniff_compression(head: bytes) -> str:
    """``none``, ``gzip`` or ``zlib`` from a shard's first 12 bytes.

    A valid plain record header wins (a plain file can start with bytes that look like a
    zlib header: ``78 9c`` is also the length 40056); then the gzip magic ``1f 8b``, then a
    zlib header (deflate method, window <= 32K, header checksum). Anything else (an empty
    or damaged file) is treated as plain: the reader then says what is wrong.
    """
    if header_ok(head):
        return "none"
    if head[:2] == _GZIP_MAGIC:
        return "gzip"
    if len(head) >= 2 and _is_zlib_header(head[0], head[1]):
        return "zlib"
    return "none"


#: How many first bytes :func:`sniff_tfrecord` wants: enough to inflate a compressed
#: shard's first record header.
SNIFF_BYTES = 4096


def sniff_tfrecord(head: bytes) -> str | None:
    """The compression of a file whose first bytes are ``head`` (up to ``SNIFF_BYTES``) when
    they are the start of a TFRecord file, by its framing, not its name: a record header
    whose length CRC matches, plain or inflated from a gzip / zlib stream; None for anything
    else (an image, a text file, an empty file)."""
    if header_ok(head[:HEADER_SIZE]):
        return "none"
    for name, wbits in (("gzip", 31), ("zlib", 15)):
        if name == "gzip" and head[:2] != _GZIP_MAGIC:
            continue
        if name == "zlib" and not (len(head) >= 2 and _is_zlib_header(head[0], head[1])):
            continue
        try:
            inflated = zlib.decompressobj(wbits).decompress(head, HEADER_SIZE)
        except zlib.error:
            return None
        return name if header_ok(inflated[:HEADER_SIZE]) else None
    return None


def _is_zlib_header(cmf: int, flg: int) -> bool:
    """RFC 1950: deflate method, window <= 32K, and a header checksum."""
    return (cmf & 0x0F) == 8 and (cmf >> 4) <= 7 and ((cmf << 8) | flg) % 31 == 0


class PlainSource:
    """A plain file's bytes, read straight into the caller's buffer."""

    def __init__(self, f: BinaryIO, on_raw: RawHook | None):
        self._f = f
        self._on_raw = on_raw
        self.problem: tuple[str, str] | None = None

    def readinto(self, view: memoryview) -> int:
        n = self._f.readinto(view)  # type: ignore[attr-defined]
        if n and self._on_raw is not None:
            self._on_raw(view[:n])
        return n or 0


class InflateSource:
    """The decompressed bytes of a gzip (any number of members) or zlib file.

    A stream that ends early or holds corrupt deflate data simply ends there, with
    ``problem`` set: everything decompressed before that point is still delivered.
    """

    def __init__(self, f: BinaryIO, compression: str, on_raw: RawHook | None, chunk: int):
        self._f = f
        self._gzip = compression == "gzip"
        self._wbits = 16 + zlib.MAX_WBITS if self._gzip else zlib.MAX_WBITS
        self._d = zlib.decompressobj(self._wbits)
        self._on_raw = on_raw
        self._chunk = chunk
        self._input = b""
        self._pending = b""
        self._pos = 0
        self._done = False
        self.problem: tuple[str, str] | None = None

    def readinto(self, view: memoryview) -> int:
        while self._pos >= len(self._pending):
            if self._done:
                return 0
            self._pending, self._pos = self._inflate(len(view)), 0
        n = min(len(view), len(self._pending) - self._pos)
        view[:n] = memoryview(self._pending)[self._pos : self._pos + n]
        self._pos += n
        return n

    def _read_raw(self) -> bytes:
        data = self._f.read(self._chunk)
        if data and self._on_raw is not None:
            self._on_raw(memoryview(data))
        return data

    def _inflate(self, max_out: int) -> bytes:
        while True:
            if self._d.eof:
                rest = self._d.unused_data or self._read_raw()
                if not rest:
                    self._done = True
                    return b""
                if not self._gzip:
                    return self._fail("trailing bytes after the zlib stream", "")
                self._d = zlib.decompressobj(self._wbits)  # the next gzip member
                self._input = rest
            data = self._input or self._d.unconsumed_tail or self._read_raw()
            self._input = b""
            if not data:
                what = "gzip" if self._gzip else "zlib"
                return self._fail(
                    "truncated compressed stream", f"the {what} stream ends before its end marker"
                )
            before = self._d.copy()
            try:
                out = self._d.decompress(data, max_out)
            except zlib.error as e:
                self._fail("corrupt compressed data", str(e))
                return _salvage(before, data)
            if out:
                return out

    def _fail(self, kind: str, detail: str) -> bytes:
        self.problem = (kind, detail)
        self._done = True
        return b""


def _salvage(d, data: bytes, step: int = 1024) -> bytes:
    """What ``d`` decompresses from ``data`` before the error that a single call lost
    (zlib returns nothing from a call that fails, even when only the trailer's checksum is
    wrong): feed it in small steps, byte by byte near the error."""
    out = []
    pos = 0
    while pos < len(data) and step:
        trial = d.copy()
        try:
            out.append(trial.decompress(data[pos : pos + step]))
        except zlib.error:
            step = 1 if step > 1 else 0
            continue
        d = trial
        pos += step
        if trial.eof:
            break
    return b"".join(out)


def open_source(
    f: BinaryIO, compression: str, on_raw: RawHook | None = None, chunk: int = _CHUNK
) -> PlainSource | InflateSource:
    """The uncompressed stream of the open file ``f``, for ``readinto``."""
    name = normalize_compression(compression)
    if name == "none":
        return PlainSource(f, on_raw)
    return InflateSource(f, name, on_raw, chunk)


class _Reader(io.RawIOBase):
    """A readable file of a shard's uncompressed stream (a :func:`open_source` source, or
    any object with ``readinto``); damage in a compressed stream raises
    ``EOFError(kind, detail)`` where it is found. Closing it closes ``raw`` when given."""

    def __init__(self, source: Any, raw: BinaryIO | None = None):
        self._source = source
        self._raw = raw

    def readable(self) -> bool:
        return True

    def fileno(self) -> int:
        if self._raw is None:
            raise io.UnsupportedOperation("fileno")
        return self._raw.fileno()

    def readinto(self, b) -> int:  # type: ignore[override]
        n = self._source.readinto(memoryview(b).cast("B"))
        if n == 0 and getattr(self._source, "problem", None) is not None:
            raise EOFError(*self._source.problem)
        return n

    def close(self) -> None:
        if self._raw is not None:
            self._raw.close()
        super().close()


def reader_of(source: Any, raw: BinaryIO | None = None) -> io.BufferedReader:
    """A buffered file over the uncompressed stream ``source`` (a :func:`open_source`
    source, or any object with ``readinto``), for readers that want damage as an
    ``EOFError(kind, detail)`` (``framing.read_frames``). Closing it closes ``raw``."""
    return io.BufferedReader(_Reader(source, raw), _CHUNK)


def open_reader(path: str | os.PathLike, compression: str = "none") -> io.BufferedReader:
    """Open a shard for reading its uncompressed record stream (``.plain`` tells whether
    file offsets and stream offsets agree)."""
    name = normalize_compression(compression)
    raw = open(path, "rb", buffering=0)  # noqa: SIM115 - returned
    buffered = reader_of(open_source(raw, name), raw)
    buffered.plain = name == "none"  # type: ignore[attr-defined]
    return buffered
