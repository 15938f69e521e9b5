"""The dataset manifest (``dataset.json``) and ``labels.txt``: the last stage of a conversion
and the first thing every reader and tool opens.

Data flow: shard infos -> **build_manifest** -> ``dataset.json`` (written last, atomically)
-> **read_manifest** -> a typed :class:`Manifest` for every tool and reader. The reader
checks every key it types and says which key of which file is wrong, so a hand-edited
``"num_examples": "500"`` is a clear error, not a traceback far away. Keys it does not
model are kept in ``Manifest.data`` (repair copies them). A folder without
``dataset.json`` is an unfinished conversion (FORMAT.md).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from .atomic import write_atomic
from .errors import FormatError
from .example import FEATURES
from .naming import INDEX_SUFFIX, LABELS, MANIFEST, WORK_DIR, ShardName, printable

__all__ = [
    "FORMAT_VERSION",
    "LABELS",
    "MANIFEST",
    "Manifest",
    "ShardEntry",
    "SplitEntry",
    "build_manifest",
    "check_finished",
    "read_manifest",
    "write_labels",
    "write_manifest",
]

FORMAT_VERSION = 1
COMPRESSIONS = ("none", "gzip", "zlib")


@dataclass(frozen=True)
class ShardEntry:
    """A shard as the manifest lists it (``num_bytes``/``sha256`` may be absent: None)."""

    file: str
    num_examples: int
    num_bytes: int | None = None
    sha256: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"file": self.file, "num_examples": self.num_examples}
        if self.num_bytes is not None:
            data["num_bytes"] = self.num_bytes
        if self.sha256 is not None:
            data["sha256"] = self.sha256
        return data


@dataclass(frozen=True)
class SplitEntry:
    name: str
    num_examples: int
    shards: tuple[ShardEntry, ...]

    @property
    def files(self) -> list[str]:
        return [s.file for s in self.shards]


@dataclass(frozen=True)
class Manifest:
    """A validated ``dataset.json``. ``data`` is the whole JSON object as read."""

    path: Path
    name: str
    classes: list[str] | None
    compression: str
    splits: dict[str, SplitEntry]
    image_shape: tuple[int, int, int] | None = None
    image_formats: dict[str, int] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def root(self) -> Path:
        return self.path.parent

    @property
    def shards(self) -> list[tuple[str, ShardEntry]]:
        """(split, entry) of every shard, in manifest order."""
        return [(split.name, shard) for split in self.splits.values() for shard in split.shards]

    @property
    def orientations(self) -> dict[str, int]:
        """Records per EXIF orientation other than 1 (``statistics.orientations``; absent:
        none)."""
        counts = (self.data.get("statistics") or {}).get("orientations") or {}
        return dict(counts) if isinstance(counts, dict) else {}

    @property
    def image_format(self) -> str | None:
        """The one image format of every record, when the statistics say there is one."""
        return next(iter(self.image_formats)) if len(self.image_formats) == 1 else None


def read_json(path: Path, *, missing: str = "no such file") -> Any:
    """The JSON in ``path``; a missing, unreadable or malformed file is a FormatError that
    names it (``missing`` says what its absence means)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FormatError(f"{path}: {missing}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise FormatError(f"{path}: not valid JSON ({e})") from None
    except OSError as e:
        raise FormatError(f"{path}: cannot read: {e.strerror or e}") from None


def read_manifest(path: str | os.PathLike) -> Manifest:
    """Load and check ``dataset.json`` from a dataset folder (or the file itself)."""
    path = Path(path)
    if path.is_dir():
        path = path / MANIFEST
    missing = "no manifest (an unfinished conversion, or not a tfrecord-tools dataset)"
    data = read_json(path, missing=missing)
    return parse_manifest(data, path)


def check_finished(folder: str | os.PathLike) -> None:
    """Raise when ``folder`` holds a conversion of ours that never finished: no
    ``dataset.json``, but the work folder a conversion keeps until its manifest is written,
    or our shards with their ``.idx`` files and ``labels.txt`` (a finished conversion whose
    manifest is gone). TFRecords from elsewhere, without these, pass."""
    folder = Path(folder)
    if (folder / MANIFEST).exists():
        return
    why = None
    if (folder / WORK_DIR).is_dir():
        why = f"its work folder {WORK_DIR} is there, {MANIFEST} is not"
    elif (folder / LABELS).is_file():
        try:
            names = os.listdir(folder)
        except OSError:
            return
        ours = [n for n in names if ShardName.parse(n) and f"{n}{INDEX_SUFFIX}" in names]
        if ours:
            why = f"{len(ours)} shard(s) with indexes and {LABELS}, but no {MANIFEST}"
    if why is not None:
        raise FormatError(
            f"{folder}: unfinished conversion ({why}): run the same convert command again"
        )


def parse_manifest(data: Any, path: Path) -> Manifest:
    """Check the JSON object ``data`` read from ``path`` and type it."""
    check = _Checker(path)
    if not isinstance(data, dict):
        check.fail("the manifest", "a JSON object", data)
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        raise FormatError(
            f"{path}: format_version {version!r}; this tool reads version {FORMAT_VERSION}"
        )
    compression = check.string(data, "compression", default="none").lower()
    if compression not in COMPRESSIONS:
        check.fail('"compression"', f"one of {', '.join(COMPRESSIONS)}", compression)
    classes = data.get("classes")
    if classes is not None and not (
        isinstance(classes, list) and all(isinstance(c, str) for c in classes)
    ):
        check.fail('"classes"', "a list of strings", classes)
    splits_data = data.get("splits")
    if not isinstance(splits_data, dict):
        check.fail('"splits"', "an object of splits", splits_data)
    splits = {}
    for split, info in splits_data.items():
        where = f'"splits"."{split}"'
        if not isinstance(info, dict):
            check.fail(where, "an object", info)
        shards_data = info.get("shards")
        if not isinstance(shards_data, list):
            check.fail(f'{where}."shards"', "a list", shards_data)
        shards = []
        for i, entry in enumerate(shards_data):
            at = f'{where}."shards"[{i}]'
            if not isinstance(entry, dict):
                check.fail(at, "an object", entry)
            file = check.string(entry, "file", at=at)
            if PurePosixPath(file).name != file or file in ("", ".", ".."):
                check.fail(f'{at}."file"', "a plain file name", file)
            shards.append(
                ShardEntry(
                    file,
                    check.count(entry, "num_examples", at=at),
                    check.count(entry, "num_bytes", at=at, required=False),
                    check.string(entry, "sha256", at=at, default=None),
                )
            )
        total = check.count(info, "num_examples", at=where, required=False)
        splits[split] = SplitEntry(
            split, sum(s.num_examples for s in shards) if total is None else total, tuple(shards)
        )
    shape = data.get("image_shape")
    if shape is not None and not (
        isinstance(shape, list) and len(shape) == 3 and all(_is_count(v) for v in shape)
    ):
        check.fail('"image_shape"', "[height, width, channels]", shape)
    formats = (data.get("statistics") or {}).get("image_formats") or {}
    if not (isinstance(formats, dict) and all(_is_count(v) for v in formats.values())):
        check.fail('"statistics"."image_formats"', "an object of counts", formats)
    return Manifest(
        path=path,
        name=check.string(data, "name", default=path.parent.name),
        classes=classes,
        compression=compression,
        splits=splits,
        image_shape=tuple(shape) if shape else None,  # type: ignore[arg-type]
        image_formats=dict(formats),
        data=data,
    )


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


class _Checker:
    """Typed look-ups that name the file and the key when a value is not what it must be."""

    def __init__(self, path: Path):
        self.path = path

    def fail(self, key: str, expected: str, found: Any) -> None:
        raise FormatError(f"{self.path}: {key} must be {expected}, found {json.dumps(found)[:60]}")

    def string(self, obj: dict, key: str, *, at: str = "", default: Any = ...) -> Any:
        value = obj.get(key, default)
        if value is ...:
            self.fail(_key(at, key), "a string", None)
        if value is not default and not isinstance(value, str):
            self.fail(_key(at, key), "a string", value)
        return value

    def count(self, obj: dict, key: str, *, at: str = "", required: bool = True) -> Any:
        value = obj.get(key)
        if value is None and not required:
            return None
        if not _is_count(value):
            self.fail(_key(at, key), "a whole number >= 0", value)
        return value


def _key(at: str, key: str) -> str:
    return f'{at}."{key}"' if at else f'"{key}"'


def build_manifest(
    *,
    name: str,
    source: Mapping[str, Any],
    skipped: Sequence[tuple[str, str]],
    classes: Sequence[str],
    compression: str,
    splits: Mapping[str, Sequence[ShardEntry]],
    statistics: Mapping[str, Any],
    extra: Mapping[str, Any],
    tool_version: str,
) -> dict[str, Any]:
    """The ``dataset.json`` object of FORMAT.md, keys in their documented order."""
    return {
        "format_version": FORMAT_VERSION,
        "name": name,
        "source": {
            **{k: printable(v) if isinstance(v, str) else v for k, v in source.items()},
            "skipped": [{"path": printable(p), "reason": why} for p, why in skipped],
        },
        "classes": list(classes),
        "compression": compression,
        "features": FEATURES,
        "splits": {
            split: {
                "num_examples": sum(s.num_examples for s in shards),
                "shards": [s.to_json() for s in shards],
            }
            for split, shards in splits.items()
            if shards
        },
        "statistics": dict(statistics),
        **extra,
        "tool": {"name": "tfrecord-tools", "version": tool_version},
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def write_labels(out_dir: str | os.PathLike, classes: Sequence[str]) -> Path:
    return write_atomic(Path(out_dir) / LABELS, "".join(f"{c}\n" for c in classes))


def write_manifest(out_dir: str | os.PathLike, manifest: Mapping[str, Any]) -> Path:
    text = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
    return write_atomic(Path(out_dir) / MANIFEST, text)
