"""The tf.data reader neither hangs nor crashes on what it is given, and says what is wrong:
a shard the metadata lists that is missing, a record whose length field (its CRC valid)
is far larger than its shard, an ``image_size`` whose batch cannot fit in memory, images of
several sizes batched without ``image_size``.

Reads that used to hang (a busy loop) or crash (a segfault) run in a subprocess with a
generous bound, so that a regression fails its test instead of stopping the suite.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tfrecord_tools import convert_image_folder, convert_mnist
from tfrecord_tools.errors import TFRecordToolsError
from tfrecord_tools.format.framing import header
from tfrecord_tools.format.index import read_index
from tfrecord_tools.read.options import ReadOptions, check_memory

from ..helpers import write_mnist

tf = pytest.importorskip("tensorflow")
from tfrecord_tools.read.pipeline import make_dataset  # noqa: E402

BOUND = 120  # seconds: the reads below take a few once TensorFlow is imported


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> Path:
    """Ours: 30 train records of 28x28 raw pixels in 3 shards, with index files."""
    src = tmp_path_factory.mktemp("digits-src")
    pixels = np.random.default_rng(0).integers(0, 256, (40, 28, 28), np.uint8)
    write_mnist(
        src,
        {"train": (pixels[:30], np.arange(30) % 10), "test": (pixels[30:], np.zeros(10, np.int64))},
    )
    out = tmp_path_factory.mktemp("digits") / "out"
    convert_mnist(src, out, encoding="raw", shards=4, workers=1, quiet=True)
    return out


def _copy(digits: Path, dest: Path, *, tfds: bool = False) -> Path:
    """A copy of ``digits``; ``tfds``: laid out as TFDS prepares it (dataset_info.json,
    no manifest, no labels.txt, no index files)."""
    shutil.copytree(digits, dest)
    if tfds:
        for path in dest.iterdir():
            if path.name in ("dataset.json", "labels.txt") or path.suffix == ".idx":
                path.unlink()
    return dest


def _shards(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*-train.tfrecord-*") if p.suffix != ".idx")


_READS = """
import json, sys
from tfrecord_tools.read.options import ReadOptions
from tfrecord_tools.read.pipeline import make_dataset
from tfrecord_tools.read.records import read_records
for path, options in json.loads(sys.argv[1]):
    try:
        if isinstance(path, list):  # shard files and their counts, as the pipeline gives them
            ds = read_records(path, options["counts"], "", ReadOptions())
        else:
            ds = make_dataset(path, **options)
        print(json.dumps(f"read {sum(1 for _ in ds)}"), flush=True)
    except Exception as e:
        print(json.dumps(f"{type(e).__name__}: {e}"), flush=True)
"""


def _read_each(cases: list[tuple[str | list[str], dict]]) -> list[str]:
    """What reading each ``(path, options)`` did (``read N`` or the error), in a fresh
    process that must end by itself within ``BOUND`` seconds. A list of paths is read by
    ``records.read_records`` (options: ``counts``), under the pipeline's shard list."""
    env = {"TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "-1"}
    try:
        done = subprocess.run(
            [sys.executable, "-c", _READS, json.dumps(cases)],
            capture_output=True,
            text=True,
            timeout=BOUND,
            env={**os.environ, **env},
        )
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"the reads did not end within {BOUND} s (a hang); they said {e.stdout!r}")
    said = [json.loads(line) for line in done.stdout.splitlines()]
    assert done.returncode == 0, f"exit {done.returncode} after {said}: {done.stderr[-2000:]}"
    return said


