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

import numpy as np
import tensorflow as tf

from .. import storage
from ..dataset import Dataset, check_task, keys_for
from ..dataset.indexes import read_indexes
from ..errors import TFRecordToolsError
from ..format import detection as det
from ..format.framing import HEADER_SIZE, OVERHEAD, iter_records
from . import decode, objects, records
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
    image_format = {"jpeg": decode.JPEG, "png": decode.PNG}.get(
        opts.image_format or shards.image_format or ""
    )
    spec = _parse_spec(keys, opts, orientation, known_format=image_format is not None)
    locate = _locator(shards, opts)
    # decode-time checks (mask sizes) name the record: it travels along with masks only
    keep_record = opts.masks or opts.task == "segmentation"
    shape = _known_shape(shards, opts)
    one_size = shape is not None or opts.image_size is not None

    def features_of(parsed, serialized, index):
        features, _ = decode.parsed(parsed, keys)
        features.update({k: v for k, v in parsed.items() if k in _TASK_KEYS})
        if plan.random:
            features["key"] = record_keys(index, opts)
        if keep_record:
            features["record"] = serialized
        return features

    def transform(f):
        return _transform(f, opts, plan, image_format, shards.ours, locate, shape, one_size)

    par = {"num_parallel_calls": opts.num_parallel_calls, "deterministic": opts.deterministic}
    out_hw = opts.image_size or shape
    if out_hw is not None and not large_images(out_hw, opts):
        # small images: parsed and checked 256 at a time (parse_example's cost per record
        # falls with the records per call), then one element each
        def parse(*batch):
            serialized = records.check(batch[-1])
            parsed = tf.io.parse_example(serialized, spec)
            features = features_of(parsed, serialized, batch[0] if plan.random else None)
            lengths = {k: parsed[k].row_lengths() for k in _LIST_ORDER if k in parsed}
            problems = _problems(opts, lengths, parsed.get(det.SEGMENTATION))
            check = _checked(problems, features["name"], serialized, locate)
            # nothing of a batch is used before it is checked
            with tf.control_dependencies([check]):
                return {k: _after(v) for k, v in features.items()}

        batches = ds.batch(PARSE_BATCH).map(parse, **par)
        ds = unbatched(batches, counts, opts).map(transform, **par)
    else:
        # photos: a record an element, parsed and transformed in one map (unbatching a
        # batch's per-object and image features cost more than a parse per record)
        later = opts.task == "detection" and not opts.masks and bool(opts.batch_size)

        def parse_one(*element):
            serialized = records.check(element[-1][None])[0]
            parsed = tf.io.parse_single_example(serialized, spec)
            features = features_of(parsed, serialized, element[0] if plan.random else None)
            lengths = {k: tf.size(parsed[k], tf.int64) for k in _LIST_ORDER if k in parsed}
            if later:
                # checked once its batch is made (``_batch_done``): the bad record itself
                # travels (else ""), packing does not fail on it, and no tf.cond runs per
                # record
                bad = _disagree(lengths, opts)
                features["evidence"] = tf.where(bad, serialized, tf.constant(""))
                return transform(features)
            class_mask = parsed.get(det.SEGMENTATION)
            problems = _problems(
                opts,
                {k: v[None] for k, v in lengths.items()},
                None if class_mask is None else class_mask[None],
            )
            check = _checked(problems, features["name"][None], serialized[None], locate)
            with tf.control_dependencies([check]):
                return transform({k: _after(v) for k, v in features.items()})

        ds = ds.map(parse_one, **par)
    return finish(_batch(ds, opts, one_size, locate), opts, batched=True)


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
#: The per-object lists in the order messages name them.
_LIST_ORDER = (*BOX_LISTS, *OPTIONAL_LISTS, det.MASK, *_KEYPOINT_LISTS)


def _parse_spec(keys, opts: ReadOptions, orientation: bool, *, known_format: bool) -> dict:
    """The image keys (``decode.parse_spec``; without the format and channels when every
    record is known to be a JPEG or a PNG), the file name, and what the task reads."""
    spec = decode.with_filename(decode.parse_spec(keys, orientation=orientation))
    if known_format:
        spec = {k: v for k, v in spec.items() if k not in (keys.format, keys.channels)}
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


