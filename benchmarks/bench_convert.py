"""Conversion throughput against its baselines, each measured in the same run.

    .venv/bin/python benchmarks/bench_convert.py [--work /tmp/tfrt-bench] [--repeats 3]

1. photos (~100 KB, 90 % JPEG q90 + 10 % PNG), small folder: tfrecord-tools on 2 workers vs
   an inception ``build_image_data.py``-style converter (decodes every image in a TF session);
2. photos, large folder: tfrecord-tools vs ``tar`` copying the same folder;
3. MNIST-format IDX (digits rendered with fonts), PNG encoding, end to end (CLI process);
4. peak memory converting 10k vs 100k small PNGs (main process and largest worker).

Every figure is the median of ``--repeats`` runs with the page cache warm; the command
lines are printed, so each figure can be reproduced alone.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import os
import shutil
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
CLI = [sys.executable, "-m", "tfrecord_tools"]


# Commands run as a user's would: Python may cache bytecode (an installed package has its
# .pyc files; a sandbox's PYTHONDONTWRITEBYTECODE=1 made every start recompile ours, ~40 ms).
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def timed(cmd: list[str] | str, repeats: int, before=None) -> list[float]:
    times = []
    for _ in range(repeats):
        if before:
            before()
        t = time.perf_counter()
        subprocess.run(
            cmd, shell=isinstance(cmd, str), check=True, stdout=subprocess.DEVNULL, env=ENV
        )
        times.append(time.perf_counter() - t)
    return times


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def report(label: str, times: list[float], n: int, nbytes: int) -> float:
    med = statistics.median(times)
    print(
        f"  {label:<38} median {med:7.3f} s  ({min(times):.3f}-{max(times):.3f})  "
        f"{n / med:10,.0f} img/s  {nbytes / med / 1e6:8,.0f} MB/s"
    )
    return med


_CALL_PROBE = """
import json, shutil, sys, time
import tfrecord_tools as t
src, out, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3])
times = []
for _ in range(repeats):
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    t.convert_image_folder(src, out, workers=2, quiet=True)
    times.append(time.perf_counter() - start)
