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
