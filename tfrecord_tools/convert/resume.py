"""Resuming a conversion: the output folder's work directory says what is already done.

Data flow: plan -> **fingerprint** -> ``OUT/.tfrecord-tools-work/plan.json`` (the digest and
the plan's file names); every finished shard leaves ``SHARD.json`` (its
:class:`ShardResult`) there. A rerun with the same fingerprint keeps the finished shards and
writes only the rest; the work directory goes once the manifest is written, and the
manifest keeps the digest, so a rerun of a finished conversion is known as one.

OUT may be a local folder or a URL: every look at it goes through the storage seam
(``storage``: one listing of OUT, reads, whole writes, deletes), so an interrupted
conversion into a bucket resumes from what the bucket holds.

One conversion at a time writes to a folder: :func:`locked` holds an exclusive lock on
``OUT/.tfrecord-tools.lock`` (``flock``: the kernel drops it when the process dies, so a
killed run leaves no stale lock).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .. import storage
from ..errors import ConversionError, FormatError
from ..format.manifest import Manifest, read_manifest
from ..format.naming import INDEX_SUFFIX, LABELS, MANIFEST, WORK_DIR, ShardName
from ..format.tfds import TFDS_FILES, TFDS_OBJECT_LABELS
from ..storage.atomic import is_temp_name, remove_temp_files
from .jobs import ShardResult
from .outdir import shown

try:
    import fcntl
except ImportError:  # Windows: no advisory locks here
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "check_out_dir",
    "fingerprint",
    "finish_out_dir",
    "finished_conversion",
    "locked",
    "prepare_out_dir",
]

#: The lock file a running conversion holds (and removes when done); it holds its pid.
LOCK_FILE = ".tfrecord-tools.lock"
_PLAN = "plan.json"
_READERS = 16  # state files of a bucket read at once
#: Files every conversion writes besides its shards (and the manifest): a user's file of
#: one of these names is replaced only with ``overwrite``.
_COMPANIONS = frozenset({LABELS, *TFDS_FILES, TFDS_OBJECT_LABELS})

Out = Path | str  # a local folder, or a URL


def fingerprint(parts: Any) -> str:
    """A stable digest of whatever identifies a conversion (source listing + options)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


@contextlib.contextmanager
def locked(out_dir: Out) -> Iterator[None]:
    """Hold ``out_dir``'s conversion lock for the block (creating the folder); another
    process holding it is an error at once, naming its pid.

    A bucket cannot hold a ``flock``: for a URL the lock is a local file named after the
    URL (in the temporary folder), so it keeps out only conversions into the same URL
    on this machine. Two machines converting into one bucket at once are not detected:
    do not do that (each would replace the other's shards; the last manifest wins).
    """
    if storage.is_url(out_dir):
        key = hashlib.sha256(storage.redact(out_dir).rstrip("/").encode()).hexdigest()[:24]
        path = Path(tempfile.gettempdir()) / f"tfrecord-tools-{key}.lock"
    else:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / LOCK_FILE
    if fcntl is None:
        yield
        return
    fd = _lock(path, out_dir)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            path.unlink()  # while still held: a waiting process then locks a fresh file
        os.close(fd)


