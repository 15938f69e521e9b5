"""``tfrecord-tools verify`` throughput against ``tf.data.TFRecordDataset``, same run.

    .venv/bin/python benchmarks/bench_verify.py [--work /tmp/tfrt-bench] [--count 10000]
                                                [--repeats 3] [--workers N]

Makes (or reuses) a photo-like folder (``sample.make_photos``: ~100 KB JPEG/PNG) and its
plain TFRecord shards (~1.2 GB for 10,000 photos), warms the page cache, then runs, in
rounds so that all three see the same machine load:

1. our verify, full: every record's length and data CRC, file ends, manifest counts and
   sizes, the sha256 of every shard, the ``.idx`` files;
2. our verify ``--no-sha256``: the same without the whole-file sha256, i.e. the checks
   TensorFlow's reader makes (record CRCs) plus the framing and index checks;
3. TensorFlow: ``TFRecordDataset(files)`` counted with ``reduce`` in a child process
   (sequential files, and ``num_parallel_reads=2``), which checks record CRCs.

Each figure is the median of ``--repeats`` rounds; the command lines are printed so each
can be run alone.

With ``--sha256``, ``--url`` or ``--moto`` it measures instead, on synthetic shards
(``--shards`` x ``--shard-mb``, 100 KB records, written to ``--work`` and removed at the end
unless ``--keep``):

    .venv/bin/python benchmarks/bench_verify.py --sha256 [--shards 4 --shard-mb 256]
    .venv/bin/python benchmarks/bench_verify.py --url s3://bucket/ds      # AWS_ENDPOINT_URL...
    .venv/bin/python benchmarks/bench_verify.py --moto                    # a local moto server
    .venv/bin/python benchmarks/bench_verify.py --memory 100,1000         # peak RSS per size

* local verify (CRCs + sha256) against the two-core sha256 rate: ``hashlib.sha256`` over the
  same bytes (mapped, warm page cache) in 2 threads, the ceiling of a verify that hashes;
* with ``--url``: the dataset uploaded there (unless it holds a manifest already), then
  verify of the URL against local verify of the same shards, same rounds; ``--moto`` starts
  a moto S3 server in a child process and uses a bucket on it;
* with ``--memory``: verify of one ``memory://`` object of each size (MB) in a child
  process, its peak RSS (VmHWM, reset after the object is made) above the RSS before.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_TF_CHILD = r"""
import json, os, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf
files = json.loads(sys.argv[1])
count = lambda ds: ds.reduce(tf.constant(0, tf.int64), lambda n, _: n + 1)
print("ready", flush=True)
for line in sys.stdin:
    parallel = int(line)
    t = time.perf_counter()
    ds = tf.data.TFRecordDataset(files, num_parallel_reads=parallel or None)
    n = int(count(ds))
    print(json.dumps({"seconds": time.perf_counter() - t, "records": n}), flush=True)
