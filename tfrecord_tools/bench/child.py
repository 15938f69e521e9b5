"""One benchmark cell, run in a fresh process: ``python -m tfrecord_tools.bench.child SPEC``.

Data flow: spec (JSON from ``grid.child_spec``) -> **pin to the CPUs, then import
TensorFlow** (its thread pools size themselves to the affinity they find) -> thread
settings -> dataset of the source -> warm-up pass -> timed repeats -> one JSON line on
stdout, prefixed ``BENCH-RESULT``.

Timing of a repeat: the clock starts when the iterator is created (the dataset is built
just before, untimed) and stops when the **last element arrives**. tf.data may wait after
the last element before it reports the end of the data (with autotuning, ~10 ms x (2^k - 1)
for some k); that wait is excluded from the figure and reported as ``end_wait_s``. CPU time
(``time.process_time``, every thread of the process) is taken over the same interval.

Nothing above ``_run`` may import TensorFlow or numpy: the affinity must come first.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from .cache import evict_files, resident_fraction
from .grid import read_options

RESULT_PREFIX = "BENCH-RESULT "
_KERAS_COLOR = {1: "grayscale", 3: "rgb", 4: "rgba"}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m tfrecord_tools.bench.child SPEC_JSON", file=sys.stderr)
        return 2
    spec = json.loads(args[0])
    os.sched_setaffinity(0, spec["cpus"])  # before TensorFlow exists in this process
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    result = _run(spec)
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    return 0


def _run(spec: dict[str, Any]) -> dict[str, Any]:
    affinity = sorted(os.sched_getaffinity(0))  # as seen from inside, before TF starts
    import tensorflow as tf

    threads = spec["threads"]
    if threads != "auto":
        tf.config.threading.set_inter_op_parallelism_threads(threads)
        tf.config.threading.set_intra_op_parallelism_threads(threads)
    make, files, applied = _SOURCES[spec["source"]](spec, tf)
    epochs = spec["epochs"]

    start = time.perf_counter()
    warmup = _timed_pass(make())  # traces the functions, fills the page cache
    warmup["seconds"] = time.perf_counter() - start
    repeats = []
    for _ in range(spec["repeats"]):
        if spec["cache"] == "cold":
            cache = evict_files(files).to_json()
        else:
            cache = {"resident_before": resident_fraction(files)}
        start = time.perf_counter()
        ds = make()
        if epochs > 1:
            ds = ds.repeat(epochs)
        build = time.perf_counter() - start
        repeats.append({**_timed_pass(ds), "build_s": build, "cache": cache})
    return {
        "affinity": affinity,
        "pid": os.getpid(),
        "tensorflow": tf.__version__,
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "options": applied,
        "files": len(files),
        "bytes_per_pass": sum(os.path.getsize(f) for f in files),
        "images_per_pass": warmup["images"],
        "output": warmup.pop("output"),
        "warmup": warmup,
        "repeats": repeats,
    }


def _timed_pass(ds) -> dict[str, Any]:
    """Iterate ``ds`` to its end; times are from iterator creation."""
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    first = last = t0
    cpu_last = cpu0
    images = batches = first_images = 0
    output = None
    for batch, labels in ds:
        last = time.perf_counter()
        cpu_last = time.process_time()
        if output is None:
            first, first_images = last, int(batch.shape[0])
            output = {
                "shape": [None, *batch.shape[1:]],
                "dtype": batch.dtype.name,
                "label_dtype": labels.dtype.name,
            }
        images += int(batch.shape[0])
        batches += 1
    end = time.perf_counter()
    return {
        "images": images,
        "batches": batches,
        "first_images": first_images,
        "first_s": first - t0,
        "last_s": last - t0,
        "end_wait_s": end - last,
        "cpu_s": cpu_last - cpu0,
        "output": output,
    }


# --- the sources: (make dataset, files it reads, options applied) --------------------------

Source = tuple[Callable[[], Any], list[str], dict[str, Any]]


def _common(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "batch_size": spec["batch_size"],
        "image_size": tuple(spec["image_size"]),
        "channels": spec["channels"],
    }


def _tfrecord(spec: dict[str, Any], tf) -> Source:
    from ..read.pipeline import make_dataset
    from ..read.shards import resolve_shards

    files = resolve_shards(spec["path"]).files
    options = read_options(spec["threads"], spec["cores"], len(files))
    common = _common(spec)
    return lambda: make_dataset(spec["path"], **common, **options), files, options


def _raw(spec: dict[str, Any], tf) -> Source:
    from ..convert.sources.image_folder import scan_image_folder
    from ..read.pipeline import make_raw_dataset

    listing = scan_image_folder(spec["path"])
    files = [str(listing.root / p) for p in listing.paths]
    options = read_options(spec["threads"], spec["cores"], len(files))
    options.pop("cycle_length")  # one file per element: nothing to interleave
    common = _common(spec)
    return lambda: make_raw_dataset(spec["path"], **common, **options), files, options


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
        ds = build()
        if threads != "auto":
            options = tf.data.Options()
            options.threading.private_threadpool_size = threads
            ds = ds.with_options(options)
        return ds

    files = list(build().file_paths)
    applied = {
        "num_parallel_calls": -1,
        "threads": None if threads == "auto" else threads,
        "keras": {k: v for k, v in kwargs.items() if k != "verbose"},
    }
    return make, files, applied


_SOURCES = {"raw": _raw, "tfrecord": _tfrecord, "keras": _keras}


if __name__ == "__main__":
    sys.exit(main())
