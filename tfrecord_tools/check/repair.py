"""Repairing damaged shards: copy every record whose CRCs check out, drop the rest.

Data flow: locate -> scan (with resync) -> **repair** -> ShardWriter (atomic shard + .idx)
-> fresh manifest. Unlike ``tf.data``'s ``ignore_errors``, which loses the rest of a file at
the first bad record, the scanner finds the next record by its framing, so the records
*after* the damage are kept too. Compressed shards are repaired in their decompressed
stream (a truncated gzip file keeps everything before the cut) and written back with the
same compression.

Either side may be a URL (bucket -> local, local -> bucket, bucket -> bucket): a source
object is streamed (large ranged reads); a shard for a bucket is written to a local
temporary folder by the same ShardWriter, then its ``.idx`` and the shard are each put in
one upload (an object appears whole or not at all), ``labels.txt`` next and the manifest
last, so a folder in a bucket is a dataset only once everything is there.
"""

from __future__ import annotations

import contextlib
import copy
import os
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .. import storage
from ..dataset import Dataset, Shard, resolve
from ..errors import Damage, TFRecordToolsError
from ..format.manifest import Manifest, ShardEntry, write_labels, write_manifest
from ..format.naming import INDEX_SUFFIX, LABELS, MANIFEST
from ..format.scan import RecordScanner
from ..format.writer import ShardWriter

__all__ = ["RepairReport", "ShardRepair", "repair"]


@dataclass(frozen=True)
class ShardRepair:
    """One shard: source, copy, records kept and what was dropped (``info`` is None for a
    shard that was missing and so not written)."""

    src: str
    dst: str
    kept: int
    dropped: tuple[Damage, ...]
    info: ShardEntry | None

    @property
    def records_dropped(self) -> int:
        return sum(1 for d in self.dropped if d.end > d.offset)


@dataclass(frozen=True)
class RepairReport:
    shards: list[ShardRepair]
    manifest: Path | str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def kept(self) -> int:
        return sum(s.kept for s in self.shards)

    @property
    def records_dropped(self) -> int:
        return sum(s.records_dropped for s in self.shards)

    @property
    def clean(self) -> bool:
        """Nothing was dropped and nothing was missing."""
        return not self.notes and all(not s.dropped and s.info for s in self.shards)

    def format_text(self) -> str:
        lines = []
        for s in self.shards:
            if s.info is None:
                continue
            lines.append(f"{s.dst}: kept {s.kept:,} records, dropped {s.records_dropped}")
            lines += [
                f"  dropped record {d.index}: bytes {d.offset}-{d.end} ({d.kind}"
                f"{': ' + d.detail if d.detail else ''})"
                for d in s.dropped
            ]
        lines += [f"note: {n}" for n in self.notes]
        lines.append(
            f"repaired {len(self.shards)} shard(s): kept {self.kept:,} records, "
            f"dropped {self.records_dropped}"
        )
        return "\n".join(lines)


def repair(
    src: str | os.PathLike, dst: str | os.PathLike, *, overwrite: bool = False
) -> RepairReport:
    """Copy the good records of ``src`` to ``dst``.

    ``src`` a shard file: ``dst`` is a file (or an existing folder to put it in).
    ``src`` a dataset folder: ``dst`` is a folder that gets repaired shards, ``.idx`` files,
    ``labels.txt`` and a fresh ``dataset.json`` (counts, sizes and sha256 recomputed, other
    keys kept, and a ``"repaired"`` entry saying what was dropped).
    Either may be a URL (a bucket folder, or one object).
    """
    if storage.is_url(src) or storage.is_url(dst):
        return _repair_remote(os.fspath(src), os.fspath(dst), overwrite)
    src, dst = Path(src), Path(dst)
    if not src.exists():
        raise TFRecordToolsError(f"{src}: no such file or folder")
    if src.is_dir():
        return _repair_folder(src, dst, overwrite)
    if dst.is_dir():
        dst = dst / src.name
    _check_target(src, dst, overwrite)
    ref = resolve([src]).shards[0]
    return RepairReport([_repair_shard(ref, dst)])


