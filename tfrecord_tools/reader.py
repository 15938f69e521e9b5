"""tf.data input pipelines: TFRecord shards (or, for comparison, the raw image files) ->
``(image, label)`` ready for Keras ``fit``.

Data flow: file list -> per-host sharding -> file shuffle -> records (interleave) ->
record shuffle -> repeat -> **batch first** -> parse -> decode (``decode.py``, one
``tf.case`` per record) -> prefetch. Batching before parsing matters for small images,
where tf.data's per-element cost dominates the decode: ``parse_example`` on a batch and one
decode loop per batch instead of one map call per record.
"""

from __future__ import annotations

import glob as globlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import decode, schema
from .errors import TFRecordToolsError
from .framing import HEADER_SIZE, masked_crc32c, normalize_compression, tf_compression_type
from .manifest import MANIFEST, read_manifest

AUTOTUNE = -1


@dataclass(frozen=True)
class ReadOptions:
    """Everything a pipeline can be told; validated on creation."""

    batch_size: int | None = None
    image_size: tuple[int, int] | None = None
    channels: int = 3
    shuffle: bool = False
    shuffle_buffer: int = 10_000
    seed: int | None = None
    repeat: bool | int = False
    drop_remainder: bool = False
    num_parallel_calls: int | None = AUTOTUNE
    cycle_length: int = 1
    threads: int | None = None
    deterministic: bool | None = None
    num_workers: int = 1
    worker_index: int = 0
    prefetch: int | None = AUTOTUNE

    def __post_init__(self) -> None:
        object.__setattr__(self, "image_size", decode.normalise_size(self.image_size))
        if self.channels not in decode.CHANNEL_CHOICES:
            raise TFRecordToolsError(f"channels must be 1, 3 or 4, got {self.channels}")
        if self.batch_size is not None and self.batch_size < 1:
            raise TFRecordToolsError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.num_workers < 1 or not 0 <= self.worker_index < self.num_workers:
            raise TFRecordToolsError(
                f"worker_index {self.worker_index} is not in 0..{self.num_workers - 1}"
            )
        if self.cycle_length < 1:
            raise TFRecordToolsError(f"cycle_length must be at least 1, got {self.cycle_length}")
        if self.shuffle_buffer < 1:
            raise TFRecordToolsError("shuffle_buffer must be at least 1")


def _options_from(kwargs: dict[str, Any]) -> ReadOptions:
    context = kwargs.pop("input_context", None)
    if context is not None:  # a tf.distribute.InputContext
        kwargs["num_workers"] = context.num_input_pipelines
        kwargs["worker_index"] = context.input_pipeline_id
    return ReadOptions(**kwargs)


# --- finding the shards ------------------------------------------------------------------


@dataclass(frozen=True)
class ShardList:
    files: list[str]
    counts: list[int] | None  # per file, when a manifest says
    compression: str
    image_shape: tuple[int, int, int] | None = None  # when the manifest says all agree


def resolve_shards(
    path: str | os.PathLike | Sequence[str], split: str = "train", compression: str | None = None
) -> ShardList:
    """Shard files of ``split`` from a dataset folder (its manifest), or files matching a
    glob / list of paths (third-party TFRecords without a manifest)."""
    if isinstance(path, (str, os.PathLike)) and (Path(path) / MANIFEST).is_file():
        manifest = read_manifest(path)
        splits = manifest["splits"]
        if split not in splits:
            raise TFRecordToolsError(
                f"{path}: no split {split!r}; it has {', '.join(splits) or 'none'}"
            )
        shards = splits[split]["shards"]
        files = [str(Path(path) / s["file"]) for s in shards]
        found = normalize_compression(manifest.get("compression"))
        if compression is not None and normalize_compression(compression) != found:
            raise TFRecordToolsError(
                f"{path}: compression {compression!r} given, but the manifest says {found!r}"
            )
        shape = manifest.get("image_shape")
        return ShardList(
            files, [int(s["num_examples"]) for s in shards], found, tuple(shape) if shape else None
        )
    patterns = [str(path)] if isinstance(path, (str, os.PathLike)) else [str(p) for p in path]
    files: list[str] = []
    for pattern in patterns:
        if Path(pattern).is_dir():
            pattern = os.path.join(pattern, "*.tfrecord*")
        matches = sorted(
            m for m in globlib.glob(pattern) if not m.endswith(".idx") and os.path.isfile(m)
        )
        if not matches:
            raise TFRecordToolsError(f"{pattern}: no TFRecord files match")
        files.extend(matches)
    found = (
        normalize_compression(compression)
        if compression is not None
        else detect_compression(files[0])
    )
    return ShardList(files, None, found)


