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
decoded for a whole batch in one op. Records that are all JPEG or PNG decode through one
``decode_image`` (it sniffs in its kernel), and one image shape for all fixes the JPEG DCT
scale (``_fixed_decoder``): each ``tf.case`` / ``tf.switch_case`` left in a record's graph
is a function call costing ~70 us of a 500x375 photo's ~1,500. Large output images
(``large_images``: 224x224 RGB) are parsed and decoded a record per element, then batched:
the batch loop's copies cost more than an element's overhead there. On one core the maps
run in the consumer's thread (``options_from``), not on a thread of their own.

tf.data's autotuning is off by default (``autotune=True`` turns it on): its background
optimiser took ~10 % of a core from small-image pipelines here, and ``AUTOTUNE`` parallelism
then means one call per usable core.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import Any

import tensorflow as tf

from ..dataset import AUTO, Dataset, check_task, keys_for
from ..dataset.images import scan_image_folder
from ..errors import TFRecordToolsError
from ..format.compression import tf_compression_type
from . import decode, records
from .options import AUTOTUNE, ReadOptions, options_from
from .orient import exif_orientation
from .shards import host_files, plan_runs, resolve_shards
from .stream import tf_opens


def make_dataset(
    path: str | os.PathLike | Sequence[str],
    *,
    split: str = "train",
    compression: str | None = None,
    batch_size: int | None = None,
    image_size: int | tuple[int, int] | None = None,
    channels: int = 3,
    shuffle: bool | str = False,
    shuffle_buffer: int = 10_000,
    seed: int | None = None,
    repeat: bool | int = False,
    drop_remainder: bool = False,
    num_parallel_calls: int | None = AUTOTUNE,
    cycle_length: int = 1,
    threads: int | None = None,
    deterministic: bool | None = None,
    num_workers: int = 1,
    worker_index: int = 0,
    input_context: Any = None,
    prefetch: int | None = AUTOTUNE,
    image_format: str | None = None,
    orientation: bool = True,
    autotune: bool = False,
    service: str | None = None,
    processing_mode: str = "distributed_epoch",
    job_name: str | None = None,
    decode_scaling: str = "auto",
    crop: str | None = None,
    central_fraction: float = 0.875,
    flip: bool = False,
    dtype: str = "uint8",
    image_key: str = "auto",
    label_key: str | None = "auto",
    task: str = "classification",
    masks: bool = False,
    keypoints: bool = False,
    ragged: bool = False,
    keep_aspect: bool = False,
    **unknown: Any,
) -> tf.data.Dataset:
    """A ``tf.data.Dataset`` of ``(image, label)`` from converted shards.

    ``path``: a dataset folder (the manifest gives files, counts and compression, so the
    dataset knows its cardinality), a folder TFDS prepared (``dataset_info.json``) or a
    glob / list of TFRecord files with the same feature keys; local or at a URL (``gs://``,
    ``s3://``, any fsspec URL: ``records.py`` says how each scheme is read). ``image_key`` /
    ``label_key`` name the image bytes and the int64 label; ``"auto"`` (the default) finds
    them: our keys for a dataset folder, a TFDS folder's Image and ClassLabel, else the
    first record's layout (ours / slim, TFDS's ``image``/``label``, the Keras tutorial's
    ``image_raw``/``label``; ``keys.py``). ``label_key=None``: no labels (all -1).
    Options (see :class:`ReadOptions`): ``batch_size``, ``image_size`` (int or
    (height, width)), ``channels`` (1, 3, 4), ``shuffle``, ``shuffle_buffer``, ``seed``,
    ``repeat`` (False: one pass, True: forever, N: N passes), ``num_parallel_calls``,
    ``cycle_length`` (files read at once), ``threads`` (private thread pool size),
    ``deterministic``, ``autotune`` (tf.data's autotuning, off by default),
    ``num_workers``/``worker_index`` or ``input_context`` (per-host sharding by file),
    ``image_format`` (all records are ``png``/``jpeg``/``raw``), ``orientation`` (apply
    the records' EXIF orientation, ``image/orientation``; on by default, and free when the
    manifest says no record has one), ``service``
    (``grpc://host:port`` of a tf.data service dispatcher: its workers run the pipeline up to
    the batches, which travel to this process), ``processing_mode`` (``distributed_epoch``,
    the default: every record once across the workers; ``parallel_epochs``: every worker
    reads everything) and ``job_name`` (trainers naming the same job share it).

    Fewer pixels decoded (with ``image_size``): ``decode_scaling`` (``"auto"``, the default:
    a JPEG is decoded at the smallest DCT scale, 1/8 to 1/1, that keeps both sides at or
    above ``image_size``, picked from the record's stored height and width; ``"off"``: full
    decode), ``crop`` (``"center"``: the central ``central_fraction``, 0.875, of each side;
    ``"random"``: a random-resized crop, area 8-100 %, aspect 3/4-4/3, seeded by ``seed``;
    JPEGs are decoded as crops), ``flip`` (random horizontal flip, seeded by ``seed``).
    Images are ``[H, W, channels]`` of ``dtype`` (``"uint8"``, or ``"float32"``: the resized
    values, not rounded); labels int64. Batched output needs ``image_size`` unless every
    image has the same size (the manifest's ``image_shape`` says so).

    ``task``: ``"classification"`` (the default: ``(image, label)``), ``"detection"`` (a
    dict per image: ``image``, ``boxes`` [N, 4], ``classes`` [N] ..., with ``masks``,
    ``keypoints``; batches padded, or ``ragged``; ``keep_aspect`` resizes without
    stretching; crops and flips move the boxes) or ``"segmentation"`` (``image`` and its
    class ``mask``): ``read/detection.py``, docs/reading-tf.md.

    ``shuffle``: False; True (the shard files in a new order every epoch, then a record
    buffer of ``shuffle_buffer``); ``"global"`` (runs of consecutive records, from the shards'
    index files, in a new order across all shards every epoch, each read from its byte
    offset, then the record buffer: class-sorted shards come out mixed; needs uncompressed
    shards with index files; a run holds ``shuffle_buffer // 16`` records, at most 4 MiB;
    with ``num_workers`` the hosts split the runs, not the files).
    """
    given = dict(locals())
    for name in ("path", "split", "compression", "unknown"):
        given.pop(name)
    opts = options_from({**given, **unknown}, also=("split", "compression"))
    if opts.task != "classification":  # boxes, classes, masks: read/detection.py
        from .detection import make_task_dataset

        return make_task_dataset(path, split, compression, opts)
    shards = resolve_shards(path, split, compression)
    check_task(shards, "classification")  # boxes or class masks: says which task to pass
    keys = keys_for(shards, opts.image_key, opts.label_key)
    ds, counts = read_shards(shards, opts)
    plan = decode.Plan.of(opts)
    if shards.ours:  # our converter stores every record's height and width
        plan = dataclasses.replace(plan, dims="stored")
    ds = _with_keys(ds, opts, plan)
    image_format = opts.image_format or shards.image_format
    shape = shards.image_shape if opts.image_size is None else None
    raw = image_format == "raw" and shards.image_shape is not None and not plan.random
    raw = raw and plan.crop is None
    # image/orientation is parsed only when some record may have it: never when the manifest
    # counts none (every dataset of upright images), always for files without a manifest
    orientations = shards.orientations
    orient = opts.orientation and not raw and orientations != {} and keys.orientation is not None
    quarter_turns = orientations is None or any(o in orientations for o in ("5", "6", "7", "8"))
    if orient and quarter_turns and shape is not None and shape[0] != shape[1]:
        shape = None  # some images come out width x height
    plan, image_format = _fixed_decoder(plan, image_format, shards, turned=orient and quarter_turns)
    spec = decode.parse_spec(keys, orientation=orient)
    if image_format in ("png", "jpeg", "any") or raw:
        # the format and shape are known: the bytes and the label are all a record must give
        # (parse_example's cost grows with the keys: 2 instead of 6 is ~1.6x faster), and the
        # stored size when it decides how a JPEG is decoded (scale, crop)
        keep = (keys.image, keys.label, keys.orientation)
        keep += (keys.height, keys.width) if plan.needs_dims else ()
        spec = {k: v for k, v in spec.items() if k in keep}
    # batched output of images nothing says are of one size: decode.batch_one_size names
    # the images of a batch whose sizes differ (their image/filename)
    any_size = bool(opts.batch_size) and not raw and not (opts.image_size or shape)
    if any_size:
        spec = decode.with_filename(spec)

    def parse(*batch):
        # keys a known format's decoders do not need come as "" and zeros
        features, labels = decode.parsed(tf.io.parse_example(records.check(batch[-1]), spec), keys)
        if plan.random:
            features["key"] = record_keys(batch[0], opts)
        return features, labels

    def parse_one(*element):
        record = records.check(element[-1][None])[0]
        features, label = decode.parsed(tf.io.parse_single_example(record, spec), keys)
        if plan.random:
            features["key"] = record_keys(element[0], opts)
        return features, label

    out_shape = opts.image_size or (shape[:2] if shape is not None else None)
    large = out_shape is not None and large_images(out_shape, opts)
    if opts.batch_size and not raw and out_shape and not large:
        # batched output of small images of one size: parse and decode a whole batch in
        # one map

        def parse_and_decode(*records):
            f, labels = parse(*records)
            images = decode.decode_batch(
                f["encoded"],
                f["format"],
                f["height"],
                f["width"],
                f["channels"],
                plan=plan,
                shape=out_shape,
                image_format=image_format,
                orientation=f.get("orientation"),
                keys=f.get("key"),
            )
            return images, labels

        ds = _map_batches(ds, parse_and_decode, opts, out_shape)
        return finish(ds, opts, batched=True)
    if raw:  # parse and decode a whole batch in one map, one vectorised decode_raw
        pixel_shape = shards.image_shape

        def parse_raw(batch):
            f, labels = decode.parsed(tf.io.parse_example(records.check(batch), spec), keys)
            return _decode_raw_batch(f["encoded"], opts, pixel_shape), labels

        if opts.batch_size:
            ds = _map_batches(ds, parse_raw, opts, opts.image_size or pixel_shape[:2])
        else:
            ds = ds.batch(PARSE_BATCH).map(
                parse_raw,
                num_parallel_calls=opts.num_parallel_calls,
                deterministic=opts.deterministic,
            )
            ds = unbatched(ds, counts, opts)
        return finish(ds, opts, batched=True)
    par = {"num_parallel_calls": opts.num_parallel_calls, "deterministic": opts.deterministic}
    orientation = "record" if orient else None
    if large:  # a record an element, parsed and decoded in one map
        ds = _decode_each(ds, plan, opts, image_format, shape, orientation, parse=parse_one)
    else:
        ds = unbatched(ds.batch(PARSE_BATCH).map(parse, **par), counts, opts)
        ds = _decode_each(ds, plan, opts, image_format, shape, orientation)
    if any_size:
        ds = decode.batch_one_size(ds, opts.batch_size, opts.drop_remainder)  # type: ignore[arg-type]
    return finish(ds, opts, batched=any_size)


