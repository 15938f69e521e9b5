"""Reading datasets from bucket URLs (``make_dataset("s3://b/ds")``, the raw twin from a
bucket) against real local servers: moto's S3 and the GCS emulator (``buckets.py``), and
fsspec's ``memory://``. Each dataset is converted locally, uploaded object by object, and
read back: every image and label must equal the local read's, in the same order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tfrecord_tools import convert_image_folder, storage
from tfrecord_tools.errors import TFRecordToolsError
from tfrecord_tools.format.naming import MANIFEST
from tfrecord_tools.storage.streams import open_stream

tf = pytest.importorskip("tensorflow")
from tfrecord_tools.read import records, stream  # noqa: E402
from tfrecord_tools.read.pipeline import make_dataset, make_raw_dataset  # noqa: E402


@pytest.fixture(scope="module")
def local_ds(clean_folder, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bucket-ds")
    # 5 shards: none ends in a carriage return, which the GCS emulator drops (see upload)
    convert_image_folder(clean_folder, out, shards=5, workers=1, quiet=True)
    return out


@pytest.fixture(scope="module")
def gzip_ds(clean_folder, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bucket-gz")
    convert_image_folder(clean_folder, out, shards=2, workers=1, compression="gzip", quiet=True)
    return out


def upload(folder: Path, url: str) -> str:
    """Every file under ``folder`` put at ``url`` (one object each). gcp-storage-emulator
    (2025) drops the last byte of a multipart upload that ends in ``\r`` (its email parser
    takes it for a line end): such a file would read back damaged, so none may be sent."""
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            if url.startswith("gs://") and path.read_bytes().endswith(b"\r"):
                pytest.fail(f"{path} ends in \\r, which the GCS emulator would drop")
            storage.put_file(path, storage.join(url, path.relative_to(folder).as_posix()))
    return url


def pairs(ds) -> list[tuple[bytes, int]]:
    return [(np.asarray(x).tobytes() + bytes(x.shape), int(y)) for x, y in ds.as_numpy_iterator()]


_local: dict = {}


def local_pairs(path: Path, raw: bool = False, **kw) -> list[tuple[bytes, int]]:
    """``pairs`` of the local read, made once per module (building a pipeline costs ~0.3 s)."""
    key = (str(path), raw, tuple(sorted(kw.items())))
    if key not in _local:
        ds = (make_raw_dataset if raw else make_dataset)(path, **kw)
        _local[key] = pairs(ds.unbatch() if kw.get("batch_size") else ds)
    return _local[key]


def test_tf_opens_gs_only_without_an_emulator(monkeypatch):
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    assert stream.tf_opens("/data/x") and stream.tf_opens("file:///data/x")
    assert stream.tf_opens("gs://b/x")
    assert not stream.tf_opens("s3://b/x") and not stream.tf_opens("memory://b/x")
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:1")
    assert not stream.tf_opens("gs://b/x")  # TensorFlow's GCS would ask Google, not it


def test_bucket_read_equals_local_read(local_ds, bucket):
    url = upload(local_ds, f"{bucket}/photos-tfr")
    remote_ds = make_dataset(url)
    assert int(remote_ds.cardinality()) == len(local_pairs(local_ds))
    assert pairs(remote_ds) == local_pairs(local_ds)  # every pixel and label, in order
    # batched and resized: the batch-wise parse + decode path
    kw = {"image_size": 16, "batch_size": 5}
    assert pairs(make_dataset(url, **kw).unbatch()) == local_pairs(local_ds, **kw)


def test_memory_url_gzip_and_shuffle(gzip_ds, memory_bucket):
    url = upload(gzip_ds, f"{memory_bucket}/gz")
    assert pairs(make_dataset(url)) == local_pairs(gzip_ds)
    kw = {"shuffle": True, "seed": 3, "shuffle_buffer": 4}
    ds = make_dataset(url, **kw)
    got = pairs(ds)
    assert sorted(got) == sorted(local_pairs(gzip_ds))
    assert got == local_pairs(gzip_ds, **kw)
    assert pairs(ds) != got  # a new order every epoch


def test_global_shuffle_from_a_bucket(local_ds, memory_bucket):
    url = upload(local_ds, f"{memory_bucket}/g")
    kw = {"shuffle": "global", "seed": 1, "shuffle_buffer": 32}
    got = pairs(make_dataset(url, **kw))
    assert got == local_pairs(local_ds, **kw)
    assert sorted(got) == sorted(local_pairs(local_ds))


def test_shard_glob_and_file_list(local_ds, memory_bucket):
    url = upload(local_ds, f"{memory_bucket}/third")
    storage.delete(storage.join(url, MANIFEST))
    storage.delete(storage.join(url, "labels.txt"))
    want = sorted(local_pairs(local_ds))
    assert sorted(pairs(make_dataset(f"{url}/*.tfrecord-*"))) == want
    files = sorted(storage.glob(f"{url}/*-of-*"))
    files = [f for f in files if not f.endswith(".idx")]
    assert sorted(pairs(make_dataset(files))) == want
    assert sorted(pairs(make_dataset(url))) == want  # a folder of shards


def test_host_sharding_from_a_bucket(local_ds, s3_server):
    url = upload(local_ds, f"{s3_server.new_bucket()}/h")
    parts = [pairs(make_dataset(url, num_workers=2, worker_index=i)) for i in range(2)]
    local = [local_pairs(local_ds, num_workers=2, worker_index=i) for i in range(2)]
    assert parts == local
    assert sorted(parts[0] + parts[1]) == sorted(local_pairs(local_ds))
    assert parts[0] and parts[1]


def test_raw_twin_from_a_bucket(clean_folder, bucket):
    url = upload(clean_folder, f"{bucket}/photos")
    for kw in ({}, {"image_size": 16, "batch_size": 4}):
        got = make_raw_dataset(url, **kw)
        assert pairs(got.unbatch() if kw else got) == local_pairs(clean_folder, raw=True, **kw)


def _damage(local_ds: Path, url: str) -> tuple[str, int, int]:
    """Upload the dataset with one byte of a record of the first shard flipped; the shard's
    URL, the record's index and its byte offset."""
    upload(local_ds, url)
    shard = sorted(p for p in local_ds.iterdir() if p.name.endswith("-of-00005"))[0]
    offset, length = (int(v) for v in Path(f"{shard}.idx").read_text().splitlines()[2].split())
    data = bytearray(shard.read_bytes())
    data[offset + length // 2] ^= 0xFF
    target = storage.join(url, shard.name)
    storage.write_atomic(target, bytes(data))
    return target, 2, offset


@pytest.mark.parametrize("indexed", [True, False], ids=["pieces", "streamed"])
def test_damaged_object_names_url_record_and_offset(local_ds, bucket, indexed):
    target, index, offset = _damage(local_ds, f"{bucket}/bad")
    if not indexed:  # no .idx: the shard is streamed (from_generator), not read in pieces
        storage.delete(f"{target}.idx")
    with pytest.raises(tf.errors.InvalidArgumentError) as e:
        pairs(make_dataset(f"{bucket}/bad"))
    message = str(e.value)
    assert target in message and f"record {index} at byte {offset}" in message
    assert "data CRC mismatch" in message


def test_missing_shard_object_is_named(local_ds, memory_bucket):
    url = upload(local_ds, f"{memory_bucket}/gone")
    shard = storage.join(url, next(n for n in storage.list_files(url) if n.endswith("-of-00005")))
    storage.delete(shard)
    # found from the listing before anything is read
    with pytest.raises(
        TFRecordToolsError, match=f"{storage.basename(shard)}: listed in dataset.json, not there"
    ):
        pairs(make_dataset(url))


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("empty", "not a dataset: no dataset.json"),
        ("unfinished", "unfinished conversion"),
        ("bad manifest", "dataset.json: not valid JSON"),
        ("no split", "no split 'nope'"),
    ],
)
def test_not_a_dataset_url(local_ds, memory_bucket, setup, message):
    url = f"{memory_bucket}/x"
    if setup == "empty":
        storage.write_atomic(f"{url}/notes.txt", "hello")
    else:
        upload(local_ds, url)
    if setup == "unfinished":
        storage.delete(f"{url}/{MANIFEST}")
    elif setup == "bad manifest":
        storage.write_atomic(f"{url}/{MANIFEST}", "{")
    with pytest.raises(TFRecordToolsError, match=message) as e:
        make_dataset(url, split="nope" if setup == "no split" else "train")
    if setup == "no split":
        assert url in str(e.value)


