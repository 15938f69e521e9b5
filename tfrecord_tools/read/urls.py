"""Which files a reader reads when the dataset is at a URL (``gs://``, ``s3://``,
``memory://``, any fsspec URL): the URL twin of ``shards.resolve_shards`` and of the image
folder scan, with every look-up through the storage seam (``format/storage.py``).
TensorFlow-free.

Data flow: URL -> **one listing** of the folder -> manifest (``dataset.json``) or TFDS's
``dataset_info.json`` read whole -> shard URLs, counts, compression -> pipeline. A folder
without either is a glob of shard files (compression sniffed from the first shard's first 12
bytes, one ranged read). Requests: one listing and one read for a dataset folder, however
many shards it has; the raw image folder is one recursive listing (a request per 1,000
objects), never a request per file.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..errors import TFRecordToolsError
from ..format import storage
from ..format.compression import normalize_compression, sniff_compression
from ..format.framing import HEADER_SIZE
from ..format.index import parse_index
from ..format.manifest import check_finished
from ..format.naming import INDEX_SUFFIX, LABELS, MANIFEST, is_shard_name
from ..format.tfds import TFDS_FEATURES, TFDS_INFO
from .shards import ShardList, manifest_shards, tfds_shards

_GLOB_CHARS = frozenset("*?[")


def resolve_url(url: str, split: str, compression: str | None) -> ShardList:
    """The shards of ``split`` of the dataset at ``url``: a folder with ``dataset.json``,
    a folder TFDS prepared, a folder of shards, one shard or a glob."""
    if any(c in _GLOB_CHARS for c in url.split("://", 1)[1]):
        files = url_matches(url)
        return ShardList(files, None, _compression(files[0], compression))
    listing = storage.list_folder(url)
    names = listing[0]
    if MANIFEST in names:
        found = manifest_shards(url, split, compression)
    elif TFDS_INFO in names and LABELS not in names:
        check_finished(url, listing)  # ours, interrupted after its TFDS files
        found = tfds_shards(url, split, compression, features=TFDS_FEATURES in names)
    else:
        files = url_matches(url, listing)
        found = ShardList(files, None, _compression(files[0], compression))
    # the listing's sizes: the reader need not ask each shard's
    return replace(found, sizes={storage.join(url, n): size for n, size in names.items()})


def url_matches(pattern: str, listing: tuple[dict[str, int], set[str]] | None = None) -> list[str]:
    """Shard URLs for ``pattern``: a glob, a folder of shards (its shard names, not its
    index files; ``listing``: its ``storage.list_folder``, when made already) or one object;
    an error naming the URL when there is none."""
    if any(c in _GLOB_CHARS for c in pattern.split("://", 1)[1]):
        found = [m for m in storage.glob(pattern) if not m.endswith(INDEX_SUFFIX)]
    else:
        listing = storage.list_folder(pattern) if listing is None else listing
        found = sorted(
            storage.join(pattern, n)
            for n in listing[0]
            if is_shard_name(n) and not n.endswith(INDEX_SUFFIX)
        )
        if found:
            check_finished(pattern, listing)
        elif storage.is_file(pattern):
            found = [pattern]
    if not found:
        raise TFRecordToolsError(
            f"{storage.redact(pattern)}: not a dataset: no {MANIFEST}, no {TFDS_INFO} and no "
            "TFRecord files there (check the URL; a conversion writes its manifest last)"
        )
    return found


def read_indexes_url(shards: list[str]) -> list[list[tuple[int, int]]]:
    """The ``.idx`` entries of shards at URLs, their index objects fetched at once (one
    concurrent batch) and parsed by ``format/index.py``; FileNotFoundError when one is
    missing, FormatError naming the URL of a malformed one."""
    urls = [f"{shard}{INDEX_SUFFIX}" for shard in shards]
    texts = storage.read_many(urls)
    return [parse_index(text, storage.redact(url)) for url, text in zip(urls, texts, strict=True)]


def _compression(first: str, given: str | None) -> str:
    if given is not None:
        return normalize_compression(given)
    return sniff_compression(storage.read_bytes(first, 0, HEADER_SIZE))


@dataclass(frozen=True)
class ImageListing:
    """An image folder in a bucket, as ``scan_image_folder`` lists a local one: classes
    (sorted), every file's URL and label, and what was skipped."""

    classes: list[str]
    urls: list[str]
    labels: list[int]
    skipped: list[tuple[str, str]]


def list_image_folder(url: str) -> ImageListing:
    """One recursive listing of ``url``: one prefix per class, files at any depth below it,
    hidden names (``.x``) left out, in the order the local scan gives (classes by name, then
    each folder's names sorted, depth first)."""
    entries = list(storage.walk_files(url))
    visible = [rel for rel, _ in entries if not any(p.startswith(".") for p in rel.split("/"))]
    skipped = [(rel, "not in a class folder") for rel in visible if "/" not in rel]
    in_classes = sorted((rel.split("/") for rel in visible if "/" in rel), key=_bytes_key)
    classes = sorted({parts[0] for parts in in_classes}, key=lambda s: s.encode())
    if not classes:
        raise TFRecordToolsError(
            f"{storage.redact(url)}: no class folders found (expected SRC/CLASS/IMAGE)"
        )
    label_of = {name: i for i, name in enumerate(classes)}
    return ImageListing(
        classes,
        [storage.join(url, *parts) for parts in in_classes],
        [label_of[parts[0]] for parts in in_classes],
        skipped,
    )


def _bytes_key(parts: list[str]) -> list[bytes]:
    return [p.encode("utf-8", "surrogateescape") for p in parts]