def test_a_missing_shard_is_named_at_once(digits, tmp_path):
    """TensorFlow's ``ignore_errors`` (the damage guard) retried opening it forever. The
    resolver names it first; the record reader does too, for a list of shards it is given."""
    ours = _copy(digits, tmp_path / "ours")
    tfds = _copy(digits, tmp_path / "tfds", tfds=True)
    gone = [_shards(ours)[1], _shards(tfds)[2]]
    for shard in gone:
        shard.unlink()
    files = [str(p) for p in _shards(digits)[:1]] + [str(gone[0])]
    said = _read_each(
        [
            (str(ours), {}),
            (str(tfds), {"batch_size": 4}),
            (str(ours), {"shuffle": True}),
            (files, {"counts": [10, 10]}),
        ]
    )
    for shard, message in zip([*gone, gone[0]], said[:3], strict=True):
        assert message.startswith(f"TFRecordToolsError: {shard}: "), message
    assert said[3].startswith(f"TFRecordToolsError: {gone[0]}: no such shard file"), said[3]


def _set_length(shard: Path, record: int, length: int, offsets: list[int]) -> int:
    """Give ``record`` of ``shard`` the length field ``length`` with a valid length CRC."""
    with shard.open("r+b") as f:
        f.seek(offsets[record])
        f.write(header(length))
    return offsets[record]


