"""grain's ``RandomAccessDataSource`` protocol (``__len__``, ``__getitem__``) over
:class:`~tfrecord_tools.access.source.TFRecordDataSource`, which already implements it,
plus grain's batched read (``_getitems``) and a batch reader for index batches; this module
is where grain is imported (a source needs no grain)::

    import grain
    from tfrecord_tools.access.grain import GrainSource

    src = GrainSource("out/", split="train", image_size=224)
    ds = grain.MapDataset.source(src).shuffle(seed=0).batch(64)
    images, labels = ds[0]  # uint8 [64, 224, 224, 3], int64 [64]

grain's ``MapDataset.batch`` asks its parent for one record at a time (grain 0.2: its
batched push-down is an experiment, off). To read each batch's records in one go (sorted
by offset, one read per contiguous run, both CRCs, raw pixels of one shape as one array
slice: ``fetch``), batch the *indices* and map :meth:`GrainSource.read_batch` over them::

    ds = grain.MapDataset.range(len(src)).shuffle(seed=0).batch(64).map(src.read_batch)
    images, labels = ds[0]  # the same records as above, in the same order

(``grain.MapDataset.source(tt.TFRecordDataSource(...))`` works as well, one record at a
time.)
"""

from __future__ import annotations

from collections.abc import Sequence

import grain  # noqa: F401 - this adapter needs grain: missing, it fails here
import numpy as np

from .fetch import fetch_batch, fetch_samples
from .source import TFRecordDataSource

__all__ = ["GrainSource"]


class GrainSource(TFRecordDataSource):
    """A :class:`TFRecordDataSource` for grain: ``len(src)``, ``src[i]``, picklable by
    path (grain's worker processes reopen the files), and batched reads."""

    def _getitems(self, indices: Sequence[int]) -> list[tuple[np.ndarray, int]]:
        """``[src[i] for i in indices]`` read as one batch: grain's batched-read hook
        (``SupportsBatchedReadRandomAccessDataSource``), which ``MapDataset.source(src)``
        calls when it is asked for many records at once."""
        return fetch_samples(self, indices)

    def read_batch(
        self, indices: Sequence[int] | np.ndarray
    ) -> tuple[np.ndarray | list[np.ndarray], np.ndarray]:
        """``(images, labels)`` of records ``indices`` in that order, read as one batch:
        images one uint8 ``[B, H, W, C]`` array (a list when shapes differ and there is no
        ``image_size``), labels int64 ``[B]``; what ``.batch(B)`` over ``src[i]`` gives."""
        return fetch_batch(self, indices)
