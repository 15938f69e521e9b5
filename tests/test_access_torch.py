"""The PyTorch and grain adapters of tfrecord_tools.access (run in .venv-torch by
scripts/test-torch.sh; skipped where the libraries are missing)."""

from __future__ import annotations

import hashlib
import pickle
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tfrecord_tools import TFRecordDataSource, convert_mnist, storage  # noqa: E402
from tfrecord_tools.format.naming import MANIFEST  # noqa: E402

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


def _upload(folder: Path, url: str) -> str:
    """The dataset's files put at ``url`` (fsspec's memory://), the manifest last."""
    for path in sorted(folder.iterdir(), key=lambda p: (p.name == MANIFEST, p.name)):
        storage.put_file(path, storage.join(url, path.name))
    return url


@pytest.mark.parametrize("workers", [0, 2])
def test_torch_datasets_on_memory_equal_the_local_ones(digits, memory_bucket, workers):
    """Parity (as tests/test_parity.py for the other entry points): the same records, in
    the same order, from a memory:// copy as from the local folder, with and without
    DataLoader workers (forked: they see the parent's memory:// files)."""
    from tfrecord_tools.access.torch import TFRecordIterableDataset, TFRecordMapDataset

    url = _upload(digits, f"{memory_bucket}/digits")

    def read(kind, path) -> list[tuple[str, int]]:
        loader = torch.utils.data.DataLoader(
            kind(path, channels=1), batch_size=8, num_workers=workers
        )
        return [
            _key(x.numpy(), y)
            for images, labels in loader
            for x, y in zip(images, labels, strict=True)
        ]

    for kind in (TFRecordMapDataset, TFRecordIterableDataset):
        local = read(kind, digits)
        assert read(kind, url) == local
        assert Counter(local) == _want(digits)
    assert len(TFRecordMapDataset(url, channels=1)) == N


def test_grain_source_on_memory_equals_the_local_one(digits, memory_bucket):
    grain = pytest.importorskip("grain")
    from tfrecord_tools.access.grain import GrainSource

    url = _upload(digits, f"{memory_bucket}/digits")

    def shuffled(path) -> list[tuple[str, int]]:
        ds = grain.MapDataset.source(GrainSource(path, channels=1)).shuffle(seed=0)
        return [_key(*ds[i]) for i in range(len(ds))]

    local = shuffled(digits)
    assert shuffled(url) == local and len(local) == N
    remote = pickle.loads(pickle.dumps(GrainSource(url, channels=1)))  # as a worker gets it
    assert [_key(*remote[i]) for i in range(N)] == [
        _key(*TFRecordDataSource(digits, channels=1)[i]) for i in range(N)
    ]
