"""Which files a reader reads: a dataset folder (its manifest), a folder TFDS prepared (its
``dataset_info.json``), or globs / lists of TFRecord files from elsewhere, and the part of
them a host reads. TensorFlow-free.

Data flow: PATH -> **shard list** (files, counts, compression, one format / shape when the
manifest says so) -> per-host part -> pipeline.
"""

from __future__ import annotations

import glob as globlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import TFRecordToolsError
from ..format import storage
from ..format.compression import detect_compression, normalize_compression, sniff_compression
from ..format.framing import HEADER_SIZE
from ..format.index import read_index
from ..format.manifest import check_finished, read_manifest, shown_path
from ..format.naming import INDEX_SUFFIX, MANIFEST, SHARD_GLOB, index_path, is_shard_name
from ..format.tfds import TFDS_FEATURES, is_tfds_folder, read_tfds_info
from .options import ReadOptions


@dataclass(frozen=True)
class ShardList:
    files: list[str]
    counts: list[int] | None  # per file, when a manifest says
    compression: str
    image_shape: tuple[int, int, int] | None = None  # when the manifest says all agree
    image_format: str | None = None  # when the manifest says all records have one format
    # records per EXIF orientation as the manifest counts them ({}: none has the key,
    # which older manifests without the count also mean); None: no manifest
    orientations: dict[str, int] | None = None
    ours: bool = False  # a dataset folder of ours: our feature keys, no record read
    # a TFDS folder's (Image feature, ClassLabel feature or None) from its features.json
    tfds_keys: tuple[str, str | None] | None = None
    # object sizes by URL, when a bucket listing gave them (the reader then asks no sizes)
    sizes: dict[str, int] | None = None


def resolve_shards(
    path: str | os.PathLike | Sequence[str], split: str = "train", compression: str | None = None
) -> ShardList:
    """Shard files of ``split`` from a dataset folder (its manifest), a folder TFDS prepared
    (its ``dataset_info.json``: files from the split's file template, counts from its shard
    lengths, no scan), or files matching a glob / list of paths (third-party TFRecords
    without a manifest). A URL (``gs://``, ``s3://``, any fsspec URL) is resolved through
    the storage seam (``urls.py``)."""
    if isinstance(path, str) and storage.is_url(path):
        from .urls import resolve_url

        return resolve_url(path, split, compression)
    if isinstance(path, (str, os.PathLike)) and (Path(path) / MANIFEST).is_file():
        return manifest_shards(path, split, compression)
    if isinstance(path, (str, os.PathLike)) and is_tfds_folder(path):
        check_finished(path)  # ours, interrupted after its TFDS files: not a dataset yet
        return tfds_shards(path, split, compression)
    patterns = [str(path)] if isinstance(path, (str, os.PathLike)) else [str(p) for p in path]
    if not patterns:
        raise TFRecordToolsError("no TFRecord files given")
    files: list[str] = []
    for pattern in patterns:
        if storage.is_url(pattern):
            from .urls import url_matches

            files.extend(url_matches(pattern))
            continue
        folder = Path(pattern).is_dir()
        if folder:
            pattern = os.path.join(pattern, SHARD_GLOB)
        matches = sorted(
            m
            for m in globlib.glob(pattern)
            if os.path.isfile(m)
            and (is_shard_name(os.path.basename(m)) or not folder)
            and not m.endswith(INDEX_SUFFIX)
        )
        if not matches:
            raise TFRecordToolsError(f"{pattern}: no TFRecord files match")
        for parent in {os.path.dirname(m) or "." for m in matches}:
            check_finished(parent)
        files.extend(matches)
    if compression is not None:
        found = normalize_compression(compression)
    elif storage.is_url(files[0]):
        found = sniff_compression(storage.read_bytes(files[0], 0, HEADER_SIZE))
    else:
        found = detect_compression(files[0])
    return ShardList(files, None, found)


