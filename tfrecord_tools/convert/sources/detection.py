"""What every detection source shares: the annotations a source reads (``coco``, ``voc``,
``yolo``, ``csv_source``), their check, and the shard stage.

Data flow: a source's reader -> **Annotations** (classes, images with their objects, the
problems found reading them, a digest of the files read) -> **check** (each image's file
looked up in one listing: missing ones left out; boxes normalised to the size the
annotation states, clipped, dropped when nothing is left; masks of another size dropped;
every problem named with its file and line) -> plan (``steps``) -> **DetectionShard.items**
(read, probe: an unreadable image, or one of another size than its boxes were normalised
for, is skipped and listed; transcode, masks rasterised, encode with
``format.detection``) -> writer. Only images whose annotation states no size are probed
before the plan (their boxes need it), and every image with ``--strict``, which refuses
before anything is written. What the workers skip comes back in the shard results, and the
manifest's ``objects`` and ``dropped_objects`` leave those images out
(:meth:`Checked.left_out`).

Boxes and keypoints are stored normalised to the image, so ``--max-size`` and
``--encoding`` keep them. Masks are rasterised in the image's frame on disk and stored as
the image is (:func:`stored_mask`): turned with it when it is stored upright, resized
nearest-neighbour when ``--max-size`` shrinks it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
from array import array
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from math import isfinite
from typing import TYPE_CHECKING, Protocol

from ... import storage
from ...errors import ConversionError, InvalidImageError
from ...format.detection import DetectionObject, encode_detection_parts, orient_box
from ...images import reencode
from ...images.probe import ImageInfo, probe_image
from ..inherit import shared
from . import Item
from .image_folder import read_listed
from .transcode import KEEP, StorageOptions, transcode

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "AnnotatedImage",
    "AnnotatedObject",
    "AnnotationDigest",
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


@dataclass(slots=True)  # not frozen: a frozen one takes 4x as long to make (one an object)
class AnnotatedObject:
    """An object as its source gives it: (xmin, ymin, xmax, ymax) in pixels, or normalised
    to [0, 1] when ``normalised`` (YOLO); its 1-based label; ``where`` names its line. Not
    changed once made (``dataclasses.replace`` makes another)."""

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
    has its own, what the manifest's ``source`` should say besides, and ``digest``: the
    sha256 of the annotation files read and of the reader's options (what resume compares:
    :class:`AnnotationDigest`)."""

    classes: list[str]
    images: list[AnnotatedImage]
    problems: list[Problem] = field(default_factory=list)
    splits: dict[str, list[int]] | None = None
    source: dict = field(default_factory=dict)
    masks: bool = False  # every object has its mask (COCO --masks)
    digest: str = ""


class AnnotationDigest:
    """The sha256 of the annotation files a reader reads, each with its name (which the
    reader derives image paths or ids from), in the order read, and of its options."""

    def __init__(self, *options: object):
        self._sha = hashlib.sha256(repr(options).encode())

    def add(self, name: str, data: bytes) -> bytes:
        """Count ``data``, the bytes of file ``name``; returns it."""
        head = name.encode("utf-8", "surrogateescape")
        self._sha.update(b"%d:%d:" % (len(head), len(data)) + head)
        self._sha.update(data)
        return data

    def hexdigest(self) -> str:
        return self._sha.hexdigest()


@dataclass(frozen=True, slots=True)
class PlannedImage:
    """An image ready for its shard: the objects checked and normalised for an image of
    ``width`` x ``height`` (the shard skips it when it has another size), and their masks
    (rasterised in the shard) when the conversion stores masks. ``where`` names its
    annotation (what a skip lists)."""

    path: str
    source_id: str
    objects: tuple[DetectionObject, ...]
    size: int  # bytes of the image file
    where: str
    width: int
    height: int
    masks: tuple[MaskSource, ...] | None = None  # one per object


#: The reasons an image is left out for (in the check, or by the shard that reads it).
IMAGE_REASONS = frozenset({MISSING_IMAGE, BAD_IMAGE, SIZE_DIFFERS})


