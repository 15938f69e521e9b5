"""``TFRecordDataSource`` (tfrecord_tools.access, no TensorFlow) from an S3 bucket against
local disk: random reads by index and sequential batches, and the requests each one costs.

    .venv/bin/python benchmarks/bench_access_bucket.py [--work /tmp/tfrt-access-bucket]
        [--digits 2000] [--photos 200] [--reads 200] [--repeats 3] [--latency-ms 20]

Data: ``sample.make_digits`` (28x28 PNG) and ``sample.make_photos`` (~500x375, 90 % JPEG),
each converted to a local dataset (shards with ``.idx`` files and ``dataset.json``) and
uploaded as it is to a bucket on moto's S3 server, which runs as a process of its own on
localhost, with ``latency_proxy.py`` in front of it adding ``--latency-ms`` to every request
(object storage as a data centre sees it). Three places are read: the local folder, the
bucket directly (0 ms: moto's own cost) and the bucket through the proxy.

Cells, each run in a fresh process (``--child``; nothing cached between runs), every figure
the median of ``--repeats`` runs:

1. **digits, src[i]**: ``--reads`` records by index, one at a time, in a fixed random
   order (the same indices everywhere): one ranged read per record, both CRCs, parse, PNG
   decode;
2. **digits, src.batches(256)**: one sequential pass over every digit;
3. **photos, src.batches(32)** at ``image_size=224``: one sequential pass over every photo.

Each run has two phases, timed and counted apart: **open** (``TFRecordDataSource(...)`` and
``len(src)``: the manifest, the ``.idx`` files) and **read**; between them an untimed,
uncounted warm-up (one ``src[i]`` outside the timed reads, or one batch of a separate
pass: the first decode of a kind loads its decoder). Requests are counted from moto's
request log (one line per HTTP request, method and status): the child sends a marker
request straight to moto (``HEAD /markers/<run>-<phase>``, never through the proxy, never
inside a timed span) around each phase, and the parent counts the log lines between the
markers, once the last marker is in the log. So what a sequential pass costs (requests per
shard, images per request) is a count, not a reading of the code.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve()
ROOT = HERE.parent.parent
BUCKET = "tfrt-access"
MARKERS = "markers"  # a bucket that never exists: marker requests are 404s
sys.path.insert(0, str(HERE.parent))
from bench_buckets import servers  # noqa: E402 - moto + latency proxy, one copy

ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
ENV.update(
    AWS_ACCESS_KEY_ID="bench",
    AWS_SECRET_ACCESS_KEY="bench",
    AWS_DEFAULT_REGION="us-east-1",
)
#: One request in moto's (werkzeug's) log: ``"GET /bucket/key HTTP/1.1" 206 -``, the
#: request line in ANSI colours unless the status is 200.
REQUEST = re.compile(r'"(?:\x1b\[[0-9;]*m)*([A-Z]+) (\S+) HTTP/[0-9.]+(?:\x1b\[0m)*" (\d{3})')
CELLS = {
    "digits-getitem": ("digits", "src[i], random order"),
    "digits-batches": ("digits", "src.batches(256)"),
    "photos-batches": ("photos", "src.batches(32), 224x224"),
}


# ---- servers -------------------------------------------------------------------------


def mark(endpoint: str, name: str) -> None:
    """A marker request straight to moto: a line in its log that brackets a phase."""
    host, port = endpoint.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request("HEAD", f"/{MARKERS}/{name}")
        conn.getresponse().read()
    finally:
        conn.close()


def requests_between(log: Path, first: str, last: str) -> list[tuple[str, str, int]]:
    """(method, path, status) of the requests logged between the markers ``first`` and
    ``last``, once ``last`` is in the log (waited for, 30 s at most)."""
    deadline = time.monotonic() + 30
    while True:
        lines = log.read_text(errors="replace").splitlines()
        found = [REQUEST.search(line) for line in lines]
        requests = [(m[1], m[2], int(m[3])) for m in found if m]
        paths = [path for _, path, _ in requests]
        if f"/{MARKERS}/{last}" in paths:
            a, b = paths.index(f"/{MARKERS}/{first}"), paths.index(f"/{MARKERS}/{last}")
            return requests[a + 1 : b]
        if time.monotonic() > deadline:
            raise SystemExit(f"marker {last} never reached moto's log {log}")
        time.sleep(0.05)


def summary(requests: list[tuple[str, str, int]]) -> dict[str, int]:
    """Requests by kind: object GETs (whole or ranged: both are 206 here, as the package
    asks for whole objects as ``bytes=0-``), listings, HEADs, anything else."""
    out = {"total": len(requests), "get": 0, "list": 0, "head": 0, "other": 0}
    for method, path, _ in requests:
        if method == "GET" and ("list-type=" in path or "prefix=" in path):
            out["list"] += 1
        elif method in ("GET", "HEAD"):
            out[method.lower()] += 1
        else:
            out["other"] += 1
    return out


# ---- one run: a child process ------------------------------------------------------------


def child(cell: str, target: str, reads: int, marks: str | None, run: str) -> dict:
    """One run of ``cell`` over ``target`` (a folder or URL): open, warm up, read; seconds
    of the open and the read and what was read. ``marks``: moto's endpoint for the marker
    requests, which are sent outside the timed spans."""
    import numpy as np

    import tfrecord_tools as tt

    def phase(name: str) -> None:
        if marks:
            mark(marks, f"{run}-{name}")

    kind = CELLS[cell][0]
    size = 256 if kind == "digits" else 32
    phase("start")
    t0 = time.perf_counter()
    if kind == "digits":
        src = tt.TFRecordDataSource(target, channels=1)
    else:
        src = tt.TFRecordDataSource(target, image_size=224)
    total = len(src)  # the index: .idx files (fetched, checked) or headers scanned
    open_s = time.perf_counter() - t0
    phase("opened")
    # warm-up, neither timed nor counted: the first decode of each kind loads its decoder
    order = np.random.default_rng(0).permutation(total).tolist()
    if cell == "digits-getitem":
        src[order[-1]]  # a record outside the timed reads (when there are enough)
        order = order[:reads]
    else:
        next(iter(src.batches(size)))
    phase("warmed")
    images = pixels = 0
    t0 = time.perf_counter()
    if cell == "digits-getitem":
        for i in order:
            image, _ = src[i]
            pixels += image.size
        images = len(order)
    else:
        for batch, labels in src.batches(size):
            images += len(labels)
            pixels += sum(x.size for x in batch)
    read_s = time.perf_counter() - t0
    phase("done")
    if cell != "digits-getitem" and images != total:
        raise SystemExit(f"{target}: a pass gave {images} images of {total}")
    src.close()
    return {
        "open_s": open_s,
        "read_s": read_s,
        "images": images,
        "records": total,
        "shards": len(src.files),
        "pixels": pixels,
    }


def run_child(
    cell: str, target: str, args: argparse.Namespace, endpoint: str, moto: str, run: str
) -> dict:
    cmd = [sys.executable, str(HERE), "--child", cell, target, str(args.reads), moto, run]
    out = subprocess.run(
        cmd, env={**ENV, "AWS_ENDPOINT_URL": endpoint}, capture_output=True, text=True, cwd=ROOT
    )
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    log = Path(args.work) / "moto.log"
    result["requests_open"] = summary(requests_between(log, f"{run}-start", f"{run}-opened"))
    result["requests_read"] = summary(requests_between(log, f"{run}-warmed", f"{run}-done"))
    return result


# ---- data ------------------------------------------------------------------------------


def prepare(work: Path, digits: int, photos: int) -> dict[str, Path]:
    """The two local datasets, made once and reused (kept in ``work``)."""
    from tfrecord_tools import convert_image_folder
    from tfrecord_tools.sample import make_digits, make_photos

    folders = {
        "digits": make_digits(work / f"digits{digits}", count=digits, workers=2),
        "photos": make_photos(work / f"photos{photos}", count=photos, workers=2),
    }
    out = {}
    for kind, folder in folders.items():
        out[kind] = work / f"{folder.name}-tfr"
        if not (out[kind] / "dataset.json").exists():
            convert_image_folder(folder, out[kind], quiet=True, overwrite=True, workers=2)
    return out


def upload(endpoint: str, datasets: dict[str, Path]) -> dict[str, str]:
    """The datasets copied to the bucket (straight to moto): their URLs by kind."""
    import s3fs

    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
        os.environ[key] = ENV[key]
    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": endpoint}, skip_instance_cache=True)
    fs.mkdir(BUCKET)
    urls = {}
    for kind, folder in datasets.items():
        urls[kind] = f"s3://{BUCKET}/{folder.name}"
        fs.put(str(folder) + "/", urls[kind].removeprefix("s3://"), recursive=True)
    return urls


def warm(folder: Path) -> None:
    """The local dataset's files in the page cache: the local figures are warm."""
    for path in folder.iterdir():
        path.read_bytes()


