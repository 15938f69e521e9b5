"""Image decoding without TensorFlow: Pillow for JPEG and PNG (and BMP, GIF...), numpy for
raw pixels, giving what the tf.data reader gives: uint8 ``[H, W, channels]``.

Data flow: parsed fields -> **decode** (format from the magic bytes, as ``read.decode``
chooses it) -> channels -> optional resize.

As in the tf.data reader, the format comes from the bytes: ``image/format`` is trusted
only for ``raw`` pixels whose byte count is height x width x channels. JPEGs resized down
are decoded at a reduced DCT scale (``Image.draft``: 1/2, 1/4, 1/8, never below the
requested size): less IDCT work and fewer pixels to resize. Decoded
without resizing, pixels equal TensorFlow's for PNG and raw; JPEGs differ by a few
steps (mean ~1): ``tf.io.decode_jpeg`` defaults to libjpeg's fast integer IDCT, Pillow uses
the accurate one (against TF's ``dct_method="INTEGER_ACCURATE"`` they differ by <= 1).
Resizing is Pillow's bilinear, which antialiases when shrinking; ``tf.image.resize`` does
not, so resized images differ from make_dataset's by interpolation, not by content.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, JpegImagePlugin, PngImagePlugin

from ..errors import TFRecordToolsError
from .parse import ImageFields

__all__ = ["decode_fields", "image_kind"]

MODES = {1: "L", 3: "RGB", 4: "RGBA"}
JPEG, PNG, RAW, OTHER = "jpeg", "png", "raw", "other"


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
    fields: ImageFields, *, channels: int = 3, image_size: tuple[int, int] | None = None
) -> np.ndarray:
    """uint8 ``[H, W, channels]`` (``image_size`` = (height, width) when given)."""
    kind = image_kind(fields)
    if kind == RAW:
        pixels = np.frombuffer(fields.encoded, np.uint8).reshape(
            fields.height, fields.width, fields.channels
        )
        if pixels.shape[2] == channels and image_size is None:
            return pixels.copy()  # writable, and not keeping the record's bytes alive
        mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}.get(pixels.shape[2])
        if mode is None:
            raise TFRecordToolsError(f"raw pixels with {pixels.shape[2]} channels")
        image = Image.fromarray(pixels[..., 0] if mode == "L" else pixels, mode)
    else:
        image = _open(fields.encoded, kind)
        if kind == JPEG and image_size is not None:
            image.draft(image.mode, (image_size[1], image_size[0]))
    mode = MODES[channels]
    if image.mode != mode:
        if image.mode == "P" and mode != "RGBA" and "transparency" in image.info:
            image = image.convert("RGBA")  # palette transparency, as libpng expands it
        image = image.convert(mode)
    if image_size is not None and image.size != (image_size[1], image_size[0]):
        image = image.resize((image_size[1], image_size[0]), Image.Resampling.BILINEAR)
    array = np.array(image)  # writable (np.asarray of an Image is read-only)
    return array[..., None] if array.ndim == 2 else array


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
