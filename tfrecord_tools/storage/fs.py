"""The storage seam: open, list, stat, put whole and delete, over local paths and URLs.

Everything the package reads or writes outside a TensorFlow pipeline goes through here, so
a dataset folder may be a local path or any URL fsspec knows (``gs://`` through gcsfs,
``s3://`` through s3fs, ``memory://``, ``file://``...). fsspec and its back ends are optional
extras; a URL whose library is missing is an error naming the extra to install.

Atomicity (FORMAT.md): locally a file is written to a hidden temporary sibling, then renamed
(:mod:`.atomic`). In a bucket an object is created whole when its upload completes, so
:func:`put_file`, :func:`write_atomic` and :func:`writing` put the finished bytes under the
final name in one upload and abandon it (no object) when the writing fails.

Credentials and endpoints are the libraries' own: ``GOOGLE_APPLICATION_CREDENTIALS``,
``STORAGE_EMULATOR_HOST``, AWS profiles and variables, ``AWS_ENDPOINT_URL``. Messages show
URLs through :func:`redact`, never a secret written into one.

Time spent retrying is bounded: the back ends retry a failing or unreachable server on their
own (gcsfs six times per request, ~30 s of back-off, and never gives up on a server that
accepts a connection but does not answer). A request that goes :func:`storage_timeout`
seconds (default 60, ``$TFRECORD_TOOLS_STORAGE_TIMEOUT``, :func:`time_limit`) without
progress is cancelled, and fails naming its object. Uploads and downloads show progress
through the back end's callback (uploads go in pieces of :data:`UPLOAD_PIECE`), so only a
stalled transfer is cut, not a slow one.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from ..errors import StorageError, TFRecordToolsError
from .atomic import incomplete
from .atomic import write_atomic as _write_local

__all__ = [
    "StorageError",
    "basename",
    "delete",
    "delete_tree",
    "dirname",
    "exists",
    "extra_for",
    "filesystem",
    "glob",
    "is_dir",
    "is_file",
    "is_url",
    "join",
    "list_files",
    "list_folder",
    "open_read",
    "put_file",
    "read_bytes",
    "read_text",
    "redact",
    "scheme",
    "size",
    "storage_timeout",
    "time_limit",
    "walk_files",
    "write_atomic",
    "writing",
]

#: Read buffer for remote files: one request per block (TensorFlow's 256 KB default costs a
#: round trip per 256 KB).
REMOTE_BLOCK = 8 << 20

#: Seconds a request to a bucket may go without progress, the back end's retries of a
#: failing or unreachable server included, before it fails naming its object.
DEFAULT_STORAGE_TIMEOUT = 60.0
#: The environment variable that sets it (seconds).
STORAGE_TIMEOUT_VARIABLE = "TFRECORD_TOOLS_STORAGE_TIMEOUT"
#: Uploads of the back ends that take a piece size go in pieces of this many bytes: each
#: piece that arrives is progress (a single 50 MB request would show none until it ends).
UPLOAD_PIECE = 8 << 20

_URL = re.compile(r"^(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*)://")
# which extra installs the fsspec back end of a scheme
_EXTRAS = {"gs": "gcs", "gcs": "gcs", "s3": "s3", "s3a": "s3"}


def scheme(path: str | os.PathLike) -> str:
    """The URL scheme of ``path`` ("" for a local path; ``file://`` counts as local)."""
    if not isinstance(path, str):
        return ""
    match = _URL.match(path)
    if match is None:
        return ""
    found = match["scheme"].lower()
    return "" if found in ("file", "local") else found


def is_url(path: str | os.PathLike) -> bool:
    """A remote location (any ``scheme://`` other than ``file://``)."""
    return scheme(path) != ""


def local(path: str | os.PathLike) -> str:
    """A local path as a string (``file://`` stripped)."""
    text = os.fspath(path)
    for prefix in ("file://", "local://"):
        if text.startswith(prefix):
            return text[len(prefix) :]
    return text


def redact(url: str | os.PathLike) -> str:
    """``url`` without any credentials written into it (``s3://KEY:SECRET@bucket``) or its
    query string (signed URLs)."""
    text = os.fspath(url)
    if not is_url(text):
        return text
    text = re.sub(r"^([^:/]+://)[^/@]*@", r"\1", text)
    return text.split("?", 1)[0]


def extra_for(url: str) -> str:
    """The ``tfrecord-tools[...]`` extra that brings the back end of ``url``'s scheme."""
    return _EXTRAS.get(scheme(url), "cloud")


_lock = threading.Lock()


def filesystem(url: str) -> tuple[Any, str]:
    """fsspec's file system for ``url`` and the path within it."""
    name = scheme(url)
    if name in ("gs", "gcs") and os.environ.get("STORAGE_EMULATOR_HOST"):
        # gcsfs otherwise makes a gRPC call per operation that waits 60 s for an emulator
        os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
    try:
        import fsspec.core
    except ImportError:
        raise StorageError(
            f"{redact(url)}: reading URLs needs fsspec: pip install "
            f"'tfrecord-tools[{extra_for(url)}]'"
        ) from None
    try:
        with _lock:
            fs, inner = fsspec.core.url_to_fs(url)
    except ImportError as e:
        raise StorageError(
            f"{redact(url)}: the {name}:// back end is not installed ({e}); pip install "
            f"'tfrecord-tools[{extra_for(url)}]'"
        ) from None
    except ValueError as e:  # an unknown protocol
        raise StorageError(f"{redact(url)}: {e}") from None
    return fs, inner


_time_limit: float | None = None  # time_limit()'s; None: the variable's or the default


def storage_timeout() -> float:
    """Seconds a storage request may go without progress (see the module's docstring)."""
    if _time_limit is not None:
        return _time_limit
    text = os.environ.get(STORAGE_TIMEOUT_VARIABLE, "").strip()
    if not text:
        return DEFAULT_STORAGE_TIMEOUT
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise StorageError(
            f"{STORAGE_TIMEOUT_VARIABLE}={text!r}: expected a positive number of seconds"
        )
    return seconds


@contextlib.contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Storage requests of this process made in the block give up after ``seconds``
    without progress (None: :func:`storage_timeout` as it is)."""
    global _time_limit
    previous = _time_limit
    if seconds is not None:
        _time_limit = seconds
    try:
        yield
    finally:
        _time_limit = previous


class _NoProgress(Exception):
    """A request cancelled after :func:`storage_timeout` seconds without progress."""


#: Methods that move a file's bytes and report them to a callback as they go.
_TRANSFERS = frozenset({"put_file", "get_file"})


def _call(fs: Any, method: str, *args: Any, until: float | None = None, **kwargs: Any) -> Any:
    """``fs.method(*args, **kwargs)``, cancelled once it has gone :func:`storage_timeout`
    seconds without progress (an answer, or for a transfer a piece of it), or at the
    ``time.monotonic()`` ``until`` (several calls sharing one bound). Only fsspec's
    asynchronous back ends (gcsfs, s3fs...) talk to servers that retry; the others are
    called as they are."""
    coroutine = getattr(fs, "_" + method, None)
    if not getattr(fs, "async_impl", False) or coroutine is None:
        return getattr(fs, method)(*args, **kwargs)
    import asyncio
    import concurrent.futures
    import inspect

    limit = storage_timeout()
    progress = _progress_callback()
    if method in _TRANSFERS:
        kwargs["callback"] = progress
        if method == "put_file" and "chunksize" in inspect.signature(coroutine).parameters:
            kwargs.setdefault("chunksize", UPLOAD_PIECE)
    future = asyncio.run_coroutine_threadsafe(coroutine(*args, **kwargs), fs.loop)
    try:
        while True:
            now = time.monotonic()
            left = min(limit - (now - progress.last), math.inf if until is None else until - now)
            if left <= 0:
                raise _NoProgress(
                    f"no progress for {limit:g} s (the server does not answer, or fails "
                    "and is retried); wait longer with --storage-timeout SECONDS or "
                    f"{STORAGE_TIMEOUT_VARIABLE}"
                )
            try:
                return future.result(timeout=left)
            except concurrent.futures.TimeoutError:
                continue
    finally:
        future.cancel()  # nothing when it is done; else its retries end here


def _progress_callback() -> Any:
    """An fsspec callback that keeps the time of the last sign of progress (``.last``)."""
    from fsspec.callbacks import Callback

    class Progress(Callback):
        def __init__(self) -> None:
            super().__init__()
            self.last = time.monotonic()

        def call(self, *args: Any, **kwargs: Any) -> None:
            self.last = time.monotonic()

    return Progress()


@contextlib.contextmanager
def _naming(url: str, doing: str) -> Iterator[None]:
    """Errors of a storage call become :class:`StorageError` naming ``url``; a missing
    object stays :class:`FileNotFoundError` (with the URL as its file name)."""
    try:
        yield
    except TFRecordToolsError:
        raise
    except FileNotFoundError as e:
        raise FileNotFoundError(2, "no such file or object", redact(url)) from e
    except IsADirectoryError as e:
        raise IsADirectoryError(21, "a folder, not a file", redact(url)) from e
    except PermissionError as e:
        raise StorageError(f"{redact(url)}: cannot {doing}: access denied ({e})") from e
    except Exception as e:  # back ends raise their own types (botocore, aiohttp, ...)
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise StorageError(f"{redact(url)}: cannot {doing}: {reason}") from e


def join(base: str | os.PathLike, *names: str) -> str:
    """``base/name/...`` for a local path or a URL."""
    if is_url(base):
        text = os.fspath(base).rstrip("/")
        return "/".join([text, *(n.strip("/") for n in names)])
    return os.path.join(local(base), *names)


def basename(path: str | os.PathLike) -> str:
    text = os.fspath(path)
    return text.rstrip("/").rsplit("/", 1)[-1] if is_url(text) else os.path.basename(text)


def dirname(path: str | os.PathLike) -> str:
    text = os.fspath(path)
    if is_url(text):
        head = text.rstrip("/").rsplit("/", 1)[0]
        return head if "://" in head and not head.endswith(":/") else text
    return os.path.dirname(text)


def _look_up(path: str | os.PathLike, on_disk, method: str) -> Any:
    """``on_disk(local path)`` for a local path, else the file system's ``method``."""
    if not is_url(path):
        return on_disk(local(path))
    url = os.fspath(path)
    fs, inner = filesystem(url)
    with _naming(url, "look up"):
        return _call(fs, method, inner)


def exists(path: str | os.PathLike) -> bool:
    return bool(_look_up(path, os.path.exists, "exists"))


def is_file(path: str | os.PathLike) -> bool:
    return bool(_look_up(path, os.path.isfile, "isfile"))


def is_dir(path: str | os.PathLike) -> bool:
    """A folder; for a bucket, a prefix that holds objects (or the bucket itself)."""
    return bool(_look_up(path, os.path.isdir, "isdir"))


def size(path: str | os.PathLike) -> int:
    """The size of a file or object in bytes (:class:`FileNotFoundError` when missing)."""
    return int(_look_up(path, lambda p: os.stat(p).st_size, "size"))


def list_files(folder: str | os.PathLike) -> dict[str, int]:
    """The files directly in ``folder`` by name, with their sizes: one listing (a request
    per 1,000 objects in a bucket). Empty when the folder does not exist."""
    return list_folder(folder)[0]


def walk_files(folder: str | os.PathLike) -> Iterator[tuple[str, int]]:
    """Every file under ``folder`` as (relative POSIX path, size), sorted: for a bucket one
    recursive listing (a request per 1,000 objects), never one request per file."""
    if not is_url(folder):
        root = local(folder)
        found: list[tuple[str, int]] = []
        for dirpath, _dirs, files in os.walk(root):
            rel = os.path.relpath(dirpath, root).replace(os.sep, "/")
            for name in files:
                with contextlib.suppress(OSError):
                    size = os.stat(os.path.join(dirpath, name)).st_size
                    found.append((name if rel == "." else f"{rel}/{name}", size))
        yield from sorted(found)
        return
    url = os.fspath(folder)
    fs, inner = filesystem(url)
    with _naming(url, "list"):
        fs.invalidate_cache(inner)
        found = _call(fs, "find", inner, detail=True)
    prefix = inner.rstrip("/") + "/"
    for name in sorted(found):
        info = found[name]
        if info.get("type", "file") == "file" and name.startswith(prefix):
            yield name[len(prefix) :], int(info.get("size") or 0)


def glob(pattern: str) -> list[str]:
    """The files matching a glob pattern, local or URL (URLs keep their scheme), sorted."""
    if not is_url(pattern):
        import glob as globlib

        return sorted(m for m in globlib.glob(local(pattern)) if os.path.isfile(m))
    fs, inner = filesystem(pattern)
    with _naming(pattern, "list"):
        fs.invalidate_cache()
        found = _call(fs, "glob", inner, detail=True)
    head = pattern[: pattern.index("://") + 3]
    return sorted(
        head + name.lstrip("/") if not name.startswith(head) else name
        for name, info in found.items()
        if info.get("type", "file") == "file"
    )


def open_read(path: str | os.PathLike, block_size: int = REMOTE_BLOCK) -> IO[bytes]:
    """A seekable binary file; remote ones read ahead ``block_size`` bytes a request."""
    if not is_url(path):
        return open(local(path), "rb")
    url = os.fspath(path)
    fs, inner = filesystem(url)
    with _naming(url, "open"):
        return fs.open(inner, "rb", block_size=block_size, cache_type="readahead")


def read_bytes(path: str | os.PathLike, start: int | None = None, end: int | None = None) -> bytes:
    """The bytes of a file or object (``[start, end)`` of it: one ranged request)."""
    if not is_url(path):
        with open(local(path), "rb") as f:
            if start:
                f.seek(start)
            return f.read() if end is None else f.read(end - (start or 0))
    url = os.fspath(path)
    fs, inner = filesystem(url)
    with _naming(url, "read"):
        if start is not None or end is not None:
            return _call(fs, "cat_file", inner, start=start, end=end)
        until = time.monotonic() + storage_timeout()  # one bound for both tries
        try:  # a whole object in one request ("bytes=0-"; s3fs asks its size first without)
            return _call(fs, "cat_file", inner, start=0, end=None, until=until)
        except OSError as e:
            if isinstance(e, FileNotFoundError):
                raise
            return _call(fs, "cat_file", inner, until=until)  # an empty object has no byte 0


def read_text(path: str | os.PathLike) -> str:
    return read_bytes(path).decode("utf-8")


def write_atomic(path: str | os.PathLike, data: str | bytes) -> str:
    """Write ``data`` (text as UTF-8) whole: locally through a temporary sibling and a
    rename, to a bucket in one upload."""
    if not is_url(path):
        _parent(path)
        return os.fspath(_write_local(local(path), data))
    url = os.fspath(path)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fs, inner = filesystem(url)
    with _naming(url, "write"):
        _call(fs, "pipe_file", inner, raw)
    return url


def put_file(source: str | os.PathLike, path: str | os.PathLike) -> str:
    """Copy the finished local file ``source`` to ``path``: an object appears only when its
    upload completes; a local target through a temporary sibling and a rename."""
    if not is_url(path):
        _parent(path)
        with incomplete(local(path)) as tmp:
            shutil.copyfile(source, tmp)
        return os.fspath(path)
    url = os.fspath(path)
    fs, inner = filesystem(url)
    with _naming(url, "upload"):
        _call(fs, "put_file", os.fspath(source), inner)
    return url


@contextlib.contextmanager
def writing(path: str | os.PathLike) -> Iterator[IO[bytes]]:
    """``with writing(target) as f:`` write ``f``; ``target`` appears when the block ends,
    and never if it raised. Locally through a temporary sibling; for a URL the bytes go to a
    local temporary file, uploaded whole at the end (every back end then creates the object
    in one piece; fsspec's own writers would commit a half-written object when closed)."""
    if not is_url(path):
        _parent(path)
        with incomplete(local(path)) as tmp, open(tmp, "wb") as f:
            yield f
        return
    with tempfile.NamedTemporaryFile(prefix=".tfrecord-tools-", suffix=".upload") as f:
        yield f
        f.flush()
        put_file(f.name, path)


def _parent(path: str | os.PathLike) -> None:
    """A local file's folder, made when missing (as a bucket needs none)."""
    os.makedirs(os.path.dirname(os.path.abspath(local(path))), exist_ok=True)


def delete(path: str | os.PathLike) -> None:
    """Delete a file or object; nothing when it is not there."""
    if not is_url(path):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(local(path))
        return
    url = os.fspath(path)
    fs, inner = filesystem(url)
    with _naming(url, "delete"), contextlib.suppress(FileNotFoundError):
        _call(fs, "rm_file", inner)


def delete_tree(path: str | os.PathLike) -> None:
    """Delete a folder (a prefix) and everything under it; nothing when it is not there."""
    if not is_url(path):
        shutil.rmtree(local(path), ignore_errors=True)
        return
    url = os.fspath(path)
    fs, inner = filesystem(url)
    with _naming(url, "delete"), contextlib.suppress(FileNotFoundError):
        fs.invalidate_cache(inner)
        names = list(_call(fs, "find", inner))
        if names:
            _call(fs, "rm", names)


def make_dirs(path: str | os.PathLike) -> None:
    """Create a local folder; buckets have no folders (a prefix exists through its objects)."""
    if not is_url(path):
        Path(local(path)).mkdir(parents=True, exist_ok=True)


def get_file(path: str | os.PathLike, target: str | os.PathLike) -> str:
    """Copy the file or object ``path`` whole to the local file ``target`` (one download
    for an object; a local source is copied). Returns ``target``."""
    target = os.fspath(target)
    if not is_url(path):
        shutil.copyfile(local(path), target)
        return target
    url = os.fspath(path)
    fs, inner = filesystem(url)
    with _naming(url, "download"):
        _call(fs, "get_file", inner, target)
    return target


def read_many(paths: list[str]) -> list[bytes]:
    """The bytes of several files or objects, in order. A bucket's objects are fetched
    concurrently (fsspec's ``cat``: a batch of requests in flight at once, not one after
    the other); each failure names its own URL."""
    out: list[bytes | None] = [None] * len(paths)
    groups: dict[int, tuple[Any, list[tuple[int, str, str]]]] = {}
    for i, path in enumerate(paths):
        if not is_url(path):
            out[i] = read_bytes(path)
            continue
        fs, inner = filesystem(path)
        groups.setdefault(id(fs), (fs, []))[1].append((i, path, inner))
    for fs, members in groups.values():
        with _naming(members[0][1], "read"):
            got = fs.cat([inner for _, _, inner in members], start=0, on_error="return")
        for i, url, inner in members:
            value = got.get(inner) if isinstance(got, dict) else got
            if isinstance(value, BaseException) or value is None:
                value = read_bytes(url)  # again alone: its own error (or an empty object)
            out[i] = value
    return out  # type: ignore[return-value]


def list_folder(folder: str | os.PathLike) -> tuple[dict[str, int], set[str]]:
    """The files directly in ``folder`` (name -> size) and the names of its subfolders, from
    one listing (a request per 1,000 objects in a bucket). Both empty when ``folder`` is not
    a folder: missing, or a file (``list_files`` of an object's URL lists the object)."""
    files: dict[str, int] = {}
    folders: set[str] = set()
    if not is_url(folder):
        with (
            contextlib.suppress(FileNotFoundError, NotADirectoryError),
            os.scandir(local(folder)) as entries,
        ):
            for entry in entries:
                with contextlib.suppress(OSError):
                    if entry.is_file():
                        files[entry.name] = entry.stat().st_size
                    elif entry.is_dir():
                        folders.add(entry.name)
        return files, folders
    url = os.fspath(folder)
    fs, inner = filesystem(url)
    inner = inner.rstrip("/")
    with _naming(url, "list"):
        fs.invalidate_cache(inner)
        try:
            entries = _call(fs, "ls", inner, detail=True)
        except (FileNotFoundError, NotADirectoryError):
            return files, folders
    prefix = inner + "/"
    for entry in entries:
        name = entry["name"].rstrip("/")
        rel = name[len(prefix) :] if name.startswith(prefix) else ""
        if not rel or "/" in rel:  # the object itself, when ``folder`` names one
            continue
        if entry.get("type") == "file":
            files[rel] = int(entry.get("size") or 0)
        else:
            folders.add(rel)
    return files, folders
