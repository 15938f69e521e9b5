"""``TFRecordDataSource`` (tfrecord_tools.access, no TensorFlow) against tf.data, one core.

    .venv/bin/python benchmarks/bench_access.py [--work /tmp/tfrt-access] [--repeats 3]
        [--mnist 60000] [--digits 10000] [--photos 300] [--core N]

Pinned to one core (``os.sched_setaffinity``), page cache warm, median of ``--repeats``:

1. MNIST-like raw 28x28 records (``convert mnist --encoding raw`` of synthetic IDX files)
   in batches of 1024: ``src.batches(1024)`` (both CRCs of every record checked, labels
   decoded, one uint8 array per batch) against ``tf.data.TFRecordDataset(files).batch(1024)``
   with nothing parsed, over the same shards. Goal: >= 800,000 images/s and >= 2.5x TF.
2. ``src[i]`` in random order over 28x28 PNG digits (``sample.make_digits``): one pread,
   both CRCs, parse, PNG decode per record. Goal: >= 25,000 records/s.
3. Photos (``sample.make_photos``: 500x375, 90 % JPEG) at 224x224: ``src[i]`` in random
   order against ``make_dataset(image_size=224, batch_size=32)``, images/s per core.

Figures 2 and 3 depend on the decoders: pyspng and simplejpeg (a plain install where they
have wheels) and OpenCV's resize (the ``fast`` extra): the first line says which were found.
"""

from __future__ import annotations

import argparse
import os
import statistics
import struct
import time
from pathlib import Path

import numpy as np

import tfrecord_tools as tt
from tfrecord_tools import sample


def _timed(fn) -> float:
    start = time.perf_counter()
    count = fn()
    return count / (time.perf_counter() - start)


def _median(fn, repeats: int) -> float:
    fn()  # warm the page cache and any lazy state
    return statistics.median(_timed(fn) for _ in range(repeats))


def _mnist(work: Path, count: int) -> Path:
    out = work / f"mnist-raw-{count}"
    if (out / "dataset.json").exists():
        return out
    src = work / f"mnist-idx-{count}"
    src.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", count), ("t10k", 1000)):
        pixels = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        (src / f"{prefix}-images-idx3-ubyte").write_bytes(
            bytes([0, 0, 8, 3]) + struct.pack(">3I", n, 28, 28) + pixels.tobytes()
        )
        (src / f"{prefix}-labels-idx1-ubyte").write_bytes(
            bytes([0, 0, 8, 1]) + struct.pack(">I", n) + labels.tobytes()
        )
    tt.convert_mnist(src, out, encoding="raw", quiet=True, overwrite=True)
    return out


def _converted(folder: Path, out: Path) -> Path:
    if not (out / "dataset.json").exists():
        tt.convert_image_folder(folder, out, quiet=True, overwrite=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", default="/tmp/tfrt-access")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--mnist", type=int, default=60000)
    parser.add_argument("--digits", type=int, default=10000)
    parser.add_argument("--photos", type=int, default=300)
    parser.add_argument("--core", type=int, default=None)
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    mnist = _mnist(work, args.mnist)
    digits = _converted(sample.make_digits(work / "digits", count=args.digits), work / "digits-tfr")
    photos = _converted(sample.make_photos(work / "photos", count=args.photos), work / "photos-tfr")
    core = args.core if args.core is not None else max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    print(f"one core (cpu {core}), medians of {args.repeats} runs, page cache warm")
    from tfrecord_tools.access import decode

    fast = [m.__name__ for m in (decode.pyspng, decode.simplejpeg, decode.cv2) if m is not None]
    print(f"fast decoders loaded: {', '.join(fast) or 'none (Pillow only)'}")

    src = tt.TFRecordDataSource(mnist, channels=1)
    ours = _median(lambda: sum(len(y) for _, y in src.batches(1024)), args.repeats)
    import tensorflow as tf  # after our runs: our figures are for a process without it

    ds = tf.data.TFRecordDataset(src.files).batch(1024)
    theirs = _median(lambda: sum(int(b.shape[0]) for b in ds), args.repeats)
    print(
        f"MNIST raw 28x28, batches of 1024: src.batches {ours:,.0f} images/s, TFRecordDataset"
        f".batch (nothing parsed) {theirs:,.0f} records/s: {ours / theirs:.2f}x"
    )

    rng = np.random.default_rng(0)
    src = tt.TFRecordDataSource(digits, channels=1)
    order = rng.permutation(len(src)).tolist()

    def random_reads(source, order=order) -> int:
        for i in order:
            source[i]
        return len(order)

    rate = _median(lambda: random_reads(src), args.repeats)
    print(f"28x28 PNG digits, src[i] in random order: {rate:,.0f} records/s")

    src = tt.TFRecordDataSource(photos, image_size=224)
    photo_order = rng.permutation(len(src)).tolist()
    ours = _median(lambda: random_reads(src, photo_order), args.repeats)
    ds = tt.make_dataset(photos, image_size=224, batch_size=32, threads=1, num_parallel_calls=1)
    theirs = _median(lambda: sum(int(x.shape[0]) for x, _ in ds), args.repeats)
    print(
        f"photos 500x375 -> 224x224: src[i] random order {ours:,.0f} images/s, "
        f"make_dataset {theirs:,.0f} images/s per core: {ours / theirs:.2f}x"
    )


if __name__ == "__main__":
    main()
