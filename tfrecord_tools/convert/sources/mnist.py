"""MNIST as a conversion source: IDX arrays -> per-shard Examples.

Data flow: IDX files (``mnist_idx.py``) -> **MNIST shard source** -> engine. Splits are the
files' own (``train``, ``test``), counts come from the headers, classes are "0".."9", and
images are stored as 1-channel PNGs (vectorised encoder, ``pngenc.py``) or raw pixels.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ...format.example import shared_fields_encoder
from ..inherit import shared
from . import Item
from .pngenc import encode_png_batch

CLASSES = [str(d) for d in range(10)]
_BATCH = 1024  # images encoded per vectorised call


@dataclass(frozen=True, eq=False)
class MnistShard:
    """One shard: the split, the index of each image within the split's file (in write
    order), its labels, and either the images themselves or the key under which the
    parent shared the split's pixel array with forked workers (``inherit.share``)."""

    split: str
    ids: np.ndarray
    labels: np.ndarray
    encoding: str = "png"
    png_level: int = 1
    pixels: np.ndarray | None = None  # uint8 (n, rows, cols), in write order
    shared_key: str | None = None  # or: the whole split, shared, indexed by ids

    def __len__(self) -> int:
        return len(self.ids)

    def _pixels(self) -> np.ndarray:
        if self.pixels is not None:
            return self.pixels
        return shared(self.shared_key)[self.ids]  # type: ignore[arg-type]

    def items(self) -> Iterator[Item]:
        pixels = self._pixels()
        n, rows, cols = pixels.shape
        encode = shared_fields_encoder(
            image_format=self.encoding, height=rows, width=cols, channels=1
        )
        for start in range(0, n, _BATCH):
            block = np.ascontiguousarray(pixels[start : start + _BATCH])
            if self.encoding == "png":
                images = encode_png_batch(block, level=self.png_level)
            else:
                images = [img.tobytes() for img in block]
            labels = self.labels[start : start + _BATCH].tolist()
            ids = self.ids[start : start + _BATCH].tolist()
            records = [
                encode(image, label, CLASSES[label], f"{self.split}/{i:05d}")
                for image, label, i in zip(images, labels, ids, strict=True)
            ]
            yield Item(
                image_format=self.encoding,
                kind="gray",
                source_bytes=block.nbytes,
                records=records,
                shape=(rows, cols, 1),
            )
