"""Object storage against local disk, on a real S3 server on this machine (moto's), each
ratio measured in the same run, every figure the median of ``--repeats`` runs.

    .venv/bin/python benchmarks/bench_buckets.py [--work /tmp/tfrt-buckets] [--count 2000]
        [--repeats 3] [--latency-ms 20] [--out bench-buckets] [--only convert,read,verify,latency]

1. **convert**: 2,000 sample photos, local folder -> local dataset against bucket -> bucket
   (``s3://src/photos`` -> ``s3://out/photos-tfr``), the same converter and workers;
2. **read**: ``make_dataset`` over the local dataset against the bucket's (images/s, one
   pass, 224x224, batches of 32);
3. **verify**: ``verify`` of the local dataset against the bucket's (GB/s of shard bytes,
   sha256 on), and the peak memory (VmHWM) of verifying one 1 GB and one 100 MB shard
   object, each in a fresh process;
4. **latency**: the project's question where it matters most: raw files
   (``make_raw_dataset``) against TFRecords (``make_dataset``), both from the bucket,
   directly and through a proxy adding ``--latency-ms`` to every request
   (``latency_proxy.py``): a table, ``bench-buckets.json`` and ``bench-buckets.png``.

Every timed operation runs in a fresh process (``--child``), so no file system object, page
cache of fsspec or TensorFlow start-up is shared between the cells; the time is that of the
operation alone. The S3 server and the proxy are processes of their own, on localhost.
Beside the conversion and verify figures, the **server floor**: the time to fetch the same
objects and do nothing with them (``storage.read_many``, concurrent GETs), which no client
can beat on that server. (s3rver, from npm, was tried as a faster server: its listing with
an empty delimiter, which s3fs's recursive ``find`` sends, fails with an internal error.)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve()
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
ENV.update(
    AWS_ACCESS_KEY_ID="bench",
    AWS_SECRET_ACCESS_KEY="bench",
    AWS_DEFAULT_REGION="us-east-1",
    TF_CPP_MIN_LOG_LEVEL="2",
)


# ---- servers -------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(port: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server on port {port} exited ({proc.returncode})")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise SystemExit(f"no server on port {port}")


@contextlib.contextmanager
def servers(latency_ms: float, log: Path | None = None):
    """moto's S3 server and the latency proxy in front of it: (direct URL, proxied URL).
    ``log``: where moto's request log goes (bench_access_bucket.py counts requests there)."""
    procs = []
    try:
        port = _free_port()
        with open(log, "wb") if log is not None else contextlib.nullcontext() as out:
            moto = subprocess.Popen(
                [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1",
                 "-p", str(port)],
                stdout=subprocess.DEVNULL,
                stderr=out if out is not None else subprocess.DEVNULL,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )  # fmt: skip
        procs.append(moto)
        _wait(port, moto)
        proxy_port = _free_port()
        proxy = subprocess.Popen(
            [sys.executable, str(HERE.with_name("latency_proxy.py")), "--listen",
             str(proxy_port), "--to", str(port), "--delay-ms", str(latency_ms)],
        )  # fmt: skip
        procs.append(proxy)
        _wait(proxy_port, proxy)
        yield f"http://127.0.0.1:{port}", f"http://127.0.0.1:{proxy_port}"
    finally:
        for proc in procs:
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)


# ---- children: one timed operation each ----------------------------------------------------


def _peak_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def child(kind: str, target: str, extra: str | None) -> dict:
    """Run one operation; return its seconds and what it did."""
    if kind == "convert":
        from tfrecord_tools import convert_image_folder

        start = time.perf_counter()
        summary = convert_image_folder(target, extra, overwrite=True, workers=2)
        return {"seconds": time.perf_counter() - start, "images": summary.num_examples}
    if kind in ("read", "raw"):
        import tensorflow as tf  # noqa: F401 - imported before the clock starts

        from tfrecord_tools import make_dataset, make_raw_dataset
        from tfrecord_tools.bench.timing import measure

        make = make_dataset if kind == "read" else make_raw_dataset
        # the harness's timing: a warm-up pass, then a fresh dataset per timed pass, each
        # timed from its iterator's creation to its last element (the manifest or listing
        # read is part of make(), timed too: with a URL it is requests)
        timed = measure(
            lambda: make(target, batch_size=32, image_size=224, shuffle=False), repeats=1
        )
        (one,) = timed["repeats"]
        return {"seconds": one["last_s"] + one["build_s"], "images": one["images"]}
    if kind == "verify":
        from tfrecord_tools import verify

        start = time.perf_counter()
        report = verify(target)
        seconds = time.perf_counter() - start
        return {
            "seconds": seconds,
            "bytes": sum(f.bytes for f in report.files),
            "ok": report.ok,
            "peak_kb": _peak_kb(),
        }
    if kind == "fetch":  # the server's floor: every object under a prefix, nothing else
        from tfrecord_tools import storage

        start = time.perf_counter()
        names = [storage.join(target, name) for name, _ in storage.walk_files(target)]
        total = sum(len(b) for b in storage.read_many(names))
        return {"seconds": time.perf_counter() - start, "bytes": total, "objects": len(names)}
    raise SystemExit(f"unknown child {kind}")


