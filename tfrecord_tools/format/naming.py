"""File names of a dataset folder: the one place that formats and parses them (FORMAT.md);
the temporary names of atomic writes belong to ``storage/atomic.py`` and are re-exported.

    OUT/
      dataset.json                                 MANIFEST, written last
      labels.txt                                   LABELS
      NAME-train.tfrecord-00000-of-00004           ShardName (TFDS naming)
      NAME-train.tfrecord-00000-of-00004.idx       index_path(shard)
      .NAME-train.tfrecord-00000-of-00004.tmp-PID  temp_path(...): not there yet
      .tfrecord-tools-work/                        WORK_DIR: a conversion under way

A *shard file* is any visible file whose name holds ``.tfrecord`` or ``.tfrec`` (third-party
names such as ``train.tfrec`` or ``data.tfrecords`` included) and is not an index.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..storage.atomic import is_temp_name, temp_path
from ..storage.location import INDEX_SUFFIX

MANIFEST = "dataset.json"
LABELS = "labels.txt"
WORK_DIR = ".tfrecord-tools-work"
#: What marks a file name as a TFRecord shard: ``.tfrecord`` and the shorter ``.tfrec``.
SHARD_MARKER = ".tfrec"
#: Glob patterns that find shard candidates in a folder (filter with :func:`is_shard_name`).
SHARD_GLOB = f"*{SHARD_MARKER}*"

_TEMPLATE = re.compile(
    r"^(?P<name>.+)-(?P<split>[^-]+)\.tfrecord-(?P<index>\d{5,})-of-(?P<count>\d{5,})$"
)


@dataclass(frozen=True, order=True)
class ShardName:
    """``{name}-{split}.tfrecord-{index:05d}-of-{count:05d}``: formatted and parsed here."""

    name: str
    split: str
    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.name}-{self.split}.tfrecord-{self.index:05d}-of-{self.count:05d}"

    @classmethod
    def parse(cls, filename: str) -> ShardName | None:
        """The parts of a name made by ``str(ShardName)``, or None for any other name."""
        match = _TEMPLATE.match(filename)
        if match is None:
            return None
        index, count = int(match["index"]), int(match["count"])
        if not index < count:
            return None
        return cls(match["name"], match["split"], index, count)


def shard_filename(name: str, split: str, index: int, count: int) -> str:
    """TFDS naming: ``{name}-{split}.tfrecord-{i:05d}-of-{n:05d}``."""
    return str(ShardName(name, split, index, count))


def is_shard_name(filename: str) -> bool:
    """A visible file named like a TFRecord shard (``*.tfrecord*``, ``*.tfrec*``), not an
    index or a temporary file."""
    return (
        not filename.startswith(".")
        and not filename.endswith(INDEX_SUFFIX)
        and SHARD_MARKER in filename
    )


def index_path(shard: str | os.PathLike) -> Path:
    """The ``.idx`` file beside a shard."""
    shard = Path(shard)
    return shard.with_name(shard.name + INDEX_SUFFIX)


def printable(name: str) -> str:
    """``name`` as valid UTF-8 text: bytes that are not UTF-8 (kept by Python as lone
    surrogates) shown as ``\\xNN`` escapes, for manifests and messages."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


__all__ = [
    "INDEX_SUFFIX", "LABELS", "MANIFEST", "SHARD_GLOB", "SHARD_MARKER", "WORK_DIR", "ShardName",
    "index_path", "is_shard_name", "is_temp_name", "printable", "shard_filename", "temp_path",
]  # fmt: skip
