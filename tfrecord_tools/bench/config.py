"""What a benchmark run is asked to do: one frozen, validated :class:`BenchConfig`.

Data flow: **options** -> grid of cells (``grid.py``) -> one pinned child process per cell
(``child.py``) -> report (``report.py``, ``plot.py``). Lists may be given as Python
sequences or as the CLI's comma-separated strings (``"1,2,auto"``); ``None`` means "the
default for this mode" (``short`` or full), resolved here once.

Standard library only: the parent process of a benchmark never imports TensorFlow.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .. import storage
from ..cores import usable_cpus
from ..errors import TFRecordToolsError
from ..storage import is_url

SOURCES = ("raw", "tfrecord", "keras", "handwritten", "tfds")
#: The sources that read the converted shards (one cell per stored variant); the others read
#: the image folder.
STORED_SOURCES = ("tfrecord", "handwritten", "tfds")
#: The decode, crop and dtype axes each source takes; it runs once with the first value of
#: the others. Keras has none of them; the hand-written and TFDS pipelines decode in full,
#: crop nothing and cast to the dtype, as a user's pipeline does.
SOURCE_AXES = {
    "raw": ("decode", "crop", "dtype"),
    "tfrecord": ("decode", "crop", "dtype"),
    "keras": (),
    "handwritten": ("dtype",),
    "tfds": ("dtype",),
}
TFDS_MISSING = "tfds: tensorflow_datasets is not installed (pip install 'tfrecord-tools[tfds]')"
CACHE_STATES = ("warm", "cold")
SAMPLES = ("digits", "photos")
AUTO = "auto"
DECODES = ("scaled", "full")  # the reader's decode_scaling "auto" / "off"
CROPS = ("none", "center", "random")
DTYPES = ("uint8", "float32")
NONE = "none"  # --max-size none: images stored at their own size
ENCODINGS = ("keep", "png", "raw", "auto")  # the converter's encoding

#: Per sample kind: default image count (full, short), image size, channels.
SAMPLE_DEFAULTS = {
    "digits": {"count": (20_000, 1_000), "image_size": (28, 28), "channels": 1},
    "photos": {"count": (1_000, 64), "image_size": (224, 224), "channels": 3},
}
DEFAULT_IMAGE_SIZE = (224, 224)  # for a user's IMAGE_DIR
DEFAULT_THREADS: tuple[int | str, ...] = (1, 2, 4, 8, AUTO)


class BenchError(TFRecordToolsError):
    """Bad benchmark options (the message names the option, what was expected and found)."""


def default_cores(usable: int) -> tuple[int, ...]:
    """1, 2, 4, ... below the usable count, then the usable count itself."""
    out, n = [], 1
    while n < usable:
        out.append(n)
        n *= 2
    return (*out, usable)


@dataclass(frozen=True)
class BenchConfig:
    """A benchmark run. ``None`` fields take the default of the mode (``short`` or full).

    - ``image_dir``: image folder (one subfolder per class); ``None``: make a ``sample`` set
      of ``count`` images in ``work`` (``digits``: 28x28 PNG, ``photos``: ~100 KB JPEG).
    - ``tfrecords``: converted dataset folder (or glob); ``None``: convert ``image_dir``
      into ``work`` first, timed and reported on its own.
    - ``sources``: of ``raw`` (the image files through the reader's raw twin), ``tfrecord``
      (the reader), ``keras`` (``image_dataset_from_directory``), ``handwritten`` (the
      tf.data pipeline a user writes over the same shards) and ``tfds`` (TFDS's
      ``as_dataset`` over them); default: all, ``tfds`` only where tensorflow_datasets is
      installed (``skipped`` says so), ``tfds`` asked for without it: an error.
    - Grid: ``sources`` x ``threads`` (ints or ``"auto"``) x ``cores`` x ``cache`` x
      ``decode`` (``scaled``: JPEG DCT scaling, the reader's default; ``full``) x ``crop``
      (``none``, ``center``, ``random``) x ``dtype`` (``uint8``, ``float32``); each cell runs
      in a fresh process pinned to ``cores`` CPUs. A source runs once with the first value of
      an axis it does not take (``SOURCE_AXES``).
    - Stored form, for the ``tfrecord`` cells: ``max_size`` (``None``/``"none"``: images as
      they are, or the longest side in pixels) x ``encoding`` (``keep``, ``png``, ``raw``,
      ``auto``), the converter's options; one dataset is converted (and timed) per stored
      variant, read by the ``STORED_SOURCES``. The raw and keras cells read the image folder
      and run once.
    - Per cell: a warm-up pass, then ``repeats`` timed repeats of ``epochs`` passes each.
    """

    image_dir: str | os.PathLike | None = None
    tfrecords: str | os.PathLike | None = None
    out: str | os.PathLike = "bench-results"
    work: str | os.PathLike | None = None
    sources: Sequence[str] | str | None = None
    threads: Sequence[int | str] | str | None = None
    cores: Sequence[int] | str | None = None
    cache: Sequence[str] | str | None = None
    decode: Sequence[str] | str | None = None
    crop: Sequence[str] | str | None = None
    dtype: Sequence[str] | str | None = None
    max_size: Sequence[int | str | None] | int | str | None = None
    encoding: Sequence[str] | str | None = None
    batch_size: int = 32
    image_size: int | Sequence[int] | None = None
    channels: int | None = None
    epochs: int = 1
    repeats: int | None = None
    sample: str = "digits"
    count: int | None = None
    seed: int = 0
    short: bool = False
    plot: bool = True
    quiet: bool = False
    #: default sources left out, and why (set here, shown as notes in the report)
    skipped: tuple[str, ...] = field(default=(), init=False)

    def __post_init__(self) -> None:
        short = bool(self.short)
        if self.sample not in SAMPLES:
            raise BenchError(f"sample must be one of {', '.join(SAMPLES)}, got {self.sample!r}")
        sample = SAMPLE_DEFAULTS[self.sample]
        from_sample = self.image_dir is None and self.tfrecords is None
        usable = len(usable_cpus())
        sources = _choices("sources", self.sources, SOURCES, default=SOURCES)
        if "tfds" in sources and not has_tfds():
            if self.sources is not None:
                raise BenchError(f"sources: {TFDS_MISSING}; leave tfds out of --sources")
            sources = tuple(s for s in sources if s != "tfds")
            self._set("skipped", (f"{TFDS_MISSING}: its cells are left out",))
        self._set("sources", sources)
        remote = any(is_url(v) for v in (self.image_dir, self.tfrecords) if v is not None)
        default_cache = ("warm",) if remote else _cache(short)
        self._set("cache", _choices("cache", self.cache, CACHE_STATES, default=default_cache))
        self._set("decode", _choices("decode", self.decode, DECODES, default=DECODES[:1]))
        self._set("crop", _choices("crop", self.crop, CROPS, default=CROPS[:1]))
        self._set("dtype", _choices("dtype", self.dtype, DTYPES, default=DTYPES[:1]))
        self._set("max_size", _max_sizes(self.max_size))
        self._set("encoding", _choices("encoding", self.encoding, ENCODINGS, default=("keep",)))
        self._set("threads", _threads(self.threads, default=_threads_default(short)))
        self._set("cores", _cores(self.cores, usable, default=_cores_default(short, usable)))
        self._set("repeats", _positive("repeats", _or(self.repeats, 1 if short else 3)))
        self._set("epochs", _positive("epochs", self.epochs))
        self._set("batch_size", _positive("batch_size", self.batch_size))
        self._set("count", _positive("count", _or(self.count, sample["count"][short])))
        size = sample["image_size"] if from_sample else DEFAULT_IMAGE_SIZE
        self._set("image_size", _size(_or(self.image_size, size)))
        self._set("channels", _or(self.channels, sample["channels"] if from_sample else 3))
        if self.channels not in (1, 3, 4):
            raise BenchError(f"channels must be 1, 3 or 4, got {self.channels!r}")
        if _int_or_none(self.seed) is None or self.seed < 0:
            raise BenchError(f"seed must be an integer >= 0, got {self.seed!r}")
        self._set("out", Path(self.out))
        for name in ("image_dir", "tfrecords"):
            value = getattr(self, name)
            if value is not None:  # a URL stays a string (storage reads it)
                self._set(name, value if is_url(value) else Path(value))
        remote = self.remote
        if self.work is not None:
            self._set("work", self.work if is_url(self.work) else Path(self.work))
        elif is_url(self.image_dir or ""):  # the TFRecords beside the images, in the bucket
            self._set("work", storage.dirname(self.image_dir))
        else:
            self._set("work", self.out / "data")
        if remote and "cold" in self.cache:
            raise BenchError(
                "cache: cold evicts local files from the page cache; with data in a bucket "
                "every read goes to the server: use --cache warm"
            )
        if self.tfrecords is not None and self.stored != ((None, "keep"),):
            option = "max_size" if self.max_size != (None,) else "encoding"
            raise BenchError(
                f"{option}: the stored form is chosen by converting; give IMAGE_DIR (or a "
                "sample) instead of tfrecords to sweep it"
            )
        if self.image_dir is not None and not storage.is_dir(self.image_dir):
            raise BenchError(
                f"{storage.redact(self.image_dir)}: not a folder (expected one subfolder per class)"
            )

    @property
    def remote(self) -> bool:
        """The images or the TFRecords are in a bucket (a URL)."""
        return any(is_url(v) for v in (self.image_dir, self.tfrecords) if v is not None)

    def _set(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)

    @property
    def stored(self) -> tuple[tuple[int | None, str], ...]:
        """The stored variants (max_size, encoding), one converted dataset each."""
        return tuple(itertools.product(self.max_size, self.encoding))

    @property
    def num_cells(self) -> int:
        from .grid import make_cells

        return len(make_cells(self))

    def to_json(self) -> dict[str, Any]:
        """Every option, JSON-ready (paths as strings, tuples as lists)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Path):
                value = str(value)
            elif isinstance(value, str) and is_url(value):
                value = storage.redact(value)
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out


def has_tfds() -> bool:
    """Is tensorflow_datasets importable (found, not imported: it imports TensorFlow)?"""
    return importlib.util.find_spec("tensorflow_datasets") is not None


def _or(value: Any, default: Any) -> Any:
    return default if value is None else value


def _cache(short: bool) -> tuple[str, ...]:
    return ("warm",) if short else CACHE_STATES


def _threads_default(short: bool) -> tuple[int | str, ...]:
    return (AUTO,) if short else DEFAULT_THREADS


def _cores_default(short: bool, usable: int) -> tuple[int, ...]:
    return (1,) if short else default_cores(usable)


def _items(name: str, value: Sequence[Any] | str) -> list[Any]:
    items = value.split(",") if isinstance(value, str) else list(value)
    items = [i.strip() if isinstance(i, str) else i for i in items]
    if not items or any(i == "" for i in items):
        raise BenchError(f"{name}: expected a comma-separated list, got {value!r}")
    if len(set(items)) != len(items):
        raise BenchError(f"{name}: values repeat in {value!r}")
    return items


def _choices(name: str, value, allowed: Sequence[str], *, default) -> tuple[str, ...]:
    if value is None:
        return tuple(default)
    items = [str(i).lower() for i in _items(name, value)]
    for item in items:
        if item not in allowed:
            raise BenchError(f"{name}: {item!r} is not one of {', '.join(allowed)}")
    return tuple(items)


def _threads(value, *, default) -> tuple[int | str, ...]:
    if value is None:
        return tuple(default)
    return _counts_or_word("threads", value, AUTO, AUTO)


def _counts_or_word(name: str, value, word: str, stands_for, unit: str = ""):
    """Whole numbers >= 1 or ``word`` (which stands for ``stands_for``), none repeated."""
    out: list = []
    for item in _items(name, value):
        if (item is None and stands_for is None) or (
            isinstance(item, str) and item.lower() == word
        ):
            out.append(stands_for)
            continue
        number = _int_or_none(item)
        if number is None or number < 1:
            raise BenchError(f"{name}: expected integers >= 1{unit} or '{word}', got {item!r}")
        out.append(number)
    if len(set(out)) != len(out):
        raise BenchError(f"{name}: values repeat in {value!r}")
    return tuple(out)


def _cores(value, usable: int, *, default) -> tuple[int, ...]:
    if value is None:
        return tuple(default)
    out = []
    for item in _items("cores", value):
        number = _int_or_none(item)
        if number is None or not 1 <= number <= usable:
            raise BenchError(
                f"cores: expected integers from 1 to {usable} (the CPUs this process may "
                f"use), got {item!r}"
            )
        out.append(number)
    return tuple(out)


def _max_sizes(value) -> tuple[int | None, ...]:
    """``"none,320"``, ``[None, 320]``, ``320`` -> ``(None, 320)``."""
    if value is None:
        return (None,)
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    return _counts_or_word("max_size", value, NONE, None, " (pixels)")


def _positive(name: str, value: Any) -> int:
    number = _int_or_none(value)
    if number is None or number < 1:
        raise BenchError(f"{name} must be an integer >= 1, got {value!r}")
    return number


def _size(value: int | str | Sequence[int]) -> tuple[int, int]:
    """``224``, ``"224"``, ``"224x160"`` or ``(224, 160)`` -> (height, width)."""
    if isinstance(value, str):
        items: list[Any] = value.lower().replace(",", "x").split("x")
        items = items * 2 if len(items) == 1 else items
    else:
        items = [value, value] if isinstance(value, int) else list(value)
    numbers = [_int_or_none(v) for v in items]
    if len(numbers) != 2 or any(n is None or n < 1 for n in numbers):
        raise BenchError(f"image_size must be N or HEIGHTxWIDTH, integers >= 1, got {value!r}")
    return numbers[0], numbers[1]  # type: ignore[return-value]


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None
