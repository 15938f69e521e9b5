"""Which feature keys hold the image and the label: ours, or those of the TFRecords other
tools write, found from the first record. TensorFlow-free.

Data flow: resolved dataset (``resolve.py``) + ``image_key`` / ``label_key`` -> **first
record** (framing + ``format.example.decode_example``; read once per ``Dataset``, which
``task.py`` looks at too) -> :class:`FeatureKeys` -> parse spec
(``read/decode.py``) | fields (``access/source.py``).

The layouts detected, in this order (the first whose image key holds bytes wins):

    ours, inception / slim   image/encoded   image/class/label  + image/format, height, ...
    TFDS (Image, ClassLabel) image           label
    Keras tutorial           image_raw       label              + height, width, depth

A dataset folder of ours (``dataset.json``) uses our keys without reading a record.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from .. import storage
from ..errors import TFRecordToolsError
from ..format import example
from ..format.framing import iter_records
from ..format.tfds import TFDS_FEATURES

if TYPE_CHECKING:
    from .resolve import Dataset

#: ``image_key`` / ``label_key`` default: find the key from the first record.
AUTO = "auto"


@dataclass(frozen=True)
class FeatureKeys:
    """The record keys a reader parses. ``label`` None: no label (every label is -1).
    ``format``/``height``/``width``/``channels``/``orientation`` None: the layout has no
    such key; the decoders then trust the magic bytes."""

    image: str
    label: str | None
    format: str | None = None
    height: str | None = None
    width: str | None = None
    channels: str | None = None
    orientation: str | None = None
    # image/format of records without one: "raw" lets pixels of height x width x channels
    # bytes decode as raw (Keras tutorial files from MNIST); JPEG / PNG magic bytes win
    default_format: str = ""
    label_default: int | None = -1  # when a record lacks the label; None: an error

    @property
    def ours(self) -> bool:
        return self.image == example.ENCODED and self.format == example.FORMAT


OURS = FeatureKeys(
    example.ENCODED,
    example.LABEL,
    example.FORMAT,
    example.HEIGHT,
    example.WIDTH,
    example.CHANNELS,
    example.ORIENTATION,
)
TFDS = FeatureKeys("image", "label", label_default=None)
KERAS = FeatureKeys(
    "image_raw", "label", None, "height", "width", "depth", default_format="raw", label_default=None
)
LAYOUTS = {"ours": OURS, "tfds": TFDS, "keras": KERAS}
_LABEL_KEYS = (example.LABEL, "label")  # tried in order when only image_key is given


def resolve_keys(
    files: list[str],
    compression: str,
    *,
    image_key: str | None = AUTO,
    label_key: str | None = AUTO,
    ours: bool = False,
    first: tuple[str, dict[str, tuple[str, list[Any]]]] | str | None = AUTO,
) -> FeatureKeys:
    """The keys to parse ``files`` with. ``ours`` (a dataset folder with ``dataset.json``):
    our keys, no record read. Otherwise the first record of the first non-empty file
    (``first``, when the caller has read it already: :func:`first_record`'s answer)
    decides what ``AUTO`` stands for, and checks explicit keys; raises
    :class:`TFRecordToolsError` naming the keys (and types) found when none fits."""
    if ours:
        return _override(OURS, image_key, label_key)
    if first == AUTO:
        first = first_record(files, compression)
    if first is None:  # no record at all: nothing to parse, any keys do
        return _override(OURS, image_key, label_key)
    where, features = first  # type: ignore[misc]
    if image_key == AUTO:
        layout = next(
            (k for k in LAYOUTS.values() if _kind(features, k.image) == "bytes"),
            None,
        )
        if layout is None:
            raise TFRecordToolsError(
                f"{where}: no known image key ({', '.join(k.image for k in LAYOUTS.values())}) "
                f"holds bytes; keys found: {_describe(features)}. "
                "Pass image_key=... and label_key=... (label_key=None: no labels)"
            )
    else:
        kind = _kind(features, image_key)
        if kind != "bytes":
            found = "missing" if kind is None else f"{kind}, not bytes"
            raise TFRecordToolsError(
                f"{where}: image_key {image_key!r} is {found}; keys found: {_describe(features)}"
            )
        layout = next((k for k in LAYOUTS.values() if k.image == image_key), None)
        layout = layout or FeatureKeys(image_key, None, label_default=None)
    keys = _present(layout, features)
    if label_key == AUTO:
        label = layout.label if layout.label is not None else _guess_label(features)
        if label is None or label not in features:
            tried = label or " or ".join(repr(k) for k in _LABEL_KEYS)
            raise TFRecordToolsError(
                f"{where}: no label {tried!r} in the record; keys found: {_describe(features)}. "
                "Pass label_key=... (label_key=None reads the images with label -1)"
            )
        return replace(keys, label=_checked_label(label, features, where))
    if label_key is None:
        return replace(keys, label=None)
    if label_key not in features:
        raise TFRecordToolsError(
            f"{where}: label_key {label_key!r} is missing; keys found: {_describe(features)}"
        )
    return replace(keys, label=_checked_label(label_key, features, where), label_default=None)


def _override(keys: FeatureKeys, image_key: str | None, label_key: str | None) -> FeatureKeys:
    if image_key not in (AUTO, keys.image):
        keys = FeatureKeys(image_key, keys.label, label_default=None)  # type: ignore[arg-type]
    if label_key != AUTO:
        keys = replace(keys, label=label_key)
    return keys


def _present(layout: FeatureKeys, features: dict[str, tuple[str, list[Any]]]) -> FeatureKeys:
    """``layout`` without the optional keys the record does not have with the expected type
    (our own keys stay: a record of ours may leave some out)."""
    if layout.ours:
        return layout
    wanted = {"format": "bytes", "height": "int64", "width": "int64", "channels": "int64"}
    gone = {
        name: None
        for name, kind in wanted.items()
        if getattr(layout, name) is not None and _kind(features, getattr(layout, name)) != kind
    }
    keys = replace(layout, **gone)
    if keys.channels is None and keys.default_format == "raw":
        keys = replace(keys, default_format="")  # raw pixels need all three sizes
    return keys


def _guess_label(features: dict[str, tuple[str, list[Any]]]) -> str | None:
    return next((k for k in _LABEL_KEYS if k in features), None)


def _checked_label(key: str, features: dict[str, tuple[str, list[Any]]], where: str) -> str:
    kind, values = features[key]
    if kind != "int64":
        shown = f" ({values[0]!r})" if values else ""
        raise TFRecordToolsError(
            f"{where}: the label {key!r} is {kind}{shown}, not an int64 class number; "
            "map it to numbers when writing, or pass label_key=None (label -1)"
        )
    return key


def _kind(features: dict[str, tuple[str, list[Any]]], key: str | None) -> str | None:
    return features[key][0] if key is not None and key in features else None


def _describe(features: dict[str, tuple[str, list[Any]]]) -> str:
    return ", ".join(f"{k} ({kind})" for k, (kind, _v) in sorted(features.items())) or "none"


_NOT_EXAMPLES = {
    "event": "a TensorBoard event (tf.Event), not a tf.train.Example: this is an events file "
    "(open it with TensorBoard or tf.compat.v1.train.summary_iterator)",
    "sequence_example": "a tf.train.SequenceExample (it has feature_lists), not a "
    "tf.train.Example: the image readers read Examples (parse it with "
    "tf.io.parse_sequence_example)",
}


def first_record(
    files: list[str], compression: str
) -> tuple[str, dict[str, tuple[str, list[Any]]]] | None:
    """``(where, features)`` of the first record of the first non-empty file, or None
    (``Dataset.first_record`` keeps it, read once)."""
    for path in files:
        record = _first(path, compression)
        if record is None:
            continue
        kind = example.message_kind(record)
        if kind in _NOT_EXAMPLES:
            raise TFRecordToolsError(f"{storage.redact(path)}: record 0 is {_NOT_EXAMPLES[kind]}")
        try:
            return f"{path}: record 0", example.decode_example(record)
        except example.ExampleParseError as e:
            raise TFRecordToolsError(f"{path}: record 0 is not a tf.train.Example ({e})") from None
    return None


def _first(path: str, compression: str) -> bytes | None:
    """The first record of a shard, local or at a URL (one 8 MiB read), or None."""
    with contextlib.closing(iter_records(path, compression)) as records:
        record = next(records, None)
    return None if record is None else record.data


_IMAGE_CLASS = ".image_feature.Image"
_LABEL_CLASS = ".class_label_feature.ClassLabel"


def tfds_feature_keys(folder: str | os.PathLike) -> tuple[str, str | None] | None:
    """(the top-level Image feature's name, the ClassLabel's or None) from a TFDS folder's
    ``features.json``; None when it has no such file or not exactly one Image (the reader
    then finds the keys from the first record). ``folder`` may be a URL (one read)."""
    try:
        data = json.loads(storage.read_text(storage.join(folder, TFDS_FEATURES)))
        features = data["featuresDict"]["features"]
        kinds = {name: str(f.get("pythonClassName", "")) for name, f in features.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    images = [name for name, kind in kinds.items() if kind.endswith(_IMAGE_CLASS)]
    labels = [name for name, kind in kinds.items() if kind.endswith(_LABEL_CLASS)]
    if len(images) != 1:
        return None
    return images[0], (labels[0] if len(labels) == 1 else None)


def keys_for(dataset: Dataset, image_key: str | None = AUTO, label_key: str | None = AUTO):
    """The keys every reader parses ``dataset`` with: ours without reading a record, a TFDS
    folder's from its ``features.json``, others from the first record (:func:`resolve_keys`).
    The tf.data reader and the TF-free one both call this, so they agree on every layout."""
    if dataset.tfds_keys is not None:
        image_key = dataset.tfds_keys[0] if image_key == AUTO else image_key
        if label_key == AUTO and dataset.tfds_keys[1] is not None:
            label_key = dataset.tfds_keys[1]
    return resolve_keys(
        dataset.files,
        dataset.compression,
        image_key=image_key,
        label_key=label_key,
        ours=dataset.ours,
        first=AUTO if dataset.ours else dataset.first_record,
    )
