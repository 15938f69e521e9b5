"""TensorFlow Datasets' metadata, both ways, without tensorflow-datasets: what lets
``tfds.builder_from_directory(OUT)`` load a dataset of ours, and what lets our tools read
a folder TFDS prepared.

Data flow: manifest -> **dataset_info.json + features.json + image-class-label.labels.txt**
(written before ``dataset.json``, which stays last); and back: a TFDS folder's
``dataset_info.json`` -> **splits, shard files and their lengths** (counts without a scan).

    OUT/
      dataset_info.json                  TFDS's DatasetInfo proto as JSON: name, version,
                                         splits (shard lengths, bytes, file name template)
      features.json                      TFDS's FeaturesDict as JSON (see ``features_json``)
      image-class-label.labels.txt       the ClassLabel's names, line i = label i
      image-object-class-label.labels.txt   (a detection dataset's instead: its objects'
                                         ClassLabel, line 0 the background, i = label i)

TFDS flattens a nested FeaturesDict into ``/``-joined keys, so ``{"image": {"encoded":
Image, "class": {"label": ClassLabel}}}`` parses exactly our records' ``image/encoded``
and ``image/class/label``; a ClassLabel at ``image/class/label`` keeps its names in
``image-class-label.labels.txt``. A detection dataset (manifest ``task: "detection"``) is
described the same way: its per-object lists ``image/object/...`` are a TFDS Sequence at
``image/object``, which flattens to exactly the detection API's keys (see
``detection_features_json``), so TFDS reads the records as they are, nothing stored twice.
TFDS names datasets ``[A-Za-z][A-Za-z0-9_]*`` and parses ``{DATASET}`` in file names with
that pattern, so a name such as ``my-data`` is written as ``my_data`` in
``dataset_info.json`` with a file template that spells the real shard names
(``my-data-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}``): shards and manifest keep the user's
name. TFDS reads only uncompressed TFRecords: compressed datasets get no TFDS metadata.
Nothing here holds a date, path or version of a tool: the bytes follow from the manifest.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from .. import storage
from ..errors import FormatError
from ..storage.atomic import write_atomic
from .detection import (
    AREA,
    CLASS_LABEL,
    CLASS_TEXT,
    DIFFICULT,
    IS_CROWD,
    KEY_SHA256,
    POSE,
    SOURCE_ID,
    TRUNCATED,
    XMAX,
    XMIN,
    YMAX,
    YMIN,
)
from .example import CHANNELS, ENCODED, FILENAME, FORMAT, HEIGHT, LABEL, TEXT, WIDTH
from .manifest import (
    LABELS,
    MANIFEST,
    Manifest,
    file_in,
    parse_manifest,
    read_json,
    read_manifest,
    shown_path,
)

__all__ = [
    "TFDS_DETECTION_FILES",
    "TFDS_FEATURES",
    "TFDS_FILES",
    "TFDS_INFO",
    "TFDS_LABELS",
    "TFDS_OBJECT_LABELS",
    "TfdsInfo",
    "TfdsSplit",
    "build_tfds_metadata",
    "detection_features_json",
    "is_tfds_folder",
    "read_tfds_info",
    "remove_tfds_metadata",
    "tfds_name",
    "tfds_notes",
    "write_tfds_metadata",
]

TFDS_INFO = "dataset_info.json"
TFDS_FEATURES = "features.json"
#: TFDS names a nested ClassLabel's names file after its path, ``/`` -> ``-``.
TFDS_LABELS = LABEL.replace("/", "-") + ".labels.txt"
TFDS_FILES = (TFDS_INFO, TFDS_FEATURES, TFDS_LABELS)
#: A detection dataset's objects' ClassLabel (``image/object/class/label``): its names file.
TFDS_OBJECT_LABELS = CLASS_LABEL.replace("/", "-") + ".labels.txt"
TFDS_DETECTION_FILES = (TFDS_INFO, TFDS_FEATURES, TFDS_OBJECT_LABELS)
#: The Sequence of a detection record's objects: every ``image/object/...`` list.
OBJECTS = "image/object"
#: Label 0 of a detection dataset (the detection API's background; no record has it):
#: TFDS's ClassLabel names every number from 0.
BACKGROUND = "background"
#: Written as the dataset's TFDS version; TFDS needs one (x.y.z). Our format's version lives
#: in the manifest.
TFDS_VERSION = "1.0.0"
#: TFDS's default shard file template: ``NAME-SPLIT.tfrecord-00000-of-00004``, our naming.
DEFAULT_TEMPLATE = "{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}"
FILE_FORMAT = "tfrecord"

_TFDS_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_PREFIX = "tensorflow_datasets.core.features."
_DICT = _PREFIX + "features_dict.FeaturesDict"
_SEQUENCE = _PREFIX + "sequence_feature.Sequence"
_CLASS_LABEL = _PREFIX + "class_label_feature.ClassLabel"


def tfds_name(name: str) -> str:
    """``name`` as TFDS accepts a dataset name: other characters than ASCII letters, digits
    and ``_`` become ``_``, and one that does not start with a letter gets a ``d_`` prefix."""
    if _TFDS_NAME.match(name):
        return name
    valid = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return valid if valid[:1].isalpha() else f"d_{valid}"


def file_template(name: str) -> str:
    """The ``filepathTemplate`` whose shard names are ours: TFDS's default when ``name`` is a
    valid TFDS name, else the name spelled out (braces doubled for ``str.format``)."""
    if tfds_name(name) == name:
        return DEFAULT_TEMPLATE
    literal = name.replace("{", "{{").replace("}", "}}")
    return f"{literal}-{{SPLIT}}.{{FILEFORMAT}}-{{SHARD_X_OF_Y}}"


def tfds_notes(manifest: Manifest | Mapping[str, Any]) -> list[str]:
    """What the conversion summary says about the TFDS metadata of ``manifest``."""
    manifest = _typed(manifest)
    if manifest.compression != "none":
        return [
            f"no TFDS metadata: TFDS reads only uncompressed shards (this is "
            f"{manifest.compression}); convert with --compression none to load it with TFDS"
        ]
    notes = []
    if tfds_name(manifest.name) != manifest.name:
        notes.append(
            f"TFDS name {tfds_name(manifest.name)!r} (TFDS does not accept {manifest.name!r}); "
            "the shard names keep it"
        )
    if manifest.image_format == "raw" and manifest.image_shape is None:
        notes.append("TFDS gives raw images as bytes: they do not share one shape")
    return notes


def build_tfds_metadata(manifest: Manifest | Mapping[str, Any]) -> dict[str, str]:
    """{file name: text} of the TFDS metadata for ``manifest`` (a typed manifest or the dict
    ``build_manifest`` made): a classification dataset's, or a detection dataset's when the
    manifest says ``task: "detection"``; raises FormatError for a compressed dataset."""
    manifest = _typed(manifest)
    if manifest.compression != "none":
        raise FormatError(
            f"{manifest.path}: TFDS reads only uncompressed TFRecords, these are "
            f"{manifest.compression}; convert with --compression none"
        )
    task = manifest.data.get("task", "classification")
    if task == "detection":
        return {
            TFDS_INFO: _dump(dataset_info_json(manifest, description=_DETECTION_DESCRIPTION)),
            TFDS_FEATURES: _dump(detection_features_json(manifest)),
            TFDS_OBJECT_LABELS: _names_file(object_label_names(manifest.classes or [])),
        }
    if task != "classification":
        raise FormatError(f"{manifest.path}: no TFDS metadata for task {task!r}")
    return {
        TFDS_INFO: _dump(dataset_info_json(manifest)),
        TFDS_FEATURES: _dump(features_json(manifest)),
        TFDS_LABELS: _names_file(manifest.classes or []),
    }


def _names_file(names: list[str]) -> str:
    return "".join(f"{c}\n" for c in names)


_DESCRIPTION = (
    "Converted by tfrecord-tools: records with the image/* keys of TensorFlow's image "
    "scripts (see dataset.json beside this file)."
)
_DETECTION_DESCRIPTION = (
    "Converted by tfrecord-tools: detection records with the keys of TensorFlow's object "
    "detection API; image/object/class/label is 1-based, 0 is the background (see "
    "dataset.json and label_map.pbtxt beside this file)."
)


def dataset_info_json(manifest: Manifest, *, description: str = _DESCRIPTION) -> dict[str, Any]:
    """TFDS's DatasetInfo proto as JSON (int64 values as strings, as protobuf writes them)."""
    template = file_template(manifest.name)
    splits = []
    for split in manifest.splits.values():
        splits.append(
            {
                "filepathTemplate": template,
                "name": split.name,
                "numBytes": str(sum(s.num_bytes or 0 for s in split.shards)),
                "shardLengths": [str(s.num_examples) for s in split.shards],
            }
        )
    return {
        "description": description,
        "fileFormat": FILE_FORMAT,
        "name": tfds_name(manifest.name),
        "splits": splits,
        "version": TFDS_VERSION,
    }


