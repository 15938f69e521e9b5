"""Building blocks of writing and reading records, timed with pytest-benchmark: Example
serialisation (ours vs TensorFlow's), parsing per record vs per batch, the ``tf.case``
decode vs ``tf.io.decode_image``, and the shard writer.

    .venv/bin/python -m pytest benchmarks/test_bench_blocks.py --benchmark-only -p no:cacheprovider

(pyproject's ``--benchmark-skip`` keeps these out of normal runs; ``--benchmark-only``
overrides it.) Framing, CRC and verify blocks are in ``test_bench_framing.py``. Rates are
shown as ``extra_info`` (records/s, images/s, MB/s); nothing is asserted about speed, only
that each block did its work. Sizes follow the two sample sets: a ~300 B digit PNG and a
~100 KB photo JPEG.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from tfrecord_tools.format import example as schema
from tfrecord_tools.format.writer import ShardWriter

tf = pytest.importorskip("tensorflow")
from tfrecord_tools.read import decode  # noqa: E402  (imports TensorFlow)

PARSE_RECORDS = 2048
PARSE_BATCH = 256


def _digit_png() -> bytes:
    rng = np.random.default_rng(0)
    pixels = np.zeros((28, 28), np.uint8)
    pixels[6:22, 10:18] = rng.integers(128, 256, (16, 8), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG")
    return buf.getvalue()


def _photo_jpeg() -> bytes:
    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:375, 0:500]
    base = np.stack([(x * 0.7 + y * 0.3) % 256, (x * 0.2 + y) % 256, (x + y) % 256], -1)
    pixels = np.clip(base + rng.normal(0, 18, base.shape), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "JPEG", quality=90)
    return buf.getvalue()


IMAGES = {"digit-png": (_digit_png(), 28, 28, 1), "photo-jpeg": (_photo_jpeg(), 375, 500, 3)}


def _fields(kind: str) -> dict:
    data, height, width, channels = IMAGES[kind]
    fmt = "png" if kind.endswith("png") else "jpeg"
    return {
        "encoded": data,
        "image_format": fmt,
        "height": height,
        "width": width,
        "channels": channels,
        "label": 7,
        "text": "class_7",
        "filename": f"class_7/00042.{fmt}",
    }


def _tf_example(f: dict) -> bytes:
    def b(v: bytes) -> tf.train.Feature:
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v]))

    def i(v: int) -> tf.train.Feature:
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[v]))

    features = {
        schema.ENCODED: b(f["encoded"]),
        schema.FORMAT: b(f["image_format"].encode()),
        schema.HEIGHT: i(f["height"]),
        schema.WIDTH: i(f["width"]),
        schema.CHANNELS: i(f["channels"]),
        schema.LABEL: i(f["label"]),
        schema.TEXT: b(f["text"].encode()),
        schema.FILENAME: b(f["filename"].encode()),
    }
    example = tf.train.Example(features=tf.train.Features(feature=features))
    return example.SerializeToString()


def _per_second(benchmark, count: int, unit: str, nbytes: int | None = None) -> None:
    median = benchmark.stats.stats.median
    benchmark.extra_info[f"{unit}/s"] = round(count / median)
    if nbytes is not None:
        benchmark.extra_info["MB/s"] = round(nbytes / median / 1e6, 1)


# --- Example serialisation -------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(IMAGES))
@pytest.mark.parametrize("how", ["ours", "tf.train.Example"])
def test_serialise_example(benchmark, kind, how):
    fields = _fields(kind)
    encode = (
        (lambda: schema.encode_example(**fields)) if how == "ours" else lambda: _tf_example(fields)
    )
    data = benchmark(encode)
    parsed = tf.io.parse_single_example(data, decode.parse_spec())
    assert parsed[schema.ENCODED].numpy() == fields["encoded"]
    _per_second(benchmark, 1, "records")


# --- parsing: one record per map call vs a batch ---------------------------------------------


@pytest.fixture(scope="module")
def records() -> tf.Tensor:
    return tf.constant([schema.encode_example(**_fields("digit-png"))] * PARSE_RECORDS)


@pytest.mark.parametrize("how", ["per-record", "batched"])
def test_parse_examples(benchmark, records, how):
    spec = decode.parse_spec()
    ds = tf.data.Dataset.from_tensor_slices(records)
    if how == "per-record":
        ds = ds.map(lambda r: tf.io.parse_single_example(r, spec)[schema.LABEL]).batch(PARSE_BATCH)
    else:
        ds = ds.batch(PARSE_BATCH).map(lambda r: tf.io.parse_example(r, spec)[schema.LABEL])

    def run() -> int:
        return sum(int(labels.shape[0]) for labels in ds)

    assert benchmark(run) == PARSE_RECORDS
    _per_second(benchmark, PARSE_RECORDS, "records")


# --- decoding: tf.case on the magic bytes vs decode_image ------------------------------------


@pytest.mark.parametrize("kind", sorted(IMAGES))
@pytest.mark.parametrize("how", ["tf.case", "decode_image"])
def test_decode(benchmark, kind, how):
    """One tf.function looping over N copies of the bytes, so per-call overhead is shared.
    Height, width and channels come in as arguments, as parsed features do in the reader
    (constants would let TensorFlow fold the raw-pixel branch into a fixed shape)."""
    data, height, width, channels = IMAGES[kind]
    count = 256 if kind == "digit-png" else 16
    batch = tf.constant([data] * count)
    dims = tf.constant([height, width, channels], tf.int64)

    def one(encoded, dims):
        if how == "decode_image":
            return tf.io.decode_image(encoded, channels=channels, expand_animations=False)
        h, w, c = dims[0], dims[1], dims[2]
        code = decode.format_code(encoded, tf.constant(""), h, w, c)
        return decode.decode_image(encoded, code, h, w, c, channels=channels)

    @tf.function
    def run(batch, dims):
        total = tf.constant(0, tf.int64)
        for i in tf.range(tf.shape(batch)[0]):
            total += tf.cast(tf.shape(one(batch[i], dims))[0], tf.int64)
        return total

    run(batch[:2], dims)  # trace outside the timing
    assert int(benchmark(lambda: run(batch, dims))) == count * height
    _per_second(benchmark, count, "images", count * len(data))


# --- the shard writer --------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "count"), [("digit-png", 5000), ("photo-jpeg", 200)])
def test_shard_writer(benchmark, tmp_path, kind, count):
    record = schema.encode_example(**_fields(kind))
    path = tmp_path / f"{kind}.tfrecord-00000-of-00001"

    def write() -> int:
        with ShardWriter(path) as writer:
            for _ in range(count):
                writer.write(record)
            return writer.commit().num_examples

    assert benchmark(write) == count
    _per_second(benchmark, count, "records", count * len(record))
