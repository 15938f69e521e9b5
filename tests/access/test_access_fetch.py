"""Batched reads (``access/fetch.py``) and the batch parts they use: records located through
the source, read in runs and checked as arrays, our records' keys parsed as arrays
(``parse.parse_image_batch``), simple PNGs decoded together (``decode.decode_simple_pngs``).
Every answer is held to the one-record path: ``src[i]``, ``parse_image_example``,
``decode_fields``."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from tfrecord_tools import TFRecordDataSource, TFRecordToolsError
from tfrecord_tools.access import decode, fetch, parse
from tfrecord_tools.access.parse import ExampleParseError, parse_image_batch, parse_image_example
from tfrecord_tools.format.example import encode_example
from tfrecord_tools.format.framing import frame
from tfrecord_tools.format.index import format_index

LABELS = [0, 7, 127, 128, 300, -1, 2**40, -(2**63), 2**63 - 1]


def _png(rng: np.random.Generator, shape: tuple[int, ...], mode: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(buf, "PNG")
    return buf.getvalue()


def _example(i: int, encoded: bytes, fmt: str = "png", **options) -> bytes:
    fields = {
        "encoded": encoded,
        "image_format": fmt,
        "height": 6,
        "width": 5,
        "channels": 1,
        "label": [0, 7, 300, -1][i % 4],  # varints of 1, 2 and 10 bytes
        "text": "x" * (i % 2),  # two lengths: with the labels, six layouts
        "filename": f"{i:02d}.png",
    }
    return encode_example(**{**fields, **options})


def _write(folder: Path, shards: list[list[bytes]]) -> list[str]:
    files = []
    for n, examples in enumerate(shards):
        path = folder / f"part-{n}.tfrecord"
        framed = [frame(e) for e in examples]
        path.write_bytes(b"".join(framed))
        offsets = np.cumsum([0] + [len(f) for f in framed[:-1]]).tolist()
        spans = zip(offsets, [len(f) for f in framed], strict=True)
        Path(f"{path}.idx").write_text(format_index(spans))
        files.append(str(path))
    return files


@pytest.fixture(scope="module")
def records(tmp_path_factory) -> list[str]:
    """Two shards of small PNG records of several layouts (labels of every varint width,
    class texts of three lengths, rotated ones), a JPEG, raw pixels and a 16-bit PNG."""
    rng = np.random.default_rng(0)
    folder = tmp_path_factory.mktemp("fetch")
    first = [_example(i, _png(rng, (6, 5), "L")) for i in range(14)]
    first[3] = _example(3, _png(rng, (6, 5), "L"), orientation=6)
    first[9] = _example(9, _png(rng, (6, 5, 3), "RGB"), channels=3)
    second = [_example(i, _png(rng, (6, 5), "L")) for i in range(14, 24)]
    jpeg = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)).save(jpeg, "JPEG")
    second[2] = _example(16, jpeg.getvalue(), "jpeg", channels=3)
    second[5] = _example(19, rng.integers(0, 256, 30, dtype=np.uint8).tobytes(), "raw")
    wide = io.BytesIO()
    Image.fromarray(rng.integers(0, 65536, (6, 5), dtype=np.uint16)).save(wide, "PNG")
    second[7] = _example(21, wide.getvalue())
    return _write(folder, [first, second])


def _same(got: tuple, want: list[tuple[np.ndarray, int]]) -> None:
    images, labels = got
    assert labels.dtype == np.int64 and labels.tolist() == [y for _, y in want]
    assert len(images) == len(want)
    for image, (expected, _) in zip(images, want, strict=True):
        assert image.dtype == np.uint8 and np.array_equal(image, expected)


@pytest.mark.parametrize(
    "options",
    [
        {"channels": 1},
        {"channels": 3},
        {"channels": 4},
        {"channels": 1, "orientation": False},
        {"channels": 1, "image_size": (6, 5)},  # the stored size: no resize
        {"channels": 3, "image_size": 4},
    ],
)
def test_fetch_gives_what_src_i_gives(records, options):
    src = TFRecordDataSource(records, **options)
    indices = [*range(len(src)), 3, 0, 3, -1, -24]
    _same(fetch.fetch(src, indices), [src[i] for i in indices])
    stacked, labels = fetch.fetch_batch(src, [1, 2, 4, 2])
    assert isinstance(stacked, np.ndarray) and stacked.shape[0] == 4
    _same((stacked, labels), [src[i] for i in [1, 2, 4, 2]])


def test_repeats_are_copies(records):
    src = TFRecordDataSource(records, channels=1)
    images, _ = fetch.fetch(src, [1, 1])
    images[0][...] = 0
    assert np.array_equal(images[1], src[1][0]) and images[1].any()


def test_simple_pngs_skip_the_one_record_path(tmp_path, monkeypatch):
    """Records of our layout whose image is a simple PNG never reach ``src.decode``; the
    others (rotated, JPEG, 16-bit, RGB read as gray) do."""
    rng = np.random.default_rng(4)
    examples = [_example(i, _png(rng, (6, 5), "L"), label=i % 10, text="") for i in range(24)]
    examples[3] = _example(3, _png(rng, (6, 5), "L"), label=3, text="", orientation=6)
    examples[9] = _example(9, _png(rng, (6, 5, 3), "RGB"), label=9, text="", channels=3)
    jpeg = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)).save(jpeg, "JPEG")
    examples[16] = _example(16, jpeg.getvalue(), "jpeg", label=6, text="")
    wide = io.BytesIO()
    Image.fromarray(rng.integers(0, 65536, (6, 5), dtype=np.uint16)).save(wide, "PNG")
    examples[21] = _example(21, wide.getvalue(), label=1, text="")
    src = TFRecordDataSource(_write(tmp_path, [examples[:14], examples[14:]]), channels=1)
    want = [src[i] for i in range(len(src))]
    seen = []
    one = TFRecordDataSource.decode

    def counted(self, data, file, index, offset):
        seen.append((Path(file).name, index))
        return one(self, data, file, index, offset)

    monkeypatch.setattr(TFRecordDataSource, "decode", counted)
    _same(fetch.fetch(src, range(len(src))), want)
    assert sorted(seen) == [
        ("part-0.tfrecord", 3), ("part-0.tfrecord", 9), ("part-1.tfrecord", 2),
        ("part-1.tfrecord", 7),
    ]  # fmt: skip


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("options", [{"channels": 1}, {"channels": 3, "image_size": 4}])
def test_batches_decode_together_as_src_i(records, shuffle, options, monkeypatch):
    """``batches()`` decodes simple PNGs together too (whole shards: records of many
    lengths); the rest one by one, the same images and labels as ``src[i]``."""
    src = TFRecordDataSource(records, **options)
    want = {(_digest(image), label) for image, label in (src[i] for i in range(len(src)))}
    calls = []
    one = TFRecordDataSource.decode
    monkeypatch.setattr(TFRecordDataSource, "decode", lambda *a: calls.append(a[3]) or one(*a))
    got = [
        (_digest(image), int(label))
        for images, labels in src.batches(5, shuffle=shuffle, seed=1)
        for image, label in zip(images, labels, strict=True)
    ]
    assert len(got) == len(src) and set(got) == want
    assert 0 < len(calls) < len(src) // 2  # most records went the batch way


def _digest(image: np.ndarray) -> tuple:
    return image.shape, image.tobytes()


def test_without_pyspng_the_same(records, monkeypatch):
    src = TFRecordDataSource(records, channels=3)
    want = [src[i] for i in range(len(src))]
    monkeypatch.setattr(decode, "pyspng", None)
    _same(fetch.fetch(src, range(len(src))), want)


def test_locate_and_reader(records):
    src = TFRecordDataSource(records)
    indices = np.array([15, 0, 13, 14, 23])
    shards, within, offsets, sizes = src.locate(indices)
    assert shards.tolist() == [1, 0, 0, 1, 1] and within.tolist() == [1, 0, 13, 0, 9]
    for i, shard, offset, size in zip(indices, shards, offsets, sizes, strict=True):
        framed = src.reader(int(shard)).read(int(offset), int(size))
        assert framed[12:-4] == src.read_record(int(i))[0]
    first = src.reader(0)
    assert src.reader(0) is first
    src.close()
    assert src.reader(0) is not first


def _damaged(records: list[str], tmp_path: Path, at: int) -> tuple[list[str], int, int]:
    """A copy with record 5 of the first shard changed at byte ``at`` of its framing (or
    the shard cut inside it, ``at`` None): the files, record 5's offset."""
    files = []
    for file in records:
        copy = tmp_path / Path(file).name
        copy.write_bytes(Path(file).read_bytes())
        Path(f"{copy}.idx").write_bytes(Path(f"{file}.idx").read_bytes())
        files.append(str(copy))
    offset, size = map(int, Path(f"{files[0]}.idx").read_text().splitlines()[5].split())
    data = bytearray(Path(files[0]).read_bytes())
    data[offset + at % size] ^= 0x01  # negative: from the record's end (its footer)
    Path(files[0]).write_bytes(bytes(data))
    return files, 5, offset