def features_json(manifest: Manifest) -> dict[str, Any]:
    """TFDS's features.json: a FeaturesDict nested so that it flattens to our keys.

    ``image/encoded`` is an Image (decoded by ``tf.image.decode_image``; 3 channels unless
    every image shares one shape, then its shape) or, for raw pixels of one shape, a uint8
    Tensor stored as bytes; raw pixels of several shapes stay bytes. ``image/orientation``
    is left out (a record has it only sometimes; TFDS gives images as stored)."""
    keys = {
        **_image_features(manifest),
        LABEL: _class_label(len(manifest.classes or [])),
        TEXT: _text(),
    }
    return _features_dict(_nest(keys))


def detection_features_json(manifest: Manifest) -> dict[str, Any]:
    """TFDS's features.json of a detection dataset: the image keys as ``features_json``'s,
    ``image/source_id`` and ``image/key/sha256`` as Text, and a Sequence at ``image/object``
    of every per-object list (float32 box corners, the ClassLabel and its Text, is_crowd,
    area, difficult, truncated, view). TFDS gives ``ex["image"]["object"]["bbox"]["ymin"]``
    ... as [N] arrays (not TFDS's BBoxFeature, which stores one [N, 4] list under a key of
    its own); the ClassLabel names label 0 the background (``object_label_names``).
    Keypoints, masks, ``image/orientation`` and segmentation maps are left out (a record has
    them only sometimes, keypoints not one per object): TFDS ignores them."""
    n = len(manifest.classes or [])
    per_object = {
        XMIN: _scalar("float32"),
        YMIN: _scalar("float32"),
        XMAX: _scalar("float32"),
        YMAX: _scalar("float32"),
        CLASS_LABEL: _class_label(n + 1),
        CLASS_TEXT: _text(),
        IS_CROWD: _scalar(),
        AREA: _scalar("float32"),
        DIFFICULT: _scalar(),
        TRUNCATED: _scalar(),
        POSE: _text(),
    }
    inner = {key.removeprefix(OBJECTS + "/"): f for key, f in per_object.items()}
    sequence = {
        "pythonClassName": _SEQUENCE,
        "sequence": {"feature": _features_dict(_nest(inner)), "length": "-1"},
    }
    keys = {
        **_image_features(manifest),
        SOURCE_ID: _text(),
        KEY_SHA256: _text(),
        OBJECTS: sequence,
    }
    return _features_dict(_nest(keys))