def read_shards(shards: Dataset, opts: ReadOptions) -> tuple[tf.data.Dataset, list[int] | None]:
    """The serialized records this host reads (every task's first stage), shuffled and
    repeated as asked, with their cardinality asserted where the counts are known; and
    those counts (None: unknown)."""
    if opts.global_shuffle:  # runs of records across all shards, split between the hosts
        runs = plan_runs(shards.files, shards.counts, shards.compression, opts, shards.sizes)
        counts = None if opts.service is not None else runs.counts
        ds = records.read_runs(runs, opts)
    else:
        files, counts = host_files(shards.files, shards.counts, opts)
        if opts.service is not None:
            counts = None  # each service worker reads a part: no cardinality to assert
        compression_type = tf_compression_type(shards.compression)
        ds = records.read_records(files, counts, compression_type, opts, shards.sizes)
    if counts is not None:
        ds = ds.apply(tf.data.experimental.assert_cardinality(sum(counts)))
    if opts.shuffle:
        ds = ds.shuffle(opts.shuffle_buffer, seed=opts.seed, reshuffle_each_iteration=True)
    return repeated(ds, opts), counts


def make_raw_dataset(image_dir: str | os.PathLike, **options: Any) -> tf.data.Dataset:
    """The twin of :func:`make_dataset` over the raw image folder (one subfolder per
    class): the same decoding, the same output, for a fair comparison. Labels follow the
    sorted class folders, as in the converter. ``image_dir`` may be a URL (one listing of
    the bucket; files TensorFlow cannot open are fetched through fsspec). Takes
    :func:`make_dataset`'s options; with ``orientation`` (the default) each JPEG's or PNG's
    EXIF orientation is parsed from its bytes in the graph (``orient.exif_orientation``)
    and applied, as the converter's records carry it."""
    opts = options_from(options)
    if opts.task != "classification":
        raise TFRecordToolsError(
            f"task={opts.task!r}: make_raw_dataset reads image folders, one class a "
            "subfolder; boxes and masks come from converted records (make_dataset)"
        )
    if (opts.image_key, opts.label_key) != (AUTO, AUTO):
        raise TFRecordToolsError(
            "image_key and label_key name TFRecord features: make_raw_dataset reads image files"
        )
    listing = scan_image_folder(image_dir)  # a URL: one recursive listing
    paths = [listing.location(rel) for rel in listing.paths]
    labels = listing.labels
    # TensorFlow reads local and gs:// files; other URLs through fsspec (records.py)
    native = all(map(tf_opens, paths))
    read_file = tf.io.read_file if native else records.read_files
    paths, _ = host_files(paths, None, opts)
    labels = list(labels[opts.worker_index :: opts.num_workers])
    ds = tf.data.Dataset.from_tensor_slices((paths, tf.constant(labels, tf.int64)))
    if opts.shuffle:
        ds = ds.shuffle(
            min(len(paths), opts.shuffle_buffer), seed=opts.seed, reshuffle_each_iteration=True
        )
    ds = repeated(ds, opts)
    plan = dataclasses.replace(decode.Plan.of(opts), dims="header")  # files: no stored size
    ds = _with_keys(ds, opts, plan)
    empty = tf.constant("")
    if opts.batch_size and opts.image_size:  # as make_dataset: one map per batch

        def read_and_decode(*element):
            batch_paths, labels = element[-1] if plan.random else element
            # one concurrent fetch per batch through fsspec
            encoded = tf.map_fn(tf.io.read_file, batch_paths) if native else read_file(batch_paths)
            zeros = tf.zeros_like(labels)  # no stored size: JPEG headers give it
            images = decode.decode_batch(
                encoded,
                tf.fill(tf.shape(batch_paths), empty),
                zeros,
                zeros,
                zeros,
                plan=plan,
                shape=opts.image_size,
                image_format=opts.image_format,
                orientation=exif_orientation(encoded) if opts.orientation else None,
                keys=record_keys(element[0], opts) if plan.random else None,
            )
            return images, labels

        ds = ds.batch(opts.batch_size, drop_remainder=opts.drop_remainder)
        ds = ds.map(
            read_and_decode,
            num_parallel_calls=opts.num_parallel_calls,
            deterministic=opts.deterministic,
        )
        return finish(ds, opts, batched=True)

    def read(*element):
        path, label = element[-1] if plan.random else element
        zero = tf.zeros_like(label)  # not a constant: no branch is specialised for 0x0x0
        features = {
            "encoded": read_file(path),
            "format": empty,
            "height": zero,
            "width": zero,
            "channels": zero,
        }
        if plan.random:
            features["key"] = record_keys(element[0], opts)
        return features, label

    ds = ds.map(read, num_parallel_calls=opts.num_parallel_calls, deterministic=opts.deterministic)
    orientation = "exif" if opts.orientation else None
    return finish(_decode_each(ds, plan, opts, opts.image_format, None, orientation), opts)