def _check_target(src: Path, dst: Path, overwrite: bool) -> None:
    if dst.exists() and os.path.samefile(src, dst):
        raise TFRecordToolsError(f"{dst}: the repaired copy must not replace its source")
    if dst.exists() and not overwrite:
        raise TFRecordToolsError(f"{dst} exists; pass --overwrite to replace it")
    if not dst.parent.is_dir():
        raise TFRecordToolsError(f"{dst.parent}: no such folder")


def _repair_folder(src: Path, dst: Path, overwrite: bool) -> RepairReport:
    located = resolve([src])
    if dst.exists() and os.path.samefile(src, dst):
        raise TFRecordToolsError(f"{dst}: repair into a new folder, not into SRC itself")
    if (dst / MANIFEST).exists() and not overwrite:
        raise TFRecordToolsError(f"{dst} already holds a dataset; pass --overwrite to replace it")
    if dst.exists() and not dst.is_dir():
        raise TFRecordToolsError(f"{dst}: not a folder")
    dst.mkdir(parents=True, exist_ok=True)
    (dst / MANIFEST).unlink(missing_ok=True)  # until the new one is written: unfinished
    shards, notes = [], []
    for ref in located.shards:
        if ref.path.exists():
            shards.append(_repair_shard(ref, dst / ref.name))
        else:
            shards.append(ShardRepair(str(ref.path), str(dst / ref.name), 0, (), None))
            notes.append(f"{ref.path}: listed in the manifest but missing: not in the copy")
    notes += [f"{p}: not listed in the manifest: not copied" for p in located.extra]
    if located.manifest is None:
        notes.append(f"{src} has no {MANIFEST}: shards and .idx files written, no manifest")
        return RepairReport(shards, None, notes)
    manifest = _repaired_manifest(located.manifest, located, shards, src)
    if located.manifest.classes is not None:
        write_labels(dst, located.manifest.classes)
    elif (src / LABELS).exists():
        (dst / LABELS).write_bytes((src / LABELS).read_bytes())
    return RepairReport(shards, write_manifest(dst, manifest), notes)


def _repaired_manifest(
    source: Manifest, located: Dataset, shards: list[ShardRepair], src: Path | str
) -> dict[str, Any]:
    """The source manifest with each split's shards and counts recomputed."""
    manifest = copy.deepcopy(source.data)
    by_split: dict[str, list[ShardEntry]] = {split: [] for split in source.splits}
    for ref, shard in zip(located.shards, shards, strict=True):
        if shard.info is not None:
            by_split[ref.split or ""].append(shard.info)
    for split, entries in by_split.items():
        manifest["splits"][split]["shards"] = [e.to_json() for e in entries]
        manifest["splits"][split]["num_examples"] = sum(e.num_examples for e in entries)
    dropped = [{"file": storage.basename(s.src), **asdict(d)} for s in shards for d in s.dropped]
    manifest["repaired"] = {
        "source": storage.redact(src) if isinstance(src, str) else str(src.resolve()),
        "records_dropped": sum(s.records_dropped for s in shards),
        "dropped": dropped,
        "missing_shards": [storage.basename(s.src) for s in shards if s.info is None],
        "not_copied": [storage.basename(p) for p in located.extra],
    }
    return manifest


# --- URLs on either side ---------------------------------------------------------------------


def _repair_remote(src: str, dst: str, overwrite: bool) -> RepairReport:
    """:func:`repair` when ``src`` or ``dst`` is a URL."""
    files, folders = storage.list_folder(src)
    if files or folders:
        return _repair_folder_remote(src.rstrip("/"), dst.rstrip("/"), overwrite)
    if not storage.is_file(src):
        raise TFRecordToolsError(f"{storage.redact(src)}: no such file or folder")
    if dst.endswith("/") or storage.is_dir(dst):
        dst = storage.join(dst, storage.basename(src))
    if _same(src, dst):
        raise TFRecordToolsError(
            f"{storage.redact(dst)}: the repaired copy must not replace its source"
        )
    if storage.exists(dst) and not overwrite:
        raise TFRecordToolsError(f"{storage.redact(dst)} exists; pass --overwrite to replace it")
    if not storage.is_url(dst) and not os.path.isdir(os.path.dirname(os.path.abspath(dst))):
        raise TFRecordToolsError(f"{os.path.dirname(dst)}: no such folder")
    ref = resolve([src]).shards[0]
    return RepairReport([_repair_shard(ref, _target(dst))])


