"""An image folder and a folder of class masks -> segmentation records (``convert
segmentation``): DeepLab's keys, the image and its class mask PNG.

    SRC/                  the images, at any depth
      a.jpg
      city/b.png
    MASKS/                --masks: a PNG per image, same path and stem (a.jpg <-> a.png)
      a.png               the class id of each pixel: 8-bit gray, or palette indices
      city/b.png          (VOC's SegmentationClass); 255 is DeepLab's "ignore"
    classes.txt           --classes (optional): class id i's name on line i + 1

Data flow: **pair_files** (both folders listed; an image without a mask, a mask without
an image: listed skips) -> **check_pairs** (each image probed, each mask decoded: one
channel, the image's size on disk, class ids named) -> plan (``steps``) ->
**SegmentationShard.items** (image transcoded as the detection sources do, the mask
stored as it is: ``detection.stored_mask``) -> writer.
"""

from __future__ import annotations

import posixpath
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from ... import storage
from ...errors import ConversionError, InvalidImageError
from ...format.detection import encode_segmentation_parts
from ...images import reencode
from ...images.probe import ImageInfo, probe_image
from . import Item
from .detection import BAD_IMAGE, BAD_MASK, Problem, stored_mask
from .image_folder import read_listed
from .transcode import KEEP, StorageOptions, transcode
from .yolo import IMAGE_SUFFIXES

__all__ = [
    "IGNORE",
    "CheckedPairs",
    "Pair",
    "SegmentationShard",
    "check_pairs",
    "class_names",
    "pair_files",
]

#: DeepLab's ignore label: a class only when ``--classes`` names it.
IGNORE = 255
#: Problem reasons (stable phrases, as ``detection``'s).
NO_MASK = "image without a mask"
NO_IMAGE = "mask without an image"
SEVERAL = "several images for one mask"
MASK_SIZE = "mask size differs from the image's"
#: Pillow modes of a mask -> what their pixels are: class ids (palette: the indices).
_ID_MODES = frozenset({"1", "L", "P", "I;16", "I;16L", "I;16B", "I"})


@dataclass(frozen=True, slots=True)
class Pair:
    """An image and its mask, '/'-separated paths relative to SRC and MASKS."""

    image: str
    mask: str
    size: int  # bytes of the image file
    mask_size: int = 0  # bytes of the mask file

    @property
    def source_id(self) -> str:
        return posixpath.splitext(self.image)[0]


def _join(root: str, rel: str) -> str:
    return storage.join(root, rel) if storage.is_url(root) else posixpath.join(root, rel)


def pair_files(src: str, masks: str) -> tuple[list[Pair], list[Problem]]:
    """The images of ``src`` (any depth, by suffix) with the PNG of ``masks`` at the same
    path and stem; the problems of those without one. A folder without any image (or
    mask) is a :class:`ConversionError`."""
    pictures: dict[str, list[tuple[str, int]]] = {}
    for rel, size in storage.walk_files(src):
        stem, suffix = posixpath.splitext(rel)
        if suffix.lower() in IMAGE_SUFFIXES and not posixpath.basename(rel).startswith("."):
            pictures.setdefault(stem, []).append((rel, size))
    pngs: dict[str, tuple[str, int]] = {}
    for rel, size in storage.walk_files(masks):
        stem, suffix = posixpath.splitext(rel)
        if suffix.lower() == ".png" and not posixpath.basename(rel).startswith("."):
            pngs[stem] = (rel, size)
    shown_src, shown_masks = storage.redact(src), storage.redact(masks)
    if not pictures:
        raise ConversionError(f"{shown_src}: no image (.jpg, .png ...) in this folder")
    if not pngs:
        raise ConversionError(f"{shown_masks} (--masks): no mask PNG in this folder")
    pairs: list[Pair] = []
    problems: list[Problem] = []
    for stem, found in sorted(pictures.items()):
        if stem not in pngs:
            for rel, _ in found:
                where = _join(shown_src, rel)
                problems.append(Problem(where, NO_MASK, f"no {stem}.png in {shown_masks}", "image"))
        elif len(found) > 1:
            names = ", ".join(rel for rel, _ in found)
            where = _join(shown_masks, pngs[stem][0])
            problems.append(Problem(where, SEVERAL, names, "image"))
        else:
            rel, size = found[0]
            pairs.append(Pair(rel, pngs[stem][0], size, pngs[stem][1]))
    for stem, (rel, _) in sorted(pngs.items()):
        if stem not in pictures:
            where = _join(shown_masks, rel)
            problems.append(Problem(where, NO_IMAGE, f"no {stem}.* in {shown_src}", "image"))
    return pairs, problems


