"""Sequential reading for :class:`~tfrecord_tools.access.source.TFRecordDataSource`:
whole shards at a time, in batches (``iter_batches``) or record by record without an index
(``iter_stream``, what the PyTorch iterable dataset uses).

Data flow: the worker's part of the records (contiguous ranges of the global order) ->
whole shard in memory -> **vectorised framing** (``frames``) -> raw pixels of one layout:
one array slice per batch, labels decoded as arrays | our records' simple PNGs: keys
parsed as arrays, decoded in one call (``decode_together``, batched random reads use it
too) | anything else: parse + decode per record -> batches.

The vectorised path needs every record of a shard to be the same Example layout (same
keys, same lengths; values may differ) with raw pixels of one shape, as
``convert mnist --encoding raw`` writes: it checks that on every record it delivers (all
structure bytes compared to the first record's in one numpy operation), else falls back
to parsing record by record.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from ..dataset.keys import OURS
from ..errors import Damage, TFRecordToolsError
from ..format import example
from ..format.scan import RecordScanner
from .decode import decode_simple_pngs
from .frames import fixed_rows, read_stream
from .parse import ExampleParseError, field_spans, parse_image_batch

if TYPE_CHECKING:
    from .source import TFRecordDataSource

__all__ = ["decode_together", "iter_batches", "iter_stream", "raw_pixels", "worker_range"]

Images = np.ndarray | list[np.ndarray]


def worker_range(total: int, num_workers: int, worker_index: int) -> tuple[int, int]:
    """Worker ``worker_index``'s contiguous share ``[lo, hi)`` of ``total`` records."""
    if num_workers < 1 or not 0 <= worker_index < num_workers:
        raise TFRecordToolsError(f"worker_index {worker_index} is not in 0..{num_workers - 1}")
    return total * worker_index // num_workers, total * (worker_index + 1) // num_workers


def iter_batches(
    src: TFRecordDataSource,
    batch_size: int,
    *,
    shuffle: bool = False,
    seed: int | None = None,
    num_workers: int = 1,
    worker_index: int = 0,
    drop_remainder: bool = False,
) -> Iterator[tuple[Images, np.ndarray]]:
    """``(images, labels)``: images one uint8 ``[B, H, W, C]`` array when the batch's
    images share a shape (always with ``image_size``), else a list; labels int64 ``[B]``.

    Worker ``worker_index`` of ``num_workers`` reads a contiguous share of the records
    (together: every record once, however many shards). ``shuffle`` permutes the order
    of the worker's shard pieces and the records within each piece (a new order per call
    unless ``seed`` is given): a shard-local shuffle, not a global one (use ``src[i]``
    with a sampler for that).
    """
    if batch_size < 1:
        raise TFRecordToolsError(f"batch_size must be at least 1, got {batch_size}")
    counts = src.shard_counts()
    lo, hi = worker_range(sum(counts), num_workers, worker_index)
    pieces, start = [], 0
    for shard, count in enumerate(counts):
        a, b = max(lo, start), min(hi, start + count)
        if a < b:
            pieces.append((shard, a - start, b - start))
        start += count
    rng = np.random.default_rng(seed) if shuffle else None
    if rng is not None:
        pieces = [pieces[i] for i in rng.permutation(len(pieces))]
    batcher = _Batcher(batch_size)
    for shard, a, b in pieces:
        images, labels = _read_piece(src, shard, a, b, rng)
        yield from batcher.add(images, labels)
    if batcher.count and not drop_remainder:
        yield batcher.take(batcher.count)


