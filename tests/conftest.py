"""Shared fixtures: small, self-made image folders (nothing is downloaded). The helper
functions that make their files live in ``helpers.py``."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

# the object-storage servers (moto's S3, the GCS emulator, memory://) for every test module
from .buckets import bucket as bucket
from .buckets import bucket_server as bucket_server
from .buckets import gcs_server as gcs_server
from .buckets import memory_bucket as memory_bucket
from .buckets import s3_server as s3_server
from .helpers import encode, smooth_rgb
from .helpers import make_mnist as make_mnist  # re-exported: test_reader.py imports it here
from .helpers import write_idx as write_idx  # re-exported: test_golden.py imports it here


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory) -> Path:
    """Three classes of mixed JPEG/PNG (one class name with a space and non-ASCII), odd but
    valid images, a BMP, bad files and hidden files. What they are: ``GOOD_PER_CLASS``
    and ``BAD``."""
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    classes = ["cats", "dogs", "zebra é x"]
    for c, name in enumerate(classes):
        folder = root / name
        (folder / "deeper").mkdir(parents=True)
        for i in range(8):
            img = Image.fromarray(smooth_rgb(rng, 24 + c, 32))
            # extension lies for i == 3: format must come from the bytes
            if i % 2 == 0:
                (folder / f"img{i}.jpg").write_bytes(encode(img, "JPEG", quality=90))
            else:
                (folder / f"img{i}.{'jpg' if i == 3 else 'png'}").write_bytes(encode(img, "PNG"))
        deep = Image.fromarray(smooth_rgb(rng, 20, 20))
        (folder / "deeper" / "deep.png").write_bytes(encode(deep, "PNG"))
    cats = root / "cats"
    gray = Image.fromarray(smooth_rgb(rng, 16, 16)[..., 0])
    (cats / "gray.png").write_bytes(encode(gray, "PNG"))
    (cats / "rgba.png").write_bytes(
        encode(Image.fromarray(smooth_rgb(rng, 16, 16)).convert("RGBA"), "PNG")
    )
    (cats / "pic.bmp").write_bytes(encode(Image.fromarray(smooth_rgb(rng, 12, 10)), "BMP"))
    # bad files
    good_jpeg = encode(Image.fromarray(smooth_rgb(rng, 30, 30)), "JPEG", quality=90)
    (cats / "truncated.jpg").write_bytes(good_jpeg[: len(good_jpeg) // 2])
    (cats / "empty.png").write_bytes(b"")
    (cats / "notes.txt").write_text("not an image")
    png = bytearray(encode(Image.fromarray(smooth_rgb(rng, 10, 10)), "PNG"))
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


@pytest.fixture(scope="session")
def clean_folder(image_folder, tmp_path_factory) -> Path:
    """``image_folder`` without its bad files (what the converter keeps)."""
    clean = tmp_path_factory.mktemp("clean") / "images"
    bad_names = {p.rsplit("/", 1)[-1] for p in BAD}
    shutil.copytree(
        image_folder, clean, ignore=lambda d, names: [n for n in names if n in bad_names]
    )
    return clean