def run_child(kind: str, target: str, extra: str | None, endpoint: str) -> dict:
    cmd = [sys.executable, str(HERE), "--child", kind, target]
    if extra is not None:
        cmd.append(extra)
    out = subprocess.run(
        cmd,
        env={**ENV, "AWS_ENDPOINT_URL": endpoint},
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def median_of(repeats: int, kind: str, target: str, extra: str | None, endpoint: str) -> dict:
    runs = [run_child(kind, target, extra, endpoint) for _ in range(repeats)]
    result = dict(runs[-1])
    result["seconds"] = statistics.median(r["seconds"] for r in runs)
    result["runs"] = [round(r["seconds"], 3) for r in runs]
    return result


# ---- the benchmark -----------------------------------------------------------------------


def _s3(endpoint: str):
    import s3fs

    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
        os.environ[key] = ENV[key]

    s3fs.S3FileSystem.clear_instance_cache()
    return s3fs.S3FileSystem(client_kwargs={"endpoint_url": endpoint}, skip_instance_cache=True)


def upload_folder(fs, local: Path, url: str) -> None:
    fs.put(str(local) + "/", url.removeprefix("s3://"), recursive=True)


def big_shard(path: Path, size: int) -> None:
    """A shard of 1 MB records of random bytes, ``size`` bytes in all (about)."""
    import numpy as np

    from tfrecord_tools.format.writer import ShardWriter

    rng = np.random.default_rng(0)
    block = rng.integers(0, 256, 1 << 20, dtype=np.uint8).tobytes()
    with ShardWriter(path, "none") as writer:
        for i in range((size >> 20) - 1):
            writer.write(block[i % 97 :] + block[: i % 97])
        writer.commit()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", default="/tmp/tfrt-buckets")
    parser.add_argument("--out", default="bench-buckets")
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--only", default="convert,read,verify,memory,latency")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, target, *extra = args.child
        print(json.dumps(child(kind, target, extra[0] if extra else None)))
        return 0
    only = set(args.only.split(","))
    work = Path(args.work)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from tfrecord_tools.sample import make_photos

    photos = work / "photos"
    make_photos(photos, count=args.count, seed=0)
    results: dict = {"count": args.count, "repeats": args.repeats, "latency_ms": args.latency_ms}
    with servers(args.latency_ms) as (direct, proxied):
        fs = _s3(direct)
        for name in ("src", "out", "big"):
            fs.mkdir(name)
        upload_folder(fs, photos, "s3://src/photos")
        local_out = work / "photos-tfr"
        shutil.rmtree(local_out, ignore_errors=True)
        # the bucket's dataset is made once before any timing, for the read/verify cells
        run_child("convert", str(photos), str(local_out), direct)
        run_child("convert", "s3://src/photos", "s3://out/photos-tfr", direct)
        if "convert" in only:
            local = median_of(args.repeats, "convert", str(photos), str(local_out), direct)
            bucket = median_of(
                args.repeats, "convert", "s3://src/photos", "s3://out/photos-tfr", direct
            )
            floor = median_of(args.repeats, "fetch", "s3://src/photos", None, direct)
            results["convert"] = {"local": local, "bucket": bucket, "fetch_sources": floor}
            _say("convert", local, bucket, "images", lower_is_better=True)
            _floor("fetching the source images alone", floor, local)
        if "read" in only:
            local = median_of(args.repeats, "read", str(local_out), None, direct)
            bucket = median_of(args.repeats, "read", "s3://out/photos-tfr", None, direct)
            results["read"] = {"local": local, "bucket": bucket}
            _say("make_dataset", local, bucket, "images", lower_is_better=True)
        if "verify" in only:
            local = median_of(args.repeats, "verify", str(local_out), None, direct)
            bucket = median_of(args.repeats, "verify", "s3://out/photos-tfr", None, direct)
            floor = median_of(args.repeats, "fetch", "s3://out/photos-tfr", None, direct)
            results["verify"] = {"local": local, "bucket": bucket, "fetch_objects": floor}
            _say("verify", local, bucket, "bytes", lower_is_better=True)
            _floor("fetching the dataset's objects alone", floor, local)
        if "memory" in only:
            results["memory"] = {}
            for mb in (100, 1000):
                shard = work / f"big{mb}.tfrecord"
                if not shard.exists():
                    big_shard(shard, mb << 20)
                fs.put_file(str(shard), f"big/big{mb}.tfrecord")
                cell = run_child("verify", f"s3://big/big{mb}.tfrecord", None, direct)
                results["memory"][f"{mb} MB"] = cell
                fs.rm_file(f"big/big{mb}.tfrecord")
                print(
                    f"verify one {mb} MB object: peak {cell['peak_kb'] / 1024:.0f} MB, "
                    f"{cell['bytes'] / cell['seconds'] / 1e6:.0f} MB/s",
                    flush=True,
                )
        if "latency" in only:
            table = {}
            for label, endpoint in (("0 ms", direct), (f"{args.latency_ms:g} ms", proxied)):
                raw = median_of(args.repeats, "raw", "s3://src/photos", None, endpoint)
                tfr = median_of(args.repeats, "read", "s3://out/photos-tfr", None, endpoint)
                table[label] = {"raw": raw, "tfrecord": tfr}
                print(
                    f"latency {label}: raw {raw['images'] / raw['seconds']:.0f} img/s, "
                    f"TFRecords {tfr['images'] / tfr['seconds']:.0f} img/s "
                    f"({raw['seconds'] / tfr['seconds']:.2f}x)",
                    flush=True,
                )
            results["latency"] = table
            _plot(table, out / "bench-buckets.png", args.count)
    (out / "bench-buckets.json").write_text(json.dumps(results, indent=1))
    print(f"wrote {out / 'bench-buckets.json'}")
    return 0


def _say(what: str, local: dict, bucket: dict, unit: str, *, lower_is_better: bool) -> None:
    ratio = bucket["seconds"] / local["seconds"]
    rate = (
        (lambda c: f"{c[unit] / c['seconds'] / 1e9:.2f} GB/s")
        if unit == "bytes"
        else (lambda c: f"{c[unit] / c['seconds']:.0f} img/s")
    )
    print(
        f"{what}: local {local['seconds']:.2f} s ({rate(local)}), bucket "
        f"{bucket['seconds']:.2f} s ({rate(bucket)}): bucket/local time {ratio:.2f}x "
        f"(runs {local['runs']} / {bucket['runs']})",
        flush=True,
    )


def _floor(what: str, floor: dict, local: dict) -> None:
    """What the server alone costs: every object fetched (storage.read_many, concurrent
    GETs), nothing done with the bytes."""
    ratio = floor["seconds"] / local["seconds"]
    print(
        f"  server floor, {what} ({floor['objects']} objects, {floor['bytes'] / 1e6:.0f} MB): "
        f"{floor['seconds']:.2f} s = {ratio:.2f}x the local run (runs {floor['runs']})",
        flush=True,
    )


def _plot(table: dict, path: Path, count: int) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib missing: no plot")
        return
    labels = list(table)
    raw = [c["raw"]["images"] / c["raw"]["seconds"] for c in table.values()]
    tfr = [c["tfrecord"]["images"] / c["tfrecord"]["seconds"] for c in table.values()]
    fig, ax = plt.subplots(figsize=(6, 4))
    xs = range(len(labels))
    ax.bar([x - 0.2 for x in xs], raw, 0.4, label="raw files (make_raw_dataset)")
    ax.bar([x + 0.2 for x in xs], tfr, 0.4, label="TFRecords (make_dataset)")
    ax.set_xticks(list(xs), [f"S3, {label} per request" for label in labels])
    ax.set_ylabel("images / s (one pass, 224x224)")
    ax.set_title(f"{count} photos read from a local S3 server")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