def _read_piece(
    src: TFRecordDataSource, shard: int, a: int, b: int, rng: np.random.Generator | None
) -> tuple[Images, np.ndarray]:
    """Records ``[a, b)`` of one shard, in shuffled order when ``rng`` is given."""
    file = src.files[shard]
    promised = src.shard_counts()[shard]
    # a bucket's object is fetched once (one request), for the vectorised path and the scan
    data = src.shards[shard].location.read() if src.shards[shard].is_url else None
    try:
        stream = read_stream(file, src.compression, data)
    except EOFError:  # a damaged compressed stream: the scan below names (or skips) it
        stream = np.empty(0, np.uint8)
    rows = fixed_rows(stream, slice(a, b))
    if rows is not None and b == promised and len(rows) > promised:
        _too_many(src, shard, len(rows))
    if rows is not None and len(rows) >= b:
        order = np.arange(a, b) if rng is None else a + rng.permutation(b - a)
        fast = raw_pixels(
            rows, order, src.channels, src.image_size, contiguous=rng is None,
            orientation=src.orientation,
        )  # fmt: skip
        if fast is not None:
            return fast
        size, length = rows.shape[1] + 16, rows.shape[1]
        starts = np.arange(len(order), dtype=np.int64) * length
        together = decode_together(src, rows[order].tobytes(), starts, starts + length)
        decoded = [
            done or src.decode(rows[i].tobytes(), file, int(i), int(i) * size)
            for done, i in zip(together, order.tolist(), strict=True)
        ]
        return _stack([image for image, _ in decoded]), np.array([y for _, y in decoded])
    del stream
    records: dict[int, tuple[bytes, int]] = {}
    last = -1
    with RecordScanner(file, src.compression, size=src.shards[shard].size, data=data) as scanner:
        for item in scanner:
            last = item.index
            if isinstance(item, Damage):
                if a <= item.index < b:
                    _damaged(src, file, item)
                continue
            if a <= item.index < b:
                records[item.index] = (bytes(scanner.payload(item)), item.offset)
            elif item.index >= b:
                if b == promised:  # a record past the last one promised
                    _too_many(src, shard, item.index + 1)
                break
        if last < b - 1:  # the shard ended before the records its count promised
            _short(src, shard, last + 1, scanner.stream_size)
    order = sorted(records)
    if rng is not None:
        order = [order[i] for i in rng.permutation(len(order))]
    lengths = np.array([len(records[i][0]) for i in order], np.int64)
    ends = np.cumsum(lengths)
    together = decode_together(src, b"".join(records[i][0] for i in order), ends - lengths, ends)
    decoded = [
        done or src.decode(records[i][0], file, i, records[i][1])
        for done, i in zip(together, order, strict=True)
    ]
    return _stack([image for image, _ in decoded]), np.array([y for _, y in decoded], np.int64)


def decode_together(
    src: TFRecordDataSource, blob: bytes, starts: np.ndarray, ends: np.ndarray
) -> list[tuple[np.ndarray, int] | None]:
    """``(image, label)`` of the (checked) Examples at ``blob[starts[k]:ends[k]]`` that
    decode as a batch, with ``src``'s options: our records' keys parsed as arrays
    (``parse_image_batch``), their simple PNGs decoded in one call (``decode_simple_pngs``);
    None for the rest, which ``src.decode`` reads one at a time (and names if they fail)."""
    out: list[tuple[np.ndarray, int] | None] = [None] * len(starts)
    if src.keys != OURS or src.task != "classification" or not len(starts):
        return out
    buffer = np.frombuffer(blob, np.uint8)
    fields = parse_image_batch(buffer, starts, ends)
    upright = (fields.orientation < 2) | (fields.orientation > 8) | (not src.orientation)
    first, last = fields.encoded
    png = last - first >= 41  # a PNG's signature, header and first chunk: no JPEG copied
    png[png] = buffer[first[png]] == 0x89
    picked = np.flatnonzero(fields.ok & upright & png)
    spans = zip(first[picked].tolist(), last[picked].tolist(), strict=True)
    images = decode_simple_pngs(
        [blob[a:b] for a, b in spans], channels=src.channels, image_size=src.image_size
    )
    labels = fields.label[picked].tolist()
    for k, image, label in zip(picked.tolist(), images, labels, strict=True):
        if image is not None:
            out[k] = (image, label)
    return out


