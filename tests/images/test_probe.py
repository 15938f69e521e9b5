"""probe_image / sniff_format: format from content, dims and TF's channel count from headers,
other formats converted to PNG, and each rejection reason triggered on purpose."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import tracemalloc
import zlib
from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image

from tfrecord_tools.errors import InvalidImageError
from tfrecord_tools.images.probe import ImageInfo, probe_image, sniff_format

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, size=(6, 10, 3), dtype=np.uint8)  # 6 high, 10 wide: no h/w mix-up
GRAY = RNG.integers(0, 256, size=(6, 10), dtype=np.uint8)
GRAY16 = RNG.integers(0, 65536, size=(6, 10), dtype=np.uint16)


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def rgb(mode: str = "RGB") -> Image.Image:
    return Image.fromarray(RGB).convert(mode)


def gray(mode: str = "L") -> Image.Image:
    return Image.fromarray(GRAY).convert(mode)


def palette() -> Image.Image:
    return rgb().quantize(16)


def png_chunk(ctype: bytes, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload))
        + ctype
        + payload
        + struct.pack(">I", zlib.crc32(ctype + payload))
    )


def crafted_png(width: int, height: int, color_type: int = 0, depth: int = 8) -> bytes:
    """A PNG whose IHDR claims any size, with a tiny IDAT: headers only, nothing to decode."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b"\x00"))
        + png_chunk(b"IEND", b"")
    )


def jpeg_sof_offset(data: bytes) -> int:
    return data.index(b"\xff\xc0")


def jpeg_scan_offset(data: bytes) -> int:
    """Where the first scan's entropy-coded data starts."""
    sos = data.index(b"\xff\xda")
    return sos + 2 + int.from_bytes(data[sos + 2 : sos + 4], "big")


JPEG_RGB = encode(rgb(), "JPEG", quality=90)
PNG_RGB = encode(rgb(), "PNG")
PHOTO_JPEG = encode(
    Image.fromarray(RNG.integers(0, 256, size=(96, 128, 3), dtype=np.uint8)), "JPEG", quality=95
)


# --- sniffing --------------------------------------------------------------------------------

SNIFF_CASES = {
    "jpeg": JPEG_RGB,
    "png": PNG_RGB,
    "gif": encode(palette(), "GIF"),
    "bmp": encode(rgb(), "BMP"),
    "webp": encode(rgb(), "WEBP", lossless=True),
    "tiff": encode(rgb(), "TIFF"),
}


@pytest.mark.parametrize("fmt", sorted(SNIFF_CASES))
def test_sniff_ignores_the_file_name(tmp_path, fmt: str) -> None:
    misleading = tmp_path / ("image.png" if fmt != "png" else "image.jpg")
    misleading.write_bytes(SNIFF_CASES[fmt])
    data = misleading.read_bytes()
    assert sniff_format(data) == fmt
    _, info = probe_image(data, path=str(misleading))
    stored_as_is = fmt in ("jpeg", "png")
    assert info.format == (fmt if stored_as_is else "png")
    assert info.converted_from == (None if stored_as_is else fmt)
    assert (info.height, info.width) == (6, 10)


@pytest.mark.parametrize("data", [b"", b"hello world\n", b"BM is a car brand, " * 3, b"\xff\xd8"])
def test_sniff_rejects_non_images(data: bytes) -> None:
    assert sniff_format(data) is None


# --- JPEG and PNG: stored unchanged, dims and channels from headers --------------------------

