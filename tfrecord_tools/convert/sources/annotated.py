"""Public entry points of the annotated sources: ``convert_coco``, ``convert_voc``,
``convert_yolo``, ``convert_csv`` (detection) and ``convert_segmentation``. Each reads its
annotations (``coco``, ``voc``, ``yolo``, ``csv_source``; ``segmentation``'s image / mask
pairs), checks them against the images (``detection``, ``segmentation``), and hands the
checked images to the steps every conversion shares (``steps.run``: plan, splits, workers,
engines, resume, manifest, skip list), as ``convert images`` does.

A detection manifest gains ``task`` ("detection"), the detection ``features``, ``objects``
(per class, images without objects, boxes clipped and dropped), ``source.dropped_objects``
(every box left out, with its file and line) and ``label_map``; ``label_map.pbtxt`` is
written beside ``labels.txt``. A segmentation manifest gains ``task`` ("segmentation"),
its ``features`` and ``segmentation`` (the ignore label, images per class). Nothing here
imports TensorFlow.
"""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ... import storage
from ...errors import ConversionError
from ...format import detection as det
from ...storage import time_limit
from .. import DEFAULT_QUALITY, VALIDATE_MODES, inherit, outdir, plan, steps
from ..options import ShardingOptions, choice, dataset_name, flag, location
from ..summary import ConversionSummary
from .detection import Annotations, DetectionShard, Problem, check_annotations, refuse
from .transcode import StorageOptions

if TYPE_CHECKING:
    from ..jobs import ShardResult

__all__ = [
    "LABEL_MAP",
    "convert_coco",
    "convert_csv",
    "convert_segmentation",
    "convert_voc",
    "convert_yolo",
]

LABEL_MAP = "label_map.pbtxt"
#: ``--encoding`` choices of the detection sources (``auto`` is for classification folders).
DETECTION_ENCODINGS = ("keep", "png", "raw")


def convert_coco(src, out, *, annotations, masks=False, **options) -> ConversionSummary:
    """COCO: ``src`` the image folder, ``annotations`` an instances JSON, or one a split
    (``{"train": FILE, "val": FILE}``). ``masks``: store each object's mask (its polygons
    or run lengths) as a PNG under ``image/object/mask``. Options as
    :func:`~tfrecord_tools.convert.api.convert_image_folder` (``split``, ``shards``,
    ``workers``, ``strict``, ``max_size``, ``encoding`` ...)."""
    from .coco import read_coco

    flag("masks", masks)
    if not isinstance(annotations, Mapping):
        location("annotations (--annotations)", annotations)
    return _convert(
        "coco", src, out, _detection(lambda: read_coco(annotations, masks=masks)), **options
    )


def convert_voc(src, out, **options) -> ConversionSummary:
    """Pascal VOC: ``src`` holds Annotations/, JPEGImages/ and optionally ImageSets/Main/
    (its splits, used unless ``split`` is given)."""
    from .voc import read_voc

    return _convert("voc", src, out, _detection(lambda: read_voc(src)), **options)


def convert_yolo(src, out, **options) -> ConversionSummary:
    """YOLO: ``src`` holds images/, labels/ and data.yaml or classes.txt; images/train,
    images/val... are splits (unless ``split`` is given)."""
    from .yolo import read_yolo

    return _convert("yolo", src, out, _detection(lambda: read_yolo(src)), **options)


def convert_csv(src, out, *, annotations, **options) -> ConversionSummary:
    """One box a row: ``annotations`` a CSV (``filename,xmin,ymin,xmax,ymax,label``, pixels)
    or JSON Lines file, ``src`` the image folder its file names are relative to."""
    from .csv_source import read_box_table

    return _convert("csv", src, out, _detection(lambda: read_box_table(annotations)), **options)


