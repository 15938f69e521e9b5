"""Every Pillow mode keeps its values when an image is re-encoded as PNG: an image of each
mode is saved (TIFF, or a format that reads back in that mode), converted by probe_image,
and the stored PNG is decoded and compared with values computed here from the source
arrays (not with Pillow's own conversion), so a mode clipped to a constant cannot pass."""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image, ImageCms

from tfrecord_tools.images.probe import probe_image

tf = pytest.importorskip("tensorflow")

RNG = np.random.default_rng(7)
H, W = 6, 10
U8 = RNG.integers(0, 256, (H, W, 4), dtype=np.uint8)
U16 = RNG.integers(0, 65536, (H, W), dtype=np.uint16)
U16[0, :3] = (0, 300, 65535)  # above 255: what clipping to 8 bits would flatten
INDICES = RNG.integers(0, 16, (H, W), dtype=np.uint8)
PALETTE = RNG.integers(0, 256, (16, 3), dtype=np.uint8)


def _save(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():  # IM is deprecated (Pillow 15 drops it)
        warnings.simplefilter("ignore", DeprecationWarning)
        image.save(buffer, fmt)
    return buffer.getvalue()


def _uint16(mode: str) -> Image.Image:
    order = ">u2" if mode == "I;16B" else "<u2"
    return Image.frombytes(mode, (W, H), U16.astype(order).tobytes())


def _palette(with_alpha: bool) -> Image.Image:
    image = Image.fromarray(INDICES, "L")
    image = image.convert("P")  # indices kept: L -> P without quantising
    image.putpalette(PALETTE.tobytes())
    if with_alpha:
        image = image.convert("PA")
        image.putalpha(Image.fromarray(U8[..., 3]))
    return image


def _stretch(values: np.ndarray) -> np.ndarray:
    low, high = values.min(), values.max()
    return np.rint((values - low) * (65535 / (high - low)))


INT32_WIDE = RNG.integers(-100_000, 200_000, (H, W)).astype(np.int32)
FLOAT_UNIT = RNG.random((H, W)).astype(np.float32)
FLOAT_WIDE = RNG.normal(0, 1000, (H, W)).astype(np.float32)
FLOAT_NAN = FLOAT_WIDE.copy()
FLOAT_NAN[1, 1] = np.nan
FLOAT_NAN[2, 2] = np.inf
CMYK = U8
YCC = U8[..., :3]
LAB_SOURCE = Image.fromarray(U8[..., :3])
_SRGB, _LAB = ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB")
LAB = ImageCms.applyTransform(LAB_SOURCE, ImageCms.buildTransform(_SRGB, _LAB, "RGB", "LAB"))


def _ycc_to_rgb(ycc: np.ndarray) -> np.ndarray:
    y, cb, cr = (ycc[..., i].astype(float) - (0, 128, 128)[i] for i in range(3))
    rgb = np.stack([y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb], -1)
    return np.clip(np.rint(rgb), 0, 255)


def _float_nan_expected() -> np.ndarray:
    finite = FLOAT_NAN[np.isfinite(FLOAT_NAN)]
    values = np.where(np.isnan(FLOAT_NAN), finite.min(), FLOAT_NAN)
    expected = _stretch(np.clip(values, finite.min(), finite.max()).astype(np.float64))
    expected[1, 1] = 0  # NaN
    return expected


# name -> (source image, format to save it in, mode it reads back in, expected PNG mode,
#          expected pixels, tolerance)
Case = tuple[Callable[[], Image.Image], str, str, str, Callable[[], np.ndarray], int]
CASES: dict[str, Case] = {
    "1": (
        lambda: Image.fromarray(U8[..., 0] > 127),
        "TIFF",
        "1",
        "L",
        lambda: np.where(U8[..., 0] > 127, 255, 0),
        0,
    ),
    "L": (lambda: Image.fromarray(U8[..., 0]), "TIFF", "L", "L", lambda: U8[..., 0], 0),
    "P": (lambda: _palette(False), "TIFF", "P", "P", lambda: PALETTE[INDICES], 0),
    "PA": (
        lambda: _palette(True),
        "TIFF",
        "PA",
        "RGBA",
        lambda: np.dstack([PALETTE[INDICES], U8[..., 3]]),
        0,
    ),
    "LA": (lambda: Image.fromarray(U8[..., :2], "LA"), "TIFF", "LA", "LA", lambda: U8[..., :2], 0),
    "I in 0..65535": (
        lambda: Image.fromarray(U16.astype(np.int32)),
        "TIFF",
        "I",
        "I;16",
        lambda: U16,
        0,
    ),
    "I beyond 16 bits": (
        lambda: Image.fromarray(INT32_WIDE),
        "TIFF",
        "I",
        "I;16",
        lambda: _stretch(INT32_WIDE.astype(np.float64)),
        0,
    ),
    "I;16": (lambda: _uint16("I;16"), "TIFF", "I;16", "I;16", lambda: U16, 0),
    "I;16B": (lambda: _uint16("I;16B"), "TIFF", "I;16B", "I;16", lambda: U16, 0),
    "I;16B as IM": (lambda: _uint16("I;16B"), "IM", "I;16B", "I;16", lambda: U16, 0),
    "I;16L": (lambda: _uint16("I;16L"), "TIFF", "I;16", "I;16", lambda: U16, 0),
    "I;16L as IM": (lambda: _uint16("I;16L"), "IM", "I;16L", "I;16", lambda: U16, 0),
    "F in 0..1": (
        lambda: Image.fromarray(FLOAT_UNIT),
        "TIFF",
        "F",
        "I;16",
        lambda: np.rint(FLOAT_UNIT.astype(np.float64) * 65535),
        0,
    ),
    "F in 0..65535": (
        lambda: Image.fromarray(U16.astype(np.float32) + 0.25),
        "TIFF",
        "F",
        "I;16",
        lambda: U16,
        0,
    ),
    "F wide": (
        lambda: Image.fromarray(FLOAT_WIDE),
        "TIFF",
        "F",
        "I;16",
        lambda: _stretch(FLOAT_WIDE.astype(np.float64)),
        1,  # float32 vs float64 rounding at the edges
    ),
    "F with NaN and inf": (
        lambda: Image.fromarray(FLOAT_NAN),
        "TIFF",
        "F",
        "I;16",
        _float_nan_expected,
        1,
    ),
    "RGB": (lambda: Image.fromarray(U8[..., :3]), "TIFF", "RGB", "RGB", lambda: U8[..., :3], 0),
    "RGBA": (lambda: Image.fromarray(U8, "RGBA"), "TIFF", "RGBA", "RGBA", lambda: U8, 0),
    "CMYK": (
        lambda: Image.frombytes("CMYK", (W, H), CMYK.tobytes()),
        "TIFF",
        "CMYK",
        "RGB",
        lambda: np.rint((255.0 - CMYK[..., :3]) * (255.0 - CMYK[..., 3:]) / 255),
        0,
    ),
    "YCbCr": (
        lambda: Image.frombytes("YCbCr", (W, H), YCC.tobytes()),
        "TIFF",
        "YCbCr",
        "RGB",
        lambda: _ycc_to_rgb(YCC),
        1,
    ),
    # 8-bit L*a*b* cannot hold sRGB exactly: the round trip lands near the source colours
    "LAB": (lambda: LAB, "TIFF", "LAB", "RGB", lambda: U8[..., :3], 24),
}


@pytest.mark.parametrize("name", list(CASES))
def test_every_mode_keeps_its_values(name: str) -> None:
    make, fmt, read_mode, png_mode, expected, tolerance = CASES[name]
    source = _save(make(), fmt)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        assert Image.open(io.BytesIO(source)).mode == read_mode  # the mode is really tested
    stored, info = probe_image(source)
    png = Image.open(io.BytesIO(stored))
    assert png.format == "PNG" and png.mode == png_mode
    if png_mode == "I;16":
        assert stored[24] == 16 and info.kind == "16-bit"  # a 16-bit PNG: all 16 bits kept
    got = np.asarray(png.convert("RGB") if png_mode == "P" else png).astype(np.int64)
    want = np.asarray(expected()).astype(np.int64)
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= tolerance
    assert len(np.unique(got)) > 1  # never a constant image


def test_16_bit_values_reach_tensorflow_unchanged() -> None:
    stored, _ = probe_image(_save(_uint16("I;16B"), "TIFF"))
    decoded = tf.io.decode_png(stored, dtype=tf.uint16).numpy()[..., 0]
    np.testing.assert_array_equal(decoded, U16)
    as_uint8 = tf.io.decode_png(stored).numpy()[..., 0].astype(int)  # scaled, not clipped
    assert np.abs(as_uint8 - np.rint(U16 / 257)).max() <= 1


def test_big_endian_16_bit_is_not_a_constant_image() -> None:
    """The reported bug: I;16B became I;16 through Pillow's convert, clipped at 255."""
    ramp = np.linspace(1000, 60000, H * W).reshape(H, W).astype(">u2")
    stored, _ = probe_image(_save(Image.frombytes("I;16B", (W, H), ramp.tobytes()), "TIFF"))
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(stored))), ramp)
