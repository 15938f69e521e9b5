"""The conversion engine: runs shard jobs in parallel, resumably, with a progress bar.

Data flow: plan -> **jobs -> worker processes** (each reads its samples, builds Examples
and writes whole shards) -> results -> manifest. Sources (image folder, MNIST) provide a
picklable per-shard object with an ``items()`` generator; the engine knows nothing else
about them.

Resume: the first run writes ``.tfrecord-tools-work/plan.json`` (a fingerprint of source
and options); every finished shard leaves a small state file there. A rerun with the same
fingerprint keeps the finished shards and writes only the rest.
"""

from __future__ import annotations

import gc
import hashlib
import json
import multiprocessing as mp
import os
import shutil
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .errors import ConversionError
from .writer import ShardInfo, ShardWriter

WORK_DIR = ".tfrecord-tools-work"
_PROGRESS_EVERY = 0.2  # seconds between progress messages from a worker


@dataclass(frozen=True, slots=True)
class Item:
    """One sample as a source yields it: a serialised Example (in parts, written back to back
    without copying), or the reason it was skipped; or a block of whole Examples of one
    format and kind (``records``), for sources of many small images."""

    example: tuple[bytes, ...] | None = None
    image_format: str = ""
    kind: str = ""
    converted_from: str | None = None
    source_bytes: int = 0  # of all the samples the item stands for
    skipped: tuple[str, str] | None = None  # (path, reason)
    records: Sequence[bytes] | None = None
    shape: tuple[int, int, int] | None = None  # (height, width, channels) of the image(s)

    @property
    def count(self) -> int:
        return 1 if self.records is None else len(self.records)


class ShardSource(Protocol):
    def __len__(self) -> int: ...  # samples in the shard

    def items(self) -> Iterator[Item]: ...


@dataclass(frozen=True)
class Job:
    filename: str
    split: str
    out_dir: str
    compression: str
    source: Any  # a ShardSource; picklable


@dataclass
class ShardResult:
    info: ShardInfo
    split: str
    skipped: list[tuple[str, str]] = field(default_factory=list)
    formats: dict[str, int] = field(default_factory=dict)
    kinds: dict[str, int] = field(default_factory=dict)
    converted_from: dict[str, int] = field(default_factory=dict)
    source_bytes: int = 0
    # distinct (height, width, channels) of the shard's images, up to two (two: mixed);
    # None: not recorded (a shard finished by an older version)
    shapes: list[list[int]] | None = None

    def to_json(self) -> dict:
        data = asdict(self)
        data["skipped"] = [list(s) for s in self.skipped]
        return data

    @classmethod
    def from_json(cls, data: dict) -> ShardResult:
        data = dict(data)
        data["info"] = ShardInfo(**data["info"])
        data["skipped"] = [tuple(s) for s in data["skipped"]]
        return cls(**data)


# --- worker side -------------------------------------------------------------------------

_progress_queue: Any = None


def _init_worker(progress_queue) -> None:
    global _progress_queue
    _progress_queue = progress_queue


def run_job(job: Job, report: Callable[[int, int], None] | None = None) -> ShardResult:
    """Write one shard. ``report(images, bytes)`` is called now and then with increments."""
    if report is None:
        report = _queue_report
    out_dir = Path(job.out_dir)
    formats: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    converted: Counter[str] = Counter()
    skipped: list[tuple[str, str]] = []
    source_bytes = pending_n = pending_bytes = 0
    shapes: list[list[int]] = []
    last = time.monotonic()
    with ShardWriter(out_dir / job.filename, job.compression) as writer:
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
                source_bytes += item.source_bytes
                if len(shapes) < 2 and (shape := list(item.shape or ())) not in shapes:
                    shapes.append(shape)  # [] stands for an unknown shape
            if time.monotonic() - last >= _PROGRESS_EVERY:
                report(pending_n, pending_bytes)
                pending_n = pending_bytes = 0
                last = time.monotonic()
        info = writer.commit()
    report(pending_n, pending_bytes)
    result = ShardResult(
        info, job.split, skipped, dict(formats), dict(kinds), dict(converted), source_bytes, shapes
    )
    state = out_dir / WORK_DIR / f"{job.filename}.json"
    _write_json_atomic(state, result.to_json())
    return result


def _queue_report(images: int, nbytes: int) -> None:
    if _progress_queue is not None and images:
        _progress_queue.put((images, nbytes))


# --- parent side -------------------------------------------------------------------------


def _write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    os.replace(tmp, path)


