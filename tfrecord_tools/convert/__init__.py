"""Conversion: image folders and MNIST -> a dataset folder (FORMAT.md).

Data flow, one module each::

    sources/ (image folder listing, MNIST IDX files; probe, PNG encoder)
      -> plan (splits, shards: pure)
      -> jobs (one shard each: samples -> Examples -> format.writer)
      -> local | beam (engines that run the jobs) ; resume (what is already done)
      -> summary -> format.manifest (written last)

``api`` holds the public entry points. Nothing here imports TensorFlow.
"""

from __future__ import annotations

#: The choices the CLI and the Python API share (kept here, import-light).
ENGINES = ("local", "beam")
VALIDATE_MODES = ("fast", "decode")
MNIST_ENCODINGS = ("png", "raw")
#: ``convert images --encoding``: keep JPEG / PNG as they are, PNG for all, raw pixels, or
#: raw when every image is small and of one shape (``AUTO_RAW_MAX_SIDE``).
IMAGE_ENCODINGS = ("keep", "png", "raw", "auto")
AUTO_RAW_MAX_SIDE = 64
#: JPEG quality of the images ``--max-size`` re-encodes.
DEFAULT_QUALITY = 90
