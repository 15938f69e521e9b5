"""The page cache: evict a cell's files for a cold run, and check what stayed resident.

Data flow: a cell's file list -> **evict** (``posix_fadvise(DONTNEED)`` per file, after an
``fsync`` so that freshly written pages are clean and can go) -> **check** with
``mincore`` over a read-only mapping (mapping a file does not read it). Eviction is a
request the kernel may ignore: files on tmpfs live in memory, other processes may hold the
pages, so the check is what a report believes.

Only file data pages are evicted; directory entries and inodes stay cached, which favours
folders of many small files a little even in "cold" cells.

Standard library only (ctypes for ``mmap``/``mincore``); Linux gives full answers, other
systems report "not checked".
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from collections.abc import Sequence
from dataclasses import dataclass

#: A cold cell counts as evicted when at most this fraction of its pages stayed resident.
EVICTED_BELOW = 0.05
#: Residency is checked on at most this many files, evenly spread over the list.
CHECK_FILES = 4000

_PROT_READ, _MAP_SHARED = 0x1, 0x01
_MAP_FAILED = ctypes.c_void_p(-1).value


@dataclass(frozen=True)
class Eviction:
    """The outcome of :func:`evict_files`."""

    files: int
    failed: int  # files that could not be opened or advised
    resident: float | None  # fraction of pages still cached after; None: not checked
    ok: bool | None  # None: could not tell
    message: str

    def to_json(self) -> dict:
        return {
            "files": self.files,
            "failed": self.failed,
            "resident_after": self.resident,
            "ok": self.ok,
            "message": self.message,
        }


def evict_files(paths: Sequence[str]) -> Eviction:
    """Drop ``paths`` from the page cache and say whether it worked."""
    if not hasattr(os, "posix_fadvise"):
        return Eviction(len(paths), len(paths), None, False, "posix_fadvise is not available")
    failed = 0
    for path in paths:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            failed += 1
            continue
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        except OSError:
            failed += 1
        finally:
            os.close(fd)
    resident = resident_fraction(paths)
    if resident is None:
        ok, message = None, "evicted, but residency could not be checked (no mincore)"
    elif resident <= EVICTED_BELOW:
        ok, message = True, f"evicted ({resident:.1%} of pages still cached)"
    else:
        ok = False
        fs = filesystem_type(paths[0]) if paths else "?"
        message = (
            f"eviction did not work: {resident:.0%} of pages still cached "
            f"(filesystem {fs}; tmpfs and some overlay filesystems keep files in memory)"
        )
    if failed:
        message += f"; {failed} file(s) could not be advised"
        ok = False
    return Eviction(len(paths), failed, resident, ok, message)


def resident_fraction(paths: Sequence[str]) -> float | None:
    """Fraction of the pages of ``paths`` (or an even sample of them) in the page cache;
    ``None`` when ``mincore`` is not available."""
    libc = _libc()
    if libc is None:
        return None
    step = max(1, len(paths) // CHECK_FILES)
    cached = total = 0
    for path in paths[::step]:
        pages = _resident_pages(libc, path)
        if pages is None:
            continue
        cached += pages[0]
        total += pages[1]
    return cached / total if total else 0.0


def _resident_pages(libc, path: str) -> tuple[int, int] | None:
    """(resident, total) pages of one file; None if it cannot be mapped."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        size = os.fstat(fd).st_size
        if size == 0:
            return 0, 0
        addr = libc.mmap(None, size, _PROT_READ, _MAP_SHARED, fd, 0)
        if addr is None or addr == _MAP_FAILED:
            return None
        try:
            page = os.sysconf("SC_PAGE_SIZE")
            count = (size + page - 1) // page
            vec = (ctypes.c_ubyte * count)()
            if libc.mincore(ctypes.c_void_p(addr), size, vec) != 0:
                return None
            return sum(v & 1 for v in vec), count
        finally:
            libc.munmap(ctypes.c_void_p(addr), size)
    finally:
        os.close(fd)


_LIBC: list = []


def _libc():
    """libc with mmap/mincore/munmap typed, or None where there is no mincore."""
    if not _LIBC:
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
            libc.mmap.restype = ctypes.c_void_p
            libc.mmap.argtypes = [
                ctypes.c_void_p,
                ctypes.c_size_t,
                ctypes.c_int,
                ctypes.c_int,
                ctypes.c_int,
                ctypes.c_long,
            ]
            libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
            libc.mincore.argtypes = [
                ctypes.c_void_p,
                ctypes.c_size_t,
                ctypes.POINTER(ctypes.c_ubyte),
            ]
            _LIBC.append(libc)
        except (OSError, AttributeError):
            _LIBC.append(None)
    return _LIBC[0]


def filesystem_type(path: str | os.PathLike) -> str:
    """The type of the filesystem holding ``path`` (``ext4``, ``tmpfs``...), from
    ``/proc/mounts``; ``unknown`` elsewhere; a URL's scheme (``s3``) for a bucket."""
    from ..storage import scheme

    if scheme(path):
        return f"{scheme(path)} (object storage)"
    try:
        with open("/proc/mounts", encoding="utf-8") as f:
            mounts = [line.split()[1:3] for line in f if len(line.split()) > 2]
    except OSError:
        return "unknown"
    target = os.path.realpath(path)
    best, kind = "", "unknown"
    for mount_point, fs in mounts:
        mount_point = mount_point.replace("\\040", " ")
        inside = target == mount_point or target.startswith(mount_point.rstrip("/") + "/")
        if inside and len(mount_point) >= len(best):
            best, kind = mount_point, fs
    return kind