@dataclass
class Checked:
    """The checked images, their splits (indices into ``images``), every problem found
    (the reader's first), and what the manifest's figures need to leave an image out
    again when its shard skips it."""

    images: list[PlannedImage]
    splits: dict[str, list[int]] | None
    problems: list[Problem]
    clipped: dict[int, int] = field(default_factory=dict)  # image -> its boxes clipped
    owner: dict[int, int] = field(default_factory=dict)  # problem -> the image it is of

    def left_out(self, skipped: Sequence[tuple[str, str]]) -> frozenset[int]:
        """The images a shard skipped (its ``skipped`` entries: annotation, reason)."""
        gone = {where for where, reason in skipped if reason in IMAGE_REASONS}
        if not gone:
            return frozenset()
        return frozenset(i for i, image in enumerate(self.images) if image.where in gone)

    def counts(self, classes: Sequence[str], left_out: frozenset[int] = frozenset()) -> dict:
        """The manifest's ``objects``: per class, images without any, clipped, dropped;
        the images ``left_out`` not counted."""
        kept = [im for i, im in enumerate(self.images) if i not in left_out]
        per_class = Counter(o.text for image in kept for o in image.objects)
        return {
            "total": sum(per_class.values()),
            "per_class": {c: per_class.get(c, 0) for c in classes},
            "images_without_objects": sum(1 for image in kept if not image.objects),
            "clipped": sum(n for i, n in self.clipped.items() if i not in left_out),
            "dropped": len(self.dropped(left_out)),
        }

    def dropped(self, left_out: frozenset[int] = frozenset()) -> list[Problem]:
        """The objects left out, but those of the images ``left_out``."""
        return [
            p
            for k, p in enumerate(self.problems)
            if p.dropped == "object" and self.owner.get(k) not in left_out
        ]


def check_annotations(
    annotations: Annotations,
    root: str,
    *,
    validate: str = "fast",
    workers: int = 1,
    probe: bool = False,
) -> Checked:
    """Normalise every annotated image's objects to its size: boxes with no area inside the
    image (or a negative size) are dropped, others clipped, and so are objects whose mask
    cannot be the image's. Images whose file is missing are left out. The size is the one
    the annotation states; images whose annotation states none are read and probed here
    (unreadable ones left out), and so is every image when ``probe`` (``--strict``), which
    then also leaves out images of another size than annotated. Every problem is
    returned, those the reader found first."""
    classes = annotations.classes
    images = annotations.images
    problems = list(annotations.problems)
    sizes = _file_sizes(root, images)

    def look(i: int) -> ImageInfo | Problem:
        image = images[i]
        try:
            data = read_listed(_location(root, image.path))
            return probe_image(data, path=image.path, validate=validate)[1]
        except FileNotFoundError:
            return Problem(image.where, MISSING_IMAGE, image.path, "image")
        except InvalidImageError as e:
            return Problem(image.where, BAD_IMAGE, f"{image.path}: {e.reason}", "image")
        except OSError as e:
            return Problem(image.where, BAD_IMAGE, f"{image.path}: {e.strerror or e}", "image")

    unsized = [
        i
        for i, image in enumerate(images)
        if (probe or _stated(image) is None) and not isinstance(sizes[i], Problem)
    ]
    with ThreadPoolExecutor(max(1, min(workers, 32))) as pool:
        probed = dict(zip(unsized, pool.map(look, unsized), strict=True))
    kept: list[PlannedImage] = []
    index_of: dict[int, int] = {}
    checked = Checked(kept, None, problems)
    for i, image in enumerate(images):
        size = _size_of(image, probed[i] if i in probed else sizes[i])
        if isinstance(size, Problem):
            problems.append(size)
            continue
        width, height = size
        objects, masks = [], []
        clipped = 0
        for obj in image.objects:
            made = _normalise(obj, width, height, classes)
            if isinstance(made, Problem):
                checked.owner[len(problems)] = len(kept)
                problems.append(made)
                continue
            if annotations.masks:
                wrong = "no mask" if obj.mask is None else obj.mask.problem(width, height)
                if wrong:
                    checked.owner[len(problems)] = len(kept)
                    problems.append(Problem(obj.where, BAD_MASK, wrong))
                    continue
                masks.append(obj.mask)
            normalised, was_clipped = made
            clipped += was_clipped
            objects.append(normalised)
        if clipped:
            checked.clipped[len(kept)] = clipped
        index_of[i] = len(kept)
        kept.append(
            PlannedImage(
                image.path,
                image.source_id,
                tuple(objects),
                sizes[i],  # type: ignore[arg-type]
                image.where,
                width,
                height,
                tuple(masks) if annotations.masks else None,
            )
        )
    if annotations.splits is not None:
        checked.splits = {
            name: [index_of[i] for i in members if i in index_of]
            for name, members in annotations.splits.items()
        }
    return checked


