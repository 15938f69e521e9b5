"""Shard writing: records -> one shard file plus its index, appearing atomically.

Data flow: Example bytes -> framing -> **shard writer** -> ``NAME-split.tfrecord-i-of-n``
and ``.idx``. The shard is written under a hidden temporary name in the same folder and
renamed only when complete, so a shard under its final name is always whole. The sha256
and size of the on-disk bytes are computed while writing, never by reading back.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .framing import OVERHEAD, frame_parts, open_compressed_writer

INDEX_SUFFIX = ".idx"


@dataclass(frozen=True)
class ShardInfo:
    """What the manifest records of a finished shard."""

    file: str
    num_examples: int
    num_bytes: int
    sha256: str

    def to_json(self) -> dict:
        return {
            "file": self.file,
            "num_examples": self.num_examples,
            "num_bytes": self.num_bytes,
            "sha256": self.sha256,
        }


def temp_name(path: Path) -> Path:
    """Hidden temporary sibling of ``path``, unique to this process."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


class _HashingFile:
    """Counts and hashes what goes to the underlying file (the on-disk bytes)."""

    def __init__(self, raw: BinaryIO):
        self._raw = raw
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data) -> int:
        self.sha256.update(data)
        self.size += len(data)
        return self._raw.write(data)

    def flush(self) -> None:
        self._raw.flush()


class ShardWriter:
    """Write records to ``path`` atomically; ``commit()`` makes shard and index appear.

    Use as a context manager: leaving the block by an exception removes the temporary files.
    """

    def __init__(self, path: str | os.PathLike, compression: str = "none"):
        self.path = Path(path)
        self._tmp = temp_name(self.path)
        self._raw = open(self._tmp, "wb", buffering=1 << 20)  # noqa: SIM115 - closed in commit/abort
        self._hashing = _HashingFile(self._raw)
        self._out = open_compressed_writer(self._hashing, compression)  # type: ignore[arg-type]
        self._index: list[str] = []
        self._offset = 0

    def write(self, data: bytes) -> None:
        """Append one record (``data`` is a serialised Example)."""
        header, footer = frame_parts(data)
        self._out.write(header)
        self._out.write(data)
        self._out.write(footer)
        size = len(data) + OVERHEAD
        self._index.append(f"{self._offset} {size}\n")
        self._offset += size

    @property
    def num_records(self) -> int:
        return len(self._index)

    def commit(self) -> ShardInfo:
        """Finish the file, write the index, then rename the shard to its final name."""
        if self._out is not self._hashing:
            self._out.close()  # flushes the compressor's tail into the hashing file
        self._raw.close()
        index_path = self.path.with_name(self.path.name + INDEX_SUFFIX)
        index_tmp = temp_name(index_path)
        with open(index_tmp, "w", encoding="ascii") as f:
            f.writelines(self._index)
        os.replace(index_tmp, index_path)
        os.replace(self._tmp, self.path)
        return ShardInfo(
            self.path.name, len(self._index), self._hashing.size, self._hashing.sha256.hexdigest()
        )

    def abort(self) -> None:
        """Drop the unfinished shard."""
        if not self._raw.closed:
            self._raw.close()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()
