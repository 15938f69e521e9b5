"""Image folder conversion: round trip, bad files, splits, shuffling, compression, resume."""

from __future__ import annotations

import io
import itertools
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tfrecord_tools import ConversionSummary, convert_image_folder
from tfrecord_tools.convert import local as engine_mod
from tfrecord_tools.errors import ConversionError, TFRecordToolsError
from tfrecord_tools.format.framing import iter_records

from ..conftest import BAD, GOOD_PER_CLASS
from ..helpers import read_dataset

CLASSES = sorted(GOOD_PER_CLASS)


@pytest.fixture(scope="module")
def converted(image_folder, tmp_path_factory) -> tuple[Path, ConversionSummary]:
    out = tmp_path_factory.mktemp("out")
    summary = convert_image_folder(image_folder, out, name="pets", shards=3, workers=2, quiet=True)
    return out, summary


def test_round_trip_keeps_bytes_labels_and_counts(converted, image_folder):
    out, summary = converted
    rows = read_dataset(out)["train"]
    assert len(rows) == sum(GOOD_PER_CLASS.values()) == summary.num_examples
    assert Counter(r["image/class/text"].decode() for r in rows) == GOOD_PER_CLASS
    for r in rows:
        rel = r["image/filename"].decode()
        source = (image_folder / rel).read_bytes()
        label = r["image/class/label"]
        assert CLASSES[label] == r["image/class/text"].decode() == rel.split("/")[0]
        fmt = r["image/format"].decode()
        if rel.endswith(".bmp"):
            assert fmt == "png"
            stored = np.asarray(Image.open(io.BytesIO(r["image/encoded"])))
            assert np.array_equal(stored, np.asarray(Image.open(image_folder / rel)))
        else:
            assert r["image/encoded"] == source  # stored unchanged, byte for byte
            assert fmt == ("jpeg" if source[:2] == b"\xff\xd8" else "png")
        with Image.open(image_folder / rel) as im:
            assert (r["image/width"], r["image/height"]) == im.size


def test_manifest_labels_index_and_files(converted):
    out, _summary = converted
    manifest = json.loads((out / "dataset.json").read_text())
    assert manifest["format_version"] == 1
    assert manifest["classes"] == CLASSES
    assert (out / "labels.txt").read_text(encoding="utf-8").splitlines() == CLASSES
    assert manifest["compression"] == "none"
    shards = manifest["splits"]["train"]["shards"]
    assert [s["file"] for s in shards] == [
        f"pets-train.tfrecord-{i:05d}-of-00003" for i in range(3)
    ]
    assert sum(s["num_examples"] for s in shards) == manifest["splits"]["train"]["num_examples"]
    for s in shards:
        path = out / s["file"]
        assert path.stat().st_size == s["num_bytes"]
        import hashlib

        assert hashlib.sha256(path.read_bytes()).hexdigest() == s["sha256"]
        index = [
            tuple(map(int, line.split()))
            for line in (out / (s["file"] + ".idx")).read_text().splitlines()
        ]
        assert index == [(r.offset, r.size) for r in iter_records(path)]
    leftovers = [p.name for p in out.iterdir() if p.name.startswith(".")]
    assert leftovers == []  # no temp files, no work dir


def test_bad_files_skipped_and_listed_with_reasons(converted):
    out, summary = converted
    manifest = json.loads((out / "dataset.json").read_text())
    listed = {s["path"]: s["reason"] for s in manifest["source"]["skipped"]}
    assert listed == BAD
    assert dict(summary.skipped) == BAD
    table = summary.format_table()
    assert "skipped 5" in table and "truncated JPEG 1" in table
    assert "gray" in summary.image_kinds and "rgba" in summary.image_kinds
    assert summary.converted_from == {"bmp": 1}


def test_records_are_shuffled_not_class_sorted(converted):
    out, _ = converted
    labels = [r["image/class/label"] for r in read_dataset(out)["train"]]
    changes = sum(a != b for a, b in itertools.pairwise(labels))
    assert changes > len(CLASSES) * 2


def test_strict_fails_naming_the_file(image_folder, tmp_path):
    with pytest.raises(ConversionError, match=r"--strict"):
        convert_image_folder(image_folder, tmp_path, strict=True, workers=1, quiet=True)
    assert not (tmp_path / "dataset.json").exists()


