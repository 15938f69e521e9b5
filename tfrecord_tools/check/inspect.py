"""Inspecting a dataset: what is in it, from its manifest, index files and a sample.

Data flow: locate -> count (manifest / .idx / header scan) + a sample of records (the first
few of a few shards) -> schema.decode_example -> probe image headers -> **report**. Splits,
shards, counts and bytes cover every shard; feature keys and types, image formats and sizes
come from the sample only, and the report says so. (Named ``inspecting`` so that it cannot
shadow the standard library's ``inspect``.) Detection records (the object detection API's
keys: ours, or any writer's) are also shown record by record: each object's class, box and
flags; segmentation records, their mask's format and size. In a bucket the sample is read
with small ranged reads from each sampled object's start: the records it needs, never the
whole object.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from .. import storage
from ..dataset import Dataset, FeatureKeys, Shard, keys_for, resolve
from ..errors import Damage, InvalidImageError, TFRecordToolsError
from ..format import detection
from ..format import example as schema
from ..format.naming import LABELS
from ..format.scan import RecordScanner
from ..images.probe import probe_image, sniff_format
from .count import count_shard

#: Ranged reads of a sampled object: its first records, not the whole object.
_SAMPLE_BLOCK = 1 << 20

__all__ = [
    "InspectReport",
    "MaskSummary",
    "ObjectSummary",
    "ObjectsSample",
    "RecordObjects",
    "ShardSummary",
    "inspect_dataset",
]
#: Keys that make a record a detection (or segmentation) record.
_OBJECT_KEYS = (
    detection.XMIN,
    detection.YMIN,
    detection.XMAX,
    detection.YMAX,
    detection.CLASS_LABEL,
)
#: Objects of one record listed in the text (``--json`` carries them all).
_SHOWN_OBJECTS = 20


@dataclass(frozen=True)
class ShardSummary:
    file: str
    split: str | None
    compression: str
    records: int | None  # None when it could not be counted
    bytes: int | None  # on disk; None for a missing shard
    count_source: str | None


@dataclass(frozen=True)
class ObjectSummary:
    """One object of a detection record: its 1-based label and class text, its box
    (ymin, xmin, ymax, xmax) normalised, flags (crowd, difficult, truncated, mask) and its
    keypoints (when the record holds the same number for every object)."""

    label: int
    text: str
    box: tuple[float, float, float, float]
    flags: tuple[str, ...] = ()
    keypoints: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "text": self.text,
            "box": [round(v, 6) for v in self.box],
            "flags": list(self.flags),
            "keypoints": self.keypoints,
        }

    def format_text(self) -> str:
        box = " ".join(f"{v:.3f}" for v in self.box)
        flags = [*self.flags, *([f"{self.keypoints} keypoints"] if self.keypoints else [])]
        return f"{self.label} {self.text or '?'}: {box}" + "".join(f", {f}" for f in flags)


@dataclass(frozen=True)
class MaskSummary:
    """A segmentation record's class map: its format and size (None: not a PNG or JPEG
    whose header gives one)."""

    format: str
    height: int | None
    width: int | None
    bytes: int

    def format_text(self) -> str:
        size = f" {self.height}x{self.width}" if self.height is not None else ""
        return f"segmentation mask {self.format}{size} ({self.bytes:,} bytes)"


@dataclass(frozen=True)
class RecordObjects:
    """A sampled detection or segmentation record: where it is (shard file name, record
    number), its image's file name, its objects, keypoints and segmentation mask."""

    shard: str
    record: int
    filename: str
    objects: tuple[ObjectSummary, ...]
    keypoints: int = 0
    segmentation: MaskSummary | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "shard": self.shard,
            "record": self.record,
            "filename": self.filename,
            "objects": [o.to_json() for o in self.objects],
            "keypoints": self.keypoints,
            "segmentation": asdict(self.segmentation) if self.segmentation else None,
        }

    def format_text(self) -> list[str]:
        n = len(self.objects)
        head = f"{self.shard}: record {self.record}" + (
            f" ({self.filename})" if self.filename else ""
        )
        what = [f"{n} object(s)" if n else "no objects"]
        if self.keypoints:
            what.append(f"{self.keypoints} keypoints")
        if self.segmentation is not None:
            what.append(self.segmentation.format_text())
        lines = [f"    {head}: {', '.join(what)}"]
        lines += [f"      {o.format_text()}" for o in self.objects[:_SHOWN_OBJECTS]]
        if n > _SHOWN_OBJECTS:
            lines.append(f"      … {n - _SHOWN_OBJECTS} more (--json lists them all)")
        return lines


