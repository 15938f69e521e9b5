"""Image probing: the per-file check between reading a source image and building its Example.

    source file -> **read_image** (a bounded prefix first) -> bytes -> **probe_image**
    -> (bytes to store, ImageInfo) -> Example builder

JPEG and PNG are stored byte for byte after header-level checks that cost microseconds:
JPEG marker segments up to the first scan plus an EOI search, PNG chunk headers and CRCs.
No pixels are decoded on that path (``validate="decode"`` adds a full Pillow decode); their
EXIF orientation is read from the headers (``ImageInfo.orientation``) for the readers to
apply. Every other format Pillow opens and can load (BMP, GIF, WebP, TIFF, TGA, PNM, ICO,
PSD, SGI, DDS, JPEG 2000, AVIF, QOI, PCX...) is re-encoded as PNG by ``reencode``, upright
(its EXIF orientation applied) and in a PNG mode that keeps its values. Big files are read
whole only once a prefix shows an image (``read_image``). ``ImageInfo.channels`` is what
``tf.io.decode_jpeg`` / ``tf.io.decode_png`` with ``channels=0`` return, so readers can
trust ``image/channels``. TensorFlow is never imported here; Pillow only when needed.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, BinaryIO

from ..errors import InvalidImageError
from . import reencode

if TYPE_CHECKING:
    from PIL import Image as PILImage

__all__ = ["ImageInfo", "probe_image", "read_image", "sniff_format"]

# Pillow's own hard limit (2 * Image.MAX_IMAGE_PIXELS): about 13,000 x 13,000.
DEFAULT_MAX_PIXELS = 178_956_970
_VALIDATE_MODES = ("fast", "decode")


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """What a reader needs to know about one stored image."""

    format: str  # "jpeg" | "png": what is stored
    height: int
    width: int
    channels: int  # what TF's decode_jpeg / decode_png(channels=0) return
    kind: str  # "rgb", "gray", "rgba", "gray+alpha", "palette", "cmyk", "16-bit"
    converted_from: str | None = None  # source format when re-encoded as PNG
    orientation: int = 1  # EXIF orientation (1-8) of a stored JPEG / PNG, for readers to apply


# --- sniffing -------------------------------------------------------------------------------

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # classic and BigTIFF
# BITMAPCOREHEADER, OS/2 2.x (16 and 64), BITMAPINFOHEADER and its V2..V5 successors.
_BMP_DIB_SIZES = frozenset({12, 16, 40, 52, 56, 64, 108, 124})


def sniff_format(data: bytes) -> str | None:
    """The image format named by ``data``'s magic bytes, or None; file names play no part."""
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:8] == _PNG_SIGNATURE:
        return "png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:4] in _TIFF_MAGICS:
        return "tiff"
    # "BM" alone would match text files; the DIB header size makes it specific.
    if data[:2] == b"BM" and int.from_bytes(data[14:18], "little") in _BMP_DIB_SIZES:
        return "bmp"
    return None


# --- reading a file: a bounded prefix first ------------------------------------------------

#: Bytes read before anything is known about a file: enough to sniff any format and to check
#: a JPEG's frame or a PNG's IHDR. Files up to this size are read whole at once.
PREFIX_BYTES = 1 << 16
#: At most this much more may be read (``os.pread``, from anywhere in the file) while Pillow
#: looks for a header it knows. Only a format Pillow has recognised reads that far (AVIF
#: reads its whole file); a file that exhausts it is read whole and probed for real.
HEADER_BUDGET = 1 << 20


