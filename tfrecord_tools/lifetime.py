"""Child processes end with their parent, even when it is killed with SIGKILL: conversion
workers, benchmark cells, tf.data service servers and sample makers. An orphan would run on
for minutes, holding cores, ports and the caller's terminal. The ground floor: it imports
nothing of the package, so every stage uses the same rule.

    parent: child_env() -> child: end_with_parent()       a process started by exec
    pool initializer: end_with_parent(parent_pid)         a forked or fork-served worker
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

__all__ = ["PARENT_ENV", "child_env", "end_with_parent"]

#: Set by a parent for a child process that must end with it (:func:`end_with_parent`).
PARENT_ENV = "TFRECORD_TOOLS_PARENT_PID"
_PR_SET_PDEATHSIG = 1  # linux/prctl.h
_WATCH_EVERY = 0.5  # seconds between looks at the parent where prctl cannot be used


def child_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: this process's) for a child that calls :func:`end_with_parent`."""
    return {**(os.environ if env is None else env), PARENT_ENV: str(os.getpid())}


def end_with_parent(parent: int | None = None) -> None:
    """End this process when ``parent`` dies (default: the pid a parent put in
    :data:`PARENT_ENV` with :func:`child_env`; neither: nothing to do).

    When ``parent`` is this process's own parent, on Linux the kernel sends SIGKILL
    (``PR_SET_PDEATHSIG``; it fires when the parent's thread that started this process
    ends, so start children from a thread that lives as long as they should). A parent that
    died before that was armed is seen at once. Elsewhere, or when a fork server started
    this process (its parent is the server), a daemon thread looks every half second. Not on
    Windows, where ``os.kill(pid, 0)`` would kill the process."""
    if parent is None:
        value = os.environ.pop(PARENT_ENV, "")
        if not value.isdigit():
            return
        parent = int(value)
    if sys.platform == "win32":
        return
    direct = os.getppid() == parent
    if direct and sys.platform == "linux":
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            armed = libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
        except (OSError, AttributeError):
            armed = False
        if os.getppid() != parent:  # re-parented: it died before the signal was armed
            os._exit(1)
        if armed:
            return
    if not direct and not _alive(parent):
        os._exit(1)
    threading.Thread(target=_watch, args=(parent, direct), daemon=True).start()


def _watch(parent: int, direct: bool) -> None:
    while os.getppid() == parent if direct else _alive(parent):
        time.sleep(_WATCH_EVERY)
    os._exit(1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive (or its pid reused by another user's process)
        return True
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    """Dead, not yet reaped by its own parent."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] in (b"Z", b"X")
    except (OSError, IndexError):
        return False
