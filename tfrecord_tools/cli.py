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
        "--download",
        action="store_true",
        help="fetch the four files into SRC first (checksums verified)",
    )
    _add_sharding(mnist, splits=False)
    mnist.set_defaults(handler=_convert_mnist)
    return parser


def _sharding_kwargs(args: argparse.Namespace) -> dict:
    return {
        "shards": args.shards,
        "shard_size": args.shard_size,
        "workers": args.workers,
        "compression": args.compression,
        "seed": args.seed,
        "quiet": args.quiet,
        "overwrite": args.overwrite,
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
        download=args.download,
        **_sharding_kwargs(args),
    )
    if not args.quiet:
        print(summary.format_table())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except TFRecordToolsError as e:
        print(f"tfrecord-tools: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("tfrecord-tools: interrupted; rerun the same command to finish", file=sys.stderr)
        return 130
