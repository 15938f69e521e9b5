"""The dataset manifest (``dataset.json``) and ``labels.txt``: the last stage of a
conversion and the first thing every reader and tool opens.

Data flow: shard infos -> **manifest** (written last, atomically). A folder without
``dataset.json`` is an unfinished conversion (FORMAT.md).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .errors import TFRecordToolsError

MANIFEST = "dataset.json"
INDEX_SUFFIX = ".idx"  # SHARD.idx beside each shard (FORMAT.md)
LABELS = "labels.txt"
FORMAT_VERSION = 1


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary sibling and a rename."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_labels(out_dir: Path, classes: list[str]) -> None:
    write_atomic(out_dir / LABELS, "".join(f"{c}\n" for c in classes))


def write_manifest(out_dir: Path, manifest: dict[str, Any]) -> Path:
    path = out_dir / MANIFEST
    write_atomic(path, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return path


def read_manifest(path: str | os.PathLike) -> dict[str, Any]:
    """Load ``dataset.json`` from a dataset folder (or the file itself), checking its version."""
    path = Path(path)
    if path.is_dir():
        path = path / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TFRecordToolsError(
            f"{path}: no manifest (an unfinished conversion, or not a tfrecord-tools dataset)"
        ) from None
    except json.JSONDecodeError as e:
        raise TFRecordToolsError(f"{path}: not valid JSON ({e})") from None
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise TFRecordToolsError(
            f"{path}: format_version {version!r}; this tool reads version {FORMAT_VERSION}"
        )
    return manifest