@pytest.mark.parametrize(
    ("at", "kind"),
    [(0, "length CRC mismatch"), (9, "length CRC mismatch"), (30, "data CRC"), (-1, "data CRC")],
)
def test_damage_is_named_or_skipped_as_by_src_i(records, tmp_path, at, kind):
    files, record, offset = _damaged(records, tmp_path, at)
    src = TFRecordDataSource(files, channels=1)
    with pytest.raises(TFRecordToolsError, match=rf"part-0.tfrecord: record {record} at byte "
                       rf"{offset}: {kind}"):  # fmt: skip
        fetch.fetch(src, [2, 5, 7])
    lenient = TFRecordDataSource(files, channels=1, skip_corrupt=True)
    single = TFRecordDataSource(files, channels=1, skip_corrupt=True)
    _same(fetch.fetch(lenient, [2, 5, 7, 5]), [single[i] for i in [2, 5, 7, 5]])
    assert [(e.index, e.offset) for e in lenient.skipped] == [(record, offset)] * 2


def test_a_shard_cut_short(records, tmp_path):
    files, _, _ = _damaged(records, tmp_path, 0)
    Path(files[0]).write_bytes(Path(records[0]).read_bytes())  # undamaged, then cut
    src = TFRecordDataSource(files, channels=1)
    assert len(src) == 24  # the index, loaded before the cut
    lines = Path(f"{files[0]}.idx").read_text().splitlines()
    last = int(lines[-1].split()[0])
    Path(files[0]).write_bytes(Path(records[0]).read_bytes()[: last + 20])
    with pytest.raises(TFRecordToolsError, match=rf"record 13 at byte {last}: truncated"):
        fetch.fetch(src, [12, 13])
    images, _ = fetch.fetch(src, [12, 0])
    assert np.array_equal(images[0], src[12][0])


