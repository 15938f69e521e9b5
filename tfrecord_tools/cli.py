"""The ``tfrecord-tools`` command line: parses arguments and calls the library.

No logic lives here. Library errors (:class:`TFRecordToolsError`) are caught at this
boundary, printed on stderr, and turned into exit code 2; 1 is kept for "checked and found
problems" (verify). Importing this module does not import TensorFlow.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import __version__
from .errors import TFRecordToolsError

EXIT_PROBLEMS = 1
EXIT_ERROR = 2


def _add_sharding(p: argparse.ArgumentParser, *, splits: bool) -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "--shards",
        type=int,
        metavar="N",
        help="total number of shards, shared among splits by size",
    )
    group.add_argument(
        "--shard-size",
        metavar="SIZE",
        help="target size per shard, e.g. 100MB or 64MiB "
        "(default: ~128 MB, at least one shard per worker)",
    )
    if splits:
        p.add_argument(
            "--split",
            metavar="SPEC",
            help="stratified splits, e.g. train=0.9,validation=0.1 (default: everything in train)",
        )
    p.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="worker processes, each writing whole shards (default: usable cores)",
    )
    p.add_argument(
        "--compression",
        choices=("none", "gzip", "zlib"),
        default="none",
        help="whole-file compression of each shard (default: none)",
    )
    p.add_argument(
        "--seed", type=int, default=0, help="seed for splitting and record order (default: 0)"
    )
    p.add_argument("--overwrite", action="store_true", help="replace a finished conversion in OUT")
    p.add_argument(
        "--engine",
        choices=("local", "beam"),
        default="local",
        help="local worker processes (default), or Apache Beam (pip install "
        "'tfrecord-tools[beam]'); any further --option=value goes to Beam's pipeline options",
    )
    p.add_argument(
        "--runner",
        metavar="NAME",
        help="Beam runner: FnApiRunner (default, local), DataflowRunner, FlinkRunner, "
        "SparkRunner...",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar or summary")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tfrecord-tools",
        description="Convert image folders and MNIST to sharded TFRecords; read, check, "
        "repair and benchmark them.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    convert = commands.add_parser(
        "convert",
        help="pack images into sharded TFRecords",
        description="Pack images into sharded TFRecords.",
    )
    sources = convert.add_subparsers(dest="source", metavar="SOURCE", required=True)

    images = sources.add_parser(
        "images",
        help="an image folder, one subfolder per class",
        description="Convert SRC (one subfolder per class; files at any depth below belong "
        "to their top-level class) into sharded TFRecords in OUT.",
    )
    images.add_argument("src", metavar="SRC")
    images.add_argument("out", metavar="OUT")
    images.add_argument(
        "--name", help="dataset name used in shard file names (default: SRC's folder name)"
    )
    _add_sharding(images, splits=True)
    images.add_argument(
        "--strict",
        action="store_true",
        help="any bad file is an error (exit 1) instead of a listed skip",
    )
    images.add_argument(
        "--validate",
        choices=("fast", "decode"),
        default="fast",
        help="fast: headers, JPEG end marker, PNG chunk CRCs (default); "
        "decode: also decode every image fully",
    )
    images.set_defaults(handler=_convert_images)

    mnist = sources.add_parser(
        "mnist",
        help="the four MNIST IDX files (plain or .gz)",
        description="Convert MNIST-format IDX files in SRC (train-images-idx3-ubyte, "
        "train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
        "t10k-labels-idx1-ubyte; each plain or .gz) into splits train and test.",
    )
    mnist.add_argument("src", metavar="SRC")
    mnist.add_argument("out", metavar="OUT")
    mnist.add_argument("--name", default="mnist", help="dataset name (default: mnist)")
    mnist.add_argument(
        "--encoding",
        choices=("png", "raw"),
        default="png",
        help="store 1-channel PNGs (default) or raw uint8 pixels",
    )
    mnist.add_argument(
        "--png-level",
        type=int,
        choices=range(10),
        default=1,
        metavar="0-9",
        help="deflate level of the PNGs: 1 (default) is fast and as small as Pillow's "
        "output; 6 makes them ~7%% smaller at ~4x the encoding time",
    )
    mnist.add_argument(
        "--download",
        action="store_true",
        help="fetch the four files into SRC first (checksums verified)",
    )
    _add_sharding(mnist, splits=False)
    mnist.set_defaults(handler=_convert_mnist)
    _add_check_commands(commands)
    _add_bench_commands(commands)
    return parser


def _add_check_commands(commands) -> None:
    """inspect, count, verify, repair, index: the tools for existing TFRecords."""
    paths_help = "a dataset folder, or shard files / quoted globs"
    inspect = commands.add_parser(
        "inspect",
        help="show splits, counts, features, classes and image sizes",
        description="Describe a dataset: splits, shards, counts and bytes of every shard; "
        "feature keys, image formats and sizes from a sample of records.",
    )
    inspect.add_argument("paths", nargs="+", metavar="PATH", help=paths_help)
    inspect.add_argument("--json", action="store_true", help="print JSON instead of text")
    inspect.add_argument(
        "--sample-shards",
        type=int,
        default=4,
        metavar="N",
        help="shards to sample, spread over the list (default: 4)",
    )
    inspect.add_argument(
        "--sample-records",
        type=int,
        default=16,
        metavar="N",
        help="records read from the start of each sampled shard (default: 16)",
    )
    inspect.set_defaults(handler=_inspect)

    count = commands.add_parser(
        "count",
        help="count records from the manifest or .idx files",
        description="Count records from the manifest, else the .idx files; shard payloads "
        "are never read.",
    )
    count.add_argument("paths", nargs="+", metavar="PATH", help=paths_help)
    count.add_argument(
        "--scan",
        action="store_true",
        help="count shards with neither by walking their record headers",
    )
    count.add_argument("--json", action="store_true", help="print JSON instead of text")
    count.set_defaults(handler=_count)

    verify = commands.add_parser(
        "verify",
        help="check record CRCs, file ends, manifest and .idx files",
        description="Check every record's length and data CRC, that files end cleanly, the "
        "manifest's counts, sizes and sha256, and the .idx files. Exit 1 if "
        "anything is wrong.",
    )
    verify.add_argument("paths", nargs="+", metavar="PATH", help=paths_help)
    verify.add_argument(
        "--workers", type=int, metavar="N", help="files checked at once (default: usable cores)"
    )
    verify.add_argument(
        "--no-sha256",
        dest="sha256",
        action="store_false",
        help="skip the whole-file sha256 (record CRCs are still checked)",
    )
    verify.add_argument(
        "--quiet", "-q", action="store_true", help="print problems only, no summary line"
    )
    verify.set_defaults(handler=_verify)

    repair = commands.add_parser(
        "repair",
        help="copy the records that check out, dropping damaged ones",
        description="Copy SRC (a shard file or a dataset folder) to DST keeping every record "
        "whose CRCs check out, including those after damage; writes .idx files "
        "and, for a folder, a fresh manifest.",
    )
    repair.add_argument("src", metavar="SRC")
    repair.add_argument("dst", metavar="DST")
    repair.add_argument("--overwrite", action="store_true", help="replace an existing DST")
    repair.set_defaults(handler=_repair)

    index = commands.add_parser(
        "index",
        help="write .idx files for existing shards",
        description="Write SHARD.idx (one 'OFFSET LENGTH' line per record, DALI's format) "
        "for each shard, checking every record's CRCs.",
    )
    index.add_argument("paths", nargs="+", metavar="SHARD")
    index.set_defaults(handler=_index)


def _sharding_kwargs(args: argparse.Namespace) -> dict:
    return {
        "shards": args.shards,
        "shard_size": args.shard_size,
        "workers": args.workers,
        "compression": args.compression,
        "seed": args.seed,
        "quiet": args.quiet,
        "overwrite": args.overwrite,
        "engine": args.engine,
        "runner": args.runner,
        "pipeline_args": args.pipeline_args,
    }


def _convert_images(args: argparse.Namespace) -> int:
    from .convert import convert_image_folder

    summary = convert_image_folder(
        args.src,
        args.out,
        name=args.name,
        split=args.split,
        strict=args.strict,
        validate=args.validate,
        **_sharding_kwargs(args),
    )
    if not args.quiet:
        print(summary.format_table())
    return 0


def _convert_mnist(args: argparse.Namespace) -> int:
    from .convert import convert_mnist

    summary = convert_mnist(
        args.src,
        args.out,
        name=args.name,
        encoding=args.encoding,
        png_level=args.png_level,
        download=args.download,
        **_sharding_kwargs(args),
    )
    if not args.quiet:
        print(summary.format_table())
    return 0


def _inspect(args: argparse.Namespace) -> int:
    import json

    from .inspecting import inspect_dataset

    report = inspect_dataset(
        args.paths, sample_shards=args.sample_shards, sample_records=args.sample_records
    )
    print(
        json.dumps(report.to_json(), indent=2, ensure_ascii=False)
        if args.json
        else report.format_text()
    )
    return 0


def _count(args: argparse.Namespace) -> int:
    import json

    from .count import count_records

    report = count_records(args.paths, scan=args.scan)
    print(
        json.dumps(report.to_json(), indent=2, ensure_ascii=False)
        if args.json
        else report.format_text()
    )
    return 0


def _verify(args: argparse.Namespace) -> int:
    from .verify import verify

    report = verify(args.paths, workers=args.workers, sha256=args.sha256)
    for problem in report.problems:
        print(problem)
    if not args.quiet:
        print(report.summary())
    return 0 if report.ok else EXIT_PROBLEMS


def _repair(args: argparse.Namespace) -> int:
    from .repair import repair

    print(repair(args.src, args.dst, overwrite=args.overwrite).format_text())
    return 0


def _index(args: argparse.Namespace) -> int:
    from .record_index import index_shards

    for result in index_shards(args.paths):
        print(f"{result.index}: {result.records:,} records")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and getattr(args, "engine", None) != "beam":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.pipeline_args = extra  # Beam's pipeline options, passed through
    try:
        return args.handler(args)
    except TFRecordToolsError as e:
        print(f"tfrecord-tools: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("tfrecord-tools: interrupted; rerun the same command to finish", file=sys.stderr)
        return 130


# --- bench and make-sample ---------------------------------------------------------------


def _add_bench_commands(commands) -> None:
    """``bench`` (raw files vs TFRecords vs Keras, each cell in a pinned fresh process) and
    ``make-sample`` (deterministic sample image folders)."""
    bench = commands.add_parser(
        "bench",
        help="benchmark raw files vs TFRecords vs Keras' image_dataset_from_directory",
        description="Read the same images as raw files (the reader's raw twin), as TFRecords "
        "(the reader) and through tf.keras.utils.image_dataset_from_directory, over thread "
        "settings x core counts x warm/cold page cache; every cell runs in a fresh process "
        "pinned to its cores. Without IMAGE_DIR a sample set is made; without --tfrecords "
        "the folder is converted first (timed). Writes results.json, results.csv and "
        "results.png to --out.",
    )
    bench.add_argument("image_dir", metavar="IMAGE_DIR", nargs="?", help="one subfolder per class")
    bench.add_argument("--tfrecords", metavar="DIR", help="converted dataset (default: convert)")
    bench.add_argument(
        "--sources", metavar="LIST", help="of raw,tfrecord,keras (default: all three)"
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
        "--short", action="store_true", help="a quick look: 1000 digits, 3 cells, 1 repeat"
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

    serve = commands.add_parser(
        "serve",
        help="run a tf.data service dispatcher or worker",
        description="Run one tf.data service server until interrupted (SIGINT/SIGTERM). "
        "Trainers then read with make_dataset(..., service='grpc://DISPATCHER:PORT'). "
        "The servers listen on all interfaces without authentication: private networks only.",
    )
    servers = serve.add_subparsers(dest="kind", metavar="KIND", required=True)
    dispatcher = servers.add_parser(
        "dispatcher",
        help="hands out work and tracks workers (one per job)",
        description="Start a dispatcher; prints its address and its worker count as it changes.",
    )
    dispatcher.add_argument(
        "--port", type=int, default=5050, help="port to listen on; 0 picks one (default: 5050)"
    )
    dispatcher.add_argument(
        "--work-dir",
        metavar="DIR",
        help="journal for fault tolerant mode: a restarted dispatcher resumes its jobs",
    )
    dispatcher.set_defaults(handler=_serve)
    worker = servers.add_parser(
        "worker",
        help="runs input pipelines for trainers",
        description="Start a worker that registers with the dispatcher at HOST:PORT.",
    )
    worker.add_argument("--dispatcher", required=True, metavar="HOST:PORT")
    worker.add_argument(
        "--port", type=int, default=0, help="port to listen on (default: 0, any free port)"
    )
    worker.add_argument(
        "--host",
        default="localhost",
        help="this machine's name as trainers reach it (default: localhost; set it on "
        "more than one machine)",
    )
    worker.set_defaults(handler=_serve)


def _bench(args: argparse.Namespace) -> int:
    from .bench import run_benchmark

    report = run_benchmark(
        image_dir=args.image_dir,
        tfrecords=args.tfrecords,
        sources=args.sources,
        threads=args.threads,
        cores=args.cores,
        cache=args.cache,
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


def _serve(args: argparse.Namespace) -> int:
    from .service import run

    if args.kind == "dispatcher":
        return run("dispatcher", port=args.port, work_dir=args.work_dir)
    return run("worker", dispatcher=args.dispatcher, port=args.port, host=args.host)


def _make_sample(args: argparse.Namespace) -> int:
    from . import sample
    from .convert import usable_cores

    make = sample.make_digits if args.kind == "digits" else sample.make_photos
    options = {"seed": args.seed, "workers": args.workers or usable_cores()}
    if args.count is not None:
        options["count"] = args.count
    print(f"{args.kind}: {make(args.out, **options)}")
    return 0
