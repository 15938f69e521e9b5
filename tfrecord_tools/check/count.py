"""Counting records without reading them: manifest first, then ``.idx`` files, and only
when asked, a walk over record headers.

Data flow: locate -> **count** (manifest entry | TFDS shard length | index line count |
header scan). FORMAT.md promises that counting never needs a scan: with a manifest, a TFDS
``dataset_info.json`` or an index, no shard byte is read at all. ``scan=True`` covers
shards that have neither; on plain files it reads 12 bytes
per record and seeks over the payloads. In a bucket the sizes come from the folder's one
listing and the counts from one read of the manifest: no request per shard; ``scan`` there
streams each object (large ranged reads), as headers one by one would cost a request each.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from ..dataset import Shard, resolve
from ..errors import Damage, TFRecordToolsError
from ..format.framing import iter_headers
from ..format.scan import RecordScanner

__all__ = ["CountReport", "ShardCount", "count_records", "count_shard"]

SOURCES = ("manifest", "dataset_info", "index", "scan")


@dataclass(frozen=True)
class ShardCount:
    """One shard's record count and where it came from (``manifest``, ``dataset_info``
    (TFDS's shard lengths), ``index`` or ``scan``)."""

    file: str
    split: str | None
    records: int
    source: str


@dataclass(frozen=True)
class CountReport:
    shards: list[ShardCount]

    @property
    def total(self) -> int:
        return sum(s.records for s in self.shards)

    @property
    def by_split(self) -> dict[str, int]:
        """Records per split (``"-"`` for shards outside a manifest)."""
        out: dict[str, int] = {}
        for s in self.shards:
            out[s.split or "-"] = out.get(s.split or "-", 0) + s.records
        return out

    def format_text(self) -> str:
        lines = []
        for split, records in self.by_split.items():
            shards = [s for s in self.shards if (s.split or "-") == split]
            sources = sorted({s.source for s in shards}, key=SOURCES.index)
            label = "files" if split == "-" else split
            lines.append(
                f"{label}: {records:,} records in {len(shards)} shard(s) "
                f"(from {', '.join(sources)})"
            )
        if len(lines) > 1:
            lines.append(f"total: {self.total:,} records")
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {
            "total": self.total,
            "splits": self.by_split,
            "shards": [asdict(s) for s in self.shards],
        }


def count_shard(ref: Shard, *, scan: bool = False) -> ShardCount:
    """Count one shard: its manifest entry (or TFDS shard length), else its ``.idx`` file,
    else (``scan``) its record headers; raises TFRecordToolsError when none of these is
    available."""
    if ref.expected is not None:
        _check_listed_file(ref)
        return ShardCount(ref.name, ref.split, ref.expected.num_examples, "manifest")
    if ref.tfds_records is not None:
        _check_listed_file(ref)
        return ShardCount(ref.name, ref.split, ref.tfds_records, "dataset_info")
    if ref.has_index():
        try:
            return ShardCount(ref.name, ref.split, ref.count_index(), "index")
        except FileNotFoundError:  # listed a moment ago (a bucket's): gone since
            pass
    if not scan:
        raise TFRecordToolsError(
            f"{ref.shown}: no manifest entry and no {ref.name}.idx; pass --scan to count by "
            "reading record headers, or run `tfrecord-tools index` once"
        )
    try:
        records = (
            _scan_count(ref)
            if ref.is_url
            else sum(1 for _ in iter_headers(ref.path, ref.compression))
        )
    except OSError as e:
        raise TFRecordToolsError(f"{ref.shown}: cannot read: {e.strerror or e}") from e
    return ShardCount(ref.name, ref.split, records, "scan")


def _scan_count(ref: Shard) -> int:
    """Records of a shard at a URL: its stream read once (headers checked, as
    ``iter_headers``; data CRCs not), an error at the first damage."""
    if not ref.exists():
        raise FileNotFoundError(2, "no such file or object", ref.shown)
    records = 0
    with RecordScanner(ref.path, ref.compression, check_data=False, size=ref.size) as scanner:
        for item in scanner.batches():
            if isinstance(item, Damage):
                raise item.error(ref.shown)
            records += len(item)
    return records


def _check_listed_file(ref: Shard) -> None:
    """A shard the manifest lists must be there with the manifest's size: a stat, no read,
    so a count never vouches for a shard that is gone or cut short."""
    try:
        size = ref.file_size()
    except OSError as e:
        raise TFRecordToolsError(
            f"{ref.shown}: listed in the {'manifest' if ref.expected else 'dataset_info.json'}, "
            f"but {e.strerror or 'cannot be read'}"
        ) from None
    expected = ref.expected.num_bytes if ref.expected is not None else None
    if expected is not None and size != expected:
        raise TFRecordToolsError(
            f"{ref.shown}: the manifest says {expected} bytes, the file has {size}; "
            "run `tfrecord-tools verify` on the dataset"
        )


def count_records(
    paths: str | os.PathLike | Sequence[str | os.PathLike], *, scan: bool = False
) -> CountReport:
    """Count the records of a dataset folder or shard files without reading payloads."""
    return CountReport([count_shard(ref, scan=scan) for ref in resolve(paths).shards])
