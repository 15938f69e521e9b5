"""make_dataset(shuffle="global"): runs of records from the index files, shuffled across all
shards every epoch. Over class-sorted shards written here (each record's raw pixels carry
its id, its label its class): every record once per epoch, seeded, reshuffled per epoch,
well mixed, split exactly between hosts; errors for missing indexes, compressed shards and
damage name the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tfrecord_tools import TFRecordToolsError, make_dataset
from tfrecord_tools.format.example import encode_example
from tfrecord_tools.format.naming import index_path
from tfrecord_tools.format.writer import ShardWriter

tf = pytest.importorskip("tensorflow")

CLASSES = 8
PER_CLASS = 150
SHARDS = 4
BUFFER = 64  # runs of BUFFER // 16 = 4 records


def write_sorted(folder: Path, *, compression: str = "none", suffix: str = "") -> Path:
    """CLASSES x PER_CLASS records in class order over SHARDS shards (no manifest); record
    i's 2x2 raw pixels hold i (high byte, low byte)."""
    folder.mkdir(parents=True, exist_ok=True)
    total = CLASSES * PER_CLASS
    per_shard = -(-total // SHARDS)
    for shard in range(SHARDS):
        name = folder / f"sorted-train.tfrecord-{shard:05d}-of-{SHARDS:05d}{suffix}"
        with ShardWriter(name, compression) as writer:
            for i in range(shard * per_shard, min(total, (shard + 1) * per_shard)):
                pixels = bytes([i >> 8, i & 255, 0, 0])
                writer.write(
                    encode_example(
                        encoded=pixels,
                        image_format="raw",
                        height=2,
                        width=2,
                        channels=1,
                        label=i // PER_CLASS,
                        text=str(i // PER_CLASS),
                        filename=f"{i}.raw",
                    )
                )
            writer.commit()
    return folder


@pytest.fixture(scope="module")
def sorted_shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_sorted(tmp_path_factory.mktemp("sorted"))


def _read(folder: Path, **options) -> tuple[list[int], list[int]]:
    """(record ids, labels) in the order make_dataset yields them, one epoch after another."""
    options = {"shuffle": "global", "shuffle_buffer": BUFFER, "seed": 3, **options}
    ids, labels = [], []
    for image, label in make_dataset(folder, channels=1, image_format="raw", **options):
        record = int(image[0, 0, 0]) * 256 + int(image[0, 1, 0])
        assert int(label) == record // PER_CLASS
        ids.append(record)
        labels.append(int(label))
    return ids, labels


def _equal_neighbours(labels: list[int]) -> float:
    labels = np.asarray(labels)
    return float(np.mean(labels[1:] == labels[:-1]))


def test_every_record_once_per_epoch_and_a_new_order_each(sorted_shards: Path) -> None:
    ids, _ = _read(sorted_shards, repeat=2)
    total = CLASSES * PER_CLASS
    first, second = ids[:total], ids[total:]
    assert sorted(first) == list(range(total))
    assert sorted(second) == list(range(total))
    assert first != second


def test_seeded(sorted_shards: Path) -> None:
    assert _read(sorted_shards, seed=1)[0] == _read(sorted_shards, seed=1)[0]
    assert _read(sorted_shards, seed=1)[0] != _read(sorted_shards, seed=2)[0]


def test_mixes_classes_far_better_than_a_file_shuffle(sorted_shards: Path) -> None:
    _, file_level = _read(sorted_shards, shuffle=True)
    _, global_ = _read(sorted_shards)
    # a true permutation: 1/CLASSES = 0.125; a file shuffle through a 64-record buffer ~0.65
    assert _equal_neighbours(global_) < 0.3 < _equal_neighbours(file_level)
    assert _equal_neighbours(global_) < _equal_neighbours(file_level) / 2


@pytest.mark.parametrize("cycle_length", [1, 3])
def test_two_hosts_split_the_records_exactly(sorted_shards: Path, cycle_length: int) -> None:
    parts = [
        set(_read(sorted_shards, num_workers=2, worker_index=w, cycle_length=cycle_length)[0])
        for w in range(2)
    ]
    assert not parts[0] & parts[1]
    assert parts[0] | parts[1] == set(range(CLASSES * PER_CLASS))
    assert abs(len(parts[0]) - len(parts[1])) <= BUFFER // 16


def test_missing_index_is_named(tmp_path: Path) -> None:
    folder = write_sorted(tmp_path / "noindex")
    shard = sorted(folder.glob("*-00002-of-*"))[0]
    index_path(shard).unlink()
    with pytest.raises(
        TFRecordToolsError, match=rf"{shard.name}: no index file.*tfrecord-tools index"
    ):
        make_dataset(folder, shuffle="global")


def test_compressed_shards_are_refused(tmp_path: Path) -> None:
    folder = write_sorted(tmp_path / "gzip", compression="gzip", suffix=".gz")
    with pytest.raises(TFRecordToolsError, match=r"sorted-train.*gzip-compressed.*shuffle=True"):
        make_dataset(folder, shuffle="global")


def test_a_run_cut_short_by_damage_names_the_shard(tmp_path: Path) -> None:
    folder = write_sorted(tmp_path / "damaged")
    shard = sorted(folder.glob("*-00001-of-*"))[0]
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) // 2])  # the index still lists every record
    # found from the index before a run is read: the error names the index and the shard
    with pytest.raises(TFRecordToolsError, match=rf"{shard.name}.idx: .* lost its end"):
        _read(folder)


@pytest.mark.parametrize("shuffle", ["Global", "files", 2])
def test_shuffle_values(shuffle) -> None:
    from tfrecord_tools.read.options import ReadOptions

    if shuffle == "Global":
        assert ReadOptions(shuffle=shuffle).global_shuffle
        return
    with pytest.raises(TFRecordToolsError, match=r"shuffle must be False, True .* or 'global'"):
        ReadOptions(shuffle=shuffle)