def test_strict_on_bad_image_names_it(tmp_path, image_folder):
    src = tmp_path / "src" / "a"
    src.mkdir(parents=True)
    (src / "bad.jpg").write_bytes((image_folder / "cats" / "truncated.jpg").read_bytes())
    with pytest.raises(ConversionError, match=r"bad\.jpg: truncated JPEG"):
        convert_image_folder(tmp_path / "src", tmp_path / "out", strict=True, quiet=True)


def _split_files(out: Path) -> dict[str, list[str]]:
    return {
        s: sorted(r["image/filename"].decode() for r in rows)
        for s, rows in read_dataset(out).items()
    }


def test_splits_stratified_and_deterministic(clean_folder, tmp_path):
    kw = {"split": "train=0.5,validation=0.25,test=0.25", "quiet": True, "workers": 1}
    a = convert_image_folder(clean_folder, tmp_path / "a", seed=7, **kw)
    convert_image_folder(clean_folder, tmp_path / "b", seed=7, **kw)
    convert_image_folder(clean_folder, tmp_path / "c", seed=8, **kw)
    files = _split_files(tmp_path / "a")
    assert files == _split_files(tmp_path / "b")
    assert files != _split_files(tmp_path / "c")
    assert set(a.splits) == {"train", "validation", "test"}
    all_files = [f for fs in files.values() for f in fs]
    assert len(all_files) == len(set(all_files)) == sum(GOOD_PER_CLASS.values())
    for split, fs in files.items():
        per_class = Counter(f.split("/")[0] for f in fs)
        for c, n in GOOD_PER_CLASS.items():  # stratified: each class cut by the fractions
            share = {"train": 0.5, "validation": 0.25, "test": 0.25}[split]
            assert abs(per_class[c] - n * share) < 1, (split, c, per_class)
    # same seed -> same record order too, byte for byte
    for shard in json.loads((tmp_path / "a" / "dataset.json").read_text())["splits"]["train"][
        "shards"
    ]:
        assert (tmp_path / "a" / shard["file"]).read_bytes() == (
            tmp_path / "b" / shard["file"]
        ).read_bytes()


@pytest.mark.parametrize("compression", ["gzip", "ZLIB"])
def test_compression_variants_round_trip(image_folder, tmp_path, compression):
    summary = convert_image_folder(
        image_folder, tmp_path, compression=compression, shards=2, workers=1, quiet=True
    )
    manifest = json.loads((tmp_path / "dataset.json").read_text())
    assert manifest["compression"] == compression.lower()
    rows = read_dataset(tmp_path)["train"]
    assert len(rows) == summary.num_examples == sum(GOOD_PER_CLASS.values())
    raw = (tmp_path / manifest["splits"]["train"]["shards"][0]["file"]).read_bytes()
    assert raw[:2] == (b"\x1f\x8b" if compression == "gzip" else b"\x78\x9c")


def test_tensorflow_reads_every_variant(image_folder, tmp_path):
    tf = pytest.importorskip("tensorflow")
    for compression in ("none", "gzip", "zlib"):
        out = tmp_path / compression
        convert_image_folder(
            image_folder, out, compression=compression, shards=2, workers=1, quiet=True
        )
        files = sorted(str(p) for p in out.glob("*.tfrecord-*") if not p.name.endswith(".idx"))
        ds = tf.data.TFRecordDataset(
            files, compression_type=compression.upper() if compression != "none" else ""
        )
        ds = ds.map(
            lambda r: tf.io.parse_single_example(
                r,
                {
                    "image/encoded": tf.io.FixedLenFeature([], tf.string),
                    "image/class/label": tf.io.FixedLenFeature([], tf.int64),
                },
            )
        )
        n = 0
        for ex in ds:
            img = tf.io.decode_image(ex["image/encoded"], expand_animations=False)
            assert img.shape[0] > 0
            n += 1
        assert n == sum(GOOD_PER_CLASS.values())


def test_interrupted_conversion_reruns_to_completion(image_folder, tmp_path, monkeypatch):
    real_run_job = engine_mod.run_job
    calls = []

    def dies_on_second_shard(job, report=None):
        calls.append(job.filename)
        if len(calls) == 2:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C mid-way
        return real_run_job(job, report)

    monkeypatch.setattr(engine_mod, "run_job", dies_on_second_shard)
    with pytest.raises(KeyboardInterrupt):
        convert_image_folder(image_folder, tmp_path, shards=4, workers=1, quiet=True)
    assert not (tmp_path / "dataset.json").exists()
    assert len(list(tmp_path.glob("*.tfrecord-*-of-00004*"))) == 2  # shard 0 + its .idx
    monkeypatch.setattr(engine_mod, "run_job", real_run_job)
    (tmp_path / ".leftover.tmp-999").write_bytes(b"half a shard")  # a killed writer's file
    summary = convert_image_folder(image_folder, tmp_path, shards=4, workers=2, quiet=True)
    assert summary.resumed_shards == 1
    rows = read_dataset(tmp_path)["train"]
    names = [r["image/filename"] for r in rows]
    assert len(names) == len(set(names)) == sum(GOOD_PER_CLASS.values())
    assert not (tmp_path / ".leftover.tmp-999").exists()
    assert sorted(dict(summary.skipped)) == sorted(BAD)