# ---- the benchmark -----------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", default="/tmp/tfrt-access-bucket")
    parser.add_argument("--digits", type=int, default=2000)
    parser.add_argument("--photos", type=int, default=200)
    parser.add_argument("--reads", type=int, default=200, help="src[i] calls per run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        cell, target, reads, marks, run = args.child
        print(json.dumps(child(cell, target, int(reads), marks, run)))
        return 0
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    datasets = prepare(work, args.digits, args.photos)
    print(
        f"digits: {args.digits} 28x28 PNG, photos: {args.photos} ~500x375; medians of "
        f"{args.repeats} runs, each a fresh process; usable cores "
        f"{len(os.sched_getaffinity(0))}, load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    results: dict = {
        "digits": args.digits,
        "photos": args.photos,
        "reads": args.reads,
        "repeats": args.repeats,
        "latency_ms": args.latency_ms,
        "cells": {},
    }
    with servers(args.latency_ms, log=work / "moto.log") as (direct, proxied):
        urls = upload(direct, datasets)
        for folder in datasets.values():
            warm(folder)
        places = {
            "local": ({kind: str(path) for kind, path in datasets.items()}, direct),
            "s3 0 ms": (urls, direct),
            f"s3 {args.latency_ms:g} ms": (urls, proxied),
        }
        number = 0
        for cell, (kind, label) in CELLS.items():
            print(f"\n{kind}, {label}:")
            results["cells"][cell] = {}
            for place, (targets, endpoint) in places.items():
                runs = []
                for _ in range(args.repeats):
                    number += 1
                    runs.append(
                        run_child(cell, targets[kind], args, endpoint, direct, f"r{number}")
                    )
                results["cells"][cell][place] = runs
                _say(place, runs)
    (work / "bench_access_bucket.json").write_text(json.dumps(results, indent=1))
    print(f"\nwrote {work / 'bench_access_bucket.json'}; load average {os.getloadavg()[0]:.2f}")
    return 0


def _say(place: str, runs: list[dict]) -> None:
    """One line: the medians of the runs, and the requests of the last run."""
    last = runs[-1]
    open_ms = statistics.median(r["open_s"] for r in runs) * 1e3
    rate = statistics.median(r["images"] / r["read_s"] for r in runs)
    req_open, req_read = last["requests_open"], last["requests_read"]
    if req_read["total"]:
        per = f"{last['images'] / req_read['total']:.1f} images per request"
    else:
        per = "no request"
    kinds = ", ".join(f"{k} {v}" for k, v in req_read.items() if v and k != "total")
    print(
        f"  {place:<9} open {open_ms:7.1f} ms ({req_open['total']} requests), read "
        f"{rate:9,.0f} images/s; {last['images']:,} images from {last['shards']} shard(s): "
        f"{req_read['total']} requests ({kinds or '-'}), {per}",
        flush=True,
    )


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(main())
