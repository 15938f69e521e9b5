"""Finding the shards a tool works on: the PATH arguments of inspect / count / verify /
repair / index -> a list of shards, each with its compression and what the manifest says.

Data flow: dataset folder or shard files -> **locate** -> scan / verify / count. PATH is one
of::

    OUT/                      a dataset folder: the shards its dataset.json lists (plus the
      dataset.json            shard files it does not list, reported as extra), or, with no
      NAME-train.tfrecord-*   manifest, every file named *.tfrecord* / *.tfrec* in it
    TFDS_DIR/                 a folder TFDS prepared: the shards its dataset_info.json lists
      dataset_info.json       (file template + shard lengths: counts without a scan; other
      NAME-train.tfrecord-*   shard files are extra)
    OUT/NAME-train.tfrecord-00000-of-00004     shard files (their folder's manifest entry is
    'OUT/*-train.tfrecord-*'                   used when there is one) or quoted globs

Compression comes from the manifest (TFDS: none), else from each file's first bytes.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import TFRecordToolsError
from ..format.compression import detect_compression
from ..format.manifest import Manifest, ShardEntry, check_finished, read_manifest
from ..format.naming import INDEX_SUFFIX, MANIFEST, index_path, is_shard_name
from ..format.tfds import TfdsInfo, is_tfds_folder, read_tfds_info

__all__ = ["Located", "ShardRef", "locate"]

_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class ShardRef:
    """One shard: where it is, how it is compressed, and the manifest's entry if any.
    ``tfds_records`` is the record count a TFDS ``dataset_info.json`` gives for it (such
    folders have no manifest, sizes, sha256 or ``.idx`` files to expect)."""

    path: Path
    compression: str
    split: str | None = None
    expected: ShardEntry | None = None
    tfds_records: int | None = None

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def index_file(self) -> Path:
        """The shard's ``.idx`` file (which may not exist)."""
        return index_path(self.path)


@dataclass(frozen=True)
class Located:
    """What PATH named. ``root``/``manifest`` are set when it was a dataset folder,
    ``root``/``tfds`` when it was a folder TFDS prepared."""

    shards: list[ShardRef]
    root: Path | None = None
    manifest: Manifest | None = None
    extra: list[Path] = field(default_factory=list)  # shard files the manifest does not list
    tfds: TfdsInfo | None = None


def locate(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> Located:
    """Resolve PATH arguments (see the module docstring); raises TFRecordToolsError when a
    path names nothing usable."""
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    if not paths:
        raise TFRecordToolsError("no PATH given: name a dataset folder or shard files")
    first = Path(paths[0])
    if len(paths) == 1 and first.is_dir():
        return _locate_folder(first)
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            raise TFRecordToolsError(
                f"{path}: a folder among several paths; give one dataset folder, or shard files"
            )
        if path.exists():
            files.append(path)
        elif _GLOB_CHARS & set(os.fspath(raw)):
            matches = sorted(Path(m) for m in glob.glob(os.fspath(raw)) if Path(m).is_file())
            matches = [m for m in matches if not m.name.endswith(INDEX_SUFFIX)]
            if not matches:
                raise TFRecordToolsError(f"{raw}: no files match this pattern")
            files.extend(matches)
        else:
            raise TFRecordToolsError(f"{path}: no such file or folder")
    folders: dict[Path, dict[str, ShardRef]] = {}
    return Located(shards=[_file_ref(f, folders) for f in dict.fromkeys(files)])


def _locate_folder(root: Path) -> Located:
    present = sorted(p for p in root.iterdir() if p.is_file() and is_shard_name(p.name))
    check_finished(root)
    if is_tfds_folder(root):
        info = read_tfds_info(root)
        shards = [_tfds_ref(root, split, file, n) for split, file, n in info.shards]
        listed = {s.path for s in shards}
        extra = [p for p in present if p not in listed]
        return Located(shards=shards, root=root, extra=extra, tfds=info)
    if not (root / MANIFEST).exists():
        if not present:
            raise TFRecordToolsError(
                f"{root}: no {MANIFEST} and no TFRecord files (*.tfrecord*, *.tfrec*) here"
            )
        return Located(shards=[ShardRef(p, _detect(p)) for p in present], root=root)
    manifest = read_manifest(root)
    shards = [
        ShardRef(root / entry.file, manifest.compression, split, entry)
        for split, entry in manifest.shards
    ]
    listed = {s.path.name for s in shards}
    extra = [p for p in present if p.name not in listed]
    return Located(shards=shards, root=root, manifest=manifest, extra=extra)


def _tfds_ref(root: Path, split: str, file: str, records: int) -> ShardRef:
    return ShardRef(root / file, "none", split, tfds_records=records)


def _file_ref(path: Path, folders: dict[Path, dict[str, ShardRef]]) -> ShardRef:
    """A shard file given by name: use its folder's manifest entry when it has one."""
    if path.parent not in folders:
        check_finished(path.parent)
        folders[path.parent] = _manifest_refs(path.parent)
    listed = folders[path.parent].get(path.name)
    if listed is not None:
        return ShardRef(path, listed.compression, listed.split, listed.expected)
    return ShardRef(path, _detect(path))


def _detect(path: Path) -> str:
    """The file's compression; an unreadable file is left for the tool to report."""
    try:
        return detect_compression(path)
    except OSError:
        return "none"


def _manifest_refs(folder: Path) -> dict[str, ShardRef]:
    """{file name: ref} from ``folder``'s manifest (or TFDS's ``dataset_info.json``); empty
    when it has none or a broken one (a shard named on its own is then judged by itself)."""
    if not (folder / MANIFEST).exists():
        try:
            info = read_tfds_info(folder) if is_tfds_folder(folder) else None
        except TFRecordToolsError:
            return {}
        if info is None:
            return {}
        return {
            Path(file).name: _tfds_ref(folder, split, file, n)
            for split, file, n in info.shards
            if Path(file).parent == Path(".")
        }
    try:
        manifest = read_manifest(folder)
    except TFRecordToolsError:
        return {}
    return {
        e.file: ShardRef(folder / e.file, manifest.compression, split, e)
        for split, e in manifest.shards
    }
