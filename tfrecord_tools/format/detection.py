"""The record schema of detection and segmentation Examples: the keys TensorFlow's object
detection API and DeepLab read, their TF-free encoder and parser. Built on ``example``
(the image keys, the wire format helpers), so one module family owns every key.

Data flow: image bytes + objects (normalised boxes, 1-based labels) -> **Example bytes** ->
framing; and back: Example bytes -> :class:`DetectionFields` (``access``, ``read``).

Boxes are stored normalised to [0, 1] of the stored image (so ``--max-size`` keeps them
right); ``image/object/class/label`` is 1-based (line i of ``labels.txt`` is label i + 1;
0 is the detection API's background), ``label_map.pbtxt`` spells the same mapping.
"""

from __future__ import annotations

import functools
import hashlib
import operator
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .example import (
    CHANNELS,
    ENCODED,
    FILENAME,
    FORMAT,
    HEIGHT,
    ORIENTATION,
    WIDTH,
    _bytes_entry,
    _bytes_head,
    _features_head,
    _int64_entry,
    _text_entry,
    _varint,
    decode_example,
)

SOURCE_ID = "image/source_id"
KEY_SHA256 = "image/key/sha256"
XMIN = "image/object/bbox/xmin"
YMIN = "image/object/bbox/ymin"
XMAX = "image/object/bbox/xmax"
YMAX = "image/object/bbox/ymax"
CLASS_LABEL = "image/object/class/label"
CLASS_TEXT = "image/object/class/text"
IS_CROWD = "image/object/is_crowd"
AREA = "image/object/area"
DIFFICULT = "image/object/difficult"
TRUNCATED = "image/object/truncated"
#: Pascal VOC's ``pose``, under the key the detection API's VOC script writes it.
POSE = "image/object/view"
MASK = "image/object/mask"
KEYPOINT_X = "image/object/keypoint/x"
KEYPOINT_Y = "image/object/keypoint/y"
KEYPOINT_VISIBILITY = "image/object/keypoint/visibility"
SEGMENTATION = "image/segmentation/class/encoded"
SEGMENTATION_FORMAT = "image/segmentation/class/format"

#: Feature key -> type of a detection record, as the manifest's "features" lists them
#: ("[]": a list per record, one value per object, possibly empty).
DETECTION_FEATURES: dict[str, str] = {
    ENCODED: "bytes",
    FORMAT: "bytes",
    HEIGHT: "int64",
    WIDTH: "int64",
    CHANNELS: "int64",
    FILENAME: "bytes",
    SOURCE_ID: "bytes",
    KEY_SHA256: "bytes",
    XMIN: "float[]",
    YMIN: "float[]",
    XMAX: "float[]",
    YMAX: "float[]",
    CLASS_LABEL: "int64[]",
    CLASS_TEXT: "bytes[]",
    IS_CROWD: "int64[]",
    AREA: "float[]",
    DIFFICULT: "int64[]",
    TRUNCATED: "int64[]",
    POSE: "bytes[]",
}
#: Feature key -> type of a segmentation record (DeepLab's keys: an image and its class
#: mask, no objects), as the manifest's "features" lists them.
SEGMENTATION_FEATURES: dict[str, str] = {
    ENCODED: "bytes",
    FORMAT: "bytes",
    HEIGHT: "int64",
    WIDTH: "int64",
    CHANNELS: "int64",
    FILENAME: "bytes",
    SOURCE_ID: "bytes",
    KEY_SHA256: "bytes",
    SEGMENTATION: "bytes",
    SEGMENTATION_FORMAT: "bytes",
}
#: Keys a detection record has only when its source gives them.
OPTIONAL_DETECTION_FEATURES: dict[str, str] = {
    ORIENTATION: "int64",
    MASK: "bytes[]",
    KEYPOINT_X: "float[]",
    KEYPOINT_Y: "float[]",
    KEYPOINT_VISIBILITY: "int64[]",
    SEGMENTATION: "bytes",
    SEGMENTATION_FORMAT: "bytes",
}


