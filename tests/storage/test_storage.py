"""The storage seam (``storage``): the same operations, with the same results, on a
local folder, fsspec's ``memory://`` and the real S3 and GCS servers of ``buckets.py``."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tfrecord_tools import storage
from tfrecord_tools.storage import StorageError


def _roundtrip(base: str, tmp_path) -> None:
    storage.write_atomic(storage.join(base, "a", "x.txt"), "hello")
    storage.write_atomic(storage.join(base, "a", "sub", "y.bin"), b"\0" * 10)
    assert storage.read_text(storage.join(base, "a", "x.txt")) == "hello"
    assert storage.size(storage.join(base, "a", "sub", "y.bin")) == 10
    assert storage.is_file(storage.join(base, "a", "x.txt"))
    assert storage.is_dir(storage.join(base, "a"))
    assert storage.list_files(storage.join(base, "a")) == {"x.txt": 5}
    assert list(storage.walk_files(storage.join(base, "a"))) == [
        ("sub/y.bin", 10),
        ("x.txt", 5),
    ]
    assert storage.glob(storage.join(base, "a", "*.txt")) == [storage.join(base, "a", "x.txt")]
    assert storage.read_bytes(storage.join(base, "a", "x.txt"), 1, 3) == b"el"
    storage.write_atomic(storage.join(base, "empty"), b"")
    assert storage.read_bytes(storage.join(base, "empty")) == b""
    with pytest.raises(FileNotFoundError):
        storage.size(storage.join(base, "nope"))
    with pytest.raises(FileNotFoundError):
        storage.read_bytes(storage.join(base, "nope"))
    local = tmp_path / "f"
    local.write_bytes(b"123")
    storage.put_file(local, storage.join(base, "p"))
    with storage.open_read(storage.join(base, "p")) as f:
        assert f.read() == b"123"
    # a write that fails leaves nothing under the final name
    with pytest.raises(RuntimeError), storage.writing(storage.join(base, "w")) as f:
        f.write(b"partial")
        raise RuntimeError
    assert not storage.exists(storage.join(base, "w"))
    with storage.writing(storage.join(base, "w")) as f:
        f.write(b"whole")
    assert storage.read_bytes(storage.join(base, "w")) == b"whole"
    storage.delete(storage.join(base, "p"))
    assert not storage.exists(storage.join(base, "p"))
    storage.delete(storage.join(base, "p"))  # not there: nothing to do
    storage.delete_tree(storage.join(base, "a"))
    assert storage.list_files(storage.join(base, "a")) == {}


def test_on_the_real_servers(bucket, tmp_path):
    _roundtrip(bucket, tmp_path)


def test_in_memory(memory_bucket, tmp_path):
    _roundtrip(memory_bucket, tmp_path)


def test_on_local_disk(tmp_path):
    _roundtrip(str(tmp_path / "local"), tmp_path)


def test_url_rules():
    assert storage.is_url("s3://b/x") and storage.is_url("memory://x")
    assert not storage.is_url("file:///tmp/x") and not storage.is_url("/tmp/x")
    assert storage.join("gs://b/", "x", "y") == "gs://b/x/y"
    assert storage.basename("gs://b/x/y") == "y" and storage.dirname("gs://b/x/y") == "gs://b/x"
    assert storage.redact("s3://KEY:SECRET@b/x?X-Amz-Signature=abc") == "s3://b/x"
    assert storage.extra_for("gs://b") == "gcs" and storage.extra_for("s3://b") == "s3"
    assert storage.extra_for("abfs://c/x") == "cloud"


def test_a_scheme_nobody_knows_is_an_error_naming_it():
    with pytest.raises(StorageError, match="nosuch://b/x"):
        storage.size("nosuch://b/x")


def test_without_fsspec_a_url_names_the_extra_to_install(tmp_path):
    """A URL whose library is missing: an error naming the extra, not an ImportError."""
    code = (
        "import sys; sys.modules['fsspec'] = None; sys.modules['fsspec.core'] = None\n"
        "from tfrecord_tools import storage\n"
        "try:\n    storage.size('gs://b/x')\n"
        "except storage.StorageError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "gs://b/x" in out.stdout and "tfrecord-tools[gcs]" in out.stdout, out
