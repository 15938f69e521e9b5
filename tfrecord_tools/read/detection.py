"""tf.data pipelines of detection and segmentation records: ``make_dataset(task="detection")``
gives a dict per image (boxes, classes, optionally masks and keypoints), ``task=
"segmentation"`` the image and its class mask. ``pipeline.make_dataset`` hands these tasks
over here.

Data flow: shards -> per-host part -> records (``records.py``, as for classification: CRCs,
damaged shards named, cardinality) -> record shuffle -> repeat -> **parse_example**
(per-object lists as ragged rows, checked: a record whose lists disagree is an error naming
its file, record and byte; small images 256 records a call, then unbatched, photos one
record an element: unbatching ~15 features cost more than a parse each) -> **per record**:
decode (a JPEG crop decoded as a crop, at a DCT scale when it is large) -> orientation ->
resize (stretched, or fitted with ``keep_aspect``) -> flip, the boxes, masks and keypoints
moved with the pixels -> padded (``num_objects``) or ragged batches -> prefetch.

Geometry: boxes stay normalised to the image as returned. A crop covers the stored pixels
``(y0, x0, y1, x1)``: a box becomes ``(b - w0) / (w1 - w0)`` clipped to [0, 1], and one
with no area left is dropped with its class, mask and keypoints (the crop is taken in the
stored frame, then turned upright). Boxes and keypoints turn with
``format.detection.orient_box``, the rule of the converter and of the TF-free reader; masks
turn as image channels (``orient.orient``). Masks and class masks are resized nearest-neighbour;
``keep_aspect`` pads the bottom and right with 0.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from typing import Any

import tensorflow as tf

from .. import storage
from ..dataset import Dataset, check_task, keys_for
from ..dataset.indexes import read_indexes
from ..errors import TFRecordToolsError
from ..format import detection as det
from ..format.framing import HEADER_SIZE, OVERHEAD, iter_records
from . import decode, records
from .options import ReadOptions
from .orient import orient
from .pipeline import PARSE_BATCH, finish, large_images, read_shards, record_keys, unbatched
from .shards import resolve_shards

#: Per-object lists a detection record must have (one value per box), with their types.
BOX_LISTS = {
    det.YMIN: tf.float32,
    det.XMIN: tf.float32,
    det.YMAX: tf.float32,
    det.XMAX: tf.float32,
    det.CLASS_LABEL: tf.int64,
}
#: Per-object lists a record may leave out (or empty): read as 0 for every box.
OPTIONAL_LISTS = {det.IS_CROWD: tf.int64, det.DIFFICULT: tf.int64, det.AREA: tf.float32}
_KEYPOINT_LISTS = {
    det.KEYPOINT_Y: tf.float32,
    det.KEYPOINT_X: tf.float32,
    det.KEYPOINT_VISIBILITY: tf.int64,
}
#: What each output key is padded with in a padded batch (others: 0).
PADDING = {"classes": -1}
#: Output keys with one row per object.
PER_OBJECT = ("boxes", "classes", "is_crowd", "difficult", "area", "masks", "keypoints")


def make_task_dataset(path, split: str, compression: str | None, opts: ReadOptions):
    """``make_dataset`` for ``task="detection"`` or ``"segmentation"`` (its options as
    validated by :class:`ReadOptions`); see ``docs/reading-tf.md``."""
    shards = resolve_shards(path, split, compression)
    keys = keys_for(shards, opts.image_key, None)
    _check_records(shards, opts)
    ds, counts = read_shards(shards, opts)
    plan = decode.Plan.of(opts)
    if plan.random:  # a stateless seed per record: (seed, its number in the stream)
        ds = ds.enumerate()
    orientation = opts.orientation and shards.orientations != {} and keys.orientation is not None
    spec = _parse_spec(keys, opts, orientation)
    locate = _locator(shards, opts)
    # decode-time checks (mask sizes) name the record: it travels along with masks only
    keep_record = opts.masks or opts.task == "segmentation"

    def parse(serialized, index=None):  # a batch of records
        serialized = records.check(serialized)
        parsed = tf.io.parse_example(serialized, spec)
        features, _ = decode.parsed(parsed, keys)
        features.update({k: v for k, v in parsed.items() if k in _TASK_KEYS})
        # nothing of a batch is used before it is checked (a stack of lists of different
        # lengths would fail first, with TensorFlow's message)
        with tf.control_dependencies([_checked(parsed, features, serialized, opts, locate)]):
            features = {k: _after(v) for k, v in features.items()}
        if plan.random:
            features["key"] = record_keys(index, opts)
        if keep_record:
            features["record"] = serialized
        return features

    shape = _known_shape(shards, opts)
    image_format = {"jpeg": decode.JPEG, "png": decode.PNG}.get(
        opts.image_format or shards.image_format or ""
    )

    def transform(f):
        return _transform(f, opts, plan, image_format, shards.ours, locate, shape)

    par = {"num_parallel_calls": opts.num_parallel_calls, "deterministic": opts.deterministic}
    out_hw = opts.image_size or shape
    if out_hw is not None and not large_images(out_hw, opts):
        # small images: parsed 256 at a time (parse_example's cost per record falls with
        # the records per call), then one element each
        batches = ds.batch(PARSE_BATCH).map(lambda *b: parse(b[-1], b[0]), **par)
        ds = unbatched(batches, counts, opts).map(transform, **par)
    else:
        # photos: a record an element, parsed and transformed in one map (unbatching a
        # batch's ~15 per-object and image features cost more than a parse per record)
        def parse_one(*element):
            index = element[0][None] if plan.random else None
            features = parse(element[-1][None], index)
            return transform({k: v[0] for k, v in features.items()})

        ds = ds.map(parse_one, **par)
    one_size = shape is not None or opts.image_size is not None
    return finish(_batch(ds, opts, one_size), opts, batched=True)


def _known_shape(shards: Dataset, opts: ReadOptions) -> tuple[int, int] | None:
    """The one (height, width) of every output image when the manifest promises it and no
    option changes it (a quarter turn of a non-square image would)."""
    if opts.image_size is not None or shards.image_shape is None:
        return None
    height, width = shards.image_shape[:2]
    turns = shards.orientations
    quarter = turns is None or any(o in turns for o in ("5", "6", "7", "8"))
    if opts.orientation and quarter and height != width:
        return None
    return height, width


# --------------------------------------------------------------------------- the records


def _check_records(shards: Dataset, opts: ReadOptions) -> None:
    """Refuse, before anything is built, records that cannot be read as ``opts.task`` asks:
    those of another task (``dataset.check_task``, every reader's check: it says which task
    to pass), and a first record whose lists have the wrong type, or that lacks the masks
    ``masks=True`` reads, named with its file. Our converter's records are not read."""
    check_task(shards, opts.task)
    if shards.ours and not opts.masks:
        return
    first = shards.first_record
    if first is None:
        return
    where, features = first
    for key, dtype in _read_lists(opts).items():
        kind = features[key][0] if key in features else "empty"
        expected = {tf.float32: "float", tf.int64: "int64", tf.string: "bytes"}[dtype]
        if kind not in (expected, "empty"):
            raise TFRecordToolsError(f"{where}: {key} holds {kind}, expected {expected}")
    objects = len(features[det.XMIN][1]) if det.XMIN in features else 0
    if opts.masks and objects and det.MASK not in features:
        raise TFRecordToolsError(
            f"{where}: masks=True, but the record has {objects} objects and no {det.MASK} "
            "(a PNG per object); read it without masks"
        )


