"""EXIF orientation in the graph: making a decoded image upright, and finding a raw file's
orientation in its own bytes (the raw-file twin's counterpart of ``image/orientation``).

Data flow: decoded image + orientation (the record's ``image/orientation``, or
:func:`exif_orientation` of the file's bytes) -> **orient** -> resize. The converter's
probe reads the same tag in Python (``images.probe``); a test checks they agree.
"""

from __future__ import annotations

import tensorflow as tf


def orient(image: tf.Tensor, orientation: tf.Tensor) -> tf.Tensor:
    """``image`` ([H, W, C]) made upright for its EXIF ``orientation`` (1-8; anything else
    is taken as 1), as ``PIL.ImageOps.exif_transpose`` does; 5-8 swap height and width."""

    def transposed() -> tf.Tensor:
        return tf.transpose(image, [1, 0, 2])

    branches = [
        lambda: image,  # 1: upright
        lambda: tf.reverse(image, [1]),  # 2: mirrored left-right
        lambda: tf.reverse(image, [0, 1]),  # 3: rotated 180
        lambda: tf.reverse(image, [0]),  # 4: mirrored top-bottom
        transposed,  # 5: mirrored along the main diagonal
        lambda: tf.reverse(transposed(), [1]),  # 6: needs 90 degrees clockwise
        lambda: tf.reverse(transposed(), [0, 1]),  # 7: mirrored along the other diagonal
        lambda: tf.reverse(transposed(), [0]),  # 8: needs 90 degrees counter-clockwise
    ]
    index = tf.cast(orientation, tf.int32) - 1
    index = tf.where((index >= 0) & (index < 8), index, 0)
    out = tf.switch_case(index, branches)
    out.set_shape([None, None, image.shape[-1]])
    return out


# bytes of a raw file searched for its EXIF header: a JPEG's comes right after SOI (or JFIF's
# APP0), a PNG's eXIf chunk after IHDR and the likes of an ICC profile
_EXIF_SEARCH = {"jpeg": 1 << 11, "png": 1 << 13}
_IFD_ENTRIES = 32  # IFD0 entries looked at (tags are sorted; Orientation, 274, comes early)


def exif_orientation(encoded: tf.Tensor) -> tf.Tensor:
    """int64 EXIF orientation (1-8, or 1) of JPEG / PNG file bytes, for a scalar or a 1-D
    batch, in graph ops: the raw-file twin's counterpart of the converter's ``image/orientation``.

    JPEG: the first ``Exif\\0\\0`` header that opens an APP1 segment within the first 2 KiB
    (Exif comes right after SOI, or after JFIF's APP0); PNG: the first eXIf chunk within the
    first 8 KiB. Then the Orientation tag among the first 32 entries of IFD0, as a SHORT or
    LONG. Other formats, and anything malformed, give 1. A few microseconds an image.
    """
    scalar = encoded.shape.rank == 0
    encoded = tf.reshape(encoded, [-1])
    is_jpeg = tf.equal(tf.strings.substr(encoded, 0, 3), b"\xff\xd8\xff")
    is_png = tf.equal(tf.strings.substr(encoded, 0, 4), b"\x89PNG")

    def find(sep: bytes, where: tf.Tensor, fmt: str) -> tuple[tf.Tensor, tf.Tensor]:
        """(found, offset) of ``sep`` in the first bytes of the files of one format."""
        window = tf.where(where, _EXIF_SEARCH[fmt], 0)  # others: nothing to search
        parts = tf.strings.split(
            _substr(encoded, tf.zeros_like(window), window), sep=sep, maxsplit=1
        )
        before = tf.gather(parts.values, parts.row_starts())  # every row has a first part
        return tf.equal(parts.row_lengths(), 2), tf.strings.length(before)

    in_jpeg, at_jpeg = find(b"Exif\x00\x00", is_jpeg, "jpeg")
    app1 = _substr(encoded, tf.maximum(at_jpeg - 4, 0), 2)
    in_jpeg = in_jpeg & tf.equal(app1, b"\xff\xe1") & (at_jpeg >= 4)
    in_png, at_png = find(b"eXIf", is_png, "png")
    found = in_jpeg | in_png
    start = tf.where(in_jpeg, at_jpeg + 6, tf.where(in_png, at_png + 4, 0))  # the TIFF header
    jpeg_style = tf.equal(_substr(encoded, start, 6), b"Exif\x00\x00")  # in some eXIf chunks
    start = tf.where(in_png & jpeg_style, start + 6, start)

    def raw(data: tf.Tensor, n: int) -> tf.Tensor:  # [batch, n] int64, zero-padded
        return tf.cast(tf.io.decode_raw(data, tf.uint8, fixed_length=n), tf.int64)

    header = raw(_substr(encoded, start, 8), 8)
    little = tf.equal(header[:, 0], 0x49) & tf.equal(header[:, 1], 0x49)
    big = tf.equal(header[:, 0], 0x4D) & tf.equal(header[:, 1], 0x4D)

    def number(b: tf.Tensor, width: int) -> tf.Tensor:  # unsigned ints from the last axis
        le = sum(b[..., i] * (1 << (8 * i)) for i in range(width))
        be = sum(b[..., i] * (1 << (8 * (width - 1 - i))) for i in range(width))
        order = tf.reshape(little, [-1] + [1] * (b.shape.rank - 2))
        return tf.where(order, le, be)

    ok = found & (little | big) & tf.equal(number(header[:, 2:4], 2), 42)
    size = tf.cast(tf.strings.length(encoded), tf.int64)
    ifd = tf.minimum(tf.cast(start, tf.int64) + number(header[:, 4:8], 4), size)
    table = raw(
        _substr(encoded, tf.cast(ifd, tf.int32), 2 + 12 * _IFD_ENTRIES),
        2 + 12 * _IFD_ENTRIES,
    )
    count = number(table[:, :2], 2)
    entries = tf.reshape(table[:, 2:], [-1, _IFD_ENTRIES, 12])
    kind = number(entries[..., 2:4], 2)
    value = tf.where(
        tf.equal(kind, 3), number(entries[..., 8:10], 2), number(entries[..., 8:12], 4)
    )
    match = (
        tf.equal(number(entries[..., 0:2], 2), 0x0112)
        & (tf.range(_IFD_ENTRIES, dtype=tf.int64)[None, :] < count[:, None])
        & tf.equal(number(entries[..., 4:8], 4), 1)
        & (tf.equal(kind, 3) | tf.equal(kind, 4))
    )
    orientation = tf.reduce_max(tf.where(match, value, 0), axis=1)
    orientation = tf.where(ok & (orientation >= 1) & (orientation <= 8), orientation, 1)
    return orientation[0] if scalar else orientation


def _substr(strings: tf.Tensor, pos: tf.Tensor, length: int | tf.Tensor) -> tf.Tensor:
    """``substr`` with a position per string (``Substr`` wants a length per string then)."""
    if isinstance(length, int):
        length = tf.fill(tf.shape(pos), length)
    return tf.strings.substr(strings, pos, length)