@dataclass(frozen=True)
class ObjectsSample:
    """What the sample's detection / segmentation records hold: how many, objects per class
    (class text, else label number), and the first ``show_records`` of them in full."""

    records: int
    without_objects: int
    per_class: dict[str, int]
    shown: list[RecordObjects]

    def to_json(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "without_objects": self.without_objects,
            "total": sum(self.per_class.values()),
            "per_class": self.per_class,
            "shown": [r.to_json() for r in self.shown],
        }

    def format_text(self) -> list[str]:
        total = sum(self.per_class.values())
        lines = [
            f"  objects: {total} in {self.records} records ({self.without_objects} without): "
            f"{_counts(self.per_class)}"
        ]
        if self.shown:
            lines.append("  records (box: ymin xmin ymax xmax, normalised):")
            for record in self.shown:
                lines += record.format_text()
        more = self.records - len(self.shown)
        if more:
            lines.append(f"    … {more} more in the sample (--show-records N shows more)")
        return lines


@dataclass(frozen=True)
class InspectReport:
    """Everything ``tfrecord-tools inspect`` shows; ``to_json`` is its ``--json`` form."""

    path: str
    name: str | None
    shards: list[ShardSummary]
    classes: list[str] | None
    features: dict[str, str]  # from the sample: key -> bytes | int64 | float | empty
    manifest_features: dict[str, str] | None
    image_formats: dict[str, int]  # from the image bytes' magic numbers
    image_sizes: dict[str, int]  # "HxWxC" -> records
    labels: dict[str, int]  # class text (or label number) -> records in the sample
    sample_records: int
    sample_shards: int
    notes: list[str] = field(default_factory=list)
    # key -> a short sample value from the first record that has the key
    feature_samples: dict[str, str] = field(default_factory=dict)
    # the sample's detection / segmentation records; None when it has none
    objects: ObjectsSample | None = None

    @property
    def splits(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for s in self.shards:
            split = out.setdefault(s.split or "-", {"shards": 0, "records": 0, "bytes": 0})
            split["shards"] += 1
            split["records"] = (
                None
                if s.records is None or split["records"] is None
                else (split["records"] + s.records)
            )
            split["bytes"] += s.bytes or 0
        return out

    @property
    def compression(self) -> list[str]:
        return sorted({s.compression for s in self.shards})

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "name": self.name,
            "compression": self.compression,
            "splits": self.splits,
            "shards": [asdict(s) for s in self.shards],
            "classes": self.classes,
            "features": self.features,
            "feature_samples": self.feature_samples,
            "manifest_features": self.manifest_features,
            "sample": {
                "records": self.sample_records,
                "shards": self.sample_shards,
                "image_formats": self.image_formats,
                "image_sizes": self.image_sizes,
                "labels": self.labels,
                **({"objects": self.objects.to_json()} if self.objects is not None else {}),
            },
            "notes": self.notes,
        }

    def format_text(self) -> str:
        lines = [
            f"{self.path}" + (f" (dataset {self.name!r})" if self.name else ""),
            f"compression: {', '.join(self.compression)}",
        ]
        for split, info in self.splits.items():
            records = "?" if info["records"] is None else f"{info['records']:,}"
            lines.append(
                f"  {split}: {info['shards']} shard(s), {records} records, "
                f"{info['bytes'] / 1e6:,.1f} MB"
            )
        if self.classes is not None:
            shown = ", ".join(self.classes[:20]) + (" …" if len(self.classes) > 20 else "")
            lines.append(f"classes ({len(self.classes)}): {shown}")
        lines.append(
            f"sample: first records of {self.sample_shards} shard(s), {self.sample_records} records"
        )
        for key, kind in sorted(self.features.items()):
            sample = self.feature_samples.get(key)
            lines.append(f"  feature {key}: {kind}" + (f" = {sample}" if sample else ""))
        lines.append(f"  image formats: {_counts(self.image_formats)}")
        lines.append(f"  image sizes (HxWxC): {_counts(self.image_sizes)}")
        if self.objects is None or self.labels:  # detection records have no image label
            lines.append(f"  labels: {_counts(self.labels)}")
        if self.objects is not None:
            lines += self.objects.format_text()
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items()) or "none"