@dataclass(slots=True)  # not frozen: a frozen one takes 4x as long to make (one an object)
class DetectionObject:
    """One object: a box normalised to [0, 1] (xmin <= xmax, ymin <= ymax), its 1-based
    label and class name, and what the source says of it. ``keypoints``: (x, y, visibility)
    normalised like the box. Not changed once made (``dataclasses.replace`` makes another)."""

    xmin: float
    ymin: float
    xmax: float
    ymax: float
    label: int
    text: str
    is_crowd: int = 0
    area: float = 0.0
    difficult: int = 0
    truncated: int = 0
    pose: str = ""
    mask: bytes | None = None  # a PNG of the image's size, 0 / 1
    keypoints: tuple[tuple[float, float, int], ...] = ()


def _key_part(key: str) -> bytes:
    """What a ``Features.feature`` map entry holds before its value's length: the key field
    and the value's tag. Made once a key (:data:`_KEYS`)."""
    k = key.encode()
    return b"\x0a" + _varint(len(k)) + k + b"\x12"


def _entry(key_part: bytes, feature: bytes) -> bytes:
    """A map entry: its tag and length, the key, the ``Feature`` bytes."""
    size = _varint(len(feature))
    return b"\x0a" + _varint(len(key_part) + len(size) + len(feature)) + key_part + size + feature


def _floats_entry(key_part: bytes, values: Sequence[float]) -> bytes:
    if not values:
        return _entry(key_part, b"\x12\x00")  # Feature.float_list, empty
    packed = struct.pack(f"<{len(values)}f", *values)  # FloatList.value, packed
    float_list = b"\x0a" + _varint(len(packed)) + packed
    return _entry(key_part, b"\x12" + _varint(len(float_list)) + float_list)


def _ints_entry(key_part: bytes, values: Sequence[int]) -> bytes:
    if not values:
        return _entry(key_part, b"\x1a\x00")  # Feature.int64_list, empty
    if max(values) < 0x80 and min(values) >= 0:  # each its own one-byte varint
        packed = bytes(values)
    else:
        packed = b"".join(map(_varint, values))
    int_list = b"\x0a" + _varint(len(packed)) + packed  # Int64List.value, packed
    return _entry(key_part, b"\x1a" + _varint(len(int_list)) + int_list)


#: Int lists that repeat from record to record (is_crowd, difficult, truncated: mostly
#: zeros), each encoded once.
_repeated_ints_entry = functools.lru_cache(maxsize=4096)(_ints_entry)


@functools.lru_cache(maxsize=4096)  # class names repeat
def _text_value(text: str) -> bytes:
    """One ``BytesList.value`` field: a class name or a pose."""
    data = text.encode()
    return b"\x0a" + _varint(len(data)) + data


def _bytes_list_entry(key_part: bytes, items: Sequence[bytes]) -> bytes:
    """``items``: each value with its field tag and length (:func:`_bytes_value`)."""
    bytes_list = b"".join(items)
    return _entry(key_part, b"\x0a" + _varint(len(bytes_list)) + bytes_list)


def _bytes_value(value: bytes) -> bytes:
    return b"\x0a" + _varint(len(value)) + value


@functools.lru_cache(maxsize=4096)  # poses: mostly "" for every object
def _texts_entry(key_part: bytes, texts: tuple[str, ...]) -> bytes:
    return _bytes_list_entry(key_part, [_text_value(t) for t in texts])


_KEYS = {
    key: _key_part(key)
    for key in (
        XMIN,
        YMIN,
        XMAX,
        YMAX,
        CLASS_LABEL,
        CLASS_TEXT,
        IS_CROWD,
        AREA,
        DIFFICULT,
        TRUNCATED,
        POSE,
        MASK,
        KEYPOINT_X,
        KEYPOINT_Y,
        KEYPOINT_VISIBILITY,
    )
}
#: The fields of an object written for every record, in the order :func:`_objects_part`
#: writes them.
_OBJECT_FIELDS = operator.attrgetter(
    "xmin",
    "ymin",
    "xmax",
    "ymax",
    "label",
    "text",
    "is_crowd",
    "area",
    "difficult",
    "truncated",
    "pose",
)


