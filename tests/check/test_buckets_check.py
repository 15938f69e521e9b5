"""The check tools (inspect, count, verify, repair, index) on bucket URLs, against real local
servers (moto's S3, the GCS emulator) and fsspec's ``memory://``.

Datasets are written locally (ShardWriter + build_manifest), then uploaded object by object
with ``storage.put_file``, manifest last. Damage is made by flipping a byte of a local copy
and uploading it over the object.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tfrecord_tools import storage
from tfrecord_tools.check.count import count_records
from tfrecord_tools.check.index import index_shards
from tfrecord_tools.check.inspect import inspect_dataset
from tfrecord_tools.check.repair import repair
from tfrecord_tools.check.verify import verify
from tfrecord_tools.cli import main
from tfrecord_tools.dataset import resolve as locate
from tfrecord_tools.errors import TFRecordToolsError
from tfrecord_tools.format.example import encode_example
from tfrecord_tools.format.framing import HEADER_SIZE, OVERHEAD
from tfrecord_tools.format.manifest import build_manifest, write_labels, write_manifest
from tfrecord_tools.format.naming import MANIFEST, shard_filename
from tfrecord_tools.format.writer import ShardWriter

ROOT = Path(__file__).resolve().parents[2]
CLASSES = ["cat", "dog"]


# --------------------------------------------------------------------------- helpers


def make_dataset(folder: Path, *, shards: int = 2, records: int = 12, size: int = 300) -> Path:
    """A small dataset of ours: ``shards`` shards of ``records`` Examples (raw 'pixels' of
    ``size`` bytes), their ``.idx`` files, labels.txt and dataset.json."""
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for s in range(shards):
        name = shard_filename("toy", "train", s, shards)
        with ShardWriter(folder / name) as writer:
            for i in range(records):
                label = (s + i) % 2
                writer.write(
                    encode_example(
                        encoded=bytes([(s * 31 + i) % 256]) * size,
                        image_format="raw",
                        height=size // 3 // 10,
                        width=10,
                        channels=3,
                        label=label,
                        text=CLASSES[label],
                        filename=f"{CLASSES[label]}/{s}-{i}.raw",
                    )
                )
            entries.append(writer.commit())
    manifest = build_manifest(
        name="toy",
        source={"kind": "synthetic", "path": "-"},
        skipped=[],
        classes=CLASSES,
        compression="none",
        splits={"train": entries},
        statistics={},
        extra={},
        tool_version="test",
    )
    write_labels(folder, CLASSES)
    write_manifest(folder, manifest)
    return folder


def upload(folder: Path, url: str) -> str:
    """Every file of ``folder`` to ``url``, the manifest last."""
    names = sorted(p.name for p in folder.iterdir() if p.name != MANIFEST)
    for name in [*names, MANIFEST]:
        if (folder / name).exists():
            storage.put_file(folder / name, storage.join(url, name))
    return url


def shard_names(folder: Path) -> list[str]:
    """The shard files of a local dataset (not their indexes)."""
    return sorted(
        p.name for p in folder.iterdir() if p.name.startswith("toy-") and p.suffix != ".idx"
    )


def damage(local: Path, url: str, record: int) -> int:
    """Flip a byte inside the data of record ``record`` of the shard ``local`` and upload it
    over ``url``; returns the record's offset."""
    data = bytearray(local.read_bytes())
    offset = 0
    for _ in range(record):
        length = int.from_bytes(data[offset : offset + 8], "little")
        offset += length + OVERHEAD
    data[offset + HEADER_SIZE + 5] ^= 0xFF
    bad = local.with_name(local.name + ".bad")
    bad.write_bytes(bytes(data))
    storage.put_file(bad, url)
    bad.unlink()
    return offset


@pytest.fixture
def dataset(tmp_path) -> Path:
    return make_dataset(tmp_path / "toy")