# name -> (bytes, expected info)
STORED_CASES: dict[str, tuple[bytes, ImageInfo]] = {
    "jpeg rgb": (JPEG_RGB, ImageInfo("jpeg", 6, 10, 3, "rgb")),
    "jpeg gray": (encode(gray(), "JPEG"), ImageInfo("jpeg", 6, 10, 1, "gray")),
    "jpeg cmyk": (encode(rgb("CMYK"), "JPEG"), ImageInfo("jpeg", 6, 10, 3, "cmyk")),
    "jpeg progressive": (
        encode(rgb(), "JPEG", progressive=True),
        ImageInfo("jpeg", 6, 10, 3, "rgb"),
    ),
    "png rgb": (PNG_RGB, ImageInfo("png", 6, 10, 3, "rgb")),
    "png gray": (encode(gray(), "PNG"), ImageInfo("png", 6, 10, 1, "gray")),
    "png 1-bit": (encode(gray("1"), "PNG"), ImageInfo("png", 6, 10, 1, "gray")),
    "png rgba": (encode(rgb("RGBA"), "PNG"), ImageInfo("png", 6, 10, 4, "rgba")),
    "png gray+alpha": (encode(gray("LA"), "PNG"), ImageInfo("png", 6, 10, 2, "gray+alpha")),
    "png palette": (encode(palette(), "PNG"), ImageInfo("png", 6, 10, 3, "palette")),
    "png palette+tRNS": (
        encode(palette(), "PNG", transparency=2),
        ImageInfo("png", 6, 10, 4, "palette"),
    ),
    "png gray+tRNS": (
        encode(gray(), "PNG", transparency=7),
        ImageInfo("png", 6, 10, 1, "gray"),
    ),
    "png rgb+tRNS": (
        encode(rgb(), "PNG", transparency=(1, 2, 3)),
        ImageInfo("png", 6, 10, 3, "rgb"),
    ),
    "png 16-bit": (
        encode(Image.fromarray(GRAY16), "PNG"),
        ImageInfo("png", 6, 10, 1, "16-bit"),
    ),
}


@pytest.mark.parametrize("name", list(STORED_CASES))
def test_jpeg_and_png_are_stored_unchanged(name: str) -> None:
    data, expected = STORED_CASES[name]
    stored, info = probe_image(data)
    assert stored is data
    assert info == expected


def test_png_trns_chunk_is_really_there() -> None:
    for name in ("png palette+tRNS", "png gray+tRNS", "png rgb+tRNS"):
        assert b"tRNS" in STORED_CASES[name][0], name


def test_trailing_bytes_after_jpeg_eoi_are_allowed() -> None:
    for tail in (b"\x00" * 4096, b"camera maker trailer" * 50):
        data = PHOTO_JPEG + tail
        assert probe_image(data)[0] is data


def test_channels_match_tensorflow() -> None:
    """ImageInfo.channels is what decode_jpeg / decode_png(channels=0) return in TF."""
    tf = pytest.importorskip("tensorflow")
    converted = {
        "gif with transparency": encode(palette(), "GIF", transparency=2),
        "tiff cmyk": encode(rgb("CMYK"), "TIFF"),
        "tiff la": encode(gray("LA"), "TIFF"),
    }
    cases = {name: data for name, (data, _) in STORED_CASES.items()} | converted
    for name, data in cases.items():
        stored, info = probe_image(data)
        decode = tf.io.decode_jpeg if info.format == "jpeg" else tf.io.decode_png
        shape = tuple(decode(stored, channels=0).shape)
        assert shape == (info.height, info.width, info.channels), name


# --- other formats: converted to PNG ---------------------------------------------------------

# name -> (source bytes, source format, mode Pillow compares in, expected kind, channels)
CONVERT_CASES = {
    "bmp rgb": (encode(rgb(), "BMP"), "bmp", "RGB", "rgb", 3),
    "bmp gray": (encode(gray(), "BMP"), "bmp", "L", "gray", 1),
    "bmp 1-bit": (encode(gray("1"), "BMP"), "bmp", "L", "gray", 1),
    "gif": (encode(palette(), "GIF"), "gif", "P", "palette", 3),
    "gif transparent": (encode(palette(), "GIF", transparency=2), "gif", "RGBA", "rgba", 4),
    "webp rgb": (encode(rgb(), "WEBP", lossless=True), "webp", "RGB", "rgb", 3),
    "webp rgba": (
        encode(Image.fromarray(RNG.integers(0, 256, (6, 10, 4), np.uint8)), "WEBP", lossless=True),
        "webp",
        "RGBA",
        "rgba",
        4,
    ),
    "tiff rgb": (encode(rgb(), "TIFF"), "tiff", "RGB", "rgb", 3),
    "tiff rgba": (encode(rgb("RGBA"), "TIFF"), "tiff", "RGBA", "rgba", 4),
    "tiff gray+alpha": (encode(gray("LA"), "TIFF"), "tiff", "LA", "gray+alpha", 2),
    "tiff cmyk": (encode(rgb("CMYK"), "TIFF"), "tiff", "RGB", "rgb", 3),
    "tiff 16-bit": (encode(Image.fromarray(GRAY16), "TIFF"), "tiff", "I;16", "16-bit", 1),
    "tiff palette": (encode(palette(), "TIFF"), "tiff", "P", "palette", 3),
}


