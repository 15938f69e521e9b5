"""The record schema: one source of truth for feature keys, the Example builder used by the
writer, and a TensorFlow-free Example parser used by the tools (the reader's tf.io parse spec
is built from these keys in ``read.decode``).

Data flow: image bytes + label -> **Example bytes** -> framing. The keys are those of
TensorFlow's own image dataset scripts, so existing decoders read our shards (FORMAT.md).

Examples are serialised here with a few lines of protobuf wire format instead of
``tf.train.Example``: conversion then never imports TensorFlow (seconds and hundreds of MB
per process). Tests check the bytes against TensorFlow's parser.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

ENCODED = "image/encoded"
FORMAT = "image/format"
HEIGHT = "image/height"
WIDTH = "image/width"
CHANNELS = "image/channels"
LABEL = "image/class/label"
TEXT = "image/class/text"
FILENAME = "image/filename"
#: EXIF orientation (1-8) of the stored image, for readers to apply; written only when it is
#: not 1 (absent means 1), so records of upright images stay what they always were.
ORIENTATION = "image/orientation"

#: Feature key -> type, as written to the manifest's "features".
FEATURES: dict[str, str] = {
    ENCODED: "bytes",
    FORMAT: "bytes",
    HEIGHT: "int64",
    WIDTH: "int64",
    CHANNELS: "int64",
    LABEL: "int64",
    TEXT: "bytes",
    FILENAME: "bytes",
}
#: Keys a record has only sometimes; the manifest lists one once some record has it.
OPTIONAL_FEATURES: dict[str, str] = {ORIENTATION: "int64"}

IMAGE_FORMATS = ("jpeg", "png", "raw")

# Feature field numbers (tensorflow/core/example/feature.proto).
_BYTES_LIST, _FLOAT_LIST, _INT64_LIST = 1, 2, 3


_SMALL = tuple(bytes((i,)) for i in range(128))


def _varint(value: int) -> bytes:
    if 0 <= value < 0x80:
        return _SMALL[value]
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _entry_head(key: str, feature_len: int) -> bytes:
    """Map entry up to (not including) the Feature bytes: tag, length, key, value tag."""
    k = key.encode()
    inner = 2 + len(k) + len(_varint(feature_len)) + 1 + feature_len
    return b"\x0a" + _varint(inner) + b"\x0a" + _varint(len(k)) + k + b"\x12" + _varint(feature_len)


@functools.lru_cache(maxsize=8192)  # image sizes repeat for small images, names' lengths too
def _bytes_head(key: str, n: int) -> bytes:
    """Everything of a bytes feature's map entry that comes before its ``n`` value bytes."""
    value_head = b"\x0a" + _varint(n)  # BytesList.value
    list_len = len(value_head) + n
    feature_head = b"\x0a" + _varint(list_len)  # Feature.bytes_list
    return _entry_head(key, len(feature_head) + list_len) + feature_head + value_head


@functools.lru_cache(maxsize=4096)  # heights, widths, labels repeat: encode each once
def _int64_entry(key: str, value: int) -> bytes:
    packed = _varint(value)
    int_list = b"\x0a" + _varint(len(packed)) + packed  # Int64List.value, packed
    feature = b"\x1a" + _varint(len(int_list)) + int_list  # Feature.int64_list
    return _entry_head(key, len(feature)) + feature


def _bytes_entry(key: str, value: bytes) -> bytes:
    return _bytes_head(key, len(value)) + value


@functools.lru_cache(maxsize=4096)  # formats and class names repeat
def _text_entry(key: str, value: str) -> bytes:
    return _bytes_entry(key, value.encode())


def encode_example_parts(
    *,
    encoded: bytes,
    image_format: str,
    height: int,
    width: int,
    channels: int,
    label: int,
    text: str,
    filename: str,
    orientation: int = 1,
) -> tuple[bytes, bytes]:
    """A serialised ``tf.train.Example`` with the FORMAT.md image keys, as two parts:
    everything before the image bytes, and the image bytes themselves (not copied).
    ``orientation`` (EXIF, 1-8) is written only when it is not 1."""
    if not 1 <= orientation <= 8:
        raise ValueError(f"orientation must be an EXIF orientation 1-8, got {orientation}")
    small = b"".join(
        (
            _text_entry(FORMAT, image_format),
            _int64_entry(HEIGHT, height),
            _int64_entry(WIDTH, width),
            _int64_entry(CHANNELS, channels),
            _int64_entry(ORIENTATION, orientation) if orientation != 1 else b"",
            _int64_entry(LABEL, label),
            _text_entry(TEXT, text),
            _bytes_entry(FILENAME, filename.encode("utf-8", "surrogateescape")),
            _bytes_head(ENCODED, len(encoded)),
        )
    )
    return _features_head(len(small) + len(encoded)) + small, encoded


