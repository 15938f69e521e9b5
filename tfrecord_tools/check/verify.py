"""Verifying shards and datasets: every record's CRCs, clean file ends, the manifest's
counts, sizes and sha256, and the ``.idx`` files.

Data flow: locate -> **verify** (scan each file once: record CRCs + sha256 of the on-disk
bytes, in the same pass while the chunk is in cache) -> report. Files are spread over
threads (CRC32C, sha256 and reads release the GIL), so two cores check two shards at once;
with more cores than files, each file's sha256 runs in a thread of its own.
Every problem names the file and, for records, the 0-based record index and the byte offset
where that record starts in the uncompressed stream; scanning goes on after damage
(see ``scan``), so one run reports every damaged record.

In a bucket, each object is streamed once in large ranged reads (``storage.streams.open_stream``:
8 MiB a request, the next one in flight while this one is checked), CRCs and sha256 in the
same pass over a bounded window: memory does not grow with the object's size. Sizes come
from the folder's listing; problems name the object's URL.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .. import storage
from ..cores import usable_cores
from ..dataset import Dataset, Shard, resolve
from ..errors import Damage, TFRecordToolsError
from ..format.manifest import ShardEntry
from ..format.naming import MANIFEST
from ..format.scan import RecordScanner, Span

__all__ = ["FileReport", "Problem", "VerifyReport", "verify"]


@dataclass(frozen=True)
class Problem:
    """One thing wrong. ``index``/``offset`` are set for problems at a record."""

    file: str
    kind: str
    index: int | None = None
    offset: int | None = None
    detail: str = ""

    def __str__(self) -> str:
        where = f"record {self.index} at byte {self.offset}: " if self.index is not None else ""
        extra = f" ({self.detail})" if self.detail else ""
        return f"{self.file}: {where}{self.kind}{extra}"


@dataclass(frozen=True)
class FileReport:
    """One shard's result: good records, damaged stretches, bytes on disk and in the
    (uncompressed) stream, the sha256 when it was computed, and its problems."""

    file: str
    compression: str
    records: int
    damaged: int
    bytes: int
    stream_bytes: int
    sha256: str | None
    problems: tuple[Problem, ...]


@dataclass(frozen=True)
class VerifyReport:
    files: list[FileReport]
    problems: list[Problem]
    seconds: float
    checked_sha256: bool = True
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def records(self) -> int:
        return sum(f.records for f in self.files)

    @property
    def bytes(self) -> int:
        return sum(f.bytes for f in self.files)

    @property
    def throughput(self) -> float:
        """On-disk bytes verified per second."""
        return self.bytes / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        verdict = (
            "OK"
            if self.ok
            else (
                f"{len(self.problems)} problem(s) in {len({p.file for p in self.problems})} file(s)"
            )
        )
        return (
            f"verified {len(self.files)} file(s), {self.records:,} records, "
            f"{self.bytes / 1e9:.2f} GB in {self.seconds:.2f} s "
            f"({self.throughput / 1e9:.2f} GB/s): {verdict}"
        )


def verify(
    paths: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    workers: int | None = None,
    sha256: bool = True,
) -> VerifyReport:
    """Check a dataset folder or shard files; problems are reported, not raised.

    ``sha256=False`` skips the whole-file hash (record CRCs, counts and sizes are still
    checked): several times faster where sha256 is the bottleneck.
    Raises TFRecordToolsError only when PATH names nothing usable or options are bad.
    """
    if workers is not None and workers < 1:
        raise TFRecordToolsError(f"workers must be at least 1, got {workers}")
    start = time.perf_counter()
    found = _resolve_each(paths)
    refs = [shard for located in found for shard in located.shards]
    order = sorted(range(len(refs)), key=lambda i: -_size(refs[i]))  # big files first
    cores = workers or usable_cores()
    n = min(cores, max(len(refs), 1))
    # More cores than files: hash each file in a thread of its own beside its CRC scan.
    with ThreadPoolExecutor(n) as pool, ThreadPoolExecutor(max(cores - n, 1)) as hashers:
        side = hashers if cores > n else None
        results = pool.map(lambda i: _check_file(refs[i], sha256, side), order)
        done = dict(zip(order, results, strict=True))
    files = [done[i] for i in range(len(refs))]
    problems = [p for f in files for p in f.problems]
    problems += [p for located in found for p in _dataset_problems(located)]
    return VerifyReport(files, problems, time.perf_counter() - start, checked_sha256=sha256)


def _resolve_each(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Dataset]:
    """Several dataset folders are verified each as itself (with its manifest); shard files
    and globs together, as one set."""
    if isinstance(paths, (str, os.PathLike)):
        return [resolve(paths)]
    paths = list(paths)
    folders = [p for p in paths if storage.is_dir(p)]
    if len(paths) < 2 or not folders:
        return [resolve(paths)]
    rest = [p for p in paths if p not in folders]
    return [resolve(folder) for folder in folders] + ([resolve(rest)] if rest else [])


def _size(ref: Shard) -> int:
    try:
        return ref.file_size()
    except OSError:
        return 0


def _dataset_problems(located: Dataset) -> list[Problem]:
    problems = [
        Problem(
            storage.redact(p),
            "not in manifest",
            detail=f"a shard file that {MANIFEST} does not list",
        )
        for p in located.extra
    ]
    if located.manifest is not None:
        for split in located.manifest.splits.values():
            listed = sum(s.num_examples for s in split.shards)
            if split.num_examples != listed:
                problems.append(
                    Problem(
                        located.manifest_file or "",
                        "manifest inconsistent",
                        detail=f"split {split.name!r} says num_examples {split.num_examples}, "
                        f"its shards add up to {listed}",
                    )
                )
    return problems


def _check_file(ref: Shard, want_sha: bool, hashers: ThreadPoolExecutor | None) -> FileReport:
    name = ref.shown
    expected = ref.expected
    if not ref.exists():
        what = "listed in the manifest, not found" if ref.expected else "not found"
        return _unchecked(ref, Problem(name, "missing shard", detail=what))
    want_sha = want_sha and expected is not None and bool(expected.sha256)
    # (a remote object is hashed in the pass: a side hasher would download it twice)
    side = (
        hashers.submit(_file_sha256, ref.path) if want_sha and hashers and not ref.is_url else None
    )
    sha = hashlib.sha256() if want_sha and side is None else None  # hashed during the scan
    spans: list[Span] = []
    damages: list[Damage] = []
    problems: list[Problem] = []
    try:
        with RecordScanner(
            ref.path,
            ref.compression,
            on_raw=sha.update if sha is not None else None,
            size=ref.size,
        ) as scanner:
            for item in scanner.batches():
                if isinstance(item, Damage):
                    damages.append(item)
                else:
                    spans.extend(item)
            raw_size, stream_size = scanner.raw_size, scanner.stream_size
        digest = side.result() if side else sha.hexdigest() if sha else None
    except OSError as e:
        return _unchecked(ref, Problem(name, "unreadable", detail=e.strerror or str(e)))
    except storage.StorageError as e:  # a bucket's error (server gone, access denied)
        return _unchecked(ref, Problem(name, "unreadable", detail=str(e)))
    problems += [_damage_problem(name, d, stream_size) for d in damages]
    problems += _manifest_problems(name, expected, raw_size, len(spans), damages, digest)
    if ref.tfds_records is not None and not damages and ref.tfds_records != len(spans):
        problems.append(
            Problem(
                name,
                "count mismatch",
                detail=f"{ref.promised_by} says {ref.tfds_records} records, the file has "
                f"{len(spans)}",
            )
        )
    if ref.has_index():
        problems += _index_problems(name, ref, spans, damages)
    elif expected is not None:  # every shard of a dataset has its index
        problems.append(
            Problem(
                storage.redact(ref.index_file),
                "missing index",
                detail=f"run `tfrecord-tools index {name}` to write it again",
            )
        )
    return FileReport(
        name,
        ref.compression,
        len(spans),
        len(damages),
        raw_size,
        stream_size,
        digest,
        tuple(problems),
    )


def _file_sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _unchecked(ref: Shard, problem: Problem) -> FileReport:
    """A shard that could not be read at all."""
    return FileReport(ref.shown, ref.compression, 0, 0, 0, 0, None, (problem,))


def _damage_problem(name: str, d: Damage, stream_size: int) -> Problem:
    if d.end > d.offset and d.kind != "truncated header":
        after = (
            f"next good record at byte {d.end}"
            if d.end < stream_size
            else "no good record after it"
        )
        detail = f"{d.detail}; {after}" if d.detail else after
    else:
        detail = d.detail
    return Problem(name, d.kind, d.index, d.offset, detail)


def _manifest_problems(
    name: str,
    expected: ShardEntry | None,
    raw_size: int,
    records: int,
    damages: list[Damage],
    digest: str | None,
) -> list[Problem]:
    if expected is None:
        return []
    problems = []
    if expected.num_bytes is not None and expected.num_bytes != raw_size:
        problems.append(
            Problem(
                name,
                "size mismatch",
                detail=f"manifest says {expected.num_bytes} bytes, the file has {raw_size}",
            )
        )
    if digest is not None and digest != expected.sha256:
        problems.append(
            Problem(
                name,
                "sha256 mismatch",
                detail=f"manifest says {(expected.sha256 or '')[:16]}…, "
                f"the file hashes to {digest[:16]}…",
            )
        )
    if not damages and expected.num_examples != records:
        problems.append(
            Problem(
                name,
                "count mismatch",
                detail=f"manifest says {expected.num_examples} records, the file has {records}",
            )
        )
    return problems


def _index_problems(
    name: str, ref: Shard, records: list[Span], damages: list[Damage]
) -> list[Problem]:
    """Compare the ``.idx`` lines with the records found; report the first difference."""
    spans = [(s.offset, s.size) for s in records]
    index = storage.redact(ref.index_file)
    try:
        entries = ref.read_index()
    except storage.StorageError as e:
        return [Problem(index, "bad index", detail=str(e).split(": ", 1)[-1])]
    except TFRecordToolsError as e:
        return [Problem(index, "bad index", detail=str(e).split(": ", 1)[-1])]
    except OSError as e:
        return [Problem(index, "bad index", detail=e.strerror or str(e))]
    if not damages:
        if entries == spans:
            return []
        for i, (entry, span) in enumerate(zip(entries, spans, strict=False)):
            if entry != span:
                return [
                    Problem(
                        index,
                        "index mismatch",
                        i,
                        span[0],
                        detail=f"line {i + 1} says {entry[0]} {entry[1]}, the record "
                        f"is {span[0]} {span[1]}",
                    )
                ]
        i = min(len(entries), len(spans))
        offset = spans[i][0] if i < len(spans) else entries[i][0]
        return [
            Problem(
                index,
                "index mismatch",
                i,
                offset,
                detail=f"the index lists {len(entries)} records, the file has {len(spans)}",
            )
        ]
    # With damage, lines at damaged records are expected to be off: check the rest.
    good = dict(spans)
    for i, (offset, size) in enumerate(entries):
        if good.get(offset) == size or any(
            d.offset <= offset < max(d.end, d.offset + 1) for d in damages
        ):
            continue
        return [
            Problem(
                index,
                "index mismatch",
                i,
                offset,
                detail=f"line {i + 1} says {offset} {size}: no such record",
            )
        ]
    return []
