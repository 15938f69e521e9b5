"""encode_png / encode_png_batch: valid PNGs that decode to exactly the input pixels."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from tfrecord_tools.images.pngenc import encode_png, encode_png_batch


def _decode(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)))


def _chunks(png: bytes) -> list[tuple[bytes, bytes, int]]:
    """(type, payload, stored CRC) of each chunk."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    out, pos = [], 8
    while pos < len(png):
        length, ctype = struct.unpack_from(">I4s", png, pos)
        payload = png[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack_from(">I", png, pos + 8 + length)
        out.append((ctype, payload, crc))
        pos += 12 + length
    return out


def _digits(n: int, seed: int = 0) -> np.ndarray:
    """MNIST-like images: a bright blurred stroke on black."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, 28, 28), dtype=np.uint8)
    for image in images:
        rows = rng.integers(6, 22, size=2)
        cols = rng.integers(6, 22, size=2)
        for t in np.linspace(0.0, 1.0, 40):
            r = int(rows[0] + t * (rows[1] - rows[0]))
            c = int(cols[0] + t * (cols[1] - cols[0]))
            image[r - 1 : r + 2, c - 1 : c + 2] = 255
        image[:] = (image.astype(np.float32) * rng.uniform(0.6, 1.0)).astype(np.uint8)
    return images


@pytest.mark.parametrize(
    ("shape", "mode"),
    [((5, 7), "L"), ((5, 7, 1), "L"), ((5, 7, 2), "LA"), ((5, 7, 3), "RGB"), ((5, 7, 4), "RGBA")],
)
def test_round_trip_each_channel_count(shape: tuple[int, ...], mode: str) -> None:
    pixels = np.random.default_rng(1).integers(0, 256, size=shape, dtype=np.uint8)
    png = encode_png(pixels)
    image = Image.open(io.BytesIO(png))
    assert image.mode == mode
    np.testing.assert_array_equal(np.asarray(image).reshape(shape), pixels)


def test_structure_is_ihdr_one_idat_iend_with_correct_crcs() -> None:
    png = encode_png(_digits(1)[0])
    chunks = _chunks(png)
    assert [c[0] for c in chunks] == [b"IHDR", b"IDAT", b"IEND"]
    for ctype, payload, crc in chunks:
        assert zlib.crc32(ctype + payload) == crc
    width, height, depth, color_type, *_ = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (width, height, depth, color_type) == (28, 28, 8, 0)


def test_batch_matches_inputs_and_single_form() -> None:
    images = _digits(50)
    pngs = encode_png_batch(images)
    assert len(pngs) == 50
    for png, image in zip(pngs, images, strict=True):
        np.testing.assert_array_equal(_decode(png), image)
    assert encode_png(images[3]) == pngs[3]


def test_batch_larger_than_one_filtering_chunk() -> None:
    images = np.random.default_rng(2).integers(0, 256, size=(900, 24, 24), dtype=np.uint8)
    pngs = encode_png_batch(images, level=1)
    for index in (0, 450, 899):
        np.testing.assert_array_equal(_decode(pngs[index]), images[index])


def test_non_contiguous_input_and_empty_batch() -> None:
    images = _digits(4)[:, ::2, ::-1]
    for png, image in zip(encode_png_batch(images), images, strict=True):
        np.testing.assert_array_equal(_decode(png), image)
    assert encode_png_batch(np.zeros((0, 28, 28), dtype=np.uint8)) == []


def test_digits_are_about_as_small_as_pillow() -> None:
    images = _digits(100)
    ours = np.mean([len(p) for p in encode_png_batch(images)])
    pillow = []
    for image in images:
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, "PNG")
        pillow.append(len(buffer.getvalue()))
    assert ours <= 1.05 * np.mean(pillow)


def test_textured_rgb_picks_a_predicting_filter() -> None:
    # A smooth gradient: Up/Paeth leave near-constant bytes, None does not.
    y, x = np.mgrid[0:32, 0:32]
    image = np.stack([x * 7, y * 5, (x + y) * 3], axis=-1).astype(np.uint8)
    png = encode_png(image)
    raw = zlib.decompress(_chunks(png)[1][1])
    assert raw[0] in (2, 4)  # the filter byte of the first scanline
    np.testing.assert_array_equal(_decode(png), image)


@pytest.mark.parametrize(
    ("pixels", "error"),
    [
        (np.zeros((4, 4), dtype=np.float32), TypeError),
        (np.zeros((4, 4, 5), dtype=np.uint8), ValueError),
        (np.zeros((0, 4), dtype=np.uint8), ValueError),
        (np.zeros(4, dtype=np.uint8), ValueError),
    ],
)
def test_bad_arrays_are_rejected(pixels: np.ndarray, error: type[Exception]) -> None:
    with pytest.raises(error):
        encode_png(pixels)


def test_bad_level_is_rejected() -> None:
    with pytest.raises(ValueError, match="level"):
        encode_png(np.zeros((2, 2), dtype=np.uint8), level=10)


def test_tensorflow_decodes_exact_pixels() -> None:
    tf = pytest.importorskip("tensorflow")
    rng = np.random.default_rng(3)
    for channels in (1, 2, 3, 4):
        pixels = rng.integers(0, 256, size=(9, 11, channels), dtype=np.uint8)
        decoded = tf.io.decode_png(encode_png(pixels), channels=0).numpy()
        np.testing.assert_array_equal(decoded, pixels)


_images = st.tuples(
    st.integers(1, 12), st.integers(1, 12), st.sampled_from([None, 1, 2, 3, 4])
).flatmap(
    lambda hwc: arrays(np.uint8, hwc[:2] if hwc[2] is None else hwc, elements=st.integers(0, 255))
)


@settings(max_examples=150, deadline=None)
@given(pixels=_images, level=st.integers(0, 9))
def test_round_trip_property(pixels: np.ndarray, level: int) -> None:
    decoded = _decode(encode_png(pixels, level=level))
    np.testing.assert_array_equal(decoded.reshape(pixels.shape), pixels)
