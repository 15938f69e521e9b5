"""What a reader can be told: :class:`ReadOptions`, validated on creation, shared by the
tf.data pipelines and the raw-file twin. TensorFlow-free.

Data flow: keyword options -> **ReadOptions** -> pipeline. A misspelt option is an error that
names it and lists the valid ones; an image size whose batch cannot fit in memory is one
that names it (:func:`check_memory`), before anything is built.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from ..cores import usable_cores
from ..dataset.options import CHANNEL_CHOICES, normalise_size
from ..errors import TFRecordToolsError

IMAGE_FORMATS = ("jpeg", "png", "raw")
PROCESSING_MODES = ("distributed_epoch", "parallel_epochs")
DECODE_SCALING = ("auto", "off")
CROPS = ("center", "random")
GLOBAL_SHUFFLE = "global"
DTYPES = ("uint8", "float32")
TASKS = ("classification", "detection", "segmentation")
#: Options of some tasks only -> the tasks that take them.
TASK_OPTIONS = {
    "masks": ("detection",),
    "keypoints": ("detection",),
    "ragged": ("detection",),
    "keep_aspect": ("detection", "segmentation"),
}

_FORMAT_NAMES = {"jpeg": "jpeg", "jpg": "jpeg", "png": "png", "raw": "raw"}


def normalise_format(name: str | None) -> str | None:
    """``JPEG``/``jpg``/`` png `` -> ``jpeg``/``png``; unknown names -> None."""
    return _FORMAT_NAMES.get((name or "").strip().lower())


def normalise_processing_mode(mode: str) -> str:
    """``distributed_epoch`` (every record once, spread over the workers) or
    ``parallel_epochs`` (every worker runs the whole pipeline)."""
    spelled = mode.strip().lower().replace("-", "_")
    if spelled not in PROCESSING_MODES:
        raise TFRecordToolsError(
            f"processing_mode must be one of {', '.join(PROCESSING_MODES)}, got {mode!r}"
        )
    return spelled


def service_address(service: str) -> str:
    """``grpc://host:port`` from ``host:port`` or ``grpc://host:port``."""
    address = service if "://" in service else f"grpc://{service}"
    protocol, _, rest = address.partition("://")
    host, _, port = rest.rpartition(":")
    if protocol != "grpc" or not host or not port.isdigit():
        raise TFRecordToolsError(
            f"service must look like grpc://HOST:PORT or HOST:PORT, got {service!r}"
        )
    return address


AUTOTUNE = -1