"""

_TF_SNIPPET = (
    "tf.data.TFRecordDataset(files{}).reduce(tf.constant(0, tf.int64), lambda n, _: n + 1)"
)


def prepare(work: Path, count: int) -> Path:
    """The photo folder and its converted dataset, made once and reused."""
    from tfrecord_tools.convert.api import convert_image_folder
    from tfrecord_tools.sample import make_photos

    src = make_photos(work / f"photos{count}", count=count, seed=0, workers=2)
    out = work / f"verify-photos{count}-tfr"
    if not (out / "dataset.json").exists():
        print(f"converting {src} -> {out}")
        convert_image_folder(src, out, workers=2, quiet=True, overwrite=True)
    return out


def warm(files: list[Path]) -> None:
    buf = bytearray(1 << 20)
    for f in files:
        with open(f, "rb", buffering=0) as fh:
            while fh.readinto(buf):
                pass


class TFChild:
    """A child process that imports TensorFlow once and times one pass per request."""

    def __init__(self, files: list[Path]):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _TF_CHILD, json.dumps([str(f) for f in files])],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        if self.proc.stdout.readline().strip() != "ready":  # type: ignore[union-attr]
            raise SystemExit("the TensorFlow child did not start")

    def run(self, parallel: int) -> tuple[float, int]:
        self.proc.stdin.write(f"{parallel}\n")  # type: ignore[union-attr]
        self.proc.stdin.flush()  # type: ignore[union-attr]
        out = json.loads(self.proc.stdout.readline())  # type: ignore[union-attr]
        return out["seconds"], out["records"]

    def close(self) -> None:
        self.proc.stdin.close()  # type: ignore[union-attr]
        self.proc.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/tfrt-bench"))
    parser.add_argument("--count", type=int, default=10_000, help="photos (default: 10000)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=None, help="verify threads")
    parser.add_argument("--sha256", action="store_true", help="local verify vs 2-core sha256")
    parser.add_argument("--url", help="also verify the dataset uploaded to this folder URL")
    parser.add_argument("--moto", action="store_true", help="--url on a local moto server")
    parser.add_argument("--memory", help="peak RSS of verify of memory:// objects of these MB")
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--shard-mb", type=int, default=256)
    parser.add_argument("--keep", action="store_true", help="keep the synthetic shards")
    args = parser.parse_args()
    if args.memory:
        memory(args)
    if args.sha256 or args.url or args.moto:
        synthetic(args)
    if args.sha256 or args.url or args.moto or args.memory:
        return

    from tfrecord_tools.check.verify import verify
    from tfrecord_tools.dataset import resolve as locate

    args.work.mkdir(parents=True, exist_ok=True)
    out = prepare(args.work, args.count)
    files = [ref.path for ref in locate([out]).shards]
    total = sum(f.stat().st_size for f in files)
    records = sum(ref.expected.num_examples for ref in locate([out]).shards)  # type: ignore[union-attr]
    print(
        f"dataset: {out}: {len(files)} shards, {records:,} records, {total / 1e9:.2f} GB "
        f"({total / records / 1e3:.0f} KB per record); usable cores: "
        f"{len(os.sched_getaffinity(0))}; load average {os.getloadavg()[0]:.2f}"
    )
    warm(files)
    workers = ["--workers", str(args.workers)] if args.workers else []
    cli = [".venv/bin/python", "-m", "tfrecord_tools", "verify", *workers, str(out)]
    print("  $", " ".join(cli))
    print("  $", " ".join([*cli[:-1], "--no-sha256", str(out)]))
    print("  TF:", _TF_SNIPPET.format(""), " and with num_parallel_reads=2")

    times: dict[str, list[float]] = {"full": [], "nosha": [], "tf": [], "tf2": []}
    tf = TFChild(files)
    try:
        for round_ in range(args.repeats):
            for key, sha in (("full", True), ("nosha", False)):
                report = verify([out], workers=args.workers, sha256=sha)
                if not report.ok or report.records != records:
                    raise SystemExit(f"verify failed: {report.problems[:3]}")
                times[key].append(report.seconds)
            for key, parallel in (("tf", 0), ("tf2", 2)):
                seconds, n = tf.run(parallel)
                if n != records:
                    raise SystemExit(f"TensorFlow read {n} records, expected {records}")
                times[key].append(seconds)
            print(
                f"  round {round_ + 1}: "
                + ", ".join(f"{k} {total / t[-1] / 1e9:.2f} GB/s" for k, t in times.items())
            )
    finally:
        tf.close()

    med = {k: statistics.median(v) for k, v in times.items()}
    rate = {k: total / v / 1e9 for k, v in med.items()}
    labels = {
        "full": "tfrecord-tools verify (CRCs + sha256)",
        "nosha": "tfrecord-tools verify --no-sha256",
        "tf": "tf.data.TFRecordDataset, reduce",
        "tf2": "tf.data.TFRecordDataset(num_parallel_reads=2)",
    }
    print(f"\nmedian of {args.repeats}, warm cache, {total / 1e9:.2f} GB:")
    for key, label in labels.items():
        print(f"  {label:<48} {med[key]:7.3f} s  {rate[key]:6.2f} GB/s")
    best_tf = max(rate["tf"], rate["tf2"])
    print(
        f"  ratio vs the faster TF: full {rate['full'] / best_tf:.2f}x, "
        f"--no-sha256 {rate['nosha'] / best_tf:.2f}x"
    )
    print(f"  load average now {os.getloadavg()[0]:.2f} (other processes share the cores)")


# --------------------------------------------------------------------------- synthetic


def make_shards(folder: Path, shards: int, shard_mb: int) -> Path:
    """A dataset of ``shards`` plain shards of ~``shard_mb`` MB (100 KB random records),
    written by the package's own ShardWriter, with its manifest; reused when there."""
    from tfrecord_tools.format.manifest import build_manifest, write_manifest
    from tfrecord_tools.format.naming import shard_filename
    from tfrecord_tools.format.writer import ShardWriter

    if (folder / "dataset.json").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    record = 100_000
    pool = os.urandom(record * 64)
    entries = []
    for s in range(shards):
        with ShardWriter(folder / shard_filename("bench", "train", s, shards)) as writer:
            for k in range((shard_mb << 20) // (record + 16)):
                at = (k * 7919) % (len(pool) - record)
                writer.write(pool[at : at + record])
            entries.append(writer.commit())
    manifest = build_manifest(
        name="bench",
        source={"kind": "synthetic"},
        skipped=[],
        classes=["x"],
        compression="none",
        splits={"train": entries},
        statistics={},
        extra={},
        tool_version="bench",
    )
    write_manifest(folder, manifest)
    return folder


def sha256_two_cores(files: list[Path]) -> float:
    """Seconds to sha256 the files' bytes (mapped, in the page cache) in 2 threads."""
    import hashlib
    import mmap
    from concurrent.futures import ThreadPoolExecutor

    def one(path: Path) -> str:
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
            return hashlib.sha256(m).hexdigest()

    start = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(one, files))
    return time.perf_counter() - start


