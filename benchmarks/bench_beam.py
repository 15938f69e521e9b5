"""Conversion time: the Apache Beam engine (FnApiRunner, local) against the local engine on
the same folder, each a fresh process, medians of --repeats.

    .venv-beam/bin/python benchmarks/bench_beam.py [--work /tmp/tfrt-bench] [--repeats 3]

(``bash scripts/test-beam.sh`` makes .venv-beam.) Each run is a whole CLI call: start-up
(Beam's import and its SDK worker processes) is part of what a user waits for.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

SETTINGS = {
    "local, 2 workers": ["--workers", "2"],
    "beam FnApiRunner, 2 SDK workers": ["--workers", "2", "--engine", "beam"],
    "beam FnApiRunner, in-memory": [
        "--workers",
        "1",
        "--engine",
        "beam",
        "--direct_running_mode=in_memory",
    ],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", default="/tmp/tfrt-bench", type=Path)
    parser.add_argument("--photos", type=int, default=2000)
    parser.add_argument("--digits", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, help="write the cells as JSON here")
    args = parser.parse_args()

    from tfrecord_tools.sample import make_digits, make_photos

    folders = {
        f"photos {args.photos:,}": make_photos(
            args.work / f"photos{args.photos}", count=args.photos, workers=2
        ),
        f"digits {args.digits:,}": make_digits(
            args.work / f"digits{args.digits}", count=args.digits, workers=2
        ),
    }
    cells = []
    for label, src in folders.items():
        for setting, flags in SETTINGS.items():
            out = args.work / "beam-bench-out"
            command = [sys.executable, "-m", "tfrecord_tools", "convert", "images", str(src)]
            command += [str(out), "--quiet", "--shards", "8", *flags]
            times = []
            for _ in range(args.repeats):
                shutil.rmtree(out, ignore_errors=True)
                t0 = time.perf_counter()
                subprocess.run(
                    command,
                    check=True,
                    stdout=subprocess.DEVNULL,
                )
                times.append(time.perf_counter() - t0)
            manifest = json.loads((out / "dataset.json").read_text())
            n = sum(s["num_examples"] for s in manifest["splits"].values())
            med = statistics.median(times)
            cells.append(
                {"set": label, "setting": setting, "seconds": med, "images_per_s": n / med}
            )
            print(
                f"{label:<14} {setting:<34} {med:6.2f} s ({min(times):.2f}-{max(times):.2f}), "
                f"{n / med:,.0f} images/s",
                flush=True,
            )
    if args.out:
        args.out.write_text(json.dumps(cells, indent=2))


if __name__ == "__main__":
    main()
