"""What every detection source shares: the annotations a source reads (``coco``, ``voc``,
``yolo``, ``csv_source``), their check against the images, and the shard stage.

Data flow: a source's reader -> **Annotations** (classes, images with their objects, the
problems found reading them) -> **check** (each image probed: missing, unreadable, of
another size than annotated; boxes normalised, clipped to the image, dropped when nothing
is left; masks of another size dropped; every problem named with its file and line) ->
plan (``steps``) -> **DetectionShard.items** (read, transcode, masks rasterised, encode
with ``format.detection``) -> writer.

Boxes and keypoints are stored normalised to the image, so ``--max-size`` and
``--encoding`` keep them. Masks are rasterised in the image's frame on disk and stored as
the image is (:func:`stored_mask`): turned with it when it is stored upright, resized
nearest-neighbour when ``--max-size`` shrinks it.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Protocol

from ... import storage
from ...errors import ConversionError, InvalidImageError
from ...format.detection import DetectionObject, encode_detection_parts, orient_box
from ...images import reencode
from ...images.probe import ImageInfo, probe_image
from . import Item
from .image_folder import read_listed
from .transcode import KEEP, StorageOptions, transcode

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "AnnotatedImage",
    "AnnotatedObject",
    "Annotations",
    "Checked",
    "DetectionShard",
    "MaskSource",
    "PlannedImage",
    "Problem",
    "check_annotations",
    "stored_mask",
]

#: Problem reasons (stable phrases: the manifest and the summary count them).
MISSING_IMAGE = "annotation for a missing image"
SIZE_DIFFERS = "image size differs from the annotation's"
OUTSIDE = "box outside the image"
NEGATIVE = "negative width or height"
UNKNOWN_CATEGORY = "unknown category"
MALFORMED = "malformed annotation"
BAD_IMAGE = "unreadable image"
BAD_MASK = "bad mask"
#: Deflate level of the mask PNGs (zlib-ng): a 640x480 polygon mask is 980 B at level 2,
#: 3.7 KB at level 1, in the same 0.3 ms; level 6 makes 690 B in 0.55 ms.
MASK_PNG_LEVEL = 2


@dataclass(frozen=True, slots=True)
class Problem:
    """A bad annotation: where (``file`` or ``file:line``), a stable reason, the details,
    and what was left out for it (``"object"`` or ``"image"``)."""

    where: str
    reason: str
    detail: str = ""
    dropped: str = "object"

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}" + (f" ({self.detail})" if self.detail else "")


class MaskSource(Protocol):
    """An object's mask as its source gives it (``coco.Polygons``, ``coco.RunLengths``), in
    the frame of the image as stored on disk."""

    def problem(self, width: int, height: int) -> str | None:
        """Why it cannot be the mask of an image of this size (None: it can)."""

    def key(self) -> bytes:
        """Its content, for the resume fingerprint."""

    def pixels(self, height: int, width: int) -> np.ndarray:
        """uint8 [height, width], 1 inside."""


@dataclass(frozen=True, slots=True)
class AnnotatedObject:
    """An object as its source gives it: (xmin, ymin, xmax, ymax) in pixels, or normalised
    to [0, 1] when ``normalised`` (YOLO); its 1-based label; ``where`` names its line."""

    box: tuple[float, float, float, float]
    label: int
    where: str
    normalised: bool = False
    is_crowd: int = 0
    area: float | None = None  # None: the box's area
    difficult: int = 0
    truncated: int = 0
    pose: str = ""
    keypoints: tuple[tuple[float, float, int], ...] = ()  # in the box's units
    mask: MaskSource | None = None


@dataclass(frozen=True, slots=True)
class AnnotatedImage:
    """An image (``path`` relative to the image root, '/'-separated) and its objects;
    ``width``/``height``: the size the annotation states (None: it states none)."""

    path: str
    source_id: str
    where: str
    objects: tuple[AnnotatedObject, ...] = ()
    width: int | None = None
    height: int | None = None


@dataclass
class Annotations:
    """What a source's reader found: ``classes`` (label i + 1 is ``classes[i]``), the images,
    the problems met reading them, fixed splits (indices into ``images``) when the source
    has its own, and what the manifest's ``source`` should say besides."""

    classes: list[str]
    images: list[AnnotatedImage]
    problems: list[Problem] = field(default_factory=list)
    splits: dict[str, list[int]] | None = None
    source: dict = field(default_factory=dict)
    masks: bool = False  # every object has its mask (COCO --masks)


@dataclass(frozen=True, slots=True)
class PlannedImage:
    """An image ready for its shard: the objects checked and normalised, and their masks
    (rasterised in the shard) when the conversion stores masks."""

    path: str
    source_id: str
    objects: tuple[DetectionObject, ...]
    size: int  # bytes of the image file
    masks: tuple[MaskSource, ...] | None = None  # one per object


