"""Record index files (``SHARD.idx``, FORMAT.md): one ``OFFSET LENGTH`` line per record,
the offset of the record's first byte in the uncompressed stream and its whole length
including framing: the layout of DALI's and the ``tfrecord`` package's ``tfrecord2idx``.

Data flow: shard writer / scan -> **index lines** -> ``SHARD.idx`` -> count, verify, random
access. (MNIST's IDX image files are another thing: ``convert.sources.mnist_idx``.)
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

from .. import storage
from ..errors import FormatError
from .framing import OVERHEAD
from .naming import INDEX_SUFFIX, index_path

__all__ = [
    "INDEX_SUFFIX",
    "check_index",
    "count_index",
    "format_index",
    "index_line",
    "index_path",
    "parse_index",
    "read_index",
]

_WELL_FORMED = re.compile(rb"(?:[0-9]+ [0-9]+\n)*(?:[0-9]+ [0-9]+)?")


def index_line(offset: int, size: int) -> str:
    """One record's line: its offset and its whole size including framing."""
    return f"{offset} {size}\n"


def format_index(records: Iterable[tuple[int, int]]) -> str:
    """The ``.idx`` text for ``(offset, size)`` pairs, as the shard writer makes it."""
    return "".join(index_line(offset, size) for offset, size in records)


def read_index(path: str | os.PathLike) -> list[tuple[int, int]]:
    """(offset, length) per line of an ``.idx`` file, local or at a URL (one read); a
    malformed line is an error naming the file and line number."""
    return parse_index(storage.read_bytes(path), storage.redact(path))


def parse_index(data: bytes | str, where: str | os.PathLike) -> list[tuple[int, int]]:
    """(offset, length) per line of the ``.idx`` text ``data`` read from ``where``; a
    malformed line is a FormatError naming ``where`` and the line number."""
    if isinstance(data, str):
        data = data.encode("ascii", "replace")
    if _WELL_FORMED.fullmatch(data):  # the usual case, parsed at C speed
        numbers = list(map(int, data.split()))
        return list(zip(numbers[0::2], numbers[1::2], strict=True))
    entries = []
    for number, raw in enumerate(data.split(b"\n"), 1):
        parts = raw.split()
        if not parts:
            continue
        if len(parts) != 2 or not all(p.isdigit() for p in parts):
            line = raw.decode("ascii", "replace").strip()[:60]
            raise FormatError(
                f"{where}: line {number}: expected 'OFFSET LENGTH' (two decimal numbers), "
                f"found {line!r}"
            )
        entries.append((int(parts[0]), int(parts[1])))
    return entries


def count_index(path: str | os.PathLike) -> int:
    """Records listed in an ``.idx`` file (its non-empty lines), local or at a URL, without
    parsing them."""
    data = storage.read_bytes(path)
    return sum(1 for line in data.split(b"\n") if line.strip())


def check_index(
    entries: list[tuple[int, int]],
    where: str,
    *,
    shard: str,
    size: int | None = None,
    expected: int | None = None,
    promised_by: str = "the manifest",
) -> list[tuple[int, int]]:
    """``entries`` of the ``.idx`` file ``where`` when they can be trusted to locate the
    records of ``shard`` (an uncompressed shard of ``size`` bytes, ``expected`` records
    when metadata promises a count); else a FormatError saying which is wrong and what to
    run. Trusted means: the first record at offset 0, every record at least a header and a
    footer long and ending where the next begins, the last ending at the shard's end, and
    as many lines as promised. A duplicated, swapped or out-of-range line fails here, before
    any reader seeks by it."""
    rebuild = f"rebuild it with `tfrecord-tools index {shard}`"
    position = 0
    for number, (offset, length) in enumerate(entries, 1):
        if offset != position or length < OVERHEAD:
            found = f"'{offset} {length}'"
            want = f"offset {position}" if offset != position else f"a length >= {OVERHEAD}"
            raise FormatError(
                f"{where}: line {number}: {found} where the records before it put {want}; "
                f"the index does not describe the shard: {rebuild}"
            )
        position += length
    if size is not None and position != size:
        if position > size:
            raise FormatError(
                f"{where}: its records end at byte {position}, the shard has {size} bytes: the "
                f"shard lost its end or was changed after it was indexed: run `tfrecord-tools "
                f"verify {shard}`, then `tfrecord-tools repair`"
            )
        raise FormatError(
            f"{where}: its records end at byte {position}, the shard has {size} bytes: {rebuild}"
        )
    if expected is not None and len(entries) != expected:
        spans = ", and they span the whole shard" if size is not None else ""
        raise FormatError(
            f"{where}: lists {len(entries)} records where {promised_by} promises {expected} for "
            f"{shard}{spans}: {promised_by} is wrong, or the shard is not the one it describes "
            f"(run `tfrecord-tools verify {shard}`)"
        )
    return entries
