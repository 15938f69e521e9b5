"""tfrecord-tools: convert image folders and MNIST to sharded TFRecords, read them back
with tf.data, check, repair and benchmark them.

Importing the package is cheap: TensorFlow is imported only by the functions that need it.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = [
    "ConversionSummary",
    "TFRecordToolsError",
    "__version__",
    "convert_image_folder",
    "convert_mnist",
]

from .errors import TFRecordToolsError


def __getattr__(name: str):
    # Lazy: keeps `tfrecord-tools --help` and the format tools free of heavy imports.
    if name in ("convert_image_folder", "convert_mnist"):
        from . import convert

        return getattr(convert, name)
    if name == "ConversionSummary":
        from .summary import ConversionSummary

        return ConversionSummary
    raise AttributeError(f"module 'tfrecord_tools' has no attribute {name!r}")