def convert_segmentation(src, out, *, masks, classes=None, **options) -> ConversionSummary:
    """Semantic segmentation: ``src`` an image folder, ``masks`` a folder of PNGs of the
    same paths and stems holding each pixel's class id; ``classes`` a text file (or list)
    naming class id i on line i + 1 (default: ``class_0`` up to the largest id seen, 255
    aside: DeepLab's ignore label). Options as ``convert_coco``'s."""
    from . import segmentation as seg

    location("masks (--masks)", masks)

    def prepare(how: _Settings) -> _Prepared:
        names = seg.read_class_names(classes)
        mask_root = _root(masks)
        pairs, problems = seg.pair_files(how.root, mask_root)
        checked = seg.check_pairs(
            pairs,
            how.root,
            mask_root,
            named=None if names is None else len(names),
            validate=how.validate,
            workers=how.workers,
        )
        found = checked.pairs
        found_classes = seg.class_names(names, checked.ids)
        named = names is not None and len(names) > seg.IGNORE
        source = {"masks": storage.redact(mask_root)}
        if classes is not None and not isinstance(classes, (list, tuple)):
            source["classes"] = storage.redact(classes) if storage.is_url(classes) else str(classes)

        def make_source(p: plan.ShardPlan) -> seg.SegmentationShard:
            chosen = tuple(found[i] for i in p.samples)
            return seg.SegmentationShard(
                how.root, mask_root, chosen, how.validate, how.strict, how.stored
            )

        return _Prepared(
            classes=found_classes,
            sizes=[pair.size for pair in found],
            labels=[0] * len(found),  # nothing to stratify by: --split cuts at random
            problems=problems + checked.problems,
            identity={"masks": storage.redact(mask_root), "classes": found_classes},
            files=[(pair.image, pair.size, pair.mask, pair.mask_size) for pair in found],
            source=source,
            extra={
                "task": "segmentation",
                "features": det.SEGMENTATION_FEATURES,
                "segmentation": {
                    "ignore_label": None if named else seg.IGNORE,
                    "images_per_class": seg.images_per_class(found_classes, checked.ids),
                },
            },
            make_source=make_source,
        )

    return _convert("segmentation", src, out, prepare, **options)


@dataclass(frozen=True)
class _Settings:
    """How a source's images are checked and stored (the options every source takes), and
    how to offer forked workers a large input (``ShardingOptions.share``)."""

    root: str  # SRC, resolved
    validate: str
    strict: bool
    stored: StorageOptions
    workers: int
    share: Callable[[str, Any], bool] = lambda key, value: False


@dataclass
class _Prepared:
    """What a source hands the shared steps: its images (their sizes, a label each to
    stratify by, fixed splits), the problems found, what identifies it for resume, what
    its manifest adds, and the maker of a shard's source."""

    classes: list[str]
    sizes: list[int]
    labels: list[int]
    problems: list[Problem]
    identity: dict[str, Any]
    files: list[tuple]  # (path, size ...) of each file read: what resume compares
    source: dict[str, Any]
    extra: dict[str, Any]
    make_source: Callable[[plan.ShardPlan], Any]
    splits: dict[str, list[int]] | None = None
    companions: dict[str, str] = field(default_factory=dict)
    #: TFDS metadata beside the shards (``format.tfds``: detection datasets have it; class
    #: masks have no TFDS feature that reads them as stored)
    tfds: bool = False
    #: what the manifest's source and extra keys become once the shards are written (given
    #: their results: what they skipped), see ``steps.run``
    gather: Callable[[Sequence[ShardResult]], tuple[dict, dict]] | None = None
    shared: tuple[str, ...] = ()  # keys given to ``_Settings.share``, let go at the end


