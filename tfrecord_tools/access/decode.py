"""Image decoding without TensorFlow, giving what the tf.data reader gives: uint8
``[H, W, channels]``, upright for the record's EXIF orientation.

Data flow: parsed fields -> **decode** (format from the magic bytes, as ``read.decode``
chooses it) -> channels -> orientation (``image/orientation``) -> optional resize.

As in the tf.data reader, the format comes from the bytes: ``image/format`` is trusted
only for ``raw`` pixels whose byte count is height x width x channels.

Decoders, fastest first, each giving the same pixels (tests compare them):

- PNG, 8-bit gray / RGB / RGBA, not interlaced, no tRNS (what the converter writes):
  ``pyspng`` (libspng; the ``fast`` extra) when installed, else Pillow's zlib decoder
  called directly, skipping ``PngImageFile``'s chunk parsing in Python. A 28x28 digit,
  measured on one core: pyspng 8 us, Pillow direct 21 us, Pillow's plugin 41 us.
- JPEG in YCbCr / gray / RGB: ``simplejpeg`` (libjpeg-turbo; the ``fast`` extra) when
  installed, else Pillow. A 500x375 photo: 1.35 ms against Pillow's 1.8 ms (both
  libjpeg-turbo's accurate integer IDCT: the same pixels).
- Anything else: Pillow's plugins (BMP, GIF, palette or 16-bit PNG, CMYK JPEG...).

JPEGs resized down are decoded at a reduced DCT scale (1/2, 1/4, 1/8, never below the
requested size: Pillow's ``Image.draft`` rule, followed by simplejpeg too). Decoded
without resizing, pixels equal TensorFlow's for PNG and raw; JPEGs differ by a few
steps (mean ~1): ``tf.io.decode_jpeg`` defaults to libjpeg's fast integer IDCT, these
decoders to the accurate one (against TF's ``dct_method="INTEGER_ACCURATE"`` they differ by
<= 1). Resizing, with the ``fast`` extra, is OpenCV's bilinear, which is
``tf.image.resize``'s (half-pixel centres, no antialiasing; fixed-point weights: within one
step of TensorFlow's, mean 0.13): a 500x375 photo to 224x224 in ~0.17 ms against ~0.9 ms
for Pillow's bilinear, which is the fallback and antialiases when shrinking (mean 7.9 steps
from make_dataset's pixels then).
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, JpegImagePlugin, PngImagePlugin

from ..errors import TFRecordToolsError
from .parse import ImageFields

try:  # the ``fast`` extra: optional, Pillow does the same work when they are missing
    import pyspng
except ImportError:  # pragma: no cover - depends on the environment
    pyspng = None
try:
    import simplejpeg
except ImportError:  # pragma: no cover - depends on the environment
    simplejpeg = None
try:
    import cv2
except ImportError:  # pragma: no cover - depends on the environment
    cv2 = None

__all__ = ["decode_fields", "image_kind", "orient", "resize"]

MODES = {1: "L", 3: "RGB", 4: "RGBA"}
JPEG, PNG, RAW, OTHER = "jpeg", "png", "raw", "other"
_PNG_CHANNELS = {0: 1, 2: 3, 6: 4}  # colour type -> channels, 8-bit, for the fast paths
_PNG_RAWMODES = {1: "L", 3: "RGB", 4: "RGBA"}
_JPEG_SPACES = ("YCbCr", "Gray", "RGB")  # what simplejpeg turns into RGB as Pillow does


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
    if kind == PNG and fast:
        array = _png(fields.encoded, channels)
    elif kind == JPEG and fast and simplejpeg is not None:
        array = _jpeg(fields.encoded, channels, target)
    elif kind == RAW:
        array = _raw(fields, channels)
    if array is None:
        image = _open(fields.encoded, kind)
        if kind == JPEG and target is not None:
            image.draft(image.mode, target)
        array = _pillow_array(_to_mode(image, channels))
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


def _pillow_array(image: Image.Image) -> np.ndarray:
    array = np.array(image)  # writable (np.asarray of an Image is read-only)
    return array[..., None] if array.ndim == 2 else array


def _to_mode(image: Image.Image, channels: int) -> Image.Image:
    mode = MODES[channels]
    if image.mode != mode:
        if image.mode == "P" and mode != "RGBA" and "transparency" in image.info:
            image = image.convert("RGBA")  # palette transparency, as libpng expands it
        image = image.convert(mode)
    return image


def _to_channels(array: np.ndarray, channels: int) -> np.ndarray:
    """``array`` ([H, W, C], C of 1, 3, 4: L, RGB, RGBA) with ``channels`` channels, as
    Pillow's ``convert`` gives them (its luma weights for RGB -> L)."""
    have = array.shape[2]
    if have == channels:
        return array
    if channels == 1:  # Pillow's ITU-R 601-2 luma, rounded as Pillow rounds it
        return _pillow_array(Image.fromarray(np.ascontiguousarray(array[..., :3])).convert("L"))
    if have == 4:  # RGBA -> RGB: the alpha dropped
        return array[..., :3]
    rgb = np.repeat(array, 3, axis=2) if have == 1 else array
    if channels == 3:
        return rgb
    opaque = np.full((*array.shape[:2], 1), 255, np.uint8)
    return np.concatenate([rgb, opaque], axis=2)


