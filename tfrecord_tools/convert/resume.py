"""Resuming a conversion: the output folder's work directory says what is already done.

Data flow: plan -> **fingerprint** -> ``OUT/.tfrecord-tools-work/plan.json`` (the digest and
the plan's file names); every finished shard leaves ``SHARD.json`` (its
:class:`ShardResult`) there. A rerun with the same fingerprint keeps the finished shards and
writes only the rest; the work directory goes once the manifest is written, and the
manifest keeps the digest, so a rerun of a finished conversion is known as one.

One conversion at a time writes to a folder: :func:`locked` holds an exclusive lock on
``OUT/.tfrecord-tools.lock`` (``flock``: the kernel drops it when the process dies, so a
killed run leaves no stale lock).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ..errors import ConversionError
from ..format.atomic import remove_temp_files, write_atomic
from ..format.errors import FormatError
from ..format.manifest import Manifest, read_manifest
from ..format.naming import INDEX_SUFFIX, LABELS, MANIFEST, WORK_DIR, ShardName
from .jobs import ShardResult

try:
    import fcntl
except ImportError:  # Windows: no advisory locks here
    fcntl = None  # type: ignore[assignment]

__all__ = ["fingerprint", "finish_out_dir", "finished_conversion", "locked", "prepare_out_dir"]

#: The lock file a running conversion holds (and removes when done); it holds its pid.
LOCK_FILE = ".tfrecord-tools.lock"
_PLAN = "plan.json"


def fingerprint(parts: Any) -> str:
    """A stable digest of whatever identifies a conversion (source listing + options)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


@contextlib.contextmanager
def locked(out_dir: Path) -> Iterator[None]:
    """Hold ``out_dir``'s conversion lock for the block (creating the folder); another
    process holding it is an error at once, naming its pid."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if fcntl is None:
        yield
        return
    path = out_dir / LOCK_FILE
    fd = _lock(path, out_dir)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            path.unlink()  # while still held: a waiting process then locks a fresh file
        os.close(fd)


def _lock(path: Path, out_dir: Path) -> int:
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            os.close(fd)
            who = f"process {holder}" if holder.isdigit() else "another process"
            raise ConversionError(
                f"{out_dir}: another conversion into this folder is running ({who}); "
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


def finished_conversion(out_dir: Path, plan_digest: str) -> Manifest | None:
    """The manifest of the finished conversion in ``out_dir`` if this same plan made it
    (and every shard it lists is still there, at its size); None otherwise."""
    try:
        manifest = read_manifest(out_dir / MANIFEST)
    except FormatError:  # none, or not one of ours: the caller decides
        return None
    if (manifest.data.get("conversion") or {}).get("digest") != plan_digest:
        return None
    for _split, shard in manifest.shards:
        for file, size in ((shard.file, shard.num_bytes), (shard.file + INDEX_SUFFIX, None)):
            try:
                intact = size is None or (out_dir / file).stat().st_size == size
            except FileNotFoundError:
                intact = False
            if not intact:
                raise ConversionError(
                    f"{out_dir} holds this conversion, finished, but {file} is missing or "
                    "changed since; pass --overwrite to convert again (`tfrecord-tools "
                    "verify` shows what is wrong)"
                )
    return manifest


def prepare_out_dir(
    out_dir: Path, name: str, plan_digest: str, files: Sequence[str], *, overwrite: bool
) -> dict[str, ShardResult]:
    """Make ``out_dir`` ready for the plan writing ``files``; return the shards a previous
    run of the same plan finished. Call it holding :func:`locked`.

    A finished dataset is only replaced with ``overwrite``: its manifest goes first (from
    then on nothing takes the old files for a finished dataset), then every file of ours
    the new plan will not write again (shards and indexes the old manifest or plan listed,
    with ``overwrite`` any file named like our shards, ``labels.txt``). Without
    ``overwrite`` a file only looks like ours: one in the way of the plan is an error,
    never deleted.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = out_dir / MANIFEST
    work = out_dir / WORK_DIR
    plan_file = work / _PLAN
    stale: set[str] = set()
    if manifest.exists():
        if not overwrite:
            raise ConversionError(
                f"{out_dir} already holds a finished conversion ({MANIFEST}) made from "
                "another source or with other options; pass --overwrite to replace it"
            )
        stale |= _manifest_files(manifest)
        manifest.unlink()
        shutil.rmtree(work, ignore_errors=True)
    remove_temp_files(out_dir)
    previous = _read_json(plan_file)
    if previous is not None and previous.get("digest") == plan_digest:
        return _finished_shards(out_dir, work)
    if previous is not None:  # an unfinished conversion of another plan: its files go
        listed = previous.get("files")
        if isinstance(listed, list):
            stale |= {f for f in listed if isinstance(f, str)}
        else:  # a work folder from before plans listed their files: this name's shards
            stale |= {
                f for f in _shard_named(out_dir) if (p := ShardName.parse(f)) and p.name == name
            }
    if overwrite:
        stale |= set(_shard_named(out_dir)) | {LABELS}
    stale |= {f + INDEX_SUFFIX for f in stale if ShardName.parse(f) is not None}
    shutil.rmtree(work, ignore_errors=True)
    for file in sorted(stale):
        if "/" not in file and file not in ("", ".", ".."):
            with contextlib.suppress(FileNotFoundError):
                (out_dir / file).unlink()
    in_the_way = [
        name
        for shard in files
        for name in (shard, shard + INDEX_SUFFIX)
        if os.path.lexists(out_dir / name)
    ]
    if in_the_way:
        shown = ", ".join(in_the_way[:3]) + (" ..." if len(in_the_way) > 3 else "")
        raise ConversionError(
            f"{out_dir} holds files this conversion would write ({shown}) that no "
            "conversion here made; pass --overwrite to replace them, or choose another OUT"
        )
    work.mkdir()
    write_atomic(plan_file, json.dumps({"digest": plan_digest, "files": list(files)}))
    return {}


def _finished_shards(out_dir: Path, work: Path) -> dict[str, ShardResult]:
    done: dict[str, ShardResult] = {}
    for state in work.glob("*.json"):
        if state.name == _PLAN:
            continue
        result = ShardResult.from_json(json.loads(state.read_text(encoding="utf-8")))
        shard = out_dir / result.info.file
        if shard.exists() and shard.stat().st_size == result.info.num_bytes:
            done[result.info.file] = result
    return done


def _manifest_files(manifest: Path) -> set[str]:
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


def _shard_named(out_dir: Path) -> list[str]:
    """Files named like our shards (TFDS naming), whatever the dataset name."""
    return [
        entry.name
        for entry in os.scandir(out_dir)
        if ShardName.parse(entry.name) is not None and not entry.is_dir(follow_symlinks=False)
    ]


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def finish_out_dir(out_dir: Path) -> None:
    shutil.rmtree(out_dir / WORK_DIR, ignore_errors=True)