def test_finished_output_needs_overwrite(image_folder, tmp_path):
    convert_image_folder(image_folder, tmp_path, workers=1, quiet=True)
    with pytest.raises(ConversionError, match="--overwrite"):  # other options
        convert_image_folder(image_folder, tmp_path, workers=1, quiet=True, seed=5)
    again = convert_image_folder(
        image_folder, tmp_path, workers=1, quiet=True, shards=2, overwrite=True
    )
    assert sum(s.num_shards for s in again.splits.values()) == 2
    assert len(list(tmp_path.glob("*.idx"))) == 2  # the old single shard is gone


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"shards": 0}, r"shards \(--shards\) must be at least 1"),
        ({"shards": 2, "shard_size": "1MB"}, "not both"),
        ({"shard_size": "12 parsecs"}, "cannot read size"),
        ({"workers": 0}, r"workers \(--workers\) must be at least 1"),
        ({"compression": "lz4"}, "unknown compression 'lz4'"),
        ({"split": "train=0.9,test=0.2"}, "sum to 1.1"),
        ({"split": "train"}, "expected NAME=FRACTION"),
        ({"validate": "maybe"}, "validate must be one of"),
    ],
)
def test_bad_options_are_clear_errors(image_folder, tmp_path, kwargs, message):
    with pytest.raises(TFRecordToolsError, match=message):
        convert_image_folder(image_folder, tmp_path, quiet=True, **kwargs)


def test_missing_or_empty_source(tmp_path):
    with pytest.raises(ConversionError, match="not a folder"):
        convert_image_folder(tmp_path / "nope", tmp_path / "out", quiet=True)
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "a.jpg").write_bytes(b"x")
    with pytest.raises(ConversionError, match="no class subfolders"):
        convert_image_folder(tmp_path / "flat", tmp_path / "out", quiet=True)


def test_vanished_and_broken_files_are_listed_not_fatal(tmp_path, image_folder, monkeypatch):
    from tfrecord_tools.convert import api as convert_mod

    src = tmp_path / "src" / "a"
    src.mkdir(parents=True)
    (src / "ok.jpg").write_bytes((image_folder / "cats" / "img0.jpg").read_bytes())
    (src / "gone.jpg").write_bytes(b"x")
    (src / "dangling.jpg").symlink_to(tmp_path / "nowhere.jpg")
    real_scan = convert_mod.scan_image_folder

    def scan_then_delete(path, **options):
        listing = real_scan(path, **options)
        (src / "gone.jpg").unlink()  # removed between listing and reading
        return listing

    monkeypatch.setattr(convert_mod, "scan_image_folder", scan_then_delete)
    summary = convert_image_folder(tmp_path / "src", tmp_path / "out", quiet=True, workers=1)
    assert dict(summary.skipped) == {
        "a/gone.jpg": "unreadable file",
        "a/dangling.jpg": "not a regular file",
    }
    assert summary.num_examples == 1


def test_manifest_image_shape_only_when_all_images_agree(tmp_path):
    from PIL import Image

    for name, sizes in (("same", [(6, 4)] * 3), ("mixed", [(6, 4), (6, 4), (5, 4)])):
        src = tmp_path / name
        for i, size in enumerate(sizes):
            (src / f"c{i % 2}").mkdir(parents=True, exist_ok=True)
            Image.new("L", size, 7).save(src / f"c{i % 2}" / f"{i}.png")
        convert_image_folder(src, tmp_path / f"{name}-out", workers=1, shards=2, quiet=True)
    same = json.loads((tmp_path / "same-out" / "dataset.json").read_text())
    mixed = json.loads((tmp_path / "mixed-out" / "dataset.json").read_text())
    assert same["image_shape"] == [4, 6, 1]  # height, width, channels
    assert "image_shape" not in mixed
