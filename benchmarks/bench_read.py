"""Reader throughput against its limits, each cell in a fresh process pinned to N cores.

    .venv/bin/python benchmarks/bench_read.py [--work /tmp/tfrt-bench] [--repeats 3]

Cells (images/s, median of --repeats timed passes after a warm-up pass):
- photo set (~500x375, 90 % JPEG, 10 % PNG), decode + resize to 224: the reader vs the
  decode-bound limit (the same decode + resize in a tight graph loop over bytes in memory);
- small set (28x28 PNG digits): the reader vs the PNG-decode-only limit, and the raw-file
  twin, warm and cold page cache (files evicted with posix_fadvise DONTNEED);
- MNIST raw encoding, with the ceiling of TensorFlow's record reader (``TFRecordDataset``
  and ``batch`` alone, nothing parsed).
The reader cells run in the harness's own child process (``tfrecord_tools.bench.child``):
pinned to the first N usable CPUs before TensorFlow is imported, evicted and checked with
``posix_fadvise``/``mincore`` for cold runs, timed from the iterator's creation to the last
element, as ``tfrecord-tools bench`` times its cells. The limit and the record-reader
ceiling run in read_child.py, which pins and times with the same functions.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from tfrecord_tools.bench.grid import Cell, cell_spec
from tfrecord_tools.bench.runner import cell_record, run_child
from tfrecord_tools.bench.timing import figures, rates
from tfrecord_tools.cores import usable_cpus

CHILD = Path(__file__).with_name("read_child.py")  # a file: autograph needs the source
READERS = ("tfrecord", "raw")  # cells the harness's child runs; the others: read_child.py


def run_cell(cell: dict) -> dict:
    """Run one cell in a fresh pinned process, print its line and return its figures."""
    cpus = usable_cpus()
    if cell["source"] in READERS:
        # threads "auto": TensorFlow's own pools, sized to the pinned cores; the reader
        # gets exactly the cell's options
        harness_cell = Cell(cell["source"], "auto", cell["cores"], cell["cache"])
        spec = cell_spec(
            harness_cell,
            cell["path"],
            cpus=cpus,
            batch_size=cell["batch"],
            image_size=cell.get("image_size"),
            channels=cell["channels"],
            repeats=cell["repeats"],
            options=cell.get("options", {}),
        )
        result = run_child(spec)
    else:
        result = run_child({**cell, "cpus": cpus[: cell["cores"]]}, script=CHILD)
    if "error" in result:
        raise SystemExit(f"cell {cell} failed:\n{result['error']}")
    if cell["source"] in READERS:
        fig = cell_record(harness_cell, spec, result)
    elif "repeats" in result:  # the record reader, timed by timing.measure
        fig = figures(result["repeats"])
    else:  # the limit: one graph call per repeat
        fig = rates(result["images"], result["seconds"])
    cell = {
        **cell,
        "images": fig["images"],
        "median_s": fig["seconds_median"],
        "images_per_s": fig["images_per_s"],
        "min_s": min(fig["seconds"]),
        "max_s": max(fig["seconds"]),
    }
    print(
        f"  {cell['label']:<44} {cell['cores']} core(s) {cell['cache']:<4} "
        f"{cell['images_per_s']:>10,.0f} img/s  (median of {len(fig['seconds'])}, "
        f"{cell['min_s']:.3f}-{cell['max_s']:.3f} s for {fig['images']:,})"
    )
    if fig.get("evicted") is False:  # as the harness's table marks it
        print(f"    cold!: {fig['cache_note']}")
    return cell


def prepare(work: Path, photos: int, digits: int) -> dict[str, Path]:
    from tfrecord_tools import convert_image_folder
    from tfrecord_tools.sample import make_digits, make_photos

    paths = {}
    paths["photos"] = make_photos(work / f"photos{photos}", count=photos, workers=2)
    paths["digits"] = make_digits(work / f"digits{digits}", count=digits, workers=2)
    for key in ("photos", "digits"):
        out = work / f"{key}{photos if key == 'photos' else digits}-read-tfr"
        if not (out / "dataset.json").exists():
            convert_image_folder(paths[key], out, quiet=True, shards=2)
        paths[key + "_tfr"] = out
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/tfrt-bench"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--photos", type=int, default=1000)
    parser.add_argument("--digits", type=int, default=20000)
    parser.add_argument("--only", action="append", choices=("photos", "small", "mnist"))
    args = parser.parse_args()
    only = set(args.only or ("photos", "small", "mnist"))
    paths = prepare(args.work, args.photos, args.digits)
    base = {"repeats": args.repeats, "cache": "warm"}
    results = []
    if "photos" in only:
        print(f"photo set: {args.photos} images, decode + resize to 224")
        photo = {**base, "batch": 32, "image_size": 224, "channels": 3}
        lim = run_cell(
            {
                **photo,
                "label": "limit: decode+resize loop",
                "source": "limit",
                "path": str(paths["photos_tfr"]),
                "cores": 1,
            }
        )
        results.append(lim)
        for cores in (1, 2):
            cell = run_cell(
                {
                    **photo,
                    "label": "make_dataset",
                    "source": "tfrecord",
                    "path": str(paths["photos_tfr"]),
                    "cores": cores,
                    "options": {"num_parallel_calls": cores},
                }
            )
            results.append(cell)
            print(
                f"    -> {cell['images_per_s'] / (lim['images_per_s'] * cores):.3f} of "
                f"{cores} x the 1-core limit"
            )
    if "small" in only:
        print(f"small set: {args.digits} 28x28 PNG digits, batch 256")
        small = {**base, "batch": 256, "channels": 1}
        lim = run_cell(
            {
                **small,
                "label": "limit: decode_png loop",
                "source": "limit",
                "path": str(paths["digits_tfr"]),
                "cores": 1,
            }
        )
        results.append(lim)
        reader = {}
        for cores in (1, 2):
            reader[cores] = run_cell(
                {
                    **small,
                    "label": "make_dataset",
                    "source": "tfrecord",
                    "path": str(paths["digits_tfr"]),
                    "cores": cores,
                    "options": {"num_parallel_calls": cores},
                }
            )
            results.append(reader[cores])
        print(
            f"    -> 1 core: {reader[1]['images_per_s'] / lim['images_per_s']:.3f} of the "
            f"limit; 2 cores / 1 core = "
            f"{reader[2]['images_per_s'] / reader[1]['images_per_s']:.2f}"
        )
        for cache in ("warm", "cold"):
            for cores in (1, 2):
                twin = run_cell(
                    {
                        **small,
                        "cache": cache,
                        "repeats": min(args.repeats, 3),
                        "label": "make_raw_dataset (raw files)",
                        "source": "raw",
                        "path": str(paths["digits"]),
                        "cores": cores,
                        "options": {"num_parallel_calls": 2 * cores},
                    }
                )
                results.append(twin)
                tfr = (
                    reader[cores]
                    if cache == "warm"
                    else run_cell(
                        {
                            **small,
                            "cache": "cold",
                            "label": "make_dataset",
                            "source": "tfrecord",
                            "path": str(paths["digits_tfr"]),
                            "cores": cores,
                            "options": {"num_parallel_calls": cores},
                        }
                    )
                )
                if cache == "cold":
                    results.append(tfr)
                print(
                    f"    -> TFRecord / raw files, {cache}, {cores} core(s): "
                    f"{tfr['images_per_s'] / twin['images_per_s']:.1f}x"
                )
    if "mnist" in only:
        src = args.work / "mnist60000"
        if not (src / "t10k-labels-idx1-ubyte.gz").exists():
            sys.path.insert(0, str(Path(__file__).parent))
            from bench_convert import make_mnist_like

            src = make_mnist_like(args.work, 60_000, 10_000)
        out = args.work / "mnist-raw-read-tfr"
        if not (out / "dataset.json").exists():
            from tfrecord_tools import convert_mnist

            convert_mnist(src, out, encoding="raw", quiet=True, overwrite=True)
        print("MNIST raw encoding: 60,000 training images, batch 1024")
        for cores in (1, 2):
            results.append(
                run_cell(
                    {
                        **base,
                        "batch": 1024,
                        "channels": 1,
                        "label": "ceiling: TFRecordDataset + batch",
                        "source": "records",
                        "path": str(out),
                        "cores": cores,
                    }
                )
            )
            results.append(
                run_cell(
                    {
                        **base,
                        "batch": 1024,
                        "channels": 1,
                        "label": "make_dataset (raw pixels)",
                        "source": "tfrecord",
                        "path": str(out),
                        "cores": cores,
                        "options": {"num_parallel_calls": cores},
                    }
                )
            )
    (args.work / "bench_read.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    t = time.time()
    main()
    print(f"({time.time() - t:.0f} s)")
