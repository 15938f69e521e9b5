"""COCO instances JSON -> annotations (``convert coco``): the first stage of a COCO
conversion, pure (one JSON read, no image touched; ``detection.check_annotations`` does
that).

    SRC/                         the image folder: each image's ``file_name`` below it
      000000000139.jpg
    instances_train2017.json     --annotations FILE: "images", "annotations", "categories"

Category ids (not contiguous in COCO) become labels 1..K in the order of their ids; the
mapping is kept (the manifest's ``source.category_ids``). Boxes are ``[x, y, width,
height]`` in pixels; ``iscrowd``, ``area`` and ``keypoints`` (``[x, y, v] * k``) are kept.
"""

from __future__ import annotations

import json
import os

from ... import storage
from ...errors import ConversionError
from .detection import (
    MALFORMED,
    MISSING_IMAGE,
    NEGATIVE,
    UNKNOWN_CATEGORY,
    AnnotatedImage,
    AnnotatedObject,
    Annotations,
    Problem,
)

__all__ = ["read_coco"]


def read_coco(annotations: str | os.PathLike) -> Annotations:
    """The images, categories and objects of a COCO instances file. A file that is not
    such JSON is a :class:`ConversionError`; a bad annotation inside it is a listed
    :class:`Problem` naming ``annotations[i]``."""
    shown = storage.redact(annotations) if storage.is_url(annotations) else str(annotations)
    try:
        data = json.loads(storage.read_text(annotations))
    except FileNotFoundError:
        raise ConversionError(f"{shown}: no such annotation file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ConversionError(f"{shown}: not valid JSON ({e})") from None
    if not isinstance(data, dict) or not all(
        isinstance(data.get(k), list) for k in ("images", "categories")
    ):
        raise ConversionError(
            f'{shown}: not a COCO instances file (expected "images" and "categories" lists)'
        )
    categories = []
    for i, c in enumerate(data["categories"]):
        if not isinstance(c, dict) or not isinstance(c.get("id"), int) or "name" not in c:
            raise ConversionError(f"{shown}: categories[{i}] needs an integer id and a name")
        categories.append((c["id"], str(c["name"])))
    categories.sort()
    label_of = {cid: i + 1 for i, (cid, _) in enumerate(categories)}
    problems: list[Problem] = []
    images: dict[int, dict] = {}
    for i, im in enumerate(data["images"]):
        if not isinstance(im, dict) or "id" not in im or not isinstance(im.get("file_name"), str):
            problems.append(
                Problem(f"{shown}: images[{i}]", MALFORMED, "no id or file_name", "image")
            )
            continue
        images[im["id"]] = im
    objects: dict[int, list[AnnotatedObject]] = {i: [] for i in images}
    for i, ann in enumerate(data.get("annotations") or []):
        where = f"{shown}: annotations[{i}]"
        made = _object(ann, where, label_of)
        if isinstance(made, Problem):
            problems.append(made)
            continue
        image_id, obj = made
        if image_id not in objects:
            problems.append(Problem(where, MISSING_IMAGE, f"image_id {image_id} is not in images"))
            continue
        objects[image_id].append(obj)
    listed = [
        AnnotatedImage(
            path=im["file_name"],
            source_id=str(image_id),
            where=f"{shown}: image {image_id}",
            objects=tuple(objects[image_id]),
            width=_int_or_none(im.get("width")),
            height=_int_or_none(im.get("height")),
        )
        for image_id, im in images.items()
    ]
    return Annotations(
        classes=[name for _, name in categories],
        images=listed,
        problems=problems,
        source={"annotations": shown, "category_ids": {str(c): label_of[c] for c, _ in categories}},
    )


def _int_or_none(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _object(ann, where: str, label_of: dict[int, int]) -> tuple[int, AnnotatedObject] | Problem:
    if not isinstance(ann, dict) or "image_id" not in ann:
        return Problem(where, MALFORMED, "not an object with an image_id")
    bbox = ann.get("bbox")
    if not (
        isinstance(bbox, list)
        and len(bbox) == 4
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in bbox)
    ):
        return Problem(where, MALFORMED, f"bbox {bbox!r} is not [x, y, width, height]")
    category = ann.get("category_id")
    if category not in label_of:
        return Problem(where, UNKNOWN_CATEGORY, f"category_id {category!r}")
    x, y, w, h = (float(v) for v in bbox)
    if w < 0 or h < 0:
        return Problem(where, NEGATIVE, f"bbox {bbox}")
    flat = ann.get("keypoints") or []
    points = tuple(
        (float(flat[k]), float(flat[k + 1]), int(flat[k + 2])) for k in range(0, len(flat) - 2, 3)
    )
    area = ann.get("area")
    return ann["image_id"], AnnotatedObject(
        (x, y, x + w, y + h),
        label_of[category],
        where,
        is_crowd=int(bool(ann.get("iscrowd", 0))),
        area=float(area) if isinstance(area, (int, float)) else None,
        keypoints=points,
    )