def inspect_dataset(
    paths: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    sample_shards: int = 4,
    sample_records: int = 16,
    show_records: int = 8,
) -> InspectReport:
    """Describe a dataset folder or shard files: counts for every shard, contents from the
    first ``sample_records`` records of ``sample_shards`` shards spread over the list; the
    objects of the first ``show_records`` detection / segmentation records of the sample."""
    if sample_shards < 1 or sample_records < 1:
        raise TFRecordToolsError("sample sizes must be at least 1")
    if show_records < 0:
        raise TFRecordToolsError(f"records to show must be 0 or more, not {show_records}")
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    located = resolve(paths)
    notes: list[str] = []
    shards = [_summarise(ref, notes) for ref in located.shards]
    present = [ref for ref in located.shards if ref.exists()]
    if located.shards and not present:
        raise TFRecordToolsError(
            f"{located.shown}: none of the {len(located.shards)} shard(s) "
            f"{located.shards[0].promised_by} lists is there"
        )
    keys, unlabelled = _keys(replace(located, shards=present), notes)
    at = len(notes)
    sample = _Sample(keys, show_records)
    picked = _spread(present, sample_shards)
    for ref in picked:
        sample.read(ref, sample_records, notes)
    objects = sample.objects()
    if unlabelled is not None and objects is None:  # detection records have no image label
        notes.insert(at, unlabelled)
    manifest = located.manifest
    classes = manifest.classes if manifest is not None else None
    if classes is None and located.root is not None:
        classes = _labels(located.root)
    return InspectReport(
        path=os.fspath(paths[0]) if len(paths) == 1 else f"{len(paths)} paths",
        name=manifest.name if manifest is not None else None,
        shards=shards,
        classes=classes,
        features=dict(sorted(sample.features.items())),
        manifest_features=manifest.data.get("features") if manifest is not None else None,
        image_formats=dict(sample.formats.most_common()),
        image_sizes=dict(sample.sizes.most_common()),
        labels=dict(sample.labels.most_common()),
        sample_records=sample.records,
        sample_shards=len(picked),
        notes=notes,
        feature_samples=dict(sorted(sample.samples.items())),
        objects=objects,
    )


def _labels(root: Path | str) -> list[str] | None:
    """The class names of ``labels.txt`` in ``root``, when it has one."""
    try:
        return storage.read_text(storage.join(root, LABELS)).splitlines()
    except (FileNotFoundError, NotADirectoryError):
        return None


def _keys(located: Dataset, notes: list[str]) -> tuple[FeatureKeys | None, str | None]:
    """The image and label keys the readers would use (``dataset.keys_for``); None, with a
    note saying why, when no layout fits (inspect still lists what the records hold). Records
    with images but no label (detection records...) give the image keys and, apart, the
    note, which the caller makes only when they are not detection records."""
    try:
        return keys_for(located), None
    except TFRecordToolsError as e:
        problem = str(e)
    try:
        return keys_for(located, label_key=None), problem
    except TFRecordToolsError:
        notes.append(problem)
        return None, None


