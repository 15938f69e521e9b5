"""Many records of a :class:`~tfrecord_tools.access.source.TFRecordDataSource` by index in
one go: what the PyTorch DataLoader's batched fetch (``__getitems__``) and grain's batched
reads call.

Data flow: indices -> (shard, record, offset, size) (``src.locate``) -> **sorted by offset
within each shard, neighbours joined into runs** -> one read per run (``src.reader``: one
``os.pread`` locally; ranged requests, four at a time, in a bucket) -> both CRCs and the
header of every record, as arrays -> raw pixels of one layout: one array slice
(``batch.raw_pixels``) | our records' image keys as arrays, their simple PNGs decoded in
one call (``batch.decode_together``) | anything else: parse + decode per record -> the
order asked.

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
from ..format.framing import FOOTER_SIZE, HEADER_SIZE, OVERHEAD, crc32c_function, header, mask
from ..storage import read_pieces
from .batch import decode_together, raw_pixels
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
    decoded = batch.decode_together()
    used = [False] * len(unique)
    images, labels = [], []
    for index, k in zip(wanted.tolist(), order.tolist(), strict=True):
        if not batch.intact[k]:  # damaged or cut short: named, or skipped, by src[i]
            image, label = src[index]
        else:
            if decoded[k] is None:  # one at a time, in the order asked: errors too
                decoded[k] = batch.decode(k)
            image, label = decoded[k]  # type: ignore[misc]
            if used[k]:  # a repeat: its own copy, as src[i] gives
                image = image.copy()
            used[k] = True
        images.append(image)
        labels.append(label)
    return images, np.array(labels, np.int64)


def _normalised(src: TFRecordDataSource, indices: Sequence[int]) -> np.ndarray:
    """``indices`` as int64 in ``[0, len(src))`` (negative ones counted from the end), as
    ``src[i]`` takes them."""
    n = len(src)
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
    """The records ``unique`` (sorted global indices) read in runs into one buffer and
    checked: record ``k``'s Example bytes are ``blob[start[k]:end[k]]`` when ``intact[k]``
    (both CRCs and its header passed, and it was read whole); ``rows`` holds them all as one
    array when they are all one length (and all intact)."""

    def __init__(self, src: TFRecordDataSource, unique: np.ndarray):
        self.src = src
        shards, records, offsets, sizes = src.locate(unique)
        count = len(unique)
        piece_of, piece_start = np.empty(count, np.int64), np.empty(count, np.int64)
        pieces: list[bytes] = []
        edges = np.flatnonzero(np.diff(shards)) + 1
        for lo, hi in zip([0, *edges.tolist()], [*edges.tolist(), count], strict=True):
            o, s = offsets[lo:hi], sizes[lo:hi]
            first = np.ones(hi - lo, bool)  # a record that starts a run
            np.not_equal(o[1:], o[:-1] + s[:-1], out=first[1:])
            run = np.cumsum(first) - 1
            firsts = np.flatnonzero(first)
            lasts = np.append(firsts[1:], hi - lo) - 1
            piece_of[lo:hi] = len(pieces) + run
            piece_start[lo:hi] = o[firsts][run]
            ranges = list(zip(o[firsts].tolist(), (o[lasts] + s[lasts]).tolist(), strict=True))
            pieces.extend(self._read(int(shards[lo]), ranges))
        self.blob = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        self.buffer = np.frombuffer(self.blob, np.uint8)
        got = np.array([len(p) for p in pieces], np.int64)
        base = np.cumsum(got) - got  # where each piece starts in the blob
        frame = base[piece_of] + (offsets - piece_start)  # each record's framing
        # read whole (not cut short by the file's end), and framed (an index's size)
        whole = (frame + sizes <= (base + got)[piece_of]) & (sizes >= OVERHEAD)
        self.start, self.end = frame + HEADER_SIZE, frame + sizes - FOOTER_SIZE
        self.sizes, self.shards, self.records, self.offsets = sizes, shards, records, offsets
        self.rows: np.ndarray | None = None
        if (sizes == sizes[0]).all() and got.sum() == count * sizes[0]:
            self.rows = fixed_rows(self.buffer)  # headers and CRCs as arrays, at C speed
            if self.rows is not None and self.rows.shape[1] != sizes[0] - OVERHEAD:
                self.rows = None
        self.intact = [True] * count if self.rows is not None else self._check(whole).tolist()

    def _read(self, shard: int, ranges: list[tuple[int, int]]) -> list[bytes]:
        reader = self.src.reader(shard)
        if reader.location.is_url and len(ranges) > 1:
            return read_pieces(reader.location, ranges)
        return [reader.read(start, end - start) for start, end in ranges]

    def _check(self, whole: np.ndarray) -> np.ndarray:
        """Which records read ``whole`` have the header of their index length and the
        data CRC of their footer: as arrays, one C call per record for the CRC."""
        buffer, start, end = self.buffer, self.start, self.end
        ok = np.zeros(len(start), bool)
        safe = np.flatnonzero(whole)  # where a record's bytes all lie in the blob
        if not len(safe):
            return ok
        lengths, which = np.unique(self.sizes[safe] - OVERHEAD, return_inverse=True)
        headers = np.frombuffer(b"".join(header(int(n)) for n in lengths), np.uint8)
        window = np.lib.stride_tricks.sliding_window_view
        found = window(buffer, HEADER_SIZE)[start[safe] - HEADER_SIZE]
        heads_ok = (found == headers.reshape(-1, HEADER_SIZE)[which]).all(axis=1)
        crc, view = crc32c_function(), memoryview(self.blob)
        crcs = np.fromiter(
            (crc(view[a:b]) for a, b in zip(start[safe].tolist(), end[safe].tolist(), strict=True)),
            np.uint64,
            count=len(safe),
        )
        footers = window(buffer, FOOTER_SIZE)[end[safe]].copy().view("<u4")[:, 0]
        ok[safe] = heads_ok & (mask(crcs).astype("<u4") == footers)
        return ok

    def raw_pixels(self, order: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """Every record's pixels as one array slice, when they are raw pixels of one
        layout (what ``convert mnist --encoding raw`` writes); None otherwise."""
        src = self.src
        if self.rows is None or src.keys != OURS or src.task != "classification":
            return None
        return raw_pixels(
            self.rows, order, src.channels, src.image_size, contiguous=False,
            orientation=src.orientation,
        )  # fmt: skip

    def decode_together(self) -> list[tuple[np.ndarray, int] | None]:
        """``(image, label)`` of the intact records that decode as a batch
        (``batch.decode_together``: our records' simple PNGs); None for the rest."""
        out: list[tuple[np.ndarray, int] | None] = [None] * len(self.start)
        intact = np.flatnonzero(self.intact)
        together = decode_together(self.src, self.blob, self.start[intact], self.end[intact])
        for k, done in zip(intact.tolist(), together, strict=True):
            out[k] = done
        return out

    def decode(self, k: int) -> tuple[np.ndarray, int]:
        """Record ``k``'s ``(image, label)`` (its checks passed), with the source's options;
        an Example that is no image is an error naming file, record and offset."""
        data = memoryview(self.blob)[int(self.start[k]) : int(self.end[k])]
        file = self.src.files[int(self.shards[k])]
        return self.src.decode(data, file, int(self.records[k]), int(self.offsets[k]))