def _lock(path: Path, out_dir: Out) -> int:
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            os.close(fd)
            who = f"process {holder}" if holder.isdigit() else "another process"
            raise ConversionError(
                f"{shown(out_dir)}: another conversion into this folder is running ({who}); "
                "wait for it to finish, or stop it and rerun"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        try:  # the file we locked may have been removed by its last holder meanwhile
            same = os.path.samestat(os.stat(path), os.fstat(fd))
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            return fd
        os.close(fd)


def check_out_dir(out_dir: Out, *, allow_nonempty: bool) -> None:
    """Refuse an OUT that holds other things and no conversion of ours: the root folder,
    the home folder, or a folder (a bucket's prefix) with files or folders in it but neither
    a manifest of ours nor our work folder, unless ``allow_nonempty`` (then each file of
    ours it would replace still needs ``overwrite``: :func:`prepare_out_dir`). An empty or
    missing folder, or one holding our dataset or unfinished conversion, is fine."""
    if allow_nonempty:
        return
    hint = (
        "pass --allow-nonempty-out (allow_nonempty_out=True) to write into it anyway, or "
        "choose a new or empty folder for OUT"
    )
    if not storage.is_url(out_dir):
        place = Path(storage.local(out_dir)).resolve()
        if place == Path(place.anchor):
            raise ConversionError(f"{out_dir}: OUT is the root folder; {hint}")
        with contextlib.suppress(RuntimeError, KeyError):  # no home folder known
            if place == Path.home().resolve():
                raise ConversionError(f"{out_dir}: OUT is your home folder; {hint}")
        names: set[str] = set()
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            names = set(os.listdir(place))
    else:
        files, folders = storage.list_folder(out_dir)
        names = set(files) | folders
    names -= {LOCK_FILE, ".DS_Store"}  # ours (a killed run's), and macOS Finder's
    if not names or WORK_DIR in names:
        return
    if MANIFEST in names and _read_manifest(out_dir) is not None:
        return
    shown_names = sorted(names)
    listed = ", ".join(shown_names[:5]) + (" ..." if len(shown_names) > 5 else "")
    raise ConversionError(
        f"{shown(out_dir)} is not empty ({listed}) and holds no dataset of ours; {hint}"
    )


def finished_conversion(out_dir: Out, plan_digest: str) -> Manifest | None:
    """The manifest of the finished conversion in ``out_dir`` if this same plan made it
    (and every shard it lists is still there, at its size); None otherwise."""
    manifest = _read_manifest(out_dir)
    if manifest is None:  # none, or not one of ours: the caller decides
        return None
    if (manifest.data.get("conversion") or {}).get("digest") != plan_digest:
        return None
    present = storage.list_files(out_dir)  # one listing, not a look-up per shard
    for _split, shard in manifest.shards:
        for file, size in ((shard.file, shard.num_bytes), (shard.file + INDEX_SUFFIX, None)):
            intact = file in present and (size is None or present[file] == size)
            if not intact:
                raise ConversionError(
                    f"{shown(out_dir)} holds this conversion, finished, but {file} is missing "
                    "or changed since; pass --overwrite to convert again (`tfrecord-tools "
                    "verify` shows what is wrong)"
                )
    return manifest


def _read_manifest(out_dir: Out) -> Manifest | None:
    """``dataset.json`` of ``out_dir``, checked; None when there is none or it is not one
    of ours. A bucket that cannot be read is an error (StorageError), never "none"."""
    try:
        return read_manifest(storage.join(out_dir, MANIFEST))
    except FormatError:
        return None


def prepare_out_dir(
    out_dir: Out, name: str, plan_digest: str, files: Sequence[str], *, overwrite: bool
) -> dict[str, ShardResult]:
    """Make ``out_dir`` ready for the plan writing ``files``; return the shards a previous
    run of the same plan finished. Call it holding :func:`locked`.

    A finished dataset is only replaced with ``overwrite``: its manifest goes first (from
    then on nothing takes the old files for a finished dataset), then every file of ours
    the new plan will not write again (shards and indexes the old manifest or plan listed,
    with ``overwrite`` any file named like our shards, ``labels.txt``). Files are ours when
    OUT holds our manifest or work folder; otherwise a file with a name we write (a shard
    of the plan, ``labels.txt``, TFDS's metadata, a temporary ``.NAME.tmp-N``) is the
    user's: an error without ``overwrite``, never replaced or deleted.
    """
    url = storage.is_url(out_dir)
    if not url:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
    present, folders = storage.list_folder(out_dir)
    work = storage.join(out_dir, WORK_DIR)
    plan_file = storage.join(work, _PLAN)
    stale: set[str] = set()
    finished = MANIFEST in present if url else os.path.exists(storage.join(out_dir, MANIFEST))
    if not (finished or WORK_DIR in folders or overwrite):  # nothing of ours is there
        _refuse_lookalikes(out_dir, present, files)
    if finished:
        if not overwrite:
            raise ConversionError(
                f"{shown(out_dir)} already holds a finished conversion ({MANIFEST}) made from "
                "another source or with other options; pass --overwrite to replace it"
            )
        stale |= _manifest_files(storage.join(out_dir, MANIFEST))
        storage.delete(storage.join(out_dir, MANIFEST))
        storage.delete_tree(work)
    if not url:  # a bucket holds no temporary objects: uploads appear whole or not at all
        remove_temp_files(out_dir)
    previous = _read_json(plan_file)
    if previous is not None and previous.get("digest") == plan_digest:
        return _finished_shards(work, present)
    if previous is not None:  # an unfinished conversion of another plan: its files go
        listed = previous.get("files")
        if isinstance(listed, list):
            stale |= {f for f in listed if isinstance(f, str)}
        else:  # a work folder from before plans listed their files: this name's shards
            stale |= {
                f for f in _shard_named(present) if (p := ShardName.parse(f)) and p.name == name
            }
    if overwrite:  # and what the plan writes (an index without its shard included)
        stale |= set(_shard_named(present)) | {LABELS} | set(files)
    stale |= {f + INDEX_SUFFIX for f in stale if ShardName.parse(f) is not None}
    storage.delete_tree(work)
    for file in sorted(stale):
        if "/" in file or file in ("", ".", "..") or (url and file not in present):
            continue  # for a bucket, no request for an object that is not there
        storage.delete(storage.join(out_dir, file))
    if url:
        present = storage.list_files(out_dir)
        there = present.__contains__
    else:
        there = lambda name: os.path.lexists(storage.join(out_dir, name))  # noqa: E731
    in_the_way = [name for shard in files for name in (shard, shard + INDEX_SUFFIX) if there(name)]
    if in_the_way:
        listed = ", ".join(in_the_way[:3]) + (" ..." if len(in_the_way) > 3 else "")
        raise ConversionError(
            f"{shown(out_dir)} holds files this conversion would write ({listed}) that no "
            "conversion here made; pass --overwrite to replace them, or choose another OUT"
        )
    storage.write_atomic(plan_file, json.dumps({"digest": plan_digest, "files": list(files)}))
    return {}


def _refuse_lookalikes(out_dir: Out, present: dict[str, int], files: Sequence[str]) -> None:
    """In an OUT that holds nothing of ours, files with the names a conversion writes are
    the user's: an error naming them, before anything is written or deleted."""
    ours = {name for shard in files for name in (shard, shard + INDEX_SUFFIX)} | _COMPANIONS
    found = sorted(n for n in present if n in ours or is_temp_name(n))
    if found:
        listed = ", ".join(found[:3]) + (" ..." if len(found) > 3 else "")
        raise ConversionError(
            f"{shown(out_dir)} holds files with the names this conversion writes ({listed}) "
            "that no conversion here made; pass --overwrite to replace them, or choose "
            "another OUT"
        )


def _finished_shards(work: str, present: dict[str, int]) -> dict[str, ShardResult]:
    """The results in the work folder whose shard is in OUT (``present``: its listing) at
    the size the result says."""
    states = [
        storage.join(work, name)
        for name in storage.list_files(work)
        if name.endswith(".json") and name != _PLAN
    ]
    if storage.is_url(work) and len(states) > 1:  # a request each: several at once
        with ThreadPoolExecutor(min(_READERS, len(states))) as pool:
            texts = list(pool.map(storage.read_text, states))
    else:
        texts = [storage.read_text(state) for state in states]
    done: dict[str, ShardResult] = {}
    for text in texts:
        result = ShardResult.from_json(json.loads(text))
        if present.get(result.info.file) == result.info.num_bytes:
            done[result.info.file] = result
    return done


def _manifest_files(manifest: str) -> set[str]:
    """The shard files a (possibly damaged) manifest lists."""
    data = _read_json(manifest) or {}
    splits = data.get("splits")
    files = set()
    for info in splits.values() if isinstance(splits, dict) else ():
        for shard in (info.get("shards") or []) if isinstance(info, dict) else ():
            if isinstance(shard, dict) and isinstance(shard.get("file"), str):
                files.add(shard["file"])
                files.add(shard["file"] + INDEX_SUFFIX)
    return files


def _shard_named(present: dict[str, int]) -> list[str]:
    """Files named like our shards (TFDS naming), whatever the dataset name."""
    return [name for name in present if ShardName.parse(name) is not None]


def _read_json(path: str) -> dict | None:
    """The JSON object in ``path``; None when it is missing or not JSON (a bucket that
    cannot be read is an error)."""
    try:
        data = json.loads(storage.read_text(path))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def finish_out_dir(out_dir: Out) -> None:
    storage.delete_tree(storage.join(out_dir, WORK_DIR))
