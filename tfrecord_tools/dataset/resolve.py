"""One answer to "what is at this PATH": every reader and tool resolves its PATH here.

Data flow: PATH -> **resolve** -> :class:`Dataset` (what it is, its shards with what is
known of each: split, compression, the records metadata promises, size, index) -> a
reader or a check tool. PATH is one of::

    OUT/                        ours: dataset.json lists the shards, counts, sizes, sha256
      dataset.json              (shard files it does not list are ``extra``)
    TFDS_DIR/                   a folder TFDS prepared: dataset_info.json's file templates
      dataset_info.json         and shard lengths (counts without a scan)
    DIR/                        bare shards: files named *.tfrecord* / *.tfrec*, and any other
      train-00000-of-01024      file that is a TFRecord by its framing (inception/slim's,
      data_tfrecord-0-of-2.gz   TFX's, Hadoop's part-m-00000), not by its name
    SHARD, 'DIR/*-train*', [SHARD, ...]   files or globs (a file's folder manifest entry,
                                          when it has one, still says what to expect)

Any of these may be a URL (``gs://``, ``s3://``, ``memory://``): one listing per folder,
whose sizes every tool uses instead of a request per shard, one read of the metadata.
A folder that holds an unfinished conversion of ours, or nothing of the above, is an
error (``FormatError`` / ``TFRecordToolsError``) naming it.

Compression: given, else the manifest's (TFDS: none), else each file's own first bytes.
Counts: metadata that cannot be true (more records than a shard's bytes can hold) is an
error naming the metadata file; the readers enforce the counts a shard promises.
"""

from __future__ import annotations

import concurrent.futures
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from ..errors import FormatError, TFRecordToolsError
from ..format.compression import (
    SNIFF_BYTES,
    normalize_compression,
    sniff_compression,
    sniff_tfrecord,
)
from ..format.framing import HEADER_SIZE, OVERHEAD
from ..format.index import check_index, count_index, read_index
from ..format.manifest import Manifest, ShardEntry, check_finished, read_manifest, shown_path
from ..format.naming import LABELS, MANIFEST, WORK_DIR, is_shard_name, is_temp_name
from ..format.tfds import TFDS_FILES, TFDS_INFO, TFDS_OBJECT_LABELS, TfdsInfo, read_tfds_info
from ..images.probe import sniff_format
from ..storage import INDEX_SUFFIX, Location
from .keys import first_record, tfds_feature_keys
from .task import task_of

__all__ = ["Dataset", "Shard", "resolve"]

_GLOB_CHARS = frozenset("*?[")
# names a folder of bare shards may hold beside them that are never shards
_NOT_SHARDS = frozenset({MANIFEST, LABELS, *TFDS_FILES, TFDS_OBJECT_LABELS})
# extensions whose files are never sniffed for TFRecord framing (saves a read per file)
_NEVER_RECORDS = frozenset(
    [
        ".jpg",
        ".jpeg",
        ".png",
        ".gif",
        ".bmp",
        ".webp",
        ".tif",
        ".tiff",
        ".json",
        ".txt",
        ".csv",
        ".md",
        ".html",
        ".py",
        ".yaml",
        ".yml",
        ".xml",
        ".pbtxt",
        ".pb",
        ".zip",
        ".tar",
        ".npy",
        ".npz",
    ]
)


