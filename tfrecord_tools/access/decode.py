"""Image decoding without TensorFlow, giving make_dataset's pixels: uint8 ``[H, W, channels]``,
upright for the record's EXIF orientation.

Data flow: parsed fields -> **decode** (format from the magic bytes, as ``read.decode``
chooses it) -> channels, converted as TensorFlow converts them -> orientation
(``image/orientation``) -> optional resize.

As in the tf.data reader, the format comes from the bytes: ``image/format`` is trusted
only for ``raw`` pixels whose byte count is height x width x channels.

Pixels equal make_dataset's, bit for bit, for 1, 3 and 4 channels (tests compare them):

- PNG, any colour type and bit depth: what ``tf.io.decode_png(channels, dtype=uint8)``
  gets from libpng 1.6 (:func:`_libpng`): 16-bit samples cut to their high byte, tRNS as
  alpha, RGB -> gray with libpng's fixed-point weights, through the file's gamma when a
  gAMA, sRGB or sRGB ICC profile chunk gives one (:func:`_file_gamma`).
- raw pixels: ``read.decode.to_channels``, RGB -> gray by ``tf.image.rgb_to_grayscale``'s
  float32 arithmetic (:func:`tf_gray`).
- JPEG with simplejpeg (installed where it has wheels): libjpeg-turbo with ``tf.io.decode_jpeg``'s
  settings (the fast integer IDCT, fancy upsampling), CMYK and gray converted as there.
  Pillow, without it, has libjpeg's accurate IDCT (no Pillow setting gives the fast one
  with fancy upsampling): on the 45 JPEGs of ``make-sample photos --count 50`` (500x375)
  at most 4-6 levels from make_dataset's per image, mean 0.96, on 63 % of the values
  (83 % of the pixels); with 1 channel at most 3-5, mean 0.62, on 55 % of the pixels.

Decoders, fastest first:

- PNG, 8-bit gray / RGB / RGBA, not interlaced, no tRNS (what the converter writes):
  ``pyspng`` (libspng) when installed, else Pillow's zlib decoder called directly, skipping
  ``PngImageFile``'s chunk parsing in Python (a 28x28 digit, one core: pyspng 8 us, Pillow
  direct 21 us, Pillow's plugin 41 us). Any other PNG: Pillow's plugin gives the
  stored samples (16-bit colour's low bytes through its decoder directly, when gray or a
  tRNS key needs them), converted here.
- JPEG in YCbCr / gray / RGB / CMYK: ``simplejpeg`` (a 500x375 photo: ~1.3 ms against
  Pillow's 1.8 ms). A JPEG libjpeg decodes with a warning
  ("extraneous bytes before marker") fails its strict mode; Pillow then decides (it fails
  where TensorFlow fails: data cut short) and simplejpeg decodes leniently, or, for garbage
  in the header, which fails that too, Pillow decodes.
- Anything else: Pillow's plugins (BMP, GIF...).

JPEGs resized down are decoded at a reduced DCT scale (1/2, 1/4, 1/8, never below the
requested size: Pillow's ``Image.draft`` rule, followed by simplejpeg too). Resizing, with
the ``fast`` extra, is OpenCV's bilinear, which is ``tf.image.resize``'s (half-pixel
centres, no antialiasing; fixed-point weights: within one step of TensorFlow's, mean 0.13):
a 500x375 photo to 224x224 in ~0.17 ms against ~0.9 ms for Pillow's bilinear, which is the
fallback and antialiases when shrinking (mean 7.9 steps from make_dataset's pixels then).
"""

from __future__ import annotations

import contextlib
import functools
import io
import math
import zlib
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
from PIL import Image, JpegImagePlugin, PngImagePlugin

from ..errors import TFRecordToolsError
from .parse import ImageFields

try:  # the fast decoders: optional, Pillow does the same work when they are missing
    import pyspng
except ImportError:  # pragma: no cover - depends on the environment
    pyspng = None
try:  # the binding pyspng.load wraps (0.1.3, 0.1.4), called directly: ~1 us less a call
    from pyspng import _pyspng_c as _spng

    _spng.spng_decode_image_bytes, _spng.SPNG_FMT_AUTO  # noqa: B018
except (ImportError, AttributeError):  # pragma: no cover - depends on pyspng's version
    _spng = None
try:
    import simplejpeg
except ImportError:  # pragma: no cover - depends on the environment
    simplejpeg = None
try:
    import cv2
except ImportError:  # pragma: no cover - depends on the environment
    cv2 = None

__all__ = ["decode_fields", "decode_simple_pngs", "image_kind", "orient", "resize", "tf_gray"]

MODES = {1: "L", 3: "RGB", 4: "RGBA"}
JPEG, PNG, RAW, OTHER = "jpeg", "png", "raw", "other"
#: Pillow's errors for a damaged image (truncated data, a bad chunk, a bad header).
_PIL_ERRORS = (OSError, SyntaxError, ValueError, EOFError, zlib.error)


