"""The tools for existing TFRecords: verify, repair, count, index, inspect (library and CLI).

Damage is made by hand on small shards: byte flips and truncations at seeded random
positions, junk between records, absurd length fields, edited manifests and index files.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tracemalloc
import zlib
from pathlib import Path

import pytest

from tfrecord_tools.check.count import count_records
from tfrecord_tools.check.index import index_shards
from tfrecord_tools.check.inspect import inspect_dataset
from tfrecord_tools.check.repair import repair
from tfrecord_tools.check.verify import verify
from tfrecord_tools.cli import main
from tfrecord_tools.convert.api import convert_image_folder
from tfrecord_tools.errors import TFRecordToolsError
from tfrecord_tools.format import scan as scan_mod
from tfrecord_tools.format.compression import detect_compression
from tfrecord_tools.format.example import FEATURES
from tfrecord_tools.format.framing import (
    HEADER_SIZE,
    OVERHEAD,
    frame,
    iter_headers,
    iter_records,
    masked_crc32c,
)
from tfrecord_tools.format.scan import Damage, RecordScanner
from tfrecord_tools.format.tfds import TFDS_FILES
from tfrecord_tools.format.writer import ShardWriter

from ..conftest import GOOD_PER_CLASS
from ..helpers import read_dataset

N_GOOD = sum(GOOD_PER_CLASS.values())


# --------------------------------------------------------------------------- helpers


def make_records(seed: int, n: int = 24) -> list[bytes]:
    """Records of mixed sizes (0 to ~600 bytes): random bytes, runs of zeros, text."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        size = rng.choice([0, 1, 7, 40, 200, 600]) if i % 5 == 0 else rng.randrange(20, 600)
        kind = i % 3
        if kind == 0:
            out.append(rng.randbytes(size))
        elif kind == 1:
            out.append(bytes(size))  # all zeros: many resync candidates
        else:
            out.append((b"record %d " % i * 100)[:size])
    return out


def spans_of(records: list[bytes]) -> list[tuple[int, int]]:
    """(offset, size) of each framed record in a plain shard."""
    spans, offset = [], 0
    for r in records:
        spans.append((offset, len(r) + OVERHEAD))
        offset += len(r) + OVERHEAD
    return spans


def record_at(spans: list[tuple[int, int]], position: int) -> int:
    return next(i for i, (o, s) in enumerate(spans) if o <= position < o + s)


def write_plain(path: Path, records: list[bytes]) -> Path:
    path.write_bytes(b"".join(frame(r) for r in records))
    return path


def write_with_index(path: Path, records: list[bytes], compression: str = "none") -> Path:
    with ShardWriter(path, compression) as w:
        for r in records:
            w.write(r)
        w.commit()
    return path


def compress(data: bytes, compression: str) -> bytes:
    if compression == "gzip":
        return gzip.compress(data, mtime=0)
    if compression == "zlib":
        return zlib.compress(data)
    return data


def flip(path: Path, position: int, mask: int = 0x40) -> None:
    data = bytearray(path.read_bytes())
    data[position] ^= mask
    path.write_bytes(bytes(data))


def records_of(path: Path, compression: str = "none") -> list[bytes]:
    return [r.data for r in iter_records(path, compression)]


def problem_kinds(report) -> list[str]:
    return [p.kind for p in report.problems]


@pytest.fixture(scope="module")
def datasets(image_folder, tmp_path_factory) -> dict[str, Path]:
    """The shared image folder converted three ways, two shards each."""
    out = {}
    for compression in ("none", "gzip", "zlib"):
        folder = tmp_path_factory.mktemp(f"ds-{compression}")
        convert_image_folder(
            image_folder,
            folder,
            name="pets",
            shards=2,
            workers=1,
            compression=compression,
            quiet=True,
        )
        out[compression] = folder
    return out


@pytest.fixture()
def plain_copy(datasets, tmp_path) -> Path:
    """A private copy of the plain dataset, free to damage."""
    return Path(shutil.copytree(datasets["none"], tmp_path / "ds"))


def shard_files(folder: Path) -> list[Path]:
    manifest = json.loads((folder / "dataset.json").read_text())
    return [folder / s["file"] for split in manifest["splits"].values() for s in split["shards"]]


# --------------------------------------------------------------------------- verify: clean


