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
from ..format.compression import detect_compression, normalize_compression
from ..format.index import read_index
from ..format.manifest import check_finished, read_manifest
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


def resolve_shards(
    path: str | os.PathLike | Sequence[str], split: str = "train", compression: str | None = None
) -> ShardList:
    """Shard files of ``split`` from a dataset folder (its manifest), a folder TFDS prepared
    (its ``dataset_info.json``: files from the split's file template, counts from its shard
    lengths, no scan), or files matching a glob / list of paths (third-party TFRecords
    without a manifest)."""
    if isinstance(path, (str, os.PathLike)) and (Path(path) / MANIFEST).is_file():
        manifest = read_manifest(path)
        if split not in manifest.splits:
            raise TFRecordToolsError(
                f"{path}: no split {split!r}; it has {', '.join(manifest.splits) or 'none'}"
            )
        shards = manifest.splits[split].shards
        if compression is not None and normalize_compression(compression) != manifest.compression:
            raise TFRecordToolsError(
                f"{path}: compression {compression!r} given, "
                f"but the manifest says {manifest.compression!r}"
            )
        return ShardList(
            [str(Path(path) / s.file) for s in shards],
            [s.num_examples for s in shards],
            manifest.compression,
            manifest.image_shape,
            manifest.image_format,
            manifest.orientations,
            ours=True,
        )
    if isinstance(path, (str, os.PathLike)) and is_tfds_folder(path):
        check_finished(path)  # ours, interrupted after its TFDS files: not a dataset yet
        return _tfds_shards(Path(path), split, compression)
    patterns = [str(path)] if isinstance(path, (str, os.PathLike)) else [str(p) for p in path]
    if not patterns:
        raise TFRecordToolsError("no TFRecord files given")
    files: list[str] = []
    for pattern in patterns:
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
    found = (
        normalize_compression(compression)
        if compression is not None
        else detect_compression(files[0])
    )
    return ShardList(files, None, found)


def _tfds_shards(folder: Path, split: str, compression: str | None) -> ShardList:
    """The shards of ``split`` in a folder TFDS prepared (TFDS writes them uncompressed)."""
    info = read_tfds_info(folder)
    if split not in info.splits:
        raise TFRecordToolsError(
            f"{info.path}: no split {split!r}; it has {', '.join(info.splits) or 'none'}"
        )
    if compression is not None and normalize_compression(compression) != "none":
        raise TFRecordToolsError(
            f"{folder}: compression {compression!r} given, but TFDS writes uncompressed shards"
        )
    entry = info.splits[split]
    return ShardList(
        [str(folder / f) for f in entry.files],
        list(entry.shard_lengths),
        "none",
        tfds_keys=tfds_feature_keys(folder),
    )


_IMAGE_CLASS = ".image_feature.Image"
_LABEL_CLASS = ".class_label_feature.ClassLabel"


def tfds_feature_keys(folder: str | os.PathLike) -> tuple[str, str | None] | None:
    """(the top-level Image feature's name, the ClassLabel's or None) from a TFDS folder's
    ``features.json``; None when it has no such file or not exactly one Image (the reader
    then finds the keys from the first record)."""
    try:
        data = json.loads((Path(folder) / TFDS_FEATURES).read_text(encoding="utf-8"))
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
    record, records, and bytes, one entry per run."""

    files: list[str]
    offsets: list[int]
    counts: list[int]
    sizes: list[int]


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
        idx = index_path(file)
        if not os.path.isfile(idx):
            raise TFRecordToolsError(
                f"{file}: no index file {os.path.basename(idx)}; shuffle='global' reads runs "
                f"of records from the offsets it lists: run `tfrecord-tools index {file}`, "
                "or use shuffle=True"
            )
        entries = read_index(idx)
        if counts is not None and len(entries) != counts[number]:
            raise TFRecordToolsError(
                f"{idx}: lists {len(entries)} records, the manifest {counts[number]}; run "
                f"`tfrecord-tools verify {file}`, then `tfrecord-tools index {file}`"
            )
        indexes.append(entries)
    records = sum(len(e) for e in indexes)
    mean = sum(length for e in indexes for _, length in e) / max(records, 1)
    per_run = max(1, min(opts.shuffle_buffer // RUN_SHARE, int(RUN_MAX_BYTES // max(mean, 1))))
    runs = Runs([], [], [], [])
    for file, entries in zip(files, indexes, strict=True):
        for start in range(0, len(entries), per_run):
            run = entries[start : start + per_run]
            runs.files.append(file)
            runs.offsets.append(run[0][0])
            runs.counts.append(len(run))
            runs.sizes.append(run[-1][0] + run[-1][1] - run[0][0])
    if len(runs.files) < opts.num_workers:
        raise TFRecordToolsError(
            f"{len(runs.files)} runs of records cannot be shared by {opts.num_workers} "
            "workers: use fewer workers"
        )
    part = slice(opts.worker_index, None, opts.num_workers)
    return Runs(runs.files[part], runs.offsets[part], runs.counts[part], runs.sizes[part])
