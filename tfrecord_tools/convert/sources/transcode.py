"""What an image is stored as: the step between probing a file and building its Example.

    probe (bytes, ImageInfo) -> **transcode** (StorageOptions) -> (bytes to store, ImageInfo)

The defaults change nothing: the bytes ``probe`` returned are stored. ``max_size`` bounds the
longest side: larger images are re-encoded (JPEG stays JPEG at ``quality``, PNG stays PNG), a
JPEG decoded at the smallest DCT scale that keeps its longest side >= ``max_size`` (Pillow's
``draft``: 1/2, 1/4 or 1/8 of the pixels to decode) and then resized with LANCZOS to exactly
``max_size``; smaller images stay byte for byte. ``encoding="png"`` re-encodes JPEGs as PNG,
``"raw"`` stores uint8 pixels row-major HWC (``image/format`` raw, as ``convert mnist
--encoding raw``). Whatever is re-encoded is stored upright (its EXIF orientation applied
before resizing) and carries no ``image/orientation``. Pillow is imported on first use.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from ...errors import ConversionError
from ...images import reencode
from ...images.probe import DEFAULT_MAX_PIXELS, ImageInfo, _probe_jpeg, _probe_png
from .. import DEFAULT_QUALITY, IMAGE_ENCODINGS

if TYPE_CHECKING:
    from PIL import Image as PILImage

__all__ = ["KEEP", "StorageOptions", "stored_shape", "transcode"]

#: channels -> kind of raw pixels
_RAW_KINDS = {1: "gray", 2: "gray+alpha", 3: "rgb", 4: "rgba"}
#: Pillow mode -> the 8-bit mode whose channels TF's decoders return for it (probe.py):
#: palette images expand to RGB (RGBA with transparency), CMYK JPEGs come out RGB.
_PIXEL_MODES = {"1": "L", "L": "L", "LA": "LA", "RGB": "RGB", "RGBA": "RGBA", "CMYK": "RGB"}
_PIXEL_MODES |= {"PA": "RGBA", "La": "LA", "RGBa": "RGBA", "RGBX": "RGB", "YCbCr": "RGB"}
_16_BIT_GRAY = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})


@dataclass(frozen=True)
class StorageOptions:
    """How images are stored; validated on creation. ``encoding`` is ``keep`` (JPEG and PNG
    as they are), ``png``, ``raw`` or ``auto`` (resolved to raw or keep before any shard is
    written, see ``api``)."""

    max_size: int | None = None  # longest side, pixels
    quality: int = DEFAULT_QUALITY  # of the JPEGs max_size re-encodes
    encoding: str = "keep"

    def __post_init__(self) -> None:
        size = self.max_size
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 1):
            raise ConversionError(
                "max_size (--max-size) must be a whole number of pixels >= 1, the longest "
                f"side; got {size!r}"
            )
        q = self.quality
        if not isinstance(q, int) or isinstance(q, bool) or not 1 <= q <= 100:
            raise ConversionError(f"quality (--quality) must be a JPEG quality 1..100, got {q!r}")
        if self.encoding not in IMAGE_ENCODINGS:
            raise ConversionError(
                f"encoding must be one of {', '.join(IMAGE_ENCODINGS)}, got {self.encoding!r}"
            )

    @property
    def changes_nothing(self) -> bool:
        return self.max_size is None and self.encoding == "keep"

    def identity(self) -> dict[str, Any]:
        """What a rerun must compare (the resume fingerprint): empty for the defaults, so
        default conversions keep their fingerprint."""
        found: dict[str, Any] = {}
        if self.max_size is not None:
            found |= {"max_size": self.max_size, "quality": self.quality}
        if self.encoding != "keep":
            found["encoding"] = self.encoding
        return found


#: The defaults: images stored as they are.
KEEP = StorageOptions()


def bounded(height: int, width: int, max_size: int | None) -> tuple[int, int]:
    """(height, width) with the longest side brought down to ``max_size`` (aspect kept, the
    other side rounded, at least 1); unchanged when it is not larger."""
    longest = max(height, width)
    if max_size is None or longest <= max_size:
        return height, width
    if height >= width:
        return max_size, max(1, round(width * max_size / height))
    return max(1, round(height * max_size / width)), max_size


def _upright(height: int, width: int, orientation: int) -> tuple[int, int]:
    return (width, height) if orientation >= 5 else (height, width)


def stored_shape(info: ImageInfo, opts: StorageOptions) -> tuple[int, int, int]:
    """(height, width, channels) of the image ``info`` describes once re-encoded under
    ``opts`` (upright, bounded): what ``--encoding auto`` compares, from headers alone."""
    height, width = _upright(info.height, info.width, info.orientation)
    return (*bounded(height, width, opts.max_size), info.channels)


def transcode(
    data: bytes, info: ImageInfo, opts: StorageOptions, *, path: str | None = None
) -> tuple[bytes, ImageInfo, bool]:
    """(bytes to store, their info, whether ``max_size`` resized it) for a probed image.

    ``data`` comes back as it is when nothing needs to change (the defaults, an image
    within ``max_size`` already in its target format). A decode that fails raises
    :class:`InvalidImageError` ("decode failed"): the file is skipped like any bad one.
    """
    if opts.changes_nothing:
        return data, info, False
    too_big = opts.max_size is not None and max(info.height, info.width) > opts.max_size
    target = info.format if opts.encoding in ("keep", "auto") else opts.encoding
    if not too_big and target == info.format:
        return data, info, False
    with reencode.quiet():
        try:
            image = _upright_pixels(data, info, opts.max_size if too_big else None)
            stored = _encode(image, target, opts.quality)
        except Exception as err:  # whatever Pillow raised on this file: a skip reason
            failed = reencode.failure(err, info.format.upper(), "decode failed")
            raise failed if path is None else failed.with_path(path) from err
    if target == "raw":
        height, width, channels = _raw_shape(image)
        new = ImageInfo("raw", height, width, channels, _RAW_KINDS[channels])
    elif target == "jpeg":
        new = _probe_jpeg(stored, DEFAULT_MAX_PIXELS)
    else:
        new = _probe_png(stored, DEFAULT_MAX_PIXELS)
        source = info.converted_from or (info.format if info.format != "png" else None)
        new = replace(new, converted_from=source)
    return stored, new, too_big


def _upright_pixels(data: bytes, info: ImageInfo, max_size: int | None) -> PILImage.Image:
    """The decoded image, upright, in a mode that keeps what a reader would see, resized to
    ``max_size`` (longest side) when given."""
    from PIL import Image

    image = reencode.open_image(data, info.format)
    target = bounded(info.height, info.width, max_size)  # in stored orientation
    if max_size is not None and info.format == "jpeg":
        image.draft(None, (target[1], target[0]))  # a DCT scale that keeps size >= target
    subsampling = _jpeg_subsampling(image) if info.format == "jpeg" else -1
    image.load()
    icc = image.info.get("icc_profile")
    image = _pixel_mode(image)
    transpose = reencode._UPRIGHT.get(info.orientation)
    if transpose is not None:
        image = image.transpose(getattr(Image.Transpose, transpose))
        if info.orientation >= 5:  # a quarter turn: the sides swap (2-4 mirror or turn 180)
            target = (target[1], target[0])
    if max_size is not None and (image.height, image.width) != target:
        image = _resize(image, target)
    if icc:
        image.info["icc_profile"] = icc
    if subsampling >= 0:
        image.info["subsampling"] = subsampling  # a resized JPEG keeps its chroma sampling
    return image


def _jpeg_subsampling(image: PILImage.Image) -> int:
    """Pillow's code for a JPEG's chroma subsampling (0: 4:4:4, 1: 4:2:2, 2: 4:2:0), -1 if
    it has none Pillow can write."""
    from PIL import JpegImagePlugin

    try:
        return JpegImagePlugin.get_sampling(image) if image.mode == "RGB" else -1
    except (AttributeError, TypeError, IndexError):
        return -1


def _pixel_mode(image: PILImage.Image) -> PILImage.Image:
    """8-bit modes with the channels TF's decoders give; 16-bit gray kept as ``I;16``."""
    mode = image.mode
    if mode in _16_BIT_GRAY:
        import numpy as np
        from PIL import Image

        values = np.asarray(image).astype("<u2")  # a PNG's are 0..65535 already
        return Image.frombytes("I;16", image.size, values.tobytes())
    if mode == "P":
        return image.convert("RGBA" if "transparency" in image.info else "RGB")
    target = _PIXEL_MODES.get(mode)
    if target is None:
        raise reencode.unsupported(image.format, f"mode {mode} cannot be resized or stored raw")
    converted = image if target == mode else image.convert(target)
    converted.info.pop("transparency", None)  # gray / RGB colour keys: TF ignores them too
    return converted


