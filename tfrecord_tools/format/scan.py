"""Record scanning: a shard's bytes -> record spans and damaged ranges, with resync.

Data flow: shard file -> stream (plain / gunzip / inflate) -> **scan** -> spans, which ``verify``,
``count``, ``index`` and ``repair`` build on. Where :func:`framing.iter_records` stops at the
first damaged record, :class:`RecordScanner` reports it and keeps going: it finds the next
record by its framing, so one bad byte costs one record, not the rest of the file.

Speed: plain files are read in large chunks into a reused buffer (``readinto``) and CRCs run
over memoryview slices of it, so payloads are never copied; ``on_raw`` sees every on-disk
byte once, right after it is read (for a sha256 while the chunk is in cache). Memory stays
bounded: a length field is checked against the bytes the file can hold, and the buffer
grows (doubling) only as data arrives, never to what a length field claims.

URLs (``gs://``, ``s3://``, ...): the shard is read through the storage seam's
``open_stream``, large ranged reads with the next block fetched while this one is checked,
into the same bounded window: memory does not grow with the object's size.

Resynchronisation: a *plausible* header is 12 bytes whose length fits in what is left of the
stream and whose masked CRC32C matches. After a header that is not plausible (or a record cut
short), the scanner searches from the next byte for the first plausible header. After a data
CRC failure the framing is usually intact, so the next record is where the length says; but
bytes lost inside the record would hide records inside the span it claims, so that span is
first searched for a whole good record (both CRCs). The search jumps between candidates at C
speed: ``bytearray.find`` for the zero high bytes every valid length has, a regex to skip
runs of zeros. A false match needs a 32-bit CRC collision, and a whole false record two.
Each damaged stretch counts as one record for the indices that follow.
"""

from __future__ import annotations

import contextlib
import io
import mmap
import os
import re
from collections.abc import Iterator
from typing import NamedTuple, overload

from .. import storage
from ..errors import Damage
from ..storage.streams import open_stream
from .compression import (
    MAX_INFLATE_RATIO,
    InflateSource,
    PlainSource,
    RawHook,
    normalize_compression,
    open_source,
)
from .framing import FOOTER, HEADER, HEADER_SIZE, OVERHEAD, masked_crc32c

__all__ = ["CHUNK", "Damage", "RecordScanner", "Span"]

#: Read size and initial buffer size: large reads, small enough to stay in a core's L2.
CHUNK = 1 << 20
_ZERO_HEADER = bytes(HEADER_SIZE)  # never valid: the masked CRC of a zero length is not 0
_NONZERO = re.compile(rb"[^\x00]")
_HASH_STEP = 256 << 10  # mapped bytes handed to on_raw at a time, right after their CRCs


class Span(NamedTuple):
    """A good record: 0-based index, offset of its first byte in the (uncompressed) stream,
    and the length of its data. (A named tuple: one is made per record, cheaply.)"""

    index: int
    offset: int
    length: int

    @property
    def size(self) -> int:
        """The whole record's size including framing (what ``.idx`` files store)."""
        return self.length + OVERHEAD

    @property
    def end(self) -> int:
        return self.offset + self.length + OVERHEAD


# --- the scanner -----------------------------------------------------------------------------


