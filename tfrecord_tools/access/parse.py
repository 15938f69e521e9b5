"""The image keys of a serialised ``tf.train.Example``, without TensorFlow and without
touching the protobuf registrations TensorFlow makes (it owns ``tensorflow.Example`` in the
default descriptor pool; a second registration there would clash).

Data flow: record bytes -> **parse** (the seven keys a reader needs) -> decode.

Two parsers, same answers (tests compare them): the ``Example`` schema built into a
*private* ``DescriptorPool`` (package ``tfrecord_tools_private``), parsed by protobuf's C
(upb) backend, used when the ``protobuf`` package imports; and a pure-Python walk of
the wire format as the fallback. Measured on one core (Python 3.11, protobuf 7.36 upb), a
28x28 digit's record: 3.9 us with the private pool, 13 us pure Python; a 100 KB photo's:
8 us and 14 us, plus protobuf's copies of the record and the image (~100 us for 120 KB), so
records of ``PURE_FROM`` bytes or more go the pure way over a memoryview. A malformed
message is an :class:`ExampleParseError` either way.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from ..format import example
from ..format.example import ExampleParseError

__all__ = [
    "ExampleParseError",
    "ImageFields",
    "field_spans",
    "parse_image_example",
    "parse_image_example_pure",
]

_ENCODED = example.ENCODED.encode()
_FORMAT = example.FORMAT.encode()
_HEIGHT = example.HEIGHT.encode()
_WIDTH = example.WIDTH.encode()
_CHANNELS = example.CHANNELS.encode()
_LABEL = example.LABEL.encode()
_ORIENTATION = example.ORIENTATION.encode()
#: Records at least this long are parsed in pure Python over a memoryview: protobuf copies
#: the record and then the image bytes (a 120 KB photo's record: 100 us, against 18 us
#: without the copies); shorter ones are faster through protobuf's C parser.
PURE_FROM = 16 << 10


@dataclass(frozen=True, slots=True)
class ImageFields:
    """What a reader needs of one record; ints are 0 (label -1) when the key is missing,
    as in the tf.data reader's parse spec."""

    encoded: bytes | memoryview
    format: str
    height: int
    width: int
    channels: int
    label: int
    orientation: int = 1  # EXIF orientation, image/orientation (absent: 1)


