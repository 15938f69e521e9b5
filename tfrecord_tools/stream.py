"""Shard byte streams: what kind of file a shard is, and its uncompressed bytes in bounded
chunks.

Data flow: shard file -> **stream** (plain read, or gunzip / inflate) -> scan. The sources
hand every on-disk byte to an optional hook once (for a sha256), and a damaged compressed
stream does not raise: it ends where the damage is, with ``problem`` set, after delivering
everything decompressed before it. (``framing.open_reader`` is the simple reader for intact
files; this one is for checking and salvaging.)
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Callable
from typing import BinaryIO

from .framing import HEADER_SIZE, masked_crc32c

__all__ = [
    "MAX_INFLATE_RATIO",
    "InflateSource",
    "PlainSource",
    "RawHook",
    "detect_compression",
]

_HEADER = struct.Struct("<QI")
_GZIP_MAGIC = b"\x1f\x8b"
#: Deflate cannot expand data by more than 1032:1, so a compressed file of N bytes holds at
#: most 1032 * N bytes: the bound a length field is checked against in compressed streams.
MAX_INFLATE_RATIO = 1032

RawHook = Callable[[memoryview], object]


def detect_compression(path: str | os.PathLike) -> str:
    """``none``, ``gzip`` or ``zlib`` from a shard's first bytes.

    A valid plain record header wins (a plain file can start with bytes that look like a
    zlib header: ``78 9c`` is also the length 40056); then the gzip magic ``1f 8b``, then a
    zlib header (deflate method, window <= 32K, header checksum). Anything else is treated as
    a plain, possibly damaged, file.
    """
    with open(path, "rb") as f:
        head = f.read(HEADER_SIZE)
    if len(head) == HEADER_SIZE:
        _length, crc = _HEADER.unpack(head)
        if masked_crc32c(head[:8]) == crc:
            return "none"
    if head[:2] == _GZIP_MAGIC:
        return "gzip"
    if len(head) >= 2 and _is_zlib_header(head[0], head[1]):
        return "zlib"
    return "none"


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