@dataclass(frozen=True)
class Shard:
    """One shard file and what is known of it.

    ``path`` is a ``Path`` for a local file and the URL (a ``str``) for an object;
    ``expected`` is the manifest's entry (records, bytes, sha256), ``tfds_records`` the
    record count a TFDS ``dataset_info.json`` gives; ``size`` / ``index_size`` come from the
    folder's listing (None: not there), so no tool asks for them again."""

    path: Path | str
    compression: str
    split: str | None = None
    expected: ShardEntry | None = None
    tfds_records: int | None = None
    size: int | None = None
    index_size: int | None = None

    @property
    def location(self) -> Location:
        return Location(self.path)

    @property
    def file(self) -> str:
        """The shard as a reader opens it (a local path or the URL)."""
        return str(self.location)

    @property
    def is_url(self) -> bool:
        return isinstance(self.path, str)

    @property
    def name(self) -> str:
        return self.location.name

    @property
    def shown(self) -> str:
        """The shard as messages show it (a URL without credentials)."""
        return self.location.shown

    @property
    def index_file(self) -> Location:
        """The shard's ``.idx`` file (which may not exist)."""
        return self.location.idx

    @property
    def records(self) -> int | None:
        """How many records the metadata promises this shard holds (None: nobody says)."""
        if self.expected is not None:
            return self.expected.num_examples
        return self.tfds_records

    @property
    def promised_by(self) -> str:
        """Which metadata promises :attr:`records`, as messages name it."""
        return MANIFEST if self.expected is not None else TFDS_INFO

    def exists(self) -> bool:
        return self.size is not None

    def file_size(self) -> int:
        """The shard's size in bytes; FileNotFoundError naming it when it is not there."""
        if self.size is None:
            raise FileNotFoundError(2, "no such file or object", self.shown)
        return self.size

    def has_index(self) -> bool:
        return self.index_size is not None

    def read_index(self) -> list[tuple[int, int]]:
        """(offset, length) per line of the shard's ``.idx`` (FormatError naming it)."""
        return read_index(self.index_file)

    def count_index(self) -> int:
        """Records listed in the shard's ``.idx`` (one read)."""
        return count_index(self.index_file)

    def checked_index(self, entries: list[tuple[int, int]] | None = None) -> list[tuple[int, int]]:
        """The ``.idx`` entries once they are known to locate this shard's records exactly
        (``format.index.check_index``): what every reader that seeks by offset uses."""
        if entries is None:
            entries = self.read_index()
        return check_index(
            entries,
            self.index_file.shown,
            shard=self.shown,
            size=self.size if self.compression == "none" else None,
            expected=self.records,
            promised_by=self.promised_by,
        )


