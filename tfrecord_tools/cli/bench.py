"""``tfrecord-tools bench`` (raw files vs TFRecords vs Keras, a hand-written tf.data pipeline
and TFDS) and ``make-sample``."""

from __future__ import annotations

import argparse

EXIT_PROBLEMS = 1


def register(commands) -> None:
    """``bench`` (raw files vs TFRecords vs their peers, each cell in a pinned fresh process) and
    ``make-sample`` (deterministic sample image folders)."""
    bench = commands.add_parser(
        "bench",
        help="benchmark raw files vs TFRecords vs Keras, hand-written tf.data and TFDS",
        description="Read the same images as raw files (the reader's raw twin), as TFRecords "
        "(the reader), through tf.keras.utils.image_dataset_from_directory, through the "
        "tf.data pipeline a user writes by hand over the same TFRecords, and through TFDS's "
        "as_dataset (when tensorflow_datasets is installed), over thread settings x core "
        "counts x warm/cold page cache; every cell runs in a fresh process pinned to its "
        "cores and reports images/s and CPU time per image. Without IMAGE_DIR a sample set "
        "is made; without --tfrecords the folder is converted first (timed). Writes "
        "results.json, results.csv and results.png to --out.",
    )
    bench.add_argument("image_dir", metavar="IMAGE_DIR", nargs="?", help="one subfolder per class")
    bench.add_argument("--tfrecords", metavar="DIR", help="converted dataset (default: convert)")
    bench.add_argument(
        "--sources",
        metavar="LIST",
        help="of raw,tfrecord,keras,handwritten,tfds (default: all; tfds only where "
        "tensorflow_datasets is installed)",
    )
    bench.add_argument(
        "--threads",
        metavar="LIST",
        help="thread settings, integers or auto (default: 1,2,4,8,auto; --short: auto)",
    )
    bench.add_argument(
        "--cores", metavar="LIST", help="core counts to pin to (default: 1,2,4.. up to all)"
    )
    bench.add_argument(
        "--cache", metavar="LIST", help="warm,cold page cache (default: both; --short: warm)"
    )
    bench.add_argument(
        "--decode",
        metavar="LIST",
        help="of scaled,full: JPEG DCT scaling to the smallest scale >= the image size, or "
        "full decode (default: scaled, the reader's default)",
    )
    bench.add_argument("--crop", metavar="LIST", help="of none,center,random (default: none)")
    bench.add_argument("--dtype", metavar="LIST", help="of uint8,float32 (default: uint8)")
    bench.add_argument(
        "--max-size",
        metavar="LIST",
        help="stored form of the TFRecords: of none and longest sides in pixels, e.g. "
        "none,320; one conversion (timed) per value (default: none)",
    )
    bench.add_argument(
        "--encoding",
        metavar="LIST",
        help="stored form of the TFRecords: of keep,png,raw,auto, the converter's "
        "--encoding (default: keep)",
    )
    bench.add_argument("--batch-size", type=int, default=32, metavar="N", help="(default: 32)")
    bench.add_argument(
        "--image-size",
        metavar="N|HxW",
        help="resize to this (default: 28 for the digits sample, else 224)",
    )
    bench.add_argument(
        "--channels", type=int, choices=(1, 3, 4), help="(default: 1 for digits, else 3)"
    )
    bench.add_argument(
        "--epochs", type=int, default=1, metavar="N", help="passes per timed repeat (default: 1)"
    )
    bench.add_argument(
        "--repeats", type=int, metavar="N", help="timed repeats per cell (default: 3; --short: 1)"
    )
    bench.add_argument(
        "--out", default="bench-results", metavar="DIR", help="(default: bench-results)"
    )
    bench.add_argument(
        "--work", metavar="DIR", help="sample and converted data (default: OUT/data)"
    )
    bench.add_argument(
        "--sample",
        choices=("digits", "photos"),
        default="digits",
        help="sample set made without IMAGE_DIR (default: digits)",
    )
    bench.add_argument("--count", type=int, metavar="N", help="sample size (default: by mode)")
    bench.add_argument("--seed", type=int, default=0, help="sample seed (default: 0)")
    bench.add_argument(
        "--short",
        action="store_true",
        help="a quick look: 1000 digits, one cell per source, 1 repeat",
    )
    bench.add_argument("--no-plot", action="store_true", help="skip results.png")
    bench.add_argument("--quiet", "-q", action="store_true", help="no progress lines")
    bench.set_defaults(handler=_bench)

    sample = commands.add_parser(
        "make-sample",
        help="make a deterministic sample image folder",
        description="Write a sample image folder: digits (MNIST-like 28x28 grayscale PNG) "
        "or photos (~500x375 JPEG q90 with ~10% PNG). A rerun with the same options "
        "returns at once.",
    )
    sample.add_argument("kind", choices=("digits", "photos"))
    sample.add_argument("out", metavar="OUT")
    sample.add_argument("--count", type=int, metavar="N", help="(default: 1000 / 200)")
    sample.add_argument("--seed", type=int, default=0, help="(default: 0)")
    sample.add_argument("--workers", type=int, metavar="W", help="(default: usable cores)")
    sample.set_defaults(handler=_make_sample)


def _bench(args: argparse.Namespace) -> int:
    from ..bench import run_benchmark

    report = run_benchmark(
        image_dir=args.image_dir,
        tfrecords=args.tfrecords,
        sources=args.sources,
        threads=args.threads,
        cores=args.cores,
        cache=args.cache,
        decode=args.decode,
        crop=args.crop,
        dtype=args.dtype,
        max_size=args.max_size,
        encoding=args.encoding,
        batch_size=args.batch_size,
        image_size=args.image_size,
        channels=args.channels,
        epochs=args.epochs,
        repeats=args.repeats,
        out=args.out,
        work=args.work,
        sample=args.sample,
        count=args.count,
        seed=args.seed,
        short=args.short,
        plot=not args.no_plot,
        quiet=args.quiet,
    )
    report.print_table()
    return EXIT_PROBLEMS if report.failed else 0


def _make_sample(args: argparse.Namespace) -> int:
    from .. import sample
    from ..cores import usable_cores

    make = sample.make_digits if args.kind == "digits" else sample.make_photos
    options = {"seed": args.seed, "workers": args.workers or usable_cores()}
    if args.count is not None:
        options["count"] = args.count
    print(f"{args.kind}: {make(args.out, **options)}")
    return 0
