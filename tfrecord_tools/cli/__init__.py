"""The ``tfrecord-tools`` command line: parses arguments and calls the library.

No logic lives here: one module per command group registers its subcommands and handlers
(``convert``, ``check``, ``bench``, ``serve``). Library errors (:class:`TFRecordToolsError`)
are caught at this boundary, printed on stderr, and turned into exit code 2; 1 is kept for
"checked and found problems" (verify, bench). Importing this package does not import
TensorFlow.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import TFRecordToolsError
from . import bench, check, convert, serve

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tfrecord-tools",
        description="Convert image folders and MNIST to sharded TFRecords; read, check, "
        "repair and benchmark them.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for group in (convert, check, bench, serve):
        group.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    # Beam's pipeline options come after "--", passed through as they are; before it, an
    # unknown option is a typo and an error
    split = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:split])
    args.pipeline_args = argv[split + 1 :]
    if args.pipeline_args and getattr(args, "engine", None) != "beam":
        parser.error("options after -- are Beam pipeline options: they need --engine beam")
    _log_to_stderr(quiet=getattr(args, "quiet", False))
    try:
        return args.handler(args)
    except TFRecordToolsError as e:
        print(f"tfrecord-tools: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("tfrecord-tools: interrupted; rerun the same command to finish", file=sys.stderr)
        return EXIT_INTERRUPTED


def _log_to_stderr(*, quiet: bool) -> None:
    """The package's own log lines (``--download`` progress, for one) go to stderr, plainly;
    other libraries' stay as they are configured."""
    log = logging.getLogger("tfrecord_tools")
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
        log.propagate = False
    log.setLevel(logging.WARNING if quiet else logging.INFO)
