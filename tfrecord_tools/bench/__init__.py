"""Benchmark harness: raw image files vs TFRecords vs their peers (Keras'
``image_dataset_from_directory``, the tf.data pipeline a user writes by hand, TFDS's
``as_dataset``), over thread settings, core counts and page-cache states, each cell in a
fresh process pinned to its cores; images/s and CPU time per image. ``tfrecord-tools bench``
is this, from the command line.

Modules, in data-flow order: ``config`` (options) -> ``data`` (sample set, timed conversion)
-> ``grid`` (cells) -> ``runner`` (one child per cell) -> ``child`` (the pinned process:
affinity, then TensorFlow, then timing) with ``timing`` (warm-up, timed passes, figures) and
``cache`` (eviction) -> ``report`` (table, JSON, CSV) and ``plot`` (PNG). The scripts in
``benchmarks/`` pin, evict and time with the same functions. Importing this package does
not import TensorFlow; only the children do.

    from tfrecord_tools.bench import run_benchmark
    report = run_benchmark(short=True, out="bench-demo")
    report.print_table()
"""

from __future__ import annotations

from typing import Any

from .config import SOURCES, BenchConfig, BenchError
from .report import BenchReport

__all__ = ["SOURCES", "BenchConfig", "BenchError", "BenchReport", "run_benchmark"]


def run_benchmark(config: BenchConfig | None = None, **options: Any) -> BenchReport:
    """Run a benchmark grid; results.json, results.csv and results.png go to ``out``.

    Give a :class:`BenchConfig`, or its fields as keywords (``image_dir``, ``tfrecords``,
    ``sources``, ``threads``, ``cores``, ``cache``, ``batch_size``, ``image_size``,
    ``epochs``, ``repeats``, ``out``, ``short``...), not both.
    """
    if config is not None and options:
        raise BenchError("give a BenchConfig or keyword options, not both")
    from .runner import run

    return run(config if config is not None else BenchConfig(**options))
