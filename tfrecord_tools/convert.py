"""Public conversion entry points: image folder or MNIST -> a dataset folder (FORMAT.md).

Data flow: source listing -> plan -> engine (parallel shard writers) -> labels.txt ->
``dataset.json`` last. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import os
import time
from array import array
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import engine, plan
from .errors import ConversionError
from .framing import normalize_compression
from .image_folder import FolderShard, scan_image_folder
from .manifest import MANIFEST, write_labels, write_manifest
from .summary import ConversionSummary, summarise

VALIDATE_MODES = ("fast", "decode")


def usable_cores() -> int:
    """Cores this process may run on (CPU affinity), not all the machine has."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class ShardingOptions:
    """How a conversion cuts and writes shards; validated on creation."""

    shards: int | None = None
    shard_size: int | str | None = None
    workers: int | None = None
    compression: str = "none"
    seed: int = 0
    quiet: bool = False
    overwrite: bool = False

    def __post_init__(self) -> None:
        if self.shards is not None and self.shards < 1:
            raise ConversionError(f"--shards must be at least 1, got {self.shards}")
        if self.shards is not None and self.shard_size is not None:
            raise ConversionError("give --shards or --shard-size, not both")
        if isinstance(self.shard_size, str):
            object.__setattr__(self, "shard_size", plan.parse_size(self.shard_size))
        if self.workers is not None and self.workers < 1:
            raise ConversionError(f"--workers must be at least 1, got {self.workers}")
        object.__setattr__(self, "compression", normalize_compression(self.compression))

    @property
    def num_workers(self) -> int:
        return self.workers or usable_cores()


def _run(
    *,
    out: Path,
    name: str,
    classes: list[str],
    labels: list[int],
    sizes: list[int],
    splits: Mapping[str, Any],
    make_source,
    opts: ShardingOptions,
    identity: Any,
    source_json: dict,
    pre_skipped: list[tuple[str, str]],
    extra: dict,
    desc: str,
) -> ConversionSummary:
    """The steps every source shares: plan, resume, run, labels, manifest."""
    start = time.monotonic()
    plans = plan.plan_shards(
        name,
        labels,
        sizes,
        splits=splits,
        seed=opts.seed,
        shards=opts.shards,
        shard_size=opts.shard_size,  # type: ignore[arg-type]
        workers=opts.num_workers,
    )
    digest = engine.fingerprint(
        {
            "identity": identity,
            "name": name,
            "seed": opts.seed,
            "compression": opts.compression,
            "plan": [(p.filename, len(p.samples)) for p in plans],
        }
    )
    done = engine.prepare_out_dir(
        out, name, digest, overwrite=opts.overwrite, manifest_name=MANIFEST
    )
    todo = [p for p in plans if p.filename not in done]
    jobs = [
        engine.Job(p.filename, p.split, str(out), opts.compression, make_source(p)) for p in todo
    ]
    results = engine.run_jobs(
        jobs,
        workers=opts.num_workers,
        quiet=opts.quiet,
        total_images=sum(len(p.samples) for p in todo),
        desc=desc,
    )
    summary = summarise(
        out_dir=out,
        name=name,
        classes=classes,
        results=list(done.values()) + results,
        split_order=list(splits),
        source=source_json,
        pre_skipped=pre_skipped,
        compression=opts.compression,
        elapsed=time.monotonic() - start,
        resumed=len(done),
        extra={"seed": opts.seed, **extra},
    )
    write_labels(out, classes)
    write_manifest(out, summary.manifest)
    engine.finish_out_dir(out)
    return summary


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
    quiet: bool = False,
    overwrite: bool = False,
) -> ConversionSummary:
    """Pack ``src`` (one subfolder per class) into sharded TFRecords in ``out``.

    JPEG and PNG bytes are stored unchanged, other formats Pillow reads become PNG; bad
    files are skipped and listed (``strict`` makes them an error). Rerunning an
    interrupted conversion with the same arguments finishes it.
    """
    opts = ShardingOptions(
        shards=shards,
        shard_size=shard_size,
        workers=workers,
        compression=compression,
        seed=seed,
        quiet=quiet,
        overwrite=overwrite,
    )
    if validate not in VALIDATE_MODES:
        raise ConversionError(f"validate must be one of {VALIDATE_MODES}, got {validate!r}")
    fractions = plan.parse_splits(split)
    listing = scan_image_folder(src)
    if strict and listing.skipped:
        path, reason = listing.skipped[0]
        raise ConversionError(f"{listing.root / path}: {reason} (--strict)")
    root = str(listing.root.resolve())
    name = name or _default_name(listing.root)

    key = f"image-folder-{id(listing)}"
    inherited = engine.share(key, listing)  # forked workers look paths up in the listing
    classes = tuple(listing.classes)

    def make_source(p: plan.ShardPlan) -> FolderShard:
        samples = p.samples
        if inherited:
            return FolderShard(root, classes, samples, validate, strict, listing_key=key)
        return FolderShard(
            root,
            classes,
            samples,
            validate,
            strict,
            packed=listing.paths.pack(samples),
            labels=array(listing.labels.typecode, (listing.labels[i] for i in samples)),
        )

    identity = {
        "root": root,
        "validate": validate,
        "strict": strict,
        "files": listing.fingerprint,
    }
    try:
        return _run(
            out=Path(out),
            name=name,
            classes=listing.classes,
            labels=listing.labels,
            sizes=listing.sizes,
            splits=fractions,
            make_source=make_source,
            opts=opts,
            identity=identity,
            source_json={"kind": "image_folder", "path": root},
            pre_skipped=listing.skipped,
            extra={"validate": validate},
            desc=name,
        )
    finally:
        engine.unshare(key)
        listing.paths.close()


