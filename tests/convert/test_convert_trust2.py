"""Trust, second round (issue 20), on local folders: a file Pillow fails on is one skip, never
the end of a conversion; a user's files in OUT are never replaced without being asked; a
dataset name is a file name, not a path; OUT is not the root, the home folder or someone
else's folder; every bad option names itself; an MNIST gzip bomb costs no memory; and a
failed conversion says what failed and how to go on, and its rerun finishes.

(Bucket outages and missing buckets: ``test_convert_storage_timeout.py``.)
"""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import BmpImagePlugin, Image, PngImagePlugin

from tfrecord_tools import convert_image_folder, convert_mnist, verify
from tfrecord_tools.cli import main
from tfrecord_tools.convert import resume
from tfrecord_tools.convert.sources.image_folder import FolderShard
from tfrecord_tools.convert.sources.mnist_idx import IDXPixels, open_idx_images
from tfrecord_tools.errors import ConversionError, TFRecordToolsError

from ..helpers import idx_header, make_mnist, write_idx

OPTIONS = {"workers": 1, "quiet": True}  # jobs in this process: monkeypatches reach them


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bytes(value: int, size: int = 8) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), (value, 0, 0)).save(buffer, "PNG")
    return buffer.getvalue()


def good_folder(root: Path, per_class: int = 3) -> Path:
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            (root / c / f"{i}.png").write_bytes(png_bytes(10 * i + (c == "b")))
    return root


def manifest_skips(out: Path) -> dict[str, str]:
    manifest = json.loads((out / "dataset.json").read_text())
    return {s["path"]: s["reason"] for s in manifest["source"]["skipped"]}


# --------------------------------------------------------------------------- 1. Pillow


def dds_with_unknown_pixel_format() -> bytes:
    """A DDS header whose pixel format flags (8) Pillow refuses with NotImplementedError."""
    header = struct.pack("<4s7I", b"DDS ", 124, 0x100F, 4, 4, 16, 0, 0) + bytes(44)
    header += struct.pack("<2I4s5I", 32, 8, bytes(4), 0, 0, 0, 0, 0)
    header += struct.pack("<5I", 0x1000, 0, 0, 0, 0)
    return header + bytes(64)


def icns_bomb() -> bytes:
    """An ICNS of one 128x128 icon (its size when opened) whose PNG declares 20000x20000:
    Pillow raises DecompressionBombError only when it loads the icon."""
    ihdr = struct.pack(">IIBBBBB", 20_000, 20_000, 8, 6, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
    png += png_chunk(b"IDAT", zlib.compress(b"\0")) + png_chunk(b"IEND", b"")
    entry = b"ic07" + struct.pack(">I", 8 + len(png)) + png
    return b"icns" + struct.pack(">I", 8 + len(entry)) + entry


def tiff_with_65535_samples() -> bytes:
    """A TIFF declaring 65535 samples per pixel: Pillow logs an error record (which Python's
    last-resort handler prints on stderr) before refusing it."""
    entries = [(256, 3, 1, 4), (257, 3, 1, 4), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1)]
    entries += [(273, 4, 1, 200), (277, 3, 1, 65535), (278, 3, 1, 4), (279, 4, 1, 16)]
    ifd = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHII", *e) for e in entries)
    data = b"II*\0" + struct.pack("<I", 8) + ifd + bytes(4)
    return data + bytes(216 - len(data))


def tiff_with_corrupt_lzw() -> bytes:
    """An LZW TIFF whose compressed strip is garbage: libtiff's decoder reports errors."""
    rng = np.random.default_rng(1)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (200, 300, 3), dtype=np.uint8)).save(
        buffer, "TIFF", compression="tiff_lzw"
    )
    data = bytearray(buffer.getvalue())
    for i in range(200, 2000):  # strip data: the directory is at the end
        data[i] ^= 0x5A
    return bytes(data)


@pytest.fixture
def pillow_failures(tmp_path) -> Path:
    src = good_folder(tmp_path / "src")
    (src / "a" / "x.dds").write_bytes(dds_with_unknown_pixel_format())
    (src / "b" / "y.icns").write_bytes(icns_bomb())
    return src


