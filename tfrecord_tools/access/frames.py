"""Vectorised record framing of a whole shard held in memory (numpy), for sequential reads.

Data flow: shard file -> **whole stream in memory** (decompressed when it must be) ->
records as rows of one 2-D array when every record has the same length (MNIST-like data),
with both CRCs of every record checked -> the batch reader. Anything else (records of
different lengths, damage) is left to ``check.scan.RecordScanner``, which names and skips
damage exactly.

Speed: the length headers of all records are compared in one numpy operation; the data
CRCs take one C call per record over memoryview slices (no copies) and are masked and
compared as arrays.
"""

from __future__ import annotations

import io
import os

import numpy as np

from ..format.compression import open_source, reader_of
from ..format.framing import (
    FOOTER_SIZE,
    HEADER_SIZE,
    LENGTH,
    OVERHEAD,
    crc32c_function,
    header,
    mask,
)
from ..storage import Location

__all__ = ["fixed_rows", "read_stream"]


def read_stream(path: str | os.PathLike, compression: str, data: bytes | None = None) -> np.ndarray:
    """The shard's whole (uncompressed) record stream as a uint8 array: from ``data`` (the
    file's bytes, fetched already), else read (locally into the array, a URL in one
    request)."""
    loc = Location(path)
    if data is None and compression == "none" and not loc.is_url:
        return np.fromfile(loc, np.uint8)
    if data is None:
        data = loc.read()
    if compression == "none":
        return np.frombuffer(data, np.uint8)
    with reader_of(open_source(io.BytesIO(data), compression)) as stream:
        return np.frombuffer(stream.read(), np.uint8)


def fixed_rows(stream: np.ndarray, records: slice | None = None) -> np.ndarray | None:
    """``[n, length]`` view of the Example bytes when every record of ``stream`` has the
    same length and the headers and the data CRCs of ``records`` (all by default) match;
    None otherwise (the caller reads record by record and names what is wrong)."""
    if len(stream) < HEADER_SIZE:
        return None
    length = int(LENGTH.unpack_from(stream, 0)[0])
    size = length + OVERHEAD
    if length == 0 or len(stream) % size:
        return None
    rows = stream.reshape(-1, size)
    want = np.frombuffer(header(length), np.uint8)
    if not (rows[:, :HEADER_SIZE] == want).all():
        return None
    picked = range(len(rows))[records or slice(None)]
    if len(picked):
        crc = crc32c_function()
        view = memoryview(stream)
        first, step = picked.start * size + HEADER_SIZE, picked.step * size
        stop = first + len(picked) * step
        raw = np.fromiter(
            (crc(view[p : p + length]) for p in range(first, stop, step)),
            np.uint64,
            count=len(picked),
        )
        masked = mask(raw)  # works on arrays as on ints
        footers = rows[picked.start : picked.stop : picked.step, size - FOOTER_SIZE :]
        if not (masked.astype("<u4") == footers.copy().view("<u4")[:, 0]).all():
            return None
    return rows[:, HEADER_SIZE : HEADER_SIZE + length]
