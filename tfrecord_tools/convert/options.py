"""A conversion's options, checked before anything is read or written: every bad value is a
:class:`ConversionError` naming the option (its Python keyword and its command-line flag),
never a ``TypeError`` from deep inside.

Data flow: the public entry points' keyword arguments (``api``) -> **ShardingOptions** and
the checks below -> the steps of a conversion (``steps``). Nothing here imports TensorFlow.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

from ..cores import usable_cores
from ..errors import ConversionError
from ..format.compression import COMPRESSIONS, normalize_compression
from . import ENGINES
from . import plan as plan_module

__all__ = [
    "ShardingOptions",
    "choice",
    "dataset_name",
    "flag",
    "location",
    "whole",
]


def _named(option: str) -> str:
    """``workers (--workers)``: the Python keyword and the command-line flag."""
    return f"{option} (--{option.replace('_', '-')})"


def whole(option: str, value: Any, *, minimum: int, maximum: int | None = None) -> int:
    """``value`` as a whole number within [minimum, maximum] (True and False are not)."""
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise ConversionError(f"{_named(option)} must be a whole number, got {value!r}")
    number = value.__index__()
    if number < minimum:
        raise ConversionError(f"{_named(option)} must be at least {minimum}, got {number}")
    if maximum is not None and number > maximum:
        raise ConversionError(f"{_named(option)} must be at most {maximum}, got {number}")
    return number


def flag(option: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConversionError(f"{_named(option)} must be True or False, got {value!r}")
    return value


def choice(option: str, value: Any, choices: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ConversionError(f"{option} must be one of {', '.join(choices)}, got {value!r}")
    return value


def location(option: str, value: Any) -> str | os.PathLike:
    """SRC or OUT: a path (``str`` or ``os.PathLike``) or a URL, not empty."""
    text = os.fspath(value) if isinstance(value, os.PathLike) else value
    if not isinstance(text, str) or not text:
        raise ConversionError(
            f"{option} must be a folder (a path or a URL such as gs://bucket/folder), got {value!r}"
        )
    return value


def dataset_name(name: Any) -> str:
    """The dataset's name, which starts every shard's file name: one plain file name (no
    folder part, not hidden, no control characters), so shards land in OUT and nowhere
    else."""
    plain = (
        isinstance(name, str)
        and name not in ("", ".", "..")
        and not name.startswith(".")
        and not any(c in "/\\" or ord(c) < 32 or c == "\x7f" for c in name)
    )
    if not plain:
        raise ConversionError(
            f"{_named('name')} must be one plain file name (no '/' or '\\', not '..', not "
            f"starting with '.', no control characters): it starts every shard's file name "
            f"in OUT; got {name!r}"
        )
    return name


def _seconds(option: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConversionError(f"{_named(option)} must be a number of seconds, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ConversionError(
            f"{_named(option)} must be a positive number of seconds, got {value!r}"
        )
    return float(value)


@dataclass(frozen=True)
class ShardingOptions:
    """How a conversion cuts and writes shards, and what it may do to OUT; validated on
    creation (every bad value a ConversionError naming the option)."""

    shards: int | None = None
    shard_size: int | str | None = None
    workers: int | None = None
    compression: str = "none"
    seed: int = 0
    quiet: bool = False
    overwrite: bool = False
    #: write into a folder that holds other files and no dataset of ours (or into / or the
    #: home folder): refused unless asked for
    allow_nonempty_out: bool = False
    #: seconds a storage request (a bucket's) may go without progress, its retries included;
    #: None: $TFRECORD_TOOLS_STORAGE_TIMEOUT or 60 (``storage.DEFAULT_STORAGE_TIMEOUT``)
    storage_timeout: float | None = None
    engine: str = "local"  # or "beam"
    runner: str | None = None  # Beam runner
    pipeline_args: tuple[str, ...] = ()  # Beam pipeline options

    @classmethod
    def among(cls, arguments: dict[str, Any]) -> ShardingOptions:
        """The options among a public entry point's keyword arguments (its ``locals()``)."""
        return cls(**{f.name: arguments[f.name] for f in fields(cls)})

    def __post_init__(self) -> None:
        def fix(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        if self.shards is not None:
            fix("shards", whole("shards", self.shards, minimum=1))
        if self.shards is not None and self.shard_size is not None:
            raise ConversionError("give --shards or --shard-size, not both")
        if isinstance(self.shard_size, str):
            fix("shard_size", plan_module.parse_size(self.shard_size))
        elif self.shard_size is not None:
            fix("shard_size", whole("shard_size", self.shard_size, minimum=1))
        if self.workers is not None:
            fix("workers", whole("workers", self.workers, minimum=1))
        if self.compression is not None and not isinstance(self.compression, str):
            raise ConversionError(
                f"{_named('compression')} must be one of {', '.join(COMPRESSIONS)}, "
                f"got {self.compression!r}"
            )
        fix("compression", normalize_compression(self.compression))
        fix("seed", whole("seed", self.seed, minimum=-(2**63)))
        for name in ("quiet", "overwrite", "allow_nonempty_out"):
            flag(name, getattr(self, name))
        fix("storage_timeout", _seconds("storage_timeout", self.storage_timeout))
        choice("engine", self.engine, ENGINES)
        if self.runner is not None and (not isinstance(self.runner, str) or not self.runner):
            raise ConversionError(
                f"{_named('runner')} must be a Beam runner's name, got {self.runner!r}"
            )
        args = self.pipeline_args
        if isinstance(args, (str, bytes)) or not isinstance(args, Sequence):
            raise ConversionError(
                f"pipeline_args must be a list of Beam options (['--project=P']), got {args!r}"
            )
        if not all(isinstance(a, str) for a in args):
            raise ConversionError(f"pipeline_args must hold strings, got {list(args)!r}")
        if self.engine != "beam" and (self.runner or args):
            raise ConversionError("a Beam runner and pipeline options need engine='beam'")
        if self.engine == "beam":
            from .beam import require_beam

            require_beam()
        fix("pipeline_args", tuple(args))

    def share(self, key: str, value: Any) -> bool:
        """Offer a large input to forked local workers (False: put it in the jobs)."""
        from . import inherit

        return self.engine == "local" and inherit.share(key, value)

    @property
    def num_workers(self) -> int:
        return self.workers or usable_cores()
