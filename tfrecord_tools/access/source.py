"""Random access to TFRecord shards of image Examples, without TensorFlow:
``TFRecordDataSource`` -- ``len(src)``, ``src[i] -> (image, label)``, ``src.batches()``.

Data flow: PATH -> ``dataset.resolve`` (the one resolver: ours, TFDS, bare files, local or
a URL) -> per-shard index (``.idx`` files held to ``format.index.check_index``, or headers
scanned) -> **one read by offset per record** (``storage.RandomReader``: ``os.pread``
locally, a ranged request in a bucket), both CRCs checked -> parse (``parse``, with the keys
``dataset.keys_for`` finds, as the tf.data reader does) -> decode (``decode``) ->
``(uint8 [H, W, C], int)``. Sequential reading of whole shards is ``batch``; the PyTorch
and grain adapters (``torch``, ``grain``) wrap this class.

A source pickles by path and options (plus any index it built in memory): files are opened
lazily, per process, so DataLoader and grain workers reopen them.
"""

from __future__ import annotations

import bisect
import logging
import operator
import os
from array import array
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from ..dataset import AUTO, TASKS, FeatureKeys, Shard, check_task, keys_for, resolve
from ..dataset.keys import OURS
from ..dataset.options import CHANNEL_CHOICES, normalise_size
from ..errors import Damage, RecordError, TFRecordToolsError
from ..format.example import decode_example
from ..format.framing import FOOTER, HEADER, OVERHEAD, header, iter_headers, masked_crc32c
from ..storage import RandomReader
from .decode import decode_fields
from .detection import decode_detection, decode_segmentation
from .parse import ExampleParseError, ImageFields, parse_image_example

__all__ = ["TFRecordDataSource"]

log = logging.getLogger(__name__)


