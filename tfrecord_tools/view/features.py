"""What a record holds, from its bytes: which layout's keys (ours, TFDS's, Keras'), the
image fields the decoders take, and every feature's values as the record page shows them.
Pure: no I/O (``data`` reads the records).

Data flow: record bytes -> ``format.example.decode_example`` -> **features** -> an entry's
label, class, file name and image (``data``), the record page's table (``pages``).
"""

from __future__ import annotations

from typing import Any

from ..access.parse import ImageFields
from ..dataset.keys import LAYOUTS, FeatureKeys
from ..images.probe import sniff_format

__all__ = ["first_int", "first_text", "image_fields", "image_format", "layout", "show_values"]


def layout(features: dict[str, tuple[str, list[Any]]]) -> FeatureKeys | None:
    """The first known layout whose image key holds bytes (ours, TFDS's, Keras')."""
    for keys in LAYOUTS.values():
        kind, values = features.get(keys.image, ("", []))
        if kind == "bytes" and values:
            return keys
    return None


def first_int(features: dict, key: str | None) -> int | None:
    if key is None:
        return None
    kind, values = features.get(key, ("", []))
    return values[0] if kind == "int64" and values else None


def first_text(features: dict, key: str) -> str | None:
    kind, values = features.get(key, ("", []))
    if kind != "bytes" or not values:
        return None
    return values[0].decode("utf-8", "replace")


def image_fields(features: dict, keys: FeatureKeys) -> ImageFields:
    fmt = first_text(features, keys.format) if keys.format else None
    return ImageFields(
        encoded=features[keys.image][1][0],
        format=(fmt or keys.default_format).strip().lower(),
        height=(first_int(features, keys.height) or 0),
        width=(first_int(features, keys.width) or 0),
        channels=(first_int(features, keys.channels) or 0),
        label=-1,
        orientation=(first_int(features, keys.orientation) or 1),
    )


def image_format(fields: ImageFields) -> str:
    found = sniff_format(bytes(fields.encoded[:32]))
    if found is not None:
        return found
    if fields.format == "raw" and len(fields.encoded) == fields.height * fields.width * max(
        fields.channels, 1
    ):
        return "raw"
    return fields.format or "unknown"


_SHOWN_VALUES = 16
_SHOWN_TEXT = 200


def show_values(kind: str, values: list[Any]) -> str:
    """A feature's values as the record page shows them: bytes by size and kind (an image's
    format, short UTF-8 text as itself), numbers as they are (the first few)."""
    if kind == "bytes":
        return "; ".join(_show_bytes(v) for v in values[:_SHOWN_VALUES]) + _more(values)
    if kind == "float":
        return ", ".join(f"{v:.6g}" for v in values[:_SHOWN_VALUES]) + _more(values)
    if kind == "int64":
        return ", ".join(str(v) for v in values[:_SHOWN_VALUES]) + _more(values)
    return "(empty)"


def _show_bytes(value: bytes) -> str:
    fmt = sniff_format(value[:32])
    if fmt is not None:
        return f"{len(value):,} bytes, {fmt} image"
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return (
            f"{len(value):,} bytes, binary ({value[:12].hex(' ')}{' …' if len(value) > 12 else ''})"
        )
    if len(text) <= _SHOWN_TEXT and text.isprintable():
        return f"{len(value):,} bytes, text: {text!r}" if text else "0 bytes"
    return f"{len(value):,} bytes, text: {text[:_SHOWN_TEXT]!r}…"


def _more(values: list[Any]) -> str:
    return f" … ({len(values):,} values)" if len(values) > _SHOWN_VALUES else ""
