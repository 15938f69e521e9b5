"""The ``tfrecord-tools`` command line: parses arguments and calls the library.

No logic lives here: one module per command group registers its subcommands and handlers
(``convert``, ``check``, ``bench``, ``serve``). Library errors (:class:`TFRecordToolsError`)
are caught at this boundary, printed on stderr, and turned into exit code 2; 1 is kept for
"checked and found problems" (verify, bench); an interrupt ends a command with one line and
130 (Ctrl-C) or 143 (SIGTERM), from the first moment ``main`` runs. Importing this package
does not import TensorFlow.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from ..errors import TFRecordToolsError  # already loaded with the package

if TYPE_CHECKING:
    import argparse

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_TERMINATED = 143  # 128 + SIGTERM


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C's KeyboardInterrupt so the same cleanup runs (unfinished
    shards removed, workers stopped) and the command ends with its own exit code."""


def build_parser() -> argparse.ArgumentParser:
    import argparse

    from .. import __version__
    from . import bench, check, convert, serve, view

    parser = argparse.ArgumentParser(
        prog="tfrecord-tools",
        description="Convert image folders and MNIST to sharded TFRecords; read, check, "
        "repair and benchmark them.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for group in (convert, check, bench, serve, view):
        group.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; an interrupt at any point, imports included, ends it with the
    "interrupted" line and 130 (Ctrl-C) or 143 (SIGTERM)."""
    previous = _handle_interrupts()  # first: this module imports nothing heavy
    lost: list[KeyboardInterrupt] = []
    unraisable, sys.unraisablehook = sys.unraisablehook, _keeping_interrupts(lost)
    try:
        code = _run(argv)
        if lost:  # Ctrl-C came while a finalizer ran, where Python can only print it
            raise lost[0]
        return code
    except TFRecordToolsError as e:
        print(f"tfrecord-tools: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt as e:
        _forget_unhandled_keyboard_interrupt()
        print("tfrecord-tools: interrupted; rerun the same command to finish", file=sys.stderr)
        return EXIT_TERMINATED if isinstance(e, Terminated) else EXIT_INTERRUPTED
    finally:
        sys.unraisablehook = unraisable
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _keeping_interrupts(lost: list[KeyboardInterrupt]):
    """A ``sys.unraisablehook`` that keeps an interrupt raised in a ``__del__`` or a
    weakref callback for :func:`main` and passes anything else on."""
    passed_on = sys.unraisablehook

    def hook(info) -> None:
        if isinstance(info.exc_value, KeyboardInterrupt):
            lost.append(info.exc_value)
        else:
            passed_on(info)

    return hook


def _run(argv: Sequence[str] | None) -> int:
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
    with _storage_logs_without_tracebacks():
        return args.handler(args)


def _handle_interrupts() -> dict:
    """Ctrl-C raises KeyboardInterrupt and SIGTERM :class:`Terminated`; returns the handlers
    to restore. A signal the caller set to be ignored stays ignored."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    previous = {}
    for signum, handler in (
        (signal.SIGINT, signal.default_int_handler),
        (signal.SIGTERM, _terminate),
    ):
        current = signal.getsignal(signum)
        if current is not signal.SIG_IGN:
            previous[signum] = current
            signal.signal(signum, handler)
    return previous


def _terminate(signum, frame) -> None:
    raise Terminated


def _forget_unhandled_keyboard_interrupt() -> None:
    """CPython marks a KeyboardInterrupt that ends a string ``exec`` (dataclasses create
    their methods so, at import) as unhandled even when caught later, and under ``python
    -m`` then kills itself with SIGINT instead of exiting 130. Every string exec clears the
    mark first: this one does, having nothing to interrupt."""
    exec("pass", {})


def _log_to_stderr(*, quiet: bool) -> None:
    """The package's own log lines (``--download`` progress, for one) go to stderr, plainly;
    other libraries' stay as they are configured."""
    import logging

    log = logging.getLogger("tfrecord_tools")
    if not any(h.get_name() == _HANDLER for h in log.handlers):
        handler = logging.StreamHandler(_Stderr())  # type: ignore[arg-type]
        handler.set_name(_HANDLER)
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
        log.propagate = False
    log.setLevel(logging.WARNING if quiet else logging.INFO)


_HANDLER = "tfrecord-tools-cli"

#: the loggers of fsspec's back ends, which log a traceback when they give up retrying
_STORAGE_LOGGERS = ("gcsfs", "s3fs", "fsspec")


class _StorageLogFilter(logging.Filter):
    """A storage library's log record without its traceback (the error the command then
    raises names the object and the reason, and the command prints that), and without
    gcsfs's note, at every open against an emulator, that it could not tell the bucket's
    type."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.getMessage().startswith("Could not determine bucket type"):
            return False
        record.exc_info = None
        record.exc_text = None
        return True


@contextlib.contextmanager
def _storage_logs_without_tracebacks() -> Iterator[None]:
    """For the command's duration (and in the worker processes it forks)."""
    only = _StorageLogFilter()
    loggers = [logging.getLogger(name) for name in _STORAGE_LOGGERS]
    for logger in loggers:
        logger.addFilter(only)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(only)


class _Stderr:
    """Whatever ``sys.stderr`` is when a line is written (tests and callers swap it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()
