"""Building blocks of reading and checking shards, timed with pytest-benchmark.

    .venv/bin/python -m pytest benchmarks/ --benchmark-only -p no:cacheprovider

(pyproject's ``--benchmark-skip`` keeps them out of normal runs; ``--benchmark-only`` overrides it,
``--benchmark-enable`` alone does not with pytest-benchmark 5.) Throughput is shown
as ``extra_info["GB/s"]`` next to pytest-benchmark's timings; nothing is asserted about
speed, only that each block did its work.
"""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import pytest

from tfrecord_tools.format.framing import frame, iter_headers, masked_crc32c
from tfrecord_tools.format.scan import Damage, RecordScanner
from tfrecord_tools.format.writer import ShardWriter

RECORD = random.Random(0).randbytes(100_000)  # a ~100 KB photo-sized payload
SHARD_RECORDS = 400  # ~40 MB


@pytest.fixture(scope="module")
def shard(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("bench") / "photos.tfrecord"
    rng = random.Random(1)
    with ShardWriter(path) as writer:
        for _ in range(SHARD_RECORDS):
            writer.write(rng.randbytes(rng.randrange(60_000, 140_000)))
        writer.commit()
    return path


@pytest.fixture(scope="module")
def junk(tmp_path_factory) -> Path:
    """8 MB with no record in it: resync has to search all of it."""
    path = tmp_path_factory.mktemp("bench") / "junk.tfrecord"
    path.write_bytes(random.Random(2).randbytes(8 << 20))
    return path


def _rate(benchmark, nbytes: int) -> None:
    benchmark.extra_info["GB/s"] = round(nbytes / benchmark.stats.stats.median / 1e9, 2)


def test_masked_crc32c_100kb(benchmark):
    benchmark(masked_crc32c, RECORD)
    _rate(benchmark, len(RECORD))


def test_sha256_100kb(benchmark):
    benchmark(lambda: hashlib.sha256(RECORD).digest())
    _rate(benchmark, len(RECORD))


def test_frame_100kb(benchmark):
    assert len(benchmark(frame, RECORD)) == len(RECORD) + 16
    _rate(benchmark, len(RECORD))


def _scan(path: Path, sha: bool, use_mmap: bool) -> int:
    digest = hashlib.sha256() if sha else None
    hook = digest.update if digest else None
    with RecordScanner(path, on_raw=hook, use_mmap=use_mmap) as scanner:
        return sum(1 for item in scanner if not isinstance(item, Damage))


@pytest.mark.parametrize("use_mmap", [True, False], ids=["mmap", "readinto"])
@pytest.mark.parametrize("sha", [False, True], ids=["crc", "crc+sha256"])
def test_scan_shard(benchmark, shard, sha, use_mmap):
    assert benchmark(_scan, shard, sha, use_mmap) == SHARD_RECORDS
    _rate(benchmark, shard.stat().st_size)


def test_header_walk_shard(benchmark, shard):
    assert benchmark(lambda: sum(1 for _ in iter_headers(shard))) == SHARD_RECORDS
    _rate(benchmark, shard.stat().st_size)


def test_resync_search_through_junk(benchmark, junk):
    def scan() -> list:
        with RecordScanner(junk) as scanner:
            return list(scanner)

    items = benchmark(scan)
    assert len(items) == 1 and isinstance(items[0], Damage)
    _rate(benchmark, junk.stat().st_size)
