"""Make a sample image folder for demos and benchmarks (thin wrapper over tfrecord_tools.sample).

    .venv/bin/python scripts/make_sample.py digits data/digits --count 1000
    .venv/bin/python scripts/make_sample.py photos data/photos --count 10000 --workers 4

A rerun with the same arguments returns at once: the folder is already complete.
"""

from __future__ import annotations

import argparse
import sys
import time

from tfrecord_tools.errors import TFRecordToolsError
from tfrecord_tools.sample import make_digits, make_photos

MAKERS = {"digits": make_digits, "photos": make_photos}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("kind", choices=sorted(MAKERS), help="MNIST-like digits or photo-like")
    parser.add_argument("out", help="folder to write (new, empty, or made by this script)")
    parser.add_argument("--count", type=int, help="number of images (default: 1000 / 200)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--workers", type=int, default=1, help="processes (default: 1)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    options = {"seed": args.seed, "workers": args.workers}
    if args.count is not None:
        options["count"] = args.count
    start = time.monotonic()
    try:
        folder = MAKERS[args.kind](args.out, **options)
    except TFRecordToolsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{args.kind}: {folder} ({time.monotonic() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
