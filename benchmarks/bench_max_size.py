"""``convert images --max-size`` against a plain Pillow loop doing the same job, per core.

    .venv/bin/python benchmarks/bench_max_size.py [--count 200] [--size 320] [--repeats 3]

Photos: ~1024x768 noisy JPEGs (q90), made here with numpy + Pillow. Ours: the library call
``convert_image_folder(src, out, max_size=320, workers=1)``: probe, DCT-scaled decode
(``draft``), LANCZOS resize, JPEG q90, TFRecord shards, index, manifest. Baseline: for every
file, ``Image.open`` (full decode), LANCZOS resize to longest side 320, JPEG q90 into memory
(no TFRecord writing at all). Both run in this process pinned to one core
(``os.sched_setaffinity``), interleaved, medians of ``--repeats``. The output dataset's bytes
are printed too (reading speed is measured by ``bench_read.py``).
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def make_photos(folder: Path, count: int, seed: int = 0) -> int:
    """``count`` noisy photo-like 1024x768 JPEGs (q90) in 4 classes; returns their bytes."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:768, 0:1024] / 1024
    total = 0
    for i in range(count):
        light = np.sin(x * rng.uniform(3, 12) + i) * np.cos(y * rng.uniform(3, 9)) * 90
        tint = rng.uniform(0.6, 1.2, 3)
        pixels = 128 + light[..., None] * tint + rng.normal(0, 12, (768, 1024, 3))
        image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
        path = folder / f"class_{i % 4}" / f"{i:05d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path, "JPEG", quality=90)
        total += path.stat().st_size
    return total


def pillow_loop(files: list[Path], size: int) -> int:
    """The plain way: full decode, LANCZOS to longest side ``size``, JPEG q90."""
    out = 0
    for path in files:
        with Image.open(path) as image:
            image.load()
            scale = size / max(image.size)
            target = (round(image.width * scale), round(image.height * scale))
            small = image.resize(target, Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        small.save(buffer, "JPEG", quality=90)
        out += len(buffer.getvalue())
    return out


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--size", type=int, default=320)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()

    from tfrecord_tools import convert_image_folder

    core = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    work = Path(args.work or tempfile.mkdtemp(prefix="tfrt-max-size-"))
    src, out = work / "photos", work / "out"
    source_bytes = make_photos(src, args.count)
    files = sorted(src.rglob("*.jpg"))
    print(
        f"{args.count} JPEGs 1024x768 q90, {source_bytes / 1e6:.1f} MB; one core (#{core}), "
        f"--max-size {args.size}, medians of {args.repeats}"
    )
    pillow_loop(files[:5], args.size)  # warm-up: imports, page cache
    ours, plain = [], []
    for _ in range(args.repeats):
        shutil.rmtree(out, ignore_errors=True)
        start = time.perf_counter()
        convert_image_folder(src, out, max_size=args.size, workers=1, quiet=True)
        ours.append(time.perf_counter() - start)
        start = time.perf_counter()
        plain_bytes = pillow_loop(files, args.size)
        plain.append(time.perf_counter() - start)
    for label, times in (("tfrecord-tools --max-size", ours), ("Pillow loop (full decode)", plain)):
        med = statistics.median(times)
        print(
            f"  {label:<27} median {med:6.3f} s ({min(times):.3f}-{max(times):.3f})  "
            f"{args.count / med:7.1f} img/s"
        )
    print(f"  -> speed-up {statistics.median(plain) / statistics.median(ours):.2f}x (goal >= 1.3x)")
    print(
        f"  output: dataset {folder_bytes(out) / 1e6:.2f} MB (shards, indexes, manifest); "
        f"Pillow loop's JPEGs {plain_bytes / 1e6:.2f} MB; sources {source_bytes / 1e6:.1f} MB"
    )
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