def _short(src: TFRecordDataSource, shard: int, found: int, end: int) -> None:
    """A shard that holds fewer records than its metadata (or index) promises: an error
    naming it, or with ``skip_corrupt`` a reported skip, never a silent short read."""
    ref = src.shards[shard]
    promised = src.shard_counts()[shard]
    by = ref.promised_by if ref.records is not None else "its index"
    _damaged(
        src,
        src.files[shard],
        Damage(
            found,
            end,
            end,
            "missing records",
            f"the shard ends after {found} records, {by} promises {promised}: it lost its end, "
            f"or {by} is wrong (run `tfrecord-tools verify`, then `tfrecord-tools repair`)",
        ),
    )


def _too_many(src: TFRecordDataSource, shard: int, found: int) -> None:
    ref = src.shards[shard]
    by = ref.promised_by if ref.records is not None else "its index"
    raise TFRecordToolsError(
        f"{ref.shown}: holds at least {found} records, {by} promises "
        f"{src.shard_counts()[shard]}: {by} does not describe this shard (run "
        f"`tfrecord-tools verify {ref.shown}`)"
    )


def _damaged(src: TFRecordDataSource, file: str, damage: Damage) -> None:
    error = damage.error(file)
    if not src.skip_corrupt:
        raise error
    src.report(error, "skipped")


_STRUCTURE_KEYS = (example.FORMAT, example.HEIGHT, example.WIDTH, example.CHANNELS)


def raw_pixels(
    rows: np.ndarray,
    order: np.ndarray,
    channels: int,
    image_size: tuple[int, int] | None,
    *,
    contiguous: bool,
    orientation: bool = True,
) -> tuple[np.ndarray, np.ndarray] | None:
    """Images and labels of ``rows[order]`` straight from the bytes, when every one of
    them is the first row's layout with raw pixels of one shape (and no EXIF orientation
    to apply); None otherwise."""
    template = rows[order[0]] if len(order) else rows[0]
    try:
        spans = field_spans(template.tobytes())
    except ExampleParseError:
        return None
    keys = {k.decode("utf-8", "replace"): v for k, v in spans.items()}
    try:
        fmt, height, width, stored, label, encoded = (
            keys[k] for k in (*_STRUCTURE_KEYS, example.LABEL, example.ENCODED)
        )
    except KeyError:
        return None
    if orientation and example.ORIENTATION in keys:
        return None
    if fmt[0] or not all(v[0] for v in (height, width, stored, label)) or encoded[0]:
        return None
    if bytes(template[fmt[1] : fmt[2]]).strip().lower() != b"raw":
        return None
    h, w, c = (_varint(template[s:e]) for _, s, e in (height, width, stored))
    if h * w * c != encoded[2] - encoded[1] or h * w * c == 0 or c not in (1, 3, 4):
        return None
    if image_size not in (None, (h, w)) or (c != channels and (c, channels) != (1, 3)):
        return None
    structure = np.ones(rows.shape[1], bool)
    for key, (_, s, e) in keys.items():
        if key not in _STRUCTURE_KEYS:
            structure[s:e] = False
    edges = np.flatnonzero(np.diff(np.concatenate([[False], structure, [False]])))
    runs = list(zip(edges[0::2].tolist(), edges[1::2].tolist(), strict=True))
    varints = [(s, e) for is_int, s, e in keys.values() if is_int and e > s]
    first, last = (int(order.min()), int(order.max()) + 1) if len(order) else (0, 0)
    part = rows[first:last]
    # runs of structure bytes compared as strided slices: no copy of the records
    if not all((part[:, s:e] == template[s:e]).all() for s, e in runs):
        return None
    if not all(((part[:, s:e] ^ template[s:e]) & 0x80 == 0).all() for s, e in varints):
        return None
    picked = part[order - first] if not contiguous else part
    values = picked[:, label[1] : label[2]].astype(np.uint64) & 0x7F
    shifts = np.arange(values.shape[1], dtype=np.uint64) * np.uint64(7)
    labels = (values << shifts).sum(axis=1, dtype=np.uint64).view(np.int64)
    images = picked[:, encoded[1] : encoded[2]].reshape(-1, h, w, c)
    if c != channels:  # 1 -> 3, as tf.image would repeat it
        images = np.repeat(images, 3, axis=-1)
    return images, labels