class TFRecordDataSource:
    """Images and labels of TFRecord shards by index: ``len(src)``, ``src[i]``.

    ``path``: a dataset folder (its ``dataset.json`` gives files, counts, compression) or a
    glob / list of TFRecord files of ``tf.train.Example`` with the image keys make_dataset
    reads. ``src[i]`` is ``(image, label)``: uint8 ``[H, W, channels]`` (``image_size`` =
    N or (height, width) resizes) and an int; images are upright for their EXIF
    orientation (``image/orientation``, applied before any resize) unless
    ``orientation=False``, as make_dataset. Records are found through the ``.idx`` file
    beside each shard, or an index built in memory from the headers when it is missing.

    Damaged records (a CRC that does not match, a cut-short record) raise
    :class:`~tfrecord_tools.TFRecordToolsError` naming the file, record and offset; with
    ``skip_corrupt=True`` they are skipped instead and listed in ``src.skipped`` (and
    logged): ``src[i]`` of a damaged record gives the next intact one. Compressed shards
    have no random access: read them with :meth:`batches` or :meth:`stream`.

    ``task="detection"``: ``src[i]`` is a dict (``detection.decode_detection``: image,
    boxes, classes, keypoints when the records have them, and with ``masks=True`` a mask
    per object); ``task="segmentation"``: ``{"image", "mask"}``
    (``detection.decode_segmentation``). A task that does not fit the records is an error
    saying which to pass (``dataset.check_task``).
    """

    def __init__(
        self,
        path: str | os.PathLike | Sequence[str],
        *,
        split: str = "train",
        image_size: int | tuple[int, int] | None = None,
        channels: int = 3,
        compression: str | None = None,
        skip_corrupt: bool = False,
        orientation: bool = True,
        image_key: str | None = AUTO,
        label_key: str | None = AUTO,
        task: str = "classification",
        masks: bool = False,
    ):
        if task not in TASKS:
            raise TFRecordToolsError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
        self.task = task
        if not isinstance(masks, bool) or (masks and task != "detection"):
            raise TFRecordToolsError(
                f"masks=True reads a mask per object: it needs task='detection', got "
                f"masks={masks!r} with task={task!r}"
            )
        self.masks = masks
        if channels not in CHANNEL_CHOICES:
            raise TFRecordToolsError(f"channels must be 1, 3 or 4, got {channels}")
        self.path = path if isinstance(path, (str, os.PathLike)) else list(path)
        self.split = split
        self.image_size = normalise_size(image_size)
        self.channels = channels
        self.skip_corrupt = skip_corrupt
        if not isinstance(orientation, bool):
            raise TFRecordToolsError(
                f"orientation must be True (apply EXIF orientation) or False, got {orientation!r}"
            )
        self.orientation = orientation
        self.dataset = resolve(self.path, compression=compression).for_reading(split)
        self.shards: list[Shard] = list(self.dataset.shards)
        self.files: list[str] = self.dataset.files
        self.compression = self.dataset.compression
        self._manifest_counts = self.dataset.counts
        check_task(self.dataset, task)
        if task != "classification" and label_key == AUTO:  # objects, not an image label
            label_key = None
        self.keys: FeatureKeys = keys_for(self.dataset, image_key, label_key)
        self._ours = self.keys == OURS  # decided once: parse() is on every record's path
        #: Damaged records met so far (by this process), as RecordError: file, record, offset.
        self.skipped: list[RecordError] = []
        self._offsets: list[array] | None = None  # per shard, record offsets
        self._sizes: list[array] | None = None  # per shard, whole record sizes
        self._starts: list[int] | None = None  # global index of each shard's first record
        self._total = 0  # records in all shards, once the index is loaded
        self._readers: list[RandomReader | None] = [None] * len(self.files)

    # -- pickling: by path; open files are per process ------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_readers"] = [None] * len(self.files)
        state["skipped"] = []
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def close(self) -> None:
        """Close the shard files this process opened (they reopen on the next read)."""
        for i, reader in enumerate(self._readers):
            if reader is not None:
                reader.close()
                self._readers[i] = None

    def __enter__(self) -> TFRecordDataSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"TFRecordDataSource({self.path!r}, split={self.split!r}, "
            f"{len(self.files)} shard(s), {self.compression})"
        )

    # -- the index -----------------------------------------------------------------------

    def shard_counts(self) -> list[int]:
        """Records per shard: the index's when built, else the manifest's, else scanned."""
        if self._offsets is not None:
            return [len(o) for o in self._offsets]
        if self._manifest_counts is not None:
            return list(self._manifest_counts)
        if self.compression != "none":  # no random access: count by decompressing once
            return [sum(1 for _ in iter_headers(f, self.compression)) for f in self.files]
        self._load_index()
        return [len(o) for o in self._offsets]  # type: ignore[union-attr]

    def _load_index(self) -> None:
        if self.compression != "none":
            raise TFRecordToolsError(
                f"{self.files[0]}: shards compressed with {self.compression} have no random "
                "access (a record's offset is in the uncompressed stream): read them in "
                "order with src.batches() or src.stream(), or convert with --compression none"
            )
        offsets, sizes = [], []
        for shard in self.shards:
            o, s = self._shard_index(shard)
            offsets.append(o)
            sizes.append(s)
        starts, total = [], 0
        for o in offsets:
            starts.append(total)
            total += len(o)
        self._offsets, self._sizes, self._starts = offsets, sizes, starts
        self._total = total

    def _shard_index(self, shard: Shard) -> tuple[array, array]:
        """Record offsets and sizes of ``shard``: its ``.idx`` once it is known to describe
        the shard (``Shard.checked_index``: contiguous, ending at the shard's end, as many as
        the metadata promises), else its headers scanned, held to the same count."""
        if shard.has_index():
            entries = shard.checked_index()
            return array("q", (e[0] for e in entries)), array("q", (e[1] for e in entries))
        offsets, sizes = array("q"), array("q")
        try:
            for record in iter_headers(shard.file):
                offsets.append(record.offset)
                sizes.append(record.size)
        except RecordError as e:  # a damaged header: nothing after it can be located
            if not self.skip_corrupt:
                raise
            self.report(e, "the records after it are not indexed")
            return offsets, sizes
        if shard.records is not None and shard.records != len(offsets):
            raise TFRecordToolsError(
                f"{shard.shown}: holds {len(offsets)} records, {shard.promised_by} promises "
                f"{shard.records}: {shard.promised_by} is wrong, or the shard lost records (run "
                f"`tfrecord-tools verify {shard.shown}`, then `tfrecord-tools repair`)"
            )
        return offsets, sizes

    def __len__(self) -> int:
        if self._starts is None:
            if self.compression != "none":
                return sum(self.shard_counts())
            self._load_index()
        return self._total

    # -- random access -------------------------------------------------------------------

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        """``(image, label)`` of record ``index`` (negative counts from the end); the
        task's dict for detection and segmentation."""
        i = operator.index(index)
        n = self._total if self._starts is not None else len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"record {index} of {n}")
        for step in range(n):
            try:
                data, shard, j = self._read((i + step) % n)
            except RecordError as e:
                if not self.skip_corrupt:
                    raise
                self.report(e, "skipped")
                continue
            return self.decode(data, self.files[shard], j, self._offsets[shard][j])  # type: ignore[index]
        raise TFRecordToolsError(f"{self.path}: every record is damaged")

    def read_record(self, index: int) -> tuple[bytes, int, int]:
        """The Example bytes of record ``index`` (both CRCs checked), its shard and its
        index in that shard. One ``os.pread`` of the whole record."""
        data, shard, j = self._read(index)
        return bytes(data), shard, j

    def locate(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Shard, record in that shard, byte offset and whole record size (framing included)
        of records ``indices`` (int64, each in ``[0, len(self))``), as int64 arrays: how
        batched reads (``fetch``) plan theirs. Loads the index."""
        if self._starts is None:
            self._load_index()
        starts = np.asarray(self._starts, np.int64)
        shards = np.searchsorted(starts, indices, side="right") - 1  # as _read's bisect
        records = indices - starts[shards]
        offsets, sizes = np.empty_like(records), np.empty_like(records)
        for shard in np.unique(shards).tolist():
            mine = shards == shard
            offsets[mine] = np.frombuffer(self._offsets[shard], np.int64)[records[mine]]  # type: ignore[index]
            sizes[mine] = np.frombuffer(self._sizes[shard], np.int64)[records[mine]]  # type: ignore[index]
        return shards, records, offsets, sizes

    def reader(self, shard: int) -> RandomReader:
        """This process's reader of shard ``shard`` (opened on first use, closed by
        :meth:`close`)."""
        reader = self._readers[shard]
        if reader is None:
            reader = self._readers[shard] = RandomReader(self.files[shard])
        return reader

    def _read(self, index: int) -> tuple[memoryview, int, int]:
        """:meth:`read_record` without copying the Example out of the record read."""
        if self._starts is None:
            self._load_index()
        shard = bisect.bisect_right(self._starts, index) - 1  # type: ignore[arg-type]
        j = index - self._starts[shard]  # type: ignore[index]
        offset = self._offsets[shard][j]  # type: ignore[index]
        size = self._sizes[shard][j]  # type: ignore[index]
        reader = self._readers[shard]
        if reader is None:
            reader = self._readers[shard] = RandomReader(self.files[shard])
        buf = reader.read(offset, size)
        length = size - OVERHEAD
        problem = None
        if len(buf) < size:
            problem = ("truncated record", f"{len(buf)} of {size} bytes (the index's length)")
        elif buf[:12] != header(length):
            got = HEADER.unpack_from(buf)[0]
            if masked_crc32c(buf[:8]) != HEADER.unpack_from(buf)[1]:
                problem = ("length CRC mismatch", "")
            else:
                problem = ("index mismatch", f"the index says {length} bytes, the header {got}")
        else:
            data = memoryview(buf)[12 : 12 + length]
            if masked_crc32c(data) == FOOTER.unpack_from(buf, 12 + length)[0]:
                return data, shard, j
            problem = ("data CRC mismatch", "")
        damage = Damage(j, offset, offset + size, *problem)
        raise damage.error(self.files[shard])

    def decode(
        self, data: bytes | memoryview, file: str, index: int, offset: int
    ) -> tuple[np.ndarray, int]:
        """``(image, label)`` of one record's Example bytes, with this source's options;
        a record that is not an image Example is an error naming ``file``, record, offset.
        ``task="detection"`` / ``"segmentation"``: the dict of
        ``detection.decode_detection`` / ``decode_segmentation`` instead."""
        try:
            if self.task == "detection":
                return decode_detection(
                    data,
                    channels=self.channels,
                    image_size=self.image_size,
                    orientation=self.orientation,
                    masks=self.masks,
                )  # type: ignore[return-value]
            if self.task == "segmentation":
                return decode_segmentation(
                    data,
                    channels=self.channels,
                    image_size=self.image_size,
                    orientation=self.orientation,
                )  # type: ignore[return-value]
            fields = self.parse(data)
            image = decode_fields(
                fields,
                channels=self.channels,
                image_size=self.image_size,
                orientation=self.orientation,
            )
        except (ExampleParseError, TFRecordToolsError, OSError, ValueError) as e:
            what = "image Example" if self.task == "classification" else f"{self.task} record"
            raise TFRecordToolsError(
                f"{file}: record {index} at byte {offset}: not a decodable {what}: {e}"
            ) from None
        return image, fields.label

    def parse(self, data: bytes | memoryview) -> ImageFields:
        """The image fields of one record's Example bytes, by this source's keys: ours at C
        speed, any other layout ``dataset.keys_for`` found through the generic parser."""
        if self._ours:
            return parse_image_example(data)
        return fields_by_keys(decode_example(bytes(data)), self.keys)

    def report(self, error: RecordError, what: str) -> None:
        """Note a damaged record met with ``skip_corrupt``: in ``skipped`` and the log."""
        self.skipped.append(error)
        log.warning("%s (%s)", error, what)

    # -- sequential ----------------------------------------------------------------------

    def batches(
        self,
        batch_size: int,
        *,
        shuffle: bool = False,
        seed: int | None = None,
        num_workers: int = 1,
        worker_index: int = 0,
        drop_remainder: bool = False,
    ) -> Iterator[tuple[np.ndarray | list[np.ndarray], np.ndarray]]:
        """``(images, labels)`` batches read whole shards at a time (see
        :func:`~tfrecord_tools.access.batch.iter_batches`); classification only (detection,
        segmentation: ``src[i]`` or ``stream()``, batched by ``detection.collate_detection``,
        ``pad_detection``, ``collate_segmentation``)."""
        if self.task != "classification":
            raise TFRecordToolsError(
                f"batches() stacks (image, label) pairs: for task={self.task!r} read src[i] "
                "or src.stream() and batch with tfrecord_tools.access.detection's "
                "collate_detection, pad_detection or collate_segmentation"
            )
        from .batch import iter_batches

        return iter_batches(
            self,
            batch_size,
            shuffle=shuffle,
            seed=seed,
            num_workers=num_workers,
            worker_index=worker_index,
            drop_remainder=drop_remainder,
        )

    def stream(
        self, *, num_workers: int = 1, worker_index: int = 0
    ) -> Iterator[tuple[np.ndarray, int]]:
        """Every record in file order, no index needed (compressed shards too); worker
        ``worker_index`` of ``num_workers`` gets its share: whole files dealt round-robin
        when there are at least as many files as workers, else every ``num_workers``-th
        record. Together the workers get every record once. Detection, segmentation: the
        dicts ``src[i]`` gives."""
        from .batch import iter_stream

        return iter_stream(self, num_workers=num_workers, worker_index=worker_index)


def fields_by_keys(features: dict[str, tuple[str, list[Any]]], keys: FeatureKeys) -> ImageFields:
    """:class:`ImageFields` of a record parsed by ``format.example.decode_example``, taken
    from the keys of its layout (``FeatureKeys``: TFDS, Keras, slim...); a missing label is
    ``keys.label_default`` (an error when None, as in the tf.data reader)."""

    def first(key: str | None, kind: str, default: Any) -> Any:
        if key is None or key not in features or features[key][0] != kind:
            return default
        values = features[key][1]
        return values[0] if values else default

    encoded = first(keys.image, "bytes", None)
    if encoded is None:
        raise TFRecordToolsError(f"no image bytes under {keys.image!r}")
    label = first(keys.label, "int64", None)
    if label is None:
        if keys.label is not None and keys.label_default is None:
            raise TFRecordToolsError(f"no int64 label under {keys.label!r}")
        label = -1 if keys.label_default is None else keys.label_default
    fmt = first(keys.format, "bytes", b"")
    fmt = fmt.decode("utf-8", "replace") if isinstance(fmt, bytes) else str(fmt)
    return ImageFields(
        encoded,
        fmt or keys.default_format,
        int(first(keys.height, "int64", 0)),
        int(first(keys.width, "int64", 0)),
        int(first(keys.channels, "int64", 0)),
        int(label),
        int(first(keys.orientation, "int64", 1)),
    )