def _objects_part(objects: Sequence[DetectionObject]) -> bytes:
    """The per-object lists every detection record has, in key order (XMIN ... POSE)."""
    if not objects:
        return _NO_OBJECTS
    k = _KEYS
    xmin, ymin, xmax, ymax, label, text, crowd, area, difficult, truncated, pose = zip(
        *map(_OBJECT_FIELDS, objects), strict=True
    )
    return b"".join(
        (
            _floats_entry(k[XMIN], xmin),
            _floats_entry(k[YMIN], ymin),
            _floats_entry(k[XMAX], xmax),
            _floats_entry(k[YMAX], ymax),
            _ints_entry(k[CLASS_LABEL], label),
            _bytes_list_entry(k[CLASS_TEXT], list(map(_text_value, text))),
            _repeated_ints_entry(k[IS_CROWD], crowd),
            _floats_entry(k[AREA], area),
            _repeated_ints_entry(k[DIFFICULT], difficult),
            _repeated_ints_entry(k[TRUNCATED], truncated),
            _texts_entry(k[POSE], pose),
        )
    )


_NO_OBJECTS = b"".join(
    (
        _floats_entry(_KEYS[XMIN], ()),
        _floats_entry(_KEYS[YMIN], ()),
        _floats_entry(_KEYS[XMAX], ()),
        _floats_entry(_KEYS[YMAX], ()),
        _ints_entry(_KEYS[CLASS_LABEL], ()),
        _bytes_list_entry(_KEYS[CLASS_TEXT], ()),
        _ints_entry(_KEYS[IS_CROWD], ()),
        _floats_entry(_KEYS[AREA], ()),
        _ints_entry(_KEYS[DIFFICULT], ()),
        _ints_entry(_KEYS[TRUNCATED], ()),
        _bytes_list_entry(_KEYS[POSE], ()),
    )
)


def encode_detection_parts(
    *,
    encoded: bytes,
    image_format: str,
    height: int,
    width: int,
    channels: int,
    filename: str,
    source_id: str,
    objects: Sequence[DetectionObject],
    orientation: int = 1,
    segmentation: bytes | None = None,
) -> tuple[bytes, bytes]:
    """A serialised ``tf.train.Example`` of an image and its objects, as two parts (the
    image bytes last, not copied). Masks and keypoints are written when some object has
    them, the segmentation PNG when given; ``image/key/sha256`` is the image bytes'."""
    if not 1 <= orientation <= 8:
        raise ValueError(f"orientation must be an EXIF orientation 1-8, got {orientation}")
    o = objects
    parts = [
        _text_entry(FORMAT, image_format),
        _int64_entry(HEIGHT, height),
        _int64_entry(WIDTH, width),
        _int64_entry(CHANNELS, channels),
        _int64_entry(ORIENTATION, orientation) if orientation != 1 else b"",
        _bytes_entry(FILENAME, filename.encode("utf-8", "surrogateescape")),
        _bytes_entry(SOURCE_ID, source_id.encode("utf-8", "surrogateescape")),
        _bytes_entry(KEY_SHA256, hashlib.sha256(encoded).hexdigest().encode()),
        _objects_part(o),
    ]
    masks = [b.mask for b in o if b.mask is not None]
    if masks:
        if len(masks) != len(o):
            raise ValueError("either every object has a mask or none has")
        parts.append(_bytes_list_entry(_KEYS[MASK], list(map(_bytes_value, masks))))
    if any(b.keypoints for b in o):
        points = [p for b in o for p in b.keypoints]
        xs, ys, visibility = zip(*points, strict=True)
        parts.append(_floats_entry(_KEYS[KEYPOINT_X], xs))
        parts.append(_floats_entry(_KEYS[KEYPOINT_Y], ys))
        parts.append(_ints_entry(_KEYS[KEYPOINT_VISIBILITY], visibility))
    if segmentation is not None:
        parts.append(_bytes_entry(SEGMENTATION, segmentation))
        parts.append(_text_entry(SEGMENTATION_FORMAT, "png"))
    parts.append(_bytes_head(ENCODED, len(encoded)))
    small = b"".join(parts)
    return _features_head(len(small) + len(encoded)) + small, encoded