def object_label_names(classes: list[str]) -> list[str]:
    """The names of a detection dataset's ClassLabel: label i + 1 is ``classes[i]``, label 0
    the background, named ``background`` (with ``_`` before it until no class has it)."""
    background = BACKGROUND
    while background in classes:
        background = "_" + background
    return [background, *classes]


def _image_features(manifest: Manifest) -> dict[str, dict[str, Any]]:
    """The features of every record's image keys."""
    return {
        ENCODED: _encoded_feature(manifest),
        FORMAT: _text(),
        HEIGHT: _scalar(),
        WIDTH: _scalar(),
        CHANNELS: _scalar(),
        FILENAME: _text(),
    }


def _nest(keys: Mapping[str, Any]) -> dict[str, Any]:
    """``{"a/b": f}`` as ``{"a": {"b": f}}``: the tree TFDS flattens back to the keys."""
    nested: dict[str, Any] = {}
    for key, feature in keys.items():
        *parents, leaf = key.split("/")
        level = nested
        for part in parents:
            level = level.setdefault(part, {})
        level[leaf] = feature
    return nested


def _class_label(num_classes: int) -> dict[str, Any]:
    return {"classLabel": {"numClasses": str(num_classes)}, "pythonClassName": _CLASS_LABEL}


def _features_dict(tree: Mapping[str, Any]) -> dict[str, Any]:
    features = {
        key: value if "pythonClassName" in value else _features_dict(value)
        for key, value in sorted(tree.items())
    }
    return {"featuresDict": {"features": features}, "pythonClassName": _DICT}