@dataclass(frozen=True)
class Dataset:
    """What a PATH named: ``kind`` is ``"ours"`` (a manifest), ``"tfds"`` (a folder TFDS
    prepared) or ``"files"`` (bare TFRecord files); ``root`` is the folder (None for files
    and globs); ``shards`` every shard (all splits, or one after :meth:`split`)."""

    shards: list[Shard]
    kind: str = "files"
    root: Path | str | None = None
    manifest: Manifest | None = None
    extra: list[Path | str] = field(default_factory=list)  # shard files the metadata omits
    tfds: TfdsInfo | None = None
    # a TFDS folder's (Image feature, ClassLabel feature or None) from its features.json
    tfds_keys: tuple[str, str | None] | None = None

    def __getstate__(self) -> dict[str, Any]:
        # the first record (image bytes and all) is read again where it is needed
        return {k: v for k, v in self.__dict__.items() if k != "first_record"}

    @cached_property
    def first_record(self) -> tuple[str, dict[str, tuple[str, list[Any]]]] | None:
        """``(where, features)`` of the first record of the first non-empty shard (read
        once per Dataset, by whoever asks first: the key finder, the task check), or None
        when there is no record."""
        return first_record(self.files, self.compression)

    @cached_property
    def task(self) -> str:
        """``"classification"``, ``"detection"`` or ``"segmentation"``: the manifest's
        ``task`` (absent: classification), else from the first record's keys
        (``task.task_of``: records others wrote with the detection API's keys too)."""
        return task_of(self)

    @property
    def manifest_file(self) -> str | None:
        """The manifest as messages show it."""
        return None if self.manifest is None else shown_path(self.manifest.path)

    @property
    def ours(self) -> bool:
        return self.kind == "ours"

    @property
    def shown(self) -> str:
        return Location(self.root).shown if self.root is not None else self.shards[0].shown

    def split(self, name: str) -> Dataset:
        """The shards of split ``name`` (bare files have no splits: all of them)."""
        if self.kind == "files":
            return self
        splits = self.manifest.splits if self.manifest is not None else self.tfds.splits  # type: ignore[union-attr]
        if name not in splits:
            where = self.manifest_file or shown_path(self.tfds.path)  # type: ignore[union-attr]
            raise TFRecordToolsError(
                f"{where}: no split {name!r}; it has {', '.join(splits) or 'none'}"
            )
        return replace(self, shards=[s for s in self.shards if s.split == name])

    def for_reading(self, split: str) -> Dataset:
        """The shards of ``split`` a reader reads, every one of them there: a shard the
        metadata lists but the folder lacks is an error naming it (before any reader opens
        it: TensorFlow would retry a missing file forever under ``ignore_errors``)."""
        part = self.split(split)
        for shard in part.shards:
            if shard.size is None:
                listed = f"listed in {shard.promised_by}, " if shard.records is not None else ""
                raise TFRecordToolsError(
                    f"{shard.shown}: {listed}not there (run `tfrecord-tools verify "
                    f"{self.shown}` to see what else is missing)"
                )
        if not part.shards:
            raise TFRecordToolsError(f"{self.shown}: split {split!r} has no shards")
        return part

    # -- what a reader needs --------------------------------------------------------------

    @property
    def files(self) -> list[str]:
        return [s.file for s in self.shards]

    @property
    def counts(self) -> list[int] | None:
        """Records per shard when metadata promises every one (else None)."""
        counts = [s.records for s in self.shards]
        return None if any(c is None for c in counts) else counts  # type: ignore[return-value]

    @property
    def compression(self) -> str:
        """The one compression of every shard (a reader reads them with one setting)."""
        found = {s.compression for s in self.shards}
        if len(found) > 1:
            first = {s.compression: s.shown for s in self.shards}
            raise TFRecordToolsError(
                "shards with different compressions cannot be read together: "
                + ", ".join(f"{shown} is {c}" for c, shown in sorted(first.items()))
            )
        return found.pop() if found else "none"

    @property
    def sizes(self) -> dict[str, int]:
        return {s.file: s.size for s in self.shards if s.size is not None}

    @property
    def image_shape(self) -> tuple[int, int, int] | None:
        return None if self.manifest is None else self.manifest.image_shape

    @property
    def image_format(self) -> str | None:
        return None if self.manifest is None else self.manifest.image_format

    @property
    def orientations(self) -> dict[str, int] | None:
        """Records per EXIF orientation as the manifest counts them ({}: none has the key);
        None: no manifest (a reader then looks at the records)."""
        return None if self.manifest is None else self.manifest.orientations


def resolve(
    paths: str | os.PathLike | Sequence[str | os.PathLike], *, compression: str | None = None
) -> Dataset:
    """What ``paths`` names (see the module docstring). ``compression``: what the caller
    was told; a manifest that says otherwise is an error."""
    given = None if compression is None else normalize_compression(compression)
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    if not paths:
        raise TFRecordToolsError("no PATH given: name a dataset folder or shard files")
    if not all(isinstance(p, (str, os.PathLike)) for p in paths):
        raise TFRecordToolsError(
            f"PATH must be a path, a URL or a list of them, got {type(paths[0]).__name__}"
        )
    resolver = _Resolver(given)
    locations = [Location(p) for p in paths]
    if len(locations) == 1 and not _is_glob(locations[0]):
        files, folders = resolver.listing(locations[0])
        if files or folders:
            return resolver.folder(locations[0], files, folders)
    shards: list[Shard] = []
    for loc in locations:
        if _is_glob(loc):
            matches = [Location(m) for m in _glob(loc)]
            if not matches:
                raise TFRecordToolsError(f"{loc.shown}: no files match this pattern")
            shards += [resolver.file(m) for m in matches]
            continue
        files, folders = resolver.listing(loc)
        if files or folders:
            raise TFRecordToolsError(
                f"{loc.shown}: a folder among several paths; give one dataset folder, or shard "
                "files"
            )
        shard = resolver.file(loc)
        if shard.size is None:
            raise TFRecordToolsError(f"{loc.shown}: not a dataset: no such file or folder")
        _not_an_image(loc)
        shards.append(shard)
    return Dataset(shards=list({s.file: s for s in shards}.values()))


