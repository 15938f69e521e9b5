"""``tfrecord-tools index``: index files for shards from elsewhere.

Data flow: locate -> scan (every CRC) -> **index lines** (``format.index``) -> ``SHARD.idx``,
written atomically. The converter's shard writer writes the same lines as it writes a shard.
A shard in a bucket is streamed (large ranged reads) and its ``.idx`` put beside it in one
upload through the storage seam.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .. import storage
from ..dataset import Shard, resolve
from ..errors import TFRecordToolsError
from ..format.index import format_index
from ..format.scan import Damage, RecordScanner, Span

__all__ = ["IndexResult", "index_shards"]


@dataclass(frozen=True)
class IndexResult:
    """One index written: the shard, its ``.idx`` file and the number of records (a
    ``Path`` locally, a URL without credentials for a bucket's)."""

    shard: Path | str
    index: Path | str
    records: int


def index_shards(paths: Sequence[str | os.PathLike]) -> list[IndexResult]:
    """Write ``SHARD.idx`` for each shard (atomically), checking every record's CRCs.

    A damaged shard gets no index: the error names the first damaged record (run
    ``tfrecord-tools repair`` first). Compression comes from the manifest or the file.
    """
    results = []
    for ref in resolve(paths).shards:
        spans = _good_spans(ref)
        target = ref.index_file
        text = format_index((s.offset, s.size) for s in spans)
        try:
            storage.write_atomic(target, text)
        except OSError as e:
            raise TFRecordToolsError(f"{target.shown}: cannot write the index: {e}") from e
        shard, index = (ref.shown, target.shown) if ref.is_url else (ref.path, Path(target))
        results.append(IndexResult(shard, index, len(spans)))
    return results


def _good_spans(ref: Shard) -> list[Span]:
    spans: list[Span] = []
    if ref.is_url and not ref.exists():
        raise TFRecordToolsError(f"{ref.shown}: cannot read: no such file or object")
    try:
        with RecordScanner(ref.path, ref.compression, size=ref.size) as scanner:
            for item in scanner:
                if isinstance(item, Damage):
                    err = item.error(ref.shown)
                    raise TFRecordToolsError(f"{err}; no index written (repair the shard first)")
                spans.append(item)
    except OSError as e:
        raise TFRecordToolsError(f"{ref.shown}: cannot read: {e.strerror or e}") from e
    return spans
