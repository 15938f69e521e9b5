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

Any of these may be a URL (``gs://b/ds``, ``s3://b/ds/*-train.tfrecord-*``, ``memory://ds``):
everything is then looked up through the storage seam (``format/storage.py``) with one
listing per folder, whose sizes the tools use instead of a request per shard, and one read
of the manifest. A URL shard's ``path`` is the URL (a ``str``); a local one's a ``Path``.

Compression comes from the manifest (TFDS: none), else from each file's first bytes.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import TFRecordToolsError
from ..format import storage
from ..format.compression import detect_compression, sniff_compression
from ..format.framing import HEADER_SIZE
from ..format.index import count_index, read_index
from ..format.manifest import Manifest, ShardEntry, check_finished, read_manifest, shown_path
from ..format.naming import (
    INDEX_SUFFIX,
    LABELS,
    MANIFEST,
    index_path,
    is_shard_name,
)
from ..format.tfds import TFDS_INFO, TfdsInfo, is_tfds_folder, read_tfds_info

__all__ = ["Located", "ShardRef", "locate"]

_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class ShardRef:
    """One shard: where it is, how it is compressed, and the manifest's entry if any.
    ``tfds_records`` is the record count a TFDS ``dataset_info.json`` gives for it (such
    folders have no manifest, sizes, sha256 or ``.idx`` files to expect).

    ``path`` is a ``Path``, or for a shard in a bucket its URL; then ``size`` and
    ``index_size`` are those of the object and of its ``.idx`` in the folder's listing
    (None: not there), so no tool makes a request per shard to learn them."""

    path: Path | str
    compression: str
    split: str | None = None
    expected: ShardEntry | None = None
    tfds_records: int | None = None
    size: int | None = None
    index_size: int | None = None

    @property
    def is_url(self) -> bool:
        return isinstance(self.path, str)

    @property
    def name(self) -> str:
        return storage.basename(self.path) if isinstance(self.path, str) else self.path.name

    @property
    def shown(self) -> str:
        """The shard as messages show it (a URL without credentials)."""
        return storage.redact(self.path)

    @property
    def index_file(self) -> Path | str:
        """The shard's ``.idx`` file (which may not exist)."""
        if isinstance(self.path, str):
            return self.path + INDEX_SUFFIX
        return index_path(self.path)

    def exists(self) -> bool:
        return self.size is not None if isinstance(self.path, str) else self.path.exists()

    def file_size(self) -> int:
        """The shard's size in bytes; OSError (FileNotFoundError) when it is not there."""
        if isinstance(self.path, str):
            if self.size is None:
                raise FileNotFoundError(2, "No such file or object", self.shown)
            return self.size
        return self.path.stat().st_size

    def has_index(self) -> bool:
        if isinstance(self.path, str):
            return self.index_size is not None
        return self.index_file.exists()  # type: ignore[union-attr]

    def read_index(self) -> list[tuple[int, int]]:
        """(offset, length) per line of the shard's ``.idx`` (FormatError naming it)."""
        return read_index(self.index_file)

    def count_index(self) -> int:
        """Records listed in the shard's ``.idx`` (one read)."""
        return count_index(self.index_file)


@dataclass(frozen=True)
class Located:
    """What PATH named. ``root``/``manifest`` are set when it was a dataset folder,
    ``root``/``tfds`` when it was a folder TFDS prepared (``root`` a URL for a bucket's)."""

    shards: list[ShardRef]
    root: Path | str | None = None
    manifest: Manifest | None = None
    extra: list[Path | str] = field(default_factory=list)  # shard files the manifest omits
    tfds: TfdsInfo | None = None

    @property
    def manifest_file(self) -> str | None:
        """The manifest as messages show it."""
        if self.manifest is None:
            return None
        return shown_path(self.manifest.path)


def locate(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> Located:
    """Resolve PATH arguments (see the module docstring); raises TFRecordToolsError when a
    path names nothing usable."""
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    if not paths:
        raise TFRecordToolsError("no PATH given: name a dataset folder or shard files")
    if any(storage.is_url(p) for p in paths):
        return _Remote().locate([os.fspath(p) for p in paths])
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


# --- URLs ------------------------------------------------------------------------------------


class _Remote:
    """:func:`locate` for PATHs among which are URLs: one listing per folder (kept), whose
    sizes go into the refs, and one read of each manifest."""

    def __init__(self) -> None:
        self._listings: dict[str, tuple[dict[str, int], set[str]]] = {}
        self._manifests: dict[str, dict[str, ShardRef]] = {}

    def listing(self, folder: str) -> tuple[dict[str, int], set[str]]:
        folder = folder.rstrip("/")
        if folder not in self._listings:
            self._listings[folder] = storage.list_folder(folder)
        return self._listings[folder]

    def locate(self, paths: list[str]) -> Located:
        first = paths[0]
        if len(paths) == 1 and storage.is_url(first) and not _is_glob(first):
            files, folders = self.listing(first)
            if files or folders:
                return self.folder(first.rstrip("/"), files, folders)
        refs: list[ShardRef] = []
        for raw in paths:
            if not storage.is_url(raw):  # a local path beside URLs
                refs += locate([raw]).shards if not Path(raw).is_dir() else _folder_among(raw)
                continue
            if _is_glob(raw):
                matches = [m for m in storage.glob(raw) if not m.endswith(INDEX_SUFFIX)]
                if not matches:
                    raise TFRecordToolsError(f"{storage.redact(raw)}: no files match this pattern")
                refs += [self.file_ref(m) for m in matches]
                continue
            files, folders = self.listing(raw)
            if files or folders:
                raise TFRecordToolsError(
                    f"{storage.redact(raw)}: a folder among several paths; give one dataset "
                    "folder, or shard files"
                )
            ref = self.file_ref(raw)
            if ref.size is None:
                raise TFRecordToolsError(f"{storage.redact(raw)}: no such file or folder")
            refs.append(ref)
        return Located(shards=list({str(r.path): r for r in refs}.values()))

    def folder(self, root: str, files: dict[str, int], folders: set[str]) -> Located:
        present = sorted(n for n in files if is_shard_name(n))
        check_finished(root, (files, folders))
        if TFDS_INFO in files and MANIFEST not in files and LABELS not in files:
            info = read_tfds_info(root)
            shards = [
                self.ref(storage.join(root, f), "none", s, None, n) for s, f, n in info.shards
            ]
            listed = {str(s.path) for s in shards}
            extra: list[Path | str] = [
                storage.join(root, n) for n in present if storage.join(root, n) not in listed
            ]
            return Located(shards=shards, root=root, extra=extra, tfds=info)
        if MANIFEST not in files:
            if not present:
                raise TFRecordToolsError(
                    f"{storage.redact(root)}: no {MANIFEST} and no TFRecord files "
                    "(*.tfrecord*, *.tfrec*) here"
                )
            shards = [self.ref(storage.join(root, n), None) for n in present]
            return Located(shards=shards, root=root)
        manifest = read_manifest(root)
        shards = [
            self.ref(storage.join(root, entry.file), manifest.compression, split, entry)
            for split, entry in manifest.shards
        ]
        listed = {s.name for s in shards}
        extra = [storage.join(root, n) for n in present if n not in listed]
        return Located(shards=shards, root=root, manifest=manifest, extra=extra)

    def ref(
        self,
        url: str,
        compression: str | None,
        split: str | None = None,
        expected: ShardEntry | None = None,
        tfds_records: int | None = None,
    ) -> ShardRef:
        """A shard at ``url``, its sizes from its folder's listing; compression sniffed from
        its first bytes when not given."""
        files, _ = self.listing(storage.dirname(url))
        name = storage.basename(url)
        size, index_size = files.get(name), files.get(name + INDEX_SUFFIX)
        if compression is None:
            compression = _sniff(url) if size else "none"
        return ShardRef(url, compression, split, expected, tfds_records, size, index_size)

    def file_ref(self, url: str) -> ShardRef:
        """A shard named on its own: its folder's manifest entry when there is one."""
        folder = storage.dirname(url)
        if folder not in self._manifests:
            files, folders = self.listing(folder)
            check_finished(folder, (files, folders))
            self._manifests[folder] = self.manifest_refs(folder, files)
        listed = self._manifests[folder].get(storage.basename(url))
        if listed is not None:
            return self.ref(url, listed.compression, listed.split, listed.expected)
        return self.ref(url, None)

    def manifest_refs(self, folder: str, files: dict[str, int]) -> dict[str, ShardRef]:
        """``_manifest_refs`` for a bucket folder."""
        try:
            if MANIFEST in files:
                manifest = read_manifest(folder)
                return {
                    e.file: ShardRef(storage.join(folder, e.file), manifest.compression, split, e)
                    for split, e in manifest.shards
                }
            if TFDS_INFO in files and LABELS not in files:
                info = read_tfds_info(folder)
                return {
                    file: ShardRef(storage.join(folder, file), "none", split, tfds_records=n)
                    for split, file, n in info.shards
                    if "/" not in file
                }
        except TFRecordToolsError:
            pass
        return {}


def _folder_among(raw: str) -> list[ShardRef]:
    raise TFRecordToolsError(
        f"{raw}: a folder among several paths; give one dataset folder, or shard files"
    )


def _is_glob(url: str) -> bool:
    return bool(_GLOB_CHARS & set(url.split("://", 1)[-1]))


def _sniff(url: str) -> str:
    """A shard's compression from its first bytes (one ranged read); an unreadable one is
    left for the tool to report."""
    try:
        return sniff_compression(storage.read_bytes(url, 0, HEADER_SIZE))
    except (OSError, TFRecordToolsError):
        return "none"
