"""Resuming a conversion: the output folder's work directory says what is already done.

Data flow: plan -> **fingerprint** -> ``OUT/.tfrecord-tools-work/plan.json``; every finished
shard leaves ``SHARD.json`` (its :class:`ShardResult`) there. A rerun with the same
fingerprint keeps the finished shards and writes only the rest; the work directory goes once
the manifest is written.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from ..errors import ConversionError
from ..format.atomic import remove_temp_files, write_atomic
from ..format.naming import INDEX_SUFFIX, MANIFEST, WORK_DIR, ShardName
from .jobs import ShardResult

__all__ = ["fingerprint", "finish_out_dir", "prepare_out_dir"]


def fingerprint(parts: Any) -> str:
    """A stable digest of whatever identifies a conversion (source listing + options)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def prepare_out_dir(
    out_dir: Path, name: str, plan_digest: str, *, overwrite: bool
) -> dict[str, ShardResult]:
    """Make ``out_dir`` ready; return the shards a previous run of the same plan finished.

    A finished dataset is only replaced with ``overwrite``. A different unfinished plan's
    shards of the same name are removed, as are temporary files of interrupted writes.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = out_dir / MANIFEST
    work = out_dir / WORK_DIR
    if manifest.exists():
        if not overwrite:
            raise ConversionError(
                f"{out_dir} already holds a finished conversion ({MANIFEST}); "
                "pass --overwrite to replace it"
            )
        manifest.unlink()
        shutil.rmtree(work, ignore_errors=True)
    remove_temp_files(out_dir)
    plan_file = work / "plan.json"
    done: dict[str, ShardResult] = {}
    if plan_file.exists() and json.loads(plan_file.read_text()).get("digest") == plan_digest:
        for state in work.glob("*.json"):
            if state.name == "plan.json":
                continue
            result = ShardResult.from_json(json.loads(state.read_text(encoding="utf-8")))
            shard = out_dir / result.info.file
            if shard.exists() and shard.stat().st_size == result.info.num_bytes:
                done[result.info.file] = result
        return done
    shutil.rmtree(work, ignore_errors=True)
    for stale in out_dir.iterdir():  # this dataset's shards and indexes of another plan
        parsed = ShardName.parse(stale.name.removesuffix(INDEX_SUFFIX))
        if parsed is not None and parsed.name == name:
            stale.unlink()
    work.mkdir()
    write_atomic(plan_file, json.dumps({"digest": plan_digest}))
    return done


def finish_out_dir(out_dir: Path) -> None:
    shutil.rmtree(out_dir / WORK_DIR, ignore_errors=True)
