"""Public entry points of the detection sources: ``convert_coco``, ``convert_voc``,
``convert_yolo``, ``convert_csv``. Each reads its annotations (``coco``, ``voc``, ``yolo``,
``csv_source``), checks them against the images (``detection``), and hands the checked
images to the steps every conversion shares (``steps.run``: plan, splits, workers, engines,
resume, manifest, skip list), as ``convert images`` does.

The manifest gains ``task`` ("detection"), the detection ``features``, ``objects`` (per
class, images without objects, boxes clipped and dropped), ``source.dropped_objects``
(every box left out, with its file and line) and ``label_map``; ``label_map.pbtxt`` is
written beside ``labels.txt``. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from ... import storage
from ...errors import ConversionError
from ...format.detection import DETECTION_FEATURES, label_map_pbtxt
from ...storage import time_limit
from .. import DEFAULT_QUALITY, VALIDATE_MODES, outdir, plan, steps
from ..options import ShardingOptions, choice, dataset_name, flag, location
from ..summary import ConversionSummary
from .detection import Annotations, DetectionShard, check_annotations, refuse
from .transcode import StorageOptions

__all__ = ["LABEL_MAP", "convert_coco", "convert_csv", "convert_voc", "convert_yolo"]

LABEL_MAP = "label_map.pbtxt"
#: ``--encoding`` choices of the detection sources (``auto`` is for classification folders).
DETECTION_ENCODINGS = ("keep", "png", "raw")


def convert_coco(src, out, *, annotations, **options) -> ConversionSummary:
    """COCO: ``src`` the image folder, ``annotations`` an instances JSON. Options as
    :func:`~tfrecord_tools.convert.api.convert_image_folder` (``split``, ``shards``,
    ``workers``, ``strict``, ``max_size``, ``encoding`` ...)."""
    from .coco import read_coco

    return _convert("coco", src, out, lambda: read_coco(annotations), **options)


def convert_voc(src, out, **options) -> ConversionSummary:
    """Pascal VOC: ``src`` holds Annotations/, JPEGImages/ and optionally ImageSets/Main/
    (its splits, used unless ``split`` is given)."""
    from .voc import read_voc

    return _convert("voc", src, out, lambda: read_voc(src), **options)


def convert_yolo(src, out, **options) -> ConversionSummary:
    """YOLO: ``src`` holds images/, labels/ and data.yaml or classes.txt; images/train,
    images/val... are splits (unless ``split`` is given)."""
    from .yolo import read_yolo

    return _convert("yolo", src, out, lambda: read_yolo(src), **options)


def convert_csv(src, out, *, annotations, **options) -> ConversionSummary:
    """One box a row: ``annotations`` a CSV (``filename,xmin,ymin,xmax,ymax,label``, pixels)
    or JSON Lines file, ``src`` the image folder its file names are relative to."""
    from .csv_source import read_box_table

    return _convert("csv", src, out, lambda: read_box_table(annotations), **options)


def _convert(
    kind: str,
    src: str | os.PathLike,
    out: str | os.PathLike,
    read: Callable[[], Annotations],
    *,
    name: str | None = None,
    split: str | Mapping[str, float] | None = None,
    shards: int | None = None,
    shard_size: int | str | None = None,
    workers: int | None = None,
    compression: str = "none",
    seed: int = 0,
    strict: bool = False,
    validate: str = "fast",
    max_size: int | None = None,
    quality: int = DEFAULT_QUALITY,
    encoding: str = "keep",
    quiet: bool = False,
    overwrite: bool = False,
    allow_nonempty_out: bool = False,
    storage_timeout: float | None = None,
    engine: str = "local",
    runner: str | None = None,
    pipeline_args: Sequence[str] = (),
) -> ConversionSummary:
    opts = ShardingOptions.among(locals())
    location("src (SRC)", src)
    location("out (OUT)", out)
    if name is not None:
        dataset_name(name)
    choice("validate", validate, VALIDATE_MODES)
    choice("encoding", encoding, DETECTION_ENCODINGS)
    flag("strict", strict)
    stored = StorageOptions(max_size=max_size, quality=quality, encoding=encoding)
    fractions = plan.parse_splits(split) if split is not None else None
    root = os.fspath(src) if storage.is_url(src) else str(Path(src).resolve())
    with time_limit(opts.storage_timeout):
        annotations = read()
        checked = check_annotations(annotations, root, validate=validate, workers=opts.num_workers)
        if strict:
            refuse(checked.problems, storage.redact(root))
        images = checked.images
        if not images:
            raise ConversionError(f"{storage.redact(root)}: no annotated image to convert")
        classes = annotations.classes
        # the plan stratifies by a label: an image's first object's (0: none)
        labels = [image.objects[0].label if image.objects else 0 for image in images]
        splits = checked.splits if fractions is None and checked.splits else fractions
        if splits is None:
            splits = {"train": 1.0}
        name = name or _default_name(root)
        dropped_images = [(p.where, p.reason) for p in checked.problems if p.dropped == "image"]
        dropped_objects = [
            {"path": p.where, "reason": p.reason, **({"detail": p.detail} if p.detail else {})}
            for p in checked.problems
            if p.dropped == "object"
        ]
        digest = hashlib.sha256(repr([(i.path, i.objects) for i in images]).encode()).hexdigest()
        identity = {
            "kind": kind,
            "root": storage.redact(root),
            "annotations": digest,
            "files": [(i.path, i.size) for i in images],
            "validate": validate,
            "strict": strict,
            **stored.identity(),
        }

        def make_source(p: plan.ShardPlan) -> DetectionShard:
            return DetectionShard(
                root, tuple(images[i] for i in p.samples), validate, strict, stored
            )

        summary = steps.run(
            out=outdir.location(out),
            name=name,
            classes=classes,
            labels=labels,
            sizes=[i.size for i in images],
            splits=splits,
            make_source=make_source,
            opts=opts,
            identity=identity,
            source_json={
                "kind": kind,
                "path": storage.redact(root),
                **annotations.source,
                "dropped_objects": dropped_objects,
            },
            pre_skipped=dropped_images,
            extra={
                "task": "detection",
                "features": DETECTION_FEATURES,
                "objects": checked.counts(classes),
                "label_map": LABEL_MAP,
                "validate": validate,
                **({"encoding": encoding} if encoding != "keep" else {}),
            },
            desc=name,
            max_size=None if max_size is None else {"size": max_size, "quality": quality},
            in_process=outdir.per_process(src, out),
            # label_map.pbtxt beside labels.txt, before the manifest; no TFDS metadata: it
            # would describe image/class/label, which detection records do not have
            companions={LABEL_MAP: label_map_pbtxt(classes)},
            tfds=False,
        )
    return summary


def _default_name(root: str) -> str:
    base = storage.basename(root) if storage.is_url(root) else Path(root).name
    name = "".join(c if c.isalnum() or c in "_." else "_" for c in base)
    return name.strip("_.") or "dataset"