@dataclass(frozen=True)
class ReadOptions:
    """Everything a pipeline can be told; validated on creation."""

    batch_size: int | None = None
    image_size: tuple[int, int] | None = None
    channels: int = 3
    shuffle: bool | str = False  # True: files + record buffer; "global": runs across shards
    shuffle_buffer: int = 10_000
    seed: int | None = None
    repeat: bool | int = False
    drop_remainder: bool = False
    num_parallel_calls: int | None = AUTOTUNE
    cycle_length: int = 1
    threads: int | None = None
    deterministic: bool | None = None
    num_workers: int = 1
    worker_index: int = 0
    prefetch: int | None = AUTOTUNE
    image_format: str | None = None  # "png", "jpeg", "raw": skip the per-record tf.case
    orientation: bool = True  # apply EXIF orientation (image/orientation, or a raw file's EXIF)
    autotune: bool = False  # tf.data's autotuning (see the module docstring)
    service: str | None = None  # tf.data service dispatcher, grpc://host:port
    processing_mode: str = "distributed_epoch"
    job_name: str | None = None
    decode_scaling: str = "auto"  # "auto": JPEGs decoded at the smallest DCT scale >= image_size
    crop: str | None = None  # None, "center" (central_fraction) or "random" (random-resized)
    central_fraction: float = 0.875  # the side kept by crop="center"
    flip: bool = False  # random horizontal flip, seeded by seed
    dtype: str = "uint8"  # "float32": the resized values, not rounded
    image_key: str = "auto"  # the feature holding the image bytes; "auto": found (read/keys.py)
    label_key: str | None = "auto"  # the int64 label; "auto": found; None: no label (-1)
    task: str = "classification"  # "detection": boxes and classes; "segmentation": masks
    masks: bool = False  # task="detection": each object's mask, [N, H, W] uint8
    keypoints: bool = False  # task="detection": [N, K, 3] (y, x, visibility)
    ragged: bool = False  # task="detection", batched: per-object fields as tf.RaggedTensor
    keep_aspect: bool = False  # detection / segmentation: fit image_size, pad bottom/right

    def __post_init__(self) -> None:
        object.__setattr__(self, "image_size", normalise_size(self.image_size))
        self._check_geometry()
        if self.channels not in CHANNEL_CHOICES:
            raise TFRecordToolsError(f"channels must be 1, 3 or 4, got {self.channels}")
        if self.batch_size is not None and self.batch_size < 1:
            raise TFRecordToolsError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.num_workers < 1 or not 0 <= self.worker_index < self.num_workers:
            raise TFRecordToolsError(
                f"worker_index {self.worker_index} is not in 0..{self.num_workers - 1}"
            )
        if self.cycle_length < 1:
            raise TFRecordToolsError(f"cycle_length must be at least 1, got {self.cycle_length}")
        if self.image_format is not None:
            fmt = normalise_format(self.image_format)
            if fmt is None:
                raise TFRecordToolsError(
                    f"image_format must be png, jpeg or raw, got {self.image_format!r}"
                )
            object.__setattr__(self, "image_format", fmt)
        if self.service is not None:
            object.__setattr__(self, "service", service_address(self.service))
            object.__setattr__(
                self, "processing_mode", normalise_processing_mode(self.processing_mode)
            )
            if self.num_workers > 1:
                raise TFRecordToolsError(
                    "service and num_workers/input_context do not mix: the tf.data service "
                    "already spreads the files over its workers"
                )
        self._check_shuffle()
        task = self.task.strip().lower() if isinstance(self.task, str) else self.task
        if task not in TASKS:
            raise TFRecordToolsError(f"task must be one of {', '.join(TASKS)}, got {self.task!r}")
        object.__setattr__(self, "task", task)
        self._check_task()
        if self.shuffle_buffer < 1:
            raise TFRecordToolsError("shuffle_buffer must be at least 1")
        for name in ("image_key", "label_key"):
            key = getattr(self, name)
            if (key is not None or name == "image_key") and (not isinstance(key, str) or not key):
                raise TFRecordToolsError(
                    f"{name} must be a feature key such as 'image' or 'auto'"
                    + (" (or None: no label)" if name == "label_key" else "")
                    + f", got {key!r}"
                )
        if not isinstance(self.orientation, bool):
            raise TFRecordToolsError(
                f"orientation must be True (apply EXIF orientation) or False, "
                f"got {self.orientation!r}"
            )

    @property
    def global_shuffle(self) -> bool:
        """``shuffle="global"``: runs of records (index files) shuffled across all shards."""
        return self.shuffle == GLOBAL_SHUFFLE

    def _check_task(self) -> None:
        """The options of one task only (masks, keypoints, ragged: detection; keep_aspect:
        detection and segmentation; label_key: classification) are refused with another,
        all named in one message."""
        for name in TASK_OPTIONS:
            if not isinstance(getattr(self, name), bool):
                raise TFRecordToolsError(
                    f"{name} must be True or False, got {getattr(self, name)!r}"
                )
        wrong = [
            f"{name}=True ({' or '.join(repr(t) for t in tasks)} only)"
            for name, tasks in TASK_OPTIONS.items()
            if getattr(self, name) and self.task not in tasks
        ]
        if self.task != "classification" and self.label_key != "auto":
            wrong.append(
                f"label_key={self.label_key!r} (objects carry their classes in "
                "image/object/class/label)"
            )
        if wrong:
            raise TFRecordToolsError(f"task={self.task!r} does not take {', '.join(wrong)}")
        if self.ragged and not self.batch_size:
            raise TFRecordToolsError("ragged=True shapes batches: pass batch_size")
        if self.keep_aspect and self.image_size is None:
            raise TFRecordToolsError(
                "keep_aspect=True fits each image into image_size: pass image_size"
            )

    def _check_shuffle(self) -> None:
        shuffle = self.shuffle
        if isinstance(shuffle, str):
            shuffle = shuffle.strip().lower()
        if not isinstance(shuffle, bool) and shuffle != GLOBAL_SHUFFLE:
            raise TFRecordToolsError(
                "shuffle must be False, True (shuffle the files, then a record buffer) or "
                "'global' (runs of records across all shards, then the buffer), "
                f"got {self.shuffle!r}"
            )
        object.__setattr__(self, "shuffle", shuffle)

    def _check_geometry(self) -> None:
        """decode_scaling, crop, central_fraction, flip, dtype: spelling and combinations."""
        for name, allowed in (("decode_scaling", DECODE_SCALING), ("dtype", DTYPES)):
            value = getattr(self, name)
            spelled = value.strip().lower() if isinstance(value, str) else value
            if spelled not in allowed:
                raise TFRecordToolsError(
                    f"{name} must be one of {', '.join(allowed)}, got {value!r}"
                )
            object.__setattr__(self, name, spelled)
        crop = self.crop.strip().lower() if isinstance(self.crop, str) else self.crop
        crop = None if crop in ("none", "") else crop
        if crop is not None and crop not in CROPS:
            raise TFRecordToolsError(
                f"crop must be None, {' or '.join(repr(c) for c in CROPS)}, got {self.crop!r}"
            )
        object.__setattr__(self, "crop", crop)
        if crop is not None and self.image_size is None:
            raise TFRecordToolsError(
                f"crop={crop!r} needs image_size: the crop is resized to it "
                "(pass image_size=N or (height, width))"
            )
        fraction = self.central_fraction
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)):
            raise TFRecordToolsError(f"central_fraction must be a number, got {fraction!r}")
        if not 0 < fraction <= 1:
            raise TFRecordToolsError(f"central_fraction must be in (0, 1], got {fraction!r}")
        if not isinstance(self.flip, bool):
            raise TFRecordToolsError(f"flip must be True or False, got {self.flip!r}")