_TASK_KEYS = frozenset({*BOX_LISTS, *OPTIONAL_LISTS, *_KEYPOINT_LISTS, det.MASK, det.SEGMENTATION})


def _parse_spec(keys, opts: ReadOptions, orientation: bool) -> dict[str, Any]:
    """The image keys (``decode.parse_spec``), the file name, and what the task reads."""
    spec = decode.with_filename(decode.parse_spec(keys, orientation=orientation))
    if opts.task == "segmentation":
        spec[det.SEGMENTATION] = tf.io.FixedLenFeature([], tf.string, default_value="")
        return spec
    spec.update({key: tf.io.RaggedFeature(dtype) for key, dtype in _read_lists(opts).items()})
    return spec


def _read_lists(opts: ReadOptions) -> dict[str, tf.DType]:
    """The per-object lists (or, for segmentation, the class mask) ``opts`` reads."""
    if opts.task == "segmentation":
        return {det.SEGMENTATION: tf.string}
    lists = {**BOX_LISTS, **OPTIONAL_LISTS}
    if opts.masks:
        lists[det.MASK] = tf.string
    if opts.keypoints:
        lists.update(_KEYPOINT_LISTS)
    return lists


def _checked(parsed, features, serialized, opts: ReadOptions, locate) -> tf.Tensor:
    """True once every record of the batch is consistent: per-object lists of one length
    (the optional ones may be empty), keypoints a whole number per object, a class mask
    where the task reads one. Else an error naming the first bad record (``locate``: its
    file, index and byte) and its lists' lengths."""
    if opts.task == "segmentation":
        bad = tf.equal(parsed[det.SEGMENTATION], "")

        def describe(i):
            return tf.constant(f"no {det.SEGMENTATION} (the class mask PNG)")

    else:
        order = [*BOX_LISTS, *OPTIONAL_LISTS, det.MASK, *_KEYPOINT_LISTS]
        lengths = {k: parsed[k].row_lengths() for k in order if k in parsed}
        n = lengths[det.XMIN]
        required = [k for k in lengths if k in BOX_LISTS or k == det.MASK]
        bad = tf.zeros_like(n, tf.bool)
        for key in required:
            bad |= lengths[key] != n
        for key in OPTIONAL_LISTS:
            bad |= (lengths[key] != 0) & (lengths[key] != n)
        if opts.keypoints:
            points = lengths[det.KEYPOINT_X]
            seen = lengths[det.KEYPOINT_VISIBILITY]
            bad |= lengths[det.KEYPOINT_Y] != points
            bad |= (seen != 0) & (seen != points)
            bad |= points % tf.maximum(n, 1) != 0
            bad |= (n == 0) & (points != 0)

        def describe(i):
            told = [
                tf.strings.join([tf.strings.as_string(v[i]), " ", k]) for k, v in lengths.items()
            ]
            rule = (
                "per-object lists disagree: ",
                tf.strings.reduce_join(tf.stack(told), separator=", "),
                " (each holds one value per box; is_crowd, difficult, area may be empty"
                + ("; keypoints: the same number for every object" if opts.keypoints else "")
                + ")",
            )
            return tf.strings.join(list(rule))

    def fail():
        i = tf.argmax(tf.cast(bad, tf.int32), output_type=tf.int32)
        name = features["name"][i]
        message = tf.strings.join(
            [locate(serialized[i]), " (image/filename ", name, "): ", describe(i)]
        )
        with tf.control_dependencies([tf.debugging.Assert(False, [message])]):
            return tf.constant(False)

    return tf.cond(tf.reduce_any(bad), fail, lambda: tf.constant(True))


