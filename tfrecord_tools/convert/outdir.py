"""Where a conversion writes: OUT as a local folder or a bucket URL (``gs://``, ``s3://``,
``memory://``, any fsspec URL), through the storage seam (``format.storage``).

Data flow: shard job -> **staging folder** (OUT itself when local; a local temporary folder
for a URL) -> the shard writer's finished files -> **published** under their final names.
Locally the shard writer's rename is the publication. For a URL every finished file is
uploaded whole (an object exists only once its upload completes), in the order the local
writer makes them appear: the index, then the shard; labels, TFDS metadata, and the
manifest last.

``memory://`` is fsspec's per-process file system: what another process writes there is
lost to this one, so a conversion from or to ``memory://`` runs its jobs in the calling
process (:func:`per_process`).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from ..format import storage
from ..format.index import index_path

__all__ = ["location", "per_process", "publish", "publish_shard", "shown", "staging"]


def location(out: str | os.PathLike) -> Path | str:
    """OUT as the conversion keeps it: a URL unchanged (never a Path, which would fold its
    ``//``), a local path as a Path."""
    return os.fspath(out) if storage.is_url(out) else Path(storage.local(out))


def shown(path: str | os.PathLike) -> str:
    """A location for messages: URLs without credentials or query strings."""
    return storage.redact(path)


def per_process(*locations: str | os.PathLike | None) -> bool:
    """Whether any location lives in this process's memory (``memory://``): its jobs must
    run here, where the files are visible."""
    return any(loc is not None and storage.scheme(loc) == "memory" for loc in locations)


@contextlib.contextmanager
def staging(out: str | os.PathLike) -> Iterator[Path]:
    """The local folder a shard job writes its files into: OUT itself when local; for a
    URL a temporary folder (under ``TMPDIR``), removed with whatever is left in it."""
    if not storage.is_url(out):
        yield Path(storage.local(out))
        return
    with tempfile.TemporaryDirectory(prefix="tfrecord-tools-stage-") as folder:
        yield Path(folder)


def publish_shard(folder: Path, out: str | os.PathLike, filename: str) -> None:
    """Make a committed shard in ``folder`` (see :func:`staging`) appear in OUT: for a URL
    upload its index, then the shard, each whole; locally the writer's rename did it."""
    if not storage.is_url(out):
        return
    shard = folder / filename
    for path in (index_path(shard), shard):
        storage.put_file(path, storage.join(out, path.name))
        path.unlink()  # the staging copy: not kept on this disk meanwhile


def publish(out: str | os.PathLike, write: Callable[[Path], Iterable[Path]]) -> None:
    """Write files into OUT with a local writer (``write(folder)`` returns what it wrote):
    into OUT itself when local; for a URL into a temporary folder, then uploaded in the
    order written."""
    if not storage.is_url(out):
        write(Path(storage.local(out)))
        return
    with tempfile.TemporaryDirectory(prefix="tfrecord-tools-stage-") as folder:
        for path in list(write(Path(folder))):
            storage.put_file(path, storage.join(out, Path(path).name))


def remove(out: str | os.PathLike, names: Iterable[str]) -> None:
    """Delete the files ``names`` of OUT that are there."""
    for name in names:
        storage.delete(storage.join(out, name))
