"""YOLO -> annotations (``convert yolo``): a label file per image, pure (no image touched;
``detection.check_annotations`` does that).

    SRC/
      data.yaml            names: [cat, dog] (or {0: cat, 1: dog}); or classes.txt, a name a line
      images/a.jpg         or images/train/a.jpg, images/val/b.jpg: those folders are splits
      labels/a.txt         one object a line: class cx cy w h, normalised to [0, 1]

An image without a label file has no objects (YOLO's background images); a label file
without its image is a listed problem. YOLO class c is label c + 1.
"""

from __future__ import annotations

import os
from pathlib import Path

from ...errors import ConversionError
from .detection import (
    MALFORMED,
    MISSING_IMAGE,
    AnnotatedImage,
    AnnotatedObject,
    AnnotationDigest,
    Annotations,
    Problem,
)

__all__ = ["read_yolo"]

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
SPLITS = ("train", "val", "valid", "validation", "test")


def read_yolo(src: str | os.PathLike) -> Annotations:
    root = Path(src)
    for needed in ("images", "labels"):
        if not (root / needed).is_dir():
            raise ConversionError(
                f"{root}: no {needed} folder (a YOLO layout has images/ and labels/)"
            )
    digest = AnnotationDigest("yolo")
    classes = _class_names(root, digest)
    images_dir, labels_dir = root / "images", root / "labels"
    pictures = sorted(
        p for p in images_dir.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )
    by_stem = {p.relative_to(images_dir).with_suffix("").as_posix(): p for p in pictures}
    problems: list[Problem] = []
    for label_file in sorted(labels_dir.rglob("*.txt")):
        stem = label_file.relative_to(labels_dir).with_suffix("").as_posix()
        if stem not in by_stem:
            problems.append(
                Problem(str(label_file), MISSING_IMAGE, f"no image images/{stem}.*", "image")
            )
    images: list[AnnotatedImage] = []
    splits: dict[str, list[int]] = {}
    for stem, picture in by_stem.items():
        rel = picture.relative_to(root).as_posix()
        label_file = labels_dir / f"{stem}.txt"
        objects: list[AnnotatedObject] | None = []
        if label_file.is_file():
            objects = _objects(label_file, problems, digest, f"labels/{stem}.txt")
            if objects is None:  # its labels unreadable: not an image without objects
                continue
        top = stem.split("/")[0] if "/" in stem else None
        if top in SPLITS:
            splits.setdefault(top, []).append(len(images))
        images.append(AnnotatedImage(rel, stem, str(label_file), tuple(objects)))
    fixed = splits if splits and sum(map(len, splits.values())) == len(images) else None
    source = {"annotations": str(labels_dir)}
    return Annotations(classes, images, problems, fixed, source, digest=digest.hexdigest())


def _objects(
    label_file: Path, problems: list[Problem], digest: AnnotationDigest, name: str
) -> list[AnnotatedObject] | None:
    """The objects of a label file (None: it is not text, a listed problem)."""
    objects = []
    try:
        text = digest.add(name, label_file.read_bytes()).decode("utf-8")
    except UnicodeDecodeError as e:
        problems.append(Problem(str(label_file), MALFORMED, f"not UTF-8 text ({e})", "image"))
        return None
    for line_no, line in enumerate(text.splitlines(), start=1):
        where = f"{label_file}:{line_no}"
        fields = line.split()
        if not fields:
            continue
        try:
            if len(fields) != 5:
                raise ValueError(f"{len(fields)} fields, expected class cx cy w h")
            category = int(fields[0])
            cx, cy, w, h = (float(v) for v in fields[1:])
        except ValueError as e:
            problems.append(Problem(where, MALFORMED, str(e)))
            continue
        box = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
        if w < 0 or h < 0:
            box = (cx, cy, cx + w, cy + h)  # flagged by the check: a negative size
        objects.append(AnnotatedObject(box, category + 1, where, normalised=True))
    return objects


def _class_names(root: Path, digest: AnnotationDigest) -> list[str]:
    """``data.yaml``'s ``names`` (a list, or a mapping from index), else ``classes.txt``."""
    yaml_file = next((root / n for n in ("data.yaml", "data.yml") if (root / n).is_file()), None)
    if yaml_file is not None:
        import yaml

        text = _text(yaml_file, digest)
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ConversionError(f"{yaml_file}: not valid YAML ({e})") from None
        names = data.get("names") if isinstance(data, dict) else None
        if isinstance(names, dict):
            try:
                ordered = sorted((int(k), str(v)) for k, v in names.items())
            except ValueError:
                ordered = []
            if [k for k, _ in ordered] == list(range(len(ordered))) and ordered:
                return [v for _, v in ordered]
        elif isinstance(names, list) and names:
            return [str(n) for n in names]
        raise ConversionError(f"{yaml_file}: needs names, a list or {{0: name, 1: name...}}")
    classes_txt = root / "classes.txt"
    if classes_txt.is_file():
        names = [n.strip() for n in _text(classes_txt, digest).splitlines()]
        if any(names):
            return [n for n in names if n]
    raise ConversionError(f"{root}: no class names: give data.yaml (names: [...]) or classes.txt")


def _text(path: Path, digest: AnnotationDigest) -> str:
    try:
        return digest.add(path.name, path.read_bytes()).decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConversionError(f"{path}: not UTF-8 text ({e})") from None