def detect_compression(path: str) -> str:
    """``none``, ``gzip`` or ``zlib`` from a shard's first bytes."""
    with open(path, "rb") as f:
        head = f.read(HEADER_SIZE)
    if len(head) == HEADER_SIZE and masked_crc32c(head[:8]) == int.from_bytes(head[8:], "little"):
        return "none"
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if len(head) >= 2 and head[0] & 0x0F == 8 and (head[0] << 8 | head[1]) % 31 == 0:
        return "zlib"
    return "none"  # empty file, or damaged: the reader will say so


def _my_files(files: list[str], counts: list[int] | None, opts: ReadOptions):
    """Per-host sharding by file, before any shuffle."""
    if opts.num_workers == 1:
        return files, counts
    if len(files) < opts.num_workers:
        raise TFRecordToolsError(
            f"{len(files)} shard files cannot be shared by {opts.num_workers} workers: "
            "convert with more shards (--shards) or use fewer workers"
        )
    picked = range(opts.worker_index, len(files), opts.num_workers)
    return [files[i] for i in picked], (None if counts is None else [counts[i] for i in picked])


# --- the pipelines -----------------------------------------------------------------------


def make_dataset(
    path: str | os.PathLike | Sequence[str],
    *,
    split: str = "train",
    compression: str | None = None,
    **options: Any,
):
    """A ``tf.data.Dataset`` of ``(image, label)`` from converted shards.

    ``path``: a dataset folder (the manifest gives files, counts and compression, so the
    dataset knows its cardinality) or a glob / list of TFRecord files with the same feature
    keys. Options (see :class:`ReadOptions`): ``batch_size``, ``image_size`` (int or
    (height, width)), ``channels`` (1, 3, 4), ``shuffle``, ``shuffle_buffer``, ``seed``,
    ``repeat`` (False: one pass, True: forever, N: N passes), ``num_parallel_calls``,
    ``cycle_length`` (files read at once), ``threads`` (private thread pool size),
    ``deterministic``, ``num_workers``/``worker_index`` or ``input_context`` (per-host
    sharding by file). Images are uint8 ``[H, W, channels]``; labels int64. Batched output
    needs ``image_size`` unless every image has the same size.
    """
    import tensorflow as tf

    opts = _options_from(options)
    shards = resolve_shards(path, split, compression)
    files, counts = _my_files(shards.files, shards.counts, opts)
    ds = tf.data.Dataset.from_tensor_slices(files)
    if opts.shuffle:
        ds = ds.shuffle(len(files), seed=opts.seed, reshuffle_each_iteration=True)
    kind = tf_compression_type(shards.compression)
    if opts.cycle_length == 1 or len(files) == 1:
        ds = ds.flat_map(lambda f: tf.data.TFRecordDataset(f, compression_type=kind))
    else:
        ds = ds.interleave(
            lambda f: tf.data.TFRecordDataset(f, compression_type=kind),
            cycle_length=opts.cycle_length,
            num_parallel_calls=opts.cycle_length,
            deterministic=opts.deterministic,
        )
    if counts is not None:
        ds = ds.apply(tf.data.experimental.assert_cardinality(sum(counts)))
    spec = schema.parse_spec()

    def parse(records):
        parse_fn = tf.io.parse_example if opts.batch_size else tf.io.parse_single_example
        f = parse_fn(records, spec)
        return (
            f[schema.ENCODED],
            f[schema.FORMAT],
            f[schema.HEIGHT],
            f[schema.WIDTH],
            f[schema.CHANNELS],
        ), f[schema.LABEL]

    if opts.image_size is None and shards.image_shape is not None:
        height, width, _ = shards.image_shape
        return _finish(ds, parse, opts, static_size=(height, width))
    return _finish(ds, parse, opts)