@pytest.mark.parametrize("compression", ["none", "gzip", "zlib"])
def test_verify_passes_clean_datasets(datasets, compression, capsys):
    report = verify([datasets[compression]])
    assert report.ok, report.problems
    assert report.records == N_GOOD and len(report.files) == 2
    assert all(f.sha256 and f.compression == compression for f in report.files)
    assert main(["verify", str(datasets[compression])]) == 0
    out = capsys.readouterr().out
    assert "verified 2 file(s)" in out and f"{N_GOOD} records" in out and "GB/s" in out


def test_verify_single_shard_uses_its_manifest_entry_and_detects_compression(datasets):
    for compression, folder in datasets.items():
        shard = shard_files(folder)[0]
        assert detect_compression(shard) == compression
        report = verify([shard])
        assert report.ok and report.files[0].sha256 is not None  # checked against the manifest
        lone = folder.parent / f"lone-{compression}.tfrecord"
        shutil.copyfile(shard, lone)
        report = verify([lone])
        assert report.ok and report.files[0].compression == compression
        assert report.files[0].sha256 is None  # nothing to compare with
        lone.unlink()


def test_detect_compression_prefers_a_valid_plain_header(tmp_path):
    # A record of 40056 bytes starts with 78 9c, which is also the usual zlib header.
    path = write_plain(tmp_path / "a.tfrecord", [bytes(0x9C78)])
    assert path.read_bytes()[:2] == b"\x78\x9c"
    assert detect_compression(path) == "none"
    assert verify([path]).ok


# --------------------------------------------------------------------------- verify: damage


@pytest.mark.parametrize("seed", range(30))
def test_byte_flip_names_the_record_and_everything_after_is_kept(tmp_path, seed):
    records = make_records(seed)
    spans = spans_of(records)
    path = write_plain(tmp_path / "s.tfrecord", records)
    rng = random.Random(1000 + seed)
    position = rng.randrange(path.stat().st_size)
    flip(path, position, 1 << rng.randrange(8))
    i = record_at(spans, position)
    within = position - spans[i][0]

    report = verify([path])
    assert len(report.problems) == 1, report.problems
    problem = report.problems[0]
    assert (problem.index, problem.offset) == (i, spans[i][0])
    assert problem.kind == ("length CRC mismatch" if within < HEADER_SIZE else "data CRC mismatch")
    assert report.records == len(records) - 1

    repaired = repair(path, tmp_path / "fixed.tfrecord")
    assert records_of(tmp_path / "fixed.tfrecord") == records[:i] + records[i + 1 :]
    assert [d.index for d in repaired.shards[0].dropped] == [i]


@pytest.mark.parametrize("seed", range(20))
def test_truncation_names_the_cut_record(tmp_path, seed):
    records = make_records(seed, n=12)
    spans = spans_of(records)
    data = b"".join(frame(r) for r in records)
    rng = random.Random(seed)
    cut = rng.randrange(1, len(data))
    path = tmp_path / "s.tfrecord"
    path.write_bytes(data[:cut])
    report = verify([path])
    if any(o == cut for o, _ in spans):  # a cut between records leaves a valid file
        assert report.ok
        return
    i = record_at(spans, cut)
    assert len(report.problems) == 1, report.problems
    problem = report.problems[0]
    assert (problem.index, problem.offset) == (i, spans[i][0])
    assert problem.kind == (
        "truncated header" if cut - spans[i][0] < HEADER_SIZE else "truncated record"
    )
    repair(path, tmp_path / "fixed.tfrecord")
    assert records_of(tmp_path / "fixed.tfrecord") == records[:i]


def test_every_damaged_record_is_reported_in_one_run(tmp_path):
    records = make_records(7, n=30)
    spans = spans_of(records)
    path = write_plain(tmp_path / "s.tfrecord", records)
    data = bytearray(path.read_bytes())
    data[spans[3][0] + 2] ^= 1  # length field
    data[spans[5][0] + 9] ^= 1  # length CRC
    data[spans[10][0] + spans[10][1] - 1] ^= 1  # data CRC
    data[spans[11][0] + 14] ^= 1  # data of the very next record
    data[spans[29][0] + 14] ^= 1  # data of the last record
    path.write_bytes(bytes(data))
    report = verify([path])
    damaged = (3, 5, 10, 11, 29)
    assert [(p.index, p.offset) for p in report.problems] == [(i, spans[i][0]) for i in damaged]
    assert f"next good record at byte {spans[4][0]}" in report.problems[0].detail
    assert "no good record after it" in report.problems[-1].detail
    repair(path, tmp_path / "fixed.tfrecord")
    keep = [r for i, r in enumerate(records) if i not in damaged]
    assert records_of(tmp_path / "fixed.tfrecord") == keep