@dataclass
class Checked:
    images: list[PlannedImage]
    splits: dict[str, list[int]] | None
    problems: list[Problem]
    clipped: int

    def counts(self, classes: Sequence[str]) -> dict:
        """The manifest's ``objects``: per class, images without any, clipped, dropped."""
        per_class = Counter(o.text for image in self.images for o in image.objects)
        return {
            "total": sum(per_class.values()),
            "per_class": {c: per_class.get(c, 0) for c in classes},
            "images_without_objects": sum(1 for image in self.images if not image.objects),
            "clipped": self.clipped,
            "dropped": sum(1 for p in self.problems if p.dropped == "object"),
        }


def check_annotations(
    annotations: Annotations, root: str, *, validate: str = "fast", workers: int = 1
) -> Checked:
    """Probe every annotated image under ``root`` and normalise its objects; images that
    are missing, unreadable or of another size than annotated are left out, boxes with no
    area inside the image (or a negative size) are dropped, others clipped, and so are
    objects whose mask cannot be the image's. Every problem is returned, those the reader
    found first."""
    classes = annotations.classes
    problems = list(annotations.problems)

    def look(image: AnnotatedImage):
        full = (
            storage.join(root, image.path)
            if storage.is_url(root)
            else os.path.join(root, *image.path.split("/"))
        )
        try:
            data = read_listed(full)
            _, info = probe_image(data, path=image.path, validate=validate)
        except FileNotFoundError:
            return Problem(image.where, MISSING_IMAGE, image.path, "image")
        except InvalidImageError as e:
            return Problem(image.where, BAD_IMAGE, f"{image.path}: {e.reason}", "image")
        except OSError as e:
            return Problem(image.where, BAD_IMAGE, f"{image.path}: {e.strerror or e}", "image")
        return info, len(data)

    with ThreadPoolExecutor(max(1, min(workers, 32))) as pool:
        looked = list(pool.map(look, annotations.images))
    kept: list[PlannedImage] = []
    index_of: dict[int, int] = {}
    clipped = 0
    for i, (image, found) in enumerate(zip(annotations.images, looked, strict=True)):
        if isinstance(found, Problem):
            problems.append(found)
            continue
        info, size = found
        if image.width is not None and (image.width, image.height) != (info.width, info.height):
            problems.append(
                Problem(
                    image.where,
                    SIZE_DIFFERS,
                    f"{image.path} is {info.width}x{info.height}, annotated "
                    f"{image.width}x{image.height}",
                    "image",
                )
            )
            continue
        objects, masks = [], []
        for obj in image.objects:
            made = _normalise(obj, info.width, info.height, classes)
            if isinstance(made, Problem):
                problems.append(made)
                continue
            if annotations.masks:
                wrong = "no mask" if obj.mask is None else obj.mask.problem(info.width, info.height)
                if wrong:
                    problems.append(Problem(obj.where, BAD_MASK, wrong))
                    continue
                masks.append(obj.mask)
            normalised, was_clipped = made
            clipped += was_clipped
            objects.append(normalised)
        index_of[i] = len(kept)
        planned = PlannedImage(image.path, image.source_id, tuple(objects), size)
        kept.append(replace(planned, masks=tuple(masks)) if annotations.masks else planned)
    splits = None
    if annotations.splits is not None:
        splits = {
            name: [index_of[i] for i in members if i in index_of]
            for name, members in annotations.splits.items()
        }
    return Checked(kept, splits, problems, clipped)


def _normalise(
    obj: AnnotatedObject, width: int, height: int, classes: Sequence[str]
) -> tuple[DetectionObject, bool] | Problem:
    """The object with its box normalised and clipped to [0, 1], or the problem that drops
    it."""
    if not 1 <= obj.label <= len(classes):
        return Problem(obj.where, UNKNOWN_CATEGORY, f"label {obj.label}")
    x0, y0, x1, y1 = obj.box
    if not all(math.isfinite(v) for v in obj.box):
        return Problem(obj.where, MALFORMED, f"box {obj.box}")
    if x1 < x0 or y1 < y0:
        return Problem(obj.where, NEGATIVE, f"box {_shown(obj.box)}")
    sx, sy = (1.0, 1.0) if obj.normalised else (1.0 / width, 1.0 / height)
    box = (x0 * sx, y0 * sy, x1 * sx, y1 * sy)
    inside = tuple(min(1.0, max(0.0, v)) for v in box)
    if inside[2] <= inside[0] or inside[3] <= inside[1]:
        return Problem(obj.where, OUTSIDE, f"box {_shown(obj.box)}, image {width}x{height}")
    area = obj.area
    if area is None:
        area = (inside[2] - inside[0]) * width * (inside[3] - inside[1]) * height
    points = tuple((x * sx, y * sy, v) for x, y, v in obj.keypoints)
    made = DetectionObject(
        *inside,
        label=obj.label,
        text=classes[obj.label - 1],
        is_crowd=obj.is_crowd,
        area=float(area),
        difficult=obj.difficult,
        truncated=obj.truncated,
        pose=obj.pose,
        keypoints=points,
    )
    return made, inside != box


