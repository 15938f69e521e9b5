"""Large read-only inputs that forked worker processes inherit instead of receiving them
pickled through a pipe (MNIST's pixel arrays, an image folder's listing).

Data flow: source (parent) -> **share(key, value)** -> fork -> worker's source object ->
**shared(key)**. Where workers are not forked (TensorFlow already started its threads, or
not Linux) ``share`` says so and the source puts its data in the jobs instead.
"""

from __future__ import annotations

import multiprocessing as mp
import sys
from typing import Any

__all__ = ["forks", "mp_context", "share", "shared", "unshare"]


def forks() -> bool:
    # fork is cheapest, but forking a process that has started TensorFlow's threads is
    # unsafe; a fresh interpreter is used then.
    return sys.platform == "linux" and "tensorflow" not in sys.modules


def mp_context():
    if forks():
        return mp.get_context("fork")
    return mp.get_context("forkserver" if sys.platform != "win32" else "spawn")


# Large read-only inputs (MNIST's pixel arrays) that forked workers inherit instead of
# receiving them pickled through a pipe.
_SHARED: dict[str, Any] = {}


def share(key: str, value: Any) -> bool:
    """Offer ``value`` to the workers of the next :func:`run_jobs` without pickling it.
    Returns False when workers will not inherit it (no fork here): pass it in the job."""
    if not forks():
        return False
    _SHARED[key] = value
    return True


def shared(key: str) -> Any:
    """A value given to :func:`share` in the parent process."""
    return _SHARED[key]


def unshare(key: str) -> None:
    _SHARED.pop(key, None)
