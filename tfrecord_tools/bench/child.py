"""One benchmark cell, run in a fresh process: ``python -m tfrecord_tools.bench.child SPEC``.

Data flow: spec (JSON from ``grid.cell_spec``) -> **end with the parent, pin to the CPUs,
then import TensorFlow** (its thread pools size themselves to the affinity they find) ->
thread settings -> dataset of the source -> warm-up pass and timed repeats (``timing.measure``)
-> one JSON line on stdout, prefixed ``BENCH-RESULT`` (:func:`answer`).

A benchmark script with a cell of its own (``benchmarks/read_child.py``) follows the same
protocol: :func:`pin` first, then TensorFlow, ``timing.measure``, :func:`answer`; the
parent runs it with ``runner.run_child(spec, script=...)``.

Nothing above ``_run`` may import TensorFlow or numpy: the affinity must come first.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from .. import storage
from ..errors import TFRecordToolsError
from ..lifetime import end_with_parent
from ..storage import is_url
from .grid import Cell, read_options
from .timing import measure

RESULT_PREFIX = "BENCH-RESULT "
_KERAS_COLOR = {1: "grayscale", 3: "rgb", 4: "rgba"}


def pin(cpus: Sequence[int]) -> list[int]:
    """Pin this process to ``cpus``; call it before TensorFlow is imported, so that its
    thread pools size themselves to them. Returns the affinity as seen from inside.

    A cell started by ``runner.run_child`` also ends with the benchmark from here on, even
    when that is killed with SIGKILL (``lifetime.end_with_parent``)."""
    end_with_parent()
    os.sched_setaffinity(0, cpus)
    return sorted(os.sched_getaffinity(0))


def answer(result: dict[str, Any]) -> None:
    """Hand the cell's result to the parent: one JSON line on stdout (``run_child`` reads it)."""
    print(RESULT_PREFIX + json.dumps(result), flush=True)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m tfrecord_tools.bench.child SPEC_JSON", file=sys.stderr)
        return 2
    spec = json.loads(args[0])
    affinity = pin(spec["cpus"])  # before TensorFlow exists in this process
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    answer(_run(spec, affinity))
    return 0


def _run(spec: dict[str, Any], affinity: list[int]) -> dict[str, Any]:
    import tensorflow as tf

    threads = spec["threads"]
    if threads != "auto":
        tf.config.threading.set_inter_op_parallelism_threads(threads)
        tf.config.threading.set_intra_op_parallelism_threads(threads)
    make, files, applied = _SOURCES[spec["source"]](spec, tf)
    remote = is_url(spec["path"])  # no page cache to probe or evict: every read is a request
    timed = measure(
        make,
        repeats=spec["repeats"],
        files=() if remote else files,
        cache=spec["cache"],
        epochs=spec["epochs"],
    )
    return {
        "affinity": affinity,
        "pid": os.getpid(),
        "tensorflow": tf.__version__,
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "options": applied,
        "files": len(files),
        "bytes_per_pass": _bytes(files, remote),
        **timed,
    }


def _bytes(files: list[str], remote: bool) -> int:
    """The bytes of ``files``: one listing per folder for a bucket, not a request per file."""
    if not remote:
        return sum(os.path.getsize(f) for f in files)
    sizes: dict[str, int] = {}
    for folder in {storage.dirname(f) for f in files}:
        sizes.update({storage.join(folder, n): s for n, s in storage.list_files(folder).items()})
    return sum(sizes.get(f, 0) for f in files)


# --- the sources: (make dataset, files it reads, options applied) --------------------------

Source = tuple[Callable[[], Any], list[str], dict[str, Any]]


def _common(spec: dict[str, Any]) -> dict[str, Any]:
    """The reader keywords every reader cell shares: batch, size, channels, and the cell's
    decode, crop and dtype (absent from older specs: the reader's defaults)."""
    cell = Cell(
        spec["source"],
        spec["threads"],
        spec["cores"],
        spec["cache"],
        spec.get("decode", "scaled"),
        spec.get("crop", "none"),
        spec.get("dtype", "uint8"),
    )
    return {
        "batch_size": spec["batch_size"],
        "image_size": tuple(spec["image_size"]) if spec["image_size"] else None,
        "channels": spec["channels"],
        **cell.reader_options(),
    }


def _reader_options(spec: dict[str, Any], num_files: int) -> dict[str, Any]:
    """The spec's explicit reader keywords if it has them, else its thread setting's."""
    if spec.get("options") is not None:
        return dict(spec["options"])
    return read_options(spec["threads"], spec["cores"], num_files)


