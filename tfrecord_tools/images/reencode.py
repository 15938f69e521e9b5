"""Images TensorFlow cannot read, re-encoded as PNG with Pillow: the slow side of probing.

    file bytes (not JPEG / PNG) -> **open_image** (Pillow: any format it knows) -> size check
    (``probe``) -> **to_png**: upright, in a PNG mode that keeps the values -> PNG bytes

Used by ``probe`` only, which checks dimensions and re-probes the PNG it gets back. Pillow is
imported on first use; its warnings, its log records and libtiff's messages are kept off
stderr (``quiet``): what matters about a file ends up in its skip reason, in Pillow's own
words, whatever exception Pillow raised (:func:`failure`).
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import re
import threading
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..errors import InvalidImageError

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image as PILImage

__all__ = ["failure", "load", "open_image", "quiet", "to_png", "unsupported"]

# sniffed format (probe.sniff_format) -> Pillow's name for it
_PIL_FORMATS = {
    "jpeg": "JPEG",
    "png": "PNG",
    "gif": "GIF",
    "bmp": "BMP",
    "webp": "WEBP",
    "tiff": "TIFF",
}
# Pillow's plugins raise any exception type on malformed input: OSError, SyntaxError,
# ValueError, but also NotImplementedError (a DDS pixel format), RuntimeError, struct.error,
# DecompressionBombError (an ICNS whose largest icon is only sized when loaded)... Whatever
# Pillow raises on one file makes that file a skip reason in Pillow's words, never the end
# of a conversion. (KeyboardInterrupt and SystemExit are not Exceptions: they still stop it.)
_PIL_ERRORS = (Exception,)
# Formats Pillow opens but that are not converted: EPS is rendered by running Ghostscript on
# the file, which is no job for a converter of untrusted folders.
_REFUSED = {"EPS": "PostScript, which Pillow would run Ghostscript on"}
# Source mode -> PNG mode, for modes PNG stores with the same values (8-bit). The rest:
# 16-bit and 32-bit integer and float modes, see _to_uint16; LAB, see _lab_to_rgb.
_PNG_MODES = {
    "L": "L",
    "LA": "LA",
    "RGB": "RGB",
    "RGBA": "RGBA",
    "P": "P",
    "1": "L",
    "La": "LA",
    "PA": "RGBA",
    "RGBa": "RGBA",
    "RGBX": "RGB",
    "CMYK": "RGB",
    "YCbCr": "RGB",
    "HSV": "RGB",
}
_16_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})
# Modes whose "transparency" info (a colour key or palette alpha) becomes an alpha channel.
_WITH_ALPHA = {"1": "LA", "L": "LA", "P": "RGBA", "RGB": "RGBA"}
_ORIENTATION_TAG = 0x0112
# EXIF orientation -> the transpose that makes the image upright (as ImageOps.exif_transpose)
_UPRIGHT = {2: "FLIP_LEFT_RIGHT", 3: "ROTATE_180", 4: "FLIP_TOP_BOTTOM", 5: "TRANSPOSE"}
_UPRIGHT |= {6: "ROTATE_270", 7: "TRANSVERSE", 8: "ROTATE_90"}


# --- quiet ----------------------------------------------------------------------------------


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Keep Pillow's warnings (truncated files, corrupt EXIF, deprecated formats), its log
    records (``PIL.TiffImagePlugin`` logs an error before raising, which Python's last-resort
    handler prints) and libtiff's messages, which it prints to stderr itself, out of the
    conversion's output. All are process-wide settings, so threads probing at once
    (``--strict`` checks) share one quiet period: the first in silences, the last out
    restores."""
    global _quiet_depth, _quiet_saved
    with _quiet_lock:
        if _quiet_depth == 0:
            caught = warnings.catch_warnings()
            caught.__enter__()
            warnings.simplefilter("ignore")
            pillow_log = logging.getLogger("PIL")
            level = pillow_log.level
            pillow_log.setLevel(logging.CRITICAL + 1)  # its modules' loggers inherit it
            handlers = [(set_, set_(None)) for set_ in _libtiff_handlers()]
            _quiet_saved = caught, level, handlers
        _quiet_depth += 1
    try:
        yield
    finally:
        with _quiet_lock:
            _quiet_depth -= 1
            if _quiet_depth == 0 and _quiet_saved is not None:
                caught, level, handlers = _quiet_saved
                for set_, handler in handlers:
                    set_(handler)
                logging.getLogger("PIL").setLevel(level)
                caught.__exit__(None, None, None)
                _quiet_saved = None