def _varint(data: np.ndarray) -> int:
    return sum((int(b) & 0x7F) << (7 * i) for i, b in enumerate(data))


def _stack(images: list[np.ndarray]) -> Images:
    if images and all(i.shape == images[0].shape for i in images):
        return np.stack(images)
    return images


class _Batcher:
    """Cuts chunks of (images, labels) into batches of one size, across chunk edges."""

    def __init__(self, size: int):
        self.size = size
        self.count = 0
        self._images: list[Images] = []
        self._labels: list[np.ndarray] = []

    def add(self, images: Images, labels: np.ndarray) -> Iterator[tuple[Images, np.ndarray]]:
        if len(labels):
            self._images.append(images)
            self._labels.append(labels)
            self.count += len(labels)
        while self.count >= self.size:
            yield self.take(self.size)

    def take(self, n: int) -> tuple[Images, np.ndarray]:
        images, labels = [], []
        self.count -= n
        while n:
            chunk, chunk_labels = self._images[0], self._labels[0]
            k = min(n, len(chunk_labels))
            images.append(chunk[:k])
            labels.append(chunk_labels[:k])
            if k == len(chunk_labels):
                del self._images[0], self._labels[0]
            else:
                self._images[0], self._labels[0] = chunk[k:], chunk_labels[k:]
            n -= k
        label_array = labels[0] if len(labels) == 1 else np.concatenate(labels)
        if all(isinstance(i, np.ndarray) for i in images):
            shapes = {i.shape[1:] for i in images}  # type: ignore[union-attr]
            if len(shapes) == 1:
                if len(images) == 1:
                    return np.ascontiguousarray(images[0]), label_array.astype(np.int64)
                return np.concatenate(images), label_array.astype(np.int64)  # type: ignore[arg-type]
        flat = [image for chunk in images for image in chunk]
        return _stack(flat), label_array.astype(np.int64)


def iter_stream(
    src: TFRecordDataSource, *, num_workers: int = 1, worker_index: int = 0
) -> Iterator[tuple[np.ndarray, int]]:
    """Every record of the worker's share, in file order, from the record stream alone
    (no index): whole files round-robin when there are at least as many files as workers,
    else every ``num_workers``-th record of every file. Damage is raised, or with
    ``skip_corrupt`` reported by the worker whose share it falls in and skipped."""
    worker_range(1, num_workers, worker_index)  # checks the arguments
    by_file = len(src.files) >= num_workers
    files = range(worker_index, len(src.files), num_workers) if by_file else range(len(src.files))
    seen = 0  # records (and damaged stretches) before this file, for the modulo split
    for shard in files:
        file = src.files[shard]
        promised = src.shards[shard].records
        with RecordScanner(file, src.compression, size=src.shards[shard].size) as scanner:
            last = -1
            for item in scanner:
                last = item.index
                if promised is not None and item.index >= promised:
                    _too_many(src, shard, item.index + 1)
                mine = by_file or (seen + item.index) % num_workers == worker_index
                if not mine:
                    continue
                if isinstance(item, Damage):
                    _damaged(src, file, item)
                    continue
                yield src.decode(bytes(scanner.payload(item)), file, item.index, item.offset)
            if promised is not None and last + 1 < promised:
                _short(src, shard, last + 1, scanner.stream_size)
        seen += last + 1
