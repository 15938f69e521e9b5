"""Where a conversion writes: OUT as a local folder or a bucket URL (``gs://``, ``s3://``,
``memory://``, any fsspec URL), through the storage seam (``storage``).

Data flow: shard job -> **staging folder** (OUT itself when local; a local temporary folder
for a URL) -> the shard writer's finished files -> **published** under their final names.
Locally the shard writer's rename is the publication. For a URL every finished file is
uploaded whole (an object exists only once its upload completes), in the order the local
writer makes them appear: the index, then the shard; labels, TFDS metadata, and the
manifest last (:func:`write`, each file whole).

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

from .. import storage
from ..errors import ConversionError
from ..format.index import index_path

__all__ = [
    "check_bucket",
    "location",
    "per_process",
    "publish",
    "publish_shard",
    "remove",
    "shown",
    "staging",
    "write",
    "writing",
]


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


@contextlib.contextmanager
def writing(out: str | os.PathLike, name: str) -> Iterator[None]:
    """A failure (a full disk) to write the file ``name`` of OUT in the block names it."""
    try:
        yield
    except OSError as e:
        target = shown(storage.join(out, name))
        raise ConversionError(f"{target}: cannot write: {e.strerror or e}") from e


def publish(out: str | os.PathLike, name: str, write: Callable[[Path], object]) -> None:
    """Write the file ``name`` of OUT with a local writer (``write(folder)`` writes it into
    ``folder``, atomically): into OUT itself when local; for a URL into a temporary folder,
    then uploaded whole. A failure (a full disk) names the file."""
    with writing(out, name):
        if not storage.is_url(out):
            write(Path(storage.local(out)))
            return
        with tempfile.TemporaryDirectory(prefix="tfrecord-tools-stage-") as folder:
            write(Path(folder))
            storage.put_file(Path(folder) / name, storage.join(out, name))


def write(out: str | os.PathLike, name: str, text: str) -> None:
    """Write the text file ``name`` of OUT whole (see :func:`publish`)."""
    publish(out, name, lambda folder: storage.write_atomic(folder / name, text))


#: Schemes whose first path component is a bucket, which must exist before anything is
#: written there (the other file systems make their folders as they go).
_BUCKET_SCHEMES = frozenset({"gs", "gcs", "s3", "s3a"})


def check_bucket(out: str | os.PathLike) -> None:
    """OUT in a bucket that does not exist (deleted since the last run, a typo) is an error
    that says so, before any state file of the conversion is looked for or written."""
    if storage.scheme(out) not in _BUCKET_SCHEMES:
        return
    head, rest = os.fspath(out).split("://", 1)
    bucket = f"{head}://{rest.split('/', 1)[0]}"
    if not storage.is_dir(bucket):
        raise ConversionError(
            f"{shown(bucket)}: no such bucket (OUT is {shown(out)}); create it first, or "
            "check the name"
        )


def remove(out: str | os.PathLike, names: Iterable[str]) -> None:
    """Delete the files ``names`` of OUT that are there."""
    for name in names:
        storage.delete(storage.join(out, name))