def _tfrecord(spec: dict[str, Any], tf) -> Source:
    from ..read.pipeline import make_dataset
    from ..read.shards import resolve_shards

    files = resolve_shards(spec["path"]).files
    options = _reader_options(spec, len(files))
    common = _common(spec)
    applied = {**options, **{k: v for k, v in common.items() if k in _VARIANT_KEYS}}
    return lambda: make_dataset(spec["path"], **common, **options), files, applied


def _raw(spec: dict[str, Any], tf) -> Source:
    from ..dataset.images import scan_image_folder
    from ..read.pipeline import make_raw_dataset

    listing = scan_image_folder(spec["path"])
    files = [storage.join(str(listing.root), p) for p in listing.paths]
    options = _reader_options(spec, len(files))
    options.pop("cycle_length", None)  # one file per element: nothing to interleave
    common = _common(spec)
    # the same knowledge the TFRecord reader has from its manifest: parse EXIF orientation
    # in the graph only when some file carries one (that parse costs ~20 % on 500x375 JPEGs)
    common["orientation"] = _any_oriented(files)
    applied = {**options, **{k: v for k, v in common.items() if k in _VARIANT_KEYS}}
    return lambda: make_raw_dataset(spec["path"], **common, **options), files, applied


def _any_oriented(files: list[str]) -> bool:
    """Does any image carry an EXIF orientation other than 1 (read untimed, headers only)?"""
    from ..errors import InvalidImageError
    from ..images.probe import probe_image, read_image

    for path in files:
        try:
            with storage.open_read(path, block_size=1 << 16) as f:
                if probe_image(read_image(f), path=path)[1].orientation != 1:
                    return True
        except (InvalidImageError, OSError, TFRecordToolsError):
            continue  # the reader says what is wrong with it
    return False


_VARIANT_KEYS = ("decode_scaling", "crop", "seed", "dtype", "orientation")


def _keras(spec: dict[str, Any], tf) -> Source:
    """``image_dataset_from_directory`` as users call it; it maps with AUTOTUNE itself, so a
    thread setting reaches it only through the private pool and TF's own pools."""
    threads = spec["threads"]
    kwargs = {
        "labels": "inferred",
        "label_mode": "int",
        "color_mode": _KERAS_COLOR[spec["channels"]],
        "batch_size": spec["batch_size"],
        "image_size": tuple(spec["image_size"]),
        "shuffle": False,
        "interpolation": "bilinear",
        "verbose": False,
    }

    def build():
        return tf.keras.utils.image_dataset_from_directory(spec["path"], **kwargs)

    def make():
        return _private_pool(build(), None if threads == "auto" else threads, tf)

    files = list(build().file_paths)
    applied = {
        "num_parallel_calls": -1,
        "threads": None if threads == "auto" else threads,
        "keras": {k: v for k, v in kwargs.items() if k != "verbose"},
    }
    return make, files, applied


def _handwritten(spec: dict[str, Any], tf) -> Source:
    """The tf.data pipeline a user writes by hand over the same shards: TFRecordDataset, a
    map of parse_single_example + decode_image + resize + cast, batch, prefetch (no DCT
    scaling, no batched parse, tf.data's default options). Records of raw pixels (one shape,
    the manifest's) are decoded with decode_raw, as their user would. The thread setting
    reaches it as it reaches the reader: parallel calls, files read at once, private pool."""
    from ..dataset.keys import keys_for
    from ..format.compression import tf_compression_type
    from ..read.shards import resolve_shards

    shards = resolve_shards(spec["path"])
    keys = keys_for(shards)
    files = shards.files
    options = _reader_options(spec, len(files))
    raw_shape = shards.image_shape if shards.image_format == "raw" else None
    if shards.image_format == "raw" and raw_shape is None:
        raise TFRecordToolsError(
            f"{spec['path']}: raw pixels of several shapes; the handwritten source decodes "
            "images of one shape or encoded ones"
        )
    features = {keys.image: tf.io.FixedLenFeature([], tf.string)}
    if keys.label is not None:
        features[keys.label] = tf.io.FixedLenFeature([], tf.int64)
    finish = _resize_and_cast(spec, tf)

    def parse(record):
        f = tf.io.parse_single_example(record, features)
        if raw_shape is not None:
            image = tf.reshape(tf.io.decode_raw(f[keys.image], tf.uint8), raw_shape)
        else:
            image = tf.io.decode_image(
                f[keys.image], channels=spec["channels"], expand_animations=False
            )
        label = f[keys.label] if keys.label is not None else tf.constant(-1, tf.int64)
        return finish(image), label

    reads = options["cycle_length"]
    compression = tf_compression_type(shards.compression)

    def make():
        ds = tf.data.TFRecordDataset(
            files, compression_type=compression, num_parallel_reads=reads if reads > 1 else None
        )
        ds = ds.map(parse, num_parallel_calls=options["num_parallel_calls"])
        ds = ds.batch(spec["batch_size"]).prefetch(tf.data.AUTOTUNE)
        return _private_pool(ds, options["threads"], tf)

    applied = {**options, "dtype": spec.get("dtype", "uint8"), "decode": "decode_image"}
    if raw_shape is not None:
        applied["decode"] = "decode_raw"
    return make, files, applied


