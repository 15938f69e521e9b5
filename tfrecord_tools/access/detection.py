"""Detection and segmentation records read back without TensorFlow:
``TFRecordDataSource(..., task="detection")`` gives a dict per record (boxes, classes,
keypoints, and with ``masks=True`` a mask per object), ``task="segmentation"`` the image
and its class mask; :func:`collate_detection` / :func:`collate_segmentation` batch them for
torchvision's models, :func:`pad_detection` into fixed-shape arrays (grain, JAX).

Data flow: record bytes (``source``) -> ``format.detection.parse_detection`` -> image
decoded like a classification record's (``decode``: orientation, resize) and everything
else turned with it: boxes and keypoints by ``format.detection.orient_box`` (the rule of
the converter and of the tf.data reader), masks (PNGs of the stored image's size) as image
pixels, then resized nearest-neighbour to the image's size -> ``{"image", "boxes", ...}``
-> **collate** / **pad** -> batches.
"""

from __future__ import annotations

import io
import operator
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from PIL import Image

from ..dataset.task import TASKS
from ..errors import TFRecordToolsError
from ..format.detection import (
    AREA,
    CLASS_TEXT,
    DIFFICULT,
    IS_CROWD,
    MASK,
    SEGMENTATION,
    DetectionFields,
    orient_box,
    parse_detection,
)
from .decode import decode_fields, orient
from .parse import ImageFields

__all__ = [
    "TASKS",
    "collate_detection",
    "collate_segmentation",
    "decode_detection",
    "decode_segmentation",
    "orient_boxes",
    "orient_points",
    "pad_detection",
    "stack_segmentation",
]

#: What :func:`pad_detection` pads each per-object field with (others: 0), as the tf.data
#: reader's padded batches.
PADDING = {"classes": -1, "texts": ""}
_PNG = b"\x89PNG\r\n\x1a\n"


def decode_detection(
    data: bytes | memoryview,
    *,
    channels: int = 3,
    image_size: tuple[int, int] | None = None,
    orientation: bool = True,
    masks: bool = False,
) -> dict[str, Any]:
    """One detection record as numpy: ``image`` uint8 [H, W, C]; ``boxes`` float32 [N, 4]
    normalised (ymin, xmin, ymax, xmax), the detection API's order, of the image as
    returned (upright, resized: normalised boxes do not change with the size);
    ``classes`` int64 [N] (1-based, labels.txt line + 1); ``texts``, ``is_crowd``,
    ``difficult``, ``area`` and ``filename`` as stored. When the record has keypoints,
    ``keypoints`` float32 [N, K, 3]: (x, y) normalised like the boxes, and the visibility
    (0 not labelled, 1 hidden, 2 seen). ``masks``: also ``masks`` uint8 [N, H, W], each
    object's PNG (of the stored image's size) as stored, 0 / 1 for the detection API's
    masks, turned and resized (nearest) as the image."""
    f = parse_detection(data)
    image, turn = _image(f, channels, image_size, orientation)
    boxes = np.asarray(f.boxes, dtype=np.float32).reshape(-1, 4)
    n = len(boxes)
    optional = {CLASS_TEXT: f.texts, IS_CROWD: f.is_crowd, DIFFICULT: f.difficult, AREA: f.area}
    for key, values in optional.items():
        if values and len(values) != n:  # an optional list is empty or one per object
            raise TFRecordToolsError(f"{n} boxes but {len(values)} values in {key}")
    sample = {
        "image": image,
        "boxes": orient_boxes(boxes, turn),
        "classes": np.asarray(f.labels, dtype=np.int64).reshape(n),
        "texts": f.texts or [""] * n,
        "is_crowd": np.asarray(f.is_crowd or [0] * n, dtype=np.int64),
        "difficult": np.asarray(f.difficult or [0] * n, dtype=np.int64),
        "area": np.asarray(f.area or [0.0] * n, dtype=np.float32),
        "filename": f.filename,
    }
    if f.keypoints:
        sample["keypoints"] = orient_points(_keypoints(f.keypoints, n), turn)
    if masks:
        if len(f.masks) != n:
            raise TFRecordToolsError(
                f"masks=True, but the record has {n} objects and {len(f.masks)} masks under "
                f"{MASK} (a PNG per object); read it without masks"
            )
        stored = _stored_size(f, image, turn, image_size)
        size = image.shape[:2]
        layers = [_layer(png, stored, turn, size, f"mask {i}") for i, png in enumerate(f.masks)]
        sample["masks"] = np.stack(layers) if layers else np.zeros((0, *size), np.uint8)
    return sample