def _size_of(image: AnnotatedImage, found: int | ImageInfo | Problem) -> tuple[int, int] | Problem:
    """(width, height) to normalise ``image``'s objects for: the probed size (which must be
    the annotated one, when stated), else the stated size; or the problem."""
    if isinstance(found, Problem):
        return found
    if isinstance(found, ImageInfo):
        if image.width is not None and (image.width, image.height) != (found.width, found.height):
            return _size_differs(image.where, image.path, found, image.width, image.height)
        return found.width, found.height
    return _stated(image) or (0, 0)  # stated (an image without a size was probed)


def _stated(image: AnnotatedImage) -> tuple[int, int] | None:
    """The size the annotation states, when its objects can be normalised for it (else
    the image is probed, and then a stated size differs)."""
    width, height = image.width, image.height
    if width is None or height is None or width <= 0 or height <= 0:
        return None
    return width, height


def _location(root: str, rel: str) -> str:
    """Where image ``rel`` (relative to ``root``, '/'-separated) is: a local path or a URL."""
    return storage.join(root, rel) if storage.is_url(root) else os.path.join(root, *rel.split("/"))


def _file_sizes(root: str, images: Sequence[AnnotatedImage]) -> list[int | Problem]:
    """Each image's file size, or the problem that leaves it out (missing, not a file):
    a bucket's from one recursive listing (a request per 1,000 objects), a local
    folder's from a ``stat`` each (the folder may hold many more files than annotated)."""
    if not storage.is_url(root):
        return [_local_size(os.path.join(root, *im.path.split("/")), im) for im in images]
    listed: dict[str, int] = {}
    with contextlib.suppress(FileNotFoundError):  # no such folder: every image is missing
        listed = dict(storage.walk_files(root))
    sizes: list[int | Problem] = []
    for image in images:
        size = listed.get(image.path)
        parts = image.path.split("/")
        if size is None and any(p in ("", ".", "..") for p in parts):  # not a listed name
            with contextlib.suppress(FileNotFoundError):
                size = storage.size(storage.join(root, image.path))
        sizes.append(
            size if size is not None else Problem(image.where, MISSING_IMAGE, image.path, "image")
        )
    return sizes


def _local_size(path: str, image: AnnotatedImage) -> int | Problem:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return Problem(image.where, MISSING_IMAGE, image.path, "image")
    except OSError as e:
        return Problem(image.where, BAD_IMAGE, f"{image.path}: {e.strerror or e}", "image")
    if not stat.S_ISREG(st.st_mode):
        return Problem(image.where, BAD_IMAGE, f"{image.path}: not a regular file", "image")
    return st.st_size


def _size_differs(
    where: str, path: str, info: ImageInfo, width: int | None, height: int | None
) -> Problem:
    return Problem(
        where,
        SIZE_DIFFERS,
        f"{path} is {info.width}x{info.height}, annotated {width}x{height}",
        "image",
    )


