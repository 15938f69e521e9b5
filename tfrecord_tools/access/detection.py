"""Detection records read back without TensorFlow: ``TFRecordDataSource(..., task=
"detection")`` gives a dict per record, and :func:`collate_detection` batches them for
torchvision's detection models.

Data flow: record bytes (``source``) -> ``format.detection.parse_detection`` -> image
decoded like a classification record's (``decode``: orientation, resize) and its boxes
turned with it -> ``{"image", "boxes", "classes", ...}`` -> **collate_detection** ->
(images, targets with absolute xyxy boxes).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..format.detection import orient_box, parse_detection
from .decode import decode_fields
from .parse import ImageFields

__all__ = ["collate_detection", "decode_detection", "orient_boxes"]

TASKS = ("classification", "detection")


def decode_detection(
    data: bytes | memoryview,
    *,
    channels: int = 3,
    image_size: tuple[int, int] | None = None,
    orientation: bool = True,
) -> dict[str, Any]:
    """One detection record as numpy: ``image`` uint8 [H, W, C]; ``boxes`` float32 [N, 4]
    normalised (ymin, xmin, ymax, xmax), the detection API's order, of the image as
    returned (upright, resized: normalised boxes do not change with the size);
    ``classes`` int64 [N] (1-based, labels.txt line + 1); ``texts``, ``is_crowd``,
    ``difficult``, ``area`` and ``filename`` as stored."""
    f = parse_detection(data)
    fields = ImageFields(
        f.encoded, f.image_format, f.height, f.width, f.channels, -1, f.orientation
    )
    image = decode_fields(fields, channels=channels, image_size=image_size, orientation=orientation)
    boxes = np.asarray(f.boxes, dtype=np.float32).reshape(-1, 4)
    if orientation and 2 <= f.orientation <= 8:
        boxes = orient_boxes(boxes, f.orientation)
    n = len(boxes)
    return {
        "image": image,
        "boxes": boxes,
        "classes": np.asarray(f.labels, dtype=np.int64).reshape(n),
        "texts": f.texts,
        "is_crowd": np.asarray(f.is_crowd or [0] * n, dtype=np.int64),
        "difficult": np.asarray(f.difficult or [0] * n, dtype=np.int64),
        "area": np.asarray(f.area or [0.0] * n, dtype=np.float32),
        "filename": f.filename,
    }


def orient_boxes(boxes: np.ndarray, orientation: int) -> np.ndarray:
    """Normalised (ymin, xmin, ymax, xmax) boxes of a stored image, turned as
    ``decode.orient`` turns the image for its EXIF ``orientation``
    (``format.detection.orient_box``)."""
    if not 2 <= orientation <= 8 or not len(boxes):
        return boxes
    return np.stack(orient_box(*boxes.T, orientation), axis=1).astype(np.float32)


def collate_detection(
    samples: Sequence[dict[str, Any]], as_tensor: Callable[[Any], Any] | None = None
) -> tuple[list[Any], list[dict[str, Any]]]:
    """A DataLoader ``collate_fn`` for torchvision's detection models: (images float32
    [C, H, W] in [0, 1], targets ``{"boxes": [N, 4] absolute (x1, y1, x2, y2), "labels":
    [N] int64}``), as tensors (``as_tensor``, default ``torch.as_tensor``)."""
    if as_tensor is None:
        import torch

        as_tensor = torch.as_tensor
    images, targets = [], []
    for sample in samples:
        image = sample["image"]
        height, width = image.shape[:2]
        ymin, xmin, ymax, xmax = np.moveaxis(sample["boxes"], 1, 0)
        xyxy = np.stack([xmin * width, ymin * height, xmax * width, ymax * height], axis=1)
        images.append(as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1), np.float32) / 255))
        targets.append(
            {
                "boxes": as_tensor(xyxy.astype(np.float32).reshape(-1, 4)),
                "labels": as_tensor(sample["classes"].astype(np.int64)),
            }
        )
    return images, targets