def _disagree(lengths: dict[str, tf.Tensor], opts: ReadOptions) -> tf.Tensor:
    """bool, per record (``lengths``: int64 of each list, for one record or a batch): its
    per-object lists are not of one length (the optional ones may be empty), or its
    keypoints not a whole number per object."""
    n = lengths[det.XMIN]
    lists = [k for k in lengths if k not in _KEYPOINT_LISTS]
    sizes = tf.stack([lengths[k] for k in lists], -1)
    optional = np.array([k in OPTIONAL_LISTS for k in lists])
    bad = ~tf.reduce_all((sizes == n[..., None]) | ((sizes == 0) & optional), -1)
    if opts.keypoints:
        points, seen = lengths[det.KEYPOINT_X], lengths[det.KEYPOINT_VISIBILITY]
        bad |= lengths[det.KEYPOINT_Y] != points
        bad |= (seen != 0) & (seen != points)
        bad |= points % tf.maximum(n, 1) != 0
        bad |= (n == 0) & (points != 0)
    return bad


def _problems(opts: ReadOptions, lengths, class_masks) -> tuple[tf.Tensor, Callable]:
    """``(bad, describe)`` of a batch of records: which are bad (lists that disagree, for
    segmentation no class mask), and ``describe(i)``, what is wrong with record i.
    ``lengths``: the batch's list lengths; ``class_masks``: its class mask PNGs."""
    if opts.task == "segmentation":
        bad = tf.equal(class_masks, "")
        return bad, lambda i: tf.constant(f"no {det.SEGMENTATION} (the class mask PNG)")

    def describe(i):
        told = [tf.strings.join([tf.strings.as_string(v[i]), " ", k]) for k, v in lengths.items()]
        rule = (
            "per-object lists disagree: ",
            tf.strings.reduce_join(tf.stack(told), separator=", "),
            " (each holds one value per box; is_crowd, difficult, area may be empty"
            + ("; keypoints: the same number for every object" if opts.keypoints else "")
            + ")",
        )
        return tf.strings.join(list(rule))

    return _disagree(lengths, opts), describe