print(json.dumps(times))
"""


def bench_photos(work: Path, count: int, repeats: int, baseline: bool) -> dict:
    from tfrecord_tools.sample import make_photos

    src = make_photos(work / f"photos{count}", count=count, seed=0, workers=2)
    nbytes = folder_bytes(src)
    out = work / f"photos{count}-tfr"
    print(f"photos: {count} files, {nbytes / 1e6:,.0f} MB in {src}")
    cmd = [
        *CLI,
        "convert",
        "images",
        str(src),
        str(out),
        "--workers",
        "2",
        "--quiet",
    ]
    print("  $", " ".join(cmd))

    def fresh_out() -> None:  # not timed, as for tar
        shutil.rmtree(out, ignore_errors=True)

    timed(cmd, 1, fresh_out)  # warm-up: bytecode cached, as in an installed package
    ours = report(
        "tfrecord-tools convert (2 workers)", timed(cmd, repeats, fresh_out), count, nbytes
    )
    result = {"count": count, "bytes": nbytes, "ours_s": ours}
    dst = work / "tar-copy"
    tar = f"tar -C {src} -cf - . | tar -C {dst} -xf -"

    def fresh_dst() -> None:
        shutil.rmtree(dst, ignore_errors=True)
        dst.mkdir()

    print("  $", tar)
    result["tar_s"] = report(
        "tar copy of the folder", timed(tar, repeats, fresh_dst), count, nbytes
    )
    shutil.rmtree(dst, ignore_errors=True)
    print(f"  -> ours / tar = {ours / result['tar_s']:.2f}")
    if baseline:
        # ours as a call too (in a fresh process without TensorFlow, imports done first),
        # to set against the baseline's call below: both conversions alone
        call = [sys.executable, "-c", _CALL_PROBE, str(src), str(out), str(repeats)]
        print("  $", " ".join(call[:2]), "<convert_image_folder timed in-process>", *call[3:])
        result["ours_call_s"] = report(
            "tfrecord-tools, convert_image_folder call",
            json.loads(subprocess.run(call, check=True, capture_output=True, env=ENV).stdout),
            count,
            nbytes,
        )
        from inception_style import convert_like_inception

        times = []
        for _ in range(repeats):
            shutil.rmtree(work / "inception-out", ignore_errors=True)
            t = time.perf_counter()
            n = convert_like_inception(src, work / "inception-out", num_threads=2)
            times.append(time.perf_counter() - t)
        result["inception_s"] = report("inception-style (TF session, 2 thr)", times, n, nbytes)
        print(
            f"  -> ours is {result['inception_s'] / result['ours_call_s']:.1f}x faster than "
            "inception-style, conversion call against conversion call"
        )
        print(
            f"  -> ours is {result['inception_s'] / ours:.1f}x faster, our whole process "
            "against its conversion call alone"
        )
        # like for like: both whole processes, start-up and imports included
        script = [sys.executable, str(ROOT / "benchmarks" / "inception_style.py")]
        process = [*script, str(src), str(work / "inception-out")]
        print("  $", " ".join(process))

        def fresh_inception() -> None:
            shutil.rmtree(work / "inception-out", ignore_errors=True)

        result["inception_process_s"] = report(
            "inception-style, whole process",
            timed(process, repeats, fresh_inception),
            count,
            nbytes,
        )
        print(
            f"  -> ours is {result['inception_process_s'] / ours:.1f}x faster, "
            "whole process against whole process"
        )
    return result


def write_idx(path: Path, array: np.ndarray) -> None:
    header = struct.pack(">HBB", 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(header + array.tobytes())


def make_mnist_like(work: Path, n_train: int, n_test: int) -> Path:
    """MNIST-format .gz files from font-drawn digits (the project's sample generator)."""
    from tfrecord_tools.sample import make_digits

    dest = work / f"mnist{n_train}"
    if (dest / "t10k-labels-idx1-ubyte.gz").exists():
        return dest
    digits = make_digits(work / f"digits{n_train + n_test}", count=n_train + n_test, workers=2)
    files = sorted(digits.glob("*/*.png"), key=lambda p: p.name)
    pixels = np.stack([np.asarray(Image.open(f)) for f in files])
    labels = np.array([int(f.parent.name) for f in files], np.uint8)
    dest.mkdir(parents=True, exist_ok=True)
    for prefix, sl in (("train", slice(0, n_train)), ("t10k", slice(n_train, None))):
        write_idx(dest / f"{prefix}-images-idx3-ubyte.gz", pixels[sl])
        write_idx(dest / f"{prefix}-labels-idx1-ubyte.gz", labels[sl])
    return dest


def bench_mnist(work: Path, repeats: int) -> dict:
    src = make_mnist_like(work, 60_000, 10_000)
    out = work / "mnist-tfr"
    result = {}
    for encoding in ("png", "raw"):
        cmd = [
            *CLI,
            "convert",
            "mnist",
            str(src),
            str(out),
            "--encoding",
            encoding,
            "--workers",
            "2",
            "--shards",
            "4",
            "--quiet",
        ]
        print("  $", " ".join(cmd))
        result[encoding] = report(
            f"MNIST 70,000 {encoding} (2 workers, CLI)",
            timed(cmd, repeats, lambda: shutil.rmtree(out, ignore_errors=True)),
            70_000,
            70_000 * 784,
        )
    return result


# The main process's peak comes from /proc (VmHWM): ru_maxrss survives exec on Linux, so in
# a child of this script (which has imported TensorFlow for the inception baseline) it would
# report the parent's peak. A forked worker's RSS also counts the parent's pages it shares
# (the listing, the plan), so the workers' private memory (smaps_rollup) is sampled too.
_MEMORY_PROBE = """
import json, resource, sys
import tfrecord_tools as t
t.convert_image_folder(sys.argv[1], sys.argv[2], workers=2, quiet=True, overwrite=True,
                       shards=8)
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
print(json.dumps({"main_mb": int(status["VmHWM"].split()[0]) / 1024,
                  "worker_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


def _private_mb(pid: str) -> float:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            kb = sum(int(line.split()[1]) for line in f if line.startswith("Private_"))
    except OSError:  # gone
        return 0.0
    return kb / 1024


def _run_sampling_workers(cmd: list[str]) -> tuple[str, float]:
    """Run ``cmd``; return its stdout and the peak private memory of its children, sampled
    every 5 ms from here (a sampler inside the probe would add to its own peak)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    peak = 0.0
    while proc.poll() is None:
        for tasks in Path(f"/proc/{proc.pid}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                for pid in tasks.read_text().split():
                    peak = max(peak, _private_mb(pid))
        time.sleep(0.005)
    out = proc.stdout.read()  # type: ignore[union-attr]
    if proc.returncode != 0:
        raise SystemExit(f"{cmd} failed")
    return out, peak


def bench_memory(work: Path) -> dict:
    from tfrecord_tools.sample import make_digits

    result = {}
    for count in (10_000, 100_000):
        src = make_digits(work / f"digits{count}", count=count, workers=2)
        out = work / f"digits{count}-tfr"
        stdout, private = _run_sampling_workers(
            [sys.executable, "-c", _MEMORY_PROBE, str(src), str(out)]
        )
        result[count] = {**json.loads(stdout), "worker_private_mb": private}
        r = result[count]
        print(
            f"  peak RSS converting {count:>7,} small PNGs: main {r['main_mb']:.1f} MB, largest"
            f" worker {r['worker_mb']:.1f} MB (private to it: {r['worker_private_mb']:.1f} MB)"
        )
    for key in ("main_mb", "worker_mb", "worker_private_mb"):
        print(f"  -> {key}: 100k / 10k = {result[100_000][key] / result[10_000][key]:.3f}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/tfrt-bench"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--small", type=int, default=2_000)
    parser.add_argument("--large", type=int, default=10_000)
    parser.add_argument("--only", choices=("photos", "mnist", "memory"), action="append")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    only = set(args.only or ("photos", "mnist", "memory"))
    results = {}
    if "photos" in only:
        results["photos_small"] = bench_photos(args.work, args.small, args.repeats, True)
        results["photos_large"] = bench_photos(args.work, args.large, args.repeats, False)
    if "mnist" in only:
        print("MNIST-format, 60,000 + 10,000 font-drawn digits")
        results["mnist"] = bench_mnist(args.work, args.repeats)
    if "memory" in only:
        print("memory")
        results["memory"] = bench_memory(args.work)
    (args.work / "bench_convert.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
