"""The data a benchmark reads: an image folder and its TFRecord twin, made when missing.

Data flow: config -> **image folder** (the user's, or a deterministic sample set) ->
**TFRecords** (given, or converted here: the conversion is timed and reported as a cell of
its own) -> the sources that can run. No TensorFlow here: the converter does not need it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..cores import usable_cpus
from ..format.manifest import read_manifest
from ..format.naming import MANIFEST
from .config import BenchConfig, BenchError

Log = Callable[[str], None]


@dataclass(frozen=True)
class BenchData:
    """Where each source reads from, and what preparing the data reported."""

    image_dir: Path | None
    tfrecords: Path
    sources: tuple[str, ...]
    sample: dict[str, Any] | None = None
    conversion: dict[str, Any] | None = None
    notes: tuple[str, ...] = field(default=())


def prepare_data(config: BenchConfig, log: Log) -> BenchData:
    """Find or make the image folder and the TFRecords; drop sources that cannot run."""
    notes: list[str] = []
    sample = None
    image_dir = config.image_dir
    if image_dir is None and config.tfrecords is None:
        image_dir, sample = _make_sample(config, log)
    elif image_dir is None:
        image_dir = _source_folder_of(config.tfrecords)
        if image_dir is None:
            notes.append(
                f"{config.tfrecords}: its manifest names no image folder that exists here; "
                "only the tfrecord source runs (give IMAGE_DIR to compare)"
            )
    sources = tuple(s for s in config.sources if s == "tfrecord" or image_dir is not None)
    if not sources:
        raise BenchError("no source can run: give IMAGE_DIR for the raw and keras sources")
    conversion = None
    tfrecords = config.tfrecords
    if tfrecords is None:  # then image_dir was given or made above
        tfrecords = config.work / f"{_safe_name(image_dir)}-tfrecord"
        conversion = _convert(image_dir, tfrecords, log)
        if conversion["skipped"]:
            notes.append(
                f"the converter skipped {conversion['skipped']} bad file(s) of {image_dir}; "
                "the raw and keras sources still read them (and may fail)"
            )
    return BenchData(image_dir, tfrecords, sources, sample, conversion, tuple(notes))


def _make_sample(config: BenchConfig, log: Log) -> tuple[Path, dict[str, Any]]:
    from .. import sample

    make = sample.make_digits if config.sample == "digits" else sample.make_photos
    folder = config.work / f"{config.sample}-{config.count}-seed{config.seed}"
    log(f"sample: {config.count} {config.sample} in {folder}")
    make(folder, count=config.count, seed=config.seed, workers=len(usable_cpus()))
    info = {"kind": config.sample, "count": config.count, "seed": config.seed, "path": str(folder)}
    return folder, info


def _source_folder_of(tfrecords: Path) -> Path | None:
    """The image folder a converted dataset came from, when its manifest says and it exists."""
    if not (tfrecords / MANIFEST).is_file():
        return None
    source = read_manifest(tfrecords).data.get("source") or {}
    path = source.get("path") if source.get("kind") == "image_folder" else None
    return Path(path) if path and os.path.isdir(path) else None


def _convert(image_dir: Path, out: Path, log: Log) -> dict[str, Any]:
    """Convert ``image_dir`` afresh (overwrite: a resumed conversion would time nothing)."""
    from ..convert.api import convert_image_folder

    workers = len(usable_cpus())
    log(f"convert: {image_dir} -> {out} ({workers} workers)")
    summary = convert_image_folder(image_dir, out, workers=workers, quiet=True, overwrite=True)
    seconds = summary.elapsed
    return {
        "source": "convert",
        "cores": workers,
        "workers": workers,
        "cache": "as found",  # not evicted: a sample just written is in the page cache
        "images": summary.num_examples,
        "seconds": seconds,
        "images_per_s": summary.num_examples / seconds if seconds > 0 else None,
        "mb_per_s": summary.source_bytes / seconds / 1e6 if seconds > 0 else None,
        "source_bytes": summary.source_bytes,
        "tfrecord_bytes": summary.num_bytes,
        "shards": sum(s.num_shards for s in summary.splits.values()),
        "skipped": len(summary.skipped),
        "path": str(out),
    }


def _safe_name(folder: Path) -> str:
    name = folder.resolve().name or "images"
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name)