def _after(t):
    """``t`` (a tensor or ragged tensor) within the caller's control dependencies."""
    if isinstance(t, tf.RaggedTensor):
        return t.with_flat_values(tf.identity(t.flat_values))
    return tf.identity(t)


def _locator(shards: Dataset, opts: ReadOptions) -> Callable[[tf.Tensor], tf.Tensor]:
    """``locate(record)``: ``"FILE: record I at byte O"`` of a serialized record, found in
    the shards when an error is raised (by its index's lengths, else a walk); under the
    tf.data service (its workers cannot run this process's Python) the dataset's name."""
    files, compression, sizes = shards.files, shards.compression, shards.sizes
    named = shards.root if shards.root is not None else (files[0] if files else "")
    fallback = f"{storage.redact(str(named))}: a record"
    if opts.service is not None:
        return lambda record: tf.constant(fallback)

    def find(data: bytes) -> str:
        found = _find(files, compression, sizes, data)
        if found is None:
            return fallback
        file, index, offset = found
        return f"{storage.redact(file)}: record {index} at byte {offset}"

    def locate(record: tf.Tensor) -> tf.Tensor:
        out = tf.py_function(lambda r: find(r.numpy()), [record], tf.string)
        out.set_shape([])
        return out

    return locate


def _find(files: list[str], compression: str, sizes, data: bytes):
    """``(file, index, byte offset)`` of the record ``data`` among ``files``, or None: the
    records of its length that an index lists are read (one read each), other shards are
    walked front to back."""
    indexes: list = [None] * len(files)
    if compression == "none":
        with contextlib.suppress(OSError, TFRecordToolsError):
            indexes = read_indexes(files, sizes=sizes, missing_ok=True)
    for file, entries in zip(files, indexes, strict=True):
        try:
            if entries is not None:
                reader = storage.RandomReader(file)
                try:
                    for index, (offset, length) in enumerate(entries):
                        same = length - OVERHEAD == len(data)
                        if same and reader.read(offset + HEADER_SIZE, len(data)) == data:
                            return file, index, offset
                finally:
                    reader.close()
                continue
            with contextlib.closing(iter_records(file, compression, size=sizes.get(file))) as rs:
                for record in rs:
                    if record.data == data:
                        return file, record.index, record.offset
        except (OSError, TFRecordToolsError):
            continue  # a damaged or vanished shard: the others may still hold it
    return None


