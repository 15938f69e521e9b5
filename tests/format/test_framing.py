"""Record framing: CRCs against TensorFlow's, damage detection, bounded lengths."""

from __future__ import annotations

import os
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tfrecord_tools.errors import RecordError
from tfrecord_tools.format.framing import frame, iter_records, masked_crc32c
from tfrecord_tools.format.writer import ShardWriter


def test_masked_crc_of_empty_data_is_the_mask_constant():
    assert masked_crc32c(b"") == 0xA282EAD8  # crc32c(b"") == 0


def test_our_records_equal_tensorflows(tmp_path):
    tf = pytest.importorskip("tensorflow")
    payloads = [b"", b"a", b"hello world" * 100, bytes(range(256))]
    ours = tmp_path / "ours.tfrecord"
    with ShardWriter(ours) as w:
        for p in payloads:
            w.write(p)
        w.commit()
    theirs = tmp_path / "theirs.tfrecord"
    with tf.io.TFRecordWriter(str(theirs)) as w:
        for p in payloads:
            w.write(p)
    assert ours.read_bytes() == theirs.read_bytes()


@settings(max_examples=50, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=8))
def test_round_trip_any_payloads(tmp_path_factory, payloads):
    path = tmp_path_factory.mktemp("rt") / "x.tfrecord"
    path.write_bytes(b"".join(frame(p) for p in payloads))
    records = list(iter_records(path))
    assert [r.data for r in records] == payloads
    offsets = [0]
    for p in payloads:
        offsets.append(offsets[-1] + len(p) + 16)
    assert [r.offset for r in records] == offsets[:-1]


def _damaged(tmp_path, mutate):
    data = bytearray(b"".join(frame(bytes([i]) * 50) for i in range(4)))
    mutate(data)
    path = tmp_path / "bad.tfrecord"
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize(
    ("mutate", "kind", "index", "offset"),
    [
        (lambda d: d.__setitem__(66 + 20, d[66 + 20] ^ 1), "data CRC mismatch", 1, 66),
        (lambda d: d.__setitem__(132 + 2, d[132 + 2] ^ 1), "length CRC mismatch", 2, 132),
        (lambda d: d.__delitem__(slice(215, None)), "truncated record", 3, 198),
        (lambda d: d.__delitem__(slice(205, None)), "truncated header", 3, 198),
    ],
)
def test_damage_is_named_with_file_index_and_offset(tmp_path, mutate, kind, index, offset):
    path = _damaged(tmp_path, mutate)
    with pytest.raises(RecordError) as info:
        list(iter_records(path))
    e = info.value
    assert (e.kind, e.index, e.offset) == (kind, index, offset)
    assert str(path) in str(e) and f"record {index} at byte {offset}" in str(e)


def test_absurd_length_fails_fast_without_allocating(tmp_path):
    length = struct.pack("<Q", 2**62)
    header = length + struct.pack("<I", masked_crc32c(length))
    path = tmp_path / "absurd.tfrecord"
    path.write_bytes(header + b"tiny")
    with pytest.raises(RecordError, match=r"length field says 4611686018427387904 bytes, 4 left"):
        list(iter_records(path))


@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_write_many_equals_one_write_per_record(tmp_path, compression):
    # small records gathered, one over the gathering limit, in several flushes
    payloads = [bytes([i % 251]) * (i % 700) for i in range(3000)]
    payloads.insert(1500, b"x" * (70 << 10))
    one, many = tmp_path / "one.tfrecord", tmp_path / "many.tfrecord"
    with ShardWriter(one, compression) as w:
        for p in payloads:
            w.write(p)
        info_one = w.commit()
    with ShardWriter(many, compression) as w:
        w.write_many(payloads[:10])
        w.write(payloads[10])
        w.write_many(payloads[11:])
        info_many = w.commit()
    assert many.read_bytes() == one.read_bytes()
    assert (tmp_path / "many.tfrecord.idx").read_text() == (
        tmp_path / "one.tfrecord.idx"
    ).read_text()
    assert (info_many.num_examples, info_many.sha256) == (info_one.num_examples, info_one.sha256)


def test_shared_fields_encoder_matches_encode_example():
    from tfrecord_tools.format.example import encode_example, shared_fields_encoder

    encode = shared_fields_encoder(image_format="png", height=28, width=28, channels=1)
    for image, label, name in [(b"", 0, "train/00000"), (b"\x89PNG" * 300, 9, "test/9999 é")]:
        expected = encode_example(
            encoded=image,
            image_format="png",
            height=28,
            width=28,
            channels=1,
            label=label,
            text=str(label),
            filename=name,
        )
        assert encode(image, label, str(label), name) == expected


def test_writer_leaves_nothing_behind_until_commit(tmp_path):
    shard = tmp_path / "x.tfrecord"
    with pytest.raises(RuntimeError), ShardWriter(shard) as w:
        w.write_many([b"a" * 10] * 5)
        assert {p.name for p in tmp_path.iterdir()} == {
            f".x.tfrecord.tmp-{os.getpid()}",
            f".x.tfrecord.idx.tmp-{os.getpid()}",
        }
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []  # both temporary files removed
    with ShardWriter(shard) as w:
        w.write_many([b"a" * 10] * 5)
        info = w.commit()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.tfrecord", "x.tfrecord.idx"]
    assert info.num_examples == 5
    assert (tmp_path / "x.tfrecord.idx").read_text().splitlines()[-1] == f"{4 * 26} 26"
