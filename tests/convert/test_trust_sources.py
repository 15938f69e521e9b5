"""Trust at the sources: inputs that must not cost unbounded memory or duplicate data."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

from zlib_ng import gzip_ng


def test_an_honest_gzip_idx_bomb_is_not_held_in_memory(tmp_path: Path):
    """A 3 MB gzip file whose header honestly declares 313 MB of pixels: the payload is
    streamed to a memory-mapped temporary file, checked against the header as it goes."""
    n = 400_000  # 28x28 images: 313 MB
    path = tmp_path / "train-images-idx3-ubyte.gz"
    with gzip_ng.open(path, "wb", compresslevel=1) as gz:
        gz.write(struct.pack(">HBB3I", 0, 8, 3, n, 28, 28))
        block = bytes(784 * 10_000)
        for _ in range(n // 10_000):
            gz.write(block)
    assert path.stat().st_size < 5_000_000
    code = (
        "import sys\n"
        "from tfrecord_tools.convert.sources.mnist_idx import read_idx_images\n"
        "images = read_idx_images(sys.argv[1]).pixels\n"
        f"assert images.shape == ({n}, 28, 28) and int(images[-1].max()) == 0\n"
        # VmHWM, not ru_maxrss: the latter keeps a forking parent's size across exec
        "print(next(int(line.split()[1]) // 1024 for line in open('/proc/self/status')"
        " if line.startswith('VmHWM')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    peak_mb = int(done.stdout.split()[-1])
    assert peak_mb < 200, f"peak RSS {peak_mb} MB for a 313 MB payload"


def _tiny_folder(root: Path, classes=("a", "b"), per_class: int = 3) -> Path:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for name in classes:
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


def _convert(src, out, **options):
    from tfrecord_tools import convert_image_folder

    return convert_image_folder(src, out, quiet=True, workers=1, **options)


def test_directory_links_are_walked_once(tmp_path):
    src = _tiny_folder(tmp_path / "src")
    (src / "a" / "up").symlink_to("..")  # a loop: a/up/a/up/...
    (src / "b" / "again").symlink_to(src / "a")  # a second name for class a's folder
    (src / "c").symlink_to(src / "b")  # a class that is another class's folder
    summary = _convert(src, tmp_path / "out")
    assert summary.num_examples == 6
    assert summary.classes == ["a", "b"]
    reasons = dict(summary.skipped)
    assert reasons["a/up"] == reasons["b/again"] == reasons["c"]
    assert "already listed" in reasons["c"]


def test_an_output_folder_inside_the_source_is_not_a_class(tmp_path):
    src = _tiny_folder(tmp_path / "src")
    first = _convert(src, src / "zz-out")
    again = _convert(src, src / "zz-out", overwrite=True)
    assert first.classes == again.classes == ["a", "b"]
    assert again.num_examples == 6


def test_names_that_are_not_utf8_are_kept_or_listed(tmp_path):
    import json
    import os

    from ..helpers import read_dataset

    src = _tiny_folder(tmp_path / "src")
    os.rename(src / "a" / "0.png", os.fsencode(src / "a") + b"/caf\xe9.png")  # Latin-1 name
    os.rename(src / "b", os.fsencode(tmp_path / "src") + b"/b\xff")  # a class folder
    summary = _convert(src, tmp_path / "out")
    assert summary.classes == ["a"] and summary.num_examples == 3
    manifest = json.loads((tmp_path / "out" / "dataset.json").read_text(encoding="utf-8"))
    assert {"path": "b\\xff", "reason": "class folder name is not valid UTF-8"} in manifest[
        "source"
    ]["skipped"]
    names = {r["image/filename"] for r in read_dataset(tmp_path / "out")["train"]}
    assert b"a/caf\xe9.png" in names  # the raw name, byte for byte


def test_a_class_name_with_a_line_break_is_refused(tmp_path, capsys):
    from tfrecord_tools.cli import main

    src = _tiny_folder(tmp_path / "src", classes=("a", "two\nlines"))
    assert main(["convert", "images", str(src), str(tmp_path / "out"), "-q"]) == 2
    err = capsys.readouterr().err
    assert "line break" in err and "Traceback" not in err
    assert not (tmp_path / "out" / "dataset.json").exists()


# --- a dataset folder that is not whole -------------------------------------------------


def _dataset(tmp_path):
    src = _tiny_folder(tmp_path / "src", per_class=4)
    _convert(src, tmp_path / "out", shards=2)
    return tmp_path / "out"


def test_an_unfinished_conversion_is_never_passed_off_as_a_dataset(tmp_path, capsys):
    import pytest

    from tfrecord_tools import TFRecordToolsError, count_records, verify
    from tfrecord_tools.cli import main
    from tfrecord_tools.format.naming import WORK_DIR

    out = _dataset(tmp_path)
    (out / "dataset.json").unlink()  # as after kill -9 before the manifest was written
    (out / WORK_DIR).mkdir()
    shard = next(p for p in out.iterdir() if p.name.endswith("00000-of-00002"))
    for call in (lambda: verify(out), lambda: count_records(out), lambda: verify([shard])):
        with pytest.raises(TFRecordToolsError, match=r"unfinished conversion.*run the same"):
            call()
    for command in ("verify", "count", "inspect"):
        assert main([command, str(out)]) == 2
        assert "unfinished conversion" in capsys.readouterr().err
    (out / WORK_DIR).rmdir()  # finished once, manifest deleted since: still not a dataset
    with pytest.raises(TFRecordToolsError, match="unfinished conversion"):
        count_records(out)
    (out / "labels.txt").unlink()  # shards with indexes from elsewhere: read as before
    assert count_records(out).total == 8


def test_verify_reports_a_missing_index_and_count_a_missing_shard(tmp_path):
    import pytest

    from tfrecord_tools import TFRecordToolsError, count_records, verify

    out = _dataset(tmp_path)
    index = next(out.glob("*00000-of-00002.idx"))
    index.unlink()
    report = verify(out)
    assert [(p.file, p.kind) for p in report.problems] == [(str(index), "missing index")]
    shard = out / index.name.removesuffix(".idx")
    shard.write_bytes(shard.read_bytes()[:-1])
    with pytest.raises(TFRecordToolsError, match=r"the manifest says .* bytes, the file has"):
        count_records(out)
    shard.unlink()
    with pytest.raises(TFRecordToolsError, match="listed in the manifest, but no such file"):
        count_records(out)


def test_reading_a_damaged_shard_names_it(tmp_path):
    import pytest
    import tensorflow as tf

    from tfrecord_tools import make_dataset

    out = _dataset(tmp_path)
    shard = next(out.glob("*00001-of-00002"))
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 1  # a record in the middle: TF's own error names no file
    shard.write_bytes(bytes(data))
    for options in ({}, {"shuffle": True, "seed": 1}, {"batch_size": 2, "image_size": 8}):
        with pytest.raises(tf.errors.InvalidArgumentError) as info:
            for _ in make_dataset(out, **options):
                pass
        assert f"{shard}: damaged shard" in str(info.value), options