# --------------------------------------------------------------------------- one record


def _transform(f, opts: ReadOptions, plan: decode.Plan, image_format, stored, locate, shape):
    """One parsed record to its output dict: decoded (cropped) in its stored frame, turned
    upright, resized, flipped, with its boxes, masks and keypoints moved alike."""
    rand = decode.uniforms(f["key"]) if plan.random else None
    image, window, dims = _decode(f, plan, image_format, stored, rand)
    orientation = f.get("orientation")
    detection = opts.task == "detection"
    out = {"filename": f["name"]}
    objects, keep = {}, None
    if detection:
        objects = _objects(f, opts)
        if plan.crop is not None:
            objects, keep = _crop_objects(objects, _normalised(window, dims))
    layers = None  # masks as image channels [h, w, N], or the class mask [h, w, 1]
    if opts.masks or not detection:
        layers = _masks(f, opts, window, dims, locate)
        if keep is not None:
            layers = tf.boolean_mask(layers, keep, axis=2)
    if orientation is not None:
        image = orient(image, orientation)
        layers = None if layers is None else orient(layers, orientation)
        if detection:
            objects = _orient_objects(objects, orientation)
    image, layers, scale = _resize(image, layers, opts)
    if detection and scale is not None:
        objects["boxes"] = objects["boxes"] * tf.concat([scale, scale], 0)
        if "keypoints" in objects:
            moved = objects["keypoints"][..., :2] * scale
            objects["keypoints"] = tf.concat([moved, objects["keypoints"][..., 2:]], -1)
    if plan.flip:
        image, layers, objects = _flip(rand[-1] < 0.5, image, layers, objects)
    if shape is not None:
        image.set_shape([*shape, opts.channels])
    out["image"] = image
    if not detection:
        out["mask"] = layers
        return out
    if layers is not None:
        objects["masks"] = tf.transpose(layers, [2, 0, 1])
    if "keypoints" in objects:  # (y, x) inside, like the boxes; (x, y, v) out, as stored
        points = objects["keypoints"]
        objects["keypoints"] = tf.stack([points[..., 1], points[..., 0], points[..., 2]], -1)
    return {**out, **objects}