def test_adjacent_damaged_headers_are_one_stretch(tmp_path):
    # Two headers in a row gone: nothing says where the first record ends, so both records
    # are one damaged stretch (counted as one record); the records after are all kept.
    records = make_records(8, n=12)
    spans = spans_of(records)
    path = write_plain(tmp_path / "s.tfrecord", records)
    data = bytearray(path.read_bytes())
    data[spans[3][0] + 1] ^= 1
    data[spans[4][0] + 1] ^= 1
    path.write_bytes(bytes(data))
    report = verify([path])
    assert [(p.index, p.offset) for p in report.problems] == [(3, spans[3][0])]
    assert f"next good record at byte {spans[5][0]}" in report.problems[0].detail
    repair(path, tmp_path / "fixed.tfrecord")
    assert records_of(tmp_path / "fixed.tfrecord") == records[:3] + records[5:]


def test_junk_between_records_is_skipped(tmp_path):
    records = make_records(3, n=10)
    framed = [frame(r) for r in records]
    junk = b"\x00" * 37 + random.Random(0).randbytes(500)
    path = tmp_path / "s.tfrecord"
    path.write_bytes(b"".join(framed[:5]) + junk + b"".join(framed[5:]) + b"tail")
    report = verify([path])
    offset5 = sum(len(f) for f in framed[:5])
    assert (report.problems[0].index, report.problems[0].offset) == (5, offset5)
    assert problem_kinds(report)[-1] == "truncated header"  # the 4 trailing bytes
    repair(path, tmp_path / "fixed.tfrecord")
    assert records_of(tmp_path / "fixed.tfrecord") == records


@pytest.mark.parametrize("change", ["insert", "delete"])
def test_bytes_inserted_or_deleted_inside_a_record(tmp_path, change):
    records = make_records(9, n=12)
    spans = spans_of(records)
    data = bytearray(b"".join(frame(r) for r in records))
    at = spans[4][0] + HEADER_SIZE + 10
    if change == "insert":
        data[at:at] = b"\x01\x02\x03"
    else:
        del data[at : at + 3]
    path = tmp_path / "s.tfrecord"
    path.write_bytes(bytes(data))
    report = verify([path])
    assert [(p.index, p.offset) for p in report.problems] == [(4, spans[4][0])]
    repair(path, tmp_path / "fixed.tfrecord")
    assert records_of(tmp_path / "fixed.tfrecord") == records[:4] + records[5:]


def test_bytes_lost_inside_a_record_do_not_hide_the_next_one(tmp_path):
    # 56 bytes go missing inside record 3, exactly the size of record 4: record 3's length
    # now ends where record 5 starts, and record 4 sits inside the span it claims.
    rng = random.Random(4)
    records = [rng.randbytes(300) for _ in range(3)] + [rng.randbytes(500), rng.randbytes(40)]
    records += [rng.randbytes(100) for _ in range(3)]
    spans = spans_of(records)
    data = bytearray(b"".join(frame(r) for r in records))
    cut = spans[3][0] + HEADER_SIZE + 100
    del data[cut : cut + spans[4][1]]
    path = tmp_path / "s.tfrecord"
    path.write_bytes(bytes(data))
    report = verify([path])
    assert [(p.index, p.offset) for p in report.problems] == [(3, spans[3][0])]
    repair(path, tmp_path / "fixed.tfrecord")
    assert records_of(tmp_path / "fixed.tfrecord") == records[:3] + records[4:]


def test_zeroed_block_and_records_larger_than_the_buffer(tmp_path):
    big = random.Random(0).randbytes(3 << 20)  # bigger than the scanner's 1 MB buffer
    records = [b"a" * 100, big, *make_records(6, n=40), big, b"z"]
    spans = spans_of(records)
    data = bytearray(b"".join(frame(r) for r in records))
    start, end = spans[5][0] + 7, spans[30][0] + 20  # a zeroed stretch, as disks leave them
    data[start:end] = bytes(end - start)
    path = tmp_path / "s.tfrecord"
    path.write_bytes(bytes(data))
    report = verify([path])
    assert [(p.index, p.offset) for p in report.problems] == [(5, spans[5][0])]
    assert f"next good record at byte {spans[31][0]}" in report.problems[0].detail
    repair(path, tmp_path / "fixed.tfrecord")
    assert records_of(tmp_path / "fixed.tfrecord") == records[:5] + records[31:]


