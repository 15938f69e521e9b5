"""PyTorch datasets over :class:`~tfrecord_tools.access.source.TFRecordDataSource`
(imports torch; nothing else in ``access`` does).

Map-style, global shuffle through the DataLoader's sampler::

    import torch
    from tfrecord_tools.access.torch import TFRecordMapDataset

    ds = TFRecordMapDataset("out/", split="train", image_size=224)
    loader = torch.utils.data.DataLoader(ds, batch_size=64, shuffle=True, num_workers=4)
    for images, labels in loader:  # uint8 [64, 224, 224, 3], int64 [64]
        ...

The DataLoader fetches a batch's indices in one call (``__getitems__``, torch >= 2.0):
its records are read together (``fetch``: sorted by offset, one read per contiguous run,
both CRCs checked, raw pixels of one shape as one array slice, our records' PNGs decoded
in one call), with the same images, labels and order as ``ds[i]`` one at a time. Its
``collate_fn`` then stacks the images one by one; a ``BatchSampler`` as the sampler (and
``batch_size=None``) hands the dataset whole batches instead, ``ds[[i, j, ...]]``, which
come back stacked, the same batches without a tensor per image (cheaper when images are
small: raw 28x28 digits)::

    sampler = torch.utils.data.BatchSampler(
        torch.utils.data.RandomSampler(ds), batch_size=64, drop_last=False
    )
    loader = torch.utils.data.DataLoader(ds, sampler=sampler, batch_size=None, num_workers=4)

Iterable, every record once across DataLoader workers and ``torch.distributed`` ranks,
read in file order without any index (compressed shards too)::

    ds = TFRecordIterableDataset("out/", image_size=224)
    loader = torch.utils.data.DataLoader(ds, batch_size=64, num_workers=4)

Both pickle by path: workers reopen the files themselves.

Detection and segmentation (``task=...``): ``ds[i]`` is the source's dict of numpy arrays;
``access.detection.collate_detection`` batches detection dicts for torchvision's detection
models (images, and targets with absolute boxes, labels, and masks / keypoints when the
records have them), ``collate_segmentation`` segmentation ones for its segmentation
models::

    from tfrecord_tools.access.detection import collate_detection

    ds = TFRecordMapDataset("out/", task="detection", masks=True)
    loader = torch.utils.data.DataLoader(ds, batch_size=8, collate_fn=collate_detection)
    for images, targets in loader:  # lists: float [3, H, W]; {"boxes", "labels", "masks"}
        loss = model(images, targets)
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
import torch.utils.data

from .fetch import fetch, fetch_batch
from .source import TFRecordDataSource

__all__ = ["TFRecordIterableDataset", "TFRecordMapDataset"]


def _source(path: Any, kwargs: dict[str, Any]) -> TFRecordDataSource:
    return path if isinstance(path, TFRecordDataSource) else TFRecordDataSource(path, **kwargs)


class TFRecordMapDataset(torch.utils.data.Dataset):
    """``ds[i] -> (image tensor uint8 [H, W, C], label int)`` (detection, segmentation:
    the source's dict of numpy arrays, for the ``collate_fn`` of ``access.detection``);
    takes a path and :class:`TFRecordDataSource`'s options, or a source."""

    def __init__(self, path: str | os.PathLike | Sequence[str] | TFRecordDataSource, **options):
        self.source = _source(path, options)

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int | Sequence[int]) -> Any:
        """``ds[i] -> (image, label)``; ``ds[[i, j, ...]] -> (images, labels)``, the batch
        read as one (what a ``BatchSampler`` asks for): images uint8 ``[B, H, W, C]`` (a
        list when shapes differ and there is no ``image_size``), labels int64 ``[B]``
        (detection, segmentation: the list of the records' dicts)."""
        if isinstance(index, (Sequence, np.ndarray, torch.Tensor)) and not isinstance(
            index, (str, bytes)
        ) and np.ndim(index) == 1:  # fmt: skip
            if self.source.task != "classification":
                return self.__getitems__(index)
            images, labels = fetch_batch(self.source, np.asarray(index))
            if isinstance(images, np.ndarray):
                return torch.from_numpy(images), torch.from_numpy(labels)
            return [torch.from_numpy(image) for image in images], torch.from_numpy(labels)
        if self.source.task != "classification":
            return self.source[index]
        image, label = self.source[index]
        return torch.from_numpy(image), label

    def __getitems__(self, indices: Sequence[int]) -> list[Any]:
        """``[ds[i] for i in indices]``, read as one batch: the DataLoader's batched fetch
        (its ``collate_fn`` then stacks them as usual). Detection and segmentation
        records are read one by one."""
        if self.source.task != "classification":
            return [self.source[int(i)] for i in indices]
        images, labels = fetch(self.source, indices)
        if isinstance(images, np.ndarray):  # one array: its rows as tensors, no copy
            tensors = torch.from_numpy(images).unbind(0)
        else:
            tensors = [torch.from_numpy(image) for image in images]
        return list(zip(tensors, labels.tolist(), strict=True))


class TFRecordIterableDataset(torch.utils.data.IterableDataset):
    """Every record once per pass, shared among ``torch.distributed`` ranks (when a process
    group is initialised) and the DataLoader's workers of each rank; see
    :meth:`TFRecordDataSource.stream` for how the share is cut. Detection, segmentation:
    the source's dicts."""

    def __init__(self, path: str | os.PathLike | Sequence[str] | TFRecordDataSource, **options):
        self.source = _source(path, options)

    def __iter__(self) -> Iterator[Any]:
        rank, world = 0, 1
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        share = rank * workers + worker
        stream = self.source.stream(num_workers=world * workers, worker_index=share)
        if self.source.task != "classification":
            yield from stream
            return
        for image, label in stream:
            yield torch.from_numpy(np.ascontiguousarray(image)), label
