"""The shard plan: which sample goes to which split, shard and position. Pure functions,
no I/O, deterministic for a seed.

Data flow: source listing (labels, sizes) -> **plan** -> shard writers. Splits are
stratified by class; records are shuffled within each split so shards are not
class-sorted; shard counts follow ``--shards``, ``--shard-size`` or the default.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
from array import array
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from ..errors import ConversionError
from ..format.naming import shard_filename

#: Default target shard size: TF's guidance is shards of roughly 100-200 MB.
DEFAULT_SHARD_BYTES = 128 * 2**20
#: Below this a split is not cut further just to keep every worker busy.
MIN_SHARD_BYTES = 2 * 2**20
#: Records a shard holds at least, unless its split has fewer: readers such as the
#: ``tfrecord`` package's index loader cannot take a one-line index.
MIN_SHARD_RECORDS = 2

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*$", re.IGNORECASE)
_UNITS = {
    "": 1,
    "b": 1,
    "k": 10**3,
    "m": 10**6,
    "g": 10**9,
    "t": 10**12,
    "ki": 2**10,
    "mi": 2**20,
    "gi": 2**30,
    "ti": 2**40,
}


def parse_size(text: str) -> int:
    """``"100MB"`` -> 100_000_000, ``"64MiB"`` -> 67_108_864, ``"4096"`` -> 4096."""
    match = _SIZE_RE.match(str(text))
    if not match:
        raise ConversionError(f"cannot read size {text!r}: use e.g. 100MB, 64MiB or 4096")
    unit = (match.group(2) or "").lower().removesuffix("b")
    if unit not in _UNITS:
        raise ConversionError(f"unknown size unit in {text!r}")
    value = int(float(match.group(1)) * _UNITS[unit])
    if value <= 0:
        raise ConversionError(f"size must be positive, got {text!r}")
    return value


_SPLIT_NAME = re.compile(r"^[A-Za-z0-9_]+$")


def parse_splits(text: str | Mapping[str, float] | None) -> dict[str, float]:
    """``"train=0.9,validation=0.1"`` -> ``{"train": 0.9, "validation": 0.1}``.

    Fractions must be positive and sum to 1 (within 1e-6); no spec means all to train.
    """
    if text is None or text == "":
        return {"train": 1.0}
    if isinstance(text, Mapping):
        pairs = []
        for key, value in text.items():
            if not isinstance(key, str) or isinstance(value, bool):
                raise ConversionError(f"split must map split names to fractions, got {text!r}")
            try:
                pairs.append((key, float(value)))
            except (TypeError, ValueError):
                raise ConversionError(f"bad fraction {value!r} for split {key!r}") from None
    elif not isinstance(text, str):
        raise ConversionError(
            "split (--split) must be a spec such as 'train=0.9,validation=0.1' or a mapping "
            f"{{'train': 0.9, 'validation': 0.1}}, got {text!r}"
        )
    else:
        pairs = []
        for part in str(text).split(","):
            name, sep, value = part.partition("=")
            if not sep:
                raise ConversionError(f"bad split {part!r} in {text!r}: expected NAME=FRACTION")
            try:
                pairs.append((name.strip(), float(value)))
            except ValueError:
                raise ConversionError(f"bad fraction {value!r} in split spec {text!r}") from None
    splits: dict[str, float] = {}
    for name, fraction in pairs:
        if not _SPLIT_NAME.match(name):
            raise ConversionError(f"bad split name {name!r}: use letters, digits and _")
        if name in splits:
            raise ConversionError(f"split {name!r} given twice in {text!r}")
        if not 0 < fraction <= 1:
            raise ConversionError(f"split {name!r}: fraction {fraction} is not in (0, 1]")
        splits[name] = fraction
    if abs(sum(splits.values()) - 1.0) > 1e-6:
        raise ConversionError(f"split fractions {text!r} sum to {sum(splits.values()):g}, not 1")
    return splits


def _rng(seed: int, *salt: str) -> random.Random:
    """A generator that depends on the seed and a stable salt (not Python's hash()); its
    shuffles are the same on every platform and Python version this package supports."""
    digest = hashlib.sha256(repr((int(seed), salt)).encode()).digest()
    return random.Random(int.from_bytes(digest[:16], "little"))


def _indices(values: Iterable[int] = (), *, count: int) -> array:
    """Sample indices below ``count``, packed (4 bytes each, not a Python int each)."""
    return array("I" if count < 2**32 else "Q", values)


def stratified_split(
    labels: Sequence[int], fractions: Mapping[str, float], seed: int
) -> dict[str, array]:
    """Sample indices per split, stratified by label, deterministic for ``seed``.

    Each class is shuffled and cut by the fractions; the rounding remainder of each class
    goes to the splits furthest below their overall target, so totals track the fractions
    even with many small classes.
    """
    names = list(fractions)
    by_label: dict[int, array] = {}
    for index, label in enumerate(labels):
        if label not in by_label:
            by_label[label] = _indices(count=len(labels))
        by_label[label].append(index)
    picked = {n: _indices(count=len(labels)) for n in names}
    assigned = dict.fromkeys(names, 0)
    target = dict.fromkeys(names, 0.0)
    for label in sorted(by_label):
        members = by_label.pop(label)  # freed as it is dealt out: one copy of the indices
        _rng(seed, "class", str(label)).shuffle(members)
        counts = {n: int(len(members) * fractions[n]) for n in names}
        for n in names:
            target[n] += len(members) * fractions[n]
        for _ in range(len(members) - sum(counts.values())):
            neediest = max(names, key=lambda n: target[n] - (assigned[n] + counts[n]))
            counts[neediest] += 1
        start = 0
        for n in names:
            picked[n].extend(members[start : start + counts[n]])
            assigned[n] += counts[n]
            start += counts[n]
    for name, indices in picked.items():
        _rng(seed, "split", name).shuffle(indices)  # write order: not class-sorted
    return picked


def default_shard_count(num_bytes: int, workers: int) -> int:
    """Shards of ~128 MB; for smaller splits, two per worker (whole shards are the unit of
    parallel work: two each let the larger-first schedule even out uneven splits) as long
    as shards stay above 2 MB; rounded up so 2, 4 and 8 readers divide the count."""
    n = max(1, math.ceil(num_bytes / DEFAULT_SHARD_BYTES))
    n = max(n, min(2 * max(1, workers), num_bytes // MIN_SHARD_BYTES))
    return _round_up_divisible(n)


def _round_up_divisible(n: int) -> int:
    if n <= 1:
        return 1
    if n <= 8:
        return 1 << (n - 1).bit_length()  # 2, 4, 8
    return -(-n // 8) * 8


def shard_counts(
    split_bytes: Mapping[str, int],
    split_sizes: Mapping[str, int],
    *,
    shards: int | None = None,
    shard_size: int | None = None,
    workers: int = 1,
) -> dict[str, int]:
    """Shards per split. ``shards`` is the total, shared in proportion to the splits' bytes
    (at least one each); ``shard_size`` is a target size per shard; neither means
    :func:`default_shard_count`. Whichever, a shard gets at least
    :data:`MIN_SHARD_RECORDS` examples (a split of one example: one shard of one), so a
    count can come out lower than asked for."""
    if shards is not None and shard_size is not None:
        raise ConversionError("give --shards or --shard-size, not both")
    names = [n for n in split_sizes if split_sizes[n] > 0]
    if shards is not None:
        if shards < len(names):
            raise ConversionError(
                f"--shards {shards} is fewer than the {len(names)} non-empty splits"
            )
        counts = _proportional(shards, {n: max(split_bytes[n], 1) for n in names})
    elif shard_size is not None:
        counts = {n: max(1, math.ceil(split_bytes[n] / shard_size)) for n in names}
    else:
        counts = {n: default_shard_count(split_bytes[n], workers) for n in names}
    return {n: max(1, min(counts[n], split_sizes[n] // MIN_SHARD_RECORDS)) for n in names}


def _proportional(total: int, weights: Mapping[str, int]) -> dict[str, int]:
    """Largest-remainder apportionment of ``total``, then at least 1 each (taken from the
    largest)."""
    whole = sum(weights.values())
    shares = {n: total * w / whole for n, w in weights.items()}
    counts = {n: int(s) for n, s in shares.items()}
    by_remainder = sorted(shares, key=lambda n: shares[n] - counts[n], reverse=True)
    for n in by_remainder[: total - sum(counts.values())]:
        counts[n] += 1
    for n in counts:
        if counts[n] == 0:
            counts[max(counts, key=counts.__getitem__)] -= 1
            counts[n] = 1
    return counts


@dataclass(frozen=True)
class ShardPlan:
    """One shard to write: its file name and the source sample indices, in write order."""

    split: str
    index: int
    count: int
    filename: str
    samples: Sequence[int]


def plan_shards(
    name: str,
    labels: Sequence[int],
    sizes: Sequence[int],
    *,
    splits: Mapping[str, float] | Mapping[str, Sequence[int]],
    seed: int = 0,
    shards: int | None = None,
    shard_size: int | None = None,
    workers: int = 1,
) -> list[ShardPlan]:
    """The whole plan. ``splits`` is either fractions (stratified split made here) or the
    sample indices of each split (fixed splits such as MNIST's train/test), which are then
    shuffled for writing."""
    if all(isinstance(v, (int, float)) for v in splits.values()):
        members = stratified_split(labels, splits, seed)  # type: ignore[arg-type]
    else:
        members = {s: _indices(v, count=len(labels)) for s, v in splits.items()}  # type: ignore[arg-type]
        for s, idx in members.items():
            _rng(seed, "split", s).shuffle(idx)
    split_bytes = {s: sum(int(sizes[i]) for i in idx) for s, idx in members.items()}
    split_sizes = {s: len(idx) for s, idx in members.items()}
    counts = shard_counts(
        split_bytes, split_sizes, shards=shards, shard_size=shard_size, workers=workers
    )
    plans = []
    for split, n in counts.items():
        idx = memoryview(members[split])  # shards are views of it: no copies
        bounds = [len(idx) * k // n for k in range(n + 1)]  # balanced, contiguous
        for i in range(n):
            chunk = idx[bounds[i] : bounds[i + 1]]
            plans.append(ShardPlan(split, i, n, shard_filename(name, split, i, n), chunk))
    return plans