@pytest.mark.parametrize("compression", ["gzip", "zlib"])
def test_damage_in_compressed_streams_uses_uncompressed_offsets(tmp_path, compression):
    records = make_records(11, n=20)
    spans = spans_of(records)
    stream = bytearray(b"".join(frame(r) for r in records))
    stream[spans[6][0] + HEADER_SIZE] ^= 0xFF  # first data byte of record 6
    path = tmp_path / "s.tfrecord"
    path.write_bytes(compress(bytes(stream), compression))
    report = verify([path])
    assert [(p.index, p.offset, p.kind) for p in report.problems] == [
        (6, spans[6][0], "data CRC mismatch")
    ]
    repair(path, tmp_path / "fixed.tfrecord")
    fixed = tmp_path / "fixed.tfrecord"
    assert detect_compression(fixed) == compression
    assert records_of(fixed, compression) == records[:6] + records[7:]


def test_truncated_gzip_keeps_everything_before_the_cut(tmp_path):
    # Incompressible records, so that a cut in the gzip file falls late in the stream.
    records = [random.Random(i).randbytes(300) for i in range(40)]
    data = gzip.compress(b"".join(frame(r) for r in records), mtime=0)
    path = tmp_path / "s.tfrecord.gz"
    path.write_bytes(data[: len(data) * 3 // 4])
    report = verify([path])
    kinds = problem_kinds(report)
    assert kinds[-1] == "truncated compressed stream" and "truncated record" in kinds
    result = repair(path, tmp_path / "fixed.tfrecord")
    kept = records_of(tmp_path / "fixed.tfrecord", "gzip")
    assert kept == records[: len(kept)] and len(kept) == result.kept > 20


@pytest.mark.parametrize("compression", ["gzip", "zlib"])
def test_bad_stream_checksum_loses_no_record(tmp_path, compression):
    # zlib reports a wrong trailer checksum by failing the call that reads it, output and all:
    # every record decompressed before it must still be kept.
    records = [random.Random(i).randbytes(5000) for i in range(300)]  # ~1.5 MB stream
    data = bytearray(compress(b"".join(frame(r) for r in records), compression))
    data[-5 if compression == "gzip" else -1] ^= 0xFF  # gzip: CRC32; zlib: Adler-32
    path = tmp_path / "s.tfrecord"
    path.write_bytes(bytes(data))
    report = verify([path])
    assert problem_kinds(report) == ["corrupt compressed data"]
    assert report.records == len(records)
    repair(path, tmp_path / "fixed.tfrecord")
    assert records_of(tmp_path / "fixed.tfrecord", compression) == records


def test_absurd_length_field_fails_fast_without_allocating(tmp_path):
    length = 1 << 60
    header = struct.pack("<Q", length)
    bad = header + struct.pack("<I", masked_crc32c(header)) + b"x" * 100
    good = make_records(1, n=3)
    path = tmp_path / "s.tfrecord"
    path.write_bytes(bad + b"".join(frame(r) for r in good))
    gz = tmp_path / "s.tfrecord.gz"
    gz.write_bytes(gzip.compress(path.read_bytes(), mtime=0))
    tracemalloc.start()
    try:
        for target in (path, gz):
            report = verify([target])
            assert report.problems[0].kind == "truncated record"
            assert (report.problems[0].index, report.problems[0].offset) == (0, 0)
            assert str(length) in report.problems[0].detail
            assert report.records == 3  # found again after the bad header
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20
    with pytest.raises(TFRecordToolsError, match="length field says 1152921504606846976"):
        list(iter_headers(path))


# --------------------------------------------------------------------------- verify: dataset


def test_verify_flags_manifest_mismatches_missing_and_extra_shards(plain_copy):
    manifest_path = plain_copy / "dataset.json"
    manifest = json.loads(manifest_path.read_text())
    shards = manifest["splits"]["train"]["shards"]
    shards[0]["sha256"] = "0" * 64
    shards[0]["num_examples"] += 1
    shards[1]["num_bytes"] += 5
    manifest_path.write_text(json.dumps(manifest))
    report = verify([plain_copy])
    found = {(Path(p.file).name, p.kind) for p in report.problems}
    assert (shards[0]["file"], "sha256 mismatch") in found
    assert (shards[0]["file"], "count mismatch") in found
    assert (shards[1]["file"], "size mismatch") in found
    assert ("dataset.json", "manifest inconsistent") in found

    (plain_copy / shards[1]["file"]).unlink()
    (plain_copy / "pets-extra.tfrecord-00000-of-00001").write_bytes(frame(b"x"))
    report = verify([plain_copy])
    found = {(Path(p.file).name, p.kind) for p in report.problems}
    assert (shards[1]["file"], "missing shard") in found
    assert ("pets-extra.tfrecord-00000-of-00001", "not in manifest") in found


def test_verify_flags_wrong_index_files(plain_copy):
    shard = shard_files(plain_copy)[0]
    idx = shard.with_name(shard.name + ".idx")
    lines = idx.read_text().splitlines()
    offset, size = map(int, lines[2].split())
    idx.write_text("\n".join([*lines[:2], f"{offset} {size + 1}", *lines[3:]]) + "\n")
    report = verify([plain_copy])
    assert [(p.kind, p.index, p.offset) for p in report.problems] == [("index mismatch", 2, offset)]
    idx.write_text("\n".join(lines[:-1]) + "\n")
    assert "the index lists" in verify([plain_copy]).problems[0].detail
    idx.write_text("0 12\nnot numbers\n")
    assert problem_kinds(verify([plain_copy])) == ["bad index"]


# --------------------------------------------------------------------------- repair


def test_repair_folder_keeps_every_intact_record_and_writes_a_fresh_manifest(plain_copy, tmp_path):
    before = read_dataset(plain_copy)["train"]
    shard = shard_files(plain_copy)[1]
    spans = [(s.offset, s.size) for s in iter_headers(shard)]
    data = bytearray(shard.read_bytes())
    for i in (1, 4):
        data[spans[i][0] + HEADER_SIZE + 30] ^= 0xFF
    shard.write_bytes(bytes(data))
    n0 = len(list(iter_headers(shard_files(plain_copy)[0])))

    out = tmp_path / "fixed"
    report = repair(plain_copy, out)
    assert report.records_dropped == 2 and report.kept == N_GOOD - 2
    assert verify([out]).ok
    after = read_dataset(out)["train"]
    assert after == [r for i, r in enumerate(before) if i not in (n0 + 1, n0 + 4)]
    old = json.loads((plain_copy / "dataset.json").read_text())
    new = json.loads((out / "dataset.json").read_text())
    assert new["splits"]["train"]["num_examples"] == N_GOOD - 2
    assert {k: v for k, v in new.items() if k not in ("splits", "repaired")} == {
        k: v for k, v in old.items() if k != "splits"
    }
    assert [d["index"] for d in new["repaired"]["dropped"]] == [1, 4]
    assert new["repaired"]["records_dropped"] == 2
    assert (out / "labels.txt").read_text() == (plain_copy / "labels.txt").read_text()


@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_repair_of_a_clean_dataset_is_byte_identical(datasets, tmp_path, compression):
    report = repair(datasets[compression], tmp_path / "copy")
    assert report.clean
    for shard in shard_files(datasets[compression]):
        copy = tmp_path / "copy" / shard.name
        assert copy.read_bytes() == shard.read_bytes()
        idx = shard.name + ".idx"
        assert (tmp_path / "copy" / idx).read_text() == (shard.parent / idx).read_text()


def test_tensorflow_reads_the_repaired_shard(tmp_path):
    tf = pytest.importorskip("tensorflow")
    records = make_records(21, n=15)
    spans = spans_of(records)
    path = write_plain(tmp_path / "s.tfrecord", records)
    flip(path, spans[5][0] + HEADER_SIZE)  # record 5's data
    repair(path, tmp_path / "fixed.tfrecord")
    read = [t.numpy() for t in tf.data.TFRecordDataset(str(tmp_path / "fixed.tfrecord"))]
    assert read == records[:5] + records[6:]


def test_repair_refuses_to_overwrite(tmp_path, datasets, capsys):
    shard = shard_files(datasets["none"])[0]
    target = tmp_path / "x.tfrecord"
    target.write_bytes(b"")
    assert main(["repair", str(shard), str(target)]) == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert main(["repair", str(shard), str(target), "--overwrite"]) == 0
    assert records_of(target) == records_of(shard)


# --------------------------------------------------------------------------- count


def _garble_payloads(shard: Path) -> None:
    """Overwrite every payload byte, keeping the headers: only a payload read would notice."""
    data = bytearray(shard.read_bytes())
    for span in list(iter_headers(shard)):
        start = span.offset + HEADER_SIZE
        data[start : start + span.length] = b"\xee" * span.length
    shard.write_bytes(bytes(data))


def test_count_never_reads_shards_with_a_manifest_or_index(plain_copy, monkeypatch):
    def no_reading(*args, **kwargs):
        raise AssertionError("count read a shard")

    monkeypatch.setattr(scan_mod, "RecordScanner", no_reading)
    monkeypatch.setattr("tfrecord_tools.format.framing.iter_headers", no_reading)
    monkeypatch.setattr("tfrecord_tools.check.count.iter_headers", no_reading)
    for shard in shard_files(plain_copy):  # nothing valid left to read, sizes unchanged
        shard.write_bytes(bytes(shard.stat().st_size))
    assert count_records([plain_copy]).total == N_GOOD
    assert {s.source for s in count_records([plain_copy]).shards} == {"manifest"}
    (plain_copy / "dataset.json").unlink()
    (plain_copy / "labels.txt").unlink()  # shards with indexes from elsewhere, not ours
    for name in TFDS_FILES:
        (plain_copy / name).unlink(missing_ok=True)
    report = count_records(shard_files_from_idx(plain_copy))
    assert report.total == N_GOOD and {s.source for s in report.shards} == {"index"}


def shard_files_from_idx(folder: Path) -> list[Path]:
    return sorted(p.with_suffix("") for p in folder.glob("*.idx"))


def test_count_scan_reads_headers_only(plain_copy, monkeypatch):
    (plain_copy / "dataset.json").unlink()
    for idx in plain_copy.glob("*.idx"):
        idx.unlink()
    for shard in shard_files_from_idx_free(plain_copy):
        _garble_payloads(shard)
    reads = []
    real_pread = os.pread
    monkeypatch.setattr(os, "pread", lambda fd, n, pos: reads.append(n) or real_pread(fd, n, pos))
    with pytest.raises(TFRecordToolsError, match="pass --scan"):
        count_records([plain_copy])
    report = count_records([plain_copy], scan=True)
    assert report.total == N_GOOD and {s.source for s in report.shards} == {"scan"}
    assert reads == [HEADER_SIZE] * N_GOOD


def shard_files_from_idx_free(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if ".tfrecord-" in p.name)


def test_count_cli(datasets, capsys):
    assert main(["count", str(datasets["gzip"])]) == 0
    assert f"train: {N_GOOD} records in 2 shard(s) (from manifest)" in capsys.readouterr().out
    assert main(["count", str(datasets["gzip"]), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["total"] == N_GOOD
    shard = shard_files(datasets["zlib"])[0]
    assert main(["count", "--scan", str(shard)]) == 0  # manifest entry beside it wins
    assert "(from manifest)" in capsys.readouterr().out


# --------------------------------------------------------------------------- index


@pytest.mark.parametrize("compression", ["none", "gzip", "zlib"])
def test_index_output_equals_what_the_writer_writes(datasets, tmp_path, compression, capsys):
    folder = Path(shutil.copytree(datasets[compression], tmp_path / "ds"))
    written = {p.name: p.read_text() for p in folder.glob("*.idx")}
    for p in folder.glob("*.idx"):
        p.unlink()
    shards = [str(s) for s in shard_files(folder)]
    assert main(["index", *shards]) == 0
    assert "records" in capsys.readouterr().out
    assert {p.name: p.read_text() for p in folder.glob("*.idx")} == written


def test_index_refuses_damaged_shards(tmp_path, capsys):
    records = make_records(2, n=6)
    path = write_plain(tmp_path / "s.tfrecord", records)
    flip(path, spans_of(records)[3][0] + 3)
    assert main(["index", str(path)]) == 2
    err = capsys.readouterr().err
    assert "record 3 at byte" in err and "repair" in err
    assert not (tmp_path / "s.tfrecord.idx").exists()
    write_plain(path, records)
    assert [r.records for r in index_shards([tmp_path / "*.tfrecord"])] == [6]


# --------------------------------------------------------------------------- inspect


def test_inspect_json_has_the_expected_keys(datasets, capsys):
    assert main(["inspect", str(datasets["zlib"]), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {
        "path",
        "name",
        "compression",
        "splits",
        "shards",
        "classes",
        "features",
        "sample",
        "notes",
    } <= set(report)
    assert report["compression"] == ["zlib"] and report["name"] == "pets"
    assert report["splits"]["train"]["records"] == N_GOOD
    assert report["splits"]["train"]["shards"] == 2
    assert report["classes"] == sorted(GOOD_PER_CLASS)
    assert report["features"] == FEATURES
    sample = report["sample"]
    assert set(sample["image_formats"]) <= {"jpeg", "png"} and sample["records"] > 0
    assert all(len(size.split("x")) == 3 for size in sample["image_sizes"])
    assert report["notes"] == []


def test_inspect_text_and_bare_shards(datasets, tmp_path, capsys):
    shard = shard_files(datasets["gzip"])[0]
    lone = shutil.copyfile(shard, tmp_path / "lone.tfrecord")
    report = inspect_dataset([lone], sample_records=4)
    assert report.shards[0].count_source == "scan" and report.compression == ["gzip"]
    assert report.sample_records == 4 and report.classes is None
    assert main(["inspect", str(datasets["none"])]) == 0
    out = capsys.readouterr().out
    assert "train: 2 shard(s)" in out and "image sizes (HxWxC)" in out and "sample:" in out


# --------------------------------------------------------------------------- CLI and imports


def test_verify_cli_exit_codes_and_messages(plain_copy, tmp_path, capsys):
    shard = shard_files(plain_copy)[0]
    offset = next(iter(iter_headers(shard))).offset
    flip(shard, offset + HEADER_SIZE + 5)
    assert main(["verify", str(plain_copy)]) == 1
    out = capsys.readouterr().out
    assert f"{shard}: record 0 at byte {offset}: data CRC mismatch" in out
    assert "sha256 mismatch" in out and "problem(s) in 1 file(s)" in out
    assert main(["verify", "-q", "--no-sha256", str(plain_copy)]) == 1
    out = capsys.readouterr().out
    assert "sha256" not in out and "verified" not in out
    assert main(["verify", str(tmp_path / "nothing-here")]) == 2
    assert "tfrecord-tools: error:" in capsys.readouterr().err
    assert main(["verify", str(tmp_path / "*.nomatch")]) == 2
    assert "no files match" in capsys.readouterr().err


@pytest.mark.parametrize("use_mmap", [True, False], ids=["mmap", "read"])
def test_scanner_payloads_are_the_records(tmp_path, use_mmap):
    records = make_records(4, n=10)
    path = write_with_index(tmp_path / "s.tfrecord", records)
    # A 64-byte buffer: records cross refills and the buffer must grow.
    with RecordScanner(path, buffer_size=64, use_mmap=use_mmap) as scanner:
        got = [bytes(scanner.payload(s)) for s in scanner if not isinstance(s, Damage)]
    assert got == records


@pytest.mark.parametrize("seed", range(12))
def test_mapped_and_buffered_scans_agree_on_damage(tmp_path, seed):
    records = make_records(seed, n=20)
    data = bytearray(b"".join(frame(r) for r in records))
    rng = random.Random(seed)
    for _ in range(3):
        data[rng.randrange(len(data))] ^= 0x10
    cut = rng.randrange(len(data))
    del data[cut : cut + 5]
    path = tmp_path / "s.tfrecord"
    path.write_bytes(bytes(data))

    def scan(**kwargs):
        with RecordScanner(path, **kwargs) as scanner:
            return [
                (i, bytes(scanner.payload(i)) if not isinstance(i, Damage) else b"")
                for i in scanner
            ]

    assert scan() == scan(use_mmap=False, buffer_size=100) == scan(use_mmap=False)


def test_tools_do_not_import_tensorflow(datasets, tmp_path):
    code = (
        "import sys\n"
        "from tfrecord_tools.cli import main\n"
        f"ds = {str(datasets['gzip'])!r}\n"
        f"out = {str(tmp_path / 'fixed')!r}\n"
        "for argv in (['verify', ds], ['count', ds], ['inspect', ds, '--json'],\n"
        "             ['repair', ds, out], ['index', out + '/*-00000-of-*']):\n"
        "    assert main(argv) == 0, argv\n"
        "print(' '.join(sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert "tensorflow" not in result.stdout.split()
