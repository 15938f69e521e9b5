"""The data a benchmark reads: an image folder and its TFRecord twin, made when missing.

Data flow: config -> **image folder** (the user's, or a deterministic sample set) ->
**TFRecords** (given, or converted here, one dataset per stored variant (max size x
encoding): each conversion is timed and reported as a cell of its own) -> the sources that
can run (a note for each one left out, and why). No TensorFlow here: the converter does
not need it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import storage
from ..cores import usable_cpus
from ..errors import TFRecordToolsError
from ..format.naming import MANIFEST
from ..format.tfds import TFDS_INFO
from ..storage import is_url
from .config import STORED_SOURCES, BenchConfig, BenchError

Log = Callable[[str], None]


@dataclass(frozen=True)
class BenchData:
    """Where each source reads from, and what preparing the data reported."""

    image_dir: Path | str | None  # a str: a URL
    tfrecords: Path | str  # the first stored variant's
    sources: tuple[str, ...]
    sample: dict[str, Any] | None = None
    conversion: dict[str, Any] | None = None  # the first stored variant's
    notes: tuple[str, ...] = field(default=())
    #: per stored variant (max_size, encoding): its dataset; and every conversion, in order
    variants: dict[tuple[int | None, str], Path | str] = field(default_factory=dict)
    conversions: tuple[dict[str, Any], ...] = field(default=())


def prepare_data(config: BenchConfig, log: Log) -> BenchData:
    """Find or make the image folder and the TFRecords; drop sources that cannot run."""
    notes: list[str] = list(config.skipped)
    sample = None
    image_dir = config.image_dir
    if image_dir is None and config.tfrecords is None:
        if is_url(config.work):
            raise BenchError(
                f"--work {storage.redact(config.work)}: the sample is made on local disk; "
                "give IMAGE_DIR (the images in the bucket) or a local --work"
            )
        image_dir, sample = _make_sample(config, log)
    elif image_dir is None:
        image_dir = _source_folder_of(config.tfrecords)
        if image_dir is None:
            notes.append(
                f"{config.tfrecords}: its manifest names no image folder that exists here; "
                "only the tfrecord source runs (give IMAGE_DIR to compare)"
            )
    sources = tuple(s for s in config.sources if s in STORED_SOURCES or image_dir is not None)
    if image_dir is not None and is_url(image_dir) and "keras" in sources:
        sources = tuple(s for s in sources if s != "keras")
        notes.append(
            "keras: image_dataset_from_directory reads local folders only (and gs:// through "
            "TensorFlow), not this URL; its cells are left out"
        )
    shards_at = config.tfrecords if config.tfrecords is not None else config.work
    tf_only = [s for s in ("handwritten", "tfds") if s in sources]
    if tf_only and is_url(shards_at):
        sources = tuple(s for s in sources if s not in tf_only)
        notes.append(
            f"{', '.join(tf_only)}: tf.data.TFRecordDataset reads local files (and gs:// "
            "through TensorFlow), not this URL; the cells are left out"
        )
    given = config.tfrecords
    if given is not None and "tfds" in sources and not _has_tfds_info(given):
        sources = tuple(s for s in sources if s != "tfds")
        notes.append(
            f"tfds: {storage.redact(given)} has no {TFDS_INFO} (compressed, or converted "
            "before TFDS metadata): `tfrecord-tools tfds-metadata DIR` writes it; the tfds "
            "cells are left out"
        )
    if not sources:
        raise BenchError("no source can run: give IMAGE_DIR for the raw and keras sources")
    if config.tfrecords is not None:
        variants = {config.stored[0]: config.tfrecords}
        return BenchData(image_dir, config.tfrecords, sources, sample, None, tuple(notes), variants)
    # then image_dir was given or made above: one conversion per stored variant
    variants, conversions = {}, []
    for max_size, encoding in config.stored:
        name = f"{_safe_name(image_dir)}-tfrecord" + _suffix(max_size, encoding)
        out = storage.join(config.work, name) if is_url(config.work) else config.work / name
        conversion = _convert(image_dir, out, log, max_size=max_size, encoding=encoding)
        variants[max_size, encoding] = out
        conversions.append(conversion)
        if conversion["skipped"] and len(conversions) == 1:
            notes.append(
                f"the converter skipped {conversion['skipped']} bad file(s) of {image_dir}; "
                "the raw and keras sources still read them (and may fail)"
            )
    first = config.stored[0]
    return BenchData(
        image_dir,
        variants[first],
        sources,
        sample,
        conversions[0],
        tuple(notes),
        variants,
        tuple(conversions),
    )


def _has_tfds_info(tfrecords: Path | str) -> bool:
    """Can ``tfds.builder_from_directory`` load it (a folder with TFDS's metadata)?"""
    try:
        return storage.is_file(storage.join(tfrecords, TFDS_INFO))
    except (OSError, TFRecordToolsError):
        return False


def _suffix(max_size: int | None, encoding: str) -> str:
    """The folder suffix of a stored variant ("" for the defaults: today's folder)."""
    return (f"-max{max_size}" if max_size is not None else "") + (
        f"-{encoding}" if encoding != "keep" else ""
    )


def _make_sample(config: BenchConfig, log: Log) -> tuple[Path, dict[str, Any]]:
    from .. import sample

    make = sample.make_digits if config.sample == "digits" else sample.make_photos
    folder = config.work / f"{config.sample}-{config.count}-seed{config.seed}"
    log(f"sample: {config.count} {config.sample} in {folder}")
    make(folder, count=config.count, seed=config.seed, workers=len(usable_cpus()))
    info = {"kind": config.sample, "count": config.count, "seed": config.seed, "path": str(folder)}
    return folder, info


def _source_folder_of(tfrecords: Path | str) -> Path | str | None:
    """The image folder a converted dataset came from, when its manifest says and it exists."""
    try:
        data = json.loads(storage.read_text(storage.join(tfrecords, MANIFEST)))
    except (OSError, ValueError, TFRecordToolsError):
        return None
    source = (data.get("source") if isinstance(data, dict) else None) or {}
    path = source.get("path") if source.get("kind") == "image_folder" else None
    if not isinstance(path, str) or not path or not storage.is_dir(path):
        return None
    return path if is_url(path) else Path(path)


def _convert(
    image_dir: Path | str,
    out: Path | str,
    log: Log,
    *,
    max_size: int | None = None,
    encoding: str = "keep",
) -> dict[str, Any]:
    """Convert ``image_dir`` afresh (overwrite: a resumed conversion would time nothing),
    stored as ``max_size`` and ``encoding`` say (the converter's options)."""
    from ..convert.api import convert_image_folder

    workers = len(usable_cpus())
    log(f"convert: {storage.redact(image_dir)} -> {storage.redact(out)} ({workers} workers)")
    summary = convert_image_folder(
        image_dir,
        out,
        workers=workers,
        quiet=True,
        overwrite=True,
        max_size=max_size,
        encoding=encoding,
    )
    seconds = summary.elapsed
    return {
        "max_size": max_size,
        "encoding": encoding,
        "stored_as": summary.encoding or "keep",  # what auto chose
        "resized": summary.max_size.get("resized", 0) if summary.max_size else 0,
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
        "path": storage.redact(out) if is_url(out) else str(out),
    }


def _safe_name(folder: Path | str) -> str:
    name = (storage.basename(folder) if is_url(folder) else Path(folder).resolve().name) or "images"
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name)