_quiet_lock = threading.Lock()
_quiet_depth = 0
_quiet_saved: tuple | None = None


@functools.cache
def _libtiff_handlers() -> tuple:
    """libtiff's ``TIFFSetErrorHandler`` and ``TIFFSetWarningHandler`` as Pillow links them
    (found through Pillow's own extension, so a bundled and a system libtiff both work);
    none when Pillow has no libtiff."""
    import ctypes

    from PIL import _imaging

    try:
        library = ctypes.CDLL(_imaging.__file__)
        handlers = (library.TIFFSetErrorHandler, library.TIFFSetWarningHandler)
    except (OSError, AttributeError):
        return ()
    for handler in handlers:
        handler.restype = ctypes.c_void_p
        handler.argtypes = [ctypes.c_void_p]
    return handlers


# --- reasons --------------------------------------------------------------------------------


def _pillow_says(err: BaseException) -> str:
    """Pillow's message, without the object reprs and byte counts that vary from file to
    file (skip reasons are counted)."""
    text = re.sub(r"\s*<[^<>]* at 0x[0-9a-f]+>|\s*\(\d+ bytes not processed\)", "", str(err))
    text = text.strip().rstrip(".") or type(err).__name__
    return text if len(text) <= 80 else text[:77] + "..."


def failure(err: Exception, name: str | None, reason: str | None = None) -> InvalidImageError:
    """The skip reason of a file Pillow failed on (``err``, any exception): ``image too
    large`` for a decompression bomb Pillow found itself, else ``reason`` (``decode
    failed``) or ``unsupported image (NAME, Pillow: ...)``, with Pillow's words."""
    if isinstance(err, InvalidImageError):
        return err
    if isinstance(err, _image_module().DecompressionBombError):
        return InvalidImageError("image too large", detail=f"Pillow: {_pillow_says(err)}")
    if reason is not None:
        return InvalidImageError(reason, detail=f"Pillow: {_pillow_says(err)}")
    return unsupported(name or _raised_by(err), err)


def _raised_by(err: BaseException) -> str | None:
    """The format of the Pillow plugin that raised ``err`` while opening a file of a format
    not sniffed beforehand (DDS, ICNS...): the innermost image object on its traceback."""
    image_class = _image_module().Image
    name = None
    frame = err.__traceback__
    while frame is not None:
        this = frame.tb_frame.f_locals.get("self")
        if isinstance(this, image_class) and isinstance(getattr(this, "format", None), str):
            name = this.format
        frame = frame.tb_next
    return name


def unsupported(name: str | None, err: BaseException | str) -> InvalidImageError:
    """The skip reason of a file Pillow recognised but cannot convert, with Pillow's words:
    ``unsupported image (TGA, Pillow: image file is truncated)``."""
    said = err if isinstance(err, str) else f"Pillow: {_pillow_says(err)}"
    return InvalidImageError(f"unsupported image ({name + ', ' if name else ''}{said})")


# --- open, load, convert --------------------------------------------------------------------


def _image_module():
    from PIL import Image

    return Image


def open_image(source, fmt: str | None) -> PILImage.Image:
    """Open (not yet decode) ``source`` (bytes or a file) as the sniffed ``fmt``, or as
    whatever Pillow recognises when ``fmt`` is None. Call inside :func:`quiet`."""
    image_module = _image_module()
    fp = io.BytesIO(source) if isinstance(source, (bytes, bytearray, memoryview)) else source
    try:
        # probe checks the size itself; Pillow's hard error stays a backstop
        image = image_module.open(fp, formats=[_PIL_FORMATS[fmt]] if fmt else None)
    except image_module.UnidentifiedImageError as err:
        if fmt is None:
            raise InvalidImageError(
                "not an image", detail="Pillow: cannot identify image file"
            ) from err
        raise unsupported(fmt.upper(), err) from err
    except _PIL_ERRORS as err:
        raise failure(err, fmt.upper() if fmt else None) from err
    if image.format in _REFUSED:
        raise unsupported(image.format, _REFUSED[image.format])
    return image


