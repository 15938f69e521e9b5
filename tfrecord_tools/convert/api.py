"""Public conversion entry points: image folder or MNIST -> a dataset folder (FORMAT.md).

Data flow: source listing (and ``--strict`` checks, ``--encoding auto``) -> the steps every
source shares (``steps.run``: plan -> engine (parallel shard writers) -> labels.txt -> TFDS
metadata (``format.tfds``; not for compressed shards) -> ``dataset.json`` last).
SRC and OUT are local paths or URLs (``gs://``, ``s3://``, any fsspec URL), mixed at will;
every access goes through the storage seam (``storage``, ``outdir``).
Nothing here imports TensorFlow.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from array import array
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from .. import storage
from ..dataset.images import FolderListing, scan_image_folder
from ..errors import ConversionError, IDXFormatError, InvalidImageError
from ..images.probe import ImageInfo, probe_image
from ..storage import time_limit
from . import (
    AUTO_RAW_MAX_SIDE,
    DEFAULT_QUALITY,
    MNIST_ENCODINGS,
    VALIDATE_MODES,
    inherit,
    outdir,
    plan,
    steps,
)
from .options import ShardingOptions, choice, dataset_name, flag, location, whole
from .sources.image_folder import FolderShard, read_listed
from .sources.transcode import StorageOptions, stored_shape
from .summary import ConversionSummary

__all__ = ["ShardingOptions", "convert_image_folder", "convert_mnist"]

log = logging.getLogger(__name__)


def convert_image_folder(
    src: str | os.PathLike,
    out: str | os.PathLike,
    *,
    name: str | None = None,
    split: str | Mapping[str, float] | None = None,
    shards: int | None = None,
    shard_size: int | str | None = None,
    workers: int | None = None,
    compression: str = "none",
    seed: int = 0,
    strict: bool = False,
    validate: str = "fast",
    max_size: int | None = None,
    quality: int = DEFAULT_QUALITY,
    encoding: str = "keep",
    quiet: bool = False,
    overwrite: bool = False,
    allow_nonempty_out: bool = False,
    storage_timeout: float | None = None,
    engine: str = "local",
    runner: str | None = None,
    pipeline_args: Sequence[str] = (),
) -> ConversionSummary:
    """Pack ``src`` (one subfolder per class) into sharded TFRecords in ``out``.

    JPEG and PNG bytes are stored unchanged, other formats Pillow reads become PNG; bad
    files are skipped and listed (``strict`` makes them an error). ``max_size`` re-encodes
    images whose longest side is larger to exactly that side (JPEGs at ``quality``);
    ``encoding`` "png" or "raw" (uint8 pixels) re-encodes every image, "auto" stores raw
    pixels when every image is small and of one shape. Rerunning an interrupted conversion
    with the same arguments finishes it. ``engine="beam"`` runs the shard jobs on Apache
    Beam (``runner``, ``pipeline_args``: its runner and options).

    ``out`` must be empty, missing, or hold a conversion of ours (finished or not);
    ``allow_nonempty_out`` lets a conversion write into a folder that holds other files (or
    into / or the home folder). A file there with one of our names (``labels.txt``, the TFDS
    metadata, a shard's) is only replaced with ``overwrite``. Every bad option is a
    :class:`ConversionError` naming it.

    ``src`` and ``out`` may be URLs (``gs://b/photos``, ``s3://...``, ``memory://...``):
    a bucket source is listed once (recursively) and each image read whole; shards are
    written locally and uploaded whole, the manifest last. With ``memory://`` (fsspec's
    per-process file system) the shard jobs run in this process. ``storage_timeout``:
    seconds a request to a bucket may go without progress, its retries included (default
    ``$TFRECORD_TOOLS_STORAGE_TIMEOUT`` or 60), before the conversion stops naming the
    object (rerun to finish).
    """
    opts = ShardingOptions.among(locals())
    location("src (SRC)", src)
    location("out (OUT)", out)
    if name is not None:
        dataset_name(name)
    choice("validate", validate, VALIDATE_MODES)
    flag("strict", strict)
    stored = StorageOptions(max_size=max_size, quality=quality, encoding=encoding)
    fractions = plan.parse_splits(split)
    with time_limit(opts.storage_timeout):
        return _convert_image_folder(
            src, outdir.location(out), opts, stored, fractions, name=name, strict=strict,
            validate=validate, max_size=max_size, quality=quality, encoding=encoding,
        )  # fmt: skip


def _convert_image_folder(
    src: str | os.PathLike,
    out: Path | str,
    opts: ShardingOptions,
    stored: StorageOptions,
    fractions: dict[str, float],
    *,
    name: str | None,
    strict: bool,
    validate: str,
    max_size: int | None,
    quality: int,
    encoding: str,
) -> ConversionSummary:
    listing = scan_image_folder(src, exclude=out)
    if encoding == "auto":
        stored = replace(stored, encoding=_auto_encoding(listing, stored, opts.num_workers))
    root = listing.location()  # what workers open: an absolute path or the URL
    name = name or _default_name(listing.root)

    key = f"image-folder-{id(listing)}"
    inherited = opts.share(key, listing)  # forked workers look paths up in the listing
    classes = tuple(listing.classes)

    def make_source(p: plan.ShardPlan) -> FolderShard:
        samples = p.samples
        if inherited:
            return FolderShard(
                root, classes, samples, validate, strict, listing_key=key, storage=stored
            )
        return FolderShard(
            root,
            classes,
            samples,
            validate,
            strict,
            packed=listing.paths.pack(samples),
            labels=array(listing.labels.typecode, (listing.labels[i] for i in samples)),
            storage=stored,
        )

    stored_as: dict[str, Any] = {}  # manifest keys; none for the defaults (golden bytes)
    if encoding != "keep":
        stored_as["encoding"] = stored.encoding
        if encoding == "auto":
            stored_as["encoding_asked"] = "auto"
    identity = {
        "root": storage.redact(root),
        "validate": validate,
        "strict": strict,
        "files": listing.fingerprint,
        **stored.identity(),
        **stored_as,
    }
    try:
        return steps.run(
            out=out,
            name=name,
            classes=listing.classes,
            labels=listing.labels,
            sizes=listing.pop_sizes(),
            splits=fractions,
            make_source=make_source,
            opts=opts,
            identity=identity,
            source_json={"kind": "image_folder", "path": storage.redact(root)},
            pre_skipped=listing.skipped,
            extra={"validate": validate, **stored_as},
            desc=name,
            check=(lambda: _check_strict(listing, validate, opts.num_workers)) if strict else None,
            max_size=None if max_size is None else {"size": max_size, "quality": quality},
            in_process=outdir.per_process(src, out),
        )
    finally:
        inherit.unshare(key)
        listing.paths.close()


def _check_strict(listing: FolderListing, validate: str, workers: int) -> None:
    """``--strict``: read and probe every file before anything is written (the shard
    writers check each again), and name every bad one in a single error."""

    def problem(index: int) -> str | None:
        rel = listing.paths[index]
        try:
            probe_image(read_listed(listing.location(rel)), path=rel, validate=validate)
        except InvalidImageError as e:
            return str(e if e.path else e.with_path(rel))
        except OSError as e:
            return f"{rel}: unreadable file ({e.strerror or e})"
        return None

    problems = [f"{path}: {reason}" for path, reason in listing.skipped]
    with ThreadPoolExecutor(max(1, min(workers, 32))) as pool:
        problems += filter(None, pool.map(problem, range(len(listing.paths))))
    if problems:
        raise ConversionError(
            f"--strict: {len(problems)} bad file{'s' if len(problems) > 1 else ''} in "
            f"{outdir.shown(listing.root)}, nothing was written:\n  "
            + "\n  ".join(sorted(problems))
        )


def _auto_encoding(listing: FolderListing, stored: StorageOptions, workers: int) -> str:
    """``--encoding auto``: "raw" when every image, as it would be stored (upright, within
    ``max_size``), is at most AUTO_RAW_MAX_SIDE on its longest side and all share one
    (height, width, channels); "keep" otherwise. Headers decide (the probe, no pixels); the
    first image that does not fit ends the look. Bad files do not count (they are skipped)."""

    def shape(index: int) -> tuple[int, int, int] | None:
        try:
            info: ImageInfo = probe_image(read_listed(listing.location(listing.paths[index])))[1]
        except (InvalidImageError, OSError):
            return None
        return stored_shape(info, stored)

    seen: set[tuple[int, int, int]] = set()
    chunk = 1024
    with ThreadPoolExecutor(max(1, min(workers, 32))) as pool:
        for start in range(0, len(listing.paths), chunk):
            indices = range(start, min(start + chunk, len(listing.paths)))
            seen.update(s for s in pool.map(shape, indices) if s is not None)
            if len(seen) > 1 or any(max(s[:2]) > AUTO_RAW_MAX_SIDE for s in seen):
                return "keep"
    return "raw" if seen else "keep"


def _default_name(root: Path | str) -> str:
    """The dataset name a source's folder name gives (the last part of a URL's path)."""
    base = storage.basename(root) if storage.is_url(root) else Path(root).resolve().name
    name = "".join(c if c.isalnum() or c in "_." else "_" for c in base)
    return name.strip("_.") or "dataset"


def convert_mnist(
    src: str | os.PathLike,
    out: str | os.PathLike,
    *,
    name: str = "mnist",
    encoding: str = "png",
    png_level: int = 1,
    download: bool = False,
    shards: int | None = None,
    shard_size: int | str | None = None,
    workers: int | None = None,
    compression: str = "none",
    seed: int = 0,
    quiet: bool = False,
    overwrite: bool = False,
    allow_nonempty_out: bool = False,
    storage_timeout: float | None = None,
    engine: str = "local",
    runner: str | None = None,
    pipeline_args: Sequence[str] = (),
) -> ConversionSummary:
    """Pack the four MNIST IDX files in ``src`` (plain or .gz) into splits train and test.

    Counts come from the IDX headers, so subsets and MNIST-format datasets (Fashion-MNIST)
    work too. ``download`` fetches the files into ``src`` first and checks their checksums.
    ``png_level`` is the PNGs' deflate level (0..9; 1 is fast, 6 ~7 % smaller).

    ``src`` and ``out`` may be URLs: the IDX files of a bucket are fetched whole to a local
    temporary folder first (they are read whole anyway); ``download`` needs a local ``src``.
    A gzip file's images are decompressed to a temporary file (``TMPDIR``), from which the
    shard jobs read them a block at a time: no process holds a whole split in memory.
    ``out``, ``allow_nonempty_out``, ``storage_timeout``: as :func:`convert_image_folder`.
    """
    opts = ShardingOptions.among(locals())
    location("src (SRC)", src)
    location("out (OUT)", out)
    dataset_name(name)
    choice("encoding", encoding, MNIST_ENCODINGS)
    png_level = whole("png_level", png_level, minimum=0, maximum=9)
    if flag("download", download) and storage.is_url(src):
        raise ConversionError(
            f"--download fetches the files into a local SRC, not {storage.redact(src)}: "
            "download them to a folder first (or convert from that folder)"
        )
    # the stack holds a bucket's IDX files, fetched, and gzip payloads, decompressed
    with time_limit(opts.storage_timeout), contextlib.ExitStack() as stack:
        return _convert_mnist(
            src,
            outdir.location(out),
            opts,
            stack,
            name=name,
            encoding=encoding,
            png_level=png_level,
            download=download,
        )


def _mnist_files(src: str | os.PathLike, stack: contextlib.ExitStack):
    """The four IDX files as local paths, what identifies them for a rerun, and the
    source's manifest path. A bucket's files are fetched into a temporary folder that
    ``stack`` removes."""
    from .sources.mnist_idx import fetch_mnist_files, find_mnist_files

    if not storage.is_url(src):
        files = find_mnist_files(src)
        stats = [
            (str(f), f.stat().st_size, f.stat().st_mtime_ns)
            for pair in files.values()
            for f in pair
        ]
        return files, stats, str(Path(src).resolve()), None
    folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="tfrecord-tools-mnist-"))
    files, sizes = fetch_mnist_files(src, Path(folder))
    shown = storage.redact(src)
    stats = [(storage.join(shown, f.name), sizes[f.name]) for pair in files.values() for f in pair]
    return files, stats, shown, folder


def _convert_mnist(
    src: str | os.PathLike,
    out: Path | str,
    opts: ShardingOptions,
    stack: contextlib.ExitStack,
    *,
    name: str,
    encoding: str,
    png_level: int,
    download: bool,
) -> ConversionSummary:
    import numpy as np

    from .sources.mnist import CLASSES, MnistShard
    from .sources.mnist_download import download_mnist
    from .sources.mnist_idx import open_mnist_split

    if download:
        download_mnist(src)
    files, stats, source_path, fetched = _mnist_files(src, stack)
    spill = fetched or stack.enter_context(
        tempfile.TemporaryDirectory(prefix="tfrecord-tools-mnist-")
    )
    try:
        opened = {split: open_mnist_split(*paths, spill) for split, paths in files.items()}
    except IDXFormatError as e:  # name the bucket's object, not its local copy
        if fetched is None:
            raise
        raise IDXFormatError(str(e).replace(fetched, source_path)) from None
    offsets, start = {}, 0
    for split, (images, _) in opened.items():
        offsets[split] = start
        start += images.count
    labels = np.concatenate([lab for _, lab in opened.values()]).astype(np.int64).tolist()
    first = next(iter(opened.values()))[0]
    rows, cols = first.rows, first.cols
    for split, (images, _) in opened.items():
        if (images.rows, images.cols) != (rows, cols):
            where = files[split][0] if fetched is None else f"{source_path}/{files[split][0].name}"
            raise ConversionError(
                f"{where}: images are {images.rows}x{images.cols}, the other split's are "
                f"{rows}x{cols}"
            )
    per_image = rows * cols + 96 if encoding == "raw" else rows * cols // 2 + 96
    splits = {s: range(offsets[s], offsets[s] + opened[s][0].count) for s in opened}

    def make_source(p: plan.ShardPlan) -> MnistShard:
        images, split_labels = opened[p.split]
        ids = np.asarray(p.samples, dtype=np.int64) - offsets[p.split]
        if opts.engine == "beam":  # its workers may not see this machine's files
            pixels = images.take(ids)
            return MnistShard(p.split, ids, split_labels[ids], encoding, png_level, pixels=pixels)
        return MnistShard(p.split, ids, split_labels[ids], encoding, png_level, source=images)

    return steps.run(
        out=out,
        name=name,
        classes=CLASSES,
        labels=labels,
        sizes=[per_image] * len(labels),
        splits=splits,
        make_source=make_source,
        opts=opts,
        identity={"files": stats, "encoding": encoding, "png_level": png_level},
        source_json={
            "kind": "mnist",
            "path": source_path,
            "files": {s: [p.name for p in pair] for s, pair in files.items()},
        },
        pre_skipped=[],
        extra={
            "encoding": encoding,
            **({"png_level": png_level} if encoding == "png" else {}),
            "image_shape": [int(rows), int(cols), 1],
        },
        desc=name,
        in_process=outdir.per_process(src, out),
    )