def encode_segmentation_parts(
    *,
    encoded: bytes,
    image_format: str,
    height: int,
    width: int,
    channels: int,
    filename: str,
    source_id: str,
    segmentation: bytes,
    orientation: int = 1,
) -> tuple[bytes, bytes]:
    """A serialised ``tf.train.Example`` of an image and its class mask (a PNG of the
    stored image's size), as two parts (the image bytes last, not copied): DeepLab's keys
    and ours, no object keys (so the record's keys say "segmentation", not "detection")."""
    if not 1 <= orientation <= 8:
        raise ValueError(f"orientation must be an EXIF orientation 1-8, got {orientation}")
    small = b"".join(
        [
            _text_entry(FORMAT, image_format),
            _int64_entry(HEIGHT, height),
            _int64_entry(WIDTH, width),
            _int64_entry(CHANNELS, channels),
            _int64_entry(ORIENTATION, orientation) if orientation != 1 else b"",
            _bytes_entry(FILENAME, filename.encode("utf-8", "surrogateescape")),
            _bytes_entry(SOURCE_ID, source_id.encode("utf-8", "surrogateescape")),
            _bytes_entry(KEY_SHA256, hashlib.sha256(encoded).hexdigest().encode()),
            _bytes_entry(SEGMENTATION, segmentation),
            _text_entry(SEGMENTATION_FORMAT, "png"),
            _bytes_head(ENCODED, len(encoded)),
        ]
    )
    return _features_head(len(small) + len(encoded)) + small, encoded


def encode_detection(**fields: Any) -> bytes:
    """The same Example as one bytes object (see :func:`encode_detection_parts`)."""
    return b"".join(encode_detection_parts(**fields))


@dataclass(frozen=True)
class DetectionFields:
    """A detection record's fields, parsed without TensorFlow. ``boxes``: per object
    (ymin, xmin, ymax, xmax) normalised, the detection API's order."""

    encoded: bytes
    image_format: str
    height: int
    width: int
    channels: int
    orientation: int
    filename: str
    source_id: str
    boxes: list[tuple[float, float, float, float]]
    labels: list[int]
    texts: list[str]
    is_crowd: list[int] = field(default_factory=list)
    area: list[float] = field(default_factory=list)
    difficult: list[int] = field(default_factory=list)
    truncated: list[int] = field(default_factory=list)
    masks: list[bytes] = field(default_factory=list)
    keypoints: list[tuple[float, float, int]] = field(default_factory=list)
    segmentation: bytes | None = None


class DetectionParseError(ValueError):
    """An Example whose detection features are missing or inconsistent."""


