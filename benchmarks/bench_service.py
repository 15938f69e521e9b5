"""Records/s through the tf.data service (a dispatcher and 1 or 2 workers, each its own
process on this machine) against reading the same shards locally, batched.

    .venv/bin/python benchmarks/bench_service.py [--work /tmp/tfrt-bench] [--repeats 3]

Each setting reads whole epochs (a fresh iterator, so a fresh service job, per repeat: job
start-up counts) after one warm-up epoch, timed as the harness times a cell
(``tfrecord_tools.bench.timing``: from the iterator's creation to the last batch; the
trainer's CPU over the same interval); the figure is the median. On one 2-core machine
the service cannot add CPUs: it shows the cost of the hop (serialising batches, gRPC), and
how much of the trainer's own CPU it frees; on real clusters the workers bring their own.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from pathlib import Path

from tfrecord_tools.bench.timing import figures, measure
from tfrecord_tools.read.service import ServerProcess, start_local_service


def cpu_seconds(server: ServerProcess) -> float:
    with open(f"/proc/{server.proc.pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def time_epochs(make, repeats: int, servers: list[ServerProcess]) -> dict:
    """A warm-up epoch, then ``repeats`` timed epochs: the harness's ``timing.measure``
    (iterator creation to the last element), with the servers' CPU sampled around each."""

    def server_cpu() -> dict[str, float]:
        return {"server_cpu_s": sum(cpu_seconds(s) for s in servers)}

    timed = measure(make, repeats=repeats, counters=server_cpu)
    n = timed["images_per_pass"]
    for rep in timed["repeats"]:
        if rep["images"] != n:
            raise SystemExit(f"an epoch read {rep['images']} records, the warm-up {n}")
    fig = figures(timed["repeats"])
    server = statistics.median(r["server_cpu_s"] for r in timed["repeats"])
    return {
        "records": n,
        "median_s": fig["seconds_median"],
        "min_s": min(fig["seconds"]),
        "max_s": max(fig["seconds"]),
        "records_per_s": fig["images_per_s"],
        "trainer_cpu_us_per_record": 1000 * fig["cpu_ms_per_image"],
        "server_cpu_us_per_record": 1e6 * server / n,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", default="/tmp/tfrt-bench", type=Path)
    parser.add_argument("--digits", type=int, default=20_000)
    parser.add_argument("--photos", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--out", type=Path, help="write the cells as JSON here")
    args = parser.parse_args()

    from tfrecord_tools import convert_image_folder
    from tfrecord_tools.sample import make_digits, make_photos

    sets = {}
    for kind, count, size, channels in (
        ("digits", args.digits, None, 1),
        ("photos", args.photos, 224, 3),
    ):
        make = make_digits if kind == "digits" else make_photos
        src = make(args.work / f"{kind}{count}", count=count, workers=2)
        out = args.work / f"{kind}{count}-service-tfr"
        if not (out / "dataset.json").exists():
            convert_image_folder(src, out, workers=2, shards=8, quiet=True)
        sets[kind] = (out, size, channels)

    os.environ.update(TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="-1")
    from tfrecord_tools.read.pipeline import make_dataset

    cells = []
    for setting in ("local", 1, 2):
        address, servers = (None, []) if setting == "local" else start_local_service(setting)
        try:
            for kind, (path, size, channels) in sets.items():
                options = {"batch_size": args.batch_size, "image_size": size, "channels": channels}
                if address:
                    options["service"] = address
                cell = time_epochs(
                    lambda o=options, p=path: make_dataset(p, **o), args.repeats, servers
                )
                cell.update(
                    set=kind, setting="local" if setting == "local" else f"{setting} worker(s)"
                )
                cells.append(cell)
                print(
                    f"{kind:<7} {cell['setting']:<12} {cell['records_per_s']:>9,.0f} records/s "
                    f"({cell['min_s']:.2f}-{cell['max_s']:.2f} s for {cell['records']:,}; "
                    f"CPU us/record: trainer {cell['trainer_cpu_us_per_record']:.0f}, "
                    f"servers {cell['server_cpu_us_per_record']:.0f})",
                    flush=True,
                )
        finally:
            for server in servers:
                server.stop()
    for kind in sets:
        local = next(c for c in cells if c["set"] == kind and c["setting"] == "local")
        for c in cells:
            if c["set"] == kind and c is not local:
                ratio = c["records_per_s"] / local["records_per_s"]
                print(f"{kind}: {c['setting']} / local = {ratio:.2f}")
    if args.out:
        args.out.write_text(json.dumps(cells, indent=2))


if __name__ == "__main__":
    main()