def decode_segmentation(
    data: bytes | memoryview,
    *,
    channels: int = 3,
    image_size: tuple[int, int] | None = None,
    orientation: bool = True,
) -> dict[str, np.ndarray]:
    """One segmentation record (DeepLab's keys) as numpy: ``image`` uint8 [H, W, C] and
    ``mask`` uint8 [H, W], the class mask PNG's values (class ids; DeepLab's 255: ignore),
    turned and resized (nearest) as the image."""
    f = parse_detection(data)
    if f.segmentation is None:
        raise TFRecordToolsError(f"no {SEGMENTATION} (the class mask PNG) in the record")
    image, turn = _image(f, channels, image_size, orientation)
    stored = _stored_size(f, image, turn, image_size)
    return {"image": image, "mask": _layer(f.segmentation, stored, turn, image.shape[:2])}


def orient_boxes(boxes: np.ndarray, orientation: int) -> np.ndarray:
    """Normalised (ymin, xmin, ymax, xmax) boxes of a stored image, turned as
    ``decode.orient`` turns the image for its EXIF ``orientation``
    (``format.detection.orient_box``)."""
    if not 2 <= orientation <= 8 or not len(boxes):
        return boxes
    return np.stack(orient_box(*boxes.T, orientation), axis=1).astype(np.float32)


def orient_points(points: np.ndarray, orientation: int) -> np.ndarray:
    """Keypoints [..., 3] (x, y normalised, visibility) of a stored image, turned as the
    image is for its EXIF ``orientation``: each point as a box of no size."""
    if not 2 <= orientation <= 8 or not points.size:
        return points
    x, y = points[..., 0], points[..., 1]
    y, x, _, _ = orient_box(y, x, y, x, orientation)
    return np.stack([x, y, points[..., 2]], axis=-1).astype(np.float32)


def _image(
    f: DetectionFields, channels: int, image_size: tuple[int, int] | None, orientation: bool
) -> tuple[np.ndarray, int]:
    """The record's image as the classification reader decodes it, and the EXIF
    orientation it was turned by (1: not turned)."""
    fields = ImageFields(
        f.encoded, f.image_format, f.height, f.width, f.channels, -1, f.orientation
    )
    image = decode_fields(fields, channels=channels, image_size=image_size, orientation=orientation)
    return image, f.orientation if orientation and 2 <= f.orientation <= 8 else 1