def fingerprint(parts: Any) -> str:
    """A stable digest of whatever identifies a conversion (source listing + options)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def prepare_out_dir(
    out_dir: Path, name: str, plan_digest: str, *, overwrite: bool, manifest_name: str
) -> dict[str, ShardResult]:
    """Make ``out_dir`` ready; return the shards a previous run of the same plan finished.

    A finished dataset is only replaced with ``overwrite``. A different unfinished plan's
    shards of the same name are removed, as are temporary files of interrupted writes.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = out_dir / manifest_name
    work = out_dir / WORK_DIR
    if manifest.exists():
        if not overwrite:
            raise ConversionError(
                f"{out_dir} already holds a finished conversion ({manifest_name}); "
                "pass --overwrite to replace it"
            )
        manifest.unlink()
        shutil.rmtree(work, ignore_errors=True)
    for tmp in out_dir.glob(".*.tmp-*"):
        tmp.unlink(missing_ok=True)
    plan_file = work / "plan.json"
    done: dict[str, ShardResult] = {}
    if plan_file.exists() and json.loads(plan_file.read_text()).get("digest") == plan_digest:
        for state in work.glob("*.json"):
            if state.name == "plan.json":
                continue
            result = ShardResult.from_json(json.loads(state.read_text(encoding="utf-8")))
            shard = out_dir / result.info.file
            if shard.exists() and shard.stat().st_size == result.info.num_bytes:
                done[result.info.file] = result
        return done
    shutil.rmtree(work, ignore_errors=True)
    for stale in out_dir.glob(f"{name}-*.tfrecord-*"):
        stale.unlink()
    work.mkdir()
    _write_json_atomic(plan_file, {"digest": plan_digest})
    return done


def finish_out_dir(out_dir: Path) -> None:
    shutil.rmtree(out_dir / WORK_DIR, ignore_errors=True)


def run_jobs(
    jobs: Sequence[Job], *, workers: int, total_images: int, quiet: bool, desc: str = "converting"
) -> list[ShardResult]:
    """Run every job, ``workers`` processes at once (in this process when 1)."""
    bar = None if quiet else _progress_bar(total_images, desc)  # tqdm is not even imported
    start = time.monotonic()
    seen_bytes = 0

    def advance(images: int, nbytes: int) -> None:
        nonlocal seen_bytes
        if bar is None:
            return
        seen_bytes += nbytes
        bar.update(images)
        elapsed = max(time.monotonic() - start, 1e-9)
        bar.set_postfix_str(f"{seen_bytes / elapsed / 1e6:.1f} MB/s", refresh=False)

    try:
        if workers <= 1 or len(jobs) <= 1:
            return [run_job(job, advance) for job in jobs]
        return _run_pool(jobs, min(workers, len(jobs)), advance)
    finally:
        if bar is not None:
            bar.close()


def _progress_bar(total_images: int, desc: str):
    from tqdm import tqdm

    return tqdm(
        total=total_images,
        unit="img",
        unit_scale=True,
        desc=desc,
        file=sys.stderr,
        smoothing=0.1,
        dynamic_ncols=True,
    )


def _job_size(job: Job) -> int:
    return len(job.source)


def _forks() -> bool:
    # fork is cheapest, but forking a process that has started TensorFlow's threads is
    # unsafe; a fresh interpreter is used then.
    return sys.platform == "linux" and "tensorflow" not in sys.modules


def _mp_context():
    if _forks():
        return mp.get_context("fork")
    return mp.get_context("forkserver" if sys.platform != "win32" else "spawn")


# Large read-only inputs (MNIST's pixel arrays) that forked workers inherit instead of
# receiving them pickled through a pipe.
_SHARED: dict[str, Any] = {}


def share(key: str, value: Any) -> bool:
    """Offer ``value`` to the workers of the next :func:`run_jobs` without pickling it.
    Returns False when workers will not inherit it (no fork here): pass it in the job."""
    if not _forks():
        return False
    _SHARED[key] = value
    return True


def shared(key: str) -> Any:
    """A value given to :func:`share` in the parent process."""
    return _SHARED[key]


def unshare(key: str) -> None:
    _SHARED.pop(key, None)


def _run_pool(jobs: Sequence[Job], workers: int, advance) -> list[ShardResult]:
    ctx = _mp_context()
    progress = ctx.Queue()

    def pump() -> None:  # until the None put after the pool's shut down: nothing is lost
        for message in iter(progress.get, None):
            advance(*message)

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    pool = ProcessPoolExecutor(
        workers, mp_context=ctx, initializer=_init_worker, initargs=(progress,)
    )
    # forked workers' collections must not touch (and so copy) the parent's objects;
    # a caller's own gc.freeze() is left as it was
    freeze = ctx.get_start_method() == "fork" and gc.get_freeze_count() == 0
    if freeze:
        gc.freeze()
    try:
        # largest first: the pool's workers then finish at about the same time
        futures = [pool.submit(run_job, job) for job in sorted(jobs, key=_job_size, reverse=True)]
        _done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        for future in futures:
            if future.done() and future.exception() is not None:
                pool.shutdown(wait=True, cancel_futures=True)
                raise future.exception()  # type: ignore[misc]
        return [f.result() for f in futures]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        if freeze:
            gc.unfreeze()
        progress.put(None)  # the workers have exited: their increments are ahead of it
        thread.join(timeout=10)  # a worker killed while writing to the queue can leave
        # its lock held; the pump is a daemon thread and must not hang the conversion
        progress.close()
