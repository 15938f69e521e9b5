"""MNIST as a conversion source: IDX arrays -> per-shard Examples.

Data flow: IDX files (``idx.py``) -> **MNIST shard source** -> engine. Splits are the
files' own (``train``, ``test``), counts come from the headers, classes are "0".."9", and
images are stored as 1-channel PNGs (vectorised encoder, ``pngenc.py``) or raw pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ENCODINGS = ("png", "raw")
CLASSES = [str(d) for d in range(10)]
_BATCH = 1024  # images encoded per vectorised call


@dataclass(frozen=True, eq=False)
class MnistShard:
    """One shard: the split, the index of each image within the split's file (in write
    order), its labels, and either the images themselves or the key under which the
    parent shared the split's pixel array with forked workers (``engine.share``)."""

    split: str
    ids: np.ndarray
    labels: np.ndarray
    encoding: str = "png"
    pixels: np.ndarray | None = None  # uint8 (n, rows, cols), in write order
    shared_key: str | None = None  # or: the whole split, shared, indexed by ids

    def __len__(self) -> int:
        return len(self.ids)

    def _pixels(self) -> np.ndarray:
        if self.pixels is not None:
            return self.pixels
        from .engine import shared

        return shared(self.shared_key)[self.ids]  # type: ignore[arg-type]

    def items(self):
        from .engine import Item
        from .pngenc import encode_png_batch
        from .schema import encode_example_parts

        pixels = self._pixels()
        n, rows, cols = pixels.shape
        raw_size = rows * cols
        for start in range(0, n, _BATCH):
            block = np.ascontiguousarray(pixels[start : start + _BATCH])
            if self.encoding == "png":
                encoded = encode_png_batch(block)
            else:
                encoded = [img.tobytes() for img in block]
            for j, data in enumerate(encoded):
                label = int(self.labels[start + j])
                example = encode_example_parts(
                    encoded=data,
                    image_format=self.encoding,
                    height=rows,
                    width=cols,
                    channels=1,
                    label=label,
                    text=CLASSES[label],
                    filename=f"{self.split}/{int(self.ids[start + j]):05d}",
                )
                yield Item(example, self.encoding, "gray", None, raw_size)
