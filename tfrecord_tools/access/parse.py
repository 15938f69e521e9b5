"""The image keys of a serialised ``tf.train.Example``, without TensorFlow and without
touching the protobuf registrations TensorFlow makes (it owns ``tensorflow.Example`` in the
default descriptor pool; a second registration there would clash).

Data flow: record bytes -> **parse** (the seven keys a reader needs) -> decode.

Two parsers of one record, same answers (tests compare them): the ``Example`` schema built into a
*private* ``DescriptorPool`` (package ``tfrecord_tools_private``), parsed by protobuf's C
(upb) backend, used when the ``protobuf`` package imports; and a pure-Python walk of
the wire format as the fallback. Measured on one core (Python 3.11, protobuf 7.36 upb), a
28x28 digit's record: 3.9 us with the private pool, 13 us pure Python; a 100 KB photo's:
8 us and 14 us, plus protobuf's copies of the record and the image (~100 us for 120 KB), so
records of ``PURE_FROM`` bytes or more go the pure way over a memoryview. A malformed
message is an :class:`ExampleParseError` either way.

Many records at once (:func:`parse_image_batch`, what batched reads use): the entries of
records laid out as the first one (the same keys in the same order, as our writer makes
them) walked as numpy arrays, one operation per step for the whole batch (a 256-record
batch of 28x28 PNG digits: ~0.5 us a record); a record that does not follow the layout
exactly is left to the parsers above.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ..format import example
from ..format.example import ExampleParseError

__all__ = [
    "ExampleParseError",
    "ImageFields",
    "field_spans",
    "parse_image_batch",
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


# -- many records at once ------------------------------------------------------------------

#: Layouts tried per batch (the first record's, then the first one left over...), unless
#: three have fitted one record only (records of many layouts, or not of our writer's, are
#: cheaper parsed one by one); the records left are parsed one by one.
LAYOUTS_PER_BATCH = 16
_INTS = {_HEIGHT: "height", _WIDTH: "width", _CHANNELS: "channels", _LABEL: "label"}
_INT_DEFAULTS = {"height": 0, "width": 0, "channels": 0, "label": -1, "orientation": 1}
_INTS[_ORIENTATION] = "orientation"
_SPANS = {_ENCODED: "encoded", _FORMAT: "format"}


@dataclass(frozen=True)
class BatchFields:
    """The image keys of many records (:func:`parse_image_batch`) as arrays, one value per
    record: ``ok`` says which records were parsed; elsewhere the values mean nothing.
    ``encoded`` and ``format`` are (start, end) of the bytes in the buffer parsed; ints and
    spans of keys a record lacks are :class:`ImageFields`' defaults (an empty span)."""

    ok: np.ndarray
    encoded: tuple[np.ndarray, np.ndarray]
    format: tuple[np.ndarray, np.ndarray]
    height: np.ndarray
    width: np.ndarray
    channels: np.ndarray
    label: np.ndarray
    orientation: np.ndarray

    def fields(self, buf: np.ndarray, k: int) -> ImageFields:
        """Record ``k``'s :class:`ImageFields` (``ok[k]`` must hold), as the one-record
        parsers give them (``encoded`` a memoryview of ``buf``)."""
        view = memoryview(buf)
        fmt = bytes(view[self.format[0][k] : self.format[1][k]])
        return ImageFields(
            view[self.encoded[0][k] : self.encoded[1][k]],
            fmt.decode("ascii", "replace").strip().lower(),
            *(int(getattr(self, name)[k]) for name in ("height", "width", "channels", "label")),
            int(self.orientation[k]),
        )


