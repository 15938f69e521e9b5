"""Listing an image folder: the first stage of ``convert images``.

Data flow: **SRC folder -> listing** (classes, relative paths, labels, sizes) -> plan.
The expected input::

    SRC/
      daisy/                 <- class 0 (classes sorted by name)
        100080576.jpg
        more/deeper.png      <- deeper files belong to their top-level class
      tulips and roses/      <- class 1 (UTF-8 names and spaces are fine)
        x.png
      .DS_Store              <- hidden files and folders are not data
      notes.txt              <- a file outside any class folder: listed as skipped

Formats are not judged here (the shard workers read the bytes); this only walks the tree.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConversionError


@dataclass
class FolderListing:
    """Every candidate file of an image folder, in a stable order."""

    root: Path
    classes: list[str]
    paths: list[str]  # relative to root, '/'-separated
    labels: list[int]
    sizes: list[int]
    mtimes: list[int] = field(repr=False)
    skipped: list[tuple[str, str]]  # (relative path, reason)


def _visible(name: str) -> bool:
    return not name.startswith(".")


def scan_image_folder(src: str | os.PathLike) -> FolderListing:
    """Walk ``src``: one subfolder per class, files at any depth below it."""
    root = Path(src)
    if not root.is_dir():
        raise ConversionError(f"{root}: not a folder (expected one subfolder per class)")
    classes, skipped = [], []
    with os.scandir(root) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            if not _visible(entry.name):
                continue
            if entry.is_dir():
                classes.append(entry.name)
            else:
                skipped.append((entry.name, "not in a class folder"))
    if not classes:
        raise ConversionError(f"{root}: no class subfolders found (expected SRC/CLASS/IMAGE)")
    paths, labels, sizes, mtimes = [], [], [], []
    for label, name in enumerate(classes):
        for rel, st in _walk_files(root / name, name, skipped):
            paths.append(rel)
            labels.append(label)
            sizes.append(st.st_size)
            mtimes.append(st.st_mtime_ns)
    if not paths:
        raise ConversionError(f"{root}: the class folders hold no files")
    return FolderListing(root, classes, paths, labels, sizes, mtimes, skipped)


def _walk_files(folder: Path, prefix: str, skipped: list[tuple[str, str]]):
    """(relative path, stat) of every visible file below ``folder``, sorted, depth first;
    broken links and special files go to ``skipped``."""
    with os.scandir(folder) as it:
        entries = sorted((e for e in it if _visible(e.name)), key=lambda e: e.name)
    for entry in entries:
        rel = f"{prefix}/{entry.name}"
        if entry.is_dir():
            yield from _walk_files(Path(entry.path), rel, skipped)
        elif entry.is_file():
            yield rel, entry.stat()
        else:
            skipped.append((rel, "not a regular file"))


@dataclass(frozen=True)
class FolderShard:
    """The samples of one shard of an image folder; runs in a worker process."""

    root: str
    classes: tuple[str, ...]
    paths: tuple[str, ...]
    labels: tuple[int, ...]
    validate: str = "fast"
    strict: bool = False

    def __len__(self) -> int:
        return len(self.paths)

    def items(self):
        from .engine import Item
        from .errors import InvalidImageError
        from .probe import probe_image
        from .schema import encode_example_parts

        for rel, label in zip(self.paths, self.labels, strict=True):
            full = os.path.join(self.root, rel)
            try:
                with open(full, "rb", buffering=0) as f:  # one read, no buffer copy
                    data = f.read()
                stored, info = probe_image(data, path=rel, validate=self.validate)
            except InvalidImageError as e:
                yield self._skip(rel, e.reason, str(e), len(data))
                continue
            except OSError as e:
                yield self._skip(rel, "unreadable file", f"{full}: {e.strerror or e}", 0)
                continue
            example = encode_example_parts(
                encoded=stored,
                image_format=info.format,
                height=info.height,
                width=info.width,
                channels=info.channels,
                label=label,
                text=self.classes[label],
                filename=rel,
            )
            yield Item(
                example,
                info.format,
                info.kind,
                info.converted_from,
                len(data),
                shape=(info.height, info.width, info.channels),
            )

    def _skip(self, rel: str, reason: str, message: str, size: int):
        from .engine import Item

        if self.strict:
            raise ConversionError(f"{os.path.join(self.root, rel)}: {reason} (--strict): {message}")
        return Item(skipped=(rel, reason), source_bytes=size)