def read_mask(data: bytes, rel: str) -> np.ndarray:
    """The class ids of a mask PNG as uint8 [h, w]: gray values, or palette indices. Not a
    PNG, more than one channel, ids above 255: :class:`InvalidImageError` (reason "bad
    mask")."""
    _, info = probe_image(data, path=rel)  # a PNG whose pixels fit in memory, CRCs checked
    if info.format != "png" or info.converted_from is not None:
        raise InvalidImageError(BAD_MASK, path=rel, detail="not a PNG")
    with reencode.quiet():
        try:
            image = reencode.open_image(data, "png")
            image.load()
        except Exception as err:  # whatever Pillow raised on this file
            raise InvalidImageError(BAD_MASK, path=rel, detail=f"not decoded: {err}") from err
    if image.mode not in _ID_MODES:
        raise InvalidImageError(
            BAD_MASK,
            path=rel,
            detail=f"{image.mode} pixels: a mask holds one class id a pixel (gray or palette)",
        )
    ids = np.asarray(image)
    if ids.dtype != np.uint8:
        if ids.size and int(ids.max()) > 255:
            raise InvalidImageError(BAD_MASK, path=rel, detail=f"class id {int(ids.max())} > 255")
        ids = ids.astype(np.uint8)
    return ids


@dataclass
class CheckedPairs:
    """The pairs kept, the class ids in each one's mask, and every problem."""

    pairs: list[Pair]
    ids: list[frozenset[int]]
    problems: list[Problem]


def check_pairs(
    pairs: Sequence[Pair],
    src: str,
    masks: str,
    *,
    named: int | None,
    validate: str = "fast",
    workers: int = 1,
) -> CheckedPairs:
    """Probe each image and decode its mask: an unreadable image or mask, a mask of
    another size than its image (as on disk, before any EXIF turn) or with a class id that
    ``named`` class names do not cover (255 aside) is a problem that leaves the pair out."""

    def look(pair: Pair) -> frozenset[int] | Problem:
        image_at, mask_at = _join(src, pair.image), _join(masks, pair.mask)
        try:
            _, info = probe_image(read_listed(image_at), path=pair.image, validate=validate)
        except InvalidImageError as e:
            return Problem(storage.redact(image_at), BAD_IMAGE, e.reason, "image")
        except OSError as e:
            return Problem(storage.redact(image_at), BAD_IMAGE, e.strerror or str(e), "image")
        try:
            ids = read_mask(read_listed(mask_at), pair.mask)
        except InvalidImageError as e:
            return Problem(storage.redact(mask_at), BAD_MASK, e.detail or e.reason, "image")
        except OSError as e:
            return Problem(storage.redact(mask_at), BAD_MASK, e.strerror or str(e), "image")
        wrong = _size_problem(ids, info)
        if wrong:
            return Problem(storage.redact(mask_at), MASK_SIZE, wrong, "image")
        present = np.flatnonzero(np.bincount(ids.ravel(), minlength=256))
        if named is not None:
            unnamed = [int(i) for i in present if i >= named and i != IGNORE]
            if unnamed:
                detail = f"class id {unnamed[0]}, --classes names {named}"
                return Problem(storage.redact(mask_at), BAD_MASK, detail, "image")
        return frozenset(int(i) for i in present)

    with ThreadPoolExecutor(max(1, min(workers, 32))) as pool:
        looked = list(pool.map(look, pairs))
    kept, ids, problems = [], [], []
    for pair, found in zip(pairs, looked, strict=True):
        if isinstance(found, Problem):
            problems.append(found)
        else:
            kept.append(pair)
            ids.append(found)
    return CheckedPairs(kept, ids, problems)


