"""Test helpers, the one home of them: making small inputs (images, IDX / MNIST files) and
reading a converted dataset back without TensorFlow. Fixtures live in ``conftest.py``."""

from __future__ import annotations

import gzip
import io
import json
import struct
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from PIL import Image

from tfrecord_tools.format.example import decode_example
from tfrecord_tools.format.framing import iter_records

# --------------------------------------------------------------------------- images


def smooth_rgb(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A photo-ish image: gradients plus mild noise, so JPEG sizes look realistic."""
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack(
        [(x * rng.uniform(0.5, 2) + y * rng.uniform(0.5, 2)) % 256 for _ in range(3)], axis=-1
    )
    return np.clip(base + rng.normal(0, 8, (h, w, 3)), 0, 255).astype(np.uint8)


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    """``img`` saved as ``fmt`` (Pillow's format name and save options), in memory."""
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


# --------------------------------------------------------------------------- IDX / MNIST

#: File name prefix of each MNIST split.
MNIST_PREFIXES = {"train": "train", "test": "t10k"}


def idx_header(dims: tuple[int, ...], *, type_code: int = 0x08) -> bytes:
    """An IDX header: two zero bytes, type code, ndim, big-endian uint32 sizes."""
    return bytes([0, 0, type_code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)


def idx_bytes(array: np.ndarray) -> bytes:
    """A whole uint8 IDX file holding ``array`` (the magic number follows from its ndim)."""
    return idx_header(array.shape) + np.asarray(array).astype(np.uint8).tobytes()


def write_file(path: Path, data: bytes, *, gz: bool = False) -> Path:
    """Write ``data`` to ``path`` (gzip-compressed, with a .gz suffix, if ``gz``); returns
    the path written."""
    if gz:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data, mtime=0)
    path.write_bytes(data)
    return path


def write_idx(path: Path, array: np.ndarray, *, gz: bool = False) -> Path:
    """An IDX file of uint8 ``array`` at ``path`` (``path.gz`` if ``gz``)."""
    return write_file(path, idx_bytes(array), gz=gz)


def write_mnist(
    folder: Path,
    splits: Mapping[str, tuple[np.ndarray, np.ndarray]],
    *,
    gz: bool = False,
    dotted: bool = False,
) -> None:
    """The MNIST files of ``splits`` ({"train"/"test": (pixels, labels)}) in ``folder``;
    ``dotted`` spells them ``train-images.idx3-ubyte`` as some mirrors do."""
    folder.mkdir(parents=True, exist_ok=True)
    sep = "." if dotted else "-"
    for split, (pixels, labels) in splits.items():
        prefix = MNIST_PREFIXES[split]
        write_idx(folder / f"{prefix}-images{sep}idx3-ubyte", pixels, gz=gz)
        write_idx(folder / f"{prefix}-labels{sep}idx1-ubyte", labels, gz=gz)


def make_mnist(
    folder: Path, n_train: int = 40, n_test: int = 12, *, gz: bool = False, seed: int = 0
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Tiny random MNIST-format files; returns the pixel and label arrays written, per split."""
    rng = np.random.default_rng(seed)
    pixels, labels = {}, {}
    for split, n in (("train", n_train), ("test", n_test)):
        pixels[split] = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        pixels[split][:, :4] = 0  # some structure, like real digits' empty borders
        labels[split] = (np.arange(n) % 10).astype(np.uint8)
    write_mnist(folder, {s: (pixels[s], labels[s]) for s in pixels}, gz=gz)
    return pixels, labels


# --------------------------------------------------------------------------- reading back


def read_dataset(out: Path) -> dict[str, list[dict]]:
    """{split: [features as {key: first value}]} in shard order, checking every CRC."""
    manifest = json.loads((out / "dataset.json").read_text())
    records: dict[str, list[dict]] = {}
    for split, info in manifest["splits"].items():
        rows = records.setdefault(split, [])
        for shard in info["shards"]:
            for rec in iter_records(out / shard["file"], manifest["compression"]):
                rows.append({k: v[1][0] for k, v in decode_example(rec.data).items()})
    return records