# -- the batch parser ----------------------------------------------------------------------


def _batch(examples: list[bytes]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lengths = np.array([len(e) for e in examples], np.int64)
    ends = np.cumsum(lengths)
    return np.frombuffer(b"".join(examples), np.uint8), ends - lengths, ends


def _fields_equal(got: parse.ImageFields, want: parse.ImageFields) -> bool:
    names = ("format", "height", "width", "channels", "label", "orientation")
    return bytes(got.encoded) == bytes(want.encoded) and all(
        getattr(got, n) == getattr(want, n) for n in names
    )


def test_batch_parse_equals_one_record_parses():
    """Lengths at every varint width, labels of every width, a rotated layout, no format."""
    rng = np.random.default_rng(1)
    for size in (0, 127, 128, 16383, 16384):
        for labels in ([0, 7, 127], [128, 300], [-1, -(2**63)], [2**40, 2**63 - 1]):
            for fmt, orientation in (("png", 1), ("jpeg", 6), ("", 1)):
                examples = [
                    _example(0, rng.bytes(size), fmt, label=y, orientation=orientation)
                    for y in labels
                ]
                buf, starts, ends = _batch(examples)
                got = parse_image_batch(buf, starts, ends)
                assert got.ok.all(), (size, labels, fmt)
                for k, example in enumerate(examples):
                    assert _fields_equal(got.fields(buf, k), parse_image_example(example))


def test_how_many_layouts_are_tried():
    """Up to LAYOUTS_PER_BATCH layouts, but not after three that fit one record."""
    rng = np.random.default_rng(2)
    alone = [_example(0, rng.bytes(10), text="t" * i) for i in range(5)]
    assert parse_image_batch(*_batch(alone)).ok.tolist() == [True, True, True, False, False]
    layouts = parse.LAYOUTS_PER_BATCH + 2
    pairs = [_example(0, rng.bytes(10), text="t" * (i // 2)) for i in range(2 * layouts)]
    got = parse_image_batch(*_batch(pairs)).ok.tolist()
    assert got == [True] * (len(pairs) - 4) + [False] * 4


def _varint(n: int) -> bytes:
    out = b""
    while n > 0x7F:
        out += bytes([n & 0x7F | 0x80])
        n >>= 7
    return out + bytes([n])


def _field(tag: int, body: bytes) -> bytes:
    return bytes([tag]) + _varint(len(body)) + body


def _message(*entries: tuple[bytes, bytes]) -> bytes:
    """An Example of (key, Feature bytes) entries, in this order."""
    return _field(
        0x0A, b"".join(_field(0x0A, _field(0x0A, k) + _field(0x12, f)) for k, f in entries)
    )


def test_other_layouts_are_left_to_the_one_record_parser():
    """Well-formed Examples, but not our writer's layout: each is parsed one by one."""
    image = (b"image/encoded", _field(0x0A, _field(0x0A, b"abc")))
    label = (b"image/class/label", _field(0x1A, _field(0x0A, b"\x03")))
    good = _message(label, image)
    odd = [
        _message((b"image/class/label", _field(0x1A, b"\x08\x03")), image),  # not packed
        _message((b"score", _field(0x12, _field(0x0A, bytes(4)))), image),  # a float list
        _message(label, label, image),  # a key twice
        _message(image, label),  # no bytes last
        _message(label, (b"image/encoded", _field(0x0A, _field(0x0A, b"abc") * 2))),  # 2 values
        _message((b"image/class/label", _field(0x1A, _field(0x0A, b"\x03\x04"))), image),
        good + _field(0x12, b"x"),  # an unknown field after the features
    ]
    # the bytes of a two-byte label, but two one-byte ints in them: the first one counts
    wide = (b"image/class/label", _field(0x1A, _field(0x0A, _varint(300))))
    pairs = [(good, example) for example in odd]
    pairs.append((_message(wide, image), _message(wide, image).replace(b"\xac\x02", b"\x2c\x02")))
    for usual, example in pairs:
        parse_image_example(example)  # well formed
        for batch, want in (([example, usual], [False, True]), ([usual, example], [True, False])):
            got = parse_image_batch(*_batch(batch))
            assert got.ok.tolist() == want
    assert parse_image_example(pairs[-1][1]).label == 44
    assert _fields_equal(parse_image_batch(*_batch([good])).fields(_batch([good])[0], 0),
                         parse_image_example(good))  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    labels=st.lists(st.sampled_from(LABELS), min_size=1, max_size=4),
    size=st.sampled_from([0, 1, 126, 127, 128, 300]),
    damage=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=3),
)
def test_a_record_the_batch_parser_takes_is_parsed_the_same(labels, size, damage):
    """Changed bytes anywhere: a record parsed here equals its one-record parse (which
    must succeed); one that fails there is never taken here."""
    image = bytes(range(256))[:size] * 2
    examples = [_example(0, image, label=y, text="") for y in labels for _ in range(2)]
    hurt = bytearray(examples[-1])
    for at, value in damage:
        hurt[at % len(hurt)] = value
    examples.append(bytes(hurt))
    buf, starts, ends = _batch(examples)
    got = parse_image_batch(buf, starts, ends)
    assert got.ok[:-1].all()
    for k, example in enumerate(examples):
        try:
            want = parse_image_example(example)
        except ExampleParseError:
            assert not got.ok[k]
            continue
        if got.ok[k]:
            assert _fields_equal(got.fields(buf, k), want)


# -- PNGs decoded together -------------------------------------------------------------------


def test_simple_pngs_decode_as_one_at_a_time(monkeypatch):
    rng = np.random.default_rng(3)
    images = [
        _png(rng, (4, 3), "L"),
        _png(rng, (4, 3, 3), "RGB"),
        _png(rng, (4, 3, 4), "RGBA"),
        _png(rng, (5, 3), "L"),  # another size
        b"\x89PNG\r\n\x1a\n" + bytes(40),  # no IHDR
    ]
    cut = images[0][:48]  # the image data cut short: pyspng refuses it
    for pyspng in (decode.pyspng, None):
        monkeypatch.setattr(decode, "pyspng", pyspng)
        for channels in (1, 3, 4):
            for size in (None, (4, 3), (2, 5)):  # sizes of some, of none
                got = decode.decode_simple_pngs([*images, cut], channels=channels, image_size=size)
                taken = [i for i, image in enumerate(got) if image is not None]
                assert taken == ([0, 3] if channels == 1 else [0, 1, 2, 3]), (channels, size)
                for i in taken:
                    fields = parse.ImageFields(images[i], "png", 0, 0, 0, 0)
                    want = decode.decode_fields(fields, channels=channels, image_size=size)
                    assert np.array_equal(got[i], want) and got[i].flags.c_contiguous
