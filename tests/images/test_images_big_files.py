"""A big file is read whole only once its first bytes show an acceptable image: a 3 GB
non-image named ``movie.jpg`` is skipped after a small prefix (sparse files: no disk used)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tfrecord_tools import convert_image_folder
from tfrecord_tools.errors import InvalidImageError
from tfrecord_tools.images.probe import PREFIX_BYTES, read_image

BIG = 3 << 30  # 3 GiB, sparse


def _sparse(path: Path, size: int = BIG, head: bytes = b"") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(head)
        f.truncate(size)
    return path


def _png(height: int, width: int) -> bytes:
    buffer = io.BytesIO()
    noise = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    Image.fromarray(noise).save(buffer, "PNG")
    return buffer.getvalue()


def _rchar() -> int:
    """Bytes this process has read through read(2)-like calls so far (Linux)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


@pytest.fixture
def folder(tmp_path) -> Path:
    src = tmp_path / "src"
    _sparse(src / "videos" / "movie.jpg")
    (src / "videos" / "frame.png").write_bytes(_png(6, 10))
    return src


@pytest.mark.skipif(not os.path.exists("/proc/self/io"), reason="needs Linux's /proc/self/io")
def test_a_huge_non_image_is_skipped_after_a_prefix(folder, tmp_path) -> None:
    before = _rchar()
    summary = convert_image_folder(folder, tmp_path / "out", workers=1, quiet=True)
    read = _rchar() - before
    assert summary.num_examples == 1
    assert summary.skipped == [("videos/movie.jpg", "not an image")]
    assert read < 20 << 20, f"read {read:,} bytes"  # of a 3 GiB file (and Pillow's modules)


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads VmHWM")
def test_peak_memory_stays_far_below_the_file_size(folder, tmp_path) -> None:
    """The conversion in a process of its own: its peak RSS is that of Python + Pillow."""
    code = textwrap.dedent(
        """
        import json, sys
        from tfrecord_tools import convert_image_folder
        summary = convert_image_folder(sys.argv[1], sys.argv[2], workers=1, quiet=True)
        # VmHWM, not ru_maxrss: the latter keeps a forking parent's size across exec
        with open("/proc/self/status") as status:
            peak = next(int(l.split()[1]) * 1024 for l in status if l.startswith("VmHWM"))
        print(json.dumps({"peak": peak, "skipped": summary.skipped}))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(folder), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(out.stdout)
    assert result["skipped"] == [["videos/movie.jpg", "not an image"]]
    assert result["peak"] < 300 << 20, f"peak RSS {result['peak']:,} bytes"


# --- read_image itself -------------------------------------------------------------------------


def _read(path: Path) -> tuple[bytes | InvalidImageError, int]:
    with open(path, "rb", buffering=0) as f:
        try:
            return read_image(f), f.tell()
        except InvalidImageError as err:
            return err, f.tell()


JPEG_HEAD = bytes.fromhex("ffd8ffe000104a46494600010100000100010000")  # SOI + JFIF APP0
HUGE_SOF = bytes.fromhex("ffc0001108ea60ea6003012200021101031101")  # 60000 x 60000


@pytest.mark.parametrize(
    ("head", "reason"),
    [
        (b"", "not an image"),
        (b"just some text, a lot of it\n", "not an image"),
        (JPEG_HEAD + HUGE_SOF, "image too large"),
        (_png(1, 1)[:16] + bytes.fromhex("0000ea600000ea6008020000"), "image too large"),
        (b"P6\n60000 60000\n255\n", "image too large"),  # a format only Pillow knows
        (b"MM\x00*\x00\x00\x00\x08" + bytes(64), "unsupported image"),  # a TIFF, broken
    ],
    ids=["zeros", "text", "huge jpeg", "huge png", "huge ppm", "broken tiff"],
)
def test_rejections_cost_a_prefix(tmp_path, head, reason) -> None:
    got, position = _read(_sparse(tmp_path / "f.jpg", head=head))
    assert isinstance(got, InvalidImageError)
    assert got.reason.startswith(reason)
    assert position <= PREFIX_BYTES  # Pillow's header parsers read through their own window


@pytest.mark.parametrize("fmt", ["PNG", "TIFF", "PPM", "JPEG"])
def test_big_images_are_still_read_whole(tmp_path, fmt) -> None:
    buffer = io.BytesIO()
    noise = np.random.default_rng(1).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    Image.fromarray(noise).save(buffer, fmt)
    data = buffer.getvalue()
    assert len(data) > PREFIX_BYTES
    path = tmp_path / "big"
    path.write_bytes(data)
    assert _read(path) == (data, len(data))


def test_a_jpeg_whose_headers_outgrow_the_prefix_is_read_whole(tmp_path) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (10, 6)).save(buffer, "JPEG")
    jpeg = buffer.getvalue()
    comments = b"".join(b"\xff\xfe\xff\xff" + bytes(65533) for _ in range(3))  # 192 KiB of COM
    data = jpeg[:2] + comments + jpeg[2:]
    path = tmp_path / "x.jpg"
    path.write_bytes(data)
    assert _read(path) == (data, len(data))
