"""``tfrecord-tools view``: a dataset in the browser, or as one HTML file."""

from __future__ import annotations

import argparse
import sys


def register(commands) -> None:
    view = commands.add_parser(
        "view",
        help="look at a dataset in the browser: overview, gallery, records, damage",
        description="Serve pages about a dataset on this machine: an overview from its "
        "metadata (splits, shards, counts, formats, skipped files, the manifest), a gallery of "
        "thumbnails (filter by split, shard and class; a seeded random sample), every record's "
        "features, and damaged records. Only what a page needs is read: never a whole "
        "dataset (but verify, when asked for). With --html, write the overview and a gallery "
        "sample into one self-contained HTML file instead.",
    )
    view.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="a dataset folder, a TFDS folder, or shard files / quoted globs; local paths "
        "or URLs (s3://bucket/ds, gs://bucket/ds)",
    )
    view.add_argument(
        "--port", type=int, default=8000, help="port to listen on; 0 picks one (default: 8000)"
    )
    view.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: 127.0.0.1, this machine only; any other "
        "lets whoever reaches it browse the dataset, without a password)",
    )
    view.add_argument("--open", action="store_true", help="open the pages in the web browser")
    view.add_argument(
        "--bench",
        metavar="DIR",
        help="also show benchmark results: DIR/results.json of `tfrecord-tools bench --out "
        "DIR`, or those of DIR's subfolders",
    )
    view.add_argument(
        "--html",
        metavar="FILE",
        help="write the overview and a gallery sample to FILE (one self-contained HTML "
        "file, thumbnails inline) and exit",
    )
    view.add_argument(
        "--sample",
        type=int,
        default=60,
        metavar="N",
        help="--html: thumbnails drawn at random over the splits (default: 60)",
    )
    view.add_argument(
        "--seed", type=int, default=0, metavar="N", help="--html: the sample's seed (default: 0)"
    )
    view.set_defaults(handler=_view)


def _view(args: argparse.Namespace) -> int:
    if args.html:
        from ..view.report import write_html

        report = write_html(args.paths, args.html, sample=args.sample, seed=args.seed)
        print(f"{report.file}: {report.images} thumbnails, {report.bytes / 1e3:,.0f} kB")
        return 0
    from ..view.server import serve

    try:
        serve(
            args.paths,
            host=args.host,
            port=args.port,
            bench=args.bench,
            open_browser=args.open,
        )
    except KeyboardInterrupt:  # Ctrl-C (or SIGTERM) is how a server is stopped
        print("tfrecord-tools view: stopped", file=sys.stderr)
    return 0
