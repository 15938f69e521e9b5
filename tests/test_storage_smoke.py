import pytest
from tests.buckets import s3_server, gcs_server, bucket_server, bucket, memory_bucket  # noqa
from tfrecord_tools.format import storage

def run(base, tmp_path):
    storage.write_atomic(storage.join(base, "a", "x.txt"), "hello")
    storage.write_atomic(storage.join(base, "a", "sub", "y.bin"), b"\0" * 10)
    assert storage.read_text(storage.join(base, "a", "x.txt")) == "hello"
    assert storage.size(storage.join(base, "a", "sub", "y.bin")) == 10
    assert storage.list_files(storage.join(base, "a")) == {"x.txt": 5}
    assert list(storage.walk_files(storage.join(base, "a"))) == [("sub/y.bin", 10), ("x.txt", 5)]
    assert storage.read_bytes(storage.join(base, "a", "x.txt"), 1, 3) == b"el"
    with pytest.raises(FileNotFoundError):
        storage.size(storage.join(base, "nope"))
    local = tmp_path / "f"; local.write_bytes(b"123")
    storage.put_file(local, storage.join(base, "p"))
    with storage.open_read(storage.join(base, "p")) as f:
        assert f.read() == b"123"
    with pytest.raises(RuntimeError):
        with storage.writing(storage.join(base, "w")) as f:
            f.write(b"partial")
            raise RuntimeError
    assert not storage.exists(storage.join(base, "w"))
    assert storage.delete(storage.join(base, "p"))
    storage.delete_tree(storage.join(base, "a"))
    assert storage.list_files(storage.join(base, "a")) == {}

def test_bucket(bucket, tmp_path):
    run(bucket, tmp_path)

def test_memory(memory_bucket, tmp_path):
    run(memory_bucket, tmp_path)

def test_local(tmp_path):
    run(str(tmp_path / "loc"), tmp_path)