def test_missing_bucket_url(s3_server):
    url = f"{s3_server.new_bucket()}/nothing/here"
    with pytest.raises(TFRecordToolsError, match="not a dataset") as e:
        make_dataset(url)
    assert url in str(e.value)


def test_framing_reader_checks_every_crc(local_ds, memory_bucket):
    """The Python reader of remote shards yields TensorFlow's records, byte for byte."""
    url = upload(local_ds, f"{memory_bucket}/f")
    shard = sorted(p for p in local_ds.iterdir() if p.name.endswith("-of-00005"))[1]
    want = [r.numpy() for r in tf.data.TFRecordDataset(str(shard))]
    assert list(stream.shard_records(storage.join(url, shard.name))) == want
    assert list(stream.shard_records(str(shard))) == want
    size = shard.stat().st_size
    for block in (7, 1000, size):  # ranged reads of any size, the next one asked ahead
        with open_stream(storage.join(url, shard.name), size=size, block_size=block) as source:
            assert [d for _, _, d in stream.frames(source, "x", size=size)] == want
    chunks = list(records.shard_chunks(storage.join(url, shard.name).encode(), b"none", -1))
    assert [r for c in chunks for r in c] == want


def test_service_over_fsspec_urls_is_refused(local_ds, memory_bucket):
    url = upload(local_ds, f"{memory_bucket}/svc")
    with pytest.raises(TFRecordToolsError, match="service= needs shards TensorFlow opens"):
        make_dataset(url, service="grpc://localhost:1")


def test_plan_pieces_cuts_files_by_bytes():
    from tfrecord_tools.read.shards import plan_pieces

    indexes = [[(0, 40), (40, 40), (80, 200), (280, 10)], [], [(0, 5)]]
    pieces, splits = plan_pieces(["a", "b", "c"], indexes, 100)
    assert splits == [0, 3, 3, 4]
    assert pieces.files == ["a", "a", "a", "c"]
    assert pieces.offsets == [0, 80, 280, 0]
    assert pieces.counts == [2, 1, 1, 1]
    assert pieces.sizes == [80, 200, 10, 5]
    assert pieces.firsts == [0, 2, 3, 0]
