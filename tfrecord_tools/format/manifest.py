"""The dataset manifest (``dataset.json``) and ``labels.txt``: the last stage of a conversion
and the first thing every reader and tool opens.

Data flow: shard infos -> **build_manifest** -> ``dataset.json`` (written last, atomically)
-> **read_manifest** -> a typed :class:`Manifest` for every tool and reader. The reader
checks every key it types and says which key of which file is wrong, so a hand-edited
``"num_examples": "500"`` is a clear error, not a traceback far away. Keys it does not
model are kept in ``Manifest.data`` (repair copies them). A folder without
``dataset.json`` is an unfinished conversion (FORMAT.md). A folder may be a URL: reads and
listings go through the storage seam (``storage.py``), messages show URLs redacted.
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from .. import storage
from ..errors import FormatError
from ..storage.atomic import write_atomic
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
    """A validated ``dataset.json``. ``data`` is the whole JSON object as read. ``path`` is
    a ``Path``, or for a manifest in a bucket its URL (a ``str``)."""

    path: Path | str
    name: str
    classes: list[str] | None
    compression: str
    splits: dict[str, SplitEntry]
    image_shape: tuple[int, int, int] | None = None
    image_formats: dict[str, int] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def root(self) -> Path | str:
        return storage.dirname(self.path) if isinstance(self.path, str) else self.path.parent

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


def read_json(path: str | os.PathLike, *, missing: str = "no such file") -> Any:
    """The JSON in ``path`` (a local file or a URL: one read); a missing, unreadable or
    malformed file is a FormatError that names it (``missing`` says what its absence
    means). A storage failure (server gone, access denied) stays a StorageError."""
    shown = shown_path(path)
    try:
        return json.loads(storage.read_text(path))
    except FileNotFoundError:
        raise FormatError(f"{shown}: {missing}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise FormatError(f"{shown}: not valid JSON ({e})") from None
    except OSError as e:
        raise FormatError(f"{shown}: cannot read: {e.strerror or e}") from None


def shown_path(path: str | os.PathLike) -> str:
    """``path`` as messages show it: a URL without credentials, a local path as ``Path``
    prints it."""
    return storage.redact(path) if storage.is_url(path) else str(Path(path))


def file_in(folder_or_file: str | os.PathLike, name: str) -> Path | str:
    """``name`` in a folder, or the file itself when given: a local path is looked at, a URL
    is taken by its last part (no request)."""
    if storage.is_url(folder_or_file):
        url = os.fspath(folder_or_file)
        return url if storage.basename(url) == name else storage.join(url, name)
    path = Path(folder_or_file)
    return path / name if path.is_dir() else path


def read_manifest(path: str | os.PathLike) -> Manifest:
    """Load and check ``dataset.json`` from a dataset folder (or the file itself), local or
    at a URL (one read)."""
    path = file_in(path, MANIFEST)
    missing = "no manifest (an unfinished conversion, or not a tfrecord-tools dataset)"
    data = read_json(path, missing=missing)
    return parse_manifest(data, path)


Listing = tuple[Collection[str], Collection[str]]


def check_finished(folder: str | os.PathLike, listing: Listing | None = None) -> None:
    """Raise when ``folder`` holds a conversion of ours that never finished: no
    ``dataset.json``, but the work folder a conversion keeps until its manifest is written,
    or our shards with their ``.idx`` files and ``labels.txt`` (a finished conversion whose
    manifest is gone). TFRecords from elsewhere, without these, pass.

    ``listing``: (file names, folder names) of ``folder`` when listed already, as
    ``storage.list_folder`` gives them: then nothing more is asked. Without it a URL is
    listed once; a local folder is listed only when a work folder or labels are there."""
    if listing is None:
        if not storage.is_url(folder):
            path = Path(folder)
            if (path / MANIFEST).exists():
                return
            if not ((path / WORK_DIR).is_dir() or (path / LABELS).is_file()):
                return
        try:
            listing = storage.list_folder(folder)
        except OSError:
            return
    files, folders = listing
    why = _unfinished(files, folders)
    if why is not None:
        raise FormatError(
            f"{shown_path(folder)}: unfinished conversion ({why}): run the same convert command "
            "again"
        )


def _unfinished(files: Collection[str], folders: Collection[str]) -> str | None:
    """Why a folder whose listing is ``files`` and ``folders`` is an unfinished conversion
    of ours (see :func:`check_finished`); None when it is not one."""
    if MANIFEST in files:
        return None
    if WORK_DIR in folders:
        return f"its work folder {WORK_DIR} is there, {MANIFEST} is not"
    if LABELS in files:
        ours = [n for n in files if ShardName.parse(n) and f"{n}{INDEX_SUFFIX}" in files]
        if ours:
            return f"{len(ours)} shard(s) with indexes and {LABELS}, but no {MANIFEST}"
    return None


def parse_manifest(data: Any, path: str | os.PathLike) -> Manifest:
    """Check the JSON object ``data`` read from ``path`` (a local path or a URL) and type
    it; messages name ``path`` (a URL redacted)."""
    if not storage.is_url(path):
        path = Path(path)
    check = _Checker(shown_path(path))
    if not isinstance(data, dict):
        check.fail("the manifest", "a JSON object", data)
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        raise FormatError(
            f"{check.shown}: format_version {version!r}; this tool reads version {FORMAT_VERSION}"
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
        name=check.string(data, "name", default=storage.basename(storage.dirname(path))),
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

    def __init__(self, shown: str):
        self.shown = shown

    def fail(self, key: str, expected: str, found: Any) -> None:
        raise FormatError(f"{self.shown}: {key} must be {expected}, found {json.dumps(found)[:60]}")

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


def write_labels(out_dir: str | os.PathLike, classes: Sequence[str]) -> Path | str:
    """Write ``labels.txt`` whole (locally through a temporary sibling and a rename; to a
    bucket in one upload); returns where."""
    return _write(out_dir, LABELS, "".join(f"{c}\n" for c in classes))


def write_manifest(out_dir: str | os.PathLike, manifest: Mapping[str, Any]) -> Path | str:
    """Write ``dataset.json`` whole (see :func:`write_labels`); returns where."""
    return _write(out_dir, MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")


def _write(out_dir: str | os.PathLike, name: str, text: str) -> Path | str:
    if storage.is_url(out_dir):
        return storage.write_atomic(storage.join(out_dir, name), text)
    return write_atomic(Path(out_dir) / name, text)