def _is_glob(loc: Location) -> bool:
    return bool(_GLOB_CHARS & set(loc.split("://", 1)[-1]))


def _glob(pattern: Location) -> list[str]:
    from .. import storage

    return [m for m in storage.glob(pattern) if not m.endswith(INDEX_SUFFIX)]


class _Resolver:
    """One resolution: each folder listed once, each manifest read once."""

    def __init__(self, given: str | None):
        self.given = given
        self._listings: dict[str, tuple[dict[str, int], set[str]]] = {}
        self._entries: dict[str, dict[str, Shard]] = {}

    def listing(self, folder: Location) -> tuple[dict[str, int], set[str]]:
        key = folder.rstrip("/") or "/"
        if key not in self._listings:
            self._listings[key] = folder.listing()
        return self._listings[key]

    def _path(self, loc: Location) -> Path | str:
        return str(loc) if loc.is_url else Path(loc)

    def _compression(self, said: str, where: str) -> str:
        if self.given is not None and self.given != said:
            raise TFRecordToolsError(
                f"{where}: compression {self.given!r} given, but {said!r} is what it holds"
            )
        return said

    def shard(
        self,
        loc: Location,
        compression: str | None,
        split: str | None = None,
        expected: ShardEntry | None = None,
        tfds_records: int | None = None,
    ) -> Shard:
        """A shard at ``loc``, its sizes from its folder's listing; compression sniffed from
        its first bytes when nobody says."""
        files, _ = self.listing(loc.parent)
        size, index_size = files.get(loc.name), files.get(loc.name + INDEX_SUFFIX)
        if compression is None:
            compression = self.given or (_sniff_named(loc) if size else "none")
        return Shard(self._path(loc), compression, split, expected, tfds_records, size, index_size)

    def folder(self, root: Location, files: dict[str, int], folders: set[str]) -> Dataset:
        check_finished(root, (files, folders))
        named = sorted(n for n in files if is_shard_name(n))
        if MANIFEST in files:
            manifest = read_manifest(root)
            said = self._compression(manifest.compression, shown_path(manifest.path))
            shards = [
                self.shard(root.join(entry.file), said, split, entry)
                for split, entry in manifest.shards
            ]
            listed = {s.name for s in shards}
            extra = [self._path(root.join(n)) for n in named if n not in listed]
            return Dataset(shards, "ours", self._path(root), manifest=manifest, extra=extra)
        if TFDS_INFO in files and LABELS not in files:
            info = read_tfds_info(root)
            self._compression("none", shown_path(info.path))
            shards = [
                self.shard(root.join(file), "none", split, tfds_records=n)
                for split, file, n in info.shards
            ]
            _check_tfds_lengths(info, shards)
            listed = {s.file for s in shards}
            extra = [self._path(root.join(n)) for n in named if str(root.join(n)) not in listed]
            keys = tfds_feature_keys(root)
            return Dataset(shards, "tfds", self._path(root), extra=extra, tfds=info, tfds_keys=keys)
        candidates = [n for n in files if _may_be_records(n) and not is_shard_name(n)]
        found = dict(zip(candidates, _sniff_many([root.join(n) for n in candidates]), strict=True))
        names = sorted([*named, *(n for n, c in found.items() if c is not None)])
        if not names:
            raise TFRecordToolsError(
                f"{root.shown}: not a dataset: no {MANIFEST}, no {TFDS_INFO} and no TFRecord "
                "files here (a conversion writes its manifest last; check the path)"
            )
        shards = [self.shard(root.join(n), self.given or found.get(n)) for n in names]
        return Dataset(shards, "files", self._path(root))

    def file(self, loc: Location) -> Shard:
        """A shard named on its own: its folder's manifest (or TFDS) entry when it has one."""
        folder = loc.parent
        if folder not in self._entries:
            files, folders = self.listing(folder)
            check_finished(folder, (files, folders))
            self._entries[folder] = self._entries_of(folder, files)
        listed = self._entries[folder].get(loc.name)
        if listed is not None:
            return self.shard(
                loc, listed.compression, listed.split, listed.expected, listed.tfds_records
            )
        return self.shard(loc, None)

    def _entries_of(self, folder: Location, files: dict[str, int]) -> dict[str, Shard]:
        """{file name: what its folder's metadata says}; empty when there is none or it is
        broken (a shard named on its own is then judged by itself)."""
        try:
            if MANIFEST in files:
                manifest = read_manifest(folder)
                return {
                    e.file: Shard(e.file, manifest.compression, split, e)
                    for split, e in manifest.shards
                }
            if TFDS_INFO in files and LABELS not in files:
                info = read_tfds_info(folder)
                return {
                    file: Shard(file, "none", split, tfds_records=n)
                    for split, file, n in info.shards
                    if "/" not in file
                }
        except TFRecordToolsError:
            pass
        return {}


