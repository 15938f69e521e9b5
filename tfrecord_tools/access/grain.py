"""grain's ``RandomAccessDataSource`` protocol (``__len__``, ``__getitem__``) over
:class:`~tfrecord_tools.access.source.TFRecordDataSource`, which already implements it,
grain's batched-read hook (``_getitems``), and whole batches read in one go; this module
is where grain is imported (a source needs no grain)::

    import grain
    from tfrecord_tools.access.grain import GrainSource

    src = GrainSource("out/", split="train", image_size=224)
    ds = grain.MapDataset.source(src).shuffle(seed=0).batch(64)
    images, labels = ds[0]  # uint8 [64, 224, 224, 3], int64 [64]

grain's ``MapDataset.batch`` asks its parent for one record at a time (in grain 0.2 its
batched push-down is an experiment, off), and grain spends several microseconds on each
element. ``src.batched(64, seed=0)`` makes each *batch* one element instead, its records
read together (``fetch``: sorted by offset, one read per contiguous run, both CRCs
checked, raw pixels of one shape as one array slice, our records' PNGs decoded in one call)::

    ds = src.batched(64, seed=0)  # a grain MapDataset of (images, labels)
    images, labels = ds[0]
    ds.to_iter_dataset().mp_prefetch(grain.MultiprocessingOptions(num_workers=4))

``src.read_batch(indices)`` reads any batch of indices the same way (for index pipelines of
your own: ``MapDataset.range(len(src)).shuffle(seed=0).batch(64).map(src.read_batch)``).
``grain.MapDataset.source(tt.TFRecordDataSource(...))`` works too, one record at a time.

Detection and segmentation (``task=...``): ``src[i]`` is a dict. Detection records hold a
different number of objects each, so grain's default ``batch`` (``np.stack`` of every
field) cannot batch them: :func:`~tfrecord_tools.access.detection.pad_detection` pads the
per-object fields to ``num_objects`` rows (fixed shapes, as JAX wants; ``classes`` -1,
``num_objects`` [B] says how many are real), and ``src.batched(..., num_objects=...)`` /
``src.read_batch`` do the same. Segmentation dicts (``image``, ``mask``) stack as they
are. Either needs ``image_size`` (or images of one size) to make batches::

    src = GrainSource("out/", task="detection", masks=True, image_size=(512, 512))
    pad = functools.partial(pad_detection, num_objects=100)
    ds = grain.MapDataset.source(src).shuffle(seed=0).batch(8, batch_fn=pad)
    ds[0]["boxes"]  # float32 [8, 100, 4]; ds[0]["num_objects"]: int32 [8]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grain
import numpy as np

from ..errors import TFRecordToolsError
from .detection import pad_detection, stack_segmentation
from .fetch import fetch_batch, fetch_samples
from .source import TFRecordDataSource

__all__ = ["GrainSource"]

Images = np.ndarray | list[np.ndarray]


class GrainSource(TFRecordDataSource):
    """A :class:`TFRecordDataSource` for grain: ``len(src)``, ``src[i]``, picklable by
    path (grain's worker processes reopen the files), and batched reads."""

    def _getitems(self, indices: Sequence[int]) -> list[Any]:
        """``[src[i] for i in indices]`` read as one batch: grain's batched-read hook
        (``SupportsBatchedReadRandomAccessDataSource``), which ``MapDataset.source(src)``
        calls when it is asked for many records at once. Detection and segmentation
        records are read one by one."""
        if self.task != "classification":
            return [self[int(i)] for i in indices]
        return fetch_samples(self, indices)

    def read_batch(
        self, indices: Sequence[int] | np.ndarray, *, num_objects: int | None = None
    ) -> Any:
        """``(images, labels)`` of records ``indices`` in that order, read as one batch:
        images one uint8 ``[B, H, W, C]`` array (a list when shapes differ and there is no
        ``image_size``), labels int64 ``[B]``: what ``.batch(B)`` over ``src[i]`` gives.
        Detection: the dict of ``pad_detection`` (``num_objects`` rows per object field;
        default the batch's most); segmentation: ``{"image", "mask"}`` stacked."""
        if self.task == "classification":
            return fetch_batch(self, indices)
        samples = self._getitems(indices)
        if self.task == "detection":
            return pad_detection(samples, num_objects=num_objects)
        return stack_segmentation(samples)

    def batched(
        self,
        batch_size: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        drop_remainder: bool = False,
        num_objects: int | None = None,
    ) -> grain.MapDataset:
        """A grain ``MapDataset`` whose element ``b`` is ``(images, labels)`` of batch ``b``
        (as :meth:`read_batch`; detection: the padded dict, ``num_objects`` rows): the
        records in a global permutation drawn from ``seed``, a new one each epoch (past
        ``len(ds)``, as after ``.repeat()``), or in file order when ``shuffle`` is False."""
        if batch_size < 1:
            raise TFRecordToolsError(f"batch_size must be at least 1, got {batch_size}")
        if num_objects is not None and self.task != "detection":
            raise TFRecordToolsError("num_objects pads detection batches: pass task='detection'")
        n = len(self)
        count = n // batch_size if drop_remainder else -(-n // batch_size)
        return grain.MapDataset.range(count).map_with_index(
            _BatchReader(self, batch_size, count, seed if shuffle else None, num_objects)
        )


class _BatchReader:
    """``(index, batch) -> read_batch(...)``: batch ``batch`` of epoch ``index // count``'s
    order. Picklable (by the source's path); the permutation is drawn again per process."""

    def __init__(
        self,
        src: GrainSource,
        batch_size: int,
        count: int,
        seed: int | None,
        num_objects: int | None = None,
    ):
        self.src, self.batch_size, self.count, self.seed = src, batch_size, count, seed
        self.num_objects = num_objects
        self._order: tuple[int, np.ndarray] | None = None  # (epoch, permutation)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_order": None}

    def order(self, epoch: int) -> np.ndarray:
        cached = self._order
        if cached is None or cached[0] != epoch:
            rng = np.random.default_rng([self.seed, epoch])
            cached = self._order = (epoch, rng.permutation(len(self.src)))
        return cached[1]

    def __call__(self, index: int, batch: int) -> Any:
        start = batch * self.batch_size
        if self.seed is None:
            indices = np.arange(start, min(start + self.batch_size, len(self.src)))
        else:
            indices = self.order(index // self.count)[start : start + self.batch_size]
        if self.num_objects is not None:
            return self.src.read_batch(indices, num_objects=self.num_objects)
        return self.src.read_batch(indices)