def _target(path: str) -> Path | str:
    return path if storage.is_url(path) else Path(path)


def _same(a: str, b: str) -> bool:
    """Do two locations name the same file (URLs: the same text, up to a trailing ``/``)?"""
    if storage.is_url(a) or storage.is_url(b):
        return storage.redact(a).rstrip("/") == storage.redact(b).rstrip("/")
    return os.path.exists(b) and os.path.exists(a) and os.path.samefile(a, b)


@contextlib.contextmanager
def _local_shard(dst: Path | str) -> Iterator[Path]:
    """Where ShardWriter writes the copy of ``dst``: ``dst`` itself locally; for a URL a
    temporary local file whose ``.idx`` and shard are uploaded (each whole) when the block
    ends without an error."""
    if not isinstance(dst, str):
        yield dst
        return
    with tempfile.TemporaryDirectory(prefix="tfrecord-tools-repair-") as folder:
        local = Path(folder) / storage.basename(dst)
        yield local
        storage.put_file(Path(f"{local}{INDEX_SUFFIX}"), dst + INDEX_SUFFIX)
        storage.put_file(local, dst)


def _repair_shard(ref: Shard, dst: Path | str) -> ShardRepair:
    """Copy every intact record of ``ref`` to ``dst`` (either may be a URL)."""
    dropped: list[Damage] = []
    kept = 0
    shown = storage.redact(dst)
    try:
        with (
            _local_shard(dst) as local,
            ShardWriter(local, ref.compression) as writer,
            RecordScanner(ref.path, ref.compression, size=ref.size) as scanner,
        ):
            for item in scanner:
                if isinstance(item, Damage):
                    dropped.append(item)
                else:
                    writer.write(bytes(scanner.payload(item)))
                    kept += 1
            info = writer.commit()
    except OSError as e:
        raise TFRecordToolsError(f"{ref.shown} -> {shown}: {e.strerror or e}") from e
    return ShardRepair(ref.shown, shown, kept, tuple(dropped), info)


def _repair_folder_remote(src: str, dst: str, overwrite: bool) -> RepairReport:
    located = resolve([src])
    if _same(src, dst):
        raise TFRecordToolsError(
            f"{storage.redact(dst)}: repair into a new folder, not into SRC itself"
        )
    if storage.exists(storage.join(dst, MANIFEST)) and not overwrite:
        raise TFRecordToolsError(
            f"{storage.redact(dst)} already holds a dataset; pass --overwrite to replace it"
        )
    if storage.is_file(dst):
        raise TFRecordToolsError(f"{storage.redact(dst)}: not a folder")
    storage.make_dirs(dst)
    storage.delete(storage.join(dst, MANIFEST))  # until the new one is written: unfinished
    shards, notes = [], []
    for ref in located.shards:
        target = storage.join(dst, ref.name)
        if ref.exists():
            shards.append(_repair_shard(ref, _target(target)))
        else:
            shards.append(ShardRepair(ref.shown, storage.redact(target), 0, (), None))
            notes.append(f"{ref.shown}: listed in the manifest but missing: not in the copy")
    notes += [f"{storage.redact(p)}: not listed in the manifest: not copied" for p in located.extra]
    if located.manifest is None:
        notes.append(
            f"{storage.redact(src)} has no {MANIFEST}: shards and .idx files written, no manifest"
        )
        return RepairReport(shards, None, notes)
    manifest = _repaired_manifest(located.manifest, located, shards, _target(src))
    if located.manifest.classes is not None:
        write_labels(dst, located.manifest.classes)
    else:
        with contextlib.suppress(FileNotFoundError):
            storage.write_atomic(
                storage.join(dst, LABELS), storage.read_bytes(storage.join(src, LABELS))
            )
    target = write_manifest(dst, manifest)  # last
    return RepairReport(
        shards, storage.redact(target) if storage.is_url(target) else Path(target), notes
    )
