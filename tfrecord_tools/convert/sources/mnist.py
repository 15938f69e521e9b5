"""MNIST as a conversion source: IDX arrays -> per-shard Examples.

Data flow: IDX files (``mnist_idx.py``: an :class:`IDXPixels` per split) -> **MNIST shard
source** (reads its images a block at a time) -> engine. Splits are the
files' own (``train``, ``test``), counts come from the headers, classes are "0".."9", and
images are stored as 1-channel PNGs (vectorised encoder, ``pngenc.py``) or raw pixels.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ...format.example import shared_fields_encoder
from ...images.pngenc import encode_png_batch
from . import Item
from .mnist_idx import IDXPixels

CLASSES = [str(d) for d in range(10)]
_BATCH = 1024  # images encoded per vectorised call
_BLOCK_BYTES = 4 << 20  # at most: a block of big images is fewer images


@dataclass(frozen=True, eq=False)
class MnistShard:
    """One shard: the split, the index of each image within the split (in write order), its
    labels, and its images: either the split's :class:`IDXPixels` (a file the job reads a
    block of images at a time) or the shard's own pixels (a Beam job, whose worker may not
    see this machine's files)."""

    split: str
    ids: np.ndarray
    labels: np.ndarray
    encoding: str = "png"
    png_level: int = 1
    pixels: np.ndarray | None = None  # uint8 (n, rows, cols), in write order
    source: IDXPixels | None = None  # or: the whole split, read by ids

    def __len__(self) -> int:
        return len(self.ids)

    def _block(self, start: int, stop: int) -> np.ndarray:
        if self.pixels is not None:
            return np.ascontiguousarray(self.pixels[start:stop])
        return self.source.take(self.ids[start:stop])  # type: ignore[union-attr]

    def items(self) -> Iterator[Item]:
        n = len(self.ids)
        _, rows, cols = self.pixels.shape if self.pixels is not None else self.source.shape  # type: ignore[union-attr]
        encode = shared_fields_encoder(
            image_format=self.encoding, height=rows, width=cols, channels=1
        )
        batch = max(1, min(_BATCH, _BLOCK_BYTES // (rows * cols)))
        for start in range(0, n, batch):
            block = self._block(start, start + batch)
            if self.encoding == "png":
                images = encode_png_batch(block, level=self.png_level)
            else:
                images = [img.tobytes() for img in block]
            labels = self.labels[start : start + batch].tolist()
            ids = self.ids[start : start + batch].tolist()
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
