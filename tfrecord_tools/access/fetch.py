"""Many records of a :class:`~tfrecord_tools.access.source.TFRecordDataSource` by index in
one go: what the PyTorch DataLoader's batched fetch (``__getitems__``) and grain's batched
reads call.

Data flow: indices -> (shard, record, offset, size) through the source's index -> **sorted
by offset within each shard, neighbours joined into runs** -> one read per run (the
source's ``RandomReader``: one ``os.pread`` locally; ranged requests, four at a time, in a
bucket) -> both CRCs of every record (as arrays when the batch's records are one length)
-> raw pixels of one layout as one array slice (``batch``'s vectorised path, as for
sequential reads) | parse + decode per record -> the order asked.

The answers are those of ``[src[i] for i in indices]``, record for record: a record that
fails a check here (a CRC, a header, a short read) is handed to ``src[i]``, which names the
damage (file, record, offset) or, with ``skip_corrupt``, reports it and gives the next
intact record, as it would have one index at a time.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..dataset.keys import OURS
from ..format.framing import (
    FOOTER,
    FOOTER_SIZE,
    HEADER_SIZE,
    OVERHEAD,
    crc32c_function,
    header,
    mask,
)
from ..storage import RandomReader, read_pieces
from .batch import _raw_pixels
from .frames import fixed_rows

if TYPE_CHECKING:
    from .source import TFRecordDataSource

__all__ = ["fetch", "fetch_batch", "fetch_samples"]

Images = np.ndarray | list[np.ndarray]


def fetch_samples(src: TFRecordDataSource, indices: Sequence[int]) -> list[tuple[np.ndarray, int]]:
    """``[src[i] for i in indices]``, read and decoded as one batch."""
    images, labels = fetch(src, indices)
    return list(zip(images, labels.tolist(), strict=True))


def fetch_batch(src: TFRecordDataSource, indices: Sequence[int]) -> tuple[Images, np.ndarray]:
    """``(images, labels)`` of records ``indices``, in that order (repeats allowed):
    images one uint8 ``[B, H, W, C]`` array when they share a shape (always with
    ``image_size``), else a list; labels int64 ``[B]``. Negative indices count from the
    end; one out of range is an ``IndexError``."""
    images, labels = fetch(src, indices)
    if isinstance(images, list) and images and all(i.shape == images[0].shape for i in images):
        return np.stack(images), labels
    return images, labels


def fetch(src: TFRecordDataSource, indices: Sequence[int]) -> tuple[Images, np.ndarray]:
    """:func:`fetch_batch` without stacking: the images as they come, one ``[B, H, W, C]``
    array from the raw-pixel path, else a list of ``[H, W, C]`` arrays (no copy made to
    stack them, for a caller that copies them anyway)."""
    wanted = _normalised(src, indices)
    if not len(wanted):
        return [], np.empty(0, np.int64)
    unique, order = np.unique(wanted, return_inverse=True)  # sorted: by shard, then offset
    batch = _Batch(src, unique)
    fast = batch.raw_pixels(order)
    if fast is not None:
        return fast
    decoded: dict[int, tuple[np.ndarray, int]] = {}
    images, labels = [], []
    for index, k in zip(wanted.tolist(), order.tolist(), strict=True):
        if not batch.intact[k]:  # damaged or cut short: named, or skipped, by src[i]
            image, label = src[index]
        elif k in decoded:  # a repeat: its own copy, as src[i] gives
            image, label = decoded[k][0].copy(), decoded[k][1]
        else:
            image, label = decoded[k] = batch.decode(k)
        images.append(image)
        labels.append(label)
    return images, np.array(labels, np.int64)


def _normalised(src: TFRecordDataSource, indices: Sequence[int]) -> np.ndarray:
    """``indices`` as int64 in ``[0, len(src))`` (negative ones counted from the end), as
    ``src[i]`` takes them; the index is loaded on the way."""
    n = len(src)
    if src._starts is None:  # compressed shards: this says they have no random access
        src._load_index()
    wanted = np.asarray(indices)
    if wanted.dtype.kind not in "iu" or wanted.ndim != 1:  # anything else index() takes
        wanted = np.fromiter((operator.index(i) for i in indices), np.int64)
    wanted = wanted.astype(np.int64, copy=True)
    wanted[wanted < 0] += n
    bad = np.flatnonzero((wanted < 0) | (wanted >= n))
    if len(bad):
        raise IndexError(f"record {list(indices)[bad[0]]} of {n}")
    return wanted


class _Batch:
    """The records ``unique`` (sorted global indices) read in runs and checked. Record
    ``k`` lies at byte ``at[k]`` of read ``piece_of[k]``; ``intact[k]`` says both its CRCs
    and its header passed; ``rows`` holds every record's Example bytes as one array when
    they are all one length (and all intact)."""

    def __init__(self, src: TFRecordDataSource, unique: np.ndarray):
        self.src = src
        starts = np.asarray(src._starts, np.int64)  # type: ignore[arg-type]
        shards = np.searchsorted(starts, unique, side="right") - 1  # as source._read's bisect
        records = unique - starts[shards]
        count = len(unique)
        offsets, sizes = np.empty(count, np.int64), np.empty(count, np.int64)
        piece_of, piece_start = np.empty(count, np.int64), np.empty(count, np.int64)
        self.pieces: list[bytes] = []
        edges = np.flatnonzero(np.diff(shards)) + 1
        for lo, hi in zip([0, *edges.tolist()], [*edges.tolist(), count], strict=True):
            shard = int(shards[lo])
            picked = records[lo:hi]
            o = np.frombuffer(src._offsets[shard], np.int64)[picked]  # type: ignore[index]
            s = np.frombuffer(src._sizes[shard], np.int64)[picked]  # type: ignore[index]
            offsets[lo:hi], sizes[lo:hi] = o, s
            first = np.r_[True, o[1:] != o[:-1] + s[:-1]]  # a record that starts a run
            run = np.cumsum(first) - 1
            firsts = np.flatnonzero(first)
            lasts = np.r_[firsts[1:], hi - lo] - 1
            piece_of[lo:hi] = len(self.pieces) + run
            piece_start[lo:hi] = o[firsts][run]
            ranges = list(zip(o[firsts].tolist(), (o[lasts] + s[lasts]).tolist(), strict=True))
            self.pieces.extend(self._read(shard, ranges))
        self.sizes = sizes
        # Python ints for the record-by-record paths
        self.piece_of, self.at = piece_of.tolist(), (offsets - piece_start).tolist()
        self.offsets, self.shards, self.records = (
            offsets.tolist(),
            shards.tolist(),
            records.tolist(),
        )
        self.rows: np.ndarray | None = None
        self.intact = self._check()

    def _read(self, shard: int, ranges: list[tuple[int, int]]) -> list[bytes]:
        src = self.src
        reader = src._readers[shard]
        if reader is None:
            reader = src._readers[shard] = RandomReader(src.files[shard])
        if reader.location.is_url and len(ranges) > 1:
            return read_pieces(reader.location, ranges)
        return [reader.read(start, end - start) for start, end in ranges]

    def _check(self) -> list[bool]:
        """Both CRCs and the header of every record: as arrays when every record is one
        size and all is well (the common case), else record by record."""
        size = int(self.sizes[0])
        count = len(self.sizes)
        if (self.sizes == size).all():
            blob = self.pieces[0] if len(self.pieces) == 1 else b"".join(self.pieces)
            if len(blob) == count * size:
                rows = fixed_rows(np.frombuffer(blob, np.uint8))
                if rows is not None and rows.shape[1] == size - OVERHEAD:
                    self.rows = rows
                    return [True] * count
        crc = crc32c_function()
        views = [memoryview(p) for p in self.pieces]
        intact = []
        for piece, at, size in zip(self.piece_of, self.at, self.sizes.tolist(), strict=True):
            view = views[piece]
            end = at + size - FOOTER_SIZE
            intact.append(
                end + FOOTER_SIZE <= len(view)
                and view[at : at + HEADER_SIZE] == header(size - OVERHEAD)
                and mask(crc(view[at + HEADER_SIZE : end])) == FOOTER.unpack_from(view, end)[0]
            )
        return intact

    def raw_pixels(self, order: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """Every record's pixels as one array slice, when they are raw pixels of one
        layout (what ``convert mnist --encoding raw`` writes); None otherwise."""
        src = self.src
        if self.rows is None or src.keys != OURS:
            return None
        return _raw_pixels(
            self.rows, order, src.channels, src.image_size, contiguous=False,
            orientation=src.orientation,
        )  # fmt: skip

    def decode(self, k: int) -> tuple[np.ndarray, int]:
        """Record ``k``'s ``(image, label)`` (its checks passed), with the source's options;
        an Example that is no image is an error naming file, record and offset."""
        if self.rows is not None:
            data = memoryview(self.rows[k])
        else:
            at = self.at[k] + HEADER_SIZE
            data = memoryview(self.pieces[self.piece_of[k]])[
                at : at + int(self.sizes[k]) - OVERHEAD
            ]
        file = self.src.files[self.shards[k]]
        return self.src.decode(data, file, self.records[k], self.offsets[k])