def _default_name(root: Path) -> str:
    name = "".join(c if c.isalnum() or c in "_." else "_" for c in root.resolve().name)
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
) -> ConversionSummary:
    """Pack the four MNIST IDX files in ``src`` (plain or .gz) into splits train and test.

    Counts come from the IDX headers, so subsets and MNIST-format datasets (Fashion-MNIST)
    work too. ``download`` fetches the files into ``src`` first and checks their checksums.
    ``png_level`` is the PNGs' deflate level (0..9; 1 is fast, 6 ~7 % smaller).
    """
    import numpy as np

    from .idx import download_mnist, find_mnist_files, load_mnist_split
    from .mnist import CLASSES, ENCODINGS, MnistShard

    opts = ShardingOptions(
        shards=shards,
        shard_size=shard_size,
        workers=workers,
        compression=compression,
        seed=seed,
        quiet=quiet,
        overwrite=overwrite,
    )
    if encoding not in ENCODINGS:
        raise ConversionError(f"encoding must be one of {ENCODINGS}, got {encoding!r}")
    if not 0 <= png_level <= 9:
        raise ConversionError(f"png_level must be 0..9, got {png_level}")
    if download:
        download_mnist(src)
    files = find_mnist_files(src)
    arrays = {split: load_mnist_split(*paths) for split, paths in files.items()}
    offsets, start = {}, 0
    for split, (pixels, _) in arrays.items():
        offsets[split] = start
        start += len(pixels)
    labels = np.concatenate([lab for _, lab in arrays.values()]).astype(np.int64).tolist()
    rows, cols = next(iter(arrays.values()))[0].shape[1:]
    for split, (pixels, _) in arrays.items():
        if pixels.shape[1:] != (rows, cols):
            raise ConversionError(
                f"{files[split][0]}: images are {pixels.shape[1]}x"
                f"{pixels.shape[2]}, the other split's are {rows}x{cols}"
            )
    per_image = rows * cols + 96 if encoding == "raw" else rows * cols // 2 + 96
    splits = {s: range(offsets[s], offsets[s] + len(arrays[s][0])) for s in arrays}

    keys = {split: f"mnist-pixels-{split}" for split in arrays}
    inherited = {s: engine.share(keys[s], arrays[s][0]) for s in arrays}

    def make_source(p: plan.ShardPlan) -> MnistShard:
        pixels, split_labels = arrays[p.split]
        ids = np.asarray(p.samples, dtype=np.int64) - offsets[p.split]
        if inherited[p.split]:  # forked workers index the parent's array themselves
            return MnistShard(
                p.split, ids, split_labels[ids], encoding, png_level, shared_key=keys[p.split]
            )
        return MnistShard(p.split, ids, split_labels[ids], encoding, png_level, pixels=pixels[ids])

    stats = [
        (str(f), f.stat().st_size, f.stat().st_mtime_ns) for pair in files.values() for f in pair
    ]
    try:
        return _run(
            out=Path(out),
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
                "path": str(Path(src).resolve()),
                "files": {s: [p.name for p in pair] for s, pair in files.items()},
            },
            pre_skipped=[],
            extra={
                "encoding": encoding,
                **({"png_level": png_level} if encoding == "png" else {}),
                "image_shape": [int(rows), int(cols), 1],
            },
            desc=name,
        )
    finally:
        for key in keys.values():
            engine.unshare(key)