def image_kind(fields: ImageFields) -> str:
    """``jpeg``, ``png``, ``raw`` or ``other``, from the magic bytes first."""
    head = bytes(fields.encoded[:4])
    if head[:3] == b"\xff\xd8\xff":
        return JPEG
    if head == b"\x89PNG":
        return PNG
    size = fields.height * fields.width * fields.channels
    if fields.format == "raw" and size > 0 and len(fields.encoded) == size:
        return RAW
    return OTHER


def decode_fields(
    fields: ImageFields,
    *,
    channels: int = 3,
    image_size: tuple[int, int] | None = None,
    orientation: bool = True,
    fast: bool = True,
) -> np.ndarray:
    """uint8 ``[H, W, channels]`` (``image_size`` = (height, width) when given), upright
    for ``fields.orientation`` unless ``orientation`` is False. ``fast=False`` decodes with
    Pillow's plugins only (what the fast paths are tested against)."""
    turn = fields.orientation if orientation and 2 <= fields.orientation <= 8 else 1
    kind = image_kind(fields)
    target = None  # (width, height) the stored image is drafted towards
    if image_size is not None:
        target = (image_size[0], image_size[1]) if turn >= 5 else (image_size[1], image_size[0])
    array = None
    if kind == PNG:
        array = _png(fields.encoded, channels, fast)
    elif kind == JPEG and fast and simplejpeg is not None:
        array = _jpeg(fields.encoded, channels, target)
    elif kind == RAW:
        array = _raw(fields, channels)
    if array is None:
        array = _pillow_pixels(fields.encoded, kind, channels, target)
    array = orient(array, turn)
    if image_size is not None and array.shape[:2] != image_size:
        array = resize(array, image_size)
    if not array.flags.writeable or not array.flags.c_contiguous:
        array = np.ascontiguousarray(array) if array.flags.writeable else array.copy()
    return array


def resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 ``[H, W, C]`` resized to ``size`` = (height, width): with OpenCV (the ``fast``
    extra) as ``tf.image.resize`` does it (bilinear, half-pixel centres, no antialiasing;
    within one step of TensorFlow's after rounding), else Pillow's bilinear, which
    antialiases when shrinking."""
    height, width = size
    if cv2 is not None:
        out = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
        return out[..., None] if out.ndim == 2 else out
    pil = Image.fromarray(image[..., 0] if image.shape[2] == 1 else image)
    return _pillow_array(pil.resize((width, height), Image.Resampling.BILINEAR))


def orient(image: np.ndarray, orientation: int) -> np.ndarray:
    """``image`` ([H, W, C]) made upright for its EXIF ``orientation`` (1-8; anything else
    is taken as 1), as ``PIL.ImageOps.exif_transpose`` and ``read.decode.orient`` do; 5-8
    swap height and width. A view: no pixels are copied."""
    if orientation == 2:  # mirrored left-right
        return image[:, ::-1]
    if orientation == 3:  # rotated 180
        return image[::-1, ::-1]
    if orientation == 4:  # mirrored top-bottom
        return image[::-1]
    if orientation == 5:  # mirrored along the main diagonal (Pillow's TRANSPOSE)
        return image.transpose(1, 0, 2)
    if orientation == 6:  # needs 90 degrees clockwise (ROTATE_270)
        return image.transpose(1, 0, 2)[:, ::-1]
    if orientation == 7:  # mirrored along the other diagonal (TRANSVERSE)
        return image.transpose(1, 0, 2)[::-1, ::-1]
    if orientation == 8:  # needs 90 degrees counter-clockwise (ROTATE_90)
        return image.transpose(1, 0, 2)[::-1]
    return image


# -- channels, as make_dataset converts them ------------------------------------------------

_TF_WEIGHTS = tuple(np.float32(w) for w in (0.2989, 0.5870, 0.1140))


def tf_gray(rgb: np.ndarray) -> np.ndarray:
    """uint8 ``[..., 3]`` -> ``[..., 1]`` exactly as ``tf.image.rgb_to_grayscale``
    (make_dataset's gray of JPEG and raw pixels): float32 values / 255, weighted, summed left
    to right, then ``convert_image_dtype``'s x 255.5 truncated."""
    red, green, blue = (rgb[..., i].astype(np.float32) for i in range(3))
    for plane, weight in zip((red, green, blue), _TF_WEIGHTS, strict=True):
        plane *= np.float32(1 / 255)
        plane *= weight
    red += green
    red += blue
    red *= np.float32(255.5)
    return red.astype(np.uint8)[..., None]


def _to_channels(
    array: np.ndarray, channels: int, gray: Callable[[np.ndarray], np.ndarray] = tf_gray
) -> np.ndarray:
    """``array`` ([H, W, C]; C 1-4: gray, gray + alpha, RGB, RGBA) with ``channels``
    channels, as ``read.decode.to_channels`` (and libpng's strip / add alpha) give them:
    ``gray`` turns ``[..., 3]`` RGB into ``[..., 1]``, alpha is kept or made opaque."""
    have = array.shape[2]
    if have == channels:
        return array
    if channels == 1:
        return gray(array[..., :3]) if have >= 3 else array[..., :1]
    if channels == 3 and have >= 3:
        return array[..., :3]
    parts = [array[..., :3]] if have >= 3 else [array[..., :1]] * 3  # (faster than np.repeat)
    if channels == 4:
        opaque = have not in (2, 4)
        parts.append(np.full((*array.shape[:2], 1), 255, np.uint8) if opaque else array[..., -1:])
    return np.concatenate(parts, axis=2)


def _pillow_array(image: Image.Image) -> np.ndarray:
    array = np.array(image)  # writable (np.asarray of an Image is read-only)
    return array[..., None] if array.ndim == 2 else array


def _pillow_pixels(
    encoded: bytes | memoryview, kind: str, channels: int, target: tuple[int, int] | None = None
) -> np.ndarray:
    """A JPEG (gray, RGB, or CMYK turned into RGB as TensorFlow does it; drafted towards
    ``target``) or another format by Pillow, with ``channels`` channels."""
    image = _open(encoded, kind)
    try:
        if kind != JPEG:
            mode = MODES[channels]
            if image.mode != mode:
                if image.mode == "P" and mode != "RGBA" and "transparency" in image.info:
                    image = image.convert("RGBA")  # palette transparency, as libpng expands it
                image = image.convert(mode)
            return _pillow_array(image)
        if target is not None:
            image.draft(image.mode, target)
        array = _pillow_array(image if image.mode in ("L", "RGB", "CMYK") else image.convert("RGB"))
    except _PIL_ERRORS as e:
        raise TFRecordToolsError(f"cannot decode the image ({kind}): {e}") from None
    if array.shape[2] == 4:  # Pillow inverts every CMYK JPEG, as if it had an Adobe marker
        array = _cmyk_rgb(255 - array, _adobe(encoded))
    return _to_channels(array, channels)


def _raw(fields: ImageFields, channels: int) -> np.ndarray:
    pixels = np.frombuffer(fields.encoded, np.uint8).reshape(
        fields.height, fields.width, fields.channels
    )
    if pixels.shape[2] not in (1, 2, 3, 4):
        raise TFRecordToolsError(f"raw pixels with {pixels.shape[2]} channels")
    if pixels.shape[2] == channels:
        return pixels.copy()  # writable, and not keeping the record's bytes alive
    return _to_channels(pixels, channels)


# -- PNG: libpng's transformations, as tf.io.decode_png asks for them -----------------------

_PNG_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}  # colour type -> samples per pixel (palette: 1)
_PNG_RAWMODES = {1: "L", 3: "RGB", 4: "RGBA"}  # 8-bit samples -> Pillow mode, for the fast path
_COLOUR_CHUNKS = (b"gAMA", b"sRGB", b"iCCP")


class _PngInfo(NamedTuple):
    """What decoding needs of a PNG's chunks before its image data."""

    width: int
    height: int
    depth: int
    color_type: int
    interlaced: bool
    idat: list[tuple[int, int]]  # data spans of the IDAT chunks
    palette: bytes
    trns: bytes | None
    sbit: bytes | None
    colour: tuple[tuple[bytes, bytes], ...]  # gAMA, sRGB, iCCP bodies before PLTE, in order

    @property
    def simple(self) -> bool:
        """8-bit gray / RGB / RGBA, not interlaced, without tRNS: the fast paths' PNGs."""
        return (
            self.depth == 8
            and self.color_type in (0, 2, 6)
            and not self.interlaced
            and self.trns is None
            and bool(self.idat)
        )


def _png_info(data: bytes | memoryview) -> _PngInfo | None:
    """The chunks up to the image data, walked once; None without an IHDR chunk."""
    if len(data) < 33 or data[12:16] != b"IHDR":
        return None
    spans: list[tuple[int, int]] = []
    palette, trns, sbit, colour = b"", None, None, []
    pos, end = 33, len(data)
    while pos + 8 <= end:
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind = bytes(data[pos + 4 : pos + 8])
        start = pos + 8
        if kind == b"IDAT":
            spans.append((start, start + length))
        elif spans or kind == b"IEND":
            break
        elif kind == b"PLTE":
            palette = bytes(data[start : start + length])
        elif kind == b"tRNS" and trns is None and (palette or data[25] != 3):
            trns = bytes(data[start : start + length])  # a palette's only after PLTE
        elif kind in _COLOUR_CHUNKS and not palette:  # libpng ignores them after PLTE
            colour.append((kind, bytes(data[start : start + length])))
        elif kind == b"sBIT" and not palette and sbit is None:
            sbit = bytes(data[start : start + length])
        pos = start + length + 4
    width = int.from_bytes(data[16:20], "big")
    height = int.from_bytes(data[20:24], "big")
    return _PngInfo(
        width, height, data[24], data[25], data[28] != 0, spans, palette, trns, sbit,
        tuple(colour),
    )  # fmt: skip


def _png(data: bytes | memoryview, channels: int, fast: bool) -> np.ndarray:
    """A PNG as ``tf.io.decode_png(channels=channels)`` and make_dataset give it."""
    info = _png_info(data)
    if info is None:
        raise TFRecordToolsError("cannot decode the image (png): no IHDR chunk where it belongs")
    samples = _png_fast(data, info) if fast and info.simple else None
    if samples is None:
        samples = _png_samples(data, info, channels)
    return _libpng(samples, info, channels)


def _png_fast(data: bytes | memoryview, info: _PngInfo) -> np.ndarray | None:
    """The samples of a simple PNG by pyspng or Pillow's decoder directly, or None (the
    caller then uses Pillow's plugin, which names what is wrong with a damaged file)."""
    if pyspng is not None:
        try:
            return _spng_load(bytes(data))
        except RuntimeError:
            return None
    mode = _PNG_RAWMODES[_PNG_CHANNELS[info.color_type]]
    image = _pillow_zip(data, info, mode, mode)
    return None if image is None else _pillow_array(image)


def _spng_load(data: bytes) -> np.ndarray:
    """pyspng's samples, ``[H, W, C]`` (C = the PNG's own samples per pixel)."""
    if _spng is not None:
        return _spng.spng_decode_image_bytes(data, _spng.SPNG_FMT_AUTO)
    array = pyspng.load(data)
    return array[..., None] if array.ndim == 2 else array


def decode_simple_pngs(
    images: Sequence[bytes], *, channels: int, image_size: tuple[int, int] | None = None
) -> list[np.ndarray | None]:
    """:func:`decode_fields`' pixels of each image that is an upright (the caller sees to
    that) 8-bit gray, RGB or RGBA PNG without interlacing, whose image data follows its
    header (no tRNS, palette or colour chunk: what the converter writes), read with
    ``channels`` (not colour to gray), resized to ``image_size`` when given; None for
    the rest, and for a PNG the fast decoder refuses (:func:`decode_fields` decides
    those). One call for many small images: their per-image overhead is most of the work."""
    wanted = (0,) if channels == 1 else (0, 2, 6)  # colour types: gray, RGB, RGBA
    out: list[np.ndarray | None] = []
    for data in images:
        samples = None
        if (
            data[:4] == b"\x89PNG"
            and data[12:16] == b"IHDR"
            and data[37:41] == b"IDAT"  # the first chunk after the header: as _png_info's
            and data[24] == 8
            and data[25] in wanted
            and data[28] == 0
        ):
            if pyspng is None:
                samples = _png_fast(data, _png_info(data))  # type: ignore[arg-type]
            else:
                with contextlib.suppress(RuntimeError):
                    samples = _spng_load(data)
        if samples is None:
            out.append(None)
            continue
        array = _to_channels(samples, channels)  # as _libpng converts these PNGs
        if image_size is not None and array.shape[:2] != image_size:
            array = resize(array, image_size)
        out.append(array if array.flags.c_contiguous else np.ascontiguousarray(array))
    return out


def _png_samples(data: bytes | memoryview, info: _PngInfo, channels: int) -> np.ndarray:
    """The stored samples by Pillow's plugin: ``[H, W, n]`` uint8 (8-bit values; 1, 2 and
    4-bit gray scaled to 8 bits as libpng expands them; palette indices), uint16 for 16-bit
    gray, and for 16-bit colour when gray or a tRNS key needs all 16 bits."""
    image = _open(data, PNG)
    try:
        array = _pillow_array(image)
    except _PIL_ERRORS as e:
        raise TFRecordToolsError(f"cannot decode the image (png): {e}") from None
    if array.dtype == bool:  # 1-bit gray: Pillow's mode "1"
        array = array.astype(np.uint8) * np.uint8(255)
    if info.color_type == 4 and info.depth == 16:
        array = array[..., [0, 3]]  # Pillow reads 16-bit gray + alpha as RGBA (high bytes)
    wide = channels == 1 or (channels == 4 and info.color_type == 2 and info.trns is not None)
    if info.depth == 16 and info.color_type in (2, 6) and wide:
        mode = "RGB" if info.color_type == 2 else "RGBA"
        low = _pillow_zip(data, info, mode, f"{mode};16L")  # the low byte of each sample
        if low is None:
            raise TFRecordToolsError("cannot decode the image (png): 16-bit samples")
        array = (array.astype(np.uint16) << 8) | _pillow_array(low)
    return array


def _pillow_zip(
    data: bytes | memoryview, info: _PngInfo, mode: str, rawmode: str
) -> Image.Image | None:
    """Pillow's own PNG decoder (zlib + unfiltering in C) fed the IDAT data, the plugin's
    chunk parsing skipped; None when Pillow's internals differ or the data is not a whole
    image."""
    image = Image.new(mode, (info.width, info.height))
    try:
        decoder = Image._getdecoder(mode, "zip", (rawmode, int(info.interlaced)))
    except (AttributeError, OSError, TypeError, ValueError):
        return None
    try:
        decoder.setimage(image.im, (0, 0, info.width, info.height))
        for start, stop in info.idat:
            consumed, error = decoder.decode(bytes(data[start:stop]))
            if error < 0:
                return None
            if consumed < 0:  # every row decoded
                return image
        return None  # cut short
    except (AttributeError, OSError, TypeError, ValueError):
        return None
    finally:
        decoder.cleanup()


def _libpng(samples: np.ndarray, info: _PngInfo, channels: int) -> np.ndarray:
    """``tf.io.decode_png(channels=channels, dtype=uint8)`` of the PNG whose stored samples
    are ``samples`` (see :func:`_png_samples`), then make_dataset's alpha fix: libpng's
    palette and tRNS expansion, alpha stripped or added, RGB -> gray at the samples' depth,
    16 bits cut to their high byte (``png_set_strip_16``, not rounded). libpng's added alpha
    of a 1, 2 or 4-bit image is ``(1 << depth) - 1``; make_dataset makes an alpha that is
    that value everywhere 255, tRNS or not (here: opaque, and the fix for tRNS)."""
    if samples.shape[2] == channels and info.color_type != 3 and samples.dtype == np.uint8:
        return samples  # nothing to convert: the common case, kept quick
    trns = _valid_trns(info)
    if channels == 1:  # alpha and tRNS stripped; RGB -> gray before the cut to 8 bits
        if info.color_type == 3:
            samples = _palette(info.palette, None)[samples[..., 0], :3]
        if samples.shape[2] >= 3:
            return _libpng_gray(samples[..., :3], info)
        return _high_bytes(samples[..., :1])
    alpha = None
    if info.color_type == 3:
        samples = _palette(info.palette, trns if channels == 4 else None)[samples[..., 0]]
        if channels == 3 or trns is None:
            samples = samples[..., :3]
    elif trns is not None and channels == 4:  # a gray or RGB key: alpha 0 where it matches
        alpha = _key_alpha(samples, trns, info.depth)
    samples = _high_bytes(samples)
    if alpha is not None:
        samples = np.concatenate([samples, alpha], axis=2)
    pixels = _to_channels(samples, channels)
    filler = (1 << info.depth) - 1
    if channels == 4 and info.depth < 8 and trns is not None and (pixels[..., 3] == filler).all():
        pixels = pixels.copy()
        pixels[..., 3] = 255
    return pixels


def _high_bytes(samples: np.ndarray) -> np.ndarray:
    """uint8 samples as they are; uint16 ones cut to their high byte."""
    return (samples >> 8).astype(np.uint8) if samples.dtype == np.uint16 else samples


def _valid_trns(info: _PngInfo) -> bytes | None:
    """The tRNS chunk when libpng takes it: 2 bytes for gray, 6 for RGB, for a palette 1 to
    as many as its entries (after PLTE); never with an alpha channel."""
    trns, kind = info.trns, info.color_type
    if trns is None:
        return None
    if (kind == 0 and len(trns) == 2) or (kind == 2 and len(trns) == 6):
        return trns
    if kind == 3 and info.palette and 0 < len(trns) <= len(info.palette) // 3:
        return trns
    return None


def _palette(plte: bytes, trns: bytes | None) -> np.ndarray:
    """uint8 [256, 4] RGBA of every palette index: libpng's palette is 256 entries long
    (black past the PLTE chunk), alpha 255 past the tRNS chunk."""
    rgba = np.zeros((256, 4), np.uint8)
    entries = np.frombuffer(plte[: len(plte) // 3 * 3], np.uint8).reshape(-1, 3)[:256]
    rgba[: len(entries), :3] = entries
    rgba[:, 3] = 255
    if trns is not None:
        rgba[: len(trns), 3] = np.frombuffer(trns, np.uint8)
    return rgba


def _key_alpha(samples: np.ndarray, trns: bytes, depth: int) -> np.ndarray:
    """uint8 [H, W, 1] alpha of a gray or RGB image with a tRNS colour key: 0 where every
    sample equals the key (masked to the depth, scaled as the samples are), else 255."""
    key = np.frombuffer(trns, ">u2").astype(np.uint32) & ((1 << depth) - 1)
    if depth < 8:
        key *= 255 // ((1 << depth) - 1)
    match = (samples == key.astype(samples.dtype)).all(axis=2)
    return np.where(match, np.uint8(0), np.uint8(255))[..., None]


#: ``png_set_rgb_to_gray(png, 1, 0.299, 0.587)``: the weights in 1/32768, truncated as
#: libpng truncates them; blue takes the rest.
_RED, _GREEN = 29900 * 32768 // 100000, 58700 * 32768 // 100000
_BLUE = 32768 - _RED - _GREEN
_WEIGHTS = np.array([_RED, _GREEN, _BLUE], np.float32)


def _libpng_gray(rgb: np.ndarray, info: _PngInfo) -> np.ndarray:
    """``[..., 3]`` uint8 or uint16 RGB -> uint8 ``[..., 1]`` as libpng's
    ``png_do_rgb_to_gray`` then ``png_set_strip_16``: 8-bit sums truncated, 16-bit ones
    rounded; through the gamma tables when the file's gamma is significant (then gray
    pixels keep their value, but for the 16-bit tables' quantisation)."""
    wide = rgb.dtype == np.uint16
    shift = _gamma_shift(info) if wide else None
    tables = _gamma_tables(_file_gamma(info.colour, info.color_type), shift)
    if tables is None:  # a dot product of floats, exact: its sums are integers < 2**24
        if wide:  # (< 2**53 in float64), and so is the division by a power of two
            total = rgb.astype(np.float64) @ _WEIGHTS.astype(np.float64) + 16384
            return np.floor(total * 2.0**-23).astype(np.uint8)[..., None]
        total = rgb.astype(np.float32) @ _WEIGHTS
        return (total * np.float32(2**-15)).astype(np.uint8)[..., None]
    red, green, blue = (rgb[..., i].astype(np.uint32) for i in range(3))
    to_linear, from_linear, same = tables
    step = 0 if shift is None else shift
    linear = (
        _RED * to_linear[red >> step]
        + _GREEN * to_linear[green >> step]
        + _BLUE * to_linear[blue >> step]
        + 16384
    ) >> 15
    gray = np.where(
        (red == green) & (green == blue), same[red >> step], from_linear[linear >> step]
    )
    if wide:
        gray = gray >> 8
    return gray.astype(np.uint8)[..., None]


# -- PNG gamma: libpng's (1.6.43, floating-point build) file gamma and tables, which its
#    RGB -> gray uses whenever a file gamma differs from 1 by more than 5 %

_FP_1 = 100000  # png_fixed_point 1.0
_SRGB_GAMMA = 45455  # PNG_GAMMA_sRGB_INVERSE


def _significant(gamma: int) -> bool:
    return gamma < _FP_1 - 5000 or gamma > _FP_1 + 5000  # PNG_GAMMA_THRESHOLD_FIXED


def _reciprocal(a: int) -> int:
    return math.floor(1e10 / a + 0.5)


def _reciprocal2(a: int, b: int) -> int:
    return math.floor(1e15 / a / b + 0.5)


def _product2(a: int, b: int) -> int:
    return math.floor(a * 1e-5 * b + 0.5)


def _file_gamma(colour: tuple[tuple[bytes, bytes], ...], color_type: int) -> int:
    """libpng's file gamma (x 100000; 0: none) after the gAMA, sRGB and iCCP chunks met
    before PLTE, in file order: sRGB (or an ICC profile libpng knows to be sRGB's) sets
    0.45455 and is not overridden by a gAMA more than 5 % away; a second profile, a bad
    value or a bad profile invalidates the colour space (the gamma then stays as it was)."""
    gamma, from_gama, from_srgb, intent = 0, False, False, False
    for kind, body in colour:
        if kind == b"gAMA" and len(body) == 4:
            value = int.from_bytes(body, "big")
            if value < 16 or value > 625_000_000 or from_gama:
                break  # out of range, or a duplicate: the colour space is invalid
            ratio = math.floor(gamma * _FP_1 / value + 0.5)  # png_muldiv; past int32: fails
            mismatch = gamma and (ratio > 2**31 - 1 or _significant(ratio))
            if not (mismatch and from_srgb):
                gamma, from_gama = value, True
        elif kind == b"sRGB" and len(body) == 1:
            if intent or body[0] > 3:
                break  # too many profiles, or a bad rendering intent
            gamma, from_srgb, intent = _SRGB_GAMMA, True, True
        elif kind == b"iCCP" and len(body) >= 92:  # shorter: ignored ("too short")
            if intent:
                break
            known = _icc_srgb(body, color_type)
            if known is None:
                break  # a profile libpng rejects
            if known:
                gamma, from_srgb, intent = _SRGB_GAMMA, True, True
    return gamma


#: The ICC profiles libpng 1.6 takes for sRGB (``png_sRGB_checks``): adler32, crc32,
#: MD5 (the header's profile ID, zero for the old HP ones), length, rendering intent.
_SRGB_PROFILES = (
    (0x0A3FD9F6, 0x3B8772B9, "29f83ddeaff255ae7842fae4ca83390d", 3048, 0),
    (0x4909E5E1, 0x427EBB21, "c95bd637e95d8a3b0df38f99c1320389", 3052, 1),
    (0xFD2144A1, 0x306FD8AE, "fc66337837e2886bfd72e9838228f1b8", 60988, 0),
    (0x209C35D2, 0xBBEF7812, "34562abf994ccd066d2c5721d0d68c5d", 60960, 0),
    (0xA054D762, 0x5D5129CE, "0" * 32, 3024, 1),
    (0xF784F3FB, 0x182EA552, "0" * 32, 3144, 0),
    (0x0398F3FC, 0xF29E526D, "0" * 32, 3144, 1),
)


@functools.lru_cache(maxsize=16)
def _icc_srgb(body: bytes, color_type: int) -> bool | None:
    """Whether an iCCP chunk's profile is one libpng knows to be sRGB's; None when libpng
    rejects the chunk (``png_handle_iCCP``, ``png_icc_check_header`` / ``_tag_table``)."""
    keyword = body.find(b"\0", 0, 80)
    if keyword < 1 or body[keyword + 1] != 0:  # a keyword of 1-79 bytes, deflate
        return None
    try:
        profile = zlib.decompressobj().decompress(body[keyword + 2 :])
    except zlib.error:
        return None
    if len(profile) < 132:
        return None
    length = int.from_bytes(profile[:4], "big")
    tags = int.from_bytes(profile[128:132], "big")
    space = {b"RGB ": True, b"GRAY": False}.get(profile[16:20])
    if (
        len(profile) < max(length, 132 + 12 * tags)
        or length < 132 + 12 * tags
        or (profile[8] > 3 and length & 3)
        or int.from_bytes(profile[64:68], "big") >= 0xFFFF
        or profile[36:40] != b"acsp"
        or space is None
        or space != bool(color_type & 2)
        or profile[12:16] in (b"abst", b"link")
        or profile[20:24] not in (b"XYZ ", b"Lab ")
    ):
        return None
    for at in range(132, 132 + 12 * tags, 12):
        start, size = (int.from_bytes(profile[i : i + 4], "big") for i in (at + 4, at + 8))
        if start > length or size > length - start:
            return None
    profile = profile[:length]
    intent = int.from_bytes(profile[64:68], "big")
    md5 = profile[84:100].hex()
    return any(
        md5 == want_md5
        and length == want_length
        and intent == want_intent
        and zlib.adler32(profile) == adler
        and zlib.crc32(profile) == crc
        for adler, crc, want_md5, want_length, want_intent in _SRGB_PROFILES
    )


def _gamma_shift(info: _PngInfo) -> int:
    """``png_ptr->gamma_shift`` of a 16-bit image read as 8 bits: its insignificant bits
    (from a valid sBIT chunk), at least 16 - PNG_MAX_GAMMA_8 (11) = 5, at most 8."""
    shift = 0
    bits = info.sbit
    count = _PNG_CHANNELS.get(info.color_type, 3)
    if bits is not None and len(bits) == count and all(0 < b <= info.depth for b in bits):
        significant = max(bits[:3]) if info.color_type & 2 else bits[0]
        shift = 16 - significant if 0 < significant < 16 else 0
    return min(max(shift, 5), 8)


@functools.lru_cache(maxsize=32)
def _gamma_tables(
    gamma: int, shift: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(to linear, from linear, for gray pixels) lookup tables libpng builds for
    RGB -> gray with file gamma ``gamma``, indexed by the 8-bit sample (``shift`` None) or
    by the 16-bit sample ``>> shift``; None when it builds none (no significant gamma)."""
    if gamma == 0:
        return None
    screen = _reciprocal(gamma)  # libpng assumes the output matches the input
    if not (_significant(gamma) or _significant(screen)):
        return None
    if shift is None:
        return (
            _table8(_reciprocal(gamma)),
            _table8(_reciprocal(screen)),
            _table8(_reciprocal2(gamma, screen)),
        )
    return (
        _table16(shift, _reciprocal(gamma)),
        _table16(shift, _reciprocal(screen)),
        _table16to8(shift, _product2(gamma, screen)),
    )


def _table8(gamma: int) -> np.ndarray:
    """``png_build_8bit_table``: ``png_gamma_8bit_correct`` of 0..255."""
    if not _significant(gamma):
        return np.arange(256, dtype=np.uint32)
    values = [0] + [
        math.floor(255 * math.pow(i / 255.0, gamma * 0.00001) + 0.5) for i in range(1, 255)
    ]
    return np.array([*values, 255], np.uint32)


def _table16(shift: int, gamma: int) -> np.ndarray:
    """``png_build_16bit_table``, indexed by ``sample >> shift``."""
    top = (1 << (16 - shift)) - 1
    if not _significant(gamma):
        if shift == 0:
            return np.arange(top + 1, dtype=np.uint32)
        half = 1 << (15 - shift)
        return np.array([(v * 65535 + half) // top for v in range(top + 1)], np.uint32)
    scale = 1.0 / top
    return np.array(
        [math.floor(65535.0 * math.pow(v * scale, gamma * 0.00001) + 0.5) for v in range(top + 1)],
        np.uint32,
    )


def _table16to8(shift: int, gamma: int) -> np.ndarray:
    """``png_build_16to8_table`` (the table of gray pixels when 16 bits end as 8), indexed
    by ``sample >> shift``: each 8-bit output (as ``out * 257``) from the input boundary
    ``png_gamma_16bit_correct(out * 257 + 128)`` rounded to ``16 - shift`` bits."""
    top = (1 << (16 - shift)) - 1
    table = np.full(top + 1, 65535, np.uint32)
    last = 0
    for i in range(255):
        out = i * 257
        bound = (_gamma16(out + 128, gamma) * top + 32768) // 65535 + 1
        if bound > last:
            table[last:bound] = out
            last = bound
    return table


def _gamma16(value: int, gamma: int) -> int:
    """``png_gamma_16bit_correct``."""
    if 0 < value < 65535:
        return math.floor(65535 * math.pow(value / 65535.0, gamma * 0.00001) + 0.5)
    return value


# -- JPEG -----------------------------------------------------------------------------------


def _jpeg(
    data: bytes | memoryview, channels: int, target: tuple[int, int] | None
) -> np.ndarray | None:
    """simplejpeg's decode with ``tf.io.decode_jpeg``'s settings (fast integer IDCT, fancy
    upsampling), at Pillow's draft scale, CMYK turned into RGB as TensorFlow does it; None
    for a colour space it does not read (then Pillow decodes).

    simplejpeg's strict mode fails on libjpeg's warnings (extraneous bytes before a marker,
    a corrupt data segment); TensorFlow decodes such a file, but not one cut short, which
    libjpeg would pad. Pillow fails where TensorFlow fails: it decides, raising its reason,
    then simplejpeg decodes leniently; Pillow's pixels serve when that fails too (garbage
    in the header)."""
    checked = None  # Pillow's pixels of a JPEG simplejpeg's strict mode refused
    for strict in (True, False):
        try:
            height, width, space, _ = simplejpeg.decode_jpeg_header(data, strict=strict)
            scale = 1
            if target is not None:  # Image.draft's rule: the largest of 8, 4, 2, 1 that fits
                fit = min(width // max(target[0], 1), height // max(target[1], 1))
                scale = next((s for s in (8, 4, 2) if fit >= s), 1)
            array = simplejpeg.decode_jpeg(
                data,
                colorspace=_SIMPLEJPEG_SPACES[space],
                fastdct=True,  # TensorFlow's default dct_method: libjpeg's JDCT_IFAST
                min_height=-(-height // scale),
                min_width=-(-width // scale),
                min_factor=scale,
                strict=strict,
            )
            break
        except KeyError:
            return None
        except ValueError:
            if checked is not None:
                return checked
            checked = _pillow_pixels(data, JPEG, channels, target)
    if array.ndim == 2:
        array = array[..., None]
    elif array.shape[2] == 4:  # libjpeg's CMYK
        array = _cmyk_rgb(array, _adobe(data))
    return _to_channels(array, channels)


#: JPEG colour space (simplejpeg's header) -> what to ask simplejpeg for
_SIMPLEJPEG_SPACES = {"YCbCr": "RGB", "RGB": "RGB", "Gray": "GRAY", "CMYK": "CMYK", "YCCK": "CMYK"}


def _cmyk_rgb(cmyk: np.ndarray, adobe: bool) -> np.ndarray:
    """libjpeg's CMYK values (uint8 ``[H, W, 4]``) -> RGB as ``tf.io.decode_jpeg`` computes
    them: ``k * c // 255`` under an Adobe marker (which stores them inverted), else
    ``(255 - k) * (255 - c) // 255``."""
    values = cmyk.astype(np.uint16)
    if not adobe:
        values = 255 - values
    return (values[..., :3] * values[..., 3:] // 255).astype(np.uint8)


def _adobe(data: bytes | memoryview) -> bool:
    """Whether libjpeg sees an Adobe APP14 marker (at least 12 data bytes starting
    ``Adobe``) before the first scan: its CMYK is then stored inverted."""
    pos, end = 2, len(data)
    while pos + 4 <= end and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker == 0xFF or marker == 0x01 or 0xD0 <= marker <= 0xD8:
            pos += 1 if marker == 0xFF else 2  # fill byte, or a marker without a length
            continue
        if marker in (0xDA, 0xD9):  # start of scan, end of image
            break
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker == 0xEE and length >= 14 and bytes(data[pos + 4 : pos + 9]) == b"Adobe":
            return True
        pos += 2 + length
    return False


def _open(encoded: bytes | memoryview, kind: str) -> Image.Image:
    """Open with the format's plugin directly (Image.open's probing of every plugin costs
    more than decoding a 28x28 PNG)."""
    stream = io.BytesIO(encoded)
    try:
        if kind == PNG:
            return PngImagePlugin.PngImageFile(stream)
        if kind == JPEG:
            return JpegImagePlugin.JpegImageFile(stream)
        image = Image.open(stream)
        image.seek(0)  # the first frame of a GIF, as tf.io.decode_image(expand_animations=False)
        return image
    except _PIL_ERRORS as e:
        raise TFRecordToolsError(f"cannot decode the image ({kind}): {e}") from None
