"""The viewer's promises, measured: the overview of a 1,000,000-record dataset answers in
under 1 s and reads no shard; a gallery page of 100 thumbnails in under 2 s from local disk
and under 5 s from an S3 server (moto's) behind 20 ms of added latency.

    .venv/bin/python benchmarks/bench_view.py [--work /tmp/tfrt-view] [--repeats 5]
        [--records 1000000] [--photos 1000] [--latency-ms 20] [--only overview,local,s3]

1. **overview**: a dataset of ``--records`` tiny raw images (4x4 gray, 100 shards, written
   with the package's shard writer and manifest builder, once into ``--work``); each repeat
   opens it afresh (``view.open_dataset``: listing + manifest) and GETs ``/`` over HTTP.
   Every file the process opens meanwhile is recorded (an audit hook): no shard may be among
   them.
2. **local**: ``--photos`` sample photos (500x375, JPEG/PNG) converted to 4 shards; each
   repeat GETs a gallery page of 100 records not shown before, then its 100 thumbnails
   over 6 connections at once, as a browser does. The time is the page's plus the last
   thumbnail's.
3. **s3**: the same dataset uploaded to moto's S3 server, viewed through
   ``latency_proxy.py`` adding ``--latency-ms`` to every request.

Every figure is the median of ``--repeats`` runs (each run a fresh dataset object: no
record or thumbnail cached from an earlier run).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

_opened: list[str] = []
_watching = [False]


def _audit(event: str, args) -> None:
    if _watching[0] and event == "open" and isinstance(args[0], str | bytes | os.PathLike):
        _opened.append(os.fsdecode(args[0]))


sys.addaudithook(_audit)


def big_dataset(root: Path, records: int, shards: int = 100) -> Path:
    """``records`` 4x4 gray raw images in ``shards`` shards (90% train), with indexes and a
    manifest: written once, reused."""
    from tfrecord_tools.format.example import shared_fields_encoder
    from tfrecord_tools.format.manifest import build_manifest, write_labels, write_manifest
    from tfrecord_tools.format.naming import shard_filename
    from tfrecord_tools.format.writer import ShardWriter

    out = root / f"tiny-{records}"
    if (out / "dataset.json").exists():
        return out
    out.mkdir(parents=True, exist_ok=True)
    classes = [f"class {c}" for c in range(10)]
    encode = shared_fields_encoder(image_format="raw", height=4, width=4, channels=1)
    pixels = [bytes([c * 25] * 16) for c in range(10)]
    plan = {"train": shards * 9 // 10, "test": shards - shards * 9 // 10}
    per_shard = -(-records // shards)
    written: dict[str, list] = {}
    i = 0
    start = time.perf_counter()
    for split, count in plan.items():
        for k in range(count):
            path = out / shard_filename("tiny", split, k, count)
            with ShardWriter(path) as writer:
                batch = []
                for _ in range(min(per_shard, records - i)):
                    label = i % 10
                    batch.append(encode(pixels[label], label, classes[label], f"{i}.raw"))
                    i += 1
                writer.write_many(batch)
                written.setdefault(split, []).append(writer.commit())
    write_labels(out, classes)
    manifest = build_manifest(
        name="tiny",
        source={"kind": "benchmark"},
        skipped=[],
        classes=classes,
        compression="none",
        splits=written,
        statistics={"image_formats": {"raw": records}, "image_kinds": {"gray": records}},
        extra={"image_shape": [4, 4, 1]},
        tool_version="bench",
    )
    write_manifest(out, manifest)
    print(f"wrote {records:,} records in {time.perf_counter() - start:.1f} s -> {out}")
    return out


def photos_dataset(root: Path, count: int) -> Path:
    from tfrecord_tools import convert_image_folder
    from tfrecord_tools.sample import make_photos

    out = root / f"photos-{count}-tfrecord"
    if not (out / "dataset.json").exists():
        src = make_photos(root / f"photos-{count}", count=count, workers=2)
        convert_image_folder(src, out, name="photos", shards=4, split="train=1", quiet=True)
    return out


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=120) as response:
        return response.read()


@contextlib.contextmanager
def viewer(path: str):
    from tfrecord_tools.view import App, ViewServer, open_dataset

    dataset = open_dataset(path)
    try:
        with ViewServer(App(dataset), port=0).start() as server:
            yield server.url.rstrip("/")
    finally:
        dataset.close()


def time_overview(path: Path) -> dict:
    """Open the dataset afresh and GET its overview (the server's start and stop are not
    counted: a user's browser meets a server that is up)."""
    from tfrecord_tools.view import App, ViewServer, open_dataset

    _opened.clear()
    _watching[0] = True
    start = time.perf_counter()
    dataset = open_dataset(str(path))
    with ViewServer(App(dataset), port=0).start() as server:
        body = fetch(server.url)
        seconds = time.perf_counter() - start
        _watching[0] = False
    dataset.close()
    shards = [p for p in _opened if ".tfrecord-" in p and not p.endswith(".idx")]
    assert b"data-records" in body
    return {"seconds": seconds, "shards_opened": len(shards), "files_opened": len(_opened)}


def time_gallery(path: str, start_record: int) -> dict:
    import re

    with viewer(path) as url:
        begin = time.perf_counter()
        page = fetch(f"{url}/gallery?split=0&n=100&start={start_record}").decode()
        page_s = time.perf_counter() - begin
        thumbs = re.findall(r'<img src="(/thumb/[^"]+)"', page)
        with ThreadPoolExecutor(6) as pool:  # a browser's connections per host
            sizes = list(pool.map(lambda t: len(fetch(url + t.replace("&amp;", "&"))), thumbs))
        seconds = time.perf_counter() - begin
    assert len(thumbs) == 100 and all(sizes), (len(thumbs), sizes[:3])
    return {"seconds": seconds, "page_s": page_s, "thumbnails": len(thumbs)}


def median_of(runs: list[dict]) -> dict:
    out = dict(runs[-1])
    out["seconds"] = statistics.median(r["seconds"] for r in runs)
    out["runs"] = [round(r["seconds"], 3) for r in runs]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", default="/tmp/tfrt-view")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--photos", type=int, default=1000)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--only", default="overview,local,s3")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args()
    only = set(args.only.split(","))
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    results: dict = {"repeats": args.repeats}
    import tfrecord_tools.view  # noqa: F401 - imported once, before any timing

    if "overview" in only:
        big = big_dataset(work, args.records)
        runs = [time_overview(big) for _ in range(args.repeats)]
        results["overview"] = median_of(runs) | {"records": args.records}
        r = results["overview"]
        print(
            f"overview of {args.records:,} records: {r['seconds'] * 1e3:.0f} ms median "
            f"(runs {r['runs']}), shards opened: {max(x['shards_opened'] for x in runs)}"
        )
    if only & {"local", "s3"}:
        photos = photos_dataset(work, args.photos)
    if "local" in only:
        runs = [time_gallery(str(photos), 100 * (k + 1)) for k in range(args.repeats)]
        results["gallery_local"] = median_of(runs)
        r = results["gallery_local"]
        print(f"gallery of 100 thumbnails, local: {r['seconds']:.2f} s median (runs {r['runs']})")
    if "s3" in only:
        from bench_buckets import _s3, servers, upload_folder

        with servers(args.latency_ms) as (direct, proxied):
            upload_folder(_s3(direct), photos, "s3://view/photos")
            os.environ["AWS_ENDPOINT_URL"] = proxied
            import s3fs

            s3fs.S3FileSystem.clear_instance_cache()
            runs = [time_gallery("s3://view/photos", 100 * (k + 1)) for k in range(args.repeats)]
        results["gallery_s3"] = median_of(runs) | {"latency_ms": args.latency_ms}
        r = results["gallery_s3"]
        print(
            f"gallery of 100 thumbnails, S3 + {args.latency_ms:g} ms: {r['seconds']:.2f} s "
            f"median (runs {r['runs']})"
        )
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
