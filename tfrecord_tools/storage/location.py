"""One type for "where": :class:`Location`, a local path or a URL, and the opener over it
with the three access patterns the readers need.

    front to back   ``loc.open_stream()``: a whole file once (8 MiB ranged reads, the next
                    in flight, for a URL)
    ranged pieces   ``loc.read(start, end)``: one request; ``read_pieces(loc, ranges)``:
                    several in flight at once
    random reads    ``loc.open_random()``: ``read(offset, size)`` by offset (``os.pread``
                    locally, one ranged request for a URL), reopened per process

A ``Location`` is a ``str`` (so every function that takes a path takes one), normalised
once: ``file://`` stripped, a ``PathLike`` made text. Everything a dataset layer asks of a
file (its size, the ``.idx`` file beside it: ``loc.idx``, its folder, its name as messages
show it) is a method here, so no caller builds a sibling path by hand or branches on local
vs URL.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
from collections.abc import Sequence
from typing import IO, Any

from . import fs
from .streams import open_stream

__all__ = ["INDEX_SUFFIX", "Location", "RandomReader", "read_pieces"]

#: The index file beside a shard: ``SHARD.idx`` (FORMAT.md).
INDEX_SUFFIX = ".idx"


class Location(str):
    """A local path or a URL, as text. ``Location(path)`` accepts a ``str`` or a
    ``PathLike``; ``file://`` URLs become local paths."""

    __slots__ = ()

    def __new__(cls, path: str | os.PathLike) -> Location:
        if isinstance(path, Location):
            return path
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"a location is a path or a URL, got {type(path).__name__}")
        text = os.fspath(path)
        if not isinstance(text, str):
            raise TypeError("a location is a path or a URL, got bytes")
        return super().__new__(cls, fs.local(text) if not fs.is_url(text) else text)

    # -- naming -----------------------------------------------------------------------------

    @property
    def is_url(self) -> bool:
        return fs.is_url(self)

    @property
    def name(self) -> str:
        return fs.basename(self)

    @property
    def parent(self) -> Location:
        return Location(fs.dirname(self) or ".")

    @property
    def shown(self) -> str:
        """As messages show it: a URL without credentials or query."""
        return fs.redact(self)

    @property
    def idx(self) -> Location:
        """The ``.idx`` file beside this shard (which may not exist)."""
        return Location(str(self) + INDEX_SUFFIX)

    def join(self, *names: str) -> Location:
        return Location(fs.join(self, *names))

    # -- looking ----------------------------------------------------------------------------

    def exists(self) -> bool:
        return fs.exists(self)

    def is_file(self) -> bool:
        return fs.is_file(self)

    def is_dir(self) -> bool:
        return fs.is_dir(self)

    def size(self) -> int:
        """Its size in bytes; FileNotFoundError naming it when it is not there."""
        return fs.size(self)

    def listing(self) -> tuple[dict[str, int], set[str]]:
        """(files directly in this folder: name -> size, subfolder names), one listing."""
        return fs.list_folder(self)

    # -- reading ----------------------------------------------------------------------------

    def read(self, start: int | None = None, end: int | None = None) -> bytes:
        """The whole file, or ``[start, end)`` of it (one ranged request)."""
        return fs.read_bytes(self, start, end)

    def open_stream(self, *, size: int | None = None, ahead: int = 1) -> IO[bytes]:
        """Front to back, once (``size``: when a listing gave it, which saves a request)."""
        return open_stream(self, size=size, ahead=ahead)

    def open_random(self) -> RandomReader:
        return RandomReader(self)


class RandomReader:
    """Reads by offset: ``read(offset, size)`` -> up to ``size`` bytes (fewer at the end of
    the file). Locally one ``os.pread`` on a descriptor opened on first use; for a URL one
    ranged request. Pickles by location: each process opens its own."""

    def __init__(self, location: str | os.PathLike):
        self.location = Location(location)
        self._url = self.location.is_url  # decided once: read() is on every record's path
        self._fd: int | None = None

    def read(self, offset: int, size: int) -> bytes:
        if not self._url:
            if self._fd is None:
                self._fd = os.open(self.location, os.O_RDONLY)
            return os.pread(self._fd, size, offset)
        return self.location.read(offset, offset + size)

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def __getstate__(self) -> dict[str, Any]:
        return {"location": self.location}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["location"])  # type: ignore[misc]

    def __del__(self) -> None:
        fd = getattr(self, "_fd", None)
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)


def read_pieces(
    location: str | os.PathLike, ranges: Sequence[tuple[int, int]], *, in_flight: int = 4
) -> list[bytes]:
    """``[start, end)`` pieces of one file, in order; for a URL ``in_flight`` requests at a
    time (a sequential pass over an indexed shard costs one request per piece)."""
    loc = Location(location)
    if not loc.is_url or len(ranges) < 2:
        reader = RandomReader(loc)
        try:
            return [reader.read(start, end - start) for start, end in ranges]
        finally:
            reader.close()
    with concurrent.futures.ThreadPoolExecutor(in_flight) as pool:
        return list(pool.map(lambda r: loc.read(r[0], r[1]), ranges))
