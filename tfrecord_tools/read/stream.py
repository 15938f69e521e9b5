"""Records of a shard (or of a run of it) read through the storage seam, in Python: the
reader for URLs TensorFlow cannot open (``records.py`` wires it into tf.data), and for a
first record at a URL (``keys.py``). TensorFlow-free.

Data flow: object -> **8 MiB ranged reads** (``storage.open_read``) -> [decompression,
``format/compression.py``] -> **record framing** (``format/framing.py``'s layout, every CRC
checked) -> record bytes. Damage raises :class:`RecordError` naming the URL, the record
index and the byte offset (in the uncompressed stream), as ``framing.iter_records`` does for
a local file.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from ..format import storage
from ..format.compression import MAX_INFLATE_RATIO, normalize_compression, open_source, reader_of
from ..format.framing import read_frames

#: Bytes a remote read asks for at once (storage.REMOTE_BLOCK).
REMOTE_BUFFER = storage.REMOTE_BLOCK
# measured (records.py's docstring): of the URL schemes, TensorFlow 2.21 reads only gs://
_TF_SCHEMES = ("gs",)


def tf_opens(path: str | os.PathLike) -> bool:
    """Does TensorFlow open ``path`` itself: a local path, or ``gs://`` with Google's
    endpoints (no ``STORAGE_EMULATOR_HOST``, which TensorFlow's GCS ignores)."""
    name = storage.scheme(path)
    if name == "":
        return True
    return name in _TF_SCHEMES and not os.environ.get("STORAGE_EMULATOR_HOST")


# --------------------------------------------------------------------------- framing


def frames(
    source: Any, where: str, *, index: int = 0, offset: int = 0, size: int | None = None
) -> Iterator[tuple[int, int, bytes]]:
    """(index, offset, data) of each record read from ``source`` (an object with
    ``readinto``: a ``compression.open_source`` source, :class:`RangedSource`), parsed by
    ``framing.read_frames`` (every CRC checked; damage a :class:`RecordError` naming
    ``where``, the record index and byte offset). ``index``/``offset``: of the first record
    (a run read from the middle of a shard); ``size``: the stream's byte count, when
    known."""
    with reader_of(source) as stream:
        yield from read_frames(stream, where, index=index, offset=offset, size=size)


def shard_records(path: str, compression: str = "none", size: int = -1) -> Iterator[bytes]:
    """Every record of the shard at ``path`` (a URL or a local path), streamed in
    ``REMOTE_BUFFER`` reads. ``size``: the object's byte count when a listing gave it
    (then no request asks for it: :class:`RangedSource`), else -1."""
    name = normalize_compression(compression)
    where = storage.redact(path)
    if size >= 0 and storage.is_url(path):
        opened: Any = contextlib.closing(RangedSource(path, size))
    else:
        opened = storage.open_read(path, block_size=REMOTE_BUFFER)
    with opened as f:
        total = getattr(f, "size", None)
        if total is None:  # a local file
            total = os.fstat(f.fileno()).st_size
        limit = total if name == "none" else total * MAX_INFLATE_RATIO
        for _, _, data in frames(open_source(f, name), where, size=limit):
            yield data


class RangedSource:
    """An object of known ``size`` as a file to read once, front to back: ranged reads of
    ``block`` bytes through the seam, the next block requested while this one is consumed
    (one request in flight ahead, so the network and the parsing overlap). A shard of
    less than a block costs one request; ``storage.open_read`` costs two (its size first)."""

    def __init__(self, path: str, size: int, block: int = REMOTE_BUFFER):
        self.size = size
        self._path, self._block = path, block
        self._asked = 0  # the end of the last block requested
        self._data = memoryview(b"")
        self._pos = 0
        self._ahead = self._request()

    def _request(self) -> Future | None:
        if self._asked >= self.size:
            return None
        start, self._asked = self._asked, min(self._asked + self._block, self.size)
        return _fetcher().submit(storage.read_bytes, self._path, start, self._asked)

    def readinto(self, view) -> int:
        if self._pos >= len(self._data):
            if self._ahead is None:
                return 0
            data = self._ahead.result()
            self._ahead = self._request() if data else None
            self._data, self._pos = memoryview(data), 0
            if not data:  # shorter than listed: it changed since
                return 0
        n = min(len(view), len(self._data) - self._pos)
        view[:n] = self._data[self._pos : self._pos + n]
        self._pos += n
        return n

    def read(self, n: int) -> bytes:
        out = bytearray(n)
        got = self.readinto(memoryview(out))
        return bytes(out[:got])

    def close(self) -> None:
        if self._ahead is not None:
            self._ahead.cancel()
            self._ahead = None


_pool: ThreadPoolExecutor | None = None


def _fetcher() -> ThreadPoolExecutor:
    """The threads that fetch blocks ahead (shared by every shard being read)."""
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(8, thread_name_prefix="tfrecord-tools-fetch")
    return _pool


def run_records_of(path: str, offset: int, size: int, first: int) -> Iterator[bytes]:
    """The records of the ``size`` bytes at ``offset`` of an uncompressed shard (``first``:
    the index of the first), fetched in one ranged read."""
    data = storage.read_bytes(path, offset, offset + size)
    where = storage.redact(path)
    for _, _, record in frames(io.BytesIO(data), where, index=first, offset=offset, size=size):
        yield record
