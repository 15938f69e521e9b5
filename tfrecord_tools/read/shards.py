"""Which part of a dataset a host reads, and in which pieces: files per host, the runs of
``shuffle="global"`` and the pieces of a sequential read, from the shards the dataset layer
resolved (``dataset.resolve``). TensorFlow-free.

Data flow: PATH -> ``dataset.resolve`` -> **per-host part / runs / pieces** -> pipeline.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .. import storage
from ..dataset import Dataset, resolve
from ..dataset.indexes import read_indexes
from ..errors import TFRecordToolsError
from ..storage import INDEX_SUFFIX
from .options import ReadOptions


def resolve_shards(
    path: str | os.PathLike | Sequence[str], split: str = "train", compression: str | None = None
) -> Dataset:
    """The shards of ``split`` a reader reads at ``path``: ``dataset.resolve`` (the one
    answer for every reader and tool), narrowed to the split, every shard there."""
    return resolve(path, compression=compression).for_reading(split)


def host_files(files: list[str], counts: list[int] | None, opts: ReadOptions):
    """Per-host sharding by file, before any shuffle."""
    if opts.num_workers == 1:
        return files, counts
    if len(files) < opts.num_workers:
        raise TFRecordToolsError(
            f"{len(files)} shard files cannot be shared by {opts.num_workers} workers: "
            "convert with more shards (--shards) or use fewer workers"
        )
    picked = range(opts.worker_index, len(files), opts.num_workers)
    return [files[i] for i in picked], (None if counts is None else [counts[i] for i in picked])


# shuffle="global": a run holds at most 1/RUN_SHARE of the record buffer, so that two
# neighbours drawn from the buffer rarely come from one run (one class, when the shards
# are class-sorted), and at most RUN_MAX_BYTES; each run costs a seek and a reader (~0.1 ms)
RUN_SHARE = 16
RUN_MAX_BYTES = 4 << 20


@dataclass(frozen=True)
class Runs:
    """Runs of consecutive records (``shuffle="global"``): file, byte offset of the first
    record, records, bytes, and the first record's index in its file, one entry per run."""

    files: list[str]
    offsets: list[int]
    counts: list[int]
    sizes: list[int]
    firsts: list[int]


def plan_runs(
    files: list[str],
    counts: list[int] | None,
    compression: str,
    opts: ReadOptions,
    sizes: Mapping[str, int] | None = None,
) -> Runs:
    """The runs of ``files`` this host reads, from their index files. Each run holds
    ``min(shuffle_buffer // RUN_SHARE, RUN_MAX_BYTES // mean record size)`` records (at
    least one); hosts take every ``num_workers``-th run of the list (file order), so they
    split the runs, not the files: every record once across them, and each host reads
    from every shard."""
    if compression != "none":
        raise TFRecordToolsError(
            f"{files[0]}: shuffle='global' reads records from their byte offsets, which "
            f"{compression}-compressed shards do not allow: convert with --compression none, "
            "or use shuffle=True"
        )
    found = read_indexes(files, counts=counts, sizes=sizes, missing_ok=True)
    for file, entries in zip(files, found, strict=True):
        if entries is None:
            shown = storage.redact(file)
            raise TFRecordToolsError(
                f"{shown}: no index file {storage.basename(file)}{INDEX_SUFFIX}; "
                "shuffle='global' reads runs of records from the offsets it lists: run "
                f"`tfrecord-tools index {shown}`, or use shuffle=True"
            )
    indexes: list[list[tuple[int, int]]] = found  # type: ignore[assignment]
    records = sum(len(e) for e in indexes)
    mean = sum(length for e in indexes for _, length in e) / max(records, 1)
    per_run = max(1, min(opts.shuffle_buffer // RUN_SHARE, int(RUN_MAX_BYTES // max(mean, 1))))
    runs = Runs([], [], [], [], [])
    for file, entries in zip(files, indexes, strict=True):
        for start in range(0, len(entries), per_run):
            run = entries[start : start + per_run]
            runs.files.append(file)
            runs.firsts.append(start)
            runs.offsets.append(run[0][0])
            runs.counts.append(len(run))
            runs.sizes.append(run[-1][0] + run[-1][1] - run[0][0])
    if len(runs.files) < opts.num_workers:
        raise TFRecordToolsError(
            f"{len(runs.files)} runs of records cannot be shared by {opts.num_workers} "
            "workers: use fewer workers"
        )
    part = slice(opts.worker_index, None, opts.num_workers)
    return Runs(
        runs.files[part],
        runs.offsets[part],
        runs.counts[part],
        runs.sizes[part],
        runs.firsts[part],
    )


def plan_pieces(
    files: list[str], indexes: list[list[tuple[int, int]]], max_bytes: int
) -> tuple[Runs, list[int]]:
    """``files`` cut into pieces of consecutive records of at most ``max_bytes`` (a record
    larger than that is a piece alone), in file order, from their index entries; and where
    each file's pieces start in the list (``len(files) + 1`` row splits)."""
    pieces = Runs([], [], [], [], [])
    splits = [0]
    for file, entries in zip(files, indexes, strict=True):
        start = 0
        while start < len(entries):
            end = start + 1
            first = entries[start][0]
            while end < len(entries) and entries[end][0] + entries[end][1] - first <= max_bytes:
                end += 1
            pieces.files.append(file)
            pieces.offsets.append(first)
            pieces.counts.append(end - start)
            pieces.sizes.append(entries[end - 1][0] + entries[end - 1][1] - first)
            pieces.firsts.append(start)
            start = end
        splits.append(len(pieces.files))
    return pieces, splits