def _raw(fields: ImageFields, channels: int) -> np.ndarray:
    pixels = np.frombuffer(fields.encoded, np.uint8).reshape(
        fields.height, fields.width, fields.channels
    )
    if pixels.shape[2] == channels:
        return pixels.copy()  # writable, and not keeping the record's bytes alive
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}.get(pixels.shape[2])
    if mode is None:
        raise TFRecordToolsError(f"raw pixels with {pixels.shape[2]} channels")
    image = Image.fromarray(pixels[..., 0] if mode == "L" else pixels)
    return _pillow_array(_to_mode(image, channels))


def _png_layout(data: bytes | memoryview) -> tuple[int, int, int, list[tuple[int, int]]] | None:
    """(width, height, channels, IDAT data spans) of an 8-bit gray / RGB / RGBA PNG, not
    interlaced and without tRNS (the fast paths' PNGs); None for any other PNG."""
    if len(data) < 45 or data[12:16] != b"IHDR" or data[24] != 8 or data[28] != 0:
        return None
    have = _PNG_CHANNELS.get(data[25])
    if have is None:
        return None
    width = int.from_bytes(data[16:20], "big")
    height = int.from_bytes(data[20:24], "big")
    spans: list[tuple[int, int]] = []
    pos, end = 33, len(data)
    while pos + 8 <= end:
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind = bytes(data[pos + 4 : pos + 8])
        if kind == b"IDAT":
            spans.append((pos + 8, pos + 8 + length))
        elif spans or kind == b"IEND":
            break
        elif kind == b"tRNS":
            return None
        pos += 12 + length
    if not spans or width == 0 or height == 0:
        return None
    return width, height, have, spans


def _png(data: bytes | memoryview, channels: int) -> np.ndarray | None:
    """The fast paths of a simple PNG, or None (the caller then uses Pillow's plugin)."""
    layout = _png_layout(data)
    if layout is None:
        return None
    width, height, have, spans = layout
    if pyspng is not None:
        try:
            array = pyspng.load(bytes(data))
        except RuntimeError:
            return None  # damaged: Pillow's plugin names the problem
        if array.ndim == 2:
            array = array[..., None]
    else:
        image = _pillow_png(data, width, height, have, spans)
        if image is None:
            return None
        array = _pillow_array(image)
    return _to_channels(array, channels)


def _pillow_png(
    data: bytes | memoryview, width: int, height: int, have: int, spans: list[tuple[int, int]]
) -> Image.Image | None:
    """Pillow's own PNG decoder (zlib + unfiltering in C) fed the IDAT data, without the
    plugin's chunk parsing; None when Pillow's internals differ or the data is not a whole
    image (then the plugin decodes, and names what is wrong)."""
    image = Image.new(_PNG_RAWMODES[have], (width, height))
    try:
        decoder = Image._getdecoder(image.mode, "zip", (image.mode, 0))
    except (AttributeError, OSError, TypeError):
        return None
    try:
        decoder.setimage(image.im, (0, 0, width, height))
        for start, stop in spans:
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


def _jpeg(
    data: bytes | memoryview, channels: int, target: tuple[int, int] | None
) -> np.ndarray | None:
    """simplejpeg's decode at Pillow's draft scale, or None (then Pillow decodes)."""
    try:
        height, width, space, _ = simplejpeg.decode_jpeg_header(data)
    except ValueError:
        return None  # Pillow names the problem
    if space not in _JPEG_SPACES:
        return None
    scale = 1
    if target is not None:  # Image.draft's rule: the largest of 8, 4, 2, 1 that fits
        fit = min(width // max(target[0], 1), height // max(target[1], 1))
        scale = next((s for s in (8, 4, 2) if fit >= s), 1)
    colorspace = "GRAY" if channels == 1 and space == "Gray" else "RGB"
    try:
        array = simplejpeg.decode_jpeg(
            data,
            colorspace=colorspace,
            min_height=-(-height // scale),
            min_width=-(-width // scale),
            min_factor=scale,
        )
    except ValueError as e:
        raise TFRecordToolsError(f"cannot decode the image (jpeg): {e}") from None
    return _to_channels(array, channels)


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
    except (OSError, SyntaxError, ValueError) as e:
        raise TFRecordToolsError(f"cannot decode the image ({kind}): {e}") from None
