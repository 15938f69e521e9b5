"""grain's ``RandomAccessDataSource`` protocol (``__len__``, ``__getitem__``) over
:class:`~tfrecord_tools.access.source.TFRecordDataSource`, which already implements it;
this module names it for grain and is where grain is imported (a source needs no grain)::

    import grain
    from tfrecord_tools.access.grain import GrainSource

    src = GrainSource("out/", split="train", image_size=224)
    ds = grain.MapDataset.source(src).shuffle(seed=0).batch(64)
    images, labels = ds[0]  # uint8 [64, 224, 224, 3], int64 [64]

(``grain.MapDataset.source(tt.TFRecordDataSource(...))`` works as well.)
"""

from __future__ import annotations

import grain  # noqa: F401 - this adapter needs grain: missing, it fails here

from .source import TFRecordDataSource

__all__ = ["GrainSource"]


class GrainSource(TFRecordDataSource):
    """A :class:`TFRecordDataSource` for grain: ``len(src)``, ``src[i]``, picklable by
    path (grain's worker processes reopen the files)."""