def _shown(box: tuple[float, ...]) -> str:
    return "(" + ", ".join(f"{v:g}" for v in box) + ")"


def refuse(problems: Sequence[Problem], where: str) -> None:
    """``--strict``: every problem in one error, before anything is written."""
    if problems:
        raise ConversionError(
            f"--strict: {len(problems)} bad annotation{'s' if len(problems) > 1 else ''} in "
            f"{where}, nothing was written:\n  " + "\n  ".join(str(p) for p in problems)
        )


@dataclass(frozen=True)
class DetectionShard:
    """The images of one shard and their checked objects; runs in a worker process."""

    root: str
    images: tuple[PlannedImage, ...]
    validate: str = "fast"
    strict: bool = False
    storage: StorageOptions = KEEP

    def __len__(self) -> int:
        return len(self.images)

    def items(self) -> Iterator[Item]:
        """The shard's records; an image that went bad since it was checked is skipped and
        listed (``strict``: the job ends)."""
        remote = storage.is_url(self.root)
        for image in self.images:
            rel = image.path
            full = storage.join(self.root, rel) if remote else os.path.join(self.root, rel)
            try:
                data = read_listed(full)
                stored, info = probe_image(data, path=rel, validate=self.validate)
                disk = info
                stored, info, resized = transcode(stored, info, self.storage, path=rel)
                # stored upright (re-encoded): boxes, keypoints and masks turn too
                turn = disk.orientation if disk.orientation != info.orientation else 1
                objects = image.objects
                if turn != 1:
                    objects = tuple(_turned(o, turn) for o in objects)
                if image.masks is not None:
                    objects = _with_masks(objects, image.masks, disk, turn, info)
            except InvalidImageError as e:
                yield self._skip(rel, e.reason, str(e), image.size)
                continue
            except OSError as e:
                where = storage.redact(full)
                yield self._skip(rel, "unreadable file", f"{where}: {e.strerror or e}", 0)
                continue
            example = encode_detection_parts(
                encoded=stored,
                image_format=info.format,
                height=info.height,
                width=info.width,
                channels=info.channels,
                filename=rel,
                source_id=image.source_id,
                objects=objects,
                orientation=info.orientation,
            )
            yield Item.of_image(example, info, len(data), len(stored), resized)

    def _skip(self, rel: str, reason: str, message: str, size: int) -> Item:
        where = storage.redact(storage.join(self.root, rel))
        return Item.skip(where, rel, reason, message, size, self.strict)


def _turned(obj: DetectionObject, orientation: int) -> DetectionObject:
    """``obj``'s box and keypoints in the frame of its image turned upright for EXIF
    ``orientation`` (a keypoint turns as a box of no size)."""
    ymin, xmin, ymax, xmax = orient_box(obj.ymin, obj.xmin, obj.ymax, obj.xmax, orientation)
    points = []
    for x, y, visibility in obj.keypoints:
        y, x, _, _ = orient_box(y, x, y, x, orientation)
        points.append((x, y, visibility))
    return replace(obj, xmin=xmin, ymin=ymin, xmax=xmax, ymax=ymax, keypoints=tuple(points))


def _with_masks(
    objects: tuple[DetectionObject, ...],
    masks: tuple[MaskSource, ...],
    disk: ImageInfo,
    turn: int,
    stored: ImageInfo,
) -> tuple[DetectionObject, ...]:
    """``objects`` with their masks rasterised at the image's size on disk, stored as the
    image is (:func:`stored_mask`)."""
    size = (stored.height, stored.width)
    return tuple(
        replace(o, mask=stored_mask(m.pixels(disk.height, disk.width), turn, size))
        for o, m in zip(objects, masks, strict=True)
    )


def stored_mask(pixels: np.ndarray, turn: int, size: tuple[int, int]) -> bytes:
    """A mask (uint8 [h, w], of the image as on disk) as a PNG of the image as stored:
    turned upright for EXIF orientation ``turn`` (1: not turned) as ``transcode`` turns
    the image, then resized nearest-neighbour to ``size`` (height, width): stored pixel
    (i, j) takes the pixel under its centre, floor((i + 1/2) h / height)."""
    import numpy as np

    from ...images.pngenc import encode_png

    name = reencode._UPRIGHT.get(turn)
    if name is not None:
        from PIL import Image

        pixels = np.asarray(Image.fromarray(pixels).transpose(getattr(Image.Transpose, name)))
    (h, w), (height, width) = pixels.shape, size
    if (h, w) != (height, width):
        rows = (2 * np.arange(height) + 1) * h // (2 * height)
        cols = (2 * np.arange(width) + 1) * w // (2 * width)
        pixels = pixels[rows][:, cols]
    return encode_png(pixels, level=MASK_PNG_LEVEL)