@pytest.fixture
def remote(bucket, dataset) -> str:
    """The small dataset uploaded to a fresh bucket on each server (``s3://``, ``gs://``)."""
    return upload(dataset, storage.join(bucket, "ds"))


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """``tfrecord-tools ARGS`` in a child process (the servers' variables are inherited)."""
    return subprocess.run(
        [sys.executable, "-m", "tfrecord_tools", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


class Calls:
    """Counts the storage seam's reads (``read_bytes``) and size look-ups."""

    def __init__(self, monkeypatch):
        self.reads: list[tuple[str, int | None, int | None]] = []
        self.sizes: list[str] = []
        read, size = storage.read_bytes, storage.size

        def counting_read(path, start=None, end=None):
            self.reads.append((os.fspath(path), start, end))
            return read(path, start, end)

        def counting_size(path):
            self.sizes.append(os.fspath(path))
            return size(path)

        for module in (storage, storage.fs):  # the package's names and the seam's own calls
            monkeypatch.setattr(module, "read_bytes", counting_read)
            monkeypatch.setattr(module, "size", counting_size)

    def bytes_read(self, suffix: str = "") -> int:
        return sum(
            (end or 0) - (start or 0) for path, start, end in self.reads if path.endswith(suffix)
        )


# --------------------------------------------------------------------------- count


def test_count_reads_the_manifest_once(remote, dataset, monkeypatch):
    calls = Calls(monkeypatch)
    report = count_records(remote)
    assert report.total == 24
    assert {s.source for s in report.shards} == {"manifest"}
    assert [r[0] for r in calls.reads] == [storage.join(remote, MANIFEST)]
    assert calls.sizes == []  # the sizes come from the folder's one listing


def test_count_glob_and_single_shard(remote, dataset):
    first = storage.join(remote, shard_names(dataset)[0])
    assert count_records(first).total == 12
    assert count_records(storage.join(remote, "toy-train.tfrecord-*")).total == 24


def test_count_without_manifest_uses_index_then_scan(memory_bucket, dataset):
    for name in shard_names(dataset):
        storage.put_file(dataset / name, storage.join(memory_bucket, name))
        storage.put_file(dataset / f"{name}.idx", storage.join(memory_bucket, f"{name}.idx"))
    assert count_records(memory_bucket).by_split == {"-": 24}
    assert {s.source for s in count_records(memory_bucket).shards} == {"index"}
    for name in shard_names(dataset):
        storage.delete(storage.join(memory_bucket, f"{name}.idx"))
    with pytest.raises(TFRecordToolsError, match="pass --scan"):
        count_records(memory_bucket)
    report = count_records(memory_bucket, scan=True)
    assert report.total == 24 and {s.source for s in report.shards} == {"scan"}


def test_count_missing_and_short_shards(remote, dataset):
    name = shard_names(dataset)[0]
    storage.write_atomic(storage.join(remote, name), b"cut")
    with pytest.raises(TFRecordToolsError, match=r"manifest says \d+ bytes, the file has 3"):
        count_records(remote)
    storage.delete(storage.join(remote, name))
    with pytest.raises(TFRecordToolsError, match=r"ds/toy-train.*listed in the manifest"):
        count_records(remote)


def test_locate_errors_name_the_url(memory_bucket):
    with pytest.raises(
        TFRecordToolsError, match="nothing/here: not a dataset: no such file or folder"
    ):
        locate(storage.join(memory_bucket, "nothing/here"))
    with pytest.raises(TFRecordToolsError, match="no files match this pattern"):
        locate(storage.join(memory_bucket, "*.tfrecord"))
    storage.write_atomic(storage.join(memory_bucket, "labels.txt"), "a\n")
    storage.write_atomic(storage.join(memory_bucket, "x-train.tfrecord-00000-of-00001"), b"")
    storage.write_atomic(storage.join(memory_bucket, "x-train.tfrecord-00000-of-00001.idx"), "")
    with pytest.raises(TFRecordToolsError, match="unfinished conversion"):
        locate(memory_bucket)


def test_credentials_are_not_shown(memory_bucket):
    with pytest.raises(TFRecordToolsError) as caught:
        count_records("memory://KEY:SECRET@nobucket/ds")
    assert "SECRET" not in str(caught.value)


# --------------------------------------------------------------------------- inspect


def test_inspect_reads_only_the_first_records(memory_bucket, tmp_path, monkeypatch):
    local = make_dataset(tmp_path / "big", shards=1, records=200, size=30_000)  # ~6 MB
    url = upload(local, storage.join(memory_bucket, "ds"))
    calls = Calls(monkeypatch)
    report = inspect_dataset(url, sample_records=4)
    assert report.sample_records == 4
    assert report.splits["train"]["records"] == 200
    assert report.classes == CLASSES
    assert report.image_formats == {"raw": 4}
    shard = storage.join(url, shard_names(local)[0])
    size = storage.size(shard)
    assert 0 < calls.bytes_read(shard_names(local)[0]) <= 2 << 20 < size


def test_inspect_bucket(remote):
    report = inspect_dataset(remote)
    assert report.name == "toy"
    assert report.sample_records == 24  # 12 of each shard
    assert report.labels == {"cat": 12, "dog": 12}
    assert report.image_sizes == {"10x10x3": 24}
    assert report.notes == []


# --------------------------------------------------------------------------- verify


def test_verify_clean_bucket(remote):
    report = verify(remote)
    assert report.ok, report.problems
    assert report.records == 24 and len(report.files) == 2
    assert all(f.sha256 for f in report.files)
    assert all(f.file.startswith(remote) for f in report.files)


def test_verify_damaged_object_names_url_record_and_offset(remote, dataset):
    name = shard_names(dataset)[1]
    url = storage.join(remote, name)
    offset = damage(dataset / name, url, record=3)
    report = verify(remote)
    assert not report.ok
    crc = [p for p in report.problems if p.kind == "data CRC mismatch"]
    assert [(p.file, p.index, p.offset) for p in crc] == [(url, 3, offset)]
    assert f"{url}: record 3 at byte {offset}: data CRC mismatch" in str(crc[0])
    assert {p.kind for p in report.problems} == {"data CRC mismatch", "sha256 mismatch"}


def test_verify_index_and_extra_files(remote, dataset):
    name = shard_names(dataset)[0]
    storage.write_atomic(storage.join(remote, f"{name}.idx"), "0 10\n")
    storage.put_file(dataset / name, storage.join(remote, "stray.tfrecord"))
    problems = {(p.kind, p.file) for p in verify(remote).problems}
    assert problems == {
        ("index mismatch", storage.join(remote, f"{name}.idx")),
        ("not in manifest", storage.join(remote, "stray.tfrecord")),
    }


def test_verify_glob_single_shard_and_missing(memory_bucket, dataset):
    url = upload(dataset, storage.join(memory_bucket, "ds"))
    names = shard_names(dataset)
    assert verify(storage.join(url, names[0])).records == 12
    assert verify(storage.join(url, "*.tfrecord-*")).records == 24
    storage.delete(storage.join(url, names[0]))
    report = verify(url)
    assert [(p.kind, p.file) for p in report.problems] == [
        ("missing shard", storage.join(url, names[0]))
    ]


def test_verify_gzip_bucket(memory_bucket, tmp_path):
    folder = tmp_path / "gz"
    folder.mkdir()
    with ShardWriter(folder / "a.tfrecord.gz", "gzip") as writer:
        for i in range(50):
            writer.write(b"x%d" % i * 100)
        writer.commit()
    storage.put_file(folder / "a.tfrecord.gz", storage.join(memory_bucket, "a.tfrecord.gz"))
    report = verify(storage.join(memory_bucket, "a.tfrecord.gz"))
    assert report.ok and report.records == 50 and report.files[0].compression == "gzip"


def test_cli_verify_exit_codes(remote, dataset, capsys):
    assert main(["verify", remote]) == 0
    assert "OK" in capsys.readouterr().out
    name = shard_names(dataset)[0]
    offset = damage(dataset / name, storage.join(remote, name), record=0)
    assert main(["verify", "-q", remote]) == 1
    out = capsys.readouterr().out
    assert f"{storage.join(remote, name)}: record 0 at byte {offset}: data CRC mismatch" in out
    assert main(["count", storage.join(remote, "missing")]) == 2
    err = capsys.readouterr().err
    assert "missing: not a dataset: no such file or folder" in err and "Traceback" not in err


def test_cli_subprocess_damaged_bucket(s3_server, tmp_path):
    local = make_dataset(tmp_path / "toy")
    url = upload(local, storage.join(s3_server.new_bucket(), "ds"))
    name = shard_names(local)[0]
    offset = damage(local / name, storage.join(url, name), record=2)
    done = run_cli("verify", url)
    assert done.returncode == 1, done.stderr
    assert f"{url}/{name}: record 2 at byte {offset}: data CRC mismatch" in done.stdout
    assert "Traceback" not in done.stderr
    done = run_cli("count", "--json", url)
    assert done.returncode == 0 and json.loads(done.stdout)["total"] == 24


# --------------------------------------------------------------------------- repair


def test_repair_bucket_to_local(remote, dataset, tmp_path):
    name = shard_names(dataset)[0]
    damage(dataset / name, storage.join(remote, name), record=4)
    out = tmp_path / "fixed"
    report = repair(remote, out)
    assert report.kept == 23 and report.records_dropped == 1
    assert verify(out).ok
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["splits"]["train"]["num_examples"] == 23
    assert manifest["repaired"]["source"] == remote
    assert (out / "labels.txt").read_text() == "cat\ndog\n"


def test_repair_local_to_bucket_and_bucket_to_bucket(bucket, dataset):
    target = storage.join(bucket, "copy")
    report = repair(dataset, target)
    assert report.clean and report.kept == 24
    assert report.manifest == storage.join(target, MANIFEST)
    assert verify(target).ok
    again = storage.join(bucket, "again")
    assert repair(target, again).kept == 24
    assert verify(again).ok
    assert count_records(again).total == 24
    with pytest.raises(TFRecordToolsError, match="already holds a dataset"):
        repair(target, again)
    assert repair(target, again, overwrite=True).kept == 24


def test_repair_single_object(memory_bucket, dataset, tmp_path):
    url = upload(dataset, storage.join(memory_bucket, "ds"))
    name = shard_names(dataset)[0]
    damage(dataset / name, storage.join(url, name), record=0)
    out = tmp_path / "one.tfrecord"
    report = repair(storage.join(url, name), out)
    assert report.kept == 11 and Path(f"{out}.idx").exists()
    back = storage.join(memory_bucket, "fixed", name)
    assert repair(out, back).kept == 11
    assert storage.exists(f"{back}.idx")
    with pytest.raises(TFRecordToolsError, match="exists; pass --overwrite"):
        repair(out, back)


def test_repair_failure_leaves_no_manifest(memory_bucket, dataset, monkeypatch):
    from tfrecord_tools.check import repair as repair_mod

    def broken(*args, **kwargs):
        raise TFRecordToolsError("disk on fire")

    monkeypatch.setattr(repair_mod, "_repair_shard", broken)
    target = storage.join(memory_bucket, "copy")
    with pytest.raises(TFRecordToolsError, match="disk on fire"):
        repair(dataset, target)
    assert not storage.exists(storage.join(target, MANIFEST))


# --------------------------------------------------------------------------- index


def test_index_writes_idx_beside_objects(remote, dataset, capsys):
    names = shard_names(dataset)
    for name in names:
        storage.delete(storage.join(remote, f"{name}.idx"))
    assert not verify(remote).ok  # missing index
    assert main(["index", storage.join(remote, "toy-train.tfrecord-*")]) == 0
    assert f"{storage.join(remote, names[0])}.idx: 12 records" in capsys.readouterr().out
    for name in names:
        assert (
            storage.read_bytes(storage.join(remote, f"{name}.idx"))
            == (dataset / f"{name}.idx").read_bytes()
        )
    assert verify(remote).ok


def test_index_refuses_damaged_object(memory_bucket, dataset):
    url = upload(dataset, storage.join(memory_bucket, "ds"))
    name = shard_names(dataset)[0]
    offset = damage(dataset / name, storage.join(url, name), record=1)
    with pytest.raises(TFRecordToolsError, match=rf"{name}: record 1 at byte {offset}"):
        index_shards([storage.join(url, name)])


# --------------------------------------------------------------------------- memory

_MEMORY_CHILD = textwrap.dedent(
    """
    import os, sys
    from tfrecord_tools import storage
    from tfrecord_tools.format.framing import frame
    from tfrecord_tools.check.verify import verify

    def status(key):
        for line in open("/proc/self/status"):
            if line.startswith(key):
                return int(line.split()[1]) * 1024

    size = int(sys.argv[1])
    record = frame(os.urandom(100_000))
    url = "memory://mem/shard.tfrecord"
    with storage.filesystem(url)[0].open("/mem/shard.tfrecord", "wb") as f:
        for _ in range(size // len(record)):
            f.write(record)
    del f
    verify(url)  # warm: imports, thread pools
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current RSS
    before = status("VmRSS")
    report = verify(url)
    assert report.ok and report.records == size // len(record), report.problems
    print(status("VmHWM") - before, storage.size(url))
    """
)


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux's /proc")
def test_verify_of_a_remote_object_does_not_hold_it_whole():
    pytest.importorskip("fsspec")
    done = subprocess.run(
        [sys.executable, "-c", _MEMORY_CHILD, str(64 << 20)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    growth, size = map(int, done.stdout.split())
    assert size > 60 << 20
    assert growth < 40 << 20, f"peak RSS grew by {growth / 1e6:.1f} MB for a {size / 1e6} MB object"
