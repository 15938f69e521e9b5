"""Sample image folders: layout, formats by magic bytes, determinism, size realism, reruns."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tfrecord_tools.sample import MARKER, SampleError, make_digits, make_photos

ROOT = Path(__file__).resolve().parents[2]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
SMALL_PHOTOS = {"count": 6, "size": (64, 48), "png_fraction": 0.5, "classes": 3}


def files(root: Path) -> dict[str, bytes]:
    """{class/name: bytes} of the visible images (the marker is hidden)."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.glob("*/*"))
        if not p.name.startswith(".")
    }


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> Path:
    return make_digits(tmp_path_factory.mktemp("sample") / "digits", count=20, seed=0)


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    return make_photos(tmp_path_factory.mktemp("sample") / "photos", seed=0, **SMALL_PHOTOS)


def test_digits_layout_is_balanced_mnist_style(digits):
    assert sorted(p.name for p in digits.iterdir()) == [MARKER, *map(str, range(10))]
    names = set(files(digits))
    assert len(names) == 20
    assert {"0/00000.png", "0/00010.png", "3/00013.png", "9/00019.png"} <= names
    assert all(len(list((digits / str(d)).iterdir())) == 2 for d in range(10))


def test_digits_are_white_on_black_28x28_gray_png(digits):
    for name, data in files(digits).items():
        assert data.startswith(PNG_MAGIC), name
        with Image.open(digits / name) as img:
            assert (img.format, img.mode, img.size) == ("PNG", "L", (28, 28))
            pixels = np.asarray(img)
        assert pixels[0, 0] == 0 and pixels.max() >= 200, name  # black corner, bright strokes
        assert 0.05 < (pixels > 0).mean() < 0.6, name


def test_photos_mix_jpeg_and_png_by_magic_bytes(photos):
    images = files(photos)
    assert sorted(p.name for p in photos.iterdir()) == [MARKER, "class_0", "class_1", "class_2"]
    per_class = Counter(name.split("/")[0] for name in images)
    assert per_class == {"class_0": 2, "class_1": 2, "class_2": 2}
    kinds = {n: "png" if d.startswith(PNG_MAGIC) else "jpg" for n, d in images.items()}
    assert all(d.startswith((PNG_MAGIC, JPEG_MAGIC)) for d in images.values())
    assert all(n.endswith("." + kind) for n, kind in kinds.items())
    assert sorted(kinds.values()) == ["jpg"] * 3 + ["png"] * 3
    for name in images:
        with Image.open(photos / name) as img:
            assert (img.mode, img.size) == ("RGB", (64, 48))


@pytest.mark.parametrize(
    ("make", "options"),
    [(make_digits, {"count": 20}), (make_photos, SMALL_PHOTOS)],
    ids=["digits", "photos"],
)
def test_same_seed_same_bytes_and_other_seed_differs(make, options, tmp_path):
    first = files(make(tmp_path / "a", seed=3, **options))
    assert first == files(make(tmp_path / "b", seed=3, **options))
    other = files(make(tmp_path / "c", seed=4, **options))
    assert not set(first.values()) & set(other.values())


def test_workers_give_the_same_bytes(photos, tmp_path):
    parallel = make_photos(tmp_path / "p", seed=0, workers=2, **SMALL_PHOTOS)
    assert files(parallel) == files(photos)


def test_sizes_look_like_real_files(digits, tmp_path):
    assert all(150 <= len(data) <= 600 for data in files(digits).values())
    full = make_photos(tmp_path / "full", count=3, png_fraction=0.0, classes=3)
    for name, data in files(full).items():
        assert data.startswith(JPEG_MAGIC), name
        assert 40_000 <= len(data) <= 200_000, (name, len(data))
        with Image.open(full / name) as img:
            assert img.size == (500, 375)


def test_rerun_with_same_parameters_leaves_files_alone(digits):
    before = {p: p.stat().st_mtime_ns for p in digits.rglob("*")}
    assert make_digits(digits, count=20, seed=0) == digits
    assert {p: p.stat().st_mtime_ns for p in digits.rglob("*")} == before


def test_rerun_repairs_and_drops_stale_files(tmp_path):
    root = make_digits(tmp_path / "d", count=20)
    (root / "4" / "00004.png").unlink()
    (root / "notes.txt").write_text("kept: not a sample file")
    assert len(files(make_digits(root, count=20))) == 20  # missing file: made again
    assert set(files(make_digits(root, count=10))) == {f"{d}/{d:05d}.png" for d in range(10)}
    assert (root / "notes.txt").exists()
    assert (root / MARKER).read_text().count('"count": 10') == 1


def test_refuses_a_folder_it_did_not_make(tmp_path):
    (tmp_path / "mine.txt").write_text("precious")
    with pytest.raises(SampleError, match="not empty and was not made by"):
        make_digits(tmp_path, count=10)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.txt"]


@pytest.mark.parametrize(
    ("make", "options", "message"),
    [
        (make_digits, {"count": 5}, "count must be an integer >= 10"),
        (make_digits, {"seed": -1}, "seed must be an integer >= 0"),
        (make_digits, {"workers": 0}, "workers must be an integer >= 1"),
        (make_photos, {"count": 2, "classes": 3}, "count must be an integer >= 3"),
        (make_photos, {"png_fraction": 1.5}, r"png_fraction must be in \[0, 1\], got 1.5"),
        (make_photos, {"size": (8, 300)}, r"size must be \(width, height\), integers >= 16"),
        (make_photos, {"quality": 0}, r"quality must be in \[1, 100\], got 0"),
        (make_photos, {"classes": 0}, "classes must be at least 1, got 0"),
    ],
)
def test_bad_options_say_what_was_expected(make, options, message, tmp_path):
    with pytest.raises(SampleError, match=message):
        make(tmp_path / "out", **options)
    assert not (tmp_path / "out").exists()


def test_script(tmp_path):
    code = (
        "import runpy, sys\n"
        f"sys.argv = ['make_sample.py', 'digits', {str(tmp_path / 'd')!r}, '--count', '10']\n"
        "try:\n"
        f"    runpy.run_path({str(ROOT / 'scripts' / 'make_sample.py')!r}, run_name='__main__')\n"
        "except SystemExit as exit:\n"
        "    assert exit.code == 0, exit.code\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "digits:" in done.stdout
    assert len(files(tmp_path / "d")) == 10