def _tfds(spec: dict[str, Any], tf) -> Source:
    """``tfds.builder_from_directory(PATH).as_dataset(split="train")`` (TFDS decodes the
    images), then the same resize, cast, batch and prefetch as :func:`_handwritten`. The
    thread setting sets TFDS's parallel decode and file reads, the files read at once and
    the private pool; TFDS's in-memory cache of small datasets is off (it would time RAM)."""
    import tensorflow_datasets as tfds

    from ..dataset.keys import keys_for
    from ..read.shards import resolve_shards

    shards = resolve_shards(spec["path"])
    keys = keys_for(shards)
    files = shards.files
    options = _reader_options(spec, len(files))
    builder = tfds.builder_from_directory(str(spec["path"]))
    pool = tf.data.Options()
    if options["threads"] is not None:
        pool.threading.private_threadpool_size = options["threads"]
    read_config = tfds.ReadConfig(
        options=pool,
        try_autocache=False,
        interleave_cycle_length=options["cycle_length"],
        num_parallel_calls_for_interleave_files=options["num_parallel_calls"],
        num_parallel_calls_for_decode=options["num_parallel_calls"],
    )
    finish = _resize_and_cast(spec, tf)

    def example(ex):
        image = _nested(ex, keys.image)
        if image.dtype == tf.string:
            raise TFRecordToolsError(
                f"{spec['path']}: TFDS gives {keys.image} as bytes (raw pixels of several "
                "shapes); the tfds source needs images TFDS decodes"
            )
        label = _nested(ex, keys.label) if keys.label is not None else tf.constant(-1, tf.int64)
        return finish(image), label

    def make():
        ds = builder.as_dataset(split="train", shuffle_files=False, read_config=read_config)
        ds = ds.map(example, num_parallel_calls=options["num_parallel_calls"])
        ds = ds.batch(spec["batch_size"]).prefetch(tf.data.AUTOTUNE)
        return _private_pool(ds, options["threads"], tf)

    applied = {**options, "dtype": spec.get("dtype", "uint8"), "tfds": tfds.__version__}
    return make, files, applied


def _resize_and_cast(spec: dict[str, Any], tf) -> Callable[[Any], Any]:
    """What a user's map does after decoding: the channels asked for, ``tf.image.resize``
    (bilinear) to the cell's size, ``tf.cast`` to its dtype."""
    if not spec["image_size"]:
        raise TFRecordToolsError(f"the {spec['source']} source needs an image size")
    size = tuple(spec["image_size"])
    channels = spec["channels"]
    dtype = tf.dtypes.as_dtype(spec.get("dtype", "uint8"))

    def finish(image):
        have = image.shape[-1]
        if have == 1 and channels == 3:
            image = tf.image.grayscale_to_rgb(image)
        elif have in (3, 4) and channels == 1:
            image = tf.image.rgb_to_grayscale(image[..., :3])
        elif have == 4 and channels == 3:
            image = image[..., :3]
        elif have is not None and have != channels:
            raise TFRecordToolsError(
                f"the {spec['source']} source cannot make {channels} channels of {have}"
            )
        return tf.cast(tf.image.resize(image, size), dtype)

    return finish


def _nested(example: dict[str, Any], key: str) -> Any:
    """``image/class/label`` of TFDS's nested example dict (TFDS nests on ``/``)."""
    for part in key.split("/"):
        example = example[part]
    return example


def _private_pool(ds, threads: int | None, tf):
    """The thread setting's private pool (``None``, ``auto``: tf.data's shared pool)."""
    if threads is None:
        return ds
    options = tf.data.Options()
    options.threading.private_threadpool_size = threads
    return ds.with_options(options)


_SOURCES = {
    "raw": _raw,
    "tfrecord": _tfrecord,
    "keras": _keras,
    "handwritten": _handwritten,
    "tfds": _tfds,
}


if __name__ == "__main__":
    sys.exit(main())