def _size_problem(ids: np.ndarray, info: ImageInfo) -> str | None:
    if ids.shape != (info.height, info.width):
        return (
            f"{ids.shape[0]}x{ids.shape[1]}, the image is {info.height}x{info.width} (height x "
            "width, as stored on disk)"
        )
    return None


def class_names(names: Sequence[str] | None, ids: Sequence[frozenset[int]]) -> list[str]:
    """``names`` as given (``--classes``: class id i is ``names[i]``), else ``class_0`` up
    to the largest id any mask holds (255, DeepLab's ignore label, aside)."""
    if names is not None:
        return list(names)
    largest = max((i for found in ids for i in found if i != IGNORE), default=0)
    return [f"class_{i}" for i in range(largest + 1)]


def read_class_names(classes) -> list[str] | None:
    """``classes``: None, a text file (a name a line), or the names themselves."""
    if classes is None:
        return None
    if isinstance(classes, (list, tuple)):
        names = list(classes)
        shown = "classes"
    else:
        shown = storage.redact(classes) if storage.is_url(classes) else str(classes)
        try:
            names = [line.strip() for line in storage.read_text(classes).splitlines()]
        except FileNotFoundError:
            raise ConversionError(f"{shown}: no such classes file") from None
        except UnicodeDecodeError as e:
            raise ConversionError(f"{shown}: not UTF-8 text ({e})") from None
        while names and not names[-1]:
            names.pop()  # a trailing empty line
    if not names or not all(isinstance(n, str) and n for n in names):
        raise ConversionError(
            f"{shown} (--classes): expected one non-empty class name a line, class id i on "
            "line i + 1"
        )
    if len(names) > 256:
        raise ConversionError(f"{shown} (--classes): {len(names)} names; masks hold ids 0-255")
    if len(set(names)) != len(names):
        twice = next(n for n, c in Counter(names).items() if c > 1)
        raise ConversionError(f"{shown} (--classes): {twice!r} is named twice")
    return names


def images_per_class(classes: Sequence[str], ids: Sequence[frozenset[int]]) -> dict[str, int]:
    """The manifest's ``segmentation.images_per_class``: how many masks hold each class."""
    counts = Counter(i for found in ids for i in found)
    return {name: counts.get(i, 0) for i, name in enumerate(classes)}


@dataclass(frozen=True)
class SegmentationShard:
    """The image / mask pairs of one shard; runs in a worker process."""

    root: str
    masks: str
    pairs: tuple[Pair, ...]
    validate: str = "fast"
    strict: bool = False
    storage: StorageOptions = KEEP

    def __len__(self) -> int:
        return len(self.pairs)

    def items(self) -> Iterator[Item]:
        """The shard's records; a pair that went bad since it was checked is skipped and
        listed (``strict``: the job ends)."""
        for pair in self.pairs:
            image_at, mask_at = _join(self.root, pair.image), _join(self.masks, pair.mask)
            at = image_at
            try:
                data = read_listed(image_at)
                stored, disk = probe_image(data, path=pair.image, validate=self.validate)
                at = mask_at
                ids = read_mask(read_listed(mask_at), pair.mask)
                wrong = _size_problem(ids, disk)
                if wrong:
                    raise InvalidImageError(MASK_SIZE, path=pair.mask, detail=wrong)
                at = image_at
                stored, info, resized = transcode(stored, disk, self.storage, path=pair.image)
            except InvalidImageError as e:
                yield self._skip(at, pair, e.reason, str(e))
                continue
            except OSError as e:
                where = storage.redact(at)
                yield self._skip(at, pair, "unreadable file", f"{where}: {e.strerror or e}")
                continue
            turn = disk.orientation if disk.orientation != info.orientation else 1
            example = encode_segmentation_parts(
                encoded=stored,
                image_format=info.format,
                height=info.height,
                width=info.width,
                channels=info.channels,
                filename=pair.image,
                source_id=pair.source_id,
                segmentation=stored_mask(ids, turn, (info.height, info.width)),
                orientation=info.orientation,
            )
            yield Item.of_image(example, info, len(data), len(stored), resized)

    def _skip(self, at: str, pair: Pair, reason: str, message: str) -> Item:
        return Item.skip(storage.redact(at), pair.image, reason, message, pair.size, self.strict)