def parse_detection(data: bytes | memoryview) -> DetectionFields:
    """The detection fields of one Example (ours, or any writer's with these keys: the
    detection API's own scripts included). Per-object lists must agree in length."""
    features = decode_example(bytes(data))

    def values(key: str, kind: str) -> list[Any]:
        if key not in features:
            return []
        found, vals = features[key]
        if found not in (kind, "empty"):
            raise DetectionParseError(f"{key} holds {found}, expected {kind}")
        return vals

    def first(key: str, kind: str, default: Any) -> Any:
        vals = values(key, kind)
        return vals[0] if vals else default

    encoded = first(ENCODED, "bytes", None)
    if encoded is None:
        raise DetectionParseError(f"no image bytes under {ENCODED!r}")
    xmin, ymin = values(XMIN, "float"), values(YMIN, "float")
    xmax, ymax = values(XMAX, "float"), values(YMAX, "float")
    labels = values(CLASS_LABEL, "int64")
    n = len(xmin)
    if not len(ymin) == len(xmax) == len(ymax) == n:
        raise DetectionParseError(
            f"box coordinates disagree: {n} xmin, {len(ymin)} ymin, {len(xmax)} xmax, "
            f"{len(ymax)} ymax"
        )
    if len(labels) != n:
        raise DetectionParseError(f"{n} boxes but {len(labels)} {CLASS_LABEL}")
    kx, ky = values(KEYPOINT_X, "float"), values(KEYPOINT_Y, "float")
    kv = values(KEYPOINT_VISIBILITY, "int64")
    if len(ky) != len(kx) or (kv and len(kv) != len(kx)):
        raise DetectionParseError(
            f"keypoint lists disagree: {len(kx)} {KEYPOINT_X}, {len(ky)} {KEYPOINT_Y}, "
            f"{len(kv)} {KEYPOINT_VISIBILITY}"
        )
    kv = kv or [2] * len(kx)  # no visibility: every point seen

    def text(key: str) -> str:
        return first(key, "bytes", b"").decode("utf-8", "replace")

    return DetectionFields(
        encoded=encoded,
        image_format=text(FORMAT),
        height=int(first(HEIGHT, "int64", 0)),
        width=int(first(WIDTH, "int64", 0)),
        channels=int(first(CHANNELS, "int64", 0)),
        orientation=int(first(ORIENTATION, "int64", 1)),
        filename=text(FILENAME),
        source_id=text(SOURCE_ID),
        boxes=list(zip(ymin, xmin, ymax, xmax, strict=True)),
        labels=[int(v) for v in labels],
        texts=[v.decode("utf-8", "replace") for v in values(CLASS_TEXT, "bytes")],
        is_crowd=values(IS_CROWD, "int64"),
        area=values(AREA, "float"),
        difficult=values(DIFFICULT, "int64"),
        truncated=values(TRUNCATED, "int64"),
        masks=values(MASK, "bytes"),
        keypoints=list(zip(kx, ky, kv, strict=True)),
        segmentation=first(SEGMENTATION, "bytes", None),
    )


def label_map_pbtxt(classes: Sequence[str]) -> str:
    """The detection API's ``label_map.pbtxt``: ``item { id: i name: '...' }`` for label i
    (1-based: line i of labels.txt is id i + 1)."""
    items = []
    for i, name in enumerate(classes, start=1):
        quoted = name.replace("\\", "\\\\").replace("'", "\\'")
        items.append(f"item {{\n  id: {i}\n  name: '{quoted}'\n}}\n")
    return "".join(items)


def orient_box(y0: Any, x0: Any, y1: Any, x1: Any, orientation: int) -> tuple[Any, Any, Any, Any]:
    """A normalised (ymin, xmin, ymax, xmax) box of a stored image, turned as the image is
    turned upright for its EXIF ``orientation`` (2-8; anything else: as it is). Floats or
    numpy arrays of boxes alike: the converter turns the boxes of an image it stores upright,
    the readers those of an image they turn."""
    if orientation == 2:  # mirrored
        return y0, 1 - x1, y1, 1 - x0
    if orientation == 3:  # turned 180
        return 1 - y1, 1 - x1, 1 - y0, 1 - x0
    if orientation == 4:  # flipped
        return 1 - y1, x0, 1 - y0, x1
    if orientation == 5:  # x' = y, y' = x
        return x0, y0, x1, y1
    if orientation == 6:  # x' = 1 - y, y' = x
        return x0, 1 - y1, x1, 1 - y0
    if orientation == 7:  # x' = 1 - y, y' = 1 - x
        return 1 - x1, 1 - y1, 1 - x0, 1 - y0
    if orientation == 8:  # x' = y, y' = 1 - x
        return 1 - x1, y0, 1 - x0, y1
    return y0, x0, y1, x1
