"""A record's image as the browser gets it: decoded as the readers decode it
(``access.decode``: format from the magic bytes, raw pixels, EXIF orientation), then
encoded again, small (a thumbnail) or at full size.

Data flow: image fields (``access.parse.ImageFields``) -> **decode** (upright, or as
stored) -> Pillow -> PNG / JPEG bytes. Re-encoding (rather than passing the stored bytes
on) is what lets the "as stored" toggle work: a browser applies a JPEG's own EXIF
orientation, a record's ``image/orientation`` it cannot know.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image

from ..access.decode import decode_fields, image_kind
from ..access.parse import ImageFields
from ..errors import TFRecordToolsError

__all__ = ["Picture", "full", "header_size", "thumbnail"]

#: Images no larger than this on both sides are sent as PNG: crisp when the page scales
#: them up (28x28 digits), and small anyway.
_TINY = 64
_JPEG_QUALITY = 85
_FULL_JPEG_QUALITY = 95


@dataclass(frozen=True)
class Picture:
    """Encoded image bytes, their content type and pixel size."""

    data: bytes
    mime: str
    width: int
    height: int

    def __len__(self) -> int:
        return len(self.data)


def header_size(encoded: bytes | memoryview) -> tuple[int | None, int | None]:
    """(width, height) from an encoded image's header (Pillow reads no pixels for this);
    (None, None) when Pillow cannot tell."""
    try:
        with Image.open(io.BytesIO(bytes(encoded))) as image:
            return image.size
    except (OSError, ValueError, Image.DecompressionBombError):
        return None, None


def thumbnail(fields: ImageFields, size: int, *, oriented: bool = True) -> Picture:
    """The image at most ``size`` pixels on its longest side (never enlarged)."""
    image = _decode(fields, oriented=oriented, longest=size)
    if max(image.size) > size:
        image.thumbnail((size, size), Image.Resampling.BICUBIC)
    tiny = max(image.size) <= _TINY
    return _encode(image, jpeg=not tiny and image.mode in ("RGB", "L"), quality=_JPEG_QUALITY)


def full(fields: ImageFields, *, oriented: bool = True) -> Picture:
    """The image at its full size: JPEG for a JPEG, PNG for anything else."""
    image = _decode(fields, oriented=oriented, longest=None)
    jpeg = image_kind(fields) == "jpeg" and image.mode in ("RGB", "L")
    return _encode(image, jpeg=jpeg, quality=_FULL_JPEG_QUALITY)


def _decode(fields: ImageFields, *, oriented: bool, longest: int | None) -> Image.Image:
    channels = fields.channels if fields.channels in (1, 3, 4) else 3
    if channels == 3 and _has_alpha(fields):
        channels = 4
    target = _target(fields, oriented, longest)
    try:
        array = decode_fields(fields, channels=channels, orientation=oriented, image_size=target)
    except TFRecordToolsError:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise TFRecordToolsError(f"cannot decode the image: {e}") from None
    if array.shape[2] == 1:
        return Image.fromarray(array[..., 0], "L")
    return Image.fromarray(array, "RGBA" if array.shape[2] == 4 else "RGB")


def _target(fields: ImageFields, oriented: bool, longest: int | None) -> tuple[int, int] | None:
    """For a JPEG the record says is much larger than ``longest``: (height, width) twice
    the thumbnail's, to decode towards (DCT scaling reads a fraction of the pixels; Pillow's
    antialiased thumbnail does the rest)."""
    height, width = fields.height, fields.width
    if longest is None or image_kind(fields) != "jpeg" or height <= 0 or width <= 0:
        return None
    longest *= 2
    if max(height, width) <= 2 * longest:
        return None
    if oriented and fields.orientation >= 5:
        height, width = width, height
    scale = longest / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def _has_alpha(fields: ImageFields) -> bool:
    """A PNG whose colour type carries alpha (gray+alpha, RGBA) or has transparency."""
    data = bytes(fields.encoded[:64])
    if data[:4] != b"\x89PNG" or len(data) < 26:
        return False
    return data[25] in (4, 6) or b"tRNS" in bytes(fields.encoded[: 1 << 12])


def _encode(image: Image.Image, *, jpeg: bool, quality: int) -> Picture:
    out = io.BytesIO()
    if jpeg:
        image.save(out, "JPEG", quality=quality)
        mime = "image/jpeg"
    else:
        image.save(out, "PNG", compress_level=1)
        mime = "image/png"
    return Picture(out.getvalue(), mime, image.width, image.height)