def manifest_shards(folder: str | os.PathLike, split: str, compression: str | None) -> ShardList:
    """The shards of ``split`` in a dataset folder of ours (local or a URL), from its
    manifest (one read)."""
    manifest = read_manifest(folder)
    if split not in manifest.splits:
        raise TFRecordToolsError(
            f"{storage.redact(folder)}: no split {split!r}; it has "
            f"{', '.join(manifest.splits) or 'none'}"
        )
    shards = manifest.splits[split].shards
    if compression is not None and normalize_compression(compression) != manifest.compression:
        raise TFRecordToolsError(
            f"{storage.redact(folder)}: compression {compression!r} given, "
            f"but the manifest says {manifest.compression!r}"
        )
    return ShardList(
        [_file_in(folder, s.file) for s in shards],
        [s.num_examples for s in shards],
        manifest.compression,
        manifest.image_shape,
        manifest.image_format,
        manifest.orientations,
        ours=True,
    )


def tfds_shards(
    folder: str | os.PathLike,
    split: str,
    compression: str | None,
    *,
    features: bool = True,
) -> ShardList:
    """The shards of ``split`` in a folder TFDS prepared (local or a URL; TFDS writes them
    uncompressed). ``features``: whether to read its ``features.json`` (False: a listing
    showed there is none)."""
    info = read_tfds_info(folder)
    if split not in info.splits:
        raise TFRecordToolsError(
            f"{shown_path(info.path)}: no split {split!r}; it has "
            f"{', '.join(info.splits) or 'none'}"
        )
    if compression is not None and normalize_compression(compression) != "none":
        raise TFRecordToolsError(
            f"{shown_path(folder)}: compression {compression!r} given, but TFDS writes "
            "uncompressed shards"
        )
    entry = info.splits[split]
    return ShardList(
        [_file_in(folder, f) for f in entry.files],
        list(entry.shard_lengths),
        "none",
        tfds_keys=tfds_feature_keys(folder) if features else None,
    )


def _file_in(folder: str | os.PathLike, file: str) -> str:
    return storage.join(folder, file) if storage.is_url(folder) else str(Path(folder) / file)


_IMAGE_CLASS = ".image_feature.Image"
_LABEL_CLASS = ".class_label_feature.ClassLabel"


def tfds_feature_keys(folder: str | os.PathLike) -> tuple[str, str | None] | None:
    """(the top-level Image feature's name, the ClassLabel's or None) from a TFDS folder's
    ``features.json``; None when it has no such file or not exactly one Image (the reader
    then finds the keys from the first record). ``folder`` may be a URL (one read)."""
    try:
        data = json.loads(storage.read_text(storage.join(folder, TFDS_FEATURES)))
        features = data["featuresDict"]["features"]
        kinds = {name: str(f.get("pythonClassName", "")) for name, f in features.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    images = [name for name, kind in kinds.items() if kind.endswith(_IMAGE_CLASS)]
    labels = [name for name, kind in kinds.items() if kind.endswith(_LABEL_CLASS)]
    if len(images) != 1:
        return None
    return images[0], (labels[0] if len(labels) == 1 else None)


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
    files: list[str], counts: list[int] | None, compression: str, opts: ReadOptions
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
    indexes = []
    for number, file in enumerate(files):
        idx, entries = _index_of(file)
        if entries is None:
            raise TFRecordToolsError(
                f"{storage.redact(file)}: no index file {storage.basename(idx)}; "
                "shuffle='global' reads runs of records from the offsets it lists: run "
                f"`tfrecord-tools index {storage.redact(file)}`, or use shuffle=True"
            )
        if counts is not None and len(entries) != counts[number]:
            raise TFRecordToolsError(
                f"{storage.redact(idx)}: lists {len(entries)} records, the manifest "
                f"{counts[number]}; run "
                f"`tfrecord-tools verify {file}`, then `tfrecord-tools index {file}`"
            )
        indexes.append(entries)
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


def _index_of(file: str) -> tuple[str, list[tuple[int, int]] | None]:
    """(the index file of ``file``, its entries or None when it has none)."""
    idx = f"{file}{INDEX_SUFFIX}" if storage.is_url(file) else str(index_path(file))
    try:
        return idx, read_index(idx)
    except FileNotFoundError:
        return idx, None


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
