"""Every format Pillow opens and can load becomes PNG (not "not an image"); what it cannot
load is skipped with Pillow's own reason; Pillow's and libtiff's complaints stay off stderr."""

from __future__ import annotations

import io
import json
import struct
import warnings

import numpy as np
import pytest
from PIL import Image, features

from tfrecord_tools import convert_image_folder
from tfrecord_tools.images.probe import ImageInfo, probe_image

RNG = np.random.default_rng(11)
RGB = Image.fromarray(RNG.integers(0, 256, (6, 10, 3), dtype=np.uint8))
RGBA = Image.fromarray(RNG.integers(0, 256, (6, 10, 4), dtype=np.uint8))


def encode(image: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():  # IM is deprecated (Pillow 15 drops it)
        warnings.simplefilter("ignore", DeprecationWarning)
        image.save(buffer, fmt, **params)
    return buffer.getvalue()


def _psd(pixels: np.ndarray) -> bytes:
    """A minimal Photoshop file (Pillow cannot write PSD): header, empty colour mode data,
    resources and layers, then raw planar RGB."""
    height, width, channels = pixels.shape
    header = b"8BPS" + struct.pack(">H6xHIIHH", 1, channels, height, width, 8, 3)
    sections = struct.pack(">IIIH", 0, 0, 0, 0)  # three empty sections; raw image data
    return header + sections + pixels.transpose(2, 0, 1).tobytes()


def _have(feature: str) -> bool:
    try:
        return bool(features.check(feature))
    except ValueError:
        return False


def _maybe(feature: str, make):
    return make if _have(feature) else None


# name -> (make the file's bytes, Pillow format name as converted_from, kind, channels)
FORMATS = {
    "tga": (lambda: encode(RGB, "TGA"), "tga", "rgb", 3),
    "tga rle rgba": (lambda: encode(RGBA, "TGA", compression="tga_rle"), "tga", "rgba", 4),
    "ppm": (lambda: encode(RGB, "PPM"), "ppm", "rgb", 3),
    "pgm": (lambda: encode(RGB.convert("L"), "PPM"), "ppm", "gray", 1),
    "pbm": (lambda: encode(RGB.convert("1"), "PPM"), "ppm", "gray", 1),
    "pgm 16-bit": (
        lambda: b"P5\n10 6\n65535\n" + RNG.integers(0, 65536, 60).astype(">u2").tobytes(),
        "ppm",
        "16-bit",
        1,
    ),
    "ico": (lambda: encode(RGBA, "ICO", sizes=[(10, 6)]), "ico", "rgba", 4),
    "sgi": (lambda: encode(RGB, "SGI"), "sgi", "rgb", 3),
    "pcx": (lambda: encode(RGB, "PCX"), "pcx", "rgb", 3),
    "pcx palette": (lambda: encode(RGB.quantize(16), "PCX"), "pcx", "palette", 3),
    "dib": (lambda: encode(RGB, "DIB"), "dib", "rgb", 3),
    "bmp 1-bit": (lambda: encode(RGB.convert("1"), "BMP"), "bmp", "gray", 1),
    "bmp palette": (lambda: encode(RGB.quantize(16), "BMP"), "bmp", "palette", 3),
    "dds": (lambda: encode(RGBA, "DDS"), "dds", "rgba", 4),
    "msp": (lambda: encode(RGB.convert("1"), "MSP"), "msp", "gray", 1),
    "xbm": (lambda: encode(RGB.convert("1"), "XBM"), "xbm", "gray", 1),
    "im": (lambda: encode(RGB, "IM"), "im", "rgb", 3),
    "blp": (lambda: encode(RGB.quantize(16), "BLP"), "blp", "rgb", 3),
    "qoi": (lambda: encode(RGBA, "QOI"), "qoi", "rgba", 4),
    "psd": (lambda: _psd(np.asarray(RGB)), "psd", "rgb", 3),
    "jpeg 2000": (_maybe("jpg_2000", lambda: encode(RGB, "JPEG2000")), "jpeg2000", "rgb", 3),
    "avif": (_maybe("avif", lambda: encode(RGB, "AVIF")), "avif", "rgb", 3),
}


@pytest.mark.parametrize("name", list(FORMATS))
def test_formats_pillow_reads_become_png(name: str) -> None:
    make, source, kind, channels = FORMATS[name]
    if make is None:
        pytest.skip(f"Pillow was built without {name}")
    data = make()
    stored, info = probe_image(data, path=f"x/{name}")
    assert stored[:8] == b"\x89PNG\r\n\x1a\n"
    assert info == ImageInfo("png", 6, 10, channels, kind, converted_from=source)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        expected = Image.open(io.BytesIO(data))
        expected.load()
    got = Image.open(io.BytesIO(stored))
    if kind == "16-bit":
        np.testing.assert_array_equal(np.asarray(got), np.asarray(expected))
    else:
        mode = {1: "L", 3: "RGB", 4: "RGBA"}[channels]
        np.testing.assert_array_equal(
            np.asarray(got.convert(mode)), np.asarray(expected.convert(mode))
        )


def _corrupt_tiff() -> bytes:
    """An LZW TIFF with garbled strip data: libtiff prints its complaint to stderr itself."""
    image = Image.fromarray(RNG.integers(0, 256, (60, 100, 3), dtype=np.uint8))
    data = bytearray(encode(image, "TIFF", compression="tiff_lzw"))
    for i in range(20, 2000):  # Pillow writes the strips first, the IFD last
        data[i] ^= 0x5A
    return bytes(data)


def _tiff_with_bad_exif() -> bytes:
    """A TIFF whose EXIF IFD points past the end: Pillow warns "Corrupt EXIF data"."""
    data = bytearray(encode(RGB, "TIFF", tiffinfo={34665: 10_000}))
    return bytes(data)


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    src = tmp_path_factory.mktemp("formats-src")
    good = src / "good"
    good.mkdir()
    for name, (make, *_rest) in FORMATS.items():
        if make is not None:  # names without extensions: the bytes decide
            (good / name.replace(" ", "_")).write_bytes(make())
    bad = src / "bad"
    bad.mkdir()
    (bad / "notes.txt").write_text("just some notes\n" * 10)
    (bad / "truncated.tga").write_bytes(encode(RGB, "TGA")[:60])
    (bad / "cut.tif").write_bytes(_corrupt_tiff())
    (bad / "drawing.eps").write_bytes(
        b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 6\n" + b"%" * 64 + b"\n"
    )
    (good / "bad-exif.tif").write_bytes(_tiff_with_bad_exif())
    out = tmp_path_factory.mktemp("formats-out")
    return src, out


def test_a_folder_of_them_converts_quietly(converted, capfd) -> None:
    src, out = converted
    summary = convert_image_folder(src, out, workers=1, quiet=True)
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out == ""  # no Pillow warnings, no libtiff text
    made = sum(make is not None for make, *_ in FORMATS.values())
    assert summary.num_examples == made + 1  # and the TIFF with bad EXIF
    assert summary.image_formats == {"png": made + 1}
    reasons = json.loads((out / "dataset.json").read_text())["source"]["skipped"]
    reasons = {s["path"]: s["reason"] for s in reasons}
    assert reasons["bad/notes.txt"] == "not an image"
    assert reasons["bad/truncated.tga"].startswith("unsupported image (TGA, Pillow: ")
    assert reasons["bad/cut.tif"].startswith("unsupported image (TIFF, Pillow: ")
    assert reasons["bad/drawing.eps"] == (
        "unsupported image (EPS, PostScript, which Pillow would run Ghostscript on)"
    )
    assert len(reasons) == 4


def test_skip_reasons_name_what_pillow_said() -> None:
    from tfrecord_tools.errors import InvalidImageError

    with pytest.raises(InvalidImageError) as caught:
        probe_image(encode(RGB, "TGA")[:60], path="a/b.tga")
    assert caught.value.reason == "unsupported image (TGA, Pillow: image file is truncated)"
    assert str(caught.value).startswith("a/b.tga: unsupported image (TGA, Pillow: ")
    with pytest.raises(InvalidImageError) as caught:
        probe_image(b"just some notes\n" * 10)
    assert caught.value.reason == "not an image"
    assert "Pillow: cannot identify image file" in str(caught.value)