def _keypoints(points: list[tuple[float, float, int]], n: int) -> np.ndarray:
    """The record's flat (x, y, visibility) list as float32 [N, K, 3]."""
    if (n == 0 and points) or (n and len(points) % n):
        raise TFRecordToolsError(
            f"{len(points)} keypoints for {n} objects: not the same number for every object"
        )
    return np.asarray(points, dtype=np.float32).reshape(n, len(points) // max(n, 1), 3)


def _stored_size(
    f: DetectionFields, image: np.ndarray, turn: int, image_size: tuple[int, int] | None
) -> tuple[int, int]:
    """(height, width) of the image as stored, before any turn or resize: what a mask
    covers."""
    if image_size is None:
        height, width = image.shape[:2]
        return (width, height) if turn >= 5 else (height, width)
    if f.height > 0 and f.width > 0:
        return f.height, f.width
    try:
        with Image.open(io.BytesIO(f.encoded)) as header:  # reads the header only
            return header.height, header.width
    except (OSError, ValueError) as e:
        raise TFRecordToolsError(f"cannot read the image's size: {e}") from None


def _layer(
    png: bytes,
    stored: tuple[int, int],
    turn: int,
    size: tuple[int, int],
    what: str = f"the class mask ({SEGMENTATION})",
) -> np.ndarray:
    """A PNG of the stored image's size as uint8 [H, W] (what ``tf.io.decode_png(png,
    channels=1)`` gives), turned by ``turn`` and resized nearest-neighbour to ``size``.
    Its size is checked from the PNG header before anything is decoded."""
    head = bytes(png[:24])
    if len(head) < 24 or head[:8] != _PNG or head[12:16] != b"IHDR":
        raise TFRecordToolsError(f"{what} is not a PNG")
    height, width = int.from_bytes(head[20:24], "big"), int.from_bytes(head[16:20], "big")
    if (height, width) != stored:
        raise TFRecordToolsError(
            f"{what} is {height}x{width}, the image is {stored[0]}x{stored[1]} (height x "
            "width): a mask covers the whole image"
        )
    fields = ImageFields(png, "png", height, width, 1, -1)
    layer = orient(decode_fields(fields, channels=1, orientation=False), turn)[..., 0]
    if layer.shape != size:
        layer = layer[_picks(size[0], layer.shape[0])][:, _picks(size[1], layer.shape[1])]
    return np.ascontiguousarray(layer)


def _picks(out: int, src: int) -> np.ndarray:
    """The source rows (columns) of a nearest-neighbour resize from ``src`` to ``out``:
    output pixel i takes floor((i + 0.5) * src / out), in float32 as the tf.data reader."""
    where = (np.arange(out, dtype=np.float32) + np.float32(0.5)) * np.float32(src)
    return np.minimum((where / np.float32(out)).astype(np.int64), src - 1)


# --------------------------------------------------------------------------- batches


def collate_detection(
    samples: Sequence[dict[str, Any]], as_tensor: Callable[[Any], Any] | None = None
) -> tuple[list[Any], list[dict[str, Any]]]:
    """A DataLoader ``collate_fn`` for torchvision's detection models: (images float32
    [C, H, W] in [0, 1], targets ``{"boxes": [N, 4] absolute (x1, y1, x2, y2), "labels":
    [N] int64}``, plus ``"masks"`` uint8 [N, H, W] (Mask R-CNN) when the samples have them
    and ``"keypoints"`` float32 [N, K, 3] absolute (x, y, visibility) (Keypoint R-CNN) when
    some have: a sample without keypoints must then have no object), as tensors
    (``as_tensor``, default ``torch.as_tensor``)."""
    if as_tensor is None:
        import torch

        as_tensor = torch.as_tensor
    with_masks = all("masks" in s for s in samples)
    per_object = _keypoints_per_object(samples)
    images, targets = [], []
    for sample in samples:
        image = sample["image"]
        height, width = image.shape[:2]
        ymin, xmin, ymax, xmax = np.moveaxis(sample["boxes"], 1, 0)
        xyxy = np.stack([xmin * width, ymin * height, xmax * width, ymax * height], axis=1)
        images.append(as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1), np.float32) / 255))
        target = {
            "boxes": as_tensor(xyxy.astype(np.float32).reshape(-1, 4)),
            "labels": as_tensor(sample["classes"].astype(np.int64)),
        }
        if with_masks:
            target["masks"] = as_tensor(np.ascontiguousarray(sample["masks"], np.uint8))
        if per_object is not None:
            points = _points_of(sample, per_object) * np.float32([width, height, 1])
            target["keypoints"] = as_tensor(points.astype(np.float32))
        targets.append(target)
    return images, targets


def collate_segmentation(
    samples: Sequence[dict[str, Any]], as_tensor: Callable[[Any], Any] | None = None
) -> tuple[Any, Any]:
    """A DataLoader ``collate_fn`` for torchvision's segmentation models: (images float32
    [B, C, H, W] in [0, 1], masks int64 [B, H, W], the class ids ``CrossEntropyLoss``
    takes; 255 stays 255, its ``ignore_index`` in DeepLab's data), as tensors. The images
    must share a size (``image_size``)."""
    if as_tensor is None:
        import torch

        as_tensor = torch.as_tensor
    batch = stack_segmentation(samples)
    chw = np.ascontiguousarray(batch["image"].transpose(0, 3, 1, 2), np.float32) / 255
    return as_tensor(chw), as_tensor(batch["mask"].astype(np.int64))


