"""The grid: which cells a benchmark runs, and what each child process is told.

Data flow: config -> **cells** (source x thread setting x cores x cache state x stored
variant (max size x encoding; for the sources that read the shards) x decode x crop x
dtype) -> one child spec per cell (JSON on the child's command line). Pure functions, no
I/O.

Cells are ordered cores, cache, threads, then stored variant, decode, crop, dtype and
source, so the cells compared with each other run next to each other in time (a drifting
machine shifts them alike).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .config import AUTO, SOURCE_AXES, STORED_SOURCES, BenchConfig


@dataclass(frozen=True)
class Cell:
    """One measurement: a source read with one thread setting on N cores, warm or cold."""

    source: str  # raw | tfrecord | keras | handwritten | tfds
    threads: int | str  # T or "auto"
    cores: int
    cache: str  # warm | cold
    decode: str = "scaled"  # scaled (JPEG DCT scaling) | full
    crop: str = "none"  # none | center | random
    dtype: str = "uint8"  # uint8 | float32
    max_size: int | None = None  # stored form of the tfrecord source: longest side
    encoding: str = "keep"  # keep | png | raw | auto (the converter's)

    @property
    def stored(self) -> tuple[int | None, str]:
        """The stored variant the cell reads (the converted dataset's key)."""
        return self.max_size, self.encoding

    @property
    def variant(self) -> str:
        """The stored form, decode, crop and dtype when not the defaults ("" for a plain
        cell)."""
        parts = [stored_label(self.max_size, self.encoding)]
        parts += [self.decode if self.decode != "scaled" else ""]
        parts += [f"crop={self.crop}" if self.crop != "none" else "", self.dtype]
        return " ".join(p for p in parts if p and p != "uint8")

    @property
    def label(self) -> str:
        label = f"{self.source} threads={self.threads} cores={self.cores} {self.cache}"
        return f"{label} {self.variant}".rstrip()

    def reader_options(self) -> dict[str, Any]:
        """The reader keywords of the decode, crop and dtype (random crops: seed 0)."""
        options: dict[str, Any] = {
            "decode_scaling": "auto" if self.decode == "scaled" else "off",
            "dtype": self.dtype,
        }
        if self.crop != "none":
            options["crop"] = self.crop
            options["seed"] = 0
        return options


def stored_label(max_size: int | None, encoding: str) -> str:
    """``max=320 raw``: a stored variant where it differs from the defaults ("" for none)."""
    parts = [f"max={max_size}" if max_size is not None else ""]
    parts += [encoding if encoding != "keep" else ""]
    return " ".join(p for p in parts if p)


def make_cells(config: BenchConfig) -> list[Cell]:
    """Every cell of the grid, in run order. A source runs once with the first value of the
    decode, crop and dtype axes it does not take (``SOURCE_AXES``: Keras takes none, the
    hand-written and TFDS pipelines only the dtype). Only the ``STORED_SOURCES`` read a
    stored variant: raw and keras read the image folder, and run with the first variant's
    slot (their cells carry the default max_size and encoding)."""
    first = {"decode": config.decode[0], "crop": config.crop[0], "dtype": config.dtype[0]}
    first_stored = config.stored[0]
    cells = []
    for cores, cache, threads, stored, decode, crop, dtype, source in itertools.product(
        config.cores,
        config.cache,
        config.threads,
        config.stored,
        config.decode,
        config.crop,
        config.dtype,
        config.sources,
    ):
        reads_stored = source in STORED_SOURCES
        if not reads_stored and stored != first_stored:
            continue
        axes = {"decode": decode, "crop": crop, "dtype": dtype}
        if any(axes[a] != first[a] for a in axes if a not in SOURCE_AXES[source]):
            continue
        if not reads_stored:
            stored = (None, "keep")
        cells.append(Cell(source, threads, cores, cache, decode, crop, dtype, *stored))
    return cells


def child_spec(
    cell: Cell,
    config: BenchConfig,
    *,
    cpus: list[int],
    image_dir: Path | None,
    tfrecords: Path | Mapping[tuple[int | None, str], Path] | None,
) -> dict[str, Any]:
    """What the child process needs for a cell of ``config``'s grid. ``tfrecords``: the
    dataset, or one per stored variant (``Cell.stored``)."""
    if isinstance(tfrecords, Mapping):
        tfrecords = tfrecords.get(cell.stored)
    return cell_spec(
        cell,
        tfrecords if cell.source in STORED_SOURCES else image_dir,
        cpus=cpus,
        batch_size=config.batch_size,
        image_size=config.image_size,
        channels=config.channels,
        epochs=config.epochs,
        repeats=config.repeats,
    )


def cell_spec(
    cell: Cell,
    path: str | Path | None,
    *,
    cpus: list[int],
    batch_size: int,
    image_size: int | tuple[int, int] | None,
    channels: int,
    epochs: int = 1,
    repeats: int = 3,
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What the child process needs: the cell, the CPUs to pin to, the data, the timing.

    ``image_size`` ``None``: the reader's default (the manifest's shape; not for keras).
    ``options``: reader keywords to use as they are instead of the thread setting's
    :func:`read_options` (the thread setting still sizes TensorFlow's pools)."""
    if len(cpus) < cell.cores:
        raise ValueError(f"{cell.cores} cores requested, only {len(cpus)} CPUs usable")
    if isinstance(image_size, int):
        image_size = (image_size, image_size)
    return {
        **asdict(cell),
        "cpus": cpus[: cell.cores],
        "path": str(path),
        "batch_size": batch_size,
        "image_size": list(image_size) if image_size else None,
        "channels": channels,
        "epochs": epochs,
        "repeats": repeats,
        "options": options,
    }


def read_options(threads: int | str, cores: int, num_files: int) -> dict[str, Any]:
    """The reader options of a thread setting (``reader.make_dataset`` keywords).

    ``T``: T parallel calls, min(T, files) files read at once, a private pool of T
    threads. ``auto``: tf.data's AUTOTUNE and its shared pool; the reader takes no
    AUTOTUNE cycle length, so ``auto`` reads min(cores, files) files at once.
    """
    if threads == AUTO:
        return {
            "num_parallel_calls": -1,  # tf.data.AUTOTUNE
            "cycle_length": max(1, min(cores, num_files)),
            "threads": None,
        }
    return {
        "num_parallel_calls": threads,
        "cycle_length": max(1, min(int(threads), num_files)),
        "threads": threads,
    }
