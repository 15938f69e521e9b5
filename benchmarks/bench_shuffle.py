"""make_dataset's shuffles: how well they mix class-sorted shards, and what they cost.

    .venv/bin/python benchmarks/bench_shuffle.py [--work /tmp/tfrt-shuffle] [--repeats 3]

Quality, over class-sorted shards written here (10 classes x 500 records of ~9 KB, ~47 MB,
8 shards with index files, no manifest), read through a 400-record buffer: the fraction of
equal neighbouring labels and the lag-1 label autocorrelation, for ``shuffle=True`` (files,
then the buffer), ``shuffle="global"`` (runs of records across the shards, then the buffer)
and a true permutation (numpy), each over 3 seeds.
Speed (images/s, median of --repeats timed passes, each after a warm-up, the two shuffles
alternating; ``bench.timing``) of
``shuffle="global"`` against ``shuffle=True`` on one core (the process pins itself before
importing TensorFlow): photos (``sample.make_photos``, 300, read at 224, batch 64) and
digits (``sample.make_digits``, 6,000 28x28 PNGs, batch 256), with the default buffer
(10,000) and with a 400-record one (digits: runs of 25 records).
Goals: global >= 0.9x the file-level shuffle's throughput; its equal-neighbour fraction
within 1.5x a true permutation's.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

if hasattr(os, "sched_setaffinity"):  # one core, before TensorFlow is imported
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})

import numpy as np

CLASSES, PER_CLASS, SHARDS, RECORD_SIDE = 10, 500, 8, 56
QUALITY_BUFFER = 400


def write_sorted(folder: Path) -> Path:
    """Class-sorted shards of raw RGB records (label = class), with index files."""
    from tfrecord_tools.format.example import encode_example
    from tfrecord_tools.format.writer import ShardWriter

    if (folder / "done").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    total = CLASSES * PER_CLASS
    per_shard = -(-total // SHARDS)
    for shard in range(SHARDS):
        name = folder / f"sorted-train.tfrecord-{shard:05d}-of-{SHARDS:05d}"
        with ShardWriter(name) as writer:
            for i in range(shard * per_shard, min(total, (shard + 1) * per_shard)):
                pixels = rng.integers(0, 256, (RECORD_SIDE, RECORD_SIDE, 3), np.uint8)
                writer.write(
                    encode_example(
                        encoded=pixels.tobytes(),
                        image_format="raw",
                        height=RECORD_SIDE,
                        width=RECORD_SIDE,
                        channels=3,
                        label=i // PER_CLASS,
                        text=str(i // PER_CLASS),
                        filename=f"{i}.raw",
                    )
                )
            writer.commit()
    (folder / "done").touch()
    return folder


def mixing(labels: np.ndarray) -> dict[str, float]:
    equal = float(np.mean(labels[1:] == labels[:-1]))
    lag1 = float(np.corrcoef(labels[:-1], labels[1:])[0, 1])
    return {"equal_neighbours": equal, "lag1_autocorrelation": lag1}


def quality(folder: Path) -> dict[str, dict[str, float]]:
    from tfrecord_tools import make_dataset

    out: dict[str, dict[str, float]] = {}
    cells = {"file-level": True, "global": "global"}
    for name, shuffle in cells.items():
        runs = []
        for seed in range(3):
            ds = make_dataset(
                folder,
                shuffle=shuffle,
                shuffle_buffer=QUALITY_BUFFER,
                seed=seed,
                batch_size=500,
                image_format="raw",
            )
            labels = np.concatenate([lab.numpy() for _, lab in ds])
            runs.append(mixing(labels))
        out[name] = {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}
    labels = np.repeat(np.arange(CLASSES), PER_CLASS)
    perms = [mixing(np.random.default_rng(s).permutation(labels)) for s in range(3)]
    out["permutation"] = {k: float(np.mean([r[k] for r in perms])) for k in perms[0]}
    for name in cells:
        out[name]["equal_vs_permutation"] = (
            out[name]["equal_neighbours"] / out["permutation"]["equal_neighbours"]
        )
    return out


def seek(folder: Path) -> dict[str, float]:
    """That a run is read from its byte offset, not from the start of its shard: a run of
    the shard's last record takes as long as one of its first (building the dataset, a
    function trace, is most of either), against the whole shard through a record
    reader with the same dataset around it (ms, medians of 5, warm cache)."""
    import statistics
    import time

    from tfrecord_tools.format.index import read_index
    from tfrecord_tools.format.naming import index_path
    from tfrecord_tools.read.options import ReadOptions
    from tfrecord_tools.read.records import read_runs
    from tfrecord_tools.read.shards import Runs

    shard = str(sorted(folder.glob("*.tfrecord-*"))[0])
    index = read_index(index_path(shard))
    opts = ReadOptions(seed=0)
    first = Runs([shard], [index[0][0]], [1], [index[0][1]])
    last = Runs([shard], [index[-1][0]], [1], [index[-1][1]])
    whole = Runs([shard], [0], [len(index)], [os.path.getsize(shard)])

    def ms(make) -> float:
        times = []
        for _ in range(5):
            start = time.perf_counter()
            for _ in make():
                pass
            times.append(1000 * (time.perf_counter() - start))
        return statistics.median(times)

    ms(lambda: read_runs(last, opts))  # warm-up
    return {
        "shard_mb": os.path.getsize(shard) / 1e6,
        "first_record_ms": ms(lambda: read_runs(first, opts)),
        "last_record_ms": ms(lambda: read_runs(last, opts)),
        "whole_shard_ms": ms(lambda: read_runs(whole, opts)),
    }


def speed(work: Path, repeats: int) -> dict[str, dict]:
    from tfrecord_tools import convert_image_folder, make_dataset
    from tfrecord_tools.bench.timing import figures, measure
    from tfrecord_tools.sample import make_digits, make_photos

    sets = {
        "photos": (
            make_photos(work / "photos-src", count=300),
            {"image_size": 224, "batch_size": 64},
        ),
        "digits": (
            make_digits(work / "digits-src", count=6000),
            {"channels": 1, "batch_size": 256},
        ),
    }
    out: dict[str, dict] = {}
    for name, (src, options) in sets.items():
        data = work / f"{name}-tfr"
        if not (data / "dataset.json").exists():
            convert_image_folder(src, data, shards=8, quiet=True)
        for buffer in (10_000, QUALITY_BUFFER):
            # the two cells alternate, one timed pass each per round, so that a change in
            # the machine's load touches both alike
            passes: dict[str, list] = {"file-level": [], "global": []}
            for _ in range(repeats):
                for cell, shuffle in (("file-level", True), ("global", "global")):

                    def make(data=data, shuffle=shuffle, buffer=buffer, options=options):
                        return make_dataset(
                            data, shuffle=shuffle, shuffle_buffer=buffer, seed=0, **options
                        )

                    passes[cell] += measure(make, repeats=1)["repeats"]
            rates = {cell: figures(r)["images_per_s"] for cell, r in passes.items()}
            out[f"{name} buffer={buffer}"] = {
                **{cell: round(rate, 1) for cell, rate in rates.items()},
                "global_vs_file_level": round(rates["global"] / rates["file-level"], 3),
            }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/tfrt-shuffle"))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    report = {
        "cores": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "quality": quality(write_sorted(args.work / "sorted")),
        "seek": seek(args.work / "sorted"),
        "speed": speed(args.work, args.repeats),
    }
    json.dump(report, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