def load(image: PILImage.Image) -> None:
    """Decode every pixel (``validate="decode"``), to catch corrupt compressed data."""
    try:
        image.load()
    except _PIL_ERRORS as err:
        raise failure(err, image.format, "decode failed") from err


def to_png(image: PILImage.Image) -> bytes:
    """``image`` (opened by :func:`open_image`) as PNG bytes: its first frame (largest icon),
    upright for its EXIF orientation, its values kept (``_to_png_mode``)."""
    try:
        image.load()
        orientation = _orientation_of(image)
        image = _to_png_mode(image)
        if orientation in _UPRIGHT:
            image = image.transpose(getattr(_image_module().Transpose, _UPRIGHT[orientation]))
        buffer = io.BytesIO()
        image.save(buffer, "PNG")
    except _PIL_ERRORS as err:
        raise failure(err, image.format) from err
    return buffer.getvalue()


def _orientation_of(image: PILImage.Image) -> int:
    """The image's EXIF orientation as Pillow reads it (EXIF, TIFF tag, XMP); 1 if unreadable."""
    try:
        return int(image.getexif().get(_ORIENTATION_TAG, 1))
    except _PIL_ERRORS:
        return 1


# --- modes ----------------------------------------------------------------------------------


def _to_png_mode(image: PILImage.Image) -> PILImage.Image:
    """``image`` in a mode PNG stores without losing or clipping values, or InvalidImageError.

    8-bit modes keep their values (CMYK, YCbCr and HSV become RGB, premultiplied alpha
    straight alpha); LAB becomes sRGB through LittleCMS. 16-bit modes of either byte order
    keep all 16 bits (a 16-bit PNG). 32-bit integers (``I``) and floats (``F``) become
    16-bit PNGs as :func:`_to_uint16` says.
    """
    mode = image.mode
    if "transparency" in image.info and mode in _WITH_ALPHA:
        return image.convert(_WITH_ALPHA[mode])
    if mode in _16_BIT_MODES or mode in ("I", "F"):
        import numpy as np

        values = _to_uint16(np.asarray(image), floats=mode == "F")
        return _image_module().frombytes("I;16", image.size, values.astype("<u2").tobytes())
    if mode == "LAB":
        return _lab_to_rgb(image)
    target = _PNG_MODES.get(mode)
    if target is None:
        raise unsupported(image.format, f"mode {mode} has no PNG equivalent")
    return image if target == mode else image.convert(target)


def _to_uint16(values: np.ndarray, *, floats: bool) -> np.ndarray:
    """One-channel values as uint16, as the README documents:

    - values within 0..65535 are kept (floats rounded), so 16-bit data stays itself;
    - floats within 0..1 (normalised images) are scaled by 65535 first;
    - otherwise (negative values, or above 65535) min..max is stretched linearly onto
      0..65535: monotonic, contrast kept, absolute values not.

    For floats, NaN becomes 0 and infinities the finite extremes.
    """
    import numpy as np

    values = np.asarray(values, dtype=np.float64)
    nan = np.isnan(values)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return np.zeros(values.shape, np.uint16)
    low, high = float(finite.min()), float(finite.max())
    values = np.clip(np.where(nan, low, values), low, high)
    if floats and low >= 0 and high <= 1:
        values = values * 65535
    elif low < 0 or high > 65535:
        values = (values - low) * (65535 / (high - low) if high > low else 0)
    out = np.rint(values).astype(np.uint16)
    out[nan] = 0
    return out


def _lab_to_rgb(image: PILImage.Image) -> PILImage.Image:
    """CIE L*a*b* (D50, as TIFF stores it) to sRGB, through Pillow's LittleCMS."""
    from PIL import ImageCms

    return ImageCms.applyTransform(image, _lab_transform())


@functools.cache
def _lab_transform():
    from PIL import ImageCms

    lab, srgb = ImageCms.createProfile("LAB"), ImageCms.createProfile("sRGB")
    return ImageCms.buildTransform(lab, srgb, "LAB", "RGB")
