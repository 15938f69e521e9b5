"""The dataset layer (``tfrecord_tools.dataset``): one answer to "what is at this PATH", and
the promises every reader keeps through it: folders of other tools' shards found by their
framing, ``.idx`` files checked before anyone seeks by them, record counts the metadata
promises enforced by every sequential path, files that are not Examples named as such."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tfrecord_tools import TFRecordDataSource, TFRecordToolsError, verify
from tfrecord_tools.check.count import count_records
from tfrecord_tools.check.inspect import inspect_dataset
from tfrecord_tools.dataset import resolve
from tfrecord_tools.format.example import encode_example_parts, message_kind
from tfrecord_tools.format.framing import frame
from tfrecord_tools.format.index import read_index
from tfrecord_tools.format.naming import LABELS, MANIFEST
from tfrecord_tools.format.tfds import TFDS_INFO
from tfrecord_tools.storage import Location

from ..test_golden import make_golden_folder


def _record(label: int, side: int = 4) -> bytes:
    pixels = np.full((side, side, 1), label * 10, np.uint8).tobytes()
    parts = encode_example_parts(
        encoded=pixels,
        image_format="raw",
        height=side,
        width=side,
        channels=1,
        label=label,
        text=str(label),
        filename=f"{label}.raw",
    )
    return b"".join(parts)


def _shard(path: Path, labels: list[int], *, gz: bool = False) -> Path:
    data = b"".join(frame(_record(label)) for label in labels)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


@pytest.fixture(scope="module")
def ours(tmp_path_factory) -> Path:
    from tfrecord_tools import convert_image_folder

    root = tmp_path_factory.mktemp("ours")
    src = make_golden_folder(root / "src")
    out = root / "out"
    convert_image_folder(src, out, name="ds", shards=2, seed=3, quiet=True)
    return out


def _copy(folder: Path, dest: Path) -> Path:
    shutil.copytree(folder, dest)
    return dest


def _shards(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if ".tfrecord-" in p.name and p.suffix != ".idx")


# --------------------------------------------------------------------- what is at PATH


def test_folders_of_other_tools_shards_are_found_by_their_framing(tmp_path):
    slim = tmp_path / "slim"
    slim.mkdir()
    _shard(slim / "train-00000-of-00002", [0, 1, 2])
    _shard(slim / "train-00001-of-00002", [3, 4])
    (slim / "README").write_text("shards made by build_image_data.py\n")
    (slim / "notes.txt").write_text("not a shard")
    tfx = tmp_path / "tfx"
    tfx.mkdir()
    _shard(tfx / "data_tfrecord-00000-of-00001.gz", [5, 6], gz=True)
    hadoop = tmp_path / "hadoop"
    hadoop.mkdir()
    _shard(hadoop / "part-m-00000", [7])
    (hadoop / "_SUCCESS").write_bytes(b"")

    found = resolve(slim)
    assert found.kind == "files"
    assert [s.name for s in found.shards] == ["train-00000-of-00002", "train-00001-of-00002"]
    assert resolve(tfx).compression == "gzip"
    assert [s.name for s in resolve(hadoop).shards] == ["part-m-00000"]
    # the readers take the same answer: the same records as a glob of the same files
    src = TFRecordDataSource(slim, channels=1)
    assert len(src) == 5 and [src[i][1] for i in range(5)] == [0, 1, 2, 3, 4]
    labels = [int(y) for _, y in TFRecordDataSource(tfx, channels=1).stream()]
    assert labels == [5, 6]


def test_a_folder_with_nothing_of_ours_or_theirs_is_not_a_dataset(tmp_path):
    (tmp_path / "a.txt").write_text("x")
    (tmp_path / "b").write_bytes(b"\x00" * 64)  # no valid record header
    with pytest.raises(TFRecordToolsError, match="not a dataset"):
        resolve(tmp_path)
    with pytest.raises(TFRecordToolsError, match="not a dataset: no such file"):
        resolve(tmp_path / "missing")


def test_an_image_named_as_a_shard_argument_is_an_error(tmp_path, image_folder):
    photo = next(image_folder.glob("cats/img0.jpg"))
    with pytest.raises(TFRecordToolsError, match="a JPEG image, not a TFRecord file"):
        inspect_dataset([photo])


def test_a_compression_that_contradicts_the_manifest_is_an_error(ours):
    with pytest.raises(TFRecordToolsError, match="compression 'gzip' given"):
        resolve(ours, compression="gzip")


def test_the_location_type_normalises_once():
    assert Location("file:///data/x") == "/data/x" and not Location("/data/x").is_url
    url = Location("s3://key:secret@bucket/ds/a.tfrecord")
    assert url.is_url and url.shown == "s3://bucket/ds/a.tfrecord"
    assert url.idx == "s3://key:secret@bucket/ds/a.tfrecord.idx"
    assert url.parent == "s3://key:secret@bucket/ds" and url.name == "a.tfrecord"
    with pytest.raises(TypeError):
        Location(3)  # type: ignore[arg-type]


# --------------------------------------------------------------------- not Examples


def _event_record() -> bytes:
    wall_time = (1 << 3 | 1).to_bytes(1, "little") + np.float64(1.5e9).tobytes()
    version = b"brain.Event:2"
    return wall_time + bytes([3 << 3 | 2, len(version)]) + version


def _sequence_record() -> bytes:
    context = bytes([1 << 3 | 2, 0])  # an empty Features
    lists = bytes([2 << 3 | 2, 0])  # an empty FeatureLists
    return context + lists


@pytest.mark.parametrize(
    ("record", "kind", "said"),
    [
        (_event_record(), "event", "TensorBoard event"),
        (_sequence_record(), "sequence_example", "SequenceExample"),
    ],
)
def test_files_of_other_messages_are_named_for_what_they_are(tmp_path, record, kind, said):
    assert message_kind(record) == kind
    path = tmp_path / "events.out.tfevents.1.host"
    path.write_bytes(frame(record))
    with pytest.raises(TFRecordToolsError, match=said):
        TFRecordDataSource([str(path)])


# --------------------------------------------------------------------- index checks


def _corrupt_index(folder: Path, change) -> Path:
    shard = _shards(folder)[0]
    idx = shard.with_name(shard.name + ".idx")
    lines = idx.read_text().splitlines()
    idx.write_text("\n".join(change(lines)) + "\n")
    return idx


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (lambda lines: [lines[0], lines[0], *lines[2:]], "line 2"),  # a duplicated line
        (lambda lines: [lines[1], lines[0], *lines[2:]], "line 1"),  # swapped lines
        (lambda lines: ["0 5", *lines[1:]], "line 1"),  # shorter than a record's framing
        (lambda lines: [*lines[:-1], f"{lines[-1].split()[0]} {2**40}"], "end at byte"),
        (lambda lines: [*lines[:-1], f"{lines[-1].split()[0]} {2**70}"], "end at byte"),
        (lambda lines: lines[:-1], "end at byte"),  # a line lost
    ],
)
def test_an_index_is_checked_before_any_reader_seeks_by_it(ours, tmp_path, change, said):
    folder = _copy(ours, tmp_path / "ds")
    idx = _corrupt_index(folder, change)
    pattern = rf"{idx.name}: .*{said}"
    with pytest.raises(TFRecordToolsError, match=pattern):
        len(TFRecordDataSource(folder))
    from tfrecord_tools import make_dataset

    with pytest.raises(TFRecordToolsError, match=pattern):
        make_dataset(folder, shuffle="global", seed=1, image_size=8)
    # the plain sequential read does not need the index, and stays right
    assert sum(1 for _ in TFRecordDataSource(folder).stream()) == _manifest_total(folder)


def _manifest_total(folder: Path) -> int:
    return json.loads((folder / MANIFEST).read_text())["splits"]["train"]["num_examples"]


# --------------------------------------------------------------------- count promises


def test_a_shard_cut_at_a_record_boundary_is_never_read_short(ours, tmp_path):
    folder = _copy(ours, tmp_path / "ds")
    shard = _shards(folder)[1]
    entries = read_index(shard.with_name(shard.name + ".idx"))
    keep = len(entries) // 2
    shard.write_bytes(shard.read_bytes()[: entries[keep][0]])  # whole records kept
    total = _manifest_total(folder)
    src = TFRecordDataSource(folder)
    with pytest.raises(TFRecordToolsError, match=rf"{shard.name}: .*missing records"):
        sum(len(y) for _, y in src.batches(4))
    with pytest.raises(TFRecordToolsError, match=rf"{shard.name}: .*missing records"):
        sum(1 for _ in src.stream())
    with pytest.raises(TFRecordToolsError, match=rf"{shard.name}.idx: .*lost its end"):
        len(src)
    lenient = TFRecordDataSource(folder, skip_corrupt=True)
    assert sum(1 for _ in lenient.stream()) == total - (len(entries) - keep)
    assert [e.kind for e in lenient.skipped] == ["missing records"]


def _as_tfds(ours: Path, dest: Path) -> Path:
    folder = _copy(ours, dest)
    (folder / MANIFEST).unlink()
    (folder / LABELS).unlink()
    for idx in folder.glob("*.idx"):
        idx.unlink()
    return folder


def _set_length(folder: Path, value: int) -> None:
    info = json.loads((folder / TFDS_INFO).read_text())
    info["splits"][0]["shardLengths"][0] = str(value)
    (folder / TFDS_INFO).write_text(json.dumps(info))


def test_tfds_shard_lengths_that_cannot_be_true_name_the_metadata(ours, tmp_path):
    folder = _as_tfds(ours, tmp_path / "tfds")
    _set_length(folder, 10**15)
    for tool in (resolve, count_records, verify, TFRecordDataSource):
        with pytest.raises(TFRecordToolsError, match=rf"{TFDS_INFO}: says .* holds {10**15}"):
            tool(folder)


def test_tfds_shard_lengths_that_are_wrong_are_found_by_verify_and_the_readers(ours, tmp_path):
    folder = _as_tfds(ours, tmp_path / "tfds")
    info = json.loads((folder / TFDS_INFO).read_text())
    true = int(info["splits"][0]["shardLengths"][0])
    _set_length(folder, true - 1)  # one record fewer than the shard holds
    report = verify(folder)
    assert not report.ok
    assert [p.kind for p in report.problems] == ["count mismatch"]
    assert f"says {true - 1} records, the file has {true}" in report.problems[0].detail
    src = TFRecordDataSource(folder)
    with pytest.raises(TFRecordToolsError, match=rf"{TFDS_INFO} promises {true - 1}"):
        len(src)
    with pytest.raises(TFRecordToolsError, match=rf"{TFDS_INFO} promises {true - 1}"):
        sum(1 for _ in src.stream())
    with pytest.raises(TFRecordToolsError, match=rf"{TFDS_INFO} promises {true - 1}"):
        sum(len(y) for _, y in src.batches(3))


def test_verify_takes_several_dataset_folders(ours, tmp_path):
    other = _copy(ours, tmp_path / "other")
    report = verify([ours, other])
    assert report.ok and len(report.files) == 2 * len(_shards(ours))


# --------------------------------------------------------------------- one key detection


def test_both_readers_detect_the_same_layout(tmp_path):
    import tensorflow as tf

    from tfrecord_tools import make_dataset

    path = tmp_path / "keras.tfrecord"
    with tf.io.TFRecordWriter(str(path)) as writer:
        for label in range(4):
            pixels = np.full((3, 2, 1), label, np.uint8)
            feature = {
                "image_raw": tf.train.Feature(
                    bytes_list=tf.train.BytesList(value=[pixels.tobytes()])
                ),
                "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
                "height": tf.train.Feature(int64_list=tf.train.Int64List(value=[3])),
                "width": tf.train.Feature(int64_list=tf.train.Int64List(value=[2])),
                "depth": tf.train.Feature(int64_list=tf.train.Int64List(value=[1])),
            }
            example = tf.train.Example(features=tf.train.Features(feature=feature))
            writer.write(example.SerializeToString())
    want = [(x.numpy(), int(y)) for x, y in make_dataset(str(path), channels=1)]
    src = TFRecordDataSource(str(path), channels=1)
    got = [src[i] for i in range(len(src))]
    assert [y for _, y in got] == [y for _, y in want] == [0, 1, 2, 3]
    for (a, _), (b, _) in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(TFRecordToolsError, match="image_key 'nope' is missing"):
        TFRecordDataSource(str(path), image_key="nope")


def test_a_listed_shard_that_is_missing_stops_every_reader_at_once(ours, tmp_path):
    from tfrecord_tools import make_dataset

    for name, folder in (
        ("ours", _copy(ours, tmp_path / "o")),
        ("tfds", _as_tfds(ours, tmp_path / "t")),
    ):
        missing = _shards(folder)[0]
        missing.unlink()
        by = MANIFEST if name == "ours" else TFDS_INFO
        for reader in (TFRecordDataSource, make_dataset):
            with pytest.raises(
                TFRecordToolsError, match=rf"{missing.name}: listed in {by}, not there"
            ):
                reader(folder)


def test_inspect_takes_the_readers_keys_and_refuses_a_folder_of_missing_shards(ours, tmp_path):
    folder = _as_tfds(ours, tmp_path / "tfds")
    report = inspect_dataset(folder)
    assert set(report.image_formats) <= {"png", "jpeg"} and report.image_formats
    assert sum(report.labels.values()) == report.sample_records > 0
    for shard in _shards(folder):
        shard.unlink()
    with pytest.raises(TFRecordToolsError, match=rf"none of the .* {TFDS_INFO} lists is there"):
        inspect_dataset(folder)


def test_inspect_names_raw_pixels_of_the_keras_layout(tmp_path):
    import tensorflow as tf

    path = tmp_path / "mnist.tfrecord"
    with tf.io.TFRecordWriter(str(path)) as writer:
        for label in range(3):
            feature = {
                "image_raw": tf.train.Feature(bytes_list=tf.train.BytesList(value=[bytes(784)])),
                "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
                "height": tf.train.Feature(int64_list=tf.train.Int64List(value=[28])),
                "width": tf.train.Feature(int64_list=tf.train.Int64List(value=[28])),
                "depth": tf.train.Feature(int64_list=tf.train.Int64List(value=[1])),
            }
            example = tf.train.Example(features=tf.train.Features(feature=feature))
            writer.write(example.SerializeToString())
    report = inspect_dataset([path])
    assert report.image_formats == {"raw": 3} and report.image_sizes == {"28x28x1": 3}
    assert report.labels == {"0": 1, "1": 1, "2": 1}