def _checked(problems, names, serialized, locate) -> tf.Tensor:
    """True once no record of a batch is bad (``problems``: ``_problems``), else an error
    naming the first bad one (``locate``: its file, index and byte, ``names``: its
    image/filename) and what is wrong with it."""
    bad, describe = problems

    def fail():
        i = tf.argmax(tf.cast(bad, tf.int32), output_type=tf.int32)
        message = tf.strings.join(
            [locate(serialized[i]), " (image/filename ", names[i], "): ", describe(i)]
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


def _transform(f, opts: ReadOptions, plan, image_format, stored, locate, shape, one_size):
    """One parsed record to its output element: decoded (cropped) in its stored frame,
    turned upright, resized, flipped, with its objects (packed: ``objects.py``) and masks
    moved alike. Batched, the objects stay packed until ``_batch_done``."""
    rand = decode.uniforms(f["key"]) if plan.random else None
    image, window, dims = _decode(f, plan, image_format, stored, rand)
    orientation = f.get("orientation")
    detection = opts.task == "detection"
    things, kept = {}, None
    if detection:
        things = objects.pack(f, opts)
        if plan.crop is not None:
            things, kept = objects.crop(things, _normalised(window, dims))
    layers = None  # masks as image channels [h, w, N], or the class mask [h, w, 1]
    if opts.masks or not detection:
        layers = objects.masks(f, opts, window, dims, locate)
        if kept is not None:
            layers = tf.gather(layers, kept, axis=2)
    if orientation is not None:
        image = orient(image, orientation)
        layers = None if layers is None else orient(layers, orientation)
        if detection:
            things = objects.orient(things, orientation)
    image, layers, share = objects.resize(image, layers, opts)
    if detection and share is not None:
        things = objects.scale(things, share)
    if plan.flip:
        flipped = rand[-1] < 0.5  # type: ignore[index]
        image = tf.cond(flipped, lambda: tf.reverse(image, [1]), lambda: image)
        if layers is not None:
            layers = tf.cond(flipped, lambda: tf.reverse(layers, [1]), lambda: layers)
        if detection:
            things = objects.flip(things, flipped)
    if shape is not None:
        image.set_shape([*shape, opts.channels])
    out = {"filename": f["name"], "image": image}
    if not detection:
        out["mask"] = layers
    elif not opts.batch_size:
        out.update(objects.unpack(things))
    else:
        out.update(things)
    if layers is not None and detection:
        out["masks"] = tf.transpose(layers, [2, 0, 1])
    if not opts.batch_size:
        return out
    if not one_size:
        out["image_hw"] = tf.shape(image, tf.int32)[:2]
    if "evidence" in f:
        out["evidence"] = f["evidence"]
    return {k: _batchable(k, v) for k, v in out.items()}


def _batchable(key: str, value: tf.Tensor):
    """``value`` as ``batch`` can stack it whatever its size: tensors whose shape varies go
    as ragged tensors, which ``batch`` gives back as ragged batches (``_padded`` pads them
    in ``_batch_done``). Packed objects ([N, k]) go as one ragged row of N objects (a few
    ops), others with their varying dimensions ragged: an image's rows (its channels are
    uniform), all inner dimensions of keypoints and masks. Not ``padded_batch``: it cannot
    follow the map, so each image would be kept, then copied (~10 % of a photo's reading
    here, page faults included)."""
    if value.shape.is_fully_defined():
        return value
    if key in _ONE_ROW:
        splits = tf.concat([[0], tf.shape(value, tf.int64)[:1]], 0)
        return tf.RaggedTensor.from_row_splits(value, splits, validate=False)
    ragged_rank = 1 if key in ("image", "mask") else value.shape.rank - 1
    return tf.RaggedTensor.from_tensor(value, ragged_rank=ragged_rank)


_ONE_ROW = ("floats", "ints")


def _padded(key: str, value):
    """A batch of ``_batchable``'s ``value``, ragged ones padded with 0 to their longest
    rows."""
    if not isinstance(value, tf.RaggedTensor):
        return value
    return (value.values if key in _ONE_ROW else value).to_tensor()


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


# --------------------------------------------------------------------------- batches


def _batch(ds, opts: ReadOptions, one_size: bool, locate):
    """Batches padded as ``padded_batch`` would (``num_objects`` [B] says how many rows of
    each are real; classes are padded with -1, everything else with 0), or with
    ``ragged`` the per-object fields as ``tf.RaggedTensor``; each checked
    (``_batch_done``)."""
    if not opts.batch_size:
        return ds
    ds = ds.batch(opts.batch_size, drop_remainder=opts.drop_remainder)
    if one_size:
        return ds.map(lambda batch: _batch_done(batch, None, opts, locate))
    return ds.enumerate().map(lambda number, batch: _batch_done(batch, number, opts, locate))


def _batch_done(batch, number, opts: ReadOptions, locate):
    """A batch of ``_transform``'s elements as returned: checked (records whose lists
    disagree, ``evidence``; images of different sizes, ``image_hw``), ragged parts padded,
    its objects unpacked (``objects.unpack``), with ``ragged`` as ragged tensors."""
    checks = []
    if "evidence" in batch:
        evidence = batch["evidence"]  # "" but for bad records: parsing them costs little
        spec = {k: tf.io.RaggedFeature(dtype) for k, dtype in _read_lists(opts).items()}
        parsed = tf.io.parse_example(evidence, spec)
        lengths = {k: parsed[k].row_lengths() for k in _LIST_ORDER if k in parsed}
        problems = _problems(opts, lengths, None)
        checks.append(_checked(problems, batch["filename"], evidence, locate))
    if "image_hw" in batch:
        checks.append(_one_size(number, batch["image_hw"], batch["filename"], opts.batch_size))
    with tf.control_dependencies(checks):
        image = _padded("image", batch["image"])
    out = {"filename": batch["filename"], "image": tf.identity(image)}
    if opts.task == "segmentation":
        out["mask"] = _padded("mask", batch["mask"])
        return out
    counts = tf.cast(batch["floats"].values.row_lengths(), tf.int32)
    packed = {k: _padded(k, batch[k]) for k in ("floats", "ints", "keypoints") if k in batch}
    real = tf.range(tf.shape(packed["ints"])[1]) < counts[:, None]
    out.update(objects.unpack(packed, real))
    if "masks" in batch:
        out["masks"] = _padded("masks", batch["masks"])
    if not opts.ragged:
        out["num_objects"] = counts
        return out
    for key in PER_OBJECT:
        if key in out:
            out[key] = tf.RaggedTensor.from_tensor(out[key], lengths=counts)
    return out


def _one_size(number, sizes, names, batch_size: int) -> tf.Tensor:
    """True once the images of a batch (``sizes``: their height and width) are of one
    size, else an error naming two: padding would put them in one tensor with boxes no
    longer normalised to them."""
    differ = tf.reduce_any(sizes != sizes[:1], axis=1)

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
            return tf.constant(False)

    return tf.cond(tf.reduce_any(differ), fail, lambda: tf.constant(True))
