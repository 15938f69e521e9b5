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
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
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
    args = parser.parse_args()

    from tfrecord_tools.check.locate import locate
    from tfrecord_tools.check.verify import verify

    args.work.mkdir(parents=True, exist_ok=True)
    out = prepare(args.work, args.count)
    files = [ref.path for ref in locate([out]).shards]
    total = sum(f.stat().st_size for f in files)
    records = sum(ref.expected["num_examples"] for ref in locate([out]).shards)  # type: ignore[index]
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


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