def _summarise(ref: Shard, notes: list[str]) -> ShardSummary:
    size = ref.file_size() if ref.exists() else None
    if size is None:
        by = ref.promised_by if ref.records is not None else "the manifest"
        notes.append(f"{ref.shown}: listed in {by} but missing")
    try:
        counted = count_shard(ref, scan=True)
    except TFRecordToolsError as e:
        notes.append(f"cannot count: {e}")
        return ShardSummary(ref.name, ref.split, ref.compression, None, size, None)
    return ShardSummary(ref.name, ref.split, ref.compression, counted.records, size, counted.source)


def _spread(items: list[Shard], n: int) -> list[Shard]:
    """Up to ``n`` items evenly spread from first to last."""
    if len(items) <= n:
        return items
    step = (len(items) - 1) / (n - 1) if n > 1 else 0
    return [items[round(i * step)] for i in range(n)]


class _Sample:
    """Accumulates what the sampled records show."""

    def __init__(self, keys: FeatureKeys | None, show_records: int) -> None:
        self.keys = keys
        self.show_records = show_records
        self.object_records = 0
        self.without_objects = 0
        self.per_class: Counter[str] = Counter()
        self.shown: list[RecordObjects] = []
        self.features: dict[str, str] = {}
        self.samples: dict[str, str] = {}
        self.formats: Counter[str] = Counter()
        self.sizes: Counter[str] = Counter()
        self.labels: Counter[str] = Counter()
        self.records = 0

    def read(self, ref: Shard, limit: int, notes: list[str]) -> None:
        try:
            self._read_first(ref, limit, notes)
        except TFRecordToolsError as e:
            notes.append(f"sample stopped: {e}")
        except (OSError, EOFError) as e:
            notes.append(f"sample stopped: {ref.shown}: {e}")

    def _read_first(self, ref: Shard, limit: int, notes: list[str]) -> None:
        """The first ``limit`` records of a shard, read 1 MiB at a time as needed (a URL's
        in ranged reads: a sample never reads a whole object)."""
        with RecordScanner(
            ref.path, ref.compression, size=ref.size, block_size=_SAMPLE_BLOCK, ahead=0
        ) as scanner:
            for item in scanner:
                if isinstance(item, Damage):
                    notes.append(f"sample stopped: {item.error(ref.shown)}")
                    return
                if item.index >= limit:
                    return
                data = bytes(scanner.payload(item))
                self.add(data, ref, item.index, notes)

    def add(self, data: bytes, ref: Shard, index: int, notes: list[str]) -> None:
        self.records += 1
        where = f"{ref.shown}: record {index}"
        try:
            example = schema.decode_example(data)
        except schema.ExampleParseError as e:
            notes.append(f"{where}: not a tf.train.Example ({e})")
            return
        for key, (kind, values) in example.items():
            self.features.setdefault(key, kind)
            if key not in self.samples:
                self.samples[key] = _show(values)
        if detection.SEGMENTATION in example or any(k in example for k in _OBJECT_KEYS):
            self._objects(data, ref.name, index, notes)
        # the image and label keys the readers use: ours, TFDS's, the Keras tutorial's...
        # (dataset/keys.py)
        keys = self.keys
        if keys is None:
            return
        encoded = _first(example, keys.image)
        if isinstance(encoded, bytes):
            self._image(encoded, example, where, notes)
        label = _first(example, schema.TEXT) if keys.ours else None
        label = label.decode("utf-8", "replace") if isinstance(label, bytes) else None
        if label is None and keys.label is not None:
            label = _first(example, keys.label)
        if label is not None:
            self.labels[str(label)] += 1

    def _objects(self, data: bytes, shard: str, index: int, notes: list[str]) -> None:
        """A detection / segmentation record: its objects counted, and kept in full while
        fewer than ``show_records`` are."""
        try:
            fields = detection.parse_detection(data)
        except detection.DetectionParseError as e:
            notes.append(f"{shard}: record {index}: not a valid detection record: {e}")
            return
        record = _record_objects(fields, shard, index)
        self.object_records += 1
        self.without_objects += not record.objects
        self.per_class.update(o.text or f"label {o.label}" for o in record.objects)
        if len(self.shown) < self.show_records:
            self.shown.append(record)

    def objects(self) -> ObjectsSample | None:
        if not self.object_records:
            return None
        return ObjectsSample(
            self.object_records,
            self.without_objects,
            dict(self.per_class.most_common()),
            self.shown,
        )

    def _image(self, encoded: bytes, example: dict, where: str, notes: list[str]) -> None:
        keys = self.keys
        assert keys is not None
        fmt = sniff_format(encoded)
        stored = _first(example, keys.format) if keys.format else None
        stored = stored.decode("ascii", "replace").lower() if isinstance(stored, bytes) else None
        stored = stored or keys.default_format or None  # the Keras tutorial's raw pixels
        dims = [_first(example, k) if k else None for k in (keys.height, keys.width, keys.channels)]
        if fmt in ("jpeg", "png"):
            try:
                _data, info = probe_image(encoded)
            except InvalidImageError as e:
                notes.append(f"{where}: {e}")
            else:
                dims = [info.height, info.width, info.channels]
        elif fmt is None:
            fmt = stored or "unknown"  # raw pixels have no magic number
        self.formats[fmt] += 1
        if all(isinstance(d, int) for d in dims):
            self.sizes["x".join(map(str, dims))] += 1