def _with_keys(ds, opts: ReadOptions, plan: decode.Plan):
    """Number the records (after shuffle and repeat) when random crops or flips need a seed
    per record: ``(index, element)``. Each epoch's records get new numbers, so new crops."""
    return ds.enumerate() if plan.random else ds


def record_keys(index: tf.Tensor, opts: ReadOptions) -> tf.Tensor:
    """int64 [..., 2] stateless seeds: (``seed``, worker and record number). Without a
    ``seed`` one is drawn when the dataset is built."""
    seed = opts.seed if opts.seed is not None else _BUILD_SEED
    record = tf.cast(index, tf.int64) + (opts.worker_index << 40)
    return tf.stack([tf.fill(tf.shape(record), tf.constant(seed, tf.int64)), record], -1)


_BUILD_SEED = int.from_bytes(os.urandom(4), "little")


PARSE_BATCH = 256  # records parsed per parse_example call when the output is unbatched
# parse_example's cost per record falls with the records per call (28x28 PNG records, one
# core: 3.1 us at 256, 1.8 at 1024, 1.2 at 20,000), so small images are parsed and decoded
# in groups of at least this many records, as long as one group's images stay small
_SMALL_IMAGES_GROUP = 1024
_GROUP_OUTPUT_BYTES = 8 << 20


