"""Reading the images of a listed image folder: the shard stage of ``convert images``
(the listing itself is ``dataset.images``, shared with the raw-file reader).

Data flow: listing (``dataset.images``) -> plan -> **FolderShard.items** (read, probe,
transcode, encode) -> shard writer. A URL's objects are read whole, a few requests in
flight at once (:data:`READ_AHEAD`): one at a time, a worker would wait out a round trip per
image.
"""

from __future__ import annotations

import os
from array import array
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from ... import storage
from ...dataset.images import FolderListing, unpack
from ...errors import InvalidImageError
from ...format.example import encode_example_parts
from ...images.probe import probe_image, read_image

__all__ = ["FolderShard", "read_listed"]
from ..inherit import shared
from . import Item
from .transcode import KEEP, StorageOptions, transcode


def read_listed(location: str) -> bytes:
    """The bytes of a listed image: a local file through :func:`read_image` (a bounded
    prefix first), an object whole in one request (the probe then judges it)."""
    if storage.is_url(location):
        return storage.read_bytes(location)
    with open(location, "rb", buffering=0) as f:
        return read_image(f)


#: Objects a worker reads from a bucket at once, in order (each is held until written).
READ_AHEAD = 16


def _local(pairs: Iterable[tuple[str, int]]) -> Iterator[tuple[str, int, None]]:
    for rel, label in pairs:
        yield rel, label, None


def _read_ahead(
    root: str, pairs: Iterable[tuple[str, int]]
) -> Iterator[tuple[str, int, Future[bytes]]]:
    """(path, label, its bytes to come) with up to :data:`READ_AHEAD` reads in flight; when
    the consumer stops, reads not yet started are dropped."""
    pool = ThreadPoolExecutor(READ_AHEAD, thread_name_prefix="tfrecord-tools-read")
    pending: deque[tuple[str, int, Future[bytes]]] = deque()
    try:
        for rel, label in pairs:
            pending.append((rel, label, pool.submit(storage.read_bytes, storage.join(root, rel))))
            if len(pending) >= READ_AHEAD:
                yield pending.popleft()
        while pending:
            yield pending.popleft()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


@dataclass(frozen=True)
class FolderShard:
    """The samples of one shard of an image folder; runs in a worker process.

    Forked workers look paths and labels up in the parent's listing (``listing_key``, see
    ``inherit.share``); otherwise the shard carries its own (``packed``, ``labels``).
    """

    root: str
    classes: tuple[str, ...]
    samples: Sequence[int]  # indices into the listing, in write order (a view of the plan's)
    validate: str = "fast"
    strict: bool = False
    listing_key: str | None = None
    packed: bytes = b""  # PathTable.pack() of the shard's paths
    labels: array | None = None
    storage: StorageOptions = KEEP  # what images are stored as (--max-size...)

    def __len__(self) -> int:
        return len(self.samples)

    def __reduce__(self):
        # a memoryview of the plan's indices cannot be pickled: the worker gets a copy
        samples = self.samples
        if isinstance(samples, memoryview):
            samples = array(samples.format, samples.tobytes())
        state = (self.root, self.classes, samples, self.validate, self.strict)
        return type(self), (*state, self.listing_key, self.packed, self.labels, self.storage)

    def _paths_and_labels(self) -> Iterator[tuple[str, int]]:
        if self.listing_key is not None:
            listing: FolderListing = shared(self.listing_key)
            return ((listing.paths[i], listing.labels[i]) for i in self.samples)
        return zip(unpack(self.packed), self.labels or (), strict=True)

    def items(self) -> Iterator[Item]:
        """The shard's samples; a file gone or unreadable is skipped and listed, a bucket
        that cannot be read (StorageError) ends the job."""
        remote = storage.is_url(self.root)
        pairs = self._paths_and_labels()
        for rel, label, fetched in _read_ahead(self.root, pairs) if remote else _local(pairs):
            full = storage.join(self.root, rel) if remote else os.path.join(self.root, rel)
            read = 0
            try:
                if fetched is not None:
                    data = fetched.result()
                    read = len(data)
                else:
                    with open(full, "rb", buffering=0) as f:
                        try:  # a bounded prefix first: read whole once it is an image
                            data = read_image(f)
                        finally:
                            read = f.tell()
                stored, info = probe_image(data, path=rel, validate=self.validate)
                stored, info, resized = transcode(stored, info, self.storage, path=rel)
            except InvalidImageError as e:
                yield self._skip(rel, e.reason, str(e), read)
                continue
            except OSError as e:
                where = storage.redact(full)
                yield self._skip(rel, "unreadable file", f"{where}: {e.strerror or e}", read)
                continue
            example = encode_example_parts(
                encoded=stored,
                image_format=info.format,
                height=info.height,
                width=info.width,
                channels=info.channels,
                label=label,
                text=self.classes[label],
                filename=rel,
                orientation=info.orientation,
            )
            yield Item.of_image(example, info, read, len(stored), resized)

    def _skip(self, rel: str, reason: str, message: str, size: int) -> Item:
        where = storage.redact(storage.join(self.root, rel))
        return Item.skip(where, rel, reason, message, size, self.strict)