def make_raw_dataset(image_dir: str | os.PathLike, **options: Any):
    """The twin of :func:`make_dataset` over the raw image folder (one subfolder per
    class): the same decoding, the same output, for a fair comparison. Labels follow the
    sorted class folders, as in the converter."""
    import tensorflow as tf

    from .image_folder import scan_image_folder

    opts = _options_from(options)
    listing = scan_image_folder(image_dir)
    paths = [str(listing.root / p) for p in listing.paths]
    paths, _ = _my_files(paths, None, opts)
    labels = listing.labels[opts.worker_index :: opts.num_workers]
    ds = tf.data.Dataset.from_tensor_slices((paths, tf.constant(labels, tf.int64)))
    if opts.shuffle:
        ds = ds.shuffle(
            min(len(paths), opts.shuffle_buffer), seed=opts.seed, reshuffle_each_iteration=True
        )
    ds = ds.map(
        lambda p, y: (tf.io.read_file(p), y),
        num_parallel_calls=opts.num_parallel_calls,
        deterministic=opts.deterministic,
    )
    zero = tf.constant(0, tf.int64)

    def as_features(data, labels):
        shape = tf.shape(data, out_type=tf.int64)
        zeros = tf.zeros(shape, tf.int64) if opts.batch_size else zero
        return (data, tf.fill(tf.shape(data), ""), zeros, zeros, zeros), labels

    return _finish(ds, as_features, opts, shuffle_records=False)


def _finish(
    ds,
    to_features,
    opts: ReadOptions,
    *,
    shuffle_records: bool = True,
    static_size: tuple[int, int] | None = None,
):
    """Shared tail: shuffle, repeat, batch first, parse + decode in one map, prefetch.
    ``static_size``: every image is known to have this size (the manifest says so)."""
    import tensorflow as tf

    if opts.shuffle and shuffle_records:
        ds = ds.shuffle(opts.shuffle_buffer, seed=opts.seed, reshuffle_each_iteration=True)
    if opts.repeat is True:
        ds = ds.repeat()
    elif opts.repeat:
        ds = ds.repeat(int(opts.repeat))
    decode_fn = _decode_batch if opts.batch_size else _decode_one
    if opts.batch_size:
        ds = ds.batch(opts.batch_size, drop_remainder=opts.drop_remainder)

    def parse_and_decode(*x):
        features, label = to_features(*x)
        images = decode_fn(features, opts)
        if static_size is not None:
            images.set_shape([*images.shape[:-3], *static_size, opts.channels])
        return images, label

    ds = ds.map(
        parse_and_decode,
        num_parallel_calls=opts.num_parallel_calls,
        deterministic=opts.deterministic,
    )
    if opts.prefetch is not None and opts.prefetch != 0:
        ds = ds.prefetch(opts.prefetch)
    options = tf.data.Options()
    if opts.threads is not None:
        options.threading.private_threadpool_size = opts.threads
    if opts.deterministic is not None:
        options.deterministic = opts.deterministic
    return ds.with_options(options)


def _decode_one(features, opts: ReadOptions):
    encoded, fmt, height, width, channels = features
    code = decode.format_code(encoded, fmt, height, width, channels)
    image = decode.decode_image(encoded, code, height, width, channels, channels=opts.channels)
    return decode.resize(image, opts.image_size)


def _decode_batch(features, opts: ReadOptions):
    """Decode a batch in one map call: raw batches of one size in a single vectorised op,
    anything else through one loop over the batch."""
    import tensorflow as tf

    encoded, fmt, height, width, channels = features
    codes = decode.format_code(encoded, fmt, height, width, channels)
    size = (None, None) if opts.image_size is None else opts.image_size
    out_spec = tf.TensorSpec([*size, opts.channels], tf.uint8)

    def one_by_one():
        return tf.map_fn(
            lambda x: _decode_one(x, opts),
            (encoded, fmt, height, width, channels),
            fn_output_signature=out_spec,
            parallel_iterations=1,
        )

    def all_raw():
        shape = tf.cast(tf.stack([-1, height[0], width[0], channels[0]]), tf.int32)
        pixels = tf.reshape(tf.io.decode_raw(encoded, tf.uint8), shape)
        return decode.resize(decode.to_channels(pixels, opts.channels), opts.image_size)

    uniform_raw = tf.logical_and(
        tf.reduce_all(tf.equal(codes, decode.RAW)),
        tf.reduce_all([tf.reduce_all(tf.equal(t, t[0])) for t in (height, width, channels)]),
    )
    images = tf.cond(uniform_raw, all_raw, one_by_one)
    images.set_shape([opts.batch_size if opts.drop_remainder else None, *size, opts.channels])
    return images