def _normalise(
    obj: AnnotatedObject, width: int, height: int, classes: Sequence[str]
) -> tuple[DetectionObject, bool] | Problem:
    """The object with its box normalised and clipped to [0, 1], or the problem that drops
    it. (Runs once an object before the plan: written for speed.)"""
    label = obj.label
    if not 1 <= label <= len(classes):
        return Problem(obj.where, UNKNOWN_CATEGORY, f"label {label}")
    box = obj.box
    x0, y0, x1, y1 = box
    if not (isfinite(x0) and isfinite(y0) and isfinite(x1) and isfinite(y1)):
        return Problem(obj.where, MALFORMED, f"box {box}")
    if x1 < x0 or y1 < y0:
        return Problem(obj.where, NEGATIVE, f"box {_shown(box)}")
    if obj.normalised:
        sx = sy = 1.0
    else:
        sx, sy = 1.0 / width, 1.0 / height
        x0, y0, x1, y1 = x0 * sx, y0 * sy, x1 * sx, y1 * sy
    # clipped to [0, 1] as min(1.0, max(0.0, v)) (-0.0 becomes 0.0)
    cx0 = 0.0 if x0 <= 0.0 else 1.0 if x0 >= 1.0 else x0
    cy0 = 0.0 if y0 <= 0.0 else 1.0 if y0 >= 1.0 else y0
    cx1 = 0.0 if x1 <= 0.0 else 1.0 if x1 >= 1.0 else x1
    cy1 = 0.0 if y1 <= 0.0 else 1.0 if y1 >= 1.0 else y1
    if cx1 <= cx0 or cy1 <= cy0:
        return Problem(obj.where, OUTSIDE, f"box {_shown(box)}, image {width}x{height}")
    area = obj.area
    if area is None:
        area = (cx1 - cx0) * width * (cy1 - cy0) * height
    points = obj.keypoints
    if points:
        points = tuple((x * sx, y * sy, v) for x, y, v in points)
    made = DetectionObject(  # positional: the cheapest call
        cx0,
        cy0,
        cx1,
        cy1,
        label,
        classes[label - 1],
        obj.is_crowd,
        float(area),
        obj.difficult,
        obj.truncated,
        obj.pose,
        None,
        points,
    )
    return made, not (cx0 == x0 and cy0 == y0 and cx1 == x1 and cy1 == y1)


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
    """The images of one shard and their checked objects; runs in a worker process.

    Forked workers look the images up in the parent's list (``shared_key``; ``samples``:
    indices into it, see ``inherit.share``); otherwise the shard carries its own
    (``images``).
    """

    root: str
    images: tuple[PlannedImage, ...] = ()
    validate: str = "fast"
    strict: bool = False
    storage: StorageOptions = KEEP
    shared_key: str | None = None
    samples: Sequence[int] = ()  # with shared_key: indices into the shared images, in order

    def __len__(self) -> int:
        return len(self.samples) if self.shared_key is not None else len(self.images)

    def __reduce__(self):
        # a memoryview of the plan's indices cannot be pickled: the worker gets a copy
        samples = self.samples
        if isinstance(samples, memoryview):
            samples = array(samples.format, samples.tobytes())
        state = (self.root, self.images, self.validate, self.strict, self.storage)
        return type(self), (*state, self.shared_key, samples)

    def _planned(self) -> Iterator[PlannedImage]:
        if self.shared_key is None:
            return iter(self.images)
        images: Sequence[PlannedImage] = shared(self.shared_key)
        return (images[i] for i in self.samples)

    def items(self) -> Iterator[Item]:
        """The shard's records. An image missing or unreadable, or of another size than its
        objects were normalised for, is skipped and listed under its annotation, for the
        check's reason (``strict``: the job ends)."""
        remote = storage.is_url(self.root)
        for image in self._planned():
            rel = image.path
            yield self._item(
                image, storage.join(self.root, rel) if remote else f"{self.root}/{rel}"
            )

    def _item(self, image: PlannedImage, full: str) -> Item:
        rel = image.path
        data = b""
        try:
            data = read_listed(full)
            stored, disk = probe_image(data, path=rel, validate=self.validate)
            if (disk.width, disk.height) != (image.width, image.height):
                problem = _size_differs(image.where, rel, disk, image.width, image.height)
                return self._skip(problem, len(data))
            stored, info, resized = transcode(stored, disk, self.storage, path=rel)
            # stored upright (re-encoded): boxes, keypoints and masks turn too
            turn = disk.orientation if disk.orientation != info.orientation else 1
            objects = image.objects
            if turn != 1:
                objects = tuple(_turned(o, turn) for o in objects)
            if image.masks is not None:
                objects = _with_masks(objects, image.masks, disk, turn, info)
        except FileNotFoundError:
            return self._skip(Problem(image.where, MISSING_IMAGE, rel, "image"), 0)
        except InvalidImageError as e:
            return self._skip(Problem(image.where, BAD_IMAGE, f"{rel}: {e.reason}"), len(data))
        except OSError as e:
            detail = f"{storage.redact(full)}: {e.strerror or e}"
            return self._skip(Problem(image.where, BAD_IMAGE, detail), len(data))
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
        return Item.of_image(example, info, len(data), len(stored), resized)

    def _skip(self, problem: Problem, size: int) -> Item:
        """The image left out, listed under its annotation (what :meth:`Checked.left_out`
        looks for)."""
        where = problem.where
        return Item.skip(where, where, problem.reason, problem.detail, size, self.strict)


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
