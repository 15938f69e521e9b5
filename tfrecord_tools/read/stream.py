"""Records of a shard (or of a run of it) read through the storage seam, in Python: the
reader for URLs TensorFlow cannot open (``records.py`` wires it into tf.data), and for a
first record at a URL (``keys.py``). TensorFlow-free.

Data flow: object -> **8 MiB reads** (``storage.streams.open_stream``) -> [decompression,
``format/compression.py``] -> **record framing** (``format/framing.py``'s layout, every CRC
checked) -> record bytes. Damage raises :class:`RecordError` naming the URL, the record
index and the byte offset (in the uncompressed stream), as ``framing.iter_records`` does for
a local file.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from typing import Any

from .. import storage
from ..format.compression import reader_of
from ..format.framing import iter_records, read_frames

#: Bytes a remote read asks for at once (storage.REMOTE_BLOCK).
REMOTE_BUFFER = storage.REMOTE_BLOCK
# measured (records.py's docstring): of the URL schemes, TensorFlow 2.21 reads only gs://
_TF_SCHEMES = ("gs",)


def tf_opens(path: str | os.PathLike) -> bool:
    """Does TensorFlow open ``path`` itself: a local path, or ``gs://`` with Google's
    endpoints (no ``STORAGE_EMULATOR_HOST``, which TensorFlow's GCS ignores)."""
    name = storage.scheme(path)
    if name == "":
        return True
    return name in _TF_SCHEMES and not os.environ.get("STORAGE_EMULATOR_HOST")


# --------------------------------------------------------------------------- framing


def frames(
    source: Any, where: str, *, index: int = 0, offset: int = 0, size: int | None = None
) -> Iterator[tuple[int, int, bytes]]:
    """(index, offset, data) of each record read from ``source`` (an object with
    ``readinto``: a ``compression.open_source`` source), parsed by
    ``framing.read_frames`` (every CRC checked; damage a :class:`RecordError` naming
    ``where``, the record index and byte offset). ``index``/``offset``: of the first record
    (a run read from the middle of a shard); ``size``: the stream's byte count, when
    known."""
    with reader_of(source) as stream:
        yield from read_frames(stream, where, index=index, offset=offset, size=size)


def shard_records(path: str, compression: str = "none", size: int = -1) -> Iterator[bytes]:
    """Every record of the shard at ``path`` (a URL or a local path): the package's one
    record reader, ``framing.iter_records`` (8 MiB reads, every CRC checked). ``size``: the
    object's byte count when a listing gave it (then no request asks for it), else -1."""
    for record in iter_records(path, compression, size=size if size >= 0 else None):
        yield record.data


def run_records_of(path: str, offset: int, size: int, first: int) -> Iterator[bytes]:
    """The records of the ``size`` bytes at ``offset`` of an uncompressed shard (``first``:
    the index of the first), fetched in one ranged read."""
    data = storage.read_bytes(path, offset, offset + size)
    where = storage.redact(path)
    for _, _, record in frames(io.BytesIO(data), where, index=first, offset=offset, size=size):
        yield record
