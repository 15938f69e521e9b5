"""tfrecord-tools: convert image folders and MNIST to sharded TFRecords, read them back
with tf.data, check, repair and benchmark them.

Importing the package is cheap: every name below is loaded on first use, and TensorFlow
only by the functions that need it (the readers and the benchmark's child processes).
"""

from __future__ import annotations

from importlib import import_module

from .errors import TFRecordToolsError

__version__ = "0.1.0"

# name -> module that defines it
_EXPORTS = {
    "convert_image_folder": "convert.api",
    "convert_mnist": "convert.api",
    "convert_coco": "convert.sources.annotated",
    "convert_voc": "convert.sources.annotated",
    "convert_yolo": "convert.sources.annotated",
    "convert_csv": "convert.sources.annotated",
    "convert_segmentation": "convert.sources.annotated",
    "ConversionSummary": "convert.summary",
    "make_dataset": "read.pipeline",
    "make_raw_dataset": "read.pipeline",
    "TFRecordDataSource": "access.source",
    "verify": "check.verify",
    "VerifyReport": "check.verify",
    "repair": "check.repair",
    "RepairReport": "check.repair",
    "count_records": "check.count",
    "inspect_dataset": "check.inspect",
    "index_shards": "check.index",
    "run_benchmark": "bench",
    "BenchConfig": "bench",
}

__all__ = ["TFRecordToolsError", "__version__", *_EXPORTS]


def __getattr__(name: str):
    # Lazy: keeps `tfrecord-tools --help` and the format tools free of heavy imports.
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'tfrecord_tools' has no attribute {name!r}")
