"""The ``.idx`` files of a dataset's shards, read and checked before any reader seeks by
them: fetched together (one concurrent batch for a bucket), parsed by ``format.index`` and
held to ``format.index.check_index`` (contiguous records, the last at the shard's end, the
count metadata promises). TensorFlow-free.

Data flow: shards (``resolve.py``) -> **checked index entries** -> random access, the
global shuffle's runs, a bucket read's ranged pieces.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .. import storage
from ..format.index import check_index, parse_index
from ..format.naming import MANIFEST
from ..storage import Location

__all__ = ["read_indexes"]

Entries = list[tuple[int, int]]


def read_indexes(
    files: Sequence[str],
    *,
    counts: Sequence[int] | None = None,
    sizes: Mapping[str, int] | None = None,
    promised_by: str = MANIFEST,
    missing_ok: bool = False,
) -> list[Entries | None]:
    """The checked ``.idx`` entries of every file in ``files`` (uncompressed shards, local
    or URLs: a bucket's fetched concurrently). ``counts``: records each file promises;
    ``sizes``: file sizes when a listing gave them (else asked). A missing index is
    FileNotFoundError naming it, or None with ``missing_ok``; one that does not describe its
    shard is a FormatError naming the ``.idx`` and what to run."""
    locations = [Location(f) for f in files]
    indexes = [loc.idx for loc in locations]
    if missing_ok:
        present = [i for i, idx in enumerate(indexes) if idx.exists()]
    else:
        present = list(range(len(files)))
    texts = storage.read_many([indexes[i] for i in present])
    out: list[Entries | None] = [None] * len(files)
    for i, text in zip(present, texts, strict=True):
        loc = locations[i]
        size = (sizes or {}).get(str(loc))
        out[i] = check_index(
            parse_index(text, indexes[i].shown),
            indexes[i].shown,
            shard=loc.shown,
            size=loc.size() if size is None else size,
            expected=None if counts is None else counts[i],
            promised_by=promised_by,
        )
    return out
