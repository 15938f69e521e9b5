"""Reading a file or object once from start to end (scans, checksums) in bounded memory.

Locally a raw unbuffered file. A URL is read in blocks of ``block_size`` bytes, the next
``ahead`` blocks fetched by a background thread while the caller works on the current one,
into a fixed set of ``ahead + 2`` block buffers that are reused: memory stays the same
whatever the object's size (a 1 GB object and a 100 MB one peak alike), and the network
overlaps the caller's work.

``s3://`` objects are read through one streamed GET from the first byte (reopened where
it broke off when the connection drops): one request per object rather than one per block,
which a server that reads the whole object for each ranged request (moto) needs to be
fast. Other URLs: one ranged request per block.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import io
import os
from typing import IO, Any

from ..errors import StorageError
from . import fs as storage
from .fs import REMOTE_BLOCK

__all__ = ["open_stream"]


def open_stream(
    path: str | os.PathLike,
    *,
    size: int | None = None,
    block_size: int = REMOTE_BLOCK,
    ahead: int = 1,
) -> IO[bytes]:
    """A file to read once, start to end: ``readinto``/``read``, and ``size``. ``size``: the
    size when known already (from a listing), which saves a request."""
    if not storage.is_url(path):
        f = open(storage.local(path), "rb", buffering=0)  # noqa: SIM115 - returned
        f.size = os.fstat(f.fileno()).st_size  # type: ignore[attr-defined]
        return f
    url = os.fspath(path)
    total = storage.size(url) if size is None else size
    if storage.scheme(url) in ("s3", "s3a") and ahead:
        return _S3Stream(url, total, block_size, ahead)
    return _RangedReader(url, total, block_size, ahead)


class _RangedReader(io.RawIOBase):
    """:func:`open_stream` of a URL: consecutive blocks, ``ahead`` of them in flight, each
    read into a buffer of a fixed set (``_fill``)."""

    def __init__(self, url: str, total: int, block_size: int, ahead: int):
        super().__init__()
        if block_size < 1 or ahead < 0:
            raise ValueError(f"block_size must be >= 1 and ahead >= 0, got {block_size}, {ahead}")
        self.name = storage.redact(url)
        self.size = total
        self._url, self._block, self._ahead = url, block_size, ahead
        self._requested = 0  # stream offset up to which blocks are asked for
        self._pending: collections.deque = collections.deque()  # (future | None, start, end)
        # the buffers: one being read by the caller, ``ahead`` being filled, one spare
        self._free: collections.deque[bytearray] = collections.deque()
        self._current: bytearray | None = None
        self._data = memoryview(b"")
        self._pool = (
            concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="tfrecord-tools-read")
            if ahead
            else None
        )
        for _ in range(ahead):
            self._request()

    def _buffer(self) -> bytearray:
        try:
            return self._free.popleft()
        except IndexError:
            return bytearray(self._block)

    def _request(self) -> None:
        if self._requested >= self.size:
            return
        start, end = self._requested, min(self._requested + self._block, self.size)
        self._requested = end
        buffer = self._buffer()
        future = self._pool.submit(self._fill, buffer, start, end) if self._pool else None
        self._pending.append((future, buffer, start, end))

    def _fill(self, buffer: bytearray, start: int, end: int) -> int:
        """Read ``[start, end)`` into ``buffer``; return how many bytes came."""
        data = storage.read_bytes(self._url, start, end)
        buffer[: len(data)] = data
        return len(data)

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        view = memoryview(b).cast("B")
        if not len(self._data):
            if self._current is not None:  # read to its end: free for the next block
                self._data.release()
                self._free.append(self._current)
                self._current = None
            if not self._pending:
                self._request()
                if not self._pending:
                    return 0
            future, buffer, start, end = self._pending.popleft()
            got = future.result() if future is not None else self._fill(buffer, start, end)
            self._current = buffer
            self._request()
            if got != end - start:
                raise StorageError(
                    f"{self.name}: bytes {start}-{end} came back as {got} bytes: "
                    "the object changed while it was read"
                )
            self._data = memoryview(buffer)[:got]
        n = min(len(view), len(self._data))
        view[:n] = self._data[:n]
        self._data = self._data[n:]
        return n

    def close(self) -> None:
        if self._pool is not None:
            for future, *_ in self._pending:
                future.cancel()
            self._pool.shutdown(wait=True)
        self._pending.clear()
        self._data = memoryview(b"")
        self._free.clear()
        self._current = None
        super().close()


class _S3Stream(_RangedReader):
    """:func:`open_stream` of an ``s3://`` object: one GET streamed from the first byte,
    read a block at a time by the background thread (s3fs's event loop does the I/O)."""

    _ATTEMPTS = 3

    def __init__(self, url: str, total: int, block_size: int, ahead: int):
        self._fs, inner = storage.filesystem(url)
        self._bucket, self._key, version = self._fs.split_path(inner)
        self._version = {"VersionId": version} if version else {}
        self._body: Any = None
        self._at = 0  # stream offset of the body's next byte
        super().__init__(url, total, block_size, ahead)

    def _fill(self, buffer: bytearray, start: int, end: int) -> int:
        from fsspec.asyn import sync

        with storage._naming(self._url, "read"):
            for attempt in range(self._ATTEMPTS):
                try:
                    return sync(self._fs.loop, self._read, buffer, start, end)
                except Exception:
                    self._drop()  # reopen at ``start`` on the next attempt
                    if attempt == self._ATTEMPTS - 1:
                        raise
        raise AssertionError("unreachable")

    async def _read(self, buffer: bytearray, start: int, end: int) -> int:
        if self._body is None or self._at != start:
            self._drop()
            response = await self._fs._call_s3(
                "get_object",
                Bucket=self._bucket,
                Key=self._key,
                Range=f"bytes={start}-",
                **self._version,
            )
            self._body, self._at = response["Body"], start
        view, got, want = memoryview(buffer), 0, end - start
        while got < want:
            chunk = await self._body.read(want - got)
            if not chunk:
                break
            view[got : got + len(chunk)] = chunk
            got += len(chunk)
        self._at += got
        return got

    def _drop(self) -> None:
        body, self._body = self._body, None
        if body is not None:
            with contextlib.suppress(Exception):
                body.close()

    def close(self) -> None:
        super().close()
        self._drop()