def _not_an_image(loc: Location) -> None:
    """A file named on its own that is an image is an error, not an empty TFRecord: a
    damaged TFRecord stays a TFRecord for the tools to report, but ``inspect photo.jpg``
    must not pass for a shard."""
    try:
        kind = sniff_format(loc.read(0, 32))
    except (OSError, TFRecordToolsError):
        return
    if kind is not None:
        raise TFRecordToolsError(
            f"{loc.shown}: a {kind.upper()} image, not a TFRecord file (name shard files, a "
            "folder of them or a dataset folder)"
        )


def _check_tfds_lengths(info: TfdsInfo, shards: list[Shard]) -> None:
    """Shard lengths that no file of that size can hold (each record is at least 16 bytes)
    are an error naming ``dataset_info.json``, before any tool counts or reads by them."""
    for shard in shards:
        records = shard.tfds_records or 0
        if shard.size is not None and records * OVERHEAD > shard.size:
            raise FormatError(
                f"{shown_path(info.path)}: says {shard.name} holds {records} records, but the "
                f"file has {shard.size} bytes (at most {shard.size // OVERHEAD} records): the "
                "metadata does not describe these files"
            )


def _may_be_records(name: str) -> bool:
    """A file of a bare folder worth sniffing: visible, not ours, not an index, not a kind
    of file that is never a TFRecord."""
    if name.startswith(".") or is_temp_name(name) or name in _NOT_SHARDS or name == WORK_DIR:
        return False
    if name.endswith(INDEX_SUFFIX):
        return False
    return os.path.splitext(name)[1].lower() not in _NEVER_RECORDS


def _sniff(loc: Location) -> str | None:
    """A file's compression from its first bytes when they are TFRecord framing; None for
    anything else, or when it cannot be read (the tool reports that)."""
    try:
        return sniff_tfrecord(loc.read(0, SNIFF_BYTES))
    except (OSError, TFRecordToolsError):
        return None


def _sniff_named(loc: Location) -> str:
    """The compression of a file named like a shard, from its first 12 bytes (a damaged or
    empty one counts as plain: the tool then says what is wrong)."""
    try:
        return sniff_compression(loc.read(0, HEADER_SIZE))
    except (OSError, TFRecordToolsError):
        return "none"


def _sniff_many(locations: list[Location]) -> list[str | None]:
    if len(locations) < 2 or not locations[0].is_url:
        return [_sniff(loc) for loc in locations]
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        return list(pool.map(_sniff, locations))