#: Output images of at least this many bytes are decoded one tf.data element each, then
#: batched; smaller ones a batch per graph loop (``decode.decode_batch``). For 224x224 RGB
#: photos the loop's copies cost more than an element's overhead (one core, 600 sample
#: photos: ~1,755 against ~1,680 CPU us/image); for 28x28 digits the element's overhead
#: is most of the work (see the module docstring).
_PER_RECORD_BYTES = 32 << 10


def large_images(image_hw: tuple[int, int], opts: ReadOptions) -> bool:
    size = image_hw[0] * image_hw[1] * opts.channels * (4 if opts.dtype == "float32" else 1)
    return size >= _PER_RECORD_BYTES


def _map_batches(ds, fn, opts: ReadOptions, image_hw: tuple[int, int]):
    """``batch`` + ``map(fn)`` for batched output of one image size. For small images
    several batches go through one ``fn`` call (``rebatch`` cuts them back to
    ``batch_size``): 20,000 digits at batch 256 read ~5 % faster on one core, ~7 % on two."""
    size = opts.batch_size
    image_bytes = image_hw[0] * image_hw[1] * opts.channels * (4 if opts.dtype == "float32" else 1)
    groups = min(-(-_SMALL_IMAGES_GROUP // size), _GROUP_OUTPUT_BYTES // (image_bytes * size))
    par = {"num_parallel_calls": opts.num_parallel_calls, "deterministic": opts.deterministic}
    if groups <= 1:
        return ds.batch(size, drop_remainder=opts.drop_remainder).map(fn, **par)
    records = tf.get_static_value(ds.cardinality())
    ds = ds.batch(size * groups).map(fn, **par).rebatch(size, drop_remainder=opts.drop_remainder)
    if records is None or records == tf.data.UNKNOWN_CARDINALITY:
        return ds
    if records != tf.data.INFINITE_CARDINALITY:  # rebatch forgets what batch would know
        records = records // size if opts.drop_remainder else -(-records // size)
    return ds.apply(tf.data.experimental.assert_cardinality(records))


def unbatched(ds, counts: list[int] | None, opts: ReadOptions):
    """``unbatch`` forgets the cardinality; restore it when the manifest gave the counts."""
    ds = ds.unbatch()
    if counts is None or opts.repeat is True:
        return ds
    passes = int(opts.repeat) if opts.repeat else 1
    return ds.apply(tf.data.experimental.assert_cardinality(sum(counts) * passes))


def repeated(ds, opts: ReadOptions):
    if opts.repeat is True:
        return ds.repeat()
    return ds.repeat(int(opts.repeat)) if opts.repeat else ds


def _decode_each(
    ds,
    plan: decode.Plan,
    opts: ReadOptions,
    image_format: str | None,
    shape,
    orientation: str | None = None,
    parse=None,
):
    """Per-record decode (+ orientation, crop, resize, flip, dtype): one format's decoder
    when known, else ``tf.case``. ``orientation``: None, ``"record"`` (the features'
    ``orientation``) or ``"exif"`` (parsed from the image bytes). ``parse``: elements are
    records, which it turns into (features, label) in the same map."""

    def decode_one(*element):
        f, label = parse(*element) if parse is not None else element
        encoded = f["encoded"]
        code = decode.known_code(image_format)
        if code is None:
            code = decode.format_code(encoded, f["format"], f["height"], f["width"], f["channels"])
        turns = None
        if orientation == "record":
            turns = f["orientation"]
        elif orientation == "exif":
            turns = exif_orientation(encoded)
        image = decode.decode_record(
            encoded,
            code,
            f["height"],
            f["width"],
            f["channels"],
            plan,
            orientation=turns,
            key=f.get("key"),
        )
        if shape is not None and opts.image_size is None:
            image.set_shape([shape[0], shape[1], opts.channels])
        if "name" in f:  # for decode.batch_one_size: the image's name and size
            return image, label, f["name"], tf.shape(image)[:2]
        return image, label

    return ds.map(
        decode_one, num_parallel_calls=opts.num_parallel_calls, deterministic=opts.deterministic
    )


def _fixed_decoder(
    plan: decode.Plan, image_format: str | None, shards, *, turned: bool
) -> tuple[decode.Plan, str | None]:
    """What the manifest lets be decided once instead of per record (each ``tf.case`` or
    ``tf.switch_case`` in a record's graph costs ~5 % of a 500x375 photo's decode): the DCT
    ratio, when every record has one stored shape (and none is turned a quarter); then
    ``"any"`` for the format, when every record is a JPEG or a PNG (the converter counts
    them from the bytes), 3 channels are asked for, nothing is cropped and every JPEG
    decodes at full scale (``decode_image`` sniffs the bytes in its kernel)."""
    shape = shards.image_shape
    if plan.scaling and plan.crop is None and shape is not None and not turned:
        plan = dataclasses.replace(plan, ratio=decode.static_ratio(shape[:2], plan.image_size))
    manifest = shards.manifest
    formats = set(manifest.image_formats) if manifest is not None else set()
    one_scale = not plan.scaling or plan.ratio == 1
    if (
        image_format is None
        and formats
        and formats <= decode.ANY_FORMATS
        and plan.channels == 3
        and plan.crop is None
        and one_scale
    ):
        image_format = "any"
    return plan, image_format


def _decode_raw_batch(encoded, opts: ReadOptions, shape):
    """Raw uint8 pixels of one known shape: the whole batch in one ``decode_raw``."""
    pixels = tf.reshape(tf.io.decode_raw(encoded, tf.uint8), [-1, *shape])
    pixels.set_shape([encoded.shape[0], *shape])  # a static batch size stays known
    pixels = decode.to_channels(pixels, opts.channels)
    return decode.resize(pixels, opts.image_size, dtype=opts.dtype)


def finish(ds, opts: ReadOptions, *, batched: bool = False):
    """Shared tail: batch, prefetch, thread options."""
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
    options = tf.data.Options()
    options.autotune.enabled = opts.autotune
    if opts.threads is not None:
        options.threading.private_threadpool_size = opts.threads
    if opts.deterministic is not None:
        options.deterministic = opts.deterministic
    return options
