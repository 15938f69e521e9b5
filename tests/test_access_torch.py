"""The PyTorch and grain adapters of tfrecord_tools.access (run in .venv-torch by
scripts/test-torch.sh; skipped where the libraries are missing)."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tfrecord_tools import TFRecordDataSource, convert_mnist  # noqa: E402

from .helpers import make_mnist  # noqa: E402

N = 60


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("mnist_src")
    make_mnist(src, n_train=N, n_test=6)
    out = tmp_path_factory.mktemp("digits")
    convert_mnist(src, out, encoding="png", shards=3, workers=1, quiet=True)
    return out


def _want(folder: Path) -> Counter:
    src = TFRecordDataSource(folder, channels=1)
    return Counter(_key(*src[i]) for i in range(len(src)))


def _key(image, label) -> tuple[str, int]:
    return hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest(), int(label)


@pytest.mark.parametrize("workers", [0, 2])
def test_map_style_dataset_in_a_dataloader(digits, workers):
    from tfrecord_tools.access.torch import TFRecordMapDataset

    ds = TFRecordMapDataset(digits, channels=1)
    loader = torch.utils.data.DataLoader(
        ds,
        batch_size=8,
        shuffle=True,
        num_workers=workers,
        generator=torch.Generator().manual_seed(0),
    )
    got = Counter()
    for images, labels in loader:
        assert images.dtype == torch.uint8 and images.shape[1:] == (28, 28, 1)
        got.update(_key(x.numpy(), y) for x, y in zip(images, labels, strict=True))
    assert got == _want(digits) and sum(got.values()) == N


@pytest.mark.parametrize("workers", [0, 2])
def test_iterable_dataset_gives_every_record_once(digits, workers):
    from tfrecord_tools.access.torch import TFRecordIterableDataset

    ds = TFRecordIterableDataset(digits, channels=1)
    loader = torch.utils.data.DataLoader(ds, batch_size=7, num_workers=workers)
    got = Counter()
    for images, labels in loader:
        got.update(_key(x.numpy(), y) for x, y in zip(images, labels, strict=True))
    assert got == _want(digits) and sum(got.values()) == N


def test_grain_map_dataset_source(digits):
    grain = pytest.importorskip("grain")
    from tfrecord_tools.access.grain import GrainSource

    src = GrainSource(digits, channels=1)
    ds = grain.MapDataset.source(src)
    assert len(ds) == N
    image, label = ds[5]
    ref = TFRecordDataSource(digits, channels=1)[5]
    assert np.array_equal(image, ref[0]) and label == ref[1]
    plain = grain.MapDataset.source(TFRecordDataSource(digits, channels=1)).shuffle(seed=0)
    assert Counter(_key(*plain[i]) for i in range(len(plain))) == _want(digits)
    batch = grain.MapDataset.source(src).batch(4)[0]
    assert batch[0].shape == (4, 28, 28, 1)