def options_from(kwargs: dict[str, Any], *, also: tuple[str, ...] = ()) -> ReadOptions:
    """ReadOptions from keyword arguments; ``input_context`` (a ``tf.distribute.InputContext``)
    stands for ``num_workers``/``worker_index``. Unknown names are an error naming them and
    the valid ones (``also``: the caller's own keyword arguments, valid too)."""
    kwargs = dict(kwargs)
    known = {f.name for f in fields(ReadOptions)} | {"input_context", *also}
    for name in kwargs:
        if name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise TFRecordToolsError(
                f"unknown option {name!r}{hint}; valid options: {', '.join(sorted(known))}"
            )
    context = kwargs.pop("input_context", None)
    if context is not None:  # a tf.distribute.InputContext
        kwargs["num_workers"] = context.num_input_pipelines
        kwargs["worker_index"] = context.input_pipeline_id
    opts = ReadOptions(**kwargs)
    check_memory(opts)
    one_core = opts.num_parallel_calls == AUTOTUNE and usable_cores() == 1
    if one_core and not opts.autotune and opts.service is None:
        # a parallel map's one call runs on a thread of its own, handing each element over
        # (~45 us a 224x224 photo, ~2.5 % of its decode); a sequential map runs it in the
        # consumer's. A service's workers may have more cores
        opts = replace(opts, num_parallel_calls=None)
    return opts


def check_memory(opts: ReadOptions, available: int | None = None) -> None:
    """Refuse an ``image_size`` whose output cannot fit in memory (``available`` bytes;
    default :func:`available_memory`): one batch of ``batch_size`` images of ``dtype``, plus
    the image being resized (float32). TensorFlow would build the pipeline and fail at the
    first batch (``ResourceExhaustedError``), or the system would kill the process."""
    if opts.image_size is None:
        return
    available = available_memory() if available is None else available
    if available is None:
        return
    height, width = opts.image_size
    pixels = height * width * opts.channels
    batch = opts.batch_size or 1
    need = batch * pixels * (4 if opts.dtype == "float32" else 1) + pixels * 4
    if need <= available:
        return
    shape = f"{height}x{width}x{opts.channels}"
    if opts.batch_size:
        what = (
            f"image_size={opts.image_size} with batch_size={batch}: a batch of {batch} {shape} "
            f"{opts.dtype} images and the one being resized (float32) take {_gib(need)}"
        )
    else:
        what = f"image_size={opts.image_size}: one {shape} image takes {_gib(need)} resized"
    raise TFRecordToolsError(
        f"{what}, more than the {_gib(available)} of memory available: choose a smaller "
        + ("image_size or batch_size" if batch > 1 else "image_size")
    )


def _gib(n: int) -> str:
    return f"{n / (1 << 30):,.1f} GiB"


def available_memory() -> int | None:
    """Bytes this process may still use: the system's ``MemAvailable``, or a container's
    memory limit (cgroup v1 or v2) when that is lower; None where neither is known."""
    found = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    return min(found + _cgroup_limits(), default=None)


def _cgroup_limits() -> list[int]:
    """The memory limits of this process's cgroups (none: no limit, or not Linux)."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return []
    limits = []
    for line in lines:
        _, controllers, group = line.split(":", 2)
        if not controllers:  # v2: one hierarchy
            limit = Path(f"/sys/fs/cgroup{group}").joinpath("memory.max")
        elif "memory" in controllers.split(","):
            limit = Path(f"/sys/fs/cgroup/memory{group}").joinpath("memory.limit_in_bytes")
        else:
            continue
        try:
            value = limit.read_text().strip()
        except OSError:
            continue
        if value.isdigit() and int(value) < 1 << 60:  # "max" or ~2^63: no limit
            limits.append(int(value))
    return limits