def parse_image_batch(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> BatchFields:
    """The image keys of the Examples at ``buf[starts[k]:ends[k]]`` (``buf`` uint8, spans
    int64), each answer what :func:`parse_image_example` gives, for the records that share
    one of the layouts of the first few (:func:`_layout`, :data:`LAYOUTS_PER_BATCH`);
    ``ok`` is False for the rest."""
    count = len(starts)
    spans = {name: np.zeros((2, count), np.int64) for name in _SPANS.values()}
    ints = {name: np.full(count, value, np.int64) for name, value in _INT_DEFAULTS.items()}
    ok = np.zeros(count, bool)
    left = np.arange(count)
    tried = lonely = 0
    while len(left) and tried < LAYOUTS_PER_BATCH and lonely < 3:
        tried += 1
        layout = _layout(buf, int(starts[left[0]]), int(ends[left[0]]))
        if layout is None:
            left = left[1:]  # parsed one by one, and maybe the next one gives a layout
            lonely += 1
            continue
        matched, rows = layout.match(buf, starts[left], ends[left])
        lonely += int(matched.sum() <= 1)
        hit = left[matched]
        ok[hit] = True
        picked = starts[hit]
        rows = rows[matched]
        for name, values in zip(layout.names, layout.ints.values(rows).T, strict=True):
            ints[name][hit] = values.view(np.int64)
        for name, (offset, length) in layout.spans.items():
            spans[name][0, hit] = picked + offset
            spans[name][1, hit] = picked + offset + length
        if layout.last is not None:  # the last value runs to the end of the record
            spans[layout.last][0, hit] = picked + layout.size
            spans[layout.last][1, hit] = ends[hit]
        left = left[~matched]
    return BatchFields(
        ok, tuple(spans["encoded"]), tuple(spans["format"]),  # type: ignore[arg-type]
        ints["height"], ints["width"], ints["channels"], ints["label"], ints["orientation"],
    )  # fmt: skip


class _Varints:
    """Varints at fixed offsets of rows (``[N, size]`` uint8) decoded together: one
    gather of all their bytes, one weighted sum per varint (``np.add.reduceat``)."""

    def __init__(self, places: list[tuple[int, int]]):  # (offset, width) of each
        self.columns = np.array([o + i for o, w in places for i in range(w)], np.intp)
        self.weights = np.array([1 << (7 * i) for _, w in places for i in range(w)], np.uint64)
        self.firsts = np.cumsum([0] + [w for _, w in places[:-1]], dtype=np.intp)
        self.count = len(places)

    def values(self, rows: np.ndarray) -> np.ndarray:
        """uint64 ``[N, count]`` (an int64 with its ten bytes wraps as protobuf's does;
        continuation bits are the layout's, checked by the caller)."""
        if not self.count:
            return np.empty((len(rows), 0), np.uint64)
        low = (rows[:, self.columns] & 0x7F).astype(np.uint64) * self.weights
        return np.add.reduceat(low, self.firsts, axis=1)


@dataclass(frozen=True)
class _Layout:
    """One record's structure up to its last value, with holes for what may differ in a
    record of the same layout: ``template`` (its bytes) and ``mask`` (0xFF for bytes that
    must be equal, 0x80 for varints: only their continuation bits, 0 for bytes values).
    ``lengths``: varints that hold the record's length plus a constant (``plus``: the top
    message's, and those of the last entry, whose value runs to the end); ``ints``, the
    int64 values wanted (``names``); ``spans``: where the wanted bytes values lie;
    ``last``: the span that ends with the record; ``wide``: ten-byte int varints (their
    last byte may hold one bit)."""

    size: int
    template: np.ndarray
    mask: np.ndarray
    lengths: _Varints
    plus: np.ndarray
    ints: _Varints
    names: list[str]
    spans: dict[str, tuple[int, int]]  # name -> offset, length
    last: str | None
    wide: list[int]

    def match(
        self, buf: np.ndarray, starts: np.ndarray, ends: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Which records follow this layout exactly (their lengths consistent too), and
        the first ``size`` bytes of each (rows)."""
        length = ends - starts
        long_enough = length >= self.size
        safe = np.where(long_enough, starts, starts[long_enough.argmax()])
        rows = np.lib.stride_tricks.sliding_window_view(buf, self.size)[safe]
        ok = long_enough & ~((rows ^ self.template) & self.mask).any(axis=1)
        found = self.lengths.values(rows).astype(np.int64)
        ok &= (found == length[:, None] + self.plus).all(axis=1)
        for offset in self.wide:
            ok &= rows[:, offset + 9] <= 1
        return ok, rows


def _layout(buf: np.ndarray, start: int, end: int) -> _Layout | None:
    """The layout of the Example at ``buf[start:end]`` when it is one ``features`` message
    of distinct keys, each a ``BytesList`` of one value or an ``Int64List`` of one packed
    value, the last a ``BytesList`` (our writer's records); None otherwise."""
    data = memoryview(buf)[start:end]
    size = len(data)
    mask = bytearray(b"\xff" * size)  # every byte must be equal, but for the holes below
    lengths: list[tuple[int, int, int]] = []
    ints: dict[str, tuple[int, int]] = {}
    spans: dict[str, tuple[int, int]] = {}
    wide: list[int] = []
    keys: set[bytes] = set()

    def varint(pos: int, limit: int) -> tuple[int, int, int]:
        """Value, position after, width: at most ten bytes."""
        value, after = _varint(data, pos, limit)
        return value, after, after - pos

    def length_hole(pos: int, width: int, value: int) -> None:
        mask[pos : pos + width] = b"\x80" * width  # the same width, any value...
        lengths.append((pos, width, value - size))  # ...that follows the record's length

    try:
        if size < 2 or data[0] != 0x0A:
            return None
        n, pos, width = varint(1, size)
        if pos + n != size:
            return None
        length_hole(1, width, n)
        while pos < size:  # an entry: 0a len (0a len key) 12 len (0a|1a) len 0a len value
            if data[pos] != 0x0A:
                return None
            varints = []  # the entry's four lengths: position, width, value
            n, after, width = varint(pos + 1, size)
            varints.append((pos + 1, width, n))
            entry_end = after + n
            if entry_end > size or data[after] != 0x0A:
                return None
            k, after, _ = varint(after + 1, entry_end)
            key = bytes(data[after : after + k])
            pos = after + k
            if pos >= entry_end or data[pos] != 0x12 or key in keys:
                return None
            key.decode("utf-8")  # protobuf's string key: must be UTF-8
            keys.add(key)
            kind = 0
            for tags in ((0x0A, 0x1A), (0x0A,), ()):  # Feature, its list, the value: each
                n, after, width = varint(pos + 1, entry_end)  # fills the entry, then a tag
                varints.append((pos + 1, width, n))
                pos = after
                if after + n != entry_end or (tags and data[pos] not in tags):
                    return None
                kind = kind or data[pos]  # bytes_list (0a) or int64_list (1a)
            if kind == 0x1A:  # one packed int64: its varint fills the list
                _, after, width = varint(pos, entry_end)
                if after != entry_end or (width == 10 and data[pos + 9] > 1):
                    return None
                mask[pos:after] = b"\x80" * width  # the same width, any value
                if width == 10:
                    wide.append(pos)
                if key in _INTS:
                    ints[_INTS[key]] = (pos, width)
            elif entry_end == size:  # the last value: runs to the end of the record
                for hole in varints:
                    length_hole(*hole)
                return _Layout(
                    pos,
                    np.frombuffer(data[:pos], np.uint8),
                    np.frombuffer(mask[:pos], np.uint8),
                    _Varints([(o, w) for o, w, _ in lengths]),
                    np.array([plus for _, _, plus in lengths], np.int64),
                    _Varints(list(ints.values())),
                    list(ints),
                    spans,
                    _SPANS.get(key),
                    wide,
                )
            else:
                mask[pos:entry_end] = bytes(entry_end - pos)  # a bytes value: anything
                if key in _SPANS:
                    spans[_SPANS[key]] = (pos, entry_end - pos)
            pos = entry_end
    except (ExampleParseError, IndexError, UnicodeDecodeError):
        return None
    return None  # the last value is not a BytesList