def read_image(f: BinaryIO, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> bytes:
    """All the bytes of ``f`` (a file opened ``"rb"``), read only once its first bytes show
    an image whose dimensions are acceptable; otherwise :class:`InvalidImageError` after at
    most :data:`PREFIX_BYTES` (+ :data:`HEADER_BUDGET` for Pillow's header parsers). A 2 GB
    video named ``movie.jpg`` costs a 64 KiB read, not 2 GB of memory. The result still
    goes through :func:`probe_image`."""
    size = os.fstat(f.fileno()).st_size
    if size <= PREFIX_BYTES:
        return f.read()  # one read, no buffer copy
    head = f.read(PREFIX_BYTES)
    _screen(head, f, size, max_pixels)
    f.seek(0)
    return f.read()  # the whole file, one allocation (re-reading the prefix costs nothing)


def _screen(head: bytes, f: BinaryIO, size: int, max_pixels: int) -> None:
    """Reject ``head`` (a strict prefix of the file) if it cannot start an acceptable image."""
    fmt = sniff_format(head)
    if fmt == "jpeg":
        try:
            _walk_jpeg_headers(head, max_pixels)
        except InvalidImageError as err:
            if err.reason != "truncated JPEG":  # the prefix may end before the frame header
                raise
    elif fmt == "png":
        _read_ihdr(head, max_pixels)
    else:
        window = _HeaderWindow(f.fileno(), size, PREFIX_BYTES + HEADER_BUDGET)
        try:
            with reencode.quiet():
                _open_checked(window, fmt, max_pixels).close()
        except InvalidImageError as err:
            # Pillow gave up within the budget: it knows; a format that read past it is
            # probed on the whole file instead
            if err.reason == "image too large" or not window.exhausted:
                raise


class _HeaderWindow(io.RawIOBase):
    """A read-only view of an open file for Pillow's header parsers: reads go through
    ``os.pread`` (the file's own position stays put) and end, as at end of file, once
    ``budget`` bytes have been read in all."""

    def __init__(self, fd: int, size: int, budget: int):
        super().__init__()
        self._fd, self._size, self._left, self._pos = fd, size, budget, 0
        self.exhausted = False

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        want = min(len(buffer), max(self._size - self._pos, 0))
        n = min(want, self._left)
        if n < want:
            self.exhausted = True
        if n <= 0:
            return 0
        data = os.pread(self._fd, n, self._pos)
        buffer[: len(data)] = data
        self._pos += len(data)
        self._left -= len(data)
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(base + offset, 0)
        return self._pos

    def tell(self) -> int:
        return self._pos


# --- entry point ----------------------------------------------------------------------------


def probe_image(
    data: bytes,
    *,
    path: str | None = None,
    validate: str = "fast",
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> tuple[bytes, ImageInfo]:
    """Check one image file's bytes and return (bytes to store, info).

    JPEG and PNG come back as the same ``data`` object; other formats Pillow can read come
    back PNG-encoded. ``validate="decode"`` also decodes the pixels with Pillow. Raises
    :class:`InvalidImageError` whose ``reason`` is a short stable phrase ("truncated JPEG").
    """
    if validate not in _VALIDATE_MODES:
        raise ValueError(f"validate must be one of {_VALIDATE_MODES}, got {validate!r}")
    try:
        return _probe(data, validate, max_pixels)
    except InvalidImageError as err:
        if path is None:
            raise
        raise err.with_path(path) from err.__cause__


def _probe(data: bytes, validate: str, max_pixels: int) -> tuple[bytes, ImageInfo]:
    if not data:
        raise InvalidImageError("empty file")
    fmt = sniff_format(data)
    if fmt == "jpeg":
        info = _probe_jpeg(data, max_pixels)
    elif fmt == "png":
        info = _probe_png(data, max_pixels)
    else:  # a format TF cannot read, or one only Pillow knows (fmt None): PNG
        return _convert_to_png(data, fmt, max_pixels)
    if validate == "decode":
        _decode_with_pillow(data, fmt, max_pixels)
    return data, info


def _check_pixels(width: int, height: int, max_pixels: int) -> None:
    """The decompression-bomb guard, applied to header dimensions before any decode."""
    if width * height > max_pixels:
        raise InvalidImageError(
            "image too large", detail=f"{width}x{height} is over {max_pixels} pixels"
        )


# --- JPEG -----------------------------------------------------------------------------------

_EOI = b"\xff\xd9"
_SOF_SUPPORTED = frozenset({0xC0, 0xC1, 0xC2, 0xC9, 0xCA})  # sequential/progressive, Huffman/arith
# Frame types libjpeg (TF bundles libjpeg-turbo 2.1) refuses with "Unsupported SOF marker type".
_SOF_UNSUPPORTED = {
    0xC3: "lossless",
    0xC5: "hierarchical",
    0xC6: "hierarchical",
    0xC7: "hierarchical lossless",
    0xC8: "JPG extension",
    0xCB: "lossless",
    0xCD: "hierarchical",
    0xCE: "hierarchical",
    0xCF: "hierarchical lossless",
    0xF7: "JPEG-LS",
}
# Segments with a length that may come before the first scan: APPn, COM, DQT, DHT, DAC, DRI,
# DNL. Any other marker there is one libjpeg rejects ("Unsupported marker type").
_HEADER_SEGMENTS = frozenset(range(0xE0, 0xF0)) | {0xFE, 0xDB, 0xC4, 0xCC, 0xDD, 0xDC}
_STANDALONE = frozenset(range(0xD0, 0xD8)) | {0x01, 0x00}  # RSTn, TEM; FF00 is stray data
_JPEG_MAX_DIMENSION = 65500  # libjpeg's JPEG_MAX_DIMENSION
_SOF_FIELDS = struct.Struct(">BHHB")  # precision, height, width, components

# TF's decode_jpeg(channels=0) asks libjpeg for grayscale output when there is one component
# and for RGB otherwise; CMYK and YCCK (4 components) come out as 3-channel RGB.
# Checked against TF 2.21 in tests/images/test_probe.py.
_JPEG_COMPONENTS = {1: ("gray", 1), 3: ("rgb", 3), 4: ("cmyk", 3)}


def _probe_jpeg(data: bytes, max_pixels: int) -> ImageInfo:
    """Walk the marker segments from SOI to the first SOS, then look for the EOI."""
    frame, scan_start, orientation = _walk_jpeg_headers(data, max_pixels)
    # Entropy-coded data cannot contain FF D9 (an FF there is followed by 00 or RSTn), so any
    # FF D9 after the first scan header is a real EOI. rfind meets it within two bytes in a
    # normal file and also accepts cameras' trailing padding or appended data after EOI; only
    # a file that is really cut short pays for one C-speed pass over its scan data.
    if data.rfind(_EOI, scan_start) < 0:
        raise InvalidImageError("truncated JPEG", detail="no EOI marker after the image data")
    height, width, components = frame
    kind, channels = _JPEG_COMPONENTS[components]
    return ImageInfo("jpeg", height, width, channels, kind, orientation=orientation)


def _walk_jpeg_headers(data: bytes, max_pixels: int) -> tuple[tuple[int, int, int], int, int]:
    """Return ((height, width, components), offset where the first scan's data begins,
    EXIF orientation of the first Exif APP1 segment or 1)."""
    n = len(data)
    pos = 2
    frame: tuple[int, int, int] | None = None
    orientation = 0  # 0: no Exif segment seen yet
    while True:
        if pos >= n or data[pos] != 0xFF:
            # libjpeg skips stray bytes before a marker (with a warning); so do we.
            pos = data.find(b"\xff", pos)
            if pos < 0:
                raise InvalidImageError("truncated JPEG", detail="no image data after headers")
        while pos + 1 < n and data[pos + 1] == 0xFF:  # fill bytes
            pos += 1
        if pos + 1 >= n:
            raise InvalidImageError("truncated JPEG", detail="no image data after headers")
        marker = data[pos + 1]
        if marker in _STANDALONE:
            pos += 2
            continue
        if marker == 0xD9 or marker == 0xD8:
            name = "EOI" if marker == 0xD9 else "SOI"
            raise InvalidImageError("corrupt JPEG", detail=f"{name} at byte {pos} before any scan")
        if pos + 4 > n:
            raise InvalidImageError("truncated JPEG", detail=f"file ends in a marker at {pos}")
        seg_len = (data[pos + 2] << 8) | data[pos + 3]
        end = pos + 2 + seg_len
        if seg_len < 2:
            raise InvalidImageError("corrupt JPEG", detail=f"segment length {seg_len} at {pos}")
        if end > n:
            raise InvalidImageError(
                "truncated JPEG", detail=f"segment 0xFF{marker:02X} at byte {pos} runs past the end"
            )
        if marker == 0xDA:
            if frame is None:
                raise InvalidImageError("corrupt JPEG", detail="scan (SOS) before any frame (SOF)")
            return frame, end, orientation or 1
        if marker in _SOF_SUPPORTED:
            if frame is not None:
                raise InvalidImageError("corrupt JPEG", detail=f"second SOF marker at byte {pos}")
            frame = _read_sof(data, pos, seg_len, max_pixels)
        elif marker in _SOF_UNSUPPORTED:
            raise InvalidImageError(
                "unsupported image", detail=f"{_SOF_UNSUPPORTED[marker]} JPEG, which TF cannot read"
            )
        elif marker not in _HEADER_SEGMENTS:
            raise InvalidImageError(
                "corrupt JPEG", detail=f"unexpected marker 0xFF{marker:02X} at byte {pos}"
            )
        elif marker == 0xE1 and not orientation and data[pos + 4 : pos + 10] == _EXIF_HEADER:
            orientation = exif_orientation(memoryview(data)[pos + 10 : end])
        pos = end


def _read_sof(data: bytes, pos: int, seg_len: int, max_pixels: int) -> tuple[int, int, int]:
    """Validate a start-of-frame segment; return (height, width, components)."""
    if seg_len < 8:
        raise InvalidImageError("corrupt JPEG", detail=f"SOF segment of {seg_len} bytes")
    precision, height, width, components = _SOF_FIELDS.unpack_from(data, pos + 4)
    if seg_len != 8 + 3 * components or components == 0 or width == 0:
        raise InvalidImageError(
            "corrupt JPEG", detail=f"bad SOF: {width}x{height}, {components} components"
        )
    if height == 0:
        raise InvalidImageError("unsupported image", detail="JPEG height set by a DNL marker")
    _check_pixels(width, height, max_pixels)
    if precision != 8:
        raise InvalidImageError("unsupported image", detail=f"{precision}-bit JPEG")
    if width > _JPEG_MAX_DIMENSION or height > _JPEG_MAX_DIMENSION:
        raise InvalidImageError("unsupported image", detail=f"JPEG side over {_JPEG_MAX_DIMENSION}")
    if components not in _JPEG_COMPONENTS:
        raise InvalidImageError("unsupported image", detail=f"JPEG with {components} components")
    return height, width, components


# --- PNG ------------------------------------------------------------------------------------

_CHUNK_HEAD = struct.Struct(">I4s")
_U32 = struct.Struct(">I")
_IHDR_FIELDS = struct.Struct(">IIBBBBB")
_PNG_MAX_CHUNK = 0x7FFFFFFF
_PNG_USER_LIMIT = 1_000_000  # libpng's default width/height limit: TF rejects larger sides
# colour type -> (kind, channels, allowed bit depths). TF's decode_png(channels=0) returns
# libpng's channel count, except palette images, which it expands to RGB, or RGBA if a tRNS
# chunk is present. A tRNS chunk on gray or RGB images adds no channel. 16-bit images keep
# their channel count (decode_png's default dtype scales them to uint8). Checked against
# TF 2.21 in tests/images/test_probe.py.
_PNG_COLOR_TYPES = {
    0: ("gray", 1, frozenset({1, 2, 4, 8, 16})),
    2: ("rgb", 3, frozenset({8, 16})),
    3: ("palette", 3, frozenset({1, 2, 4, 8})),
    4: ("gray+alpha", 2, frozenset({8, 16})),
    6: ("rgba", 4, frozenset({8, 16})),
}


def _probe_png(data: bytes, max_pixels: int) -> ImageInfo:
    """Read IHDR, then walk every chunk checking its CRC, up to IEND."""
    width, height, depth, color_type = _read_ihdr(data, max_pixels)
    has_trns, orientation = _walk_png_chunks(data, needs_plte=color_type == 3)
    kind, channels, _ = _PNG_COLOR_TYPES[color_type]
    if color_type == 3 and has_trns:
        channels = 4
    if depth == 16:
        kind = "16-bit"
    return ImageInfo("png", height, width, channels, kind, orientation=orientation)


def _read_ihdr(data: bytes, max_pixels: int) -> tuple[int, int, int, int]:
    """Return (width, height, bit depth, colour type) from a validated IHDR."""
    if len(data) < 33:
        raise InvalidImageError("truncated PNG", detail="file ends inside the IHDR chunk")
    length, ctype = _CHUNK_HEAD.unpack_from(data, 8)
    if ctype != b"IHDR" or length != 13:
        raise InvalidImageError("corrupt PNG", detail="first chunk is not a 13-byte IHDR")
    width, height, depth, color_type, compression, filtering, interlace = _IHDR_FIELDS.unpack_from(
        data, 16
    )
    spec = _PNG_COLOR_TYPES.get(color_type)
    if (
        spec is None
        or depth not in spec[2]
        or not 0 < width <= _PNG_MAX_CHUNK
        or not 0 < height <= _PNG_MAX_CHUNK
        or compression != 0
        or filtering != 0
        or interlace > 1
    ):
        raise InvalidImageError(
            "corrupt PNG",
            detail=f"bad IHDR: {width}x{height}, depth {depth}, colour type {color_type}",
        )
    _check_pixels(width, height, max_pixels)
    if width > _PNG_USER_LIMIT or height > _PNG_USER_LIMIT:
        raise InvalidImageError("unsupported image", detail=f"PNG side over {_PNG_USER_LIMIT}")
    return width, height, depth, color_type


def _walk_png_chunks(data: bytes, *, needs_plte: bool) -> tuple[bool, int]:
    """Check every chunk's CRC and that IDAT and IEND are present; return ("tRNS before
    IDAT", EXIF orientation of the first eXIf chunk or 1)."""
    view = memoryview(data)
    n = len(data)
    pos = 8
    seen_idat = seen_plte = has_trns = False
    orientation = 0  # 0: no eXIf chunk seen yet
    while True:
        if pos + 12 > n:
            raise InvalidImageError("truncated PNG", detail=f"no IEND chunk (file ends at {n})")
        length, ctype = _CHUNK_HEAD.unpack_from(data, pos)
        end = pos + 8 + length
        if length > _PNG_MAX_CHUNK or end + 4 > n:
            raise InvalidImageError(
                "truncated PNG", detail=f"chunk {ctype!r} at byte {pos} runs past the end"
            )
        if zlib.crc32(view[pos + 4 : end]) != _U32.unpack_from(data, end)[0]:
            raise InvalidImageError(
                "PNG chunk CRC mismatch", detail=f"chunk {ctype!r} at byte {pos}"
            )
        if ctype == b"IDAT":
            seen_idat = True
        elif ctype == b"IEND":
            break
        elif ctype == b"PLTE":
            seen_plte = True
        elif ctype == b"tRNS" and not seen_idat:  # libpng only honours tRNS before IDAT
            has_trns = True
        elif ctype == b"eXIf" and not orientation:
            exif = view[pos + 8 : end]  # some writers keep the JPEG-style header there
            orientation = exif_orientation(exif[6:] if exif[:6] == _EXIF_HEADER else exif)
        pos = end + 4
    if not seen_idat:
        raise InvalidImageError("corrupt PNG", detail="no IDAT chunk")
    if needs_plte and not seen_plte:
        raise InvalidImageError("corrupt PNG", detail="palette image without a PLTE chunk")
    return has_trns, orientation or 1


# --- EXIF orientation -----------------------------------------------------------------------

_EXIF_HEADER = b"Exif\x00\x00"  # starts a JPEG APP1 segment holding EXIF
_ORIENTATION_TAG = 0x0112
_IFD_ENTRY = {"<": struct.Struct("<HHI4s"), ">": struct.Struct(">HHI4s")}


def exif_orientation(tiff: bytes | memoryview) -> int:
    """The Orientation tag (1-8) of EXIF data (a TIFF header and IFD0, as in a JPEG's APP1
    after ``Exif\\0\\0`` or a PNG's eXIf chunk); 1 when absent, malformed or out of range."""
    if len(tiff) < 8:
        return 1
    order = {b"II": "<", b"MM": ">"}.get(bytes(tiff[:2]))
    if order is None:
        return 1
    magic, ifd = struct.unpack_from(order + "HI", tiff, 2)
    if magic != 42 or ifd + 2 > len(tiff):
        return 1
    (count,) = struct.unpack_from(order + "H", tiff, ifd)
    entry = _IFD_ENTRY[order]
    for at in range(ifd + 2, min(ifd + 2 + 12 * count, len(tiff) - 11), 12):
        tag, kind, n, value = entry.unpack_from(tiff, at)
        if tag == _ORIENTATION_TAG:
            if n != 1 or kind not in (3, 4):  # SHORT (as the standard says) or LONG
                return 1
            number = struct.unpack_from(order + ("H" if kind == 3 else "I"), value)[0]
            return number if 1 <= number <= 8 else 1
    return 1


# --- other formats: Pillow (reencode.py) ---------------------------------------------------


def _open_checked(source, fmt: str | None, max_pixels: int) -> PILImage.Image:
    """Open ``source`` with Pillow (``reencode.open_image``) and check its dimensions."""
    image = reencode.open_image(source, fmt)
    width, height = image.size
    _check_pixels(width, height, max_pixels)
    if width == 0 or height == 0:
        raise reencode.unsupported(image.format, f"{width}x{height} image")
    return image


def _decode_with_pillow(data: bytes, fmt: str, max_pixels: int) -> None:
    """Decode every pixel, to catch corrupt entropy-coded or zlib data."""
    with reencode.quiet():
        try:
            image = _open_checked(data, fmt, max_pixels)
        except InvalidImageError as err:
            if err.reason == "image too large":
                raise
            raise InvalidImageError("decode failed", detail=err.reason) from err
        reencode.load(image)


def _convert_to_png(data: bytes, fmt: str | None, max_pixels: int) -> tuple[bytes, ImageInfo]:
    """Re-encode a format TF cannot read as PNG: upright, values kept (``reencode.to_png``)."""
    with reencode.quiet():
        image = _open_checked(data, fmt, max_pixels)
        png = reencode.to_png(image)
    info = _probe_png(png, max_pixels)  # channels and kind exactly as a reader will see them
    return png, replace(info, converted_from=fmt or (image.format or "unknown").lower())
