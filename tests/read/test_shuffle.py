"""make_dataset's shuffle: seeded (the same seed, the same order), seed-dependent, and a
permutation of the unshuffled order, over a dataset of several shards whose images carry
their record id."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import tfrecord_tools
from tfrecord_tools import convert_mnist, count_records

from ..helpers import read_dataset, write_mnist

pytest.importorskip("tensorflow")

N = 48  # train records, ids 0..N-1


@pytest.fixture(scope="session")
def numbered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MNIST-format dataset whose train image i holds i in its first pixel (label i % 10),
    in several train shards."""
    src = tmp_path_factory.mktemp("numbered-src")
    splits = {}
    for split, n in (("train", N), ("test", 4)):
        pixels = np.zeros((n, 28, 28), np.uint8)
        pixels[:, 0, 0] = np.arange(n)
        splits[split] = (pixels, np.arange(n) % 10)
    write_mnist(src, splits)
    out = tmp_path_factory.mktemp("numbered")
    convert_mnist(src, out, shards=12, workers=2, quiet=True)
    counted = count_records(out)
    assert counted.by_split == {"train": N, "test": 4}
    assert sum(shard.split == "train" for shard in counted.shards) >= 8
    return out


def _ids(out: Path, **options) -> list[int]:
    """Record ids in the order make_dataset yields them (checking each label on the way)."""
    ids = []
    for image, label in tfrecord_tools.make_dataset(out, channels=1, **options):
        record = int(image[0, 0, 0])
        assert int(label) == record % 10, f"record {record} came with label {int(label)}"
        ids.append(record)
    return ids


def test_unshuffled_order_is_the_shard_order(numbered: Path) -> None:
    in_shards = [int(r["image/filename"].split(b"/")[1]) for r in read_dataset(numbered)["train"]]
    assert sorted(in_shards) == list(range(N))
    assert _ids(numbered) == in_shards


@pytest.mark.parametrize(
    "shuffle_buffer", [1, 8, 1000], ids=["files-only", "smaller-than-data", "all-data"]
)
def test_shuffle_is_seeded_and_a_permutation(numbered: Path, shuffle_buffer: int) -> None:
    unshuffled = _ids(numbered)
    seed1 = _ids(numbered, shuffle=True, seed=1, shuffle_buffer=shuffle_buffer)
    seed1_again = _ids(numbered, shuffle=True, seed=1, shuffle_buffer=shuffle_buffer)
    seed2 = _ids(numbered, shuffle=True, seed=2, shuffle_buffer=shuffle_buffer)

    assert seed1 == seed1_again, "the same seed gave two orders"
    assert seed1 != seed2, "seeds 1 and 2 gave the same order"
    for order in (seed1, seed2):
        assert order != unshuffled, "shuffle=True left the order as it was"
        assert sorted(order) == sorted(unshuffled) == list(range(N))
