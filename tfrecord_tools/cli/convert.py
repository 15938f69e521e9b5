"""``tfrecord-tools convert images|mnist|coco|voc|yolo|csv|segmentation``: arguments ->
``convert_image_folder`` / ``convert_mnist`` / ``sources.annotated.convert_*``. SRC and OUT
go to the library as given: local paths or URLs
(``gs://b/photos``, ``s3://b/x``, ``memory://x``), never turned into paths here."""

from __future__ import annotations

import argparse
import re

from ..convert import (
    AUTO_RAW_MAX_SIDE,
    DEFAULT_QUALITY,
    ENGINES,
    IMAGE_ENCODINGS,
    MNIST_ENCODINGS,
    VALIDATE_MODES,
)
from ..errors import ConversionError
from ..format.compression import COMPRESSIONS


def register(commands) -> None:
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
    images.add_argument("src", metavar="SRC", help="a folder or a URL (gs://b/photos, s3://...)")
    images.add_argument("out", metavar="OUT", help="a folder or a URL")
    images.add_argument(
        "--name", help="dataset name used in shard file names (default: SRC's folder name)"
    )
    _add_sharding(images, splits=True)
    images.add_argument(
        "--strict",
        action="store_true",
        help="any bad file is an error (exit 2) instead of a listed skip",
    )
    images.add_argument(
        "--validate",
        choices=VALIDATE_MODES,
        default="fast",
        help="fast: headers, JPEG end marker, PNG chunk CRCs (default); "
        "decode: also decode every image fully",
    )
    images.add_argument(
        "--max-size",
        type=int,
        metavar="N",
        help="re-encode images whose longest side is over N pixels to exactly N (JPEG stays "
        "JPEG at --quality, PNG stays PNG), upright; smaller ones are kept byte for byte",
    )
    images.add_argument(
        "--quality",
        type=int,
        default=DEFAULT_QUALITY,
        metavar="Q",
        help=f"JPEG quality 1-100 of the images --max-size re-encodes (default: {DEFAULT_QUALITY})",
    )
    images.add_argument(
        "--encoding",
        choices=IMAGE_ENCODINGS,
        default="keep",
        help="keep: JPEG and PNG as they are (default); png: every image as PNG; raw: uint8 "
        "pixels (HWC); auto: raw when every image is at most "
        f"{AUTO_RAW_MAX_SIDE}x{AUTO_RAW_MAX_SIDE} and all have one shape, else keep",
    )
    images.set_defaults(handler=convert_images)

    mnist = sources.add_parser(
        "mnist",
        help="the four MNIST IDX files (plain or .gz)",
        description="Convert MNIST-format IDX files in SRC (train-images-idx3-ubyte, "
        "train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
        "t10k-labels-idx1-ubyte; each plain or .gz) into splits train and test.",
    )
    mnist.add_argument("src", metavar="SRC", help="a folder or a URL")
    mnist.add_argument("out", metavar="OUT", help="a folder or a URL")
    mnist.add_argument("--name", default="mnist", help="dataset name (default: mnist)")
    mnist.add_argument(
        "--encoding",
        choices=MNIST_ENCODINGS,
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
    mnist.set_defaults(handler=convert_mnist)
    _register_detection(sources)


#: ``convert coco|voc|yolo|csv|segmentation``: (help, description, whether --annotations
#: FILE is needed)
_DETECTION_SOURCES = {
    "coco": (
        "COCO: an instances JSON (or one a split) and its image folder",
        "Convert the images of SRC with the boxes of a COCO instances JSON (--annotations) "
        "into detection TFRecords in OUT; category ids become labels 1..K. One file a "
        "split: --annotations train=FILE --annotations val=FILE.",
        True,
    ),
    "voc": (
        "Pascal VOC: Annotations/*.xml, JPEGImages/, ImageSets/Main/",
        "Convert a Pascal VOC folder SRC into detection TFRecords in OUT; the splits of "
        "ImageSets/Main are kept unless --split is given.",
        False,
    ),
    "yolo": (
        "YOLO: images/, labels/ and data.yaml or classes.txt",
        "Convert a YOLO folder SRC (labels: class cx cy w h, normalised) into detection "
        "TFRecords in OUT; images/train, images/val... are kept as splits unless --split.",
        False,
    ),
    "csv": (
        "a CSV or JSON Lines file of boxes and its image folder",
        "Convert the images of SRC with the boxes of --annotations (one box a row: "
        "filename,xmin,ymin,xmax,ymax,label in pixels; .jsonl: JSON objects) into "
        "detection TFRecords in OUT.",
        True,
    ),
    "segmentation": (
        "semantic segmentation: an image folder and a folder of class masks",
        "Convert the images of SRC with the class masks of --masks (a PNG per image, same "
        "path and stem, each pixel its class id; 255: ignore) into segmentation TFRecords "
        "in OUT (DeepLab's keys).",
        False,
    ),
}
#: ``--annotations SPLIT=FILE``
_SPLIT_FILE = re.compile(r"^([A-Za-z0-9_]+)=(.+)$")


def _register_detection(sources) -> None:
    encodings = tuple(e for e in IMAGE_ENCODINGS if e != "auto")  # as sources.annotated
    for kind, (short, description, needs_file) in _DETECTION_SOURCES.items():
        p = sources.add_parser(kind, help=short, description=description)
        p.add_argument("src", metavar="SRC", help="a folder")
        p.add_argument("out", metavar="OUT", help="a folder or a URL")
        if kind == "coco":
            p.add_argument(
                "--annotations",
                required=True,
                action="append",
                metavar="[SPLIT=]FILE",
                help="the instances JSON; or one per split, the option given once a split: "
                "--annotations train=FILE --annotations val=FILE",
            )
            p.add_argument(
                "--masks",
                action="store_true",
                help="store each object's mask (polygons or RLE) as a PNG, image/object/mask",
            )
        elif needs_file:
            p.add_argument(
                "--annotations", required=True, metavar="FILE", help="the annotation file"
            )
        if kind == "segmentation":
            p.add_argument(
                "--masks",
                required=True,
                metavar="MASKDIR",
                help="the folder of mask PNGs (a.jpg's is MASKDIR/a.png)",
            )
            p.add_argument(
                "--classes",
                metavar="FILE",
                help="class names, class id i on line i + 1 (default: class_0 .. class_N, "
                "N the largest id in the masks, 255 aside)",
            )
        p.add_argument("--name", help="dataset name (default: SRC's folder name)")
        _add_sharding(p, splits=True)
        p.add_argument(
            "--strict",
            action="store_true",
            help="any bad annotation or image is an error (exit 2), nothing is written",
        )
        p.add_argument("--validate", choices=VALIDATE_MODES, default="fast")
        p.add_argument("--max-size", type=int, metavar="N", help="as convert images")
        p.add_argument("--quality", type=int, default=DEFAULT_QUALITY, metavar="Q")
        p.add_argument("--encoding", choices=encodings, default="keep")
        p.set_defaults(handler=convert_detection, needs_file=needs_file)


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
        choices=COMPRESSIONS,
        default="none",
        help="whole-file compression of each shard (default: none)",
    )
    p.add_argument(
        "--seed", type=int, default=0, help="seed for splitting and record order (default: 0)"
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a finished conversion in OUT, and files there with the names a "
        "conversion writes (labels.txt, TFDS metadata, shards)",
    )
    p.add_argument(
        "--allow-nonempty-out",
        action="store_true",
        help="write into an OUT that holds other files and no dataset of ours (or that is / "
        "or your home folder); refused without it",
    )
    p.add_argument(
        "--storage-timeout",
        type=float,
        metavar="SECONDS",
        help="give up on a request to a bucket after SECONDS without progress, its retries "
        "included (default: $TFRECORD_TOOLS_STORAGE_TIMEOUT or 60); a rerun resumes",
    )
    p.add_argument(
        "--engine",
        choices=ENGINES,
        default="local",
        help="local worker processes (default), or Apache Beam (pip install "
        "'tfrecord-tools[beam]'); Beam pipeline options go after --, e.g. "
        "-- --project=P --region=R",
    )
    p.add_argument(
        "--runner",
        metavar="NAME",
        help="Beam runner: FnApiRunner (default, local), DataflowRunner, FlinkRunner, "
        "SparkRunner...",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar or summary")


def convert_images(args: argparse.Namespace) -> int:
    from ..convert.api import convert_image_folder

    return _convert(args, convert_image_folder, **_image_options(args))


def convert_mnist(args: argparse.Namespace) -> int:
    from ..convert.api import convert_mnist

    return _convert(
        args,
        convert_mnist,
        encoding=args.encoding,
        png_level=args.png_level,
        download=args.download,
    )


def convert_detection(args: argparse.Namespace) -> int:
    from ..convert.sources import annotated

    convert = getattr(annotated, f"convert_{args.source}")
    files = {"annotations": args.annotations} if args.needs_file else {}
    if args.source == "coco":
        files = {"annotations": _split_files(args.annotations), "masks": args.masks}
    elif args.source == "segmentation":
        files = {"masks": args.masks, "classes": args.classes}
    return _convert(args, convert, **files, **_image_options(args))


def _split_files(given: list[str]) -> str | dict[str, str]:
    """``--annotations FILE`` once, or ``--annotations SPLIT=FILE`` a split."""
    if len(given) == 1 and not _SPLIT_FILE.match(given[0]):
        return given[0]
    files: dict[str, str] = {}
    for value in given:
        found = _SPLIT_FILE.match(value)
        if found is None:
            raise ConversionError(
                f"--annotations {value}: given more than once, each must be SPLIT=FILE "
                "(e.g. --annotations train=instances_train.json)"
            )
        split, file = found.groups()
        if split in files:
            raise ConversionError(f"--annotations: split {split!r} given twice")
        files[split] = file
    return files


def _image_options(args: argparse.Namespace) -> dict:
    """What image files are checked and stored as: the options every image source takes."""
    names = ("split", "strict", "validate", "max_size", "quality", "encoding")
    return {name: getattr(args, name) for name in names}


def _convert(args: argparse.Namespace, convert, **source_options) -> int:
    """Run ``convert`` with the source's options and the shared sharding options."""
    from dataclasses import fields

    from ..convert.api import ShardingOptions

    sharding = {f.name: getattr(args, f.name) for f in fields(ShardingOptions)}
    summary = convert(args.src, args.out, name=args.name, **source_options, **sharding)
    if not args.quiet:
        print(summary.format_table())  # URLs shown redacted
    return 0