def _resize(image: PILImage.Image, size: tuple[int, int]) -> PILImage.Image:
    """LANCZOS to ``size`` (height, width); 16-bit gray through floats, all 16 bits kept."""
    from PIL import Image

    height, width = size
    if image.mode.startswith("I"):
        import numpy as np

        values = np.asarray(image.convert("F").resize((width, height), Image.Resampling.LANCZOS))
        pixels = np.clip(np.rint(values), 0, 65535).astype("<u2")
        return Image.frombytes("I;16", (width, height), pixels.tobytes())
    return image.resize((width, height), Image.Resampling.LANCZOS)


def _encode(image: PILImage.Image, target: str, quality: int) -> bytes:
    if target == "raw":
        return _raw_pixels(image).tobytes()
    buffer = io.BytesIO()
    icc = image.info.get("icc_profile")
    if target == "jpeg":
        subsampling = image.info.get("subsampling", -1)
        image.save(buffer, "JPEG", quality=quality, icc_profile=icc, subsampling=subsampling)
    else:
        image.save(buffer, "PNG", icc_profile=icc)
    return buffer.getvalue()


def _raw_pixels(image: PILImage.Image):
    """uint8 pixels (H, W, C); 16-bit values scaled as the readers' uint8 decode does (/257)."""
    import numpy as np

    pixels = np.asarray(image)
    if pixels.dtype != np.uint8:
        pixels = np.rint(pixels.astype(np.float64) / 257).astype(np.uint8)
    return pixels.reshape(image.height, image.width, -1)


def _raw_shape(image: PILImage.Image) -> tuple[int, int, int]:
    channels = 1 if image.mode.startswith("I") else len(image.getbands())
    return image.height, image.width, channels
