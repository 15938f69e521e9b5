"""The PyTorch and grain adapters of tfrecord_tools.access (run in .venv-torch by
scripts/test-torch.sh; skipped where the libraries are missing)."""

from __future__ import annotations

import hashlib
import pickle
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tfrecord_tools import (  # noqa: E402
    TFRecordDataSource,
    TFRecordToolsError,
    convert_image_folder,
    convert_mnist,
    storage,
)
from tfrecord_tools.access.torch import TFRecordMapDataset  # noqa: E402
from tfrecord_tools.format.naming import MANIFEST  # noqa: E402

from ..helpers import make_mnist  # noqa: E402

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


# --------------------------------------------------------------------------- batched fetch


@pytest.fixture(scope="module")
def raw_digits(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("mnist_raw_src")
    make_mnist(src, n_train=N, n_test=6, seed=1)
    out = tmp_path_factory.mktemp("raw_digits")
    convert_mnist(src, out, encoding="raw", shards=3, workers=1, quiet=True)
    return out


@pytest.fixture(scope="module")
def mixed_raw(tmp_path_factory) -> Path:
    """Raw gray records of three shapes: 28x28 and 14x56 (records of one length, so the
    batch passes the fixed-length checks and only the layout tells them apart) and 20x20."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("mixed_src")
    rng = np.random.default_rng(2)
    for c in range(2):
        (folder / f"c{c}").mkdir()
        for i, (h, w) in enumerate([(28, 28), (14, 56), (28, 28), (20, 20), (14, 56)] * 2):
            pixels = rng.integers(0, 256, (h, w), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"c{c}" / f"{chr(97 + i)}.png")
    out = tmp_path_factory.mktemp("mixed")
    convert_image_folder(folder, out, encoding="raw", shards=2, workers=1, quiet=True)
    return out


class _PerItem(TFRecordMapDataset):
    """The map-style dataset without the batched fetch: the DataLoader's per-index path."""

    __getitems__ = None


def _loaded(ds, workers: int, *, shuffle: bool = True, batch_size: int = 8) -> list:
    loader = torch.utils.data.DataLoader(
        ds,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=workers,
        generator=torch.Generator().manual_seed(3),
    )
    return list(loader)


def _same_batches(a: list, b: list) -> bool:
    return len(a) == len(b) and all(
        torch.equal(x, u) and torch.equal(y, v) for (x, y), (u, v) in zip(a, b, strict=True)
    )


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize(
    ("data", "options"),
    [
        ("digits", {"channels": 1}),  # PNG: records of many lengths
        ("raw_digits", {"channels": 1}),  # raw, one layout: one array slice per batch
        ("raw_digits", {"channels": 3}),  # gray repeated to RGB on the slice
        ("raw_digits", {"channels": 1, "image_size": 14}),  # resized: record by record
    ],
)
def test_batched_fetch_gives_what_per_item_fetch_gives(request, workers, data, options):
    folder = request.getfixturevalue(data)
    batched = _loaded(TFRecordMapDataset(folder, **options), workers)
    single = _loaded(_PerItem(folder, **options), workers)
    assert _same_batches(batched, single) and sum(len(y) for _, y in batched) == N
    assert Counter(
        _key(x.numpy(), y)
        for images, labels in batched
        for x, y in zip(images, labels, strict=True)
    ) == Counter(_key(*TFRecordDataSource(folder, **options)[i]) for i in range(N))


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("data", ["digits", "raw_digits"])
def test_a_batch_sampler_gets_whole_batches(request, workers, data):
    """``ds[[i, j, ...]]`` through a BatchSampler (``batch_size=None``): the same batches
    as the DataLoader's own batching, stacked by the dataset."""
    folder = request.getfixturevalue(data)
    ds = TFRecordMapDataset(folder, channels=1)

    def order():
        return torch.utils.data.RandomSampler(ds, generator=torch.Generator().manual_seed(3))

    sampler = torch.utils.data.BatchSampler(order(), batch_size=8, drop_last=False)
    loader = torch.utils.data.DataLoader(ds, sampler=sampler, batch_size=None, num_workers=workers)
    got = list(loader)
    single = _PerItem(folder, channels=1)
    want = torch.utils.data.DataLoader(single, sampler=order(), batch_size=8, num_workers=workers)
    assert _same_batches(got, list(want)) and sum(len(y) for _, y in got) == N
    assert got[0][0].dtype == torch.uint8 and got[0][1].dtype == torch.int64
    images, labels = ds[torch.tensor([4, 4, -1])]
    assert images.shape == (3, 28, 28, 1) and labels.tolist() == [ds[4][1], ds[4][1], ds[59][1]]
    assert torch.equal(images[2], ds[59][0]) and isinstance(ds[torch.tensor(4)][1], int)


def test_batched_fetch_reads_each_run_once(raw_digits, monkeypatch):
    """One read per contiguous run of a batch's records in a shard, not one per record."""
    from tfrecord_tools.storage import RandomReader

    reads = []
    original = RandomReader.read
    monkeypatch.setattr(
        RandomReader,
        "read",
        lambda self, offset, size: reads.append(size) or original(self, offset, size),
    )
    ds = TFRecordMapDataset(raw_digits, channels=1)
    counts = ds.source.shard_counts()
    starts = np.cumsum([0, *counts])[:-1]
    in_order = _loaded(ds, 0, shuffle=False)
    runs = sum(
        len(set(np.searchsorted(starts, range(b, min(b + 8, N)), "right"))) for b in range(0, N, 8)
    )
    assert len(reads) == runs < N and sum(len(y) for _, y in in_order) == N
    reads.clear()
    _loaded(ds, 0)
    assert len(reads) <= N  # shuffled: at most one read per record
    assert _same_batches(in_order, _loaded(_PerItem(raw_digits, channels=1), 0, shuffle=False))


def test_batched_fetch_keeps_order_repeats_and_negative_indices(digits):
    ds = TFRecordMapDataset(digits, channels=1)
    indices = [5, 3, 5, -1, 0, 59, 3]
    got = ds.__getitems__(indices)
    want = [ds[i] for i in indices]
    assert [y for _, y in got] == [y for _, y in want]
    assert all(torch.equal(a, b) for (a, _), (b, _) in zip(got, want, strict=True))
    with pytest.raises(IndexError, match="record 60 of 60"):
        ds.__getitems__([1, 60])
    assert ds.__getitems__([]) == []


def test_mixed_shapes_fall_back_to_one_image_each(mixed_raw):
    ds = TFRecordMapDataset(mixed_raw, channels=1)
    n = len(ds)
    indices = [*range(n), 7, 1, 7]
    got = ds.__getitems__(indices)
    assert {tuple(x.shape) for x, _ in got} == {(28, 28, 1), (14, 56, 1), (20, 20, 1)}
    for (image, label), i in zip(got, indices, strict=True):
        want_image, want_label = ds[i]
        assert torch.equal(image, want_image) and label == want_label
    # the same-length pair alone (28x28 and 14x56: 784 bytes each) keeps its two shapes
    pair = [i for i in range(n) if tuple(ds[i][0].shape) != (20, 20, 1)][:4]
    images, labels = ds[pair]  # a batch of two shapes: a list, as fetched
    assert labels.tolist() == [ds[i][1] for i in pair]
    assert [tuple(x.shape) for x in images] == [tuple(ds[i][0].shape) for i in pair]
    assert [tuple(x.shape) for x, _ in ds.__getitems__(pair)] == [
        tuple(ds[i][0].shape) for i in pair
    ]
    resized = TFRecordMapDataset(mixed_raw, channels=1, image_size=16)
    assert _same_batches(
        _loaded(resized, 0), _loaded(_PerItem(mixed_raw, channels=1, image_size=16), 0)
    )


def _copy(folder: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "ds"
    shutil.copytree(folder, copy)
    return copy


def _damage(folder: Path, how: str) -> tuple[Path, int, int]:
    """Damage one record of ``folder``'s first shard: flip a byte in record 1's data, or
    cut the shard inside its last record (after a reader loaded the index: the index
    check would refuse the cut shard). The shard, the record and its offset."""
    shard = sorted(p for p in folder.glob("*-train.tfrecord-*") if p.suffix != ".idx")[0]
    offsets = [int(line.split()[0]) for line in Path(f"{shard}.idx").read_text().splitlines()]
    data = bytearray(shard.read_bytes())
    if how == "flip":
        record = 1
        data[offsets[record] + 20] ^= 0xFF
    else:
        record = len(offsets) - 1
        del data[offsets[record] + 30 :]
    shard.write_bytes(bytes(data))
    return shard, record, offsets[record]


DAMAGE = [("digits", "flip"), ("raw_digits", "flip"), ("digits", "cut"), ("raw_digits", "cut")]


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize(("data", "how"), DAMAGE)
def test_batched_fetch_names_a_damaged_record(request, tmp_path, workers, data, how):
    folder = _copy(request.getfixturevalue(data), tmp_path)
    ds = TFRecordMapDataset(folder, channels=1)
    assert len(ds) == N  # the index, loaded before the damage
    shard, record, offset = _damage(folder, how)
    kind = "data CRC mismatch" if how == "flip" else "truncated record"
    # in a worker, torch re-raises it as a RuntimeError carrying the message
    with pytest.raises(
        (TFRecordToolsError, RuntimeError),
        match=rf"{shard.name}: record {record} at byte {offset}: {kind}",
    ):
        _loaded(ds, workers, shuffle=False)


@pytest.mark.parametrize(("data", "how"), DAMAGE)
def test_batched_fetch_skips_as_per_item_fetch_skips(request, tmp_path, data, how):
    folder = _copy(request.getfixturevalue(data), tmp_path)
    batched = TFRecordMapDataset(folder, channels=1, skip_corrupt=True)
    single = _PerItem(folder, channels=1, skip_corrupt=True)
    assert len(batched) == len(single) == N
    shard, record, offset = _damage(folder, how)
    assert _same_batches(_loaded(batched, 0), _loaded(single, 0))
    skipped = [(e.path, e.index, e.offset) for e in batched.source.skipped]
    assert skipped == [(str(shard), record, offset)]
    assert skipped == [(e.path, e.index, e.offset) for e in single.source.skipped]


def test_grain_batched_reads(digits, raw_digits):
    grain = pytest.importorskip("grain")
    from tfrecord_tools.access.grain import GrainSource

    for folder in (digits, raw_digits):
        src = GrainSource(folder, channels=1)
        indices = [9, 2, 9, -3, 40]
        images, labels = src.read_batch(indices)
        assert np.array_equal(images, np.stack([src[i][0] for i in indices]))
        assert labels.tolist() == [src[i][1] for i in indices] and labels.dtype == np.int64
        pushed = grain.MapDataset.source(src)._getitems(indices)  # grain's batched hook
        assert [(_key(*x)) for x in pushed] == [_key(*src[i]) for i in indices]
        ds = src.batched(8, seed=1)
        assert len(ds) == 8 and ds[7][0].shape == (4, 28, 28, 1)
        epoch = [ds[b] for b in range(len(ds))]
        got = Counter(
            _key(x, y) for images, labels in epoch for x, y in zip(images, labels, strict=True)
        )
        assert got == _want(folder)
        again = ds.repeat(2)
        assert np.array_equal(again[0][1], epoch[0][1])
        second = np.concatenate([again[len(ds) + b][1] for b in range(len(ds))])
        assert sorted(second.tolist()) == sorted(_want_labels(folder))
        in_order = np.concatenate([y for _, y in src.batched(16, shuffle=False)])
        assert in_order.tolist() == [src[i][1] for i in range(N)]
        assert len(src.batched(16, drop_remainder=True)) == N // 16
        copy = pickle.loads(pickle.dumps(ds))  # as a grain worker gets it
        assert np.array_equal(copy[3][1], ds[3][1])


def _want_labels(folder: Path) -> list[int]:
    src = TFRecordDataSource(folder, channels=1)
    return [src[i][1] for i in range(len(src))]
