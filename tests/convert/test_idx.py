"""Tests for the IDX (MNIST) source stage: tiny IDX files (the writer in helpers.py), plain and
gzip, and a local HTTP server on 127.0.0.1 for the download. Nothing touches the internet."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import socket
import threading
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tfrecord_tools.convert.sources import mnist_download as download
from tfrecord_tools.convert.sources import mnist_idx as idx
from tfrecord_tools.errors import DownloadError, IDXFormatError

from ..helpers import idx_bytes, idx_header, write_file, write_idx, write_mnist

COUNT, ROWS, COLS = 5, 4, 3
PIXELS = np.arange(COUNT * ROWS * COLS, dtype=np.uint8).reshape(COUNT, ROWS, COLS)
LABELS = np.array([3, 0, 9, 1, 7], dtype=np.uint8)
TINY_MNIST = {"train": (PIXELS, LABELS), "test": (PIXELS, LABELS)}


# --------------------------------------------------------------------------- round trip


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
@pytest.mark.parametrize("mmap", [True, False], ids=["mmap", "read"])
def test_images_round_trip(tmp_path: Path, gz: bool, mmap: bool) -> None:
    path = write_idx(tmp_path / "imgs", PIXELS, gz=gz)
    images = idx.read_idx_images(path, mmap=mmap)
    assert (images.path, images.count, images.rows, images.cols) == (str(path), 5, 4, 3)
    assert images.pixels.dtype == np.uint8
    np.testing.assert_array_equal(images.pixels, PIXELS)
    assert not images.pixels.flags.writeable
    assert isinstance(images.pixels, np.memmap) == (mmap and not gz)


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
def test_labels_round_trip(tmp_path: Path, gz: bool) -> None:
    path = write_idx(tmp_path / "labels", LABELS, gz=gz)
    labels = idx.read_idx_labels(path)
    assert labels.dtype == np.uint8
    np.testing.assert_array_equal(labels, LABELS)


def test_gzip_detected_from_content_not_name(tmp_path: Path) -> None:
    path = tmp_path / "imgs-without-suffix"
    path.write_bytes(gzip.compress(idx_bytes(PIXELS)))
    np.testing.assert_array_equal(idx.read_idx_images(path).pixels, PIXELS)


def test_zero_images(tmp_path: Path) -> None:
    path = write_file(tmp_path / "imgs", idx_header((0, 28, 28)))
    assert idx.read_idx_images(path).pixels.shape == (0, 28, 28)


# --------------------------------------------------------------------------- bad files

IMAGES_OK = idx_bytes(PIXELS)
BAD_FILES = [
    # (id, reader, file content, fragments the message must hold)
    ("labels-as-images", "images", idx_bytes(LABELS),
     ["bad magic number 2049, expected 2051", "IDX3 image file", "looks like an IDX1 label"]),
    ("images-as-labels", "labels", IMAGES_OK,
     ["bad magic number 2051, expected 2049", "IDX1 label file"]),
    ("float-type", "images", idx_header((5, 4, 3), type_code=0x0D) + bytes(60 * 4),
     ["type code 0x0d (float32)", "expected 0x08"]),
    ("not-idx", "images", b"\x89PNG\r\n\x1a\n" + bytes(64),
     ["bad magic number 0x89504e47", "expected 2051", "two zero bytes"]),
    ("empty", "images", b"", ["expected at least 4 bytes, found 0"]),
    ("header-cut", "images", idx_header((5, 4, 3))[:9], ["header truncated", "expected 12"]),
    ("too-short", "images", IMAGES_OK[:-1],
     ["5 images of 4x3 = 60 payload bytes, found 59", "too short"]),
    ("trailing", "images", IMAGES_OK + b"\x00", ["60 payload bytes", "trailing"]),
    ("labels-short", "labels", idx_bytes(LABELS)[:-2], ["5 labels = 5 payload bytes, found 3"]),
    ("huge-image", "images", idx_header((1, 2**16, 2**16)),
     ["65536x65536 pixels", "expected at most 10000x10000"]),
    ("empty-image", "images", idx_header((1, 0, 28)), ["empty images of 0x28"]),
]  # fmt: skip


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
@pytest.mark.parametrize(
    ("reader", "content", "fragments"),
    [case[1:] for case in BAD_FILES],
    ids=[case[0] for case in BAD_FILES],
)
def test_bad_file_message(
    tmp_path: Path, gz: bool, reader: str, content: bytes, fragments: list[str]
) -> None:
    path = write_file(tmp_path / "train-images-idx3-ubyte", content, gz=gz)
    read = idx.read_idx_images if reader == "images" else idx.read_idx_labels
    with pytest.raises(IDXFormatError) as info:
        read(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    for fragment in fragments:
        assert fragment in message


ABSURD_HEADERS = [
    idx_header((2**31, 2**16, 2**16)),  # 2**63 bytes, image size over the limit
    idx_header((2**31, 10_000, 10_000)),  # each image allowed, total ~200 PB
    idx_header((2**32 - 1, 28, 28)),  # ~3 TB of plausible 28x28 images
]


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
@pytest.mark.parametrize("header", ABSURD_HEADERS, ids=["2^16-squared", "10k-squared", "4G-28"])
def test_absurd_header_rejected_without_allocating(tmp_path: Path, gz: bool, header: bytes) -> None:
    path = write_file(tmp_path / "imgs", header + bytes(100), gz=gz)
    tracemalloc.start()
    try:
        with pytest.raises(IDXFormatError) as info:
            idx.read_idx_images(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 << 20
    message = str(info.value)
    assert message.startswith(f"{path}: header declares ")
    assert any(
        words in message
        for words in ("expected at most 10000x10000", "(file too short)", "cannot decompress")
    )


def test_gzip_trailing_data_not_read_to_the_end(tmp_path: Path) -> None:
    """A gzip stream holding far more than the header says stops one byte past it."""
    path = write_file(tmp_path / "imgs", IMAGES_OK + bytes(16 << 20), gz=True)
    tracemalloc.start()
    try:
        with pytest.raises(IDXFormatError, match=r"more than 60 \(trailing data\)"):
            idx.read_idx_images(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20


@pytest.mark.parametrize(
    ("mangle", "fragment"),
    [
        (lambda gz: gz[:-6], "corrupt gzip data"),  # stream cut before its end marker
        (lambda gz: gz[:10] + b"\xff" * 40, "corrupt gzip data"),  # garbage deflate data
    ],
    ids=["cut", "garbage"],
)
def test_corrupt_gzip(tmp_path: Path, mangle, fragment: str) -> None:
    path = tmp_path / "imgs.gz"
    path.write_bytes(mangle(gzip.compress(IMAGES_OK)))
    with pytest.raises(IDXFormatError, match=fragment) as info:
        idx.read_idx_images(path)
    assert str(path) in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope-idx3-ubyte"
    with pytest.raises(IDXFormatError, match="cannot read: No such file") as info:
        idx.read_idx_images(path)
    assert str(path) in str(info.value)


# --------------------------------------------------------------------------- splits


def test_load_split(tmp_path: Path) -> None:
    images = write_idx(tmp_path / "i", PIXELS)
    labels = write_idx(tmp_path / "l", LABELS, gz=True)
    pixels, got = idx.load_mnist_split(images, labels)
    np.testing.assert_array_equal(pixels, PIXELS)
    np.testing.assert_array_equal(got, LABELS)


@pytest.mark.parametrize(
    ("labels", "fragments"),
    [
        (LABELS[:4], ["expected 5 labels", "one per image in", "found 4"]),
        (np.array([1, 2, 10, 3, 255], np.uint8), ["label 10 at index 2", "expected 0..9", "2 bad"]),
    ],
    ids=["count-mismatch", "label-10"],
)
def test_load_split_errors(tmp_path: Path, labels: np.ndarray, fragments: list[str]) -> None:
    images_path = write_idx(tmp_path / "train-images-idx3-ubyte", PIXELS)
    labels_path = write_idx(tmp_path / "train-labels-idx1-ubyte", labels)
    with pytest.raises(IDXFormatError) as info:
        idx.load_mnist_split(images_path, labels_path)
    message = str(info.value)
    assert message.startswith(f"{labels_path}: ")
    for fragment in fragments:
        assert fragment in message


# --------------------------------------------------------------------------- finding files


@pytest.mark.parametrize(
    ("gz", "dotted", "suffix"),
    [(False, False, ""), (True, False, ".gz"), (False, True, ""), (True, True, ".gz")],
    ids=["plain", "gz", "dotted", "dotted-gz"],
)
def test_find_mnist_files(tmp_path: Path, gz: bool, dotted: bool, suffix: str) -> None:
    write_mnist(tmp_path, TINY_MNIST, gz=gz, dotted=dotted)
    found = idx.find_mnist_files(tmp_path)
    sep = "." if dotted else "-"
    assert found == {
        "train": (
            tmp_path / f"train-images{sep}idx3-ubyte{suffix}",
            tmp_path / f"train-labels{sep}idx1-ubyte{suffix}",
        ),
        "test": (
            tmp_path / f"t10k-images{sep}idx3-ubyte{suffix}",
            tmp_path / f"t10k-labels{sep}idx1-ubyte{suffix}",
        ),
    }
    for images, labels in found.values():
        idx.load_mnist_split(images, labels)


def test_find_prefers_plain_over_gz(tmp_path: Path) -> None:
    write_mnist(tmp_path, TINY_MNIST, gz=True)
    write_mnist(tmp_path, TINY_MNIST, gz=False)
    assert all(p.suffix != ".gz" for pair in idx.find_mnist_files(tmp_path).values() for p in pair)


def test_find_missing_lists_missing_and_present(tmp_path: Path) -> None:
    write_mnist(tmp_path, TINY_MNIST)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    (tmp_path / "train-images-idx3-ubyte").unlink()
    (tmp_path / "README").write_text("hi")
    with pytest.raises(IDXFormatError) as info:
        idx.find_mnist_files(tmp_path)
    message = str(info.value)
    assert message.startswith(f"{tmp_path}: missing MNIST file(s) ")
    assert "train-images-idx3-ubyte, t10k-labels-idx1-ubyte" in message
    assert "holds: README, t10k-images-idx3-ubyte, train-labels-idx1-ubyte." in message
    assert "--download" in message


@pytest.mark.parametrize("make", ["nothing", "file"])
def test_find_not_a_folder(tmp_path: Path, make: str) -> None:
    target = tmp_path / "mnist"
    if make == "file":
        target.write_text("x")
    with pytest.raises(IDXFormatError, match=f"expected a folder .* found {make}|found a {make}"):
        idx.find_mnist_files(target)


# --------------------------------------------------------------------------- download


class _Server:
    """A static file server on 127.0.0.1 that records the paths it was asked for."""

    def __init__(self, root: Path) -> None:
        self.requests: list[str] = []
        outer = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests.append(self.path)
                super().do_GET()

            def log_message(self, format: str, *args: object) -> None:
                pass

        handler = functools.partial(Handler, directory=str(root))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/mnist/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture
def mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[_Server]:
    """Tiny fake MNIST .gz files served locally, with MNIST_MD5 pointing at them."""
    for var in ("no_proxy", "NO_PROXY"):
        monkeypatch.setenv(var, "127.0.0.1,localhost")
    root = tmp_path / "www"
    (root / "mnist").mkdir(parents=True)
    write_mnist(root / "mnist", TINY_MNIST, gz=True)
    for name in download.MNIST_MD5:
        digest = hashlib.md5((root / "mnist" / name).read_bytes()).hexdigest()
        monkeypatch.setitem(download.MNIST_MD5, name, digest)
    server = _Server(root)
    yield server
    server.stop()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_download_success(tmp_path: Path, mirror: _Server) -> None:
    dest = tmp_path / "data" / "mnist"
    got = download.download_mnist(dest, base_url=mirror.url, timeout=5)
    assert got == {name: dest / name for name in download.MNIST_MD5}
    assert sorted(p.name for p in dest.iterdir()) == sorted(download.MNIST_MD5)  # no temp files
    images, labels = idx.find_mnist_files(dest)["train"]
    pixels, got_labels = idx.load_mnist_split(images, labels)
    np.testing.assert_array_equal(pixels, PIXELS)
    np.testing.assert_array_equal(got_labels, LABELS)


def test_download_skips_present_files(tmp_path: Path, mirror: _Server) -> None:
    download.download_mnist(tmp_path, base_url=mirror.url, timeout=5)
    assert len(mirror.requests) == 4
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(b"damaged")
    download.download_mnist(tmp_path, base_url=mirror.url, timeout=5)
    assert mirror.requests[4:] == ["/mnist/t10k-labels-idx1-ubyte.gz"]
    idx.read_idx_labels(tmp_path / "t10k-labels-idx1-ubyte.gz")


def test_download_checksum_mismatch(
    tmp_path: Path, mirror: _Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(download.MNIST_MD5, "train-labels-idx1-ubyte.gz", "0" * 32)
    dest = tmp_path / "dest"
    with pytest.raises(DownloadError) as info:
        download.download_mnist(dest, base_url=mirror.url, timeout=5)
    message = str(info.value)
    assert "checksum mismatch for train-labels-idx1-ubyte.gz" in message
    assert f"expected md5 {'0' * 32}, found " in message
    assert "removed" in message
    assert [p.name for p in dest.iterdir()] == ["train-images-idx3-ubyte.gz"]


def test_download_connection_refused(tmp_path: Path, mirror: _Server) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/mnist"
    dest = tmp_path / "dest"
    with pytest.raises(DownloadError) as info:
        download.download_mnist(dest, base_url=url, timeout=5)
    message = str(info.value)
    assert message.startswith(f"could not download train-images-idx3-ubyte.gz from {url}/")
    assert "Connection refused" in message
    assert f"are you offline? place the four files in {dest} yourself" in message
    assert list(dest.iterdir()) == []


def test_download_http_404(tmp_path: Path, mirror: _Server) -> None:
    with pytest.raises(DownloadError, match="HTTP 404") as info:
        download.download_mnist(tmp_path / "d", base_url=mirror.url + "missing/", timeout=5)
    assert "are you offline?" in str(info.value)


def test_download_tries_every_mirror(
    tmp_path: Path, mirror: _Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = f"http://127.0.0.1:{_closed_port()}/"
    monkeypatch.setattr(download, "DEFAULT_MIRRORS", (dead, mirror.url))
    download.download_mnist(tmp_path, timeout=5)
    assert len(mirror.requests) == 4
    monkeypatch.setattr(download, "DEFAULT_MIRRORS", (dead, mirror.url + "missing/"))
    (tmp_path / "train-images-idx3-ubyte.gz").unlink()
    with pytest.raises(DownloadError, match="from any mirror:\n  - could not download") as info:
        download.download_mnist(tmp_path, timeout=5)
    assert "HTTP 404" in str(info.value)


def test_download_file_url(tmp_path: Path, mirror: _Server) -> None:
    source = tmp_path / "www" / "mnist"
    dest = tmp_path / "dest"
    download.download_mnist(dest, base_url=source.as_uri())
    assert sorted(p.name for p in dest.iterdir()) == sorted(download.MNIST_MD5)