def _decode(f, plan: decode.Plan, image_format, stored: bool, rand):
    """``(image, window, dims)``: the record's pixels in its stored frame, cropped when the
    plan crops; ``window`` int32 (y0, x0, y1, x1) the stored pixels they cover, ``dims``
    the stored (height, width). JPEGs are decoded as crops, at a DCT scale when
    ``plan.scaling`` allows (whole scaled pixels: the window then grows to their edges).
    With ``stored`` sizes (ours) one switch runs over the JPEG scales and the other
    formats, not a switch inside a case (a function call a record less, as in
    ``decode.decode_record``)."""
    encoded, height, width = f["encoded"], f["height"], f["width"]
    fns = decode.decoders(encoded, height, width, f["channels"], plan.channels)
    target = _stored_target(plan.image_size, f.get("orientation"))
    others = [_whole(fns[c], plan, rand) for c in (decode.PNG, decode.RAW, decode.OTHER)]

    def jpegs():  # the branch index and the decoders at each scale
        if stored:  # our converter stores every record's size
            dims = tf.cast(tf.stack([height, width]), tf.int32)
        else:
            dims = tf.cond(
                (height > 0) & (width > 0),
                lambda: tf.cast(tf.stack([height, width]), tf.int32),
                lambda: tf.io.extract_jpeg_shape(encoded)[:2],
            )
        return _jpeg_scales(encoded, dims, plan, target, rand)

    def jpeg():
        scale, scales = jpegs()
        return tf.switch_case(scale, scales) if len(scales) > 1 else scales[0]()

    if image_format == decode.JPEG:
        image, window, dims = jpeg()
    elif image_format is not None:
        image, window, dims = others[image_format - decode.PNG]()
    else:
        code = decode.format_code(encoded, f["format"], height, width, f["channels"])
        if stored:
            scale, scales = jpegs()
            branch = tf.where(tf.equal(code, decode.JPEG), scale, len(scales) - 1 + code)
            image, window, dims = tf.switch_case(branch, [*scales, *others])
        else:
            image, window, dims = tf.case(
                [(tf.equal(code, decode.JPEG), jpeg)]
                + [(tf.equal(code, c), others[c - decode.PNG]) for c in (decode.PNG, decode.RAW)],
                default=others[-1],
                exclusive=False,
            )
    image.set_shape([None, None, plan.channels])
    return image, window, dims


def _whole(fn, plan: decode.Plan, rand):
    """A decoder of the whole image (PNG, raw, other), then its crop: ``_decode``'s triple."""

    def run():
        image = fn()
        dims = tf.shape(image)[:2]
        window = _window(dims[0], dims[1], plan, rand)
        return image[window[0] : window[2], window[1] : window[3]], window, dims

    return run


