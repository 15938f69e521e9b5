"""tf.data input pipelines: TFRecord shards (or, for comparison, the raw image files) ->
``(image, label)`` ready for Keras ``fit``.

Data flow: file list -> per-host sharding -> file shuffle -> records (interleave) ->
record shuffle -> repeat -> **batch -> parse_example** -> unbatch -> decode per record
(``decode.py``) -> batch -> [tf.data service: everything so far runs on its workers] ->
prefetch.

What we measured on 2 cores (TF 2.21) shaped it. Parsing is done on batches
(``parse_example`` on 256 records costs a fraction of 256 ``parse_single_example`` calls).
When the output is batched and of one image size (``image_size``, or the manifest's shape),
each batch is parsed and decoded in one map: a graph loop decodes its records one by one
(``decode.decode_batch``) and the map runs batches in parallel. Small images go through
that map 1,024 or more at a time and ``rebatch`` cuts them back to ``batch_size``.
One tf.data element per image costs more than decoding a 28x28 PNG; per batch, 20,000
digits read at 27,000/s on one core and 42,000/s on two, against 24,000/s and 27,000/s per
element. Otherwise
(unbatched, or images of different sizes) records are decoded one per element. The per-record
``tf.case`` over JPEG / PNG / raw / other is the general path, for datasets of mixed or
unknown formats; when the formats are known to be one (the manifest's counts, which the
converter takes from the bytes, or ``image_format=``), that format's decoder runs directly
(a ``tf.case`` more than doubles the cost of a 28x28 PNG), and raw pixels of one shape are
decoded for a whole batch in one op.

tf.data's autotuning is off by default (``autotune=True`` turns it on): its background
optimiser took ~10 % of a core from small-image pipelines here, and ``AUTOTUNE`` parallelism
then means one call per usable core.
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
    image_format: str | None = None  # "png", "jpeg", "raw": skip the per-record tf.case
    autotune: bool = False  # tf.data's autotuning (see the module docstring)
    service: str | None = None  # tf.data service dispatcher, grpc://host:port
    processing_mode: str = "distributed_epoch"
    job_name: str | None = None

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
        if self.image_format is not None:
            fmt = decode.normalise_format(self.image_format)
            if fmt is None:
                raise TFRecordToolsError(
                    f"image_format must be png, jpeg or raw, got {self.image_format!r}"
                )
            object.__setattr__(self, "image_format", fmt)
        if self.service is not None:
            from .service import normalise_processing_mode, service_address

            object.__setattr__(self, "service", service_address(self.service))
            object.__setattr__(
                self, "processing_mode", normalise_processing_mode(self.processing_mode)
            )
            if self.num_workers > 1:
                raise TFRecordToolsError(
                    "service and num_workers/input_context do not mix: the tf.data service "
                    "already spreads the files over its workers"
                )
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
    image_format: str | None = None  # when the manifest says all records have one format


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
        formats = list(manifest.get("statistics", {}).get("image_formats", {}))
        return ShardList(
            files,
            [int(s["num_examples"]) for s in shards],
            found,
            tuple(shape) if shape else None,
            formats[0] if len(formats) == 1 else None,
        )
    patterns = [str(path)] if isinstance(path, (str, os.PathLike)) else [str(p) for p in path]
    if not patterns:
        raise TFRecordToolsError("no TFRecord files given")
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
    ``deterministic``, ``autotune`` (tf.data's autotuning, off by default),
    ``num_workers``/``worker_index`` or ``input_context`` (per-host sharding by file),
    ``image_format`` (all records are ``png``/``jpeg``/``raw``), ``service``
    (``grpc://host:port`` of a tf.data service dispatcher: its workers run the pipeline up to
    the batches, which travel to this process), ``processing_mode`` (``distributed_epoch``,
    the default: every record once across the workers; ``parallel_epochs``: every worker
    reads everything) and ``job_name`` (trainers naming the same job share it). Images are uint8
    ``[H, W, channels]``; labels int64. Batched output needs ``image_size`` unless every
    image has the same size (the manifest's ``image_shape`` says so).
    """
    import tensorflow as tf

    opts = _options_from(options)
    shards = resolve_shards(path, split, compression)
    files, counts = _my_files(shards.files, shards.counts, opts)
    if opts.service is not None:
        counts = None  # each service worker reads a part: no cardinality to assert
    kind = tf_compression_type(shards.compression)
    if not opts.shuffle and opts.cycle_length == 1:
        ds = tf.data.TFRecordDataset(files, compression_type=kind)  # no per-file flat_map
    else:
        ds = tf.data.Dataset.from_tensor_slices(files)
        if opts.shuffle:
            ds = ds.shuffle(len(files), seed=opts.seed, reshuffle_each_iteration=True)
        read = lambda f: tf.data.TFRecordDataset(f, compression_type=kind)  # noqa: E731
        if opts.cycle_length == 1:
            ds = ds.flat_map(read)
        else:  # parallel: in tf.data service's distributed_epoch mode a sequential
            # interleave after a shuffle delivers every record once per worker (TF 2.21)
            ds = ds.interleave(
                read,
                cycle_length=min(opts.cycle_length, len(files)),
                num_parallel_calls=opts.cycle_length,
                deterministic=opts.deterministic,
            )
    if counts is not None:
        ds = ds.apply(tf.data.experimental.assert_cardinality(sum(counts)))
    if opts.shuffle:
        ds = ds.shuffle(opts.shuffle_buffer, seed=opts.seed, reshuffle_each_iteration=True)
    ds = _repeat(ds, opts)
    image_format = opts.image_format or shards.image_format
    shape = shards.image_shape if opts.image_size is None else None
    spec = schema.parse_spec()
    raw = image_format == "raw" and shards.image_shape is not None
    if image_format in ("png", "jpeg") or raw:
        # the format and shape are known: the bytes and the label are all a record must give
        # (parse_example's cost grows with the keys: 2 instead of 6 is ~1.6x faster)
        spec = {k: spec[k] for k in (schema.ENCODED, schema.LABEL)}

    def parse(records):
        f = tf.io.parse_example(records, spec)
        labels = f[schema.LABEL]
        if schema.FORMAT not in f:  # not needed by the decoders of a known format
            zeros = tf.zeros_like(labels)
            f = {**f, schema.FORMAT: tf.fill(tf.shape(labels), ""), schema.HEIGHT: zeros}
            f[schema.WIDTH] = f[schema.CHANNELS] = zeros
        keys = (schema.ENCODED, schema.FORMAT, schema.HEIGHT, schema.WIDTH, schema.CHANNELS)
        return tuple(f[k] for k in keys), labels

    if opts.batch_size and not raw and (opts.image_size or shape):
        # batched output of one image size: parse and decode a whole batch in one map
        out_shape = opts.image_size or shape[:2]  # type: ignore[index]

        def parse_and_decode(records):
            features, labels = parse(records)
            images = decode.decode_batch(
                *features,
                channels=opts.channels,
                shape=out_shape,
                image_size=opts.image_size,
                image_format=image_format,
            )
            return images, labels

        ds = _map_batches(ds, parse_and_decode, opts, out_shape)
        return _finish(ds, opts, batched=True)
    if raw:  # parse and decode a whole batch in one map, one vectorised decode_raw
        pixel_shape = shards.image_shape

        def parse_raw(records):
            f = tf.io.parse_example(records, spec)
            return _decode_raw_batch(f[schema.ENCODED], opts, pixel_shape), f[schema.LABEL]

        if opts.batch_size:
            ds = _map_batches(ds, parse_raw, opts, opts.image_size or pixel_shape[:2])
        else:
            ds = ds.batch(_PARSE_BATCH).map(
                parse_raw,
                num_parallel_calls=opts.num_parallel_calls,
                deterministic=opts.deterministic,
            )
            ds = _unbatch(ds, counts, opts)
        return _finish(ds, opts, batched=True)
    ds = ds.batch(_PARSE_BATCH)
    ds = ds.map(parse, num_parallel_calls=opts.num_parallel_calls, deterministic=opts.deterministic)
    ds = _unbatch(ds, counts, opts)
    return _finish(_decode_each(ds, opts, image_format, shape), opts)


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
    labels = list(listing.labels[opts.worker_index :: opts.num_workers])
    ds = tf.data.Dataset.from_tensor_slices((paths, tf.constant(labels, tf.int64)))
    if opts.shuffle:
        ds = ds.shuffle(
            min(len(paths), opts.shuffle_buffer), seed=opts.seed, reshuffle_each_iteration=True
        )
    ds = _repeat(ds, opts)
    empty = tf.constant("")
    if opts.batch_size and opts.image_size:  # as make_dataset: one map per batch

        def read_and_decode(batch_paths, labels):
            encoded = tf.map_fn(tf.io.read_file, batch_paths)
            zeros = tf.zeros_like(labels)
            images = decode.decode_batch(
                encoded,
                tf.fill(tf.shape(batch_paths), empty),
                zeros,
                zeros,
                zeros,
                channels=opts.channels,
                shape=opts.image_size,
                image_size=opts.image_size,
                image_format=opts.image_format,
            )
            return images, labels

        ds = ds.batch(opts.batch_size, drop_remainder=opts.drop_remainder)
        ds = ds.map(
            read_and_decode,
            num_parallel_calls=opts.num_parallel_calls,
            deterministic=opts.deterministic,
        )
        return _finish(ds, opts, batched=True)

    def read(path, label):
        zero = tf.zeros_like(label)  # not a constant: no branch is specialised for 0x0x0
        return (tf.io.read_file(path), empty, zero, zero, zero), label

    ds = ds.map(read, num_parallel_calls=opts.num_parallel_calls, deterministic=opts.deterministic)
    return _finish(_decode_each(ds, opts, opts.image_format, None), opts)


