"""Shared fixtures: small, self-made image folders and IDX files (nothing is downloaded)."""

from __future__ import annotations

import gzip
import io
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def _smooth_rgb(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A photo-ish image: gradients plus mild noise, so JPEG sizes look realistic."""
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack(
        [(x * rng.uniform(0.5, 2) + y * rng.uniform(0.5, 2)) % 256 for _ in range(3)], axis=-1
    )
    return np.clip(base + rng.normal(0, 8, (h, w, 3)), 0, 255).astype(np.uint8)


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory) -> Path:
    """Three classes of mixed JPEG/PNG (one class name with a space and non-ASCII), odd but
    valid images, a BMP, bad files and hidden files. Layout in ``EXPECTED``."""
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    classes = ["cats", "dogs", "zebra é x"]
    for c, name in enumerate(classes):
        folder = root / name
        (folder / "deeper").mkdir(parents=True)
        for i in range(8):
            img = Image.fromarray(_smooth_rgb(rng, 24 + c, 32))
            # extension lies for i == 3: format must come from the bytes
            if i % 2 == 0:
                (folder / f"img{i}.jpg").write_bytes(encode(img, "JPEG", quality=90))
            else:
                (folder / f"img{i}.{'jpg' if i == 3 else 'png'}").write_bytes(encode(img, "PNG"))
        deep = Image.fromarray(_smooth_rgb(rng, 20, 20))
        (folder / "deeper" / "deep.png").write_bytes(encode(deep, "PNG"))
    cats = root / "cats"
    gray = Image.fromarray(_smooth_rgb(rng, 16, 16)[..., 0])
    (cats / "gray.png").write_bytes(encode(gray, "PNG"))
    (cats / "rgba.png").write_bytes(
        encode(Image.fromarray(_smooth_rgb(rng, 16, 16)).convert("RGBA"), "PNG")
    )
    (cats / "pic.bmp").write_bytes(encode(Image.fromarray(_smooth_rgb(rng, 12, 10)), "BMP"))
    # bad files
    good_jpeg = encode(Image.fromarray(_smooth_rgb(rng, 30, 30)), "JPEG", quality=90)
    (cats / "truncated.jpg").write_bytes(good_jpeg[: len(good_jpeg) // 2])
    (cats / "empty.png").write_bytes(b"")
    (cats / "notes.txt").write_text("not an image")
    png = bytearray(encode(Image.fromarray(_smooth_rgb(rng, 10, 10)), "PNG"))
    png[-20] ^= 0xFF  # inside the last IDAT: its CRC no longer matches
    (root / "dogs" / "flipped.png").write_bytes(bytes(png))
    # not data
    (cats / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (cats / "._img0.jpg").write_bytes(b"\0\5\26\7")
    (root / ".hidden").mkdir()
    (root / ".hidden" / "x.png").write_bytes(encode(gray, "PNG"))
    (root / "README").write_text("top-level file: not in a class")
    return root


#: What ``image_folder`` holds.
GOOD_PER_CLASS = {"cats": 8 + 1 + 3, "dogs": 9, "zebra é x": 9}
BAD = {
    "cats/truncated.jpg": "truncated JPEG",
    "cats/empty.png": "empty file",
    "cats/notes.txt": "not an image",
    "dogs/flipped.png": "PNG chunk CRC mismatch",
    "README": "not in a class folder",
}


def write_idx(path: Path, array: np.ndarray, *, gz: bool = False) -> Path:
    """An IDX file of uint8 ``array`` (the magic number follows from its ndim)."""
    header = struct.pack(">HBB", 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def make_mnist(
    folder: Path, n_train: int = 40, n_test: int = 12, *, gz: bool = False, seed: int = 0
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Tiny MNIST-format files; returns the pixel and label arrays written, per split."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    pixels, labels = {}, {}
    for split, prefix, n in (("train", "train", n_train), ("test", "t10k", n_test)):
        pixels[split] = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        pixels[split][:, :4] = 0  # some structure, like real digits' empty borders
        labels[split] = (np.arange(n) % 10).astype(np.uint8)
        write_idx(folder / f"{prefix}-images-idx3-ubyte", pixels[split], gz=gz)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels[split], gz=gz)
    return pixels, labels


@pytest.fixture(scope="session")
def clean_folder(image_folder, tmp_path_factory) -> Path:
    """``image_folder`` without its bad files (what the converter keeps)."""
    import shutil

    clean = tmp_path_factory.mktemp("clean") / "images"
    bad_names = {p.rsplit("/", 1)[-1] for p in BAD}
    shutil.copytree(
        image_folder, clean, ignore=lambda d, names: [n for n in names if n in bad_names]
    )
    return clean
