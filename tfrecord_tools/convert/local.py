"""The local engine: runs shard jobs in worker processes on this machine, with a progress
bar.

Data flow: jobs -> **pool of worker processes** (forked where safe, largest shard first) ->
shard results, with progress messages through a queue to the bar. One worker, or one job,
runs in this process.
"""

from __future__ import annotations

import gc
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait

from .inherit import mp_context
from .jobs import Job, ShardResult, init_worker, run_job

__all__ = ["run_jobs"]


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


def _run_pool(jobs: Sequence[Job], workers: int, advance) -> list[ShardResult]:
    ctx = mp_context()
    progress = ctx.Queue()

    def pump() -> None:  # until the None put after the pool's shut down: nothing is lost
        for message in iter(progress.get, None):
            advance(*message)

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    pool = ProcessPoolExecutor(
        workers, mp_context=ctx, initializer=init_worker, initargs=(progress,)
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
