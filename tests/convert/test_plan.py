"""The shard plan: pure functions, checked with fake listings."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tfrecord_tools.convert import plan
from tfrecord_tools.errors import ConversionError


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("4096", 4096),
        ("100MB", 100_000_000),
        ("64MiB", 64 * 2**20),
        ("1.5 GB", 1_500_000_000),
        ("2k", 2000),
        ("3KiB", 3072),
    ],
)
def test_parse_size(text, value):
    assert plan.parse_size(text) == value


@pytest.mark.parametrize("text", ["", "-1MB", "0", "ten", "5 parsecs"])
def test_parse_size_rejects(text):
    with pytest.raises(ConversionError):
        plan.parse_size(text)


def test_default_shard_count_follows_size_and_workers():
    mb = 2**20
    assert plan.default_shard_count(3 * mb, 8) == 1  # small: one shard
    assert plan.default_shard_count(5 * mb, 2) == 2  # shards stay above 2 MB
    assert plan.default_shard_count(40 * mb, 2) == 4  # two per worker
    assert plan.default_shard_count(1000 * mb, 2) == 8  # ~128 MB each, rounded to 8
    assert plan.default_shard_count(10_000 * mb, 2) == 80
    for n in (1, 3, 5, 9, 17, 100):
        count = plan.default_shard_count(n * 128 * mb, 2)
        assert count >= n and (count & (count - 1) == 0 or count % 8 == 0)


def test_shards_total_shared_by_size_at_least_one_each():
    counts = plan.shard_counts(
        {"train": 900, "validation": 90, "test": 10},
        {"train": 900, "validation": 90, "test": 10},
        shards=10,
    )
    assert counts == {"train": 8, "validation": 1, "test": 1}
    with pytest.raises(ConversionError, match="fewer than the 3"):
        plan.shard_counts({"a": 1, "b": 1, "c": 1}, {"a": 1, "b": 1, "c": 1}, shards=2)


def test_never_a_one_record_shard_unless_the_split_has_one_example():
    assert plan.shard_counts({"train": 5}, {"train": 5}, shards=8) == {"train": 2}
    assert plan.shard_counts({"train": 3}, {"train": 3}, shards=10) == {"train": 1}
    assert plan.shard_counts({"train": 1}, {"train": 1}, shards=4) == {"train": 1}
    assert plan.shard_counts({"train": 9, "test": 1}, {"train": 9, "test": 1}, shards=8) == {
        "train": 4,
        "test": 1,
    }
    assert plan.shard_counts({"train": 6}, {"train": 6}, shard_size=1) == {"train": 3}
    # the default count too: many large images, few of them
    assert plan.shard_counts({"train": 2**30}, {"train": 4}, workers=8) == {"train": 2}
    sizes = [
        len(p.samples)
        for p in plan.plan_shards("x", [0] * 5, [1] * 5, splits={"train": 1.0}, shards=8)
    ]
    assert sizes == [2, 3]


@settings(max_examples=100, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["train", "validation", "test"]), st.integers(1, 60), min_size=1
    ),
    st.integers(1, 40),
    st.sampled_from(["shards", "shard_size", "default"]),
)
def test_shards_hold_at_least_two_records(split_sizes, asked, mode):
    """Whatever is asked for, a shard gets two records or more unless its split has one
    example; and never more shards than asked for."""
    asked = max(asked, len(split_sizes))
    option = {"shards": {"shards": asked}, "shard_size": {"shard_size": asked}, "default": {}}
    split_bytes = {s: n * 1000 for s, n in split_sizes.items()}
    counts = plan.shard_counts(split_bytes, split_sizes, workers=4, **option[mode])
    assert set(counts) == set(split_sizes)
    for split, n in counts.items():
        assert n >= 1
        smallest = split_sizes[split] // n  # the plan's shards are balanced
        assert smallest >= plan.MIN_SHARD_RECORDS or split_sizes[split] == 1
        assert smallest >= 1
    if mode == "shards":
        assert sum(counts.values()) <= asked


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 6), min_size=1, max_size=200),
    st.integers(0, 2**32 - 1),
    st.sampled_from(["train=1", "train=0.8,test=0.2", "train=0.7,validation=0.2,test=0.1"]),
    st.integers(1, 9),
)
def test_plan_covers_every_sample_once(labels, seed, spec, shards):
    splits = plan.parse_splits(spec)
    shards = max(shards, len(splits))
    plans = plan.plan_shards(
        "x", labels, np.ones(len(labels)), splits=splits, seed=seed, shards=shards
    )
    every = [i for p in plans for i in p.samples]
    assert sorted(every) == list(range(len(labels)))
    again = plan.plan_shards(
        "x", labels, np.ones(len(labels)), splits=splits, seed=seed, shards=shards
    )
    assert [p.samples for p in plans] == [p.samples for p in again]
    split_size = {s: sum(len(p.samples) for p in plans if p.split == s) for s in splits}
    for p in plans:
        assert p.filename == f"x-{p.split}.tfrecord-{p.index:05d}-of-{p.count:05d}"
        assert len(p.samples) >= plan.MIN_SHARD_RECORDS or split_size[p.split] == 1


def test_stratified_totals_track_fractions_with_many_small_classes():
    labels = np.repeat(np.arange(100), 3)  # 100 classes of 3: per-class rounding is coarse
    parts = plan.stratified_split(labels, {"train": 0.8, "validation": 0.1, "test": 0.1}, 0)
    assert {k: len(v) for k, v in parts.items()} == {"train": 240, "validation": 30, "test": 30}