def _record_objects(fields: detection.DetectionFields, shard: str, index: int) -> RecordObjects:
    """What inspect shows of a parsed detection record. Keypoints are per object when the
    record holds the same number for each (the detection API's layout), else only counted."""
    n = len(fields.labels)
    points = len(fields.keypoints)
    per_object = points // n if n and points % n == 0 else None

    def flag(values: list[Any], i: int) -> bool:
        return i < len(values) and bool(values[i])

    objects = []
    for i, (label, box) in enumerate(zip(fields.labels, fields.boxes, strict=True)):
        flags = [
            name
            for name, values in (
                ("crowd", fields.is_crowd),
                ("difficult", fields.difficult),
                ("truncated", fields.truncated),
                ("mask", fields.masks),
            )
            if flag(values, i)
        ]
        text = fields.texts[i] if i < len(fields.texts) else ""
        objects.append(ObjectSummary(label, text, box, tuple(flags), per_object))
    return RecordObjects(
        shard, index, fields.filename, tuple(objects), points, _mask(fields.segmentation)
    )


def _mask(data: bytes | None) -> MaskSummary | None:
    """A segmentation map's format and size from its header (no decoding)."""
    if data is None:
        return None
    fmt = sniff_format(data)
    if fmt in ("jpeg", "png"):
        try:
            _data, info = probe_image(data)
        except InvalidImageError:
            pass
        else:
            return MaskSummary(fmt, info.height, info.width, len(data))
    return MaskSummary(fmt or "unknown", None, None, len(data))


_SHOWN_VALUES = 4
_SHOWN_BYTES = 24


def _show(values: list[Any]) -> str:
    """A short sample of a feature's values: image bytes by their format and size, other
    bytes as text (cut), numbers as they are (the first few)."""
    shown = []
    for value in values[:_SHOWN_VALUES]:
        if isinstance(value, bytes):
            fmt = sniff_format(value)
            if fmt is not None:
                shown.append(f"<{fmt}, {len(value):,} bytes>")
            elif len(value) > _SHOWN_BYTES:
                shown.append(f"{value[:_SHOWN_BYTES]!r}… ({len(value):,} bytes)")
            else:
                shown.append(repr(value))
        else:
            shown.append(repr(value))
    more = f", … ({len(values)} values)" if len(values) > _SHOWN_VALUES else ""
    text = ", ".join(shown) + more
    return f"[{text}]" if len(values) != 1 else text


def _first(example: dict, key: str) -> Any:
    values = example.get(key, ("empty", []))[1]
    return values[0] if values else None
