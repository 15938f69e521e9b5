"""Fetching MNIST: the four ``.gz`` files from a mirror into a folder, checked by MD5.

Data flow: **download_mnist** (optional, ``convert mnist --download``) -> SRC folder ->
``mnist_idx`` reads the IDX files. Offline, it fails with a message saying where to put the
files by hand. Progress goes to the ``tfrecord_tools`` logger (the CLI shows it on stderr).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Sequence
from http.client import HTTPException
from pathlib import Path
from typing import BinaryIO

from ...errors import DownloadError

__all__ = ["DEFAULT_MIRRORS", "MNIST_MD5", "download_mnist"]

log = logging.getLogger(__name__)
_CHUNK = 1 << 20


DEFAULT_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)

#: Well-known MD5 digests of the four MNIST files. MD5 guards against corrupt or wrong
#: downloads, not against a malicious mirror. Tests may replace entries.
MNIST_MD5: dict[str, str] = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1ac5e8af6e",
}

# The real files are at most ~10 MB; a mirror sending more is broken.
_MAX_DOWNLOAD_BYTES = 64 << 20


class _NetworkError(Exception):
    """Internal: the transfer failed (as opposed to writing or verifying the file)."""


def download_mnist(
    dest_dir: str | os.PathLike[str], *, base_url: str | None = None, timeout: float = 30.0
) -> dict[str, Path]:
    """Fetch the four MNIST ``.gz`` files into ``dest_dir``, verified by MD5.

    Files already present with the right digest are kept. ``base_url`` replaces the
    default mirrors (any URL urllib opens: ``https://``, ``http://``, ``file://``).
    Returns ``{file name: path}``; any failure is a :class:`DownloadError`.
    """
    folder = Path(dest_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DownloadError(f"{folder}: cannot create the download folder: {e}") from e
    mirrors = (base_url,) if base_url is not None else DEFAULT_MIRRORS
    result: dict[str, Path] = {}
    for name, md5 in MNIST_MD5.items():
        target = folder / name
        if _file_md5(target) == md5:
            log.info("%s already present, checksum OK", target)
        else:
            _fetch_from_mirrors(name, mirrors, target, md5, timeout)
        result[name] = target
    return result


def _file_md5(path: Path) -> str | None:
    """MD5 of an existing file, or None if it cannot be read."""
    try:
        with open(path, "rb") as f:
            return hashlib.file_digest(f, _new_md5).hexdigest()
    except OSError:
        return None


def _new_md5() -> hashlib._Hash:
    return hashlib.md5(usedforsecurity=False)


def _fetch_from_mirrors(
    name: str, mirrors: Sequence[str], target: Path, md5: str, timeout: float
) -> None:
    """Try each mirror in turn; raise one DownloadError listing every failure."""
    failures: list[DownloadError] = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + name
        try:
            _fetch_verified(url, target, md5, timeout)
            return
        except DownloadError as e:
            log.info("%s", e)
            failures.append(e)
    if len(failures) == 1:
        raise failures[0]
    raise DownloadError(
        f"could not download {name} from any mirror:\n" + "\n".join(f"  - {e}" for e in failures)
    )


def _fetch_verified(url: str, target: Path, md5: str, timeout: float) -> None:
    """Download ``url`` to a temp file beside ``target``, check it, rename it in place."""
    log.info("downloading %s", url)
    tmp: Path | None = None
    try:
        fd, tmp_name = tempfile.mkstemp(
            dir=target.parent, prefix=f".{target.name}.", suffix=".part"
        )
        tmp = Path(tmp_name)
        with os.fdopen(fd, "wb") as out:
            found = _stream(url, out, timeout)
            out.flush()
            os.fsync(out.fileno())
        if found != md5:
            raise DownloadError(
                f"checksum mismatch for {target.name} downloaded from {url}: expected md5 "
                f"{md5}, found {found}; the download was removed"
            )
        os.replace(tmp, target)
    except _NetworkError as e:
        raise DownloadError(
            f"could not download {target.name} from {url}: {e}; are you offline? "
            f"place the four files in {target.parent} yourself"
        ) from e.__cause__
    except OSError as e:
        raise DownloadError(f"{target}: cannot write the download: {e}") from e
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)


def _stream(url: str, out: BinaryIO, timeout: float) -> str:
    """Copy ``url`` into ``out`` in chunks; return the MD5 of what was written.

    Only the network side raises :class:`_NetworkError`; a failing write stays an OSError.
    """
    digest = _new_md5()
    total = 0
    with _open_url(url, timeout) as response:
        while chunk := _read_chunk(response):
            total += len(chunk)
            if total > _MAX_DOWNLOAD_BYTES:
                raise _NetworkError(f"more than {_MAX_DOWNLOAD_BYTES} bytes sent, not MNIST")
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def _open_url(url: str, timeout: float) -> BinaryIO:
    try:
        # A fresh opener honours the proxy settings of the environment at call time.
        return urllib.request.build_opener().open(url, timeout=timeout)
    except urllib.error.HTTPError as e:
        e.close()
        raise _NetworkError(f"HTTP {e.code} {e.reason}") from e
    except urllib.error.URLError as e:
        raise _NetworkError(str(e.reason)) from e
    except (HTTPException, OSError, ValueError) as e:
        raise _NetworkError(str(e) or type(e).__name__) from e


def _read_chunk(response: BinaryIO) -> bytes:
    try:
        return response.read(_CHUNK)
    except (HTTPException, OSError) as e:
        raise _NetworkError(str(e) or type(e).__name__) from e