def test_a_record_length_that_cannot_fit_is_named_before_tensorflow_reads_it(digits, tmp_path):
    """TensorFlow's reader allocates a record's length before reading it: 2^40 or 2^62
    with a valid CRC ended the process with a segfault (exit 139)."""
    cases, expected = [], []
    for name, length, tfds, options in [
        ("ours", 1 << 40, False, {}),
        ("glob", 1 << 62, False, {"batch_size": 4}),
        ("tfds", 1 << 40, True, {}),
        ("global", 1 << 62, False, {"shuffle": "global", "seed": 1}),
    ]:
        folder = _copy(digits, tmp_path / name, tfds=tfds)
        shard = _shards(folder)[1]
        offsets = [offset for offset, _ in read_index(f"{_shards(digits)[1]}.idx")]
        offset = _set_length(shard, 3, length, offsets)
        path = str(folder / "*-train.tfrecord-0000?-of-*") if name == "glob" else str(folder)
        cases.append((path, options))
        expected.append(
            f"RecordError: {shard}: record 3 at byte {offset}: impossible record length: "
            f"its length field says {length:,} bytes, more than the whole shard "
            f"({shard.stat().st_size:,} bytes)"
        )
    # records of 20 KiB, whose headers are read one by one (pread), not mapped
    big = tmp_path / "big.tfrecord"
    feature = {"image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"x" * 20_000]))}
    record = tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()
    with tf.io.TFRecordWriter(str(big)) as writer:
        for _ in range(4):
            writer.write(record)
    offset = _set_length(big, 2, 1 << 40, [i * (len(record) + 16) for i in range(4)])
    cases.append((str(big), {"label_key": None}))
    expected.append(f"RecordError: {big}: record 2 at byte {offset}: impossible record length")
    for want, message in zip(expected, _read_each(cases), strict=True):
        assert message.startswith(want), message


def test_a_length_past_the_end_but_within_the_shard_is_still_tensorflows_damage(digits, tmp_path):
    """A shard cut short keeps the markers' report at read time (no allocation to fear)."""
    folder = _copy(digits, tmp_path / "cut")
    shard = _shards(folder)[0]
    shard.write_bytes(shard.read_bytes()[:-100])
    with pytest.raises(tf.errors.InvalidArgumentError, match=rf"{shard}: damaged shard"):
        for _ in make_dataset(folder):
            pass


def test_an_image_size_whose_batch_cannot_fit_in_memory_is_refused(digits):
    """TensorFlow built the pipeline and raised ResourceExhaustedError at the first batch."""
    with pytest.raises(TFRecordToolsError) as info:
        make_dataset(digits, batch_size=64, image_size=100_000)
    assert str(info.value).startswith(
        "image_size=(100000, 100000) with batch_size=64: a batch of 64 100000x100000x3 uint8 "
        "images and the one being resized (float32) take 1,899.9 GiB, more than the "
    )
    assert str(info.value).endswith(
        "of memory available: choose a smaller image_size or batch_size"
    )
    with pytest.raises(TFRecordToolsError, match=r"^image_size=\(1000000, 1000000\): one "):
        make_dataset(digits, image_size=1_000_000, channels=1)


@pytest.mark.parametrize(
    ("options", "fits"),
    [
        ({"batch_size": 32, "image_size": 224}, 32 * 224 * 224 * 3 + 224 * 224 * 3 * 4),
        ({"batch_size": 8, "image_size": 64, "dtype": "float32"}, (8 + 1) * 64 * 64 * 3 * 4),
        ({"image_size": (30, 40), "channels": 1}, 30 * 40 * (1 + 4)),
    ],
)
def test_check_memory_counts_the_batch_and_the_image_being_resized(options, fits):
    opts = ReadOptions(**options)
    check_memory(opts, available=fits)
    with pytest.raises(TFRecordToolsError, match=r"^image_size=.* more than the 0\.0 GiB"):
        check_memory(opts, available=fits - 1)


@pytest.fixture(scope="module")
def two_sizes(tmp_path_factory) -> Path:
    """Ours: five 16x16 PNGs and one 24x16 (height x width), one shard, no image_shape."""
    src = tmp_path_factory.mktemp("two-sizes-src")
    rng = np.random.default_rng(1)
    for i in range(6):
        folder = src / "ab"[i % 2]
        folder.mkdir(exist_ok=True)
        height = 24 if i == 3 else 16
        pixels = rng.integers(0, 256, (height, 16, 3), np.uint8)
        Image.fromarray(pixels).save(folder / ("big.png" if i == 3 else f"{i}.png"))
    out = tmp_path_factory.mktemp("two-sizes") / "out"
    convert_image_folder(src, out, shards=1, workers=1, quiet=True)
    return out


def test_a_batch_of_two_sizes_names_them_and_image_size(two_sizes):
    """TensorFlow's batch said only "Cannot add tensor to the batch: number of elements
    does not match"."""
    for options in ({}, {"shuffle": True, "seed": 2}):
        with pytest.raises(tf.errors.InvalidArgumentError) as info:
            for _ in make_dataset(two_sizes, batch_size=6, **options):
                pass
        message = str(info.value)
        assert "images of different sizes cannot be batched: " in message
        assert "b/big.png is 24x16" in message and "png is 16x16" in message
        assert "pass image_size=(HEIGHT, WIDTH) to resize every image to one size" in message
    images, _ = next(iter(make_dataset(two_sizes, batch_size=6, image_size=8)))
    assert images.shape == (6, 8, 8, 3)


def _write_tfds_layout(path: Path, shapes: list[tuple[int, int]]) -> None:
    """Records as TFDS writes them (``image``, ``label``): no image/filename."""
    with tf.io.TFRecordWriter(str(path)) as writer:
        for label, (height, width) in enumerate(shapes):
            png = tf.io.encode_png(tf.zeros([height, width, 3], tf.uint8)).numpy()
            feature = {
                "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[png])),
                "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
            }
            example = tf.train.Example(features=tf.train.Features(feature=feature))
            writer.write(example.SerializeToString())


def test_records_without_names_are_named_by_their_place(tmp_path):
    _write_tfds_layout(tmp_path / "a.tfrecord", [(8, 8), (8, 8), (8, 9), (8, 8)])
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match="cannot be batched: image 0 read is 8x8, image 2 read is 8x9; pass image_size",
    ):
        for _ in make_dataset(tmp_path / "a.tfrecord", batch_size=4):
            pass
    _write_tfds_layout(tmp_path / "b.tfrecord", [(8, 8)] * 5)
    batches = [images.shape for images, _ in make_dataset(tmp_path / "b.tfrecord", batch_size=2)]
    assert batches == [(2, 8, 8, 3), (2, 8, 8, 3), (1, 8, 8, 3)]
