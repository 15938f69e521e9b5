"""What storing fewer pixels buys the reader: ``--max-size`` for photos, ``--encoding raw``
for small images, read back with ``make_dataset`` on 1 and 2 cores.

    .venv/bin/python benchmarks/bench_stored.py [--photos 200] [--digits 10000] [--runs 3]

Photos: ~1024x768 noisy JPEGs (q90, made by ``bench_max_size.make_photos``) converted as they
are and with ``max_size=320``, read at ``image_size=224``, batch 32. Digits: 28x28 PNGs
(``tfrecord_tools.sample.make_digits``) converted as PNG and with ``encoding="raw"``, read at
their size, batch 1024, gray (``channels=1``, as stored) and as RGB (``channels=3``).
Every cell runs in a fresh process pinned to its cores before TensorFlow starts, and is
timed by the harness (``tfrecord_tools.bench.timing``: a warm-up pass, then the median of
``--repeats`` passes to the last element, each pass reading the data several times: ~1,000
photos, ~200,000 digits); the two variants of a pair alternate for
``--runs`` fresh processes each (A, B, A, B, ...: this machine's speed drifts from process
to process by up to a third), and each variant's figure is the median of its runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def child(spec: dict) -> dict:
    os.sched_setaffinity(0, spec["cpus"])  # before TensorFlow sizes its thread pools
    from tfrecord_tools import make_dataset
    from tfrecord_tools.bench.timing import figures, measure

    def make():
        return make_dataset(spec["path"], **spec["options"])

    result = measure(make, repeats=spec["repeats"], epochs=spec["epochs"])
    return figures(result["repeats"])


def run_cell(path: Path, cpus: list[int], options: dict, repeats: int, epochs: int) -> dict:
    spec = {"path": str(path), "cpus": cpus, "options": options}
    spec.update(repeats=repeats, epochs=epochs)
    done = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(spec)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def prepare(work: Path, photos: int, digits: int) -> dict[str, Path]:
    sys.path.insert(0, str(HERE))
    from bench_max_size import make_photos

    from tfrecord_tools import convert_image_folder
    from tfrecord_tools.sample import make_digits

    if not (work / "photos").exists():
        make_photos(work / "photos", photos)
    make_digits(work / "digits", count=digits, seed=0)
    out = {
        "photos": (work / "photos", {}),
        "photos-320": (work / "photos", {"max_size": 320}),
        "digits-png": (work / "digits", {}),
        "digits-raw": (work / "digits", {"encoding": "raw"}),
    }
    paths = {}
    for name, (src, options) in out.items():
        target = work / f"tfr-{name}"
        if not (target / "dataset.json").exists():
            convert_image_folder(src, target, quiet=True, **options)
        paths[name] = target
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=200)
    parser.add_argument("--digits", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3, help="timed passes in a process")
    parser.add_argument(
        "--runs", type=int, default=3, help="fresh processes per cell, alternating (median)"
    )
    parser.add_argument("--work", type=Path, help="data folder (default: a temporary one)")
    parser.add_argument("--only", choices=("photos", "digits"), help="only photos, or digits")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-stored-"))
    paths = prepare(work, args.photos, args.digits)
    cpus = sorted(os.sched_getaffinity(0))
    # digits are gray: read as they are stored (channels=1), and as RGB, where turning each
    # batch's gray pixels into three channels costs ~2.3 us a digit, more than the rest of
    # the raw read (repeat, tile, broadcast_to, a gather, numpy: alike; concat slower)
    gray = {"batch_size": 1024, "channels": 1}
    rgb = {**gray, "channels": 3}
    # each timed pass reads the data several times through one iterator (~1,000 photos,
    # ~200,000 digits): a pass of 200 photos is 7 batches, and the iterator's start (~70 ms)
    # and the last batch on 2 cores weighed as much as the reading (1 core 881 img/s for one
    # pass of the 320 photos, 1,304 for five)
    photo_epochs = -(-1000 // args.photos)
    digit_epochs = -(-200_000 // args.digits)
    pairs = [
        ("photos", "photos", "photos-320", {"batch_size": 32, "image_size": 224}, photo_epochs),
        ("digits", "digits-png", "digits-raw", gray, digit_epochs),
        ("digits-rgb", "digits-png", "digits-raw", rgb, digit_epochs),
    ]
    pairs = [p for p in pairs if args.only is None or p[0].startswith(args.only)]
    report = {}
    for cores in (1, 2)[: len(cpus)]:
        for label, base, lean, options, epochs in pairs:
            runs: dict[str, list[float]] = {base: [], lean: []}
            for _ in range(args.runs):  # A, B, A, B...: process-to-process drift hits both
                for name in (base, lean):
                    figures = run_cell(paths[name], cpus[:cores], options, args.repeats, epochs)
                    runs[name].append(figures["images_per_s"])
            rates = {name: statistics.median(values) for name, values in runs.items()}
            for name, values in runs.items():
                print(
                    f"{label:10s} {name:12s} {cores} core(s): {rates[name]:>9,.0f} img/s "
                    f"(runs: {', '.join(f'{v:,.0f}' for v in values)})"
                )
            ratio = rates[lean] / rates[base]
            print(f"  -> {label}: {lean} / {base}, {cores} core(s): {ratio:.2f}x")
            report[f"{label}/{cores}"] = {
                "options": options,
                "epochs": epochs,
                "rates": rates,
                "runs": runs,
                "ratio": ratio,
            }
    (work / "bench_stored.json").write_text(json.dumps(report, indent=2))
    print(f"json: {work / 'bench_stored.json'}")


if __name__ == "__main__":
    main()