def _detection(read: Callable[[], Annotations]):
    """The preparation of a detection source: its annotations read and checked (images
    probed here only where needed: see ``detection.check_annotations``)."""

    def prepare(how: _Settings) -> _Prepared:
        annotations = read()
        checked = check_annotations(
            annotations, how.root, validate=how.validate, workers=how.workers, probe=how.strict
        )
        images = checked.images
        classes = annotations.classes
        # the annotation files' bytes and the reader's options (masks too): a changed file
        # is another conversion; the images are compared by path and size (``files``)
        identity: dict[str, Any] = {"annotations": annotations.digest}
        features = dict(det.DETECTION_FEATURES)
        if annotations.masks:
            features[det.MASK] = det.OPTIONAL_DETECTION_FEATURES[det.MASK]
        if any(o.keypoints for image in images for o in image.objects):
            for key in (det.KEYPOINT_X, det.KEYPOINT_Y, det.KEYPOINT_VISIBILITY):
                features[key] = det.OPTIONAL_DETECTION_FEATURES[key]
        shared_key = f"detection-{id(images)}"
        inherited = how.share(shared_key, images)  # forked workers look their images up in it

        def make_source(p: plan.ShardPlan) -> DetectionShard:
            if inherited:
                return DetectionShard(
                    how.root, (), how.validate, how.strict, how.stored, shared_key, p.samples
                )
            chosen = tuple(images[i] for i in p.samples)
            return DetectionShard(how.root, chosen, how.validate, how.strict, how.stored)

        def figures(left_out: frozenset[int] = frozenset()) -> tuple[dict, dict]:
            """The manifest's ``source.dropped_objects`` and ``objects``, without the images
            ``left_out``."""
            dropped_objects = [
                {"path": p.where, "reason": p.reason, **({"detail": p.detail} if p.detail else {})}
                for p in checked.dropped(left_out)
            ]
            return {"dropped_objects": dropped_objects}, {
                "objects": checked.counts(classes, left_out)
            }

        def gather(results: Sequence[ShardResult]) -> tuple[dict, dict]:
            """The figures again, without the images the shards skipped (none: as they were)."""
            left_out = checked.left_out([s for r in results for s in r.skipped])
            return figures(left_out) if left_out else ({}, {})

        source, objects = figures()
        return _Prepared(
            classes=classes,
            sizes=[i.size for i in images],
            # the plan stratifies by a label: an image's first object's (0: none)
            labels=[image.objects[0].label if image.objects else 0 for image in images],
            problems=checked.problems,
            identity=identity,
            files=[(i.path, i.size) for i in images],
            source={**annotations.source, **source},
            extra={
                "task": "detection",
                "features": features,
                **objects,
                "label_map": LABEL_MAP,
            },
            make_source=make_source,
            tfds=True,
            splits=checked.splits,
            # label_map.pbtxt beside labels.txt, before the manifest
            companions={LABEL_MAP: det.label_map_pbtxt(classes)},
            gather=gather,
            shared=(shared_key,) if inherited else (),
        )

    return prepare


def _root(folder: str | os.PathLike) -> str:
    return os.fspath(folder) if storage.is_url(folder) else str(Path(folder).resolve())


def _convert(
    kind: str,
    src: str | os.PathLike,
    out: str | os.PathLike,
    prepare: Callable[[_Settings], _Prepared],
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
    root = _root(src)
    with time_limit(opts.storage_timeout):
        with _collector_paused():
            settings = _Settings(root, validate, strict, stored, opts.num_workers, opts.share)
            prepared = prepare(settings)
        try:
            if strict:
                refuse(prepared.problems, storage.redact(root))
            if not prepared.sizes:
                raise ConversionError(f"{storage.redact(root)}: no annotated image to convert")
            splits = prepared.splits if fractions is None and prepared.splits else fractions
            if splits is None:
                splits = {"train": 1.0}
            name = name or _default_name(root)
            dropped_images = [
                (p.where, p.reason) for p in prepared.problems if p.dropped == "image"
            ]
            identity = {
                "kind": kind,
                "root": storage.redact(root),
                **prepared.identity,
                "files": prepared.files,
                "validate": validate,
                "strict": strict,
                **stored.identity(),
            }
            return steps.run(
                out=outdir.location(out),
                name=name,
                classes=prepared.classes,
                labels=prepared.labels,
                sizes=prepared.sizes,
                splits=splits,
                make_source=prepared.make_source,
                opts=opts,
                identity=identity,
                source_json={"kind": kind, "path": storage.redact(root), **prepared.source},
                pre_skipped=dropped_images,
                extra={
                    **prepared.extra,
                    "validate": validate,
                    **({"encoding": encoding} if encoding != "keep" else {}),
                },
                desc=name,
                max_size=None if max_size is None else {"size": max_size, "quality": quality},
                in_process=outdir.per_process(src, out),
                companions=prepared.companions,
                tfds=prepared.tfds,
                gather=prepared.gather,
            )
        finally:
            for key in prepared.shared:
                inherit.unshare(key)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cycle collector paused while a source is read and checked: the parsed
    annotations are hundreds of thousands of objects, made in one go, that each collection
    walks again (a quarter of the time of reading and checking a COCO file); they hold no
    cycles to collect."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _default_name(root: str) -> str:
    base = storage.basename(root) if storage.is_url(root) else Path(root).name
    name = "".join(c if c.isalnum() or c in "_." else "_" for c in base)
    return name.strip("_.") or "dataset"