class RecordScanner:
    """Walk a shard's records, yielding a :class:`Span` per good record and a
    :class:`Damage` per damaged stretch, to the end of the stream.

    ``check_data=False`` skips the data CRC (framing and length CRCs are still checked).
    ``on_raw`` is called with every on-disk byte in order, once (e.g. ``sha256.update``).
    :meth:`payload` gives the data of the span just yielded, without copying.
    ``path`` may be a URL: ``size`` (its size, when a listing gave it already),
    ``block_size`` and ``ahead`` then shape its ranged reads (``storage.streams.open_stream``).
    ``data``: the file's bytes when the caller holds them already (nothing is read again).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        compression: str = "none",
        *,
        check_data: bool = True,
        on_raw: RawHook | None = None,
        buffer_size: int = CHUNK,
        use_mmap: bool = True,
        size: int | None = None,
        block_size: int = storage.REMOTE_BLOCK,
        ahead: int = 1,
        data: bytes | None = None,
    ):
        self.path = os.fspath(path)
        self.compression = normalize_compression(compression)
        self._check_data = check_data
        self._chunk = buffer_size
        if data is not None:  # the file's bytes, fetched already (a bucket's object, whole)
            self._raw = io.BytesIO(data)
            self.raw_size = len(data)
            use_mmap = False
        elif storage.is_url(self.path):
            self._raw = open_stream(self.path, size=size, block_size=block_size, ahead=ahead)
            self.raw_size = self._raw.size  # type: ignore[attr-defined]
            use_mmap = False
        else:
            self._raw = open(self.path, "rb", buffering=0)  # noqa: SIM115 - closed in close()
            self.raw_size = os.fstat(self._raw.fileno()).st_size
        self._source: PlainSource | InflateSource = open_source(
            self._raw, self.compression, on_raw, buffer_size
        )
        plain = self.compression == "none"
        # the stream's exact length, or an upper bound
        self._limit = self.raw_size if plain else self.raw_size * MAX_INFLATE_RATIO + 64
        # High-order bytes every plausible length field has zero: what resync searches for.
        self._zeros = bytes(max(0, 8 - (self._limit.bit_length() + 7) // 8))
        self._spare: bytearray | None = None
        self._start = 0  # stream offset of self._buf[0]
        self._map = _map(self._raw) if use_mmap and self.compression == "none" else None
        self._buf: bytearray | mmap.mmap
        if self._map is not None:  # the whole file is the window: nothing to read or copy
            self._buf = self._map
            self._filled, self._eof = self.raw_size, True
        else:
            self._buf = bytearray(buffer_size)
            self._filled, self._eof = 0, False  # bytes of self._buf holding stream data
        self._view = memoryview(self._buf)
        self._on_map = on_raw if self._map is not None else None
        self._hashed = 0  # bytes of the map given to on_raw

    # -- public ------------------------------------------------------------------------------

    @property
    def stream_size(self) -> int:
        """Bytes of the (uncompressed) stream read so far; its length once iterated."""
        return self._start + self._filled

    def payload(self, span: Span) -> memoryview:
        """The data of ``span``; valid only until the scanner moves on."""
        p = span.offset - self._start + HEADER_SIZE
        return self._view[p : p + span.length]

    def close(self) -> None:
        self._raw.close()
        if self._map is not None:
            self._view.release()
            with contextlib.suppress(BufferError):  # a payload view is alive: GC closes it
                self._map.close()

    def __enter__(self) -> RecordScanner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[Span | Damage]:
        for item in self.batches():
            if isinstance(item, Damage):
                yield item
            else:
                yield from item

    def batches(self) -> Iterator[list[Span] | Damage]:
        """Like iterating, with runs of good records in lists: far less Python per record,
        which is what lets threads scanning several files run in parallel. The payloads
        of a run's spans stay valid until the next item is asked for."""
        index = pos = 0
        while True:
            if self._on_map is not None and pos - self._hashed >= _HASH_STEP:
                self._on_map(self._view[self._hashed : pos])  # just checked: still in cache
                self._hashed = pos
            run: list[Span] = []
            index, pos = self._good_run(index, pos, run)
            if run:
                yield run
                continue
            # The record at pos is damaged, or needs more of the stream in the window.
            got = self._have(pos, HEADER_SIZE)
            if got == 0:
                break
            if got < HEADER_SIZE:
                yield Damage(
                    index,
                    pos,
                    pos + got,
                    "truncated header",
                    f"{got} of {HEADER_SIZE} bytes at the end of the stream",
                )
                break
            length, length_crc = HEADER.unpack_from(self._buf, pos - self._start)
            problem: tuple[str, str]
            if masked_crc32c(self._view[pos - self._start : pos - self._start + 8]) != length_crc:
                problem = ("length CRC mismatch", "")
            elif length > self._max_length(pos):
                problem = (
                    "truncated record",
                    f"length field says {length} bytes, {self._left(pos)} left",
                )
            else:
                size = length + OVERHEAD
                got = self._have(pos, size)
                if got < size:
                    problem = (
                        "truncated record",
                        f"length field says {length} bytes, "
                        f"the stream ends {max(got - HEADER_SIZE, 0)} bytes into them",
                    )
                elif not self._check_data or self._data_ok(pos, length):
                    yield [Span(index, pos, length)]
                    index += 1
                    pos += size
                    continue
                else:
                    # Bytes lost inside this record shift the next records into the span its
                    # length claims: look there for a whole good record first.
                    nxt = pos + size
                    found = self._resync(pos + 1, limit=nxt, whole=True)
                    if found is None and not self._plausible_next(nxt):
                        found = self._resync(nxt)
                    yield Damage(index, pos, nxt if found is None else found, "data CRC mismatch")
                    index += 1
                    pos = nxt if found is None else found
                    continue
            nxt = self._resync(pos + 1)
            yield Damage(index, pos, nxt, *problem)
            index += 1
            pos = nxt
        if self._on_map is not None and self._hashed < self.raw_size:
            self._on_map(self._view[self._hashed : self.raw_size])
            self._hashed = self.raw_size
        if self._source.problem is not None:
            end = self.stream_size
            yield Damage(index, end, end, *self._source.problem)

    def _good_run(self, index: int, pos: int, out: list[Span]) -> tuple[int, int]:
        """Append the good records that follow each other from ``pos`` within the window
        (and, when hashing a map, within the next hash step); stop at anything else.
        The hot loop: locals only, no method calls but the CRCs."""
        buf, view, start = self._buf, self._view, self._start
        stop = min(self._start + self._filled, self._limit)
        if self._on_map is not None:
            stop = min(stop, self._hashed + 2 * _HASH_STEP)
        check, unpack, unpack_u32 = self._check_data, HEADER.unpack_from, FOOTER.unpack_from
        crc, append = masked_crc32c, out.append
        while pos + HEADER_SIZE <= stop:
            p = pos - start
            length, length_crc = unpack(buf, p)
            end = pos + length + OVERHEAD
            if end > stop or crc(view[p : p + 8]) != length_crc:
                break
            if (
                check
                and crc(view[p + HEADER_SIZE : end - start - 4])
                != unpack_u32(buf, end - start - 4)[0]
            ):
                break
            append(Span(index, pos, length))
            index += 1
            pos = end
        return index, pos

    # -- checks ------------------------------------------------------------------------------

    def _left(self, pos: int) -> str:
        if self.compression == "none":
            return str(max(self._limit - pos - HEADER_SIZE, 0))
        return f"at most {max(self._limit - pos - HEADER_SIZE, 0)} (from the compressed size)"

    def _max_length(self, pos: int) -> int:
        return self._limit - pos - OVERHEAD

    def _data_ok(self, pos: int, length: int) -> bool:
        p = pos - self._start + HEADER_SIZE
        stored = FOOTER.unpack_from(self._buf, p + length)[0]
        return masked_crc32c(self._view[p : p + length]) == stored

    def _plausible_at(self, i: int) -> bool:
        """A header at buffer index ``i`` (12 bytes present) that could start a record."""
        length, crc = HEADER.unpack_from(self._buf, i)
        if length > self._max_length(self._start + i):
            return False
        return masked_crc32c(self._view[i : i + 8]) == crc

    def _plausible_next(self, nxt: int) -> bool:
        """After a data CRC failure: does the framing go on at ``nxt`` (or the stream end)?"""
        got = self._have(nxt, HEADER_SIZE)
        return got < HEADER_SIZE or self._plausible_at(nxt - self._start)

    def _whole_record_at(self, q: int) -> bool:
        """A plausible header at ``q`` whose record is all there and passes its data CRC."""
        length = HEADER.unpack_from(self._buf, q - self._start)[0]
        got = self._have(q, length + OVERHEAD)
        return got == length + OVERHEAD and self._data_ok(q, length)

    @overload
    def _resync(self, start: int) -> int: ...
    @overload
    def _resync(self, start: int, *, limit: int, whole: bool) -> int | None: ...

    def _resync(self, start: int, *, limit: int | None = None, whole: bool = False) -> int | None:
        """The first offset >= ``start`` holding a plausible header (``whole``: a whole good
        record), else the stream's end; with ``limit``, only offsets < ``limit``, else None."""
        zeros = self._zeros
        skip = 8 - len(zeros)  # offset of the zero bytes within a header
        q = start
        while limit is None or q < limit:
            got = self._have(q, self._chunk)
            if got < HEADER_SIZE:
                return q + got if limit is None else None
            buf, base = self._buf, self._start
            i = q - base
            last = i + got - HEADER_SIZE  # last buffer index a whole header fits at
            if limit is not None:
                last = min(last, limit - 1 - base)
            found = None
            while i <= last:
                if zeros:
                    j = buf.find(zeros, i + skip, last + 8)
                    if j < 0:
                        break
                    i = j - skip
                if self._view[i : i + HEADER_SIZE] == _ZERO_HEADER:
                    # Inside a run of zeros (a zeroed disk block): skip to its end at C speed.
                    m = _NONZERO.search(buf, i, last + HEADER_SIZE)
                    i = last + 1 if m is None else max(i + 1, m.start() - HEADER_SIZE + 1)
                    continue
                if self._plausible_at(i):
                    found = base + i
                    break
                i += 1
            if found is None:
                q = base + last + 1
            elif not whole or self._whole_record_at(found):
                return found
            else:
                q = found + 1
        return None

    # -- the window --------------------------------------------------------------------------

    def _have(self, pos: int, n: int, keep: int | None = None) -> int:
        """Make stream bytes ``[pos, pos + n)`` present in the buffer, keeping everything
        from ``keep`` (default ``pos``); return how many of them the stream has."""
        end = pos + n
        while self._start + self._filled < end and not self._eof:
            self._make_room(pos if keep is None else keep, end)
            k = self._source.readinto(self._view[self._filled :])
            if k == 0:
                self._eof = True
            self._filled += k
        return max(0, min(end, self._start + self._filled) - pos)

    def _make_room(self, keep: int, end: int) -> None:
        """Drop bytes before ``keep``; grow the buffer (doubling, so memory follows the data
        actually read, never a length field) while ``[keep, end)`` does not fit."""
        drop = keep - self._start
        if drop < 0:
            raise RuntimeError(f"{self.path}: scanner asked to keep bytes it already dropped")
        cap = len(self._buf)
        if drop == 0 and self._filled < cap:
            return
        need = end - keep
        new_cap = cap if need <= cap else min(need, 2 * cap)
        # Copy into the other buffer: never an overlapping move within one buffer.
        target = self._spare if self._spare is not None and len(self._spare) == new_cap else None
        if target is None:
            target = bytearray(new_cap)
        rest = self._filled - drop
        target[:rest] = self._view[drop : self._filled]
        self._spare = self._buf if cap == new_cap else None
        self._buf, self._view = target, memoryview(target)
        self._start, self._filled = keep, rest


def _map(f) -> mmap.mmap | None:
    """A read-only map of a plain file, or None where that is not possible (empty file,
    not a regular file): the scanner then reads into its buffer instead."""
    try:
        mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError):
        return None
    if hasattr(mapped, "madvise"):
        mapped.madvise(mmap.MADV_SEQUENTIAL)
    return mapped
