"""Shard jobs: what a source yields per sample, the job that writes one shard, and what
the job reports back.

Data flow: plan -> **Job** (a shard's file name + a picklable source of samples) ->
**run_job** in a worker (reads samples, writes the shard through ``format.writer``) ->
**ShardResult** -> resume state + summary. Both engines (``local``, ``beam``) run these jobs;
sources (image folder, MNIST) provide a per-shard object with an ``items()`` generator.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .. import storage
from ..errors import ConversionError
from ..format.manifest import ShardEntry
from ..format.naming import WORK_DIR
from ..format.writer import ShardWriter
from ..storage import time_limit
from .outdir import publish_shard, shown, staging
from .sources import ShardSource

_PROGRESS_EVERY = 0.2  # seconds between progress messages from a worker


@dataclass(frozen=True)
class Job:
    filename: str
    split: str
    out_dir: str  # a local path or a URL (the worker uploads its shard there)
    compression: str
    source: ShardSource  # picklable
    #: seconds a storage request may go without progress (``storage.fs.time_limit``); None:
    #: the worker's own default (``$TFRECORD_TOOLS_STORAGE_TIMEOUT`` or 60)
    storage_timeout: float | None = None


@dataclass
class ShardResult:
    info: ShardEntry
    split: str
    skipped: list[tuple[str, str]] = field(default_factory=list)
    formats: dict[str, int] = field(default_factory=dict)
    kinds: dict[str, int] = field(default_factory=dict)
    converted_from: dict[str, int] = field(default_factory=dict)
    source_bytes: int = 0
    # distinct (height, width, channels) of the shard's images, up to two (two: mixed);
    # None: not recorded (a shard finished by an older version)
    shapes: list[list[int]] | None = None
    # records per EXIF orientation other than 1 ({"6": 3}); left out of the JSON when empty,
    # so the state files of shards without any (and of older versions) keep their bytes
    orientations: dict[str, int] = field(default_factory=dict)
    # images --max-size re-encoded: {"resized": n, "bytes_before": b, "bytes_after": a}; left
    # out of the JSON when empty, like orientations
    resized: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict:
        data = asdict(self)
        data["skipped"] = [list(s) for s in self.skipped]
        for key in ("orientations", "resized"):
            if not data[key]:
                del data[key]
        return data

    @classmethod
    def from_json(cls, data: dict) -> ShardResult:
        data = dict(data)
        data["info"] = ShardEntry(**data["info"])
        data["skipped"] = [tuple(s) for s in data["skipped"]]
        return cls(**data)


_progress_queue: Any = None


def init_worker(progress_queue) -> None:
    global _progress_queue
    _progress_queue = progress_queue


def run_job(job: Job, report: Callable[[int, int], None] | None = None) -> ShardResult:
    """Write one shard. ``report(images, bytes)`` is called now and then with increments.

    The shard is written in a staging folder (OUT itself when local, a temporary folder
    for a URL OUT) and published under its final name complete, index first; its result
    goes to OUT's work folder last, so a shard with a result is a finished shard."""
    if report is None:
        report = _queue_report
    with time_limit(job.storage_timeout):
        with staging(job.out_dir) as folder:
            result = _write_shard(job, folder, report)
            publish_shard(folder, job.out_dir, job.filename)
        state = storage.join(job.out_dir, WORK_DIR, f"{job.filename}.json")
        storage.write_atomic(state, json.dumps(result.to_json()))
    return result


def _write_shard(job: Job, folder: Path, report: Callable[[int, int], None]) -> ShardResult:
    formats: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    converted: Counter[str] = Counter()
    orientations: Counter[str] = Counter()
    resized: Counter[str] = Counter()
    skipped: list[tuple[str, str]] = []
    source_bytes = pending_n = pending_bytes = 0
    shapes: list[list[int]] = []
    last = time.monotonic()
    target = storage.join(job.out_dir, job.filename)
    with (
        _naming_write_errors(target, folder),
        ShardWriter(folder / job.filename, job.compression) as writer,
    ):
        for item in job.source.items():
            count = item.count
            pending_n += count
            pending_bytes += item.source_bytes
            if item.skipped is not None:
                skipped.append(item.skipped)
            else:
                if item.records is not None:
                    writer.write_many(item.records)
                else:
                    writer.write_parts(item.example)  # type: ignore[arg-type]
                formats[item.image_format] += count
                kinds[item.kind] += count
                if item.converted_from:
                    converted[item.converted_from] += count
                if item.orientation != 1:
                    orientations[str(item.orientation)] += count
                if item.resized is not None:
                    resized.update(
                        resized=1, bytes_before=item.resized[0], bytes_after=item.resized[1]
                    )
                source_bytes += item.source_bytes
                if len(shapes) < 2 and (shape := list(item.shape or ())) not in shapes:
                    shapes.append(shape)  # [] stands for an unknown shape
            if time.monotonic() - last >= _PROGRESS_EVERY:
                report(pending_n, pending_bytes)
                pending_n = pending_bytes = 0
                last = time.monotonic()
        info = writer.commit()
    report(pending_n, pending_bytes)
    return ShardResult(
        info,
        job.split,
        skipped,
        dict(formats),
        dict(kinds),
        dict(converted),
        source_bytes,
        shapes,
        dict(sorted(orientations.items())),
        dict(resized),
    )


@contextlib.contextmanager
def _naming_write_errors(shard: str, folder: Path) -> Iterator[None]:
    """A failed write (a full disk, a lost mount) becomes an error naming the shard (and
    the local staging folder of a URL's shard); the writer has removed its temporary files
    by then."""
    try:
        yield
    except OSError as e:
        where = f" (staged in {folder})" if storage.is_url(shard) else ""
        raise ConversionError(f"{shown(shard)}{where}: cannot write: {e.strerror or e}") from e


def _queue_report(images: int, nbytes: int) -> None:
    if _progress_queue is not None and images:
        _progress_queue.put((images, nbytes))