def _varint(buf, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end:
            raise ExampleParseError("varint runs past the end")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ExampleParseError("varint too long")


def _skip(buf, wire: int, pos: int, end: int) -> int:
    """The position after a field's value of wire type ``wire``."""
    if wire == 0:
        return _varint(buf, pos, end)[1]
    if wire == 2:
        length, pos = _varint(buf, pos, end)
        return pos + length
    if wire == 1:
        return pos + 8
    if wire == 5:
        return pos + 4
    raise ExampleParseError(f"unsupported wire type {wire}")


def _length(buf, pos: int, end: int) -> tuple[int, int]:
    """A length prefix (one-byte fast path) and the position after it, checked to fit."""
    n = buf[pos]
    if n < 0x80:
        pos += 1
    else:
        n, pos = _varint(buf, pos, end)
    if pos + n > end:
        raise ExampleParseError("field runs past the end")
    return n, pos


def _first_value(buf, pos: int, end: int) -> tuple[bool, int, int]:
    """Inside a Feature: (is_int64, start, end) of its first value: the bytes of a
    BytesList's first value, or the varints of an Int64List (packed or not)."""
    while pos < end:
        tag = buf[pos]
        pos += 1
        if tag == 0x0A or tag == 0x1A:  # bytes_list / int64_list, length-delimited
            n, pos = _length(buf, pos, end)
            inner_end = pos + n
            while pos < inner_end:
                inner = buf[pos]
                pos += 1
                if inner == 0x0A:  # value, length-delimited: bytes, or packed int64s
                    m, pos = _length(buf, pos, inner_end)
                    return tag == 0x1A, pos, pos + m
                if inner == 0x08 and tag == 0x1A:  # one unpacked int64
                    return True, pos, inner_end
                pos = _skip(buf, inner & 7, pos, inner_end)
            return tag == 0x1A, pos, pos
        pos = _skip(buf, tag & 7, pos, end)
    return False, end, end


def _int(buf, start: int, end: int) -> int:
    if start >= end:
        return 0
    value = _varint(buf, start, end)[0]
    return value - (1 << 64) if value >= 1 << 63 else value


def field_spans(data: bytes | memoryview) -> dict[bytes, tuple[bool, int, int]]:
    """Every feature key of an Example -> (is an int64 list, start, end) of its first
    value's bytes in ``data`` (the varints of an int64 list, a bytes list's first value).
    What the pure parser reads, and what the batch reader's vectorised path checks every
    record's layout against."""
    buf = data
    end = len(buf)
    found: dict[bytes, tuple[bool, int, int]] = {}
    pos = 0
    try:
        while pos < end:
            tag = buf[pos]
            pos += 1
            if tag != 0x0A:  # not Example.features
                pos = _skip(buf, tag & 7, pos, end)
                continue
            n, pos = _length(buf, pos, end)
            features_end = pos + n
            while pos < features_end:
                tag = buf[pos]
                pos += 1
                if tag != 0x0A:  # not Features.feature (a map entry)
                    pos = _skip(buf, tag & 7, pos, features_end)
                    continue
                n, pos = _length(buf, pos, features_end)
                entry_end = pos + n
                key = b""
                value = None
                while pos < entry_end:
                    tag = buf[pos]
                    pos += 1
                    if tag == 0x0A:
                        n, pos = _length(buf, pos, entry_end)
                        key = bytes(buf[pos : pos + n])
                        pos += n
                    elif tag == 0x12:
                        n, pos = _length(buf, pos, entry_end)
                        value = (pos, pos + n)
                        pos += n
                    else:
                        pos = _skip(buf, tag & 7, pos, entry_end)
                if value is not None:
                    found[key] = _first_value(buf, *value)
                pos = entry_end
    except IndexError:
        raise ExampleParseError("message runs past the end") from None
    if pos != end:
        raise ExampleParseError("message runs past the end")
    return found


def parse_image_example_pure(data: bytes | memoryview) -> ImageFields:
    """The image keys of an Example (FORMAT.md), in pure Python. ``encoded`` is a slice of
    ``data``'s buffer when ``data`` is a memoryview (no copy), else bytes."""
    buf = data
    found = field_spans(buf)
    return ImageFields(
        encoded=buf[found[_ENCODED][1] : found[_ENCODED][2]] if _ENCODED in found else b"",
        format=_text(buf, found.get(_FORMAT)),
        height=_int(buf, *found[_HEIGHT][1:]) if _HEIGHT in found else 0,
        width=_int(buf, *found[_WIDTH][1:]) if _WIDTH in found else 0,
        channels=_int(buf, *found[_CHANNELS][1:]) if _CHANNELS in found else 0,
        label=_int(buf, *found[_LABEL][1:]) if _LABEL in found else -1,
        orientation=_int(buf, *found[_ORIENTATION][1:]) if _ORIENTATION in found else 1,
    )


def _text(buf, where: tuple[bool, int, int] | None) -> str:
    if where is None or where[0]:
        return ""
    return bytes(buf[where[1] : where[2]]).decode("ascii", "replace").strip().lower()


@functools.cache
def _example_class():
    """``Example`` as a message class of a private descriptor pool, or None without the
    protobuf package. Field numbers and types are feature.proto's / example.proto's."""
    try:
        from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    except ImportError:
        return None
    package = "tfrecord_tools_private"
    proto = descriptor_pb2.FileDescriptorProto(
        name=f"{package}/example.proto", package=package, syntax="proto3"
    )
    field = descriptor_pb2.FieldDescriptorProto
    repeated, optional = field.LABEL_REPEATED, field.LABEL_OPTIONAL
    for name, kind in (("BytesList", field.TYPE_BYTES), ("FloatList", field.TYPE_FLOAT)):
        proto.message_type.add(name=name).field.add(
            name="value", number=1, label=repeated, type=kind
        )
    proto.message_type.add(name="Int64List").field.add(
        name="value", number=1, label=repeated, type=field.TYPE_INT64
    )
    feature = proto.message_type.add(name="Feature")
    feature.oneof_decl.add(name="kind")
    for number, name in enumerate(("bytes_list", "float_list", "int64_list"), 1):
        list_type = f".{package}.{name.title().replace('_', '')}"
        feature.field.add(
            name=name,
            number=number,
            label=optional,
            type=field.TYPE_MESSAGE,
            type_name=list_type,
            oneof_index=0,
        )
    features = proto.message_type.add(name="Features")
    entry = features.nested_type.add(name="FeatureEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, label=optional, type=field.TYPE_STRING)
    entry.field.add(
        name="value", number=2, label=optional, type=field.TYPE_MESSAGE,
        type_name=f".{package}.Feature",
    )  # fmt: skip
    features.field.add(
        name="feature", number=1, label=repeated, type=field.TYPE_MESSAGE,
        type_name=f".{package}.Features.FeatureEntry",
    )  # fmt: skip
    proto.message_type.add(name="Example").field.add(
        name="features", number=1, label=optional, type=field.TYPE_MESSAGE,
        type_name=f".{package}.Features",
    )  # fmt: skip
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{package}.Example"))


def _protobuf_parse(example_class, data: bytes | memoryview) -> ImageFields:
    from google.protobuf.message import DecodeError

    try:
        feature = example_class.FromString(data).features.feature
    except DecodeError as e:
        raise ExampleParseError(str(e)) from None

    def first_int(key: str, default: int) -> int:
        value = feature.get(key)
        values = value.int64_list.value if value is not None else ()
        return values[0] if values else default

    encoded = feature.get(example.ENCODED)
    encoded_values = encoded.bytes_list.value if encoded is not None else ()
    fmt = feature.get(example.FORMAT)
    fmt_values = fmt.bytes_list.value if fmt is not None else ()
    return ImageFields(
        encoded=encoded_values[0] if encoded_values else b"",
        format=fmt_values[0].decode("ascii", "replace").strip().lower() if fmt_values else "",
        height=first_int(example.HEIGHT, 0),
        width=first_int(example.WIDTH, 0),
        channels=first_int(example.CHANNELS, 0),
        label=first_int(example.LABEL, -1),
        orientation=first_int(example.ORIENTATION, 1),
    )


def parse_image_example(data: bytes | memoryview) -> ImageFields:
    """The image keys of an Example (FORMAT.md): protobuf's C parser in a private pool when
    the protobuf package is there and the record is shorter than :data:`PURE_FROM`, else
    :func:`parse_image_example_pure` (``encoded`` then a slice of a memoryview ``data``)."""
    example_class = _example_class()
    if example_class is None or len(data) >= PURE_FROM:
        return parse_image_example_pure(data)
    return _protobuf_parse(example_class, data)