@pytest.mark.parametrize("validate", ["fast", "decode"])
def test_files_pillow_fails_on_are_skipped_with_pillows_words(
    pillow_failures, tmp_path, capsys, validate
):
    out = tmp_path / "out"
    argv = ["convert", "images", str(pillow_failures), str(out), "--workers", "1", "-q"]
    assert main([*argv, "--validate", validate]) == 0, capsys.readouterr().err
    assert manifest_skips(out) == {
        "a/x.dds": "unsupported image (DDS, Pillow: Unknown pixel format flags 8)",
        "b/y.icns": "image too large",  # Pillow's DecompressionBombError, when it loads
    }
    assert json.loads((out / "dataset.json").read_text())["splits"]["train"]["num_examples"] == 6
    assert capsys.readouterr().err == ""


def test_strict_lists_the_files_pillow_fails_on_without_a_traceback(
    pillow_failures, tmp_path, capsys
):
    out = tmp_path / "out"
    argv = ["convert", "images", str(pillow_failures), str(out), "--strict", "--workers", "2"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "--strict: 2 bad files" in err
    assert "a/x.dds: unsupported image (DDS, Pillow: Unknown pixel format flags 8)" in err
    assert "b/y.icns: image too large (Pillow: Image size (400000000 pixels) exceeds" in err
    assert not out.exists()


@pytest.mark.parametrize(
    "error",
    [NotImplementedError("not done"), RuntimeError("broke"), struct.error("bad unpack"),
     AssertionError("assumed"), KeyError("tag")],
    ids=lambda e: type(e).__name__,
)  # fmt: skip
@pytest.mark.parametrize("stage", ["open", "load"])
def test_any_exception_a_pillow_plugin_raises_skips_only_that_file(
    tmp_path, monkeypatch, error, stage
):
    src = good_folder(tmp_path / "src")
    buffer = io.BytesIO()
    Image.new("RGB", (5, 4), "red").save(buffer, "BMP")
    (src / "a" / "pic.bmp").write_bytes(buffer.getvalue())

    def fails(self, *args, **kwargs):
        raise error

    monkeypatch.setattr(BmpImagePlugin.BmpImageFile, "_open" if stage == "open" else "load", fails)
    summary = convert_image_folder(src, tmp_path / "out", **OPTIONS)
    assert summary.num_examples == 6
    [(path, reason)] = summary.skipped
    assert path == "a/pic.bmp"
    assert reason.startswith("unsupported image (BMP, Pillow: "), reason
    if stage == "load":  # Pillow's own words (open: Pillow tries the next plugin, then gives up)
        assert reason == f"unsupported image (BMP, Pillow: {str(error) or type(error).__name__})"


@pytest.mark.parametrize("options", [{"encoding": "raw"}, {"validate": "decode"}])
@pytest.mark.parametrize("error", [NotImplementedError("no"), RuntimeError("broke")], ids=str)
def test_a_pillow_failure_decoding_a_png_skips_it(tmp_path, monkeypatch, options, error):
    """The re-encoder (``--encoding raw``) and ``--validate decode`` decode PNGs with Pillow."""
    src = good_folder(tmp_path / "src")

    def fails(self, *args, **kwargs):
        raise error

    monkeypatch.setattr(PngImagePlugin.PngImageFile, "load", fails)
    summary = convert_image_folder(src, tmp_path / "out", **OPTIONS, **options)
    assert summary.num_examples == 0
    assert {reason for _, reason in summary.skipped} == {"decode failed"}


def test_pillows_and_libtiffs_messages_stay_off_stderr(tmp_path):
    """In a real process (libtiff writes to file descriptor 2 itself, Python's last-resort
    log handler to sys.stderr): a TIFF Pillow logs an error about, and one libtiff fails to
    decode, with every way of converting."""
    src = good_folder(tmp_path / "src")
    (src / "a" / "samples.tif").write_bytes(tiff_with_65535_samples())
    (src / "b" / "lzw.tif").write_bytes(tiff_with_corrupt_lzw())
    for i, options in enumerate(
        [[], ["--validate", "decode", "--workers", "2"], ["--encoding", "raw"], ["--strict"]]
    ):
        command = [sys.executable, "-m", "tfrecord_tools", "convert", "images", str(src)]
        done = subprocess.run(
            [*command, str(tmp_path / f"out{i}"), "-q", *options],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if "--strict" in options:
            assert done.returncode == 2
            assert done.stderr.startswith("tfrecord-tools: error: --strict: 2 bad files")
            assert "samples per pixel" not in done.stderr and "LZW" not in done.stderr
        else:
            assert (done.returncode, done.stderr) == (0, "")


# --------------------------------------------------------------------------- 2. OUT's files


@pytest.mark.parametrize(
    "theirs",
    ["labels.txt", "dataset_info.json", "features.json", "image-class-label.labels.txt",
     ".notes.txt.tmp-12", "src-train.tfrecord-00000-of-00001.idx"],
)  # fmt: skip
def test_a_users_files_with_our_names_stop_a_first_conversion(tmp_path, capsys, theirs):
    src = good_folder(tmp_path / "src")
    out = tmp_path / "out"
    out.mkdir()
    (out / theirs).write_text("the user's own")
    argv = ["convert", "images", str(src), str(out), "--allow-nonempty-out", "-q"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{out} holds files with the names this conversion writes ({theirs})" in err
    assert "--overwrite" in err
    assert sorted(os.listdir(out)) == [theirs]
    assert (out / theirs).read_text() == "the user's own"
    assert main([*argv, "--overwrite"]) == 0  # asked for: replaced
    assert verify(out).ok


def test_files_of_an_unfinished_conversion_of_ours_are_ours(tmp_path, monkeypatch):
    """Interrupted after its labels (a kill between the shards and the manifest): the rerun
    takes labels.txt and a left temporary file for its own, without --overwrite."""
    src = good_folder(tmp_path / "src", per_class=4)
    out = tmp_path / "out"

    def killed(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr("tfrecord_tools.convert.steps.write_manifest", killed)
    with pytest.raises(KeyboardInterrupt):
        convert_image_folder(src, out, shards=2, **OPTIONS)
    monkeypatch.undo()
    assert (out / "labels.txt").exists() and (out / ".tfrecord-tools-work").is_dir()
    (out / ".labels.txt.tmp-99999").write_text("half")
    summary = convert_image_folder(src, out, shards=2, **OPTIONS)
    assert summary.resumed_shards == 2
    assert not (out / ".labels.txt.tmp-99999").exists()
    assert verify(out).ok


# --------------------------------------------------------------------------- 3. --name


@pytest.mark.parametrize(
    "name", ["../escape", "/tmp/abs", "a/b", "..", ".", "", ".hidden", "a\\b", "a\nb", 5]
)
def test_a_name_is_one_plain_file_name(tmp_path, name):
    src = good_folder(tmp_path / "src")
    with pytest.raises(ConversionError, match=r"name \(--name\) must be one plain file name"):
        convert_image_folder(src, tmp_path / "out", name=name, **OPTIONS)
    make_mnist(tmp_path / "mnist", n_train=4, n_test=2)
    with pytest.raises(ConversionError, match=r"name \(--name\) must be one plain file name"):
        convert_mnist(tmp_path / "mnist", tmp_path / "out", name=name, **OPTIONS)
    assert sorted(os.listdir(tmp_path)) == ["mnist", "src"]  # nothing written anywhere


def test_name_escaping_out_is_refused_on_the_command_line(tmp_path, capsys):
    src = good_folder(tmp_path / "src")
    out = tmp_path / "nest" / "out"
    argv = ["convert", "images", str(src), str(out), "--name", "../escape", "-q"]
    assert main(argv) == 2
    assert "got '../escape'" in capsys.readouterr().err
    assert not (tmp_path / "nest").exists()


# --------------------------------------------------------------------------- 4. OUT itself


def test_a_folder_holding_other_files_is_refused_unless_allowed(tmp_path, capsys):
    src = good_folder(tmp_path / "src")
    out = tmp_path / "papers"
    out.mkdir()
    (out / "thesis.pdf").write_bytes(b"%PDF years of work")
    (out / "drafts").mkdir()
    argv = ["convert", "images", str(src), str(out)]
    assert main([*argv, "-q"]) == 2
    err = capsys.readouterr().err
    assert f"{out} is not empty (drafts, thesis.pdf) and holds no dataset of ours" in err
    assert "--allow-nonempty-out" in err
    assert sorted(os.listdir(out)) == ["drafts", "thesis.pdf"]
    assert main([*argv, "-q", "--overwrite"]) == 2  # replacing ours is not writing in theirs
    assert main([*argv, "-q", "--allow-nonempty-out"]) == 0
    assert (out / "thesis.pdf").read_bytes() == b"%PDF years of work"
    assert verify(out).ok
    capsys.readouterr()
    assert main(argv) == 0  # from now on it holds our dataset: a rerun is a rerun
    assert "already complete" in capsys.readouterr().out


def test_empty_missing_and_our_own_folders_need_nothing(tmp_path, monkeypatch):
    src = good_folder(tmp_path / "src", per_class=4)
    (tmp_path / "empty").mkdir()
    convert_image_folder(src, tmp_path / "empty", **OPTIONS)
    convert_image_folder(src, tmp_path / "missing" / "deeper", **OPTIONS)
    out = tmp_path / "unfinished"

    def interrupted(self):
        raise KeyboardInterrupt
        yield

    monkeypatch.setattr(FolderShard, "items", interrupted)
    with pytest.raises(KeyboardInterrupt):
        convert_image_folder(src, out, shards=2, **OPTIONS)
    monkeypatch.undo()
    assert convert_image_folder(src, out, shards=2, **OPTIONS).num_examples == 8
    assert convert_image_folder(src, out, seed=4, overwrite=True, **OPTIONS).num_examples == 8


@pytest.fixture
def nothing_written(monkeypatch):
    """A conversion that gets past its checks of OUT stops before it writes anything."""

    def stop(*args, **kwargs):
        raise AssertionError("the conversion went on to lock and write OUT")

    monkeypatch.setattr(resume, "locked", stop)


def test_the_root_folder_is_refused_unless_allowed(tmp_path, nothing_written):
    src = good_folder(tmp_path / "src")
    with pytest.raises(ConversionError, match=r"^/: OUT is the root folder.*--allow-nonempty-out"):
        convert_image_folder(src, "/", **OPTIONS)
    with pytest.raises(AssertionError, match="went on"):
        convert_image_folder(src, "/", allow_nonempty_out=True, **OPTIONS)


def test_the_home_folder_is_refused_even_when_empty(tmp_path, monkeypatch, nothing_written):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    src = good_folder(tmp_path / "src")
    with pytest.raises(ConversionError, match=r"OUT is your home folder.*--allow-nonempty-out"):
        convert_image_folder(src, home, **OPTIONS)
    make_mnist(tmp_path / "mnist", n_train=4, n_test=2)
    with pytest.raises(ConversionError, match="OUT is your home folder"):
        convert_mnist(tmp_path / "mnist", home, **OPTIONS)


# --------------------------------------------------------------------------- 5. options


IMAGE_OPTIONS = [
    ({"src": None}, r"src \(SRC\) must be a folder"),
    ({"src": 5}, r"src \(SRC\) must be a folder"),
    ({"out": None}, r"out \(OUT\) must be a folder"),
    ({"out": ""}, r"out \(OUT\) must be a folder"),
    ({"name": 7}, r"name \(--name\) must be one plain file name"),
    ({"split": 0.9}, r"split \(--split\) must be a spec"),
    ({"split": {"train": "most"}}, "bad fraction 'most' for split 'train'"),
    ({"split": {"train": None}}, "bad fraction None for split 'train'"),
    ({"split": {1: 1.0}}, "split must map split names to fractions"),
    ({"shards": "2"}, r"shards \(--shards\) must be a whole number, got '2'"),
    ({"shards": 2.5}, r"shards \(--shards\) must be a whole number, got 2.5"),
    ({"shards": True}, r"shards \(--shards\) must be a whole number, got True"),
    ({"shard_size": [1]}, r"shard_size \(--shard-size\) must be a whole number"),
    ({"shard_size": -5}, r"shard_size \(--shard-size\) must be at least 1, got -5"),
    ({"workers": "2"}, r"workers \(--workers\) must be a whole number, got '2'"),
    ({"workers": 1.5}, r"workers \(--workers\) must be a whole number"),
    ({"compression": 5}, r"compression \(--compression\) must be one of none, gzip, zlib"),
    ({"seed": "1"}, r"seed \(--seed\) must be a whole number, got '1'"),
    ({"seed": None}, r"seed \(--seed\) must be a whole number, got None"),
    ({"strict": "yes"}, r"strict \(--strict\) must be True or False, got 'yes'"),
    ({"validate": 5}, "validate must be one of fast, decode, got 5"),
    ({"max_size": "10"}, r"max_size \(--max-size\) must be a whole number"),
    ({"quality": "90"}, r"quality \(--quality\) must be a JPEG quality"),
    ({"encoding": None}, "encoding must be one of keep, png, raw, auto, got None"),
    ({"quiet": "no"}, r"quiet \(--quiet\) must be True or False"),
    ({"overwrite": 1}, r"overwrite \(--overwrite\) must be True or False, got 1"),
    ({"allow_nonempty_out": "x"}, r"allow_nonempty_out \(--allow-nonempty-out\) must be True"),
    ({"storage_timeout": "fast"}, r"storage_timeout \(--storage-timeout\) must be a number"),
    ({"storage_timeout": 0}, r"storage_timeout \(--storage-timeout\) must be a positive number"),
    ({"storage_timeout": float("nan")}, r"storage_timeout \(--storage-timeout\) must be a pos"),
    ({"engine": 5}, "engine must be one of local, beam, got 5"),
    ({"engine": ["local"]}, "engine must be one of local, beam"),
    ({"runner": 5}, r"runner \(--runner\) must be a Beam runner's name, got 5"),
    ({"pipeline_args": "--project=p"}, "pipeline_args must be a list of Beam options"),
    ({"pipeline_args": [1]}, "pipeline_args must hold strings"),
]


@pytest.mark.parametrize(("changed", "message"), IMAGE_OPTIONS, ids=lambda x: repr(x)[:40])
def test_every_bad_image_folder_option_is_an_error_naming_it(tmp_path, changed, message):
    arguments = {"src": good_folder(tmp_path / "src"), "out": tmp_path / "out", **changed}
    with pytest.raises(TFRecordToolsError, match=message):
        convert_image_folder(arguments.pop("src"), arguments.pop("out"), **arguments)
    assert not (tmp_path / "out").exists()


MNIST_OPTIONS = [
    ({"src": None}, r"src \(SRC\) must be a folder"),
    ({"name": None}, r"name \(--name\) must be one plain file name"),
    ({"encoding": 5}, "encoding must be one of png, raw, got 5"),
    ({"png_level": "1"}, r"png_level \(--png-level\) must be a whole number, got '1'"),
    ({"png_level": 10}, r"png_level \(--png-level\) must be at most 9, got 10"),
    ({"download": "yes"}, r"download \(--download\) must be True or False"),
    ({"workers": "2"}, r"workers \(--workers\) must be a whole number, got '2'"),
    ({"shards": None, "shard_size": {}}, r"shard_size \(--shard-size\) must be a whole number"),
]


@pytest.mark.parametrize(("changed", "message"), MNIST_OPTIONS, ids=lambda x: repr(x)[:40])
def test_every_bad_mnist_option_is_an_error_naming_it(tmp_path, changed, message):
    make_mnist(tmp_path / "src", n_train=4, n_test=2)
    arguments = {"src": tmp_path / "src", "out": tmp_path / "out", **changed}
    with pytest.raises(TFRecordToolsError, match=message):
        convert_mnist(arguments.pop("src"), arguments.pop("out"), **arguments)
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- 7. IDX bomb


def test_idx_images_are_read_from_a_file_a_few_at_a_time(tmp_path):
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, (300, 5, 7), dtype=np.uint8)
    ids = rng.permutation(300)[:50]
    for gz in (False, True):
        path = write_idx(tmp_path / f"images-{gz}", pixels, gz=gz)
        spill = tmp_path / f"spill-{gz}"
        spill.mkdir()
        images = open_idx_images(path, spill)
        assert isinstance(images, IDXPixels) and images.shape == (300, 5, 7)
        assert np.array_equal(images.take(ids), pixels[ids])
        assert (images.path == str(path)) is not gz  # a gzip payload: decompressed to spill
        assert len(os.listdir(spill)) == int(gz)


PEAK = """
import resource, sys
from tfrecord_tools.cli import main
if sys.argv[1] == "no-fork":  # as when TensorFlow is imported: workers from a fork server
    import tfrecord_tools.convert.inherit as inherit
    inherit.forks = lambda: False
code = main(["convert", "mnist", *sys.argv[2:]])
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
print(code, hwm // 1024, children // 1024)
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM (Linux)")
@pytest.mark.parametrize("mode", ["workers-1", "workers-2", "no-fork"])
def test_an_honest_idx_gzip_bomb_is_converted_in_bounded_memory(tmp_path, mode):
    """A ~130 KB gzip file honestly declaring 131 MB of images (80 of 1024x1600): no process
    of the conversion holds the payload (a process once held it ~2x)."""
    count, rows, cols = 80, 1024, 1600
    payload = count * rows * cols
    src = tmp_path / "src"
    src.mkdir()
    stream = zlib.compressobj(9, zlib.DEFLATED, 31)
    with open(src / "train-images-idx3-ubyte.gz", "wb") as f:
        f.write(stream.compress(idx_header((count, rows, cols))))
        zeros = bytes(rows * cols)
        for _ in range(count):
            f.write(stream.compress(zeros))
        f.write(stream.flush())
    assert (src / "train-images-idx3-ubyte.gz").stat().st_size < payload // 500
    write_idx(src / "train-labels-idx1-ubyte", np.arange(count, dtype=np.uint8) % 10)
    write_idx(src / "t10k-images-idx3-ubyte", np.zeros((2, rows, cols), np.uint8))
    write_idx(src / "t10k-labels-idx1-ubyte", np.zeros(2, np.uint8))
    workers = "2" if mode != "workers-1" else "1"
    argv = [str(src), str(tmp_path / "out"), "--encoding", "raw", "--workers", workers, "-q"]
    done = subprocess.run(
        [sys.executable, "-c", PEAK, "no-fork" if mode == "no-fork" else "fork", *argv],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    code, parent_mb, children_mb = map(int, done.stdout.split())
    assert code == 0
    peak_mb = max(parent_mb, children_mb)
    assert peak_mb < 1.1 * payload / 2**20, f"peak {peak_mb} MB for a {payload >> 20} MB payload"
    manifest = json.loads((tmp_path / "out" / "dataset.json").read_text())
    assert manifest["splits"]["train"]["num_examples"] == count


# --------------------------------------------------------------------------- 8. failures


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("name", ["labels.txt", "dataset_info.json", "dataset.json"])
def test_a_full_disk_after_the_shards_names_the_file_and_the_rerun_finishes(tmp_path, capsys, name):
    """The file's temporary sibling (this process writes it) is /dev/full."""
    src = good_folder(tmp_path / "src", per_class=4)
    out = tmp_path / "out"
    out.mkdir()
    (out / f".{name}.tmp-{os.getpid()}").symlink_to("/dev/full")
    argv = ["convert", "images", str(src), str(out), "--shards", "2", "--workers", "1"]
    assert main([*argv, "--allow-nonempty-out", "-q"]) == 2  # the link is not ours
    err = capsys.readouterr().err
    assert err.startswith(f"tfrecord-tools: error: {out / name}: cannot write: No space left")
    assert f"{out} holds this conversion unfinished: run the same command again" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (out / "dataset.json").exists()
    assert main(argv) == 0  # the link went with the failed write: the rerun finishes
    assert "resumed: 2 shards" in capsys.readouterr().out
    assert verify(out).ok


def test_a_failed_conversion_says_how_to_go_on_and_its_rerun_finishes(
    tmp_path, monkeypatch, capsys
):
    """A job that fails for a reason nobody foresaw (not an interrupt): one line naming it,
    OUT keeps its work folder (tools call it unfinished), the same command finishes it."""
    src = good_folder(tmp_path / "src", per_class=4)
    out = tmp_path / "out"
    jobs = []
    real_items = FolderShard.items

    def fails_after_the_first_shard(self):
        jobs.append(self)
        if len(jobs) > 1:
            raise RuntimeError("the disk controller caught fire")
        yield from real_items(self)

    monkeypatch.setattr(FolderShard, "items", fails_after_the_first_shard)
    argv = ["convert", "images", str(src), str(out), "--shards", "4", "--workers", "1"]
    assert main([*argv, "-q"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        "tfrecord-tools: error: the conversion failed: RuntimeError: the disk controller "
        f"caught fire; {out} holds this conversion unfinished: run the same command again "
        "once that is fixed"
    ), err
    assert len(err.strip().splitlines()) == 1
    with pytest.raises(ConversionError, match="the disk controller caught fire") as failed:
        convert_image_folder(src, out, shards=4, **OPTIONS)
    assert isinstance(failed.value.__cause__, RuntimeError)  # the cause, for Python callers
    monkeypatch.undo()
    assert main(["count", str(out)]) == 2
    assert "unfinished conversion" in capsys.readouterr().err
    assert main(argv) == 0
    assert "resumed: 1 shards were already complete" in capsys.readouterr().out
    assert verify(out).ok