def _jpeg_scales(encoded, dims, plan: decode.Plan, target, rand):
    """``(scale, decoders)``: a JPEG's decoders at each DCT ratio (``decode.RATIOS``; only
    1/1 without ``plan.scaling``), each giving ``_decode``'s triple (a crop decoded as a
    crop, ``decode_and_crop_jpeg``), and the index of the smallest scale that keeps the
    crop, or the image, at or above ``target``."""
    h, w = dims[0], dims[1]
    window = _window(h, w, plan, rand)
    if not plan.scaling:
        ratios, scale = (1,), tf.constant(0)
    else:
        ratios = decode.RATIOS
        ratio = decode.scale_ratio(window[2] - window[0], window[3] - window[1], target)
        scale = tf.cast(tf.math.log(tf.cast(ratio, tf.float32)) / math.log(2.0) + 0.5, tf.int32)
    want = 3 if plan.channels == 3 else 0  # CMYK cannot give 1 channel directly

    def at(r: int):
        def go():
            y0, x0 = window[0] // r, window[1] // r  # the scaled pixels holding the window
            y1 = tf.minimum(-(-window[2] // r), -(-h // r))
            x1 = tf.minimum(-(-window[3] // r), -(-w // r))
            if plan.crop is None:
                image = tf.io.decode_jpeg(encoded, channels=want, ratio=r)
            else:
                box = tf.stack([y0, x0, y1 - y0, x1 - x0])
                image = tf.io.decode_and_crop_jpeg(encoded, box, channels=want, ratio=r)
            covered = tf.stack([y0 * r, x0 * r, tf.minimum(y1 * r, h), tf.minimum(x1 * r, w)])
            return decode.to_channels(image, plan.channels), covered, dims

        return go

    return scale, [at(r) for r in ratios]


def _window(height, width, plan: decode.Plan, rand) -> tf.Tensor:
    """int32 (y0, x0, y1, x1) of the crop (``decode.crop_window``), or the whole image."""
    if plan.crop is None:
        return tf.stack([0, 0, height, width])
    y, x, ch, cw = tf.unstack(decode.crop_window(height, width, plan, rand))
    return tf.stack([y, x, y + ch, x + cw])


def _stored_target(image_size, orientation) -> tf.Tensor | None:
    """The output size in the stored frame: quarter turns (orientation 5-8) swap it."""
    if image_size is None:
        return None
    target = tf.constant(image_size, tf.int32)
    if orientation is None:
        return target
    turned = (orientation >= 5) & (orientation <= 8)
    return tf.where(turned, tf.reverse(target, [0]), target)


def _normalised(window, dims) -> tf.Tensor:
    sides = tf.cast(tf.concat([dims, dims], 0), tf.float32)
    return tf.cast(window, tf.float32) / sides


def _objects(f, opts: ReadOptions) -> dict[str, tf.Tensor]:
    """The record's objects: boxes [N, 4] (ymin, xmin, ymax, xmax), classes, is_crowd,
    difficult, area (0 where a list is absent), keypoints [N, K, 3] (y, x, visibility;
    visibility 2 where absent)."""
    boxes = tf.stack([f[k] for k in (det.YMIN, det.XMIN, det.YMAX, det.XMAX)], axis=1)
    n = tf.shape(boxes)[0]

    def filled(key, dtype, value=0):  # checked: empty or one per object
        values = f[key]
        return tf.concat([values, tf.fill([n - tf.shape(values)[0]], tf.constant(value, dtype))], 0)

    objects = {
        "boxes": boxes,
        "classes": f[det.CLASS_LABEL],
        "is_crowd": filled(det.IS_CROWD, tf.int64),
        "difficult": filled(det.DIFFICULT, tf.int64),
        "area": filled(det.AREA, tf.float32),
    }
    if opts.keypoints:
        ys, xs = f[det.KEYPOINT_Y], f[det.KEYPOINT_X]
        points = tf.shape(xs)[0]
        seen = f[det.KEYPOINT_VISIBILITY]
        seen = tf.concat([seen, tf.fill([points - tf.shape(seen)[0]], tf.constant(2, tf.int64))], 0)
        shape = tf.stack([n, points // tf.maximum(n, 1)])
        objects["keypoints"] = tf.stack(
            [
                tf.reshape(ys, shape),
                tf.reshape(xs, shape),
                tf.reshape(tf.cast(seen, tf.float32), shape),
            ],
            axis=-1,
        )
    return objects


def _crop_objects(objects, window) -> tuple[dict[str, tf.Tensor], tf.Tensor]:
    """Objects in the frame of the crop ``window`` (normalised y0, x0, y1, x1): boxes
    clipped to it, those with no area left dropped (``keep``: which were kept); keypoints
    outside it get visibility 0."""
    y0, x0, y1, x1 = tf.unstack(window)
    offset = tf.stack([y0, x0, y0, x0])
    scale = tf.stack([y1 - y0, x1 - x0, y1 - y0, x1 - x0])
    boxes = tf.clip_by_value((objects["boxes"] - offset) / scale, 0.0, 1.0)
    keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    moved = {**objects, "boxes": boxes}
    if "keypoints" in objects:
        points = (objects["keypoints"][..., :2] - offset[:2]) / scale[:2]
        inside = tf.reduce_all((points >= 0) & (points <= 1), axis=-1)
        seen = tf.where(inside, objects["keypoints"][..., 2], 0.0)
        moved["keypoints"] = tf.concat([points, seen[..., None]], -1)
    return {k: tf.boolean_mask(v, keep) for k, v in moved.items()}, keep


def _orient_objects(objects, orientation) -> dict[str, tf.Tensor]:
    """Boxes and keypoints turned as ``orient.orient`` turns the image
    (``format.detection.orient_box``; a keypoint is a box of no size)."""

    def turned(boxes):
        def at(k: int):
            return lambda: tf.stack(det.orient_box(*tf.unstack(boxes, 4, axis=-1), k), axis=-1)

        index = tf.cast(orientation, tf.int32) - 1
        index = tf.where((index >= 0) & (index < 8), index, 0)
        return tf.switch_case(index, [at(k) for k in range(1, 9)])

    out = {**objects, "boxes": turned(objects["boxes"])}
    if "keypoints" in objects:
        points = objects["keypoints"]
        yx = turned(tf.concat([points[..., :2], points[..., :2]], -1))[..., :2]
        out["keypoints"] = tf.concat([yx, points[..., 2:]], -1)
    return out


def _masks(f, opts: ReadOptions, window, dims, locate) -> tf.Tensor:
    """The object masks as channels [h, w, N] (detection) or the class mask [h, w, 1]
    (segmentation), uint8, cropped to ``window``; a mask whose size is not the stored
    image's is an error naming the record."""
    if opts.task == "segmentation":
        layers = tf.io.decode_png(f[det.SEGMENTATION], channels=1)
    else:
        pngs = f[det.MASK]
        layers = tf.cond(
            tf.size(pngs) > 0,
            lambda: tf.transpose(
                tf.map_fn(
                    lambda png: tf.io.decode_png(png, channels=1)[..., 0],
                    pngs,
                    fn_output_signature=tf.TensorSpec([None, None], tf.uint8),
                ),
                [1, 2, 0],
            ),
            lambda: tf.zeros(tf.concat([dims, [0]], 0), tf.uint8),
        )
    size = tf.shape(layers)[:2]

    def fail():
        message = tf.strings.join(
            [
                locate(f["record"]),
                " (image/filename ",
                f["name"],
                "): a mask is ",
                tf.strings.as_string(size[0]),
                "x",
                tf.strings.as_string(size[1]),
                ", the image is ",
                tf.strings.as_string(dims[0]),
                "x",
                tf.strings.as_string(dims[1]),
                " (height x width): a mask covers the whole image",
            ]
        )
        with tf.control_dependencies([tf.debugging.Assert(False, [message])]):
            return tf.identity(layers)

    layers = tf.cond(tf.reduce_all(size == dims), lambda: layers, fail)
    layers = layers[window[0] : window[2], window[1] : window[3]]
    layers.set_shape([None, None, 1 if opts.task == "segmentation" else None])
    return layers


def _resize(image, layers, opts: ReadOptions):
    """``(image, layers, scale)`` at ``image_size``: stretched, or with ``keep_aspect``
    scaled to fit and padded bottom/right with 0 (``scale``: the (y, x) share of the output
    the image fills, which boxes are multiplied by; None when nothing moves them)."""
    if opts.image_size is None:
        return decode.resize(image, None, dtype=opts.dtype), layers, None
    height, width = opts.image_size
    if not opts.keep_aspect:
        image = decode.resize(image, opts.image_size, dtype=opts.dtype)
        layers = None if layers is None else _nearest(layers, tf.constant([height, width]))
        return image, layers, None
    dims = tf.cast(tf.shape(image)[:2], tf.float32)
    fit = tf.minimum(height / dims[0], width / dims[1])
    size = tf.cast(tf.round(dims * fit), tf.int32)
    size = tf.clip_by_value(size, 1, tf.constant([height, width]))
    pad = [[0, height - size[0]], [0, width - size[1]], [0, 0]]
    image = tf.pad(decode.resize(image, size, dtype=opts.dtype), pad)
    image.set_shape([height, width, opts.channels])
    if layers is not None:
        layers = tf.pad(_nearest(layers, size), pad)
    scale = tf.cast(size, tf.float32) / tf.constant([height, width], tf.float32)
    return image, layers, scale


def _nearest(layers: tf.Tensor, size: tf.Tensor) -> tf.Tensor:
    """Nearest-neighbour resize of [h, w, C] to ``size`` (any C, 0 too: ``tf.image.resize``
    refuses 0 channels): output pixel i takes input pixel floor((i + 0.5) * h / H)."""
    dims = tf.shape(layers)[:2]

    def picks(out, src):
        where = (tf.cast(tf.range(out), tf.float32) + 0.5) * tf.cast(src, tf.float32)
        return tf.minimum(tf.cast(where / tf.cast(out, tf.float32), tf.int32), src - 1)

    rows = tf.gather(layers, picks(size[0], dims[0]), axis=0)
    out = tf.gather(rows, picks(size[1], dims[1]), axis=1)
    if isinstance(size, tf.Tensor) and tf.get_static_value(size) is not None:
        out.set_shape([*tf.get_static_value(size), layers.shape[-1]])
    return out


def _flip(flip, image, layers, objects):
    """Mirror left-right when ``flip``: pixels, masks, and x -> 1 - x."""
    keys = list(objects)

    def mirrored():
        moved = dict(objects)
        if "boxes" in objects:
            y0, x0, y1, x1 = tf.unstack(objects["boxes"], 4, axis=-1)
            moved["boxes"] = tf.stack([y0, 1 - x1, y1, 1 - x0], axis=-1)
        if "keypoints" in objects:
            points = objects["keypoints"]
            moved["keypoints"] = tf.stack([points[..., 0], 1 - points[..., 1], points[..., 2]], -1)
        turned = None if layers is None else tf.reverse(layers, [1])
        return tf.reverse(image, [1]), turned, [moved[k] for k in keys]

    def kept():
        return image, layers, [objects[k] for k in keys]

    image, layers, values = tf.cond(flip, mirrored, kept)
    return image, layers, dict(zip(keys, values, strict=True))


# --------------------------------------------------------------------------- batches


def _batch(ds, opts: ReadOptions, one_size: bool):
    """Padded batches (``num_objects`` [B] says how many rows of each are real; classes are
    padded with -1, everything else with 0), or with ``ragged`` the per-object fields as
    ``tf.RaggedTensor``. Images nothing promised to be of one size are checked per batch."""
    if not opts.batch_size:
        return ds
    detection = opts.task == "detection"

    def counted(e):
        e = dict(e)
        if detection:
            e["num_objects"] = tf.shape(e["classes"], tf.int32)[0]
        if not one_size:
            e["image_hw"] = tf.shape(e["image"], tf.int32)[:2]
        return e

    ds = ds.map(counted)
    padding = {
        k: tf.constant("" if s.dtype == tf.string else PADDING.get(k, 0), s.dtype)
        for k, s in ds.element_spec.items()
    }
    ds = ds.padded_batch(
        opts.batch_size, padding_values=padding, drop_remainder=opts.drop_remainder
    )
    if not one_size:
        ds = ds.enumerate().map(lambda number, batch: _one_size(number, batch, opts.batch_size))
    if opts.ragged:
        ds = ds.map(_ragged)
    return ds


def _one_size(number, batch, batch_size: int):
    """The batch without ``image_hw``, after raising where its images differ in size:
    padding would put them in one tensor with boxes no longer normalised to them."""
    batch = dict(batch)
    sizes = batch.pop("image_hw")
    differ = tf.reduce_any(sizes != sizes[:1], axis=1)
    names = batch["filename"]

    def describe(i):
        place = tf.strings.join(
            ["image ", tf.strings.as_string(number * batch_size + tf.cast(i, tf.int64)), " read"]
        )
        name = tf.where(names[i] == "", place, names[i])
        hw = tf.strings.as_string(sizes[i])
        return tf.strings.join([name, " is ", hw[0], "x", hw[1]])

    def fail():
        other = tf.argmax(tf.cast(differ, tf.int32), output_type=tf.int32)
        message = tf.strings.join(
            [
                "images of different sizes cannot be batched: ",
                describe(0),
                ", ",
                describe(other),
                "; pass image_size=(HEIGHT, WIDTH) to resize every image to one size",
            ]
        )
        with tf.control_dependencies([tf.debugging.Assert(False, [message])]):
            return tf.identity(batch["image"])

    batch["image"] = tf.cond(tf.reduce_any(differ), fail, lambda: batch["image"])
    return batch


def _ragged(batch):
    """Per-object fields of a padded batch as ``tf.RaggedTensor`` [B, (N), ...]."""
    batch = dict(batch)
    counts = batch.pop("num_objects")
    for key in PER_OBJECT:
        if key in batch:
            batch[key] = tf.RaggedTensor.from_tensor(batch[key], lengths=counts)
    return batch