def synthetic(args: argparse.Namespace) -> None:
    from tfrecord_tools.check.verify import verify

    folder = args.work / f"verify-synthetic-{args.shards}x{args.shard_mb}"
    try:
        out = make_shards(folder, args.shards, args.shard_mb)
        files = sorted(p for p in out.iterdir() if ".tfrecord-" in p.name and p.suffix != ".idx")
        total = sum(f.stat().st_size for f in files)
        print(
            f"dataset: {out}: {len(files)} shards, {total / 1e9:.2f} GB; usable cores "
            f"{len(os.sched_getaffinity(0))}; load average {os.getloadavg()[0]:.2f}"
        )
        warm(files)
        with _bucket(args) as url:
            if url is not None:
                _upload(out, url)
            times: dict[str, list[float]] = {"sha256": [], "local": [], "bucket": []}
            for round_ in range(args.repeats):
                times["sha256"].append(sha256_two_cores(files))
                report = verify([out], workers=args.workers)
                if not report.ok:
                    raise SystemExit(f"verify failed: {report.problems[:3]}")
                times["local"].append(report.seconds)
                if url is not None:
                    report = verify(url, workers=args.workers)
                    if not report.ok or report.bytes != total:
                        raise SystemExit(f"verify of {url} failed: {report.problems[:3]}")
                    times["bucket"].append(report.seconds)
                print(
                    f"  round {round_ + 1}: "
                    + ", ".join(
                        f"{k} {total / t[-1] / 1e9:.2f} GB/s" for k, t in times.items() if t
                    )
                )
        rate = {k: total / statistics.median(v) / 1e9 for k, v in times.items() if v}
        print(f"\nmedian of {args.repeats}, warm cache, {total / 1e9:.2f} GB:")
        print(f"  hashlib.sha256, 2 threads          {rate['sha256']:6.2f} GB/s")
        print(f"  verify (CRCs + sha256), local      {rate['local']:6.2f} GB/s")
        print(f"  ratio local verify / 2-core sha256 {rate['local'] / rate['sha256']:6.2f}")
        if "bucket" in rate:
            print(f"  verify of {url:<25}{rate['bucket']:6.2f} GB/s")
            print(f"  ratio bucket / local verify        {rate['bucket'] / rate['local']:6.2f}")
        print(f"  load average now {os.getloadavg()[0]:.2f}")
    finally:
        if not args.keep:
            import shutil

            shutil.rmtree(folder, ignore_errors=True)


def _upload(folder: Path, url: str) -> None:
    from tfrecord_tools import storage

    if storage.exists(storage.join(url, "dataset.json")):
        return
    print(f"uploading to {storage.redact(url)}")
    names = sorted(p.name for p in folder.iterdir() if p.name != "dataset.json")
    for name in [*names, "dataset.json"]:
        storage.put_file(folder / name, storage.join(url, name))


@contextlib.contextmanager
def _bucket(args: argparse.Namespace):
    """The URL to verify: ``--url``, or a bucket on a moto server started here (``--moto``)."""
    if not args.moto:
        yield args.url
        return
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    os.environ.update(
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
    )
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("moto_server")), "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            time.sleep(0.05)
        import fsspec

        fsspec.filesystem("s3").mkdir("tfrt-bench")
        print(f"moto server (pid {server.pid}) on port {port}")
        yield "s3://tfrt-bench/ds"
    finally:
        server.terminate()
        server.wait(30)


# --------------------------------------------------------------------------- memory

_MEMORY_CHILD = r"""
import os, sys
from tfrecord_tools import storage
from tfrecord_tools.format.framing import frame
from tfrecord_tools.check.verify import verify

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024

size = int(sys.argv[1])
record = frame(os.urandom(100_000))
url = "memory://mem/shard.tfrecord"
with storage.filesystem(url)[0].open("/mem/shard.tfrecord", "wb") as f:
    for _ in range(size // len(record)):
        f.write(record)
del f
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # VmHWM := VmRSS
before = status("VmRSS")
report = verify(url)
assert report.ok, report.problems
print(status("VmHWM") - before, report.bytes, report.seconds)
"""


def memory(args: argparse.Namespace) -> None:
    """Peak RSS of verify of one ``memory://`` object per size, each in a fresh process."""
    print("verify of one memory:// object: peak RSS above the RSS before (VmHWM)")
    for mb in (int(x) for x in args.memory.split(",")):
        done = subprocess.run(
            [sys.executable, "-c", _MEMORY_CHILD, str(mb << 20)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=True,
        )
        growth, size, seconds = done.stdout.split()
        print(
            f"  {int(size) / 1e6:8.0f} MB object: peak +{int(growth) / 1e6:6.1f} MB "
            f"({float(seconds):.2f} s)"
        )


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
