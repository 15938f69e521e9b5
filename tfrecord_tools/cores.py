"""Which cores this process may use: the default for workers, threads and benchmarks."""

from __future__ import annotations

import os


def usable_cpus() -> list[int]:
    """The CPUs this process may run on (CPU affinity), sorted."""
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return list(range(os.cpu_count() or 1))


def usable_cores() -> int:
    """How many cores this process may run on, not all the machine has."""
    return len(usable_cpus())
