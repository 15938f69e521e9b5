"""How a pass over a dataset is timed: the one method of the harness and of ``benchmarks/``.

Data flow: ``make`` (builds a fresh dataset) -> **warm-up pass**, untimed (tracing, first
allocations, page cache) -> per repeat: evict or check the page cache (``cache.py``),
build, **timed pass** -> figures (median and range over repeats, steady rate, CPU).

A timed pass runs from the iterator's creation to the **arrival of the last element**.
tf.data may wait after the last element before it reports the end of the data (with
autotuning, ~10 ms x (2^k - 1)); that wait is excluded and reported as ``end_wait_s``. CPU
time (``time.process_time``: user + system time of every thread of the process) is taken
over the same interval.

No TensorFlow import here: the functions iterate whatever dataset they are given, so a
process can import this module before pinning itself and importing TensorFlow.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from .cache import evict_files, resident_fraction

#: Counters sampled around each timed pass: name -> value (e.g. another process's CPU s).
Counters = Callable[[], dict[str, float]]


def time_pass(ds: Any) -> dict[str, Any]:
    """Iterate ``ds`` to its end; times are from iterator creation (see the module doc).

    Elements are ``(images, labels)`` tuples or single batched tensors (records); the batch
    size is the first dimension of the first (or only) tensor."""
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    first = last = t0
    cpu_last = cpu0
    images = batches = first_images = 0
    output = None
    for element in ds:
        last = time.perf_counter()
        cpu_last = time.process_time()
        batch = element[0] if isinstance(element, tuple) else element
        if output is None:
            first, first_images = last, int(batch.shape[0])
            output = {"shape": [None, *batch.shape[1:]], "dtype": batch.dtype.name}
            if isinstance(element, tuple) and len(element) > 1:
                output["label_dtype"] = element[1].dtype.name
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


def measure(
    make: Callable[[], Any],
    *,
    repeats: int,
    files: Sequence[str] = (),
    cache: str = "warm",
    epochs: int = 1,
    counters: Counters | None = None,
) -> dict[str, Any]:
    """A warm-up pass, then ``repeats`` timed passes over a fresh ``make()`` each.

    ``cache="cold"`` evicts ``files`` before every timed repeat (``cache.evict_files``), and
    again once ``make()`` has built the pipeline, which reads the shards' record headers;
    ``"warm"`` records the fraction of their pages resident. ``epochs > 1`` repeats the
    dataset, so several epochs go through one iterator. ``counters`` are sampled just
    before and after each timed pass; their differences join the repeat's record."""
    start = time.perf_counter()
    warmup = time_pass(make())
    warmup["seconds"] = time.perf_counter() - start
    output = warmup.pop("output")
    records = []
    for _ in range(repeats):
        if cache == "cold":
            state = evict_files(files).to_json()
        else:
            state = {"resident_before": resident_fraction(files) if files else None}
        start = time.perf_counter()
        ds = make()
        if epochs > 1:
            ds = ds.repeat(epochs)
        build = time.perf_counter() - start
        if cache == "cold":  # building reads record headers (the reader's length check):
            evict_files(files)  # the timed pass starts cold again
        before = counters() if counters else {}
        record = time_pass(ds)
        after = counters() if counters else {}
        record.pop("output")
        record.update({k: after[k] - v for k, v in before.items()})
        records.append({**record, "build_s": build, "cache": state})
    return {
        "images_per_pass": warmup["images"],
        "output": output,
        "warmup": warmup,
        "repeats": records,
    }


def rates(images: int, seconds: Sequence[float]) -> dict[str, Any]:
    """Images/s as the median over repeats of ``seconds`` (each for ``images``), with the
    min-max range."""
    median = statistics.median(seconds)
    return {
        "images": images,
        "seconds": list(seconds),
        "seconds_median": median,
        "images_per_s": images / median,
        "images_per_s_min": images / max(seconds),
        "images_per_s_max": images / min(seconds),
    }


def figures(repeats: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The figures of :func:`measure`'s repeats: :func:`rates` of the time to the last
    element, the steady rate from the first element on, CPU time per image (user + system,
    every thread, in us; also in ms, the older name) and cores busy, and
    the medians of start-up, end-of-data wait and build time."""
    images = repeats[0]["images"]
    steady = [
        (r["images"] - r["first_images"]) / (r["last_s"] - r["first_s"])
        for r in repeats
        if r["batches"] > 1 and r["last_s"] > r["first_s"]
    ]
    cpu = statistics.median(r["cpu_s"] for r in repeats)
    return {
        **rates(images, [r["last_s"] for r in repeats]),
        "images_per_s_steady": statistics.median(steady) if steady else None,
        "cpu_us_per_image": 1e6 * cpu / images,
        "cpu_ms_per_image": 1000 * cpu / images,
        "cpu_utilisation": statistics.median(r["cpu_s"] / r["last_s"] for r in repeats),
        "first_s": statistics.median(r["first_s"] for r in repeats),
        "end_wait_s": statistics.median(r["end_wait_s"] for r in repeats),
        "build_s": statistics.median(r["build_s"] for r in repeats),
    }