@pytest.mark.parametrize("name", list(CONVERT_CASES))
def test_other_formats_become_png_with_the_same_pixels(name: str) -> None:
    data, source_format, mode, kind, channels = CONVERT_CASES[name]
    stored, info = probe_image(data)
    assert stored[:8] == b"\x89PNG\r\n\x1a\n"
    assert info == ImageInfo("png", 6, 10, channels, kind, converted_from=source_format)
    assert probe_image(stored)[1] == ImageInfo("png", 6, 10, channels, kind)
    expected = Image.open(io.BytesIO(data)).convert(mode)
    got = Image.open(io.BytesIO(stored))
    if mode == "P":  # compare colours, not palette indices
        expected, got = expected.convert("RGB"), got.convert("RGB")
    np.testing.assert_array_equal(np.asarray(got), np.asarray(expected))


def test_animated_gif_keeps_the_first_frame() -> None:
    frames = [Image.new("RGB", (10, 6), colour) for colour in ("red", "blue")]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:])
    stored, info = probe_image(buffer.getvalue())
    assert info.converted_from == "gif"
    assert Image.open(io.BytesIO(stored)).convert("RGB").getpixel((0, 0)) == (255, 0, 0)


# --- rejections ------------------------------------------------------------------------------


def _truncated_mid_scan() -> bytes:
    start = jpeg_scan_offset(PHOTO_JPEG)
    return PHOTO_JPEG[: (start + len(PHOTO_JPEG)) // 2]


def _jpeg_without_sof() -> bytes:
    sof = jpeg_sof_offset(JPEG_RGB)
    length = int.from_bytes(JPEG_RGB[sof + 2 : sof + 4], "big")
    return JPEG_RGB[:sof] + JPEG_RGB[sof + 2 + length :]


def _jpeg_patched(offset_from_sof: int, value: int) -> bytes:
    data = bytearray(JPEG_RGB)
    data[jpeg_sof_offset(JPEG_RGB) + offset_from_sof] = value
    return bytes(data)


def _jpeg_huge() -> bytes:
    data = bytearray(JPEG_RGB)
    sof = jpeg_sof_offset(JPEG_RGB)
    data[sof + 5 : sof + 9] = struct.pack(">HH", 60000, 60000)
    return bytes(data)


def _png_flipped_idat_byte() -> bytes:
    data = bytearray(PNG_RGB)
    data[PNG_RGB.index(b"IDAT") + 10] ^= 0x01
    return bytes(data)


def _png_without_iend() -> bytes:
    return PNG_RGB[: PNG_RGB.index(b"IEND") - 4]


def _png_bad_ihdr() -> bytes:
    ihdr = struct.pack(">IIBBBBB", 10, 6, 8, 5, 0, 0, 0)  # colour type 5 does not exist
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + PNG_RGB[33:]


def _bmp_huge() -> bytes:
    data = bytearray(encode(rgb(), "BMP"))
    data[18:26] = struct.pack("<ii", 100_000, 100_000)
    return bytes(data)


# name -> (bytes, reason)
ERROR_CASES: dict[str, tuple[bytes, str]] = {
    "empty": (b"", "empty file"),
    "text": (b"just some notes\n" * 10, "not an image"),
    "jpeg cut mid-scan": (_truncated_mid_scan(), "truncated JPEG"),
    "jpeg cut in headers": (JPEG_RGB[:100], "truncated JPEG"),
    "jpeg scan before frame": (_jpeg_without_sof(), "corrupt JPEG"),
    "jpeg 12-bit": (_jpeg_patched(4, 12), "unsupported image"),
    "jpeg lossless": (_jpeg_patched(1, 0xC3), "unsupported image"),
    "jpeg huge": (_jpeg_huge(), "image too large"),
    "png flipped IDAT byte": (_png_flipped_idat_byte(), "PNG chunk CRC mismatch"),
    "png without IEND": (_png_without_iend(), "truncated PNG"),
    "png cut mid-IDAT": (PNG_RGB[: PNG_RGB.index(b"IDAT") + 20], "truncated PNG"),
    "png bad IHDR": (_png_bad_ihdr(), "corrupt PNG"),
    "png huge": (crafted_png(100_000, 100_000), "image too large"),
    "png wider than libpng allows": (crafted_png(1_000_001, 1), "unsupported image"),
    "bmp huge": (_bmp_huge(), "image too large"),
    "gif garbage": (
        b"GIF89a" + b"\x00" * 3,
        "unsupported image (GIF, Pillow: cannot identify image file)",
    ),
    "eps": (
        b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 6\n" + b"%" * 64 + b"\n",
        "unsupported image (EPS, PostScript, which Pillow would run Ghostscript on)",
    ),
}


@pytest.mark.parametrize("name", list(ERROR_CASES))
def test_rejections_name_their_reason(name: str) -> None:
    data, reason = ERROR_CASES[name]
    with pytest.raises(InvalidImageError) as caught:
        probe_image(data, path="a/b.img")
    assert caught.value.reason == reason
    assert caught.value.path == "a/b.img"
    assert str(caught.value).startswith(f"a/b.img: {reason}")


def test_huge_header_is_rejected_without_allocating() -> None:
    tracemalloc.start()
    try:
        for data in (crafted_png(60_000, 60_000, 6, 16), _jpeg_huge(), _bmp_huge()):
            with pytest.raises(InvalidImageError, match="image too large"):
                probe_image(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000


def test_max_pixels_applies_to_every_format() -> None:
    for data in (JPEG_RGB, PNG_RGB, SNIFF_CASES["bmp"]):
        assert probe_image(data, max_pixels=60)[1].width == 10
        with pytest.raises(InvalidImageError, match="image too large"):
            probe_image(data, max_pixels=59)


def test_error_without_path_has_no_path() -> None:
    with pytest.raises(InvalidImageError) as caught:
        probe_image(b"")
    assert caught.value.path is None
    assert str(caught.value) == "empty file"


def test_unknown_validate_mode_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="validate"):
        probe_image(JPEG_RGB, validate="paranoid")


# --- validate="decode" -----------------------------------------------------------------------


def _jpeg_bad_entropy_data() -> bytes:
    """A frame marker in the middle of the scan: libjpeg fails ("two SOF markers"), yet the
    headers are fine and the file still ends in FF D9."""
    start = jpeg_scan_offset(PHOTO_JPEG)
    middle = (start + len(PHOTO_JPEG)) // 2
    return PHOTO_JPEG[:middle] + b"\xff\xc0\x00\x11" + PHOTO_JPEG[middle + 4 :]


def _png_bad_zlib_good_crc() -> bytes:
    pos = PNG_RGB.index(b"IDAT") - 4
    length = int.from_bytes(PNG_RGB[pos : pos + 4], "big")
    payload = bytearray(PNG_RGB[pos + 8 : pos + 8 + length])
    payload[2:6] = b"\xff\xff\xff\xff"  # an invalid deflate block, with a CRC to match
    return PNG_RGB[:pos] + png_chunk(b"IDAT", bytes(payload)) + PNG_RGB[pos + 12 + length :]


@pytest.mark.parametrize("make", [_jpeg_bad_entropy_data, _png_bad_zlib_good_crc])
def test_decode_validation_catches_corrupt_image_data(make: Callable[[], bytes]) -> None:
    data = make()
    assert probe_image(data)[0] is data  # header checks cannot see it
    with pytest.raises(InvalidImageError) as caught:
        probe_image(data, validate="decode", path="x")
    assert caught.value.reason == "decode failed"


def test_decode_validation_passes_good_images() -> None:
    for data in (JPEG_RGB, PNG_RGB, PHOTO_JPEG):
        assert probe_image(data, validate="decode")[0] is data


# --- import weight ---------------------------------------------------------------------------


def test_fast_path_imports_neither_tensorflow_nor_pillow(tmp_path) -> None:
    image = tmp_path / "photo.jpg"
    image.write_bytes(PHOTO_JPEG)
    code = (
        "import sys, tfrecord_tools.images.probe as p;"
        "p.probe_image(open(sys.argv[1], 'rb').read());"
        "print(sorted(m for m in ('tensorflow', 'PIL') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(image)], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