def shared_fields_encoder(
    *, image_format: str, height: int, width: int, channels: int
) -> Callable[[bytes, int, str, str], bytes]:
    """``encode(encoded, label, text, filename)`` -> the whole Example bytes, for many images
    of one format and shape (MNIST): the fields they share are serialised once. The bytes
    equal :func:`encode_example`'s for the same values."""
    shared = b"".join(
        (
            _text_entry(FORMAT, image_format),
            _int64_entry(HEIGHT, height),
            _int64_entry(WIDTH, width),
            _int64_entry(CHANNELS, channels),
        )
    )

    def encode(encoded: bytes, label: int, text: str, filename: str) -> bytes:
        name = filename.encode()
        small = b"".join(
            (
                shared,
                _int64_entry(LABEL, label),
                _text_entry(TEXT, text),
                _bytes_head(FILENAME, len(name)),
                name,
                _bytes_head(ENCODED, len(encoded)),
            )
        )
        return b"".join((_features_head(len(small) + len(encoded)), small, encoded))

    return encode


@functools.lru_cache(maxsize=8192)
def _features_head(size: int) -> bytes:
    return b"\x0a" + _varint(size)  # Example.features


def encode_example(**fields) -> bytes:
    """The same Example as one bytes object (see :func:`encode_example_parts`)."""
    return b"".join(encode_example_parts(**fields))


class ExampleParseError(ValueError):
    """Bytes that are not a well-formed tf.train.Example."""


def _read_varint(buf: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ExampleParseError("varint runs past the end")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ExampleParseError("varint too long")


def _fields(buf: memoryview):
    """Yield (field number, wire type, value) of a message; value is a memoryview for
    length-delimited fields and an int otherwise."""
    pos = 0
    while pos < len(buf):
        key, pos = _read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _read_varint(buf, pos)
        elif wire == 2:
            length, pos = _read_varint(buf, pos)
            if pos + length > len(buf):
                raise ExampleParseError("field runs past the end")
            value, pos = buf[pos : pos + length], pos + length
        elif wire == 5:
            value, pos = int.from_bytes(buf[pos : pos + 4], "little"), pos + 4
        elif wire == 1:
            value, pos = int.from_bytes(buf[pos : pos + 8], "little"), pos + 8
        else:
            raise ExampleParseError(f"unsupported wire type {wire}")
        yield number, wire, value


def message_kind(data: bytes | memoryview) -> str:
    """What a record's top-level message looks like on the wire: ``"example"`` (field 1
    only, a ``Features``), ``"sequence_example"`` (``feature_lists``, field 2),
    ``"event"`` (a TensorBoard ``tf.Event``: ``wall_time``, a fixed64 field 1) or
    ``"unknown"`` (not a protobuf message these describe)."""
    try:
        fields = [(number, wire) for number, wire, _ in _fields(memoryview(data))]
    except (ExampleParseError, ValueError):
        return "unknown"
    if (1, 1) in fields:
        return "event"
    if (2, 2) in fields and all(n in (1, 2) for n, _ in fields):
        return "sequence_example"
    if all(n == 1 and w == 2 for n, w in fields):
        return "example"
    return "unknown"


def _parse_feature(buf: memoryview) -> tuple[str, list[Any]]:
    import struct

    for number, _wire, value in _fields(buf):
        if number == _BYTES_LIST:
            return "bytes", [bytes(v) for n, _w, v in _fields(value) if n == 1]
        if number == _INT64_LIST:
            out: list[Any] = []
            for n, w, v in _fields(value):
                if n != 1:
                    continue
                if w == 0:
                    out.append(v - (1 << 64) if v >= 1 << 63 else v)
                    continue
                pos = 0
                while pos < len(v):
                    item, pos = _read_varint(v, pos)
                    out.append(item - (1 << 64) if item >= 1 << 63 else item)
            return "int64", out
        if number == _FLOAT_LIST:
            out = []
            for n, w, v in _fields(value):
                if n == 1 and w == 2:
                    out.extend(struct.unpack(f"<{len(v) // 4}f", v))
                elif n == 1 and w == 5:
                    out.append(struct.unpack("<f", v.to_bytes(4, "little"))[0])
            return "float", out
    return "empty", []


def decode_example(data: bytes) -> dict[str, tuple[str, list[Any]]]:
    """Parse a serialised Example without TensorFlow: ``{key: (type, values)}``."""
    features: dict[str, tuple[str, list[Any]]] = {}
    for number, wire, value in _fields(memoryview(data)):
        if number != 1 or wire != 2:
            continue
        for n, w, entry in _fields(value):
            if n != 1 or w != 2:
                continue
            key, feature = "", memoryview(b"")
            for en, _ew, ev in _fields(entry):
                if en == 1:
                    key = bytes(ev).decode("utf-8", "replace")
                elif en == 2:
                    feature = ev
            features[key] = _parse_feature(feature)
    return features