def _encoded_feature(manifest: Manifest) -> dict[str, Any]:
    shape = manifest.image_shape
    if manifest.image_format == "raw":
        if shape is None:
            return _tensor([], "string")
        return _tensor([str(d) for d in shape], "uint8", encoding="bytes")
    dims = [str(d) for d in shape] if shape is not None else ["-1", "-1", "3"]
    return {
        "image": {"dtype": "uint8", "shape": {"dimensions": dims}},
        "pythonClassName": _PREFIX + "image_feature.Image",
    }


def _tensor(dims: list[str], dtype: str, *, encoding: str = "none") -> dict[str, Any]:
    shape: dict[str, Any] = {"dimensions": dims} if dims else {}
    return {
        "pythonClassName": _PREFIX + "tensor_feature.Tensor",
        "tensor": {"dtype": dtype, "encoding": encoding, "shape": shape},
    }


def _scalar(dtype: str = "int64") -> dict[str, Any]:
    return {
        "pythonClassName": _PREFIX + "scalar.Scalar",
        "tensor": {"dtype": dtype, "encoding": "none", "shape": {}},
    }


def _text() -> dict[str, Any]:
    return {"pythonClassName": _PREFIX + "text_feature.Text", "text": {}}


def _dump(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _typed(manifest: Manifest | Mapping[str, Any]) -> Manifest:
    if isinstance(manifest, Manifest):
        return manifest
    return parse_manifest(dict(manifest), Path(MANIFEST))


def write_tfds_metadata(
    out_dir: str | os.PathLike, manifest: Manifest | Mapping[str, Any] | None = None
) -> list[Path]:
    """Write the TFDS metadata of the dataset in ``out_dir`` (of ``manifest``, else of its
    ``dataset.json``; no shard is read), each file atomically; returns the paths."""
    out_dir = Path(out_dir)
    if manifest is None:
        manifest = read_manifest(out_dir)
    files = build_tfds_metadata(manifest)
    return [write_atomic(out_dir / name, text) for name, text in files.items()]


def remove_tfds_metadata(out_dir: str | os.PathLike) -> None:
    """Remove the TFDS metadata files from ``out_dir`` (a compressed reconversion must not
    leave TFDS a description of shards it cannot read): a classification or detection
    dataset's."""
    for name in dict.fromkeys(TFDS_FILES + TFDS_DETECTION_FILES):
        with contextlib.suppress(FileNotFoundError):
            (Path(out_dir) / name).unlink()


# --------------------------------------------------------------------------- reading


def is_tfds_folder(folder: str | os.PathLike) -> bool:
    """A folder TFDS prepared: ``dataset_info.json``, and neither ``dataset.json`` nor our
    ``labels.txt``. Ours without its manifest (deleted, or a conversion interrupted after
    its TFDS files) stays what it was, never a dataset (FORMAT.md). A URL: one listing."""
    if storage.is_url(folder):
        names = storage.list_files(folder)
        return TFDS_INFO in names and MANIFEST not in names and LABELS not in names
    folder = Path(folder)
    return (
        (folder / TFDS_INFO).is_file()
        and not (folder / MANIFEST).exists()
        and not (folder / LABELS).exists()
    )


@dataclass(frozen=True)
class TfdsSplit:
    """A split as ``dataset_info.json`` describes it: its shard files (relative to the
    folder) and their record counts."""

    name: str
    files: tuple[str, ...]
    shard_lengths: tuple[int, ...]
    num_bytes: int | None

    @property
    def num_examples(self) -> int:
        return sum(self.shard_lengths)


@dataclass(frozen=True)
class TfdsInfo:
    """The parts of a TFDS folder's ``dataset_info.json`` that locate and count shards
    (``path``: a ``Path``, or for a folder in a bucket the file's URL)."""

    path: Path | str
    name: str
    file_format: str
    splits: dict[str, TfdsSplit]

    @property
    def root(self) -> Path | str:
        return storage.dirname(self.path) if isinstance(self.path, str) else self.path.parent

    @property
    def shards(self) -> list[tuple[str, str, int]]:
        """(split, file, records) of every shard, in split order."""
        return [
            (split.name, file, count)
            for split in self.splits.values()
            for file, count in zip(split.files, split.shard_lengths, strict=True)
        ]


def read_tfds_info(folder: str | os.PathLike) -> TfdsInfo:
    """Read ``dataset_info.json`` of a folder TFDS prepared (or of ours): split names, shard
    files from each split's file template, and shard lengths; raises FormatError naming the
    file and the key that is not what TFDS writes. ``folder`` may be a URL (one read)."""
    path = file_in(folder, TFDS_INFO)
    data = read_json(path)
    shown = shown_path(path)
    if not isinstance(data, dict):
        raise FormatError(f"{shown}: must be a JSON object")
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise FormatError(f'{shown}: "name" must be a dataset name, found {name!r}')
    file_format = data.get("fileFormat") or FILE_FORMAT
    if file_format != FILE_FORMAT:
        raise FormatError(
            f'{shown}: "fileFormat" is {file_format!r}; only TFRecord datasets can be read '
            "(prepare it with file_format='tfrecord')"
        )
    splits_data = data.get("splits")
    if not isinstance(splits_data, list) or not splits_data:
        raise FormatError(f'{shown}: "splits" must be a list of splits, found {splits_data!r}')
    splits = {}
    for i, entry in enumerate(splits_data):
        split = _split(entry, name, file_format, f'{shown}: "splits"[{i}]')
        splits[split.name] = split
    return TfdsInfo(path, name, file_format, splits)


def _split(entry: Any, dataset: str, suffix: str, where: str) -> TfdsSplit:
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        raise FormatError(f"{where}: must be an object with a split name")
    split = entry["name"]
    lengths = entry.get("shardLengths")
    if lengths is None:
        raise FormatError(
            f'{where}: split {split!r} has no "shardLengths" (written by TFDS before 4.0?); '
            "prepare the dataset again with a recent TFDS"
        )
    try:
        counts = tuple(int(n) for n in lengths)
        num_bytes = int(entry["numBytes"]) if "numBytes" in entry else None
    except (TypeError, ValueError):
        raise FormatError(
            f'{where}: "shardLengths" and "numBytes" must be whole numbers, found {lengths!r}'
        ) from None
    if any(n < 0 for n in counts):
        raise FormatError(f'{where}: "shardLengths" must be >= 0, found {lengths!r}')
    template = entry.get("filepathTemplate") or DEFAULT_TEMPLATE
    if not isinstance(template, str):
        raise FormatError(f'{where}: "filepathTemplate" must be a string, found {template!r}')
    files = tuple(
        _shard_file(template, dataset, split, suffix, i, len(counts), where)
        for i in range(len(counts))
    )
    return TfdsSplit(split, files, counts, num_bytes)


def _shard_file(
    template: str, dataset: str, split: str, suffix: str, index: int, count: int, where: str
) -> str:
    """A shard's path relative to the folder, as TFDS's ShardedFileTemplate formats it."""
    template = template[: template.rfind("%")] if "%" in template else template
    digits = max(len(str(count)), 5)
    shard, total = f"{index:0{digits}d}", f"{count:0{digits}d}"
    try:
        file = template.format(
            DATASET=dataset,
            SPLIT=split,
            FILEFORMAT=suffix,
            SHARD_INDEX=shard,
            NUM_SHARDS=total,
            SHARD_X_OF_Y=f"{shard}-of-{total}",
        )
    except (KeyError, IndexError, ValueError) as e:
        raise FormatError(f'{where}: cannot format "filepathTemplate" {template!r} ({e})') from e
    parts = PurePosixPath(file).parts
    if not parts or PurePosixPath(file).is_absolute() or ".." in parts:
        raise FormatError(f'{where}: "filepathTemplate" {template!r} leaves the folder')
    return file
