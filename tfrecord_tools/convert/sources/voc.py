"""Pascal VOC -> annotations (``convert voc``): one XML file per image, pure (no image
touched; ``detection.check_annotations`` does that).

    SRC/
      Annotations/2007_000027.xml   <filename>, <size>, <object>s (name, pose, truncated,
                                    difficult, bndbox xmin ymin xmax ymax in pixels)
      JPEGImages/2007_000027.jpg
      ImageSets/Main/train.txt      optional: the ids of each split (train, val, test;
                                    trainval when there is no train and val)

Classes are the object names found, sorted (label i + 1 is the i-th). Coordinates are
divided by the image size as the detection API's ``create_pascal_tf_record.py`` does.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
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

__all__ = ["read_voc"]

SPLIT_FILES = ("train", "val", "test")


def read_voc(src: str | os.PathLike) -> Annotations:
    """Every ``Annotations/*.xml`` of ``src`` and the splits of ``ImageSets/Main``. An XML
    file that does not parse, or lacks a filename or a box coordinate, is a listed
    :class:`Problem` naming the file and line."""
    root = Path(src)
    folder = root / "Annotations"
    if not folder.is_dir():
        raise ConversionError(f"{root}: no Annotations folder (a Pascal VOC layout has one)")
    problems: list[Problem] = []
    parsed: list[tuple[str, str, ET.Element]] = []
    digest = AnnotationDigest("voc")
    for xml in sorted(folder.glob("*.xml")):
        where = str(xml)
        try:
            node = ET.fromstring(digest.add(xml.name, xml.read_bytes()))
        except ET.ParseError as e:
            line = e.position[0]
            problems.append(Problem(f"{where}:{line}", MALFORMED, str(e), "image"))
            continue
        parsed.append((xml.stem, where, node))
    names = sorted(
        {(o.findtext("name") or "").strip() for _, _, r in parsed for o in r.iter("object")}
    )
    names = [n for n in names if n]
    label_of = {n: i + 1 for i, n in enumerate(names)}
    images: list[AnnotatedImage] = []
    for stem, where, node in parsed:
        made = _image(stem, where, node, label_of)
        if isinstance(made, Problem):
            problems.append(made)
        else:
            images.append(made)
    splits, split_problems = _splits(root, images, digest)
    return Annotations(
        names,
        images,
        problems + split_problems,
        splits,
        {"annotations": str(folder)},
        digest=digest.hexdigest(),
    )


def _image(
    stem: str, where: str, node: ET.Element, label_of: dict[str, int]
) -> AnnotatedImage | Problem:
    filename = (node.findtext("filename") or "").strip() or f"{stem}.jpg"
    try:
        width = int(node.findtext("size/width") or 0) or None
        height = int(node.findtext("size/height") or 0) or None
    except ValueError:
        return Problem(where, MALFORMED, "size is not whole numbers", "image")
    objects = []
    for k, obj in enumerate(node.iter("object")):
        at = f"{where}: object {k}"
        name = (obj.findtext("name") or "").strip()
        try:
            box = tuple(
                float(obj.findtext(f"bndbox/{c}") or "nan")
                for c in ("xmin", "ymin", "xmax", "ymax")
            )
            difficult = int(obj.findtext("difficult") or 0)
            truncated = int(obj.findtext("truncated") or 0)
        except ValueError as e:
            return Problem(at, MALFORMED, str(e), "image")
        if not name:
            return Problem(at, MALFORMED, "an object without a name", "image")
        objects.append(
            AnnotatedObject(
                box,  # type: ignore[arg-type]
                label_of[name],
                at,
                difficult=difficult,
                truncated=truncated,
                pose=(obj.findtext("pose") or "").strip(),
            )
        )
    return AnnotatedImage(f"JPEGImages/{filename}", stem, where, tuple(objects), width, height)


def _splits(
    root: Path, images: list[AnnotatedImage], digest: AnnotationDigest
) -> tuple[dict[str, list[int]] | None, list[Problem]]:
    """The ids in ``ImageSets/Main/{train,val,test}.txt`` (or ``trainval.txt``) as indices
    into ``images``; an id without an annotation is a listed problem. None: no split files."""
    folder = root / "ImageSets" / "Main"
    files = {s: folder / f"{s}.txt" for s in SPLIT_FILES if (folder / f"{s}.txt").is_file()}
    if not any(s in files for s in ("train", "val")) and (folder / "trainval.txt").is_file():
        files = {"trainval": folder / "trainval.txt", **files}
    if not files:
        return None, []
    index = {image.source_id: i for i, image in enumerate(images)}
    splits: dict[str, list[int]] = {}
    problems = []
    for split, path in files.items():
        members = []
        try:
            text = digest.add(f"ImageSets/Main/{path.name}", path.read_bytes()).decode("utf-8")
        except UnicodeDecodeError as e:
            raise ConversionError(f"{path}: not UTF-8 text ({e})") from None
        for line_no, line in enumerate(text.splitlines(), start=1):
            ident = line.split()[0] if line.split() else ""
            if not ident:
                continue
            if ident not in index:
                problems.append(
                    Problem(
                        f"{path}:{line_no}", MISSING_IMAGE, f"no annotation for {ident}", "image"
                    )
                )
                continue
            members.append(index[ident])
        splits[split] = members
    return splits, problems
