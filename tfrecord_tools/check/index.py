"""``tfrecord-tools index``: index files for shards from elsewhere.

Data flow: locate -> scan (every CRC) -> **index lines** (``format.index``) -> ``SHARD.idx``,
written atomically. The converter's shard writer writes the same lines as it writes a shard.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import TFRecordToolsError
from ..format.atomic import write_atomic
from ..format.index import format_index, index_path
from .locate import locate
from .scan import Damage, RecordScanner, Span

__all__ = ["IndexResult", "index_shards"]


@dataclass(frozen=True)
class IndexResult:
    """One index written: the shard, its ``.idx`` file and the number of records."""

    shard: Path
    index: Path
    records: int


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
            write_atomic(target, format_index((s.offset, s.size) for s in spans))
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
