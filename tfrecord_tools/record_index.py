"""Record index files (``SHARD.idx``): reading them, and writing them for existing shards.

Data flow: shard -> scan -> **index file** (one ``OFFSET LENGTH`` line per record, the
offset in the uncompressed stream, the length including framing: FORMAT.md, the layout of
DALI's and the ``tfrecord`` package's ``tfrecord2idx``). The converter's ShardWriter writes
the same lines while writing a shard; ``tfrecord-tools index`` makes them for shards from
elsewhere. (Not to be confused with ``idx.py``, MNIST's IDX image files.)
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import TFRecordToolsError
from .locate import index_path, locate
from .manifest import write_atomic
from .scan import Damage, RecordScanner, Span

__all__ = ["IndexResult", "count_index", "format_index", "index_shards", "read_index"]

_WELL_FORMED = re.compile(rb"(?:[0-9]+ [0-9]+\n)*(?:[0-9]+ [0-9]+)?")


@dataclass(frozen=True)
class IndexResult:
    """One index written: the shard, its ``.idx`` file and the number of records."""

    shard: Path
    index: Path
    records: int


def format_index(spans: Iterable[Span]) -> str:
    """The ``.idx`` text for records: ``OFFSET LENGTH`` per line, as the writer makes it."""
    return "".join(f"{s.offset} {s.size}\n" for s in spans)


def read_index(path: str | os.PathLike) -> list[tuple[int, int]]:
    """(offset, length) per line of an ``.idx`` file; a malformed line is an error naming
    the file and line number."""
    with open(path, "rb") as f:
        data = f.read()
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
            raise TFRecordToolsError(
                f"{path}: line {number}: expected 'OFFSET LENGTH' (two decimal numbers), "
                f"found {line!r}"
            )
        entries.append((int(parts[0]), int(parts[1])))
    return entries


def count_index(path: str | os.PathLike) -> int:
    """Records listed in an ``.idx`` file (its non-empty lines), without parsing them."""
    with open(path, "rb") as f:
        data = f.read()
    return sum(1 for line in data.split(b"\n") if line.strip())


def index_shards(paths: Sequence[str | os.PathLike]) -> list[IndexResult]:
    """Write ``SHARD.idx`` for each shard (atomically), checking every record's CRCs.

    A damaged shard gets no index: the error names the first damaged record (run
    ``tfrecord-tools repair`` first). Compression comes from the manifest or the file.
    """
    results = []
    for ref in locate(paths).shards:
        spans = _good_spans(ref.path, ref.compression)
        target = index_path(ref.path)
        try:
            write_atomic(target, format_index(spans))
        except OSError as e:
            raise TFRecordToolsError(f"{target}: cannot write the index: {e}") from e
        results.append(IndexResult(ref.path, target, len(spans)))
    return results


def _good_spans(path: Path, compression: str) -> list[Span]:
    spans: list[Span] = []
    try:
        with RecordScanner(path, compression) as scanner:
            for item in scanner:
                if isinstance(item, Damage):
                    err = item.error(path)
                    raise TFRecordToolsError(f"{err}; no index written (repair the shard first)")
                spans.append(item)
    except OSError as e:
        raise TFRecordToolsError(f"{path}: cannot read: {e.strerror or e}") from e
    return spans
