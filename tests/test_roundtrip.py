"""The round-trip contract, over a grid of source x shard count x compression x engine:

    convert -> verify is ok -> count_records == inputs kept -> every record read back
    (without TensorFlow) carries its source's image and label.

Folder sources keep JPEG/PNG bytes unchanged (compared byte for byte, keyed by
``image/filename``); others (BMP, MNIST pixels) are compared as decoded pixels.
"""

from __future__ import annotations

import importlib.util
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tfrecord_tools import convert_image_folder, convert_mnist, count_records, verify
from tfrecord_tools.format.compression import detect_compression

from .helpers import make_mnist, read_dataset

HAVE_BEAM = importlib.util.find_spec("apache_beam") is not None
ENGINES = [
    "local",
    pytest.param(
        "beam", marks=pytest.mark.skipif(not HAVE_BEAM, reason="the beam extra is not installed")
    ),
]

#: The bytes a file starts with when the converter stores it unchanged.
STORED_AS_IS = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")


@dataclass(frozen=True)
class Source:
    """A conversion input and what its dataset must hold.

    ``expected``: (split, image/filename) -> (label, the source file's bytes when they are
    stored unchanged, else its pixels)."""

    convert: Callable[..., object]  # (out, **options) -> ConversionSummary
    splits: int
    expected: dict[tuple[str, str], tuple[int, bytes | np.ndarray]]


def _pixels(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image)


@pytest.fixture(scope="session")
def folder_source(clean_folder: Path) -> Source:
    """``clean_folder``: every visible file is an image the converter keeps."""
    classes = sorted(p.name for p in clean_folder.iterdir() if p.is_dir() and p.name[0] != ".")
    expected: dict[tuple[str, str], tuple[int, bytes | np.ndarray]] = {}
    for label, name in enumerate(classes):
        for path in (clean_folder / name).rglob("*"):
            rel = path.relative_to(clean_folder)
            if not path.is_file() or any(part.startswith(".") for part in rel.parts):
                continue
            data = path.read_bytes()
            content = data if data.startswith(STORED_AS_IS) else _pixels(data)
            expected["train", rel.as_posix()] = (label, content)
    return Source(
        lambda out, **options: convert_image_folder(clean_folder, out, **options), 1, expected
    )


@pytest.fixture(scope="session")
def mnist_source(tmp_path_factory: pytest.TempPathFactory) -> Source:
    """Tiny MNIST files (train and test); records are named ``{split}/{index:05d}``."""
    src = tmp_path_factory.mktemp("mnist-src")
    pixels, labels = make_mnist(src, n_train=20, n_test=7)
    expected: dict[tuple[str, str], tuple[int, bytes | np.ndarray]] = {
        (split, f"{split}/{i:05d}"): (int(labels[split][i]), pixels[split][i])
        for split in pixels
        for i in range(len(pixels[split]))
    }
    return Source(lambda out, **options: convert_mnist(src, out, **options), 2, expected)


def assert_same_image(encoded: bytes, want: bytes | np.ndarray, where: object) -> None:
    if isinstance(want, bytes):
        assert encoded == want, f"{where}: stored bytes differ from the source file"
    else:
        np.testing.assert_array_equal(_pixels(encoded), want, err_msg=str(where))


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("compression", ["none", "gzip", "zlib"])
@pytest.mark.parametrize("shards_per_split", [1, 3])
@pytest.mark.parametrize("source", ["folder", "mnist"])
def test_round_trip(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    source: str,
    shards_per_split: int,
    compression: str,
    engine: str,
) -> None:
    src: Source = request.getfixturevalue(f"{source}_source")
    out = tmp_path / "out"
    shards = shards_per_split * src.splits  # --shards counts all splits' shards
    src.convert(out, shards=shards, compression=compression, engine=engine, workers=2, quiet=True)

    report = verify(out)
    assert report.ok, report.problems

    counted = count_records(out)
    assert counted.total == len(src.expected)
    assert len(counted.shards) == shards
    for shard in counted.shards:
        assert detect_compression(out / shard.file) == compression, shard.file

    rows = [(split, row) for split, rows in read_dataset(out).items() for row in rows]
    got = {(split, row["image/filename"].decode()): row for split, row in rows}
    assert len(got) == len(rows), "a source file was stored twice"
    assert sorted(got) == sorted(src.expected)
    for key, row in got.items():
        label, content = src.expected[key]
        assert row["image/class/label"] == label, key
        assert_same_image(row["image/encoded"], content, key)