_PARSE_BATCH = 256  # records parsed per parse_example call when the output is unbatched
# parse_example's cost per record falls with the records per call (28x28 PNG records, one
# core: 3.1 us at 256, 1.8 at 1024, 1.2 at 20,000), so small images are parsed and decoded
# in groups of at least this many records, as long as one group's images stay small
_SMALL_IMAGES_GROUP = 1024
_GROUP_OUTPUT_BYTES = 8 << 20


def _map_batches(ds, fn, opts: ReadOptions, image_hw: tuple[int, int]):
    """``batch`` + ``map(fn)`` for batched output of one image size. For small images
    several batches go through one ``fn`` call (``rebatch`` cuts them back to
    ``batch_size``): 20,000 digits at batch 256 read ~5 % faster on one core, ~7 % on two."""
    size = opts.batch_size
    image_bytes = image_hw[0] * image_hw[1] * opts.channels
    groups = min(-(-_SMALL_IMAGES_GROUP // size), _GROUP_OUTPUT_BYTES // (image_bytes * size))
    par = {"num_parallel_calls": opts.num_parallel_calls, "deterministic": opts.deterministic}
    if groups <= 1:
        return ds.batch(size, drop_remainder=opts.drop_remainder).map(fn, **par)
    import tensorflow as tf

    records = tf.get_static_value(ds.cardinality())
    ds = ds.batch(size * groups).map(fn, **par).rebatch(size, drop_remainder=opts.drop_remainder)
    if records is None or records == tf.data.UNKNOWN_CARDINALITY:
        return ds
    if records != tf.data.INFINITE_CARDINALITY:  # rebatch forgets what batch would know
        records = records // size if opts.drop_remainder else -(-records // size)
    return ds.apply(tf.data.experimental.assert_cardinality(records))


def _unbatch(ds, counts: list[int] | None, opts: ReadOptions):
    """``unbatch`` forgets the cardinality; restore it when the manifest gave the counts."""
    import tensorflow as tf

    ds = ds.unbatch()
    if counts is None or opts.repeat is True:
        return ds
    passes = int(opts.repeat) if opts.repeat else 1
    return ds.apply(tf.data.experimental.assert_cardinality(sum(counts) * passes))


def _repeat(ds, opts: ReadOptions):
    if opts.repeat is True:
        return ds.repeat()
    return ds.repeat(int(opts.repeat)) if opts.repeat else ds


def _decode_each(ds, opts: ReadOptions, image_format: str | None, shape):
    """Per-record decode (+ resize): one format's decoder when known, else ``tf.case``."""

    def decode_one(features, label):
        encoded, fmt, height, width, channels = features
        if image_format in ("png", "jpeg"):
            code = decode.JPEG if image_format == "jpeg" else decode.PNG
            image = decode.decoders(encoded, height, width, channels, opts.channels)[code]()
        else:
            code = decode.format_code(encoded, fmt, height, width, channels)
            image = decode.decode_image(
                encoded, code, height, width, channels, channels=opts.channels
            )
        if shape is not None:
            image.set_shape([shape[0], shape[1], opts.channels])
        return decode.resize(image, opts.image_size), label

    return ds.map(
        decode_one, num_parallel_calls=opts.num_parallel_calls, deterministic=opts.deterministic
    )


def _decode_raw_batch(encoded, opts: ReadOptions, shape):
    """Raw uint8 pixels of one known shape: the whole batch in one ``decode_raw``."""
    import tensorflow as tf

    pixels = tf.reshape(tf.io.decode_raw(encoded, tf.uint8), [-1, *shape])
    pixels.set_shape([encoded.shape[0], *shape])  # a static batch size stays known
    return decode.resize(decode.to_channels(pixels, opts.channels), opts.image_size)


def _finish(ds, opts: ReadOptions, *, batched: bool = False):
    """Shared tail: batch, prefetch, thread options."""
    import tensorflow as tf

    if opts.batch_size and not batched:
        ds = ds.batch(opts.batch_size, drop_remainder=opts.drop_remainder)
    if opts.service is not None:  # the workers run everything above, batches travel
        ds = ds.with_options(_options(opts)).apply(
            tf.data.experimental.service.distribute(
                processing_mode=opts.processing_mode, service=opts.service, job_name=opts.job_name
            )
        )
    if opts.prefetch is not None and opts.prefetch != 0:
        # without autotuning an AUTOTUNE buffer would not grow: two elements keep the
        # consumer fed
        size = 2 if opts.prefetch == AUTOTUNE and not opts.autotune else opts.prefetch
        ds = ds.prefetch(size)
    return ds.with_options(_options(opts))


def _options(opts: ReadOptions):
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = opts.autotune
    if opts.threads is not None:
        options.threading.private_threadpool_size = opts.threads
    if opts.deterministic is not None:
        options.deterministic = opts.deterministic
    return options