def stack_segmentation(samples: Sequence[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Segmentation samples as ``{"image": uint8 [B, H, W, C], "mask": uint8 [B, H, W]}``
    (grain's default ``batch`` gives the same; this one names two images that differ in
    size)."""
    if not samples:
        raise TFRecordToolsError("no samples to batch")
    return {key: _stacked(samples, key) for key in ("image", "mask")}


def pad_detection(
    samples: Sequence[dict[str, Any]], *, num_objects: int | None = None
) -> dict[str, np.ndarray]:
    """Detection samples as one dict of arrays, for grain's ``batch(batch_fn=...)`` and
    fixed-shape (JAX) training: ``image`` [B, H, W, C] (the images must share a size:
    ``image_size``), per-object fields padded to ``num_objects`` rows (default: the most
    objects of the batch), ``classes`` with -1 and the rest with 0 (``texts`` with ""), and
    ``num_objects`` int32 [B] saying how many rows of each are real. ``filename`` [B]. A
    sample with more than ``num_objects`` objects is an error (nothing is dropped)."""
    if not samples:
        raise TFRecordToolsError("no samples to batch")
    counts = np.array([len(s["classes"]) for s in samples], np.int32)
    rows = int(counts.max()) if num_objects is None else operator.index(num_objects)
    if rows < 0:
        raise TFRecordToolsError(f"num_objects must be at least 0, got {num_objects}")
    over = np.flatnonzero(counts > rows)
    if len(over):
        i = int(over[0])
        raise TFRecordToolsError(
            f"{_name(samples[i], i)} has {counts[i]} objects, more than num_objects={rows}: "
            "raise num_objects (objects are never dropped)"
        )
    images = _stacked(samples, "image")
    per_object = _keypoints_per_object(samples)
    fields: dict[str, tuple[list[np.ndarray], tuple[int, ...], Any]] = {
        "boxes": ([s["boxes"] for s in samples], (4,), np.float32),
        "classes": ([s["classes"] for s in samples], (), np.int64),
        "texts": ([np.asarray(s["texts"], str) for s in samples], (), str),
        "is_crowd": ([s["is_crowd"] for s in samples], (), np.int64),
        "difficult": ([s["difficult"] for s in samples], (), np.int64),
        "area": ([s["area"] for s in samples], (), np.float32),
    }
    if all("masks" in s for s in samples):
        fields["masks"] = ([s["masks"] for s in samples], images.shape[1:3], np.uint8)
    if per_object is not None:
        points = [_points_of(s, per_object) for s in samples]
        fields["keypoints"] = (points, (per_object, 3), np.float32)
    batch = {"image": images}
    for key, (values, tail, dtype) in fields.items():
        if dtype is str:  # wide enough for the longest name
            dtype = max((v.dtype for v in values), key=lambda d: d.itemsize)
        out = np.full((len(samples), rows, *tail), PADDING.get(key, 0), dtype)
        for i, value in enumerate(values):
            out[i, : len(value)] = value
        batch[key] = out
    batch["num_objects"] = counts
    batch["filename"] = np.asarray([s["filename"] for s in samples], str)
    return batch


def _keypoints_per_object(samples: Sequence[dict[str, Any]]) -> int | None:
    """K of the samples' keypoints [N, K, 3], when some have keypoints; samples with
    keypoints must agree on it."""
    ks = {s["keypoints"].shape[1] for s in samples if "keypoints" in s}
    if len(ks) > 1:
        raise TFRecordToolsError(
            f"samples with {sorted(ks)} keypoints per object cannot be batched together"
        )
    return ks.pop() if ks else None


def _points_of(sample: dict[str, Any], per_object: int) -> np.ndarray:
    """A sample's keypoints [N, K, 3]; a sample without any must have no object."""
    if "keypoints" in sample:
        return sample["keypoints"]
    n = len(sample["classes"])
    if n:
        raise TFRecordToolsError(
            f"{_name(sample)} has {n} objects and no keypoints, the others {per_object} "
            "per object: they cannot be batched together"
        )
    return np.zeros((0, per_object, 3), np.float32)


def _stacked(samples: Sequence[dict[str, Any]], key: str) -> np.ndarray:
    """``samples``' ``key`` arrays stacked; ones of different shapes are an error naming two."""
    arrays = [s[key] for s in samples]
    odd = next((i for i, a in enumerate(arrays) if a.shape != arrays[0].shape), None)
    if odd is not None:
        raise TFRecordToolsError(
            f"images of different sizes cannot be batched: {_name(samples[0], 0)} is "
            f"{'x'.join(map(str, arrays[0].shape[:2]))}, {_name(samples[odd], odd)} is "
            f"{'x'.join(map(str, arrays[odd].shape[:2]))}; pass image_size=(HEIGHT, WIDTH) "
            "to resize every image to one size"
        )
    return np.stack(arrays)


def _name(sample: dict[str, Any], i: int | None = None) -> str:
    name = sample.get("filename") or ""
    return name if name else ("a sample" if i is None else f"sample {i}")
