"""Atomic writes: a file appears under its final name only when it is complete (FORMAT.md).

Everything that lands in a dataset folder goes through here or through the shard writer,
which uses the same temporary names: write to ``.NAME.tmp-PID`` beside the target, then
``os.replace``. A crash leaves only hidden temporary files, which :func:`remove_temp_files`
clears on the next run.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

_TEMP = re.compile(r"^\.(?P<final>.+)\.tmp-\d+$")


def temp_path(path: str | os.PathLike) -> Path:
    """The hidden temporary sibling of ``path`` that this process writes before renaming."""
    path = Path(path)
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def is_temp_name(filename: str) -> bool:
    """A temporary file left by an interrupted write (:func:`temp_path`)."""
    return _TEMP.match(filename) is not None


def write_atomic(path: str | os.PathLike, data: str | bytes) -> Path:
    """Write ``data`` (text as UTF-8) to ``path`` through a temporary sibling and a rename."""
    path = Path(path)
    with incomplete(path) as tmp:
        if isinstance(data, str):
            tmp.write_text(data, encoding="utf-8")
        else:
            tmp.write_bytes(data)
    return path


@contextlib.contextmanager
def incomplete(path: str | os.PathLike) -> Iterator[Path]:
    """``with incomplete(target) as tmp:`` write ``tmp``; on leaving the block it becomes
    ``target``, or is removed if the block raised."""
    target = Path(path)
    tmp = temp_path(target)
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, target)


def remove_temp_files(folder: str | os.PathLike) -> int:
    """Delete the temporary files interrupted writes left in ``folder``; return how many."""
    removed = 0
    with os.scandir(folder) as entries:
        for entry in entries:
            if is_temp_name(entry.name) and entry.is_file(follow_symlinks=False):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                    removed += 1
    return removed
