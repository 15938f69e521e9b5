"""Record index files (``SHARD.idx``, FORMAT.md): one ``OFFSET LENGTH`` line per record,
the offset of the record's first byte in the uncompressed stream and its whole length
including framing: the layout of DALI's and the ``tfrecord`` package's ``tfrecord2idx``.

Data flow: shard writer / scan -> **index lines** -> ``SHARD.idx`` -> count, verify, random
access. (MNIST's IDX image files are another thing: ``convert.sources.mnist_idx``.)
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

from . import storage
from .errors import FormatError
from .naming import INDEX_SUFFIX, index_path

__all__ = [
    "INDEX_SUFFIX",
    "count_index",
    "format_index",
    "index_line",
    "index_path",
    "parse_index",
    "read_index",
]

_WELL_FORMED = re.compile(rb"(?:[0-9]+ [0-9]+\n)*(?:[0-9]+ [0-9]+)?")


def index_line(offset: int, size: int) -> str:
    """One record's line: its offset and its whole size including framing."""
    return f"{offset} {size}\n"


def format_index(records: Iterable[tuple[int, int]]) -> str:
    """The ``.idx`` text for ``(offset, size)`` pairs, as the shard writer makes it."""
    return "".join(index_line(offset, size) for offset, size in records)


def read_index(path: str | os.PathLike) -> list[tuple[int, int]]:
    """(offset, length) per line of an ``.idx`` file, local or at a URL (one read); a
    malformed line is an error naming the file and line number."""
    return parse_index(storage.read_bytes(path), storage.redact(path))


def parse_index(data: bytes | str, where: str | os.PathLike) -> list[tuple[int, int]]:
    """(offset, length) per line of the ``.idx`` text ``data`` read from ``where``; a
    malformed line is a FormatError naming ``where`` and the line number."""
    if isinstance(data, str):
        data = data.encode("ascii", "replace")
    if _WELL_FORMED.fullmatch(data):  # the usual case, parsed at C speed
        numbers = list(map(int, data.split()))
        return list(zip(numbers[0::2], numbers[1::2], strict=True))
    entries = []
    for number, raw in enumerate(data.split(b"\n"), 1):
        parts = raw.split()
        if not parts:
            continue
        if len(parts) != 2 or not all(p.isdigit() for p in parts):
            line = raw.decode("ascii", "replace").strip()[:60]
            raise FormatError(
                f"{where}: line {number}: expected 'OFFSET LENGTH' (two decimal numbers), "
                f"found {line!r}"
            )
        entries.append((int(parts[0]), int(parts[1])))
    return entries


def count_index(path: str | os.PathLike) -> int:
    """Records listed in an ``.idx`` file (its non-empty lines), local or at a URL, without
    parsing them."""
    data = storage.read_bytes(path)
    return sum(1 for line in data.split(b"\n") if line.strip())
