"""The local engine: runs shard jobs in worker processes on this machine, with a progress
bar.

Data flow: jobs -> **pool of worker processes** (forked where safe, largest shard first) ->
shard results, with progress messages through a queue to the bar. One worker, or one job,
runs in this process; so do the jobs of a conversion from or to ``memory://`` (the caller
asks for one worker: that file system is the process's own, a worker's writes would be
lost). Workers write their shards to OUT themselves, a URL's by upload (``outdir``).

Workers never outlive the conversion: they end with its process (even when it is killed
with SIGKILL), and Ctrl-C or SIGTERM, or a failed job, stops their shards between samples
(the unfinished shards are dropped; a rerun writes them).
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace

from ..errors import ConversionError
from ..lifetime import end_with_parent
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


# --- in a worker process

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_stopping = False  # Ctrl-C or SIGTERM came: every job from now on stops at its next sample


def _init_worker(progress, parent: int, forked: bool) -> None:
    for signum in _STOP_SIGNALS:
        if signal.getsignal(signum) is not signal.SIG_IGN:  # ignored by the caller: stays so
            signal.signal(signum, _stop)
    end_with_parent(parent)  # even when the conversion is killed with SIGKILL
    init_worker(progress)


def _stop(signum, frame) -> None:
    """Ctrl-C or SIGTERM in a worker. Raising here could land inside the pool's queue code
    and hang it, so the job stops at its next sample instead (:class:`_Interruptible`);
    an idle worker is ended by the pool's shutdown, or by the parent's death."""
    global _stopping
    _stopping = True


def _pool_job(job: Job) -> ShardResult:
    result = run_job(replace(job, source=_Interruptible(job.source)))
    if _stopping:  # stopped after the last sample: the shard is whole, the run is not
        raise KeyboardInterrupt
    return result


class _Interruptible:
    """A job's source that raises KeyboardInterrupt between samples once the worker was
    told to stop: the shard writer then drops the unfinished shard."""

    def __init__(self, source):
        self.source = source

    def __len__(self) -> int:
        return len(self.source)

    def items(self):
        for item in self.source.items():
            if _stopping:
                raise KeyboardInterrupt
            yield item


# --- in the conversion's process


def _job_size(job: Job) -> int:
    return len(job.source)


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Ctrl-C and SIGTERM wait for the end of the block, which must not stop half-way (a
    pool half started or half shut down hangs); workers forked in it inherit the waiting
    handler until they set their own."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {}
    for signum in _STOP_SIGNALS:
        handler = signal.getsignal(signum)
        if handler is not None and handler is not signal.SIG_IGN:
            previous[signum] = handler
            signal.signal(signum, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum in dict.fromkeys(caught):
            signal.raise_signal(signum)  # now handled as it would have been


def _stop_jobs(pool: ProcessPoolExecutor) -> None:
    """Interrupt the workers' jobs (see :func:`_stop`), so the pool shuts down at once."""
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            os.kill(process.pid, signal.SIGINT)


def _run_pool(jobs: Sequence[Job], workers: int, advance) -> list[ShardResult]:
    ctx = mp_context()
    progress = ctx.Queue()

    def pump() -> None:  # until the None put after the pool's shut down: nothing is lost
        for message in iter(progress.get, None):
            advance(*message)

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    pool = ProcessPoolExecutor(
        workers,
        mp_context=ctx,
        initializer=_init_worker,
        initargs=(progress, os.getpid(), ctx.get_start_method() == "fork"),
    )
    # forked workers' collections must not touch (and so copy) the parent's objects;
    # a caller's own gc.freeze() is left as it was
    freeze = ctx.get_start_method() == "fork" and gc.get_freeze_count() == 0
    if freeze:
        gc.freeze()
    try:
        # largest first: the pool's workers then finish at about the same time
        with _signals_deferred():  # the pool forks its workers in submit()
            ordered = sorted(jobs, key=_job_size, reverse=True)
            futures = [pool.submit(_pool_job, job) for job in ordered]
        try:
            wait(futures, return_when=FIRST_EXCEPTION)
        except BaseException:  # Ctrl-C, SIGTERM: the shards being written are dropped
            _stop_jobs(pool)
            raise
        for future in futures:
            if future.done() and (error := future.exception()) is not None:
                _stop_jobs(pool)  # the conversion fails: the other shards need not finish
                if isinstance(error, BrokenProcessPool):  # a worker killed (out of memory?)
                    raise ConversionError(
                        f"a worker process ended unexpectedly ({error}; out of memory?)"
                    ) from error
                raise error
        return [f.result() for f in futures]
    finally:
        with _signals_deferred():
            pool.shutdown(wait=True, cancel_futures=True)
        if freeze:
            gc.unfreeze()
        progress.put(None)  # the workers have exited: their increments are ahead of it
        thread.join(timeout=10)  # a worker killed while writing to the queue can leave
        # its lock held; the pump is a daemon thread and must not hang the conversion
        progress.close()
