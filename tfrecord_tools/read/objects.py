"""The objects of a detection record, moved with its pixels: ``read/detection.py`` packs a
record's per-object lists here, then crops, turns, scales and flips them as it does the
image, and unpacks them into its output keys per batch.

A record's objects travel as few tensors as possible (each op on a tensor, and each
tensor of a tf.data element, costs a record's graph time): ``floats`` [N, 5] (ymin, xmin,
ymax, xmax, area), ``ints`` [N, 3] (class, is_crowd, difficult), ``keypoints`` [N, K, 3]
(y, x, visibility) when asked for. Packing never fails, whatever the lists' lengths (a
list is cut or padded to the record's number of boxes): a record whose lists disagree is
flagged by ``detection.py`` and raised with its name once its batch is made, so no
``tf.cond`` guards each record. Orientation and flip are one table lookup (the eight
turns of ``format.detection.orient_box`` as column gathers and ``1 - v``), not a switch.
Masks (image channels [h, w, N]) and class masks are cropped, turned and resized with the
pixels (nearest-neighbour).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import tensorflow as tf

from ..format import detection as det
from . import decode
from .options import ReadOptions

_BOXES = (det.YMIN, det.XMIN, det.YMAX, det.XMAX)
#: The lists a record may leave out (or empty), in ``ints`` / ``floats`` order: 0 for each box.
_INT_DEFAULTS = (det.IS_CROWD, det.DIFFICULT)


def pack(f, opts: ReadOptions) -> dict[str, tf.Tensor]:
    """A record's per-object lists (1-D, as parsed) packed: ``floats``, ``ints`` and with
    ``opts.keypoints`` ``keypoints`` (visibility 2 where the record has none). Every list is
    fitted to the number of ``xmin`` values: consistent records lose nothing, others
    (flagged by the caller) give a packing that fails no op."""
    n = tf.size(f[det.XMIN])
    fit = _fitter(n)
    floats = tf.stack([fit(f[k]) for k in (*_BOXES, det.AREA)], axis=1)
    ints = tf.stack([fit(f[k]) for k in (det.CLASS_LABEL, *_INT_DEFAULTS)], axis=1)
    objects = {"floats": floats, "ints": ints}
    if opts.keypoints:
        xs = f[det.KEYPOINT_X]
        per_object = tf.size(xs) // tf.maximum(n, 1)
        fit = _fitter(n * per_object)
        seen = tf.cast(fit(f[det.KEYPOINT_VISIBILITY], 2), tf.float32)
        yxv = tf.stack([fit(f[det.KEYPOINT_Y]), fit(xs), seen], axis=-1)
        objects["keypoints"] = tf.reshape(yxv, tf.stack([n, per_object, 3]))
    return objects


def _fitter(size: tf.Tensor):
    """``fit(values, fill=0)``: 1-D ``values`` cut or padded with ``fill`` to ``size`` (an
    absent optional list: all ``fill``); two ops a list."""
    end = tf.reshape(size, [1])
    zeros: dict = {}

    def fit(values: tf.Tensor, fill: int = 0) -> tf.Tensor:
        if (values.dtype, fill) not in zeros:
            zeros[values.dtype, fill] = tf.fill(end, tf.constant(fill, values.dtype))
        return tf.slice(tf.concat([values, zeros[values.dtype, fill]], 0), [0], end)

    return fit


def crop(objects, window: tf.Tensor) -> tuple[dict[str, tf.Tensor], tf.Tensor]:
    """Objects in the frame of the crop ``window`` (normalised y0, x0, y1, x1): boxes
    clipped to it, those with no area left dropped (``kept``: the indices of the others);
    keypoints outside it get visibility 0."""
    corner = tf.gather(window, [0, 1, 0, 1])
    sides = tf.gather(window, [2, 3, 2, 3]) - corner
    offset = tf.concat([corner, [0.0]], 0)  # the area column stays as it is
    extent = tf.concat([sides, [1.0]], 0)
    floats = (objects["floats"] - offset) / extent
    floats = tf.maximum(tf.minimum(floats, _HIGH), _LOW)  # as tf.clip_by_value
    kept = tf.where(tf.reduce_all(floats[:, 2:4] > floats[:, 0:2], axis=1))[:, 0]
    moved = {"floats": floats, "ints": objects["ints"]}
    if "keypoints" in objects:
        points = objects["keypoints"]
        yx = (points[..., :2] - corner[:2]) / sides[:2]
        inside = tf.reduce_all((yx >= 0) & (yx <= 1), axis=-1)
        seen = tf.where(inside, points[..., 2], 0.0)
        moved["keypoints"] = tf.concat([yx, seen[..., None]], -1)
    return {k: tf.gather(v, kept) for k, v in moved.items()}, kept


#: Crop clipping of floats' columns: boxes to [0, 1], the area as it is.
_LOW = np.array([0, 0, 0, 0, -np.inf], np.float32)
_HIGH = np.array([1, 1, 1, 1, np.inf], np.float32)


def _turn_tables() -> tuple[np.ndarray, ...]:
    """``format.detection.orient_box`` for orientations 1-8 as gathers: box column j
    becomes ``shift + sign * column[perm[j]]``; ``(perm, sign, shift)`` of floats [N, 5]
    (the area column stays), then the same of keypoints [N, K, 3] (a point is a box of no
    size; visibility stays). Found by running the rule on distinct fractions."""
    values = [Fraction(k, 10) for k in range(1, 5)]  # v and 1 - v all differ
    perm = np.tile(np.arange(5, dtype=np.int32), (8, 1))  # column 4 (area) stays
    sign, shift = np.ones((8, 5), np.float32), np.zeros((8, 5), np.float32)
    for k in range(8):
        for j, out in enumerate(det.orient_box(*values, k + 1)):
            mirrored = out not in values
            perm[k, j] = values.index(1 - out if mirrored else out)
            sign[k, j], shift[k, j] = (-1.0, 1.0) if mirrored else (1.0, 0.0)
    # a point (y, x) is the box (y, x, y, x): its (y, x) are the first two box columns,
    # taken from the point's column perm % 2; visibility (column 2) stays
    point_perm = np.concatenate([perm[:, :2] % 2, np.full((8, 1), 2, np.int32)], 1)
    point_sign = np.concatenate([sign[:, :2], np.ones((8, 1), np.float32)], 1)
    point_shift = np.concatenate([shift[:, :2], np.zeros((8, 1), np.float32)], 1)
    return perm, sign, shift, point_perm, point_sign, point_shift


_TURNS = _turn_tables()


def turn(objects, index: tf.Tensor) -> dict[str, tf.Tensor]:
    """Boxes and keypoints turned by orientation ``index + 1`` (0-7, int32), as
    ``orient.orient`` turns the pixels (``format.detection.orient_box``)."""
    moved = dict(objects)
    for key, tables in (("floats", _TURNS[:3]), ("keypoints", _TURNS[3:])):
        if key in objects:
            perm, sign, shift = (tf.gather(table, index) for table in tables)
            moved[key] = tf.gather(objects[key], perm, axis=-1) * sign + shift
    return moved


def orient(objects, orientation: tf.Tensor) -> dict[str, tf.Tensor]:
    """Objects turned upright for the EXIF ``orientation`` (others than 1-8: as they are)."""
    index = tf.cast(orientation, tf.int32) - 1
    return turn(objects, tf.where((index >= 0) & (index < 8), index, 0))


def flip(objects, flipped: tf.Tensor) -> dict[str, tf.Tensor]:
    """Objects mirrored left-right (x -> 1 - x) where ``flipped``: orientation 2."""
    return turn(objects, tf.cast(flipped, tf.int32))


def scale(objects, share: tf.Tensor) -> dict[str, tf.Tensor]:
    """Objects of an image resized into the (y, x) ``share`` of the output (keep_aspect)."""
    moved = dict(objects)
    moved["floats"] = objects["floats"] * tf.concat([share, share, [1.0]], 0)
    if "keypoints" in objects:
        moved["keypoints"] = objects["keypoints"] * tf.concat([share, [1.0]], 0)
    return moved


def unpack(objects, real: tf.Tensor | None = None) -> dict[str, tf.Tensor]:
    """The output keys of packed objects (one record's, or a padded batch's: ``real`` says
    which rows are objects, padding classes read -1): boxes, classes, is_crowd,
    difficult, area, keypoints as (x, y, visibility), as stored."""
    floats, ints = objects["floats"], objects["ints"]
    classes = ints[..., 0]
    if real is not None:
        classes = tf.where(real, classes, tf.constant(-1, tf.int64))
    out = {
        "boxes": floats[..., :4],
        "classes": classes,
        "is_crowd": ints[..., 1],
        "difficult": ints[..., 2],
        "area": floats[..., 4],
    }
    if "keypoints" in objects:
        out["keypoints"] = tf.gather(objects["keypoints"], [1, 0, 2], axis=-1)
    return out


# --------------------------------------------------------------------------- masks


def masks(f, opts: ReadOptions, window, dims, locate) -> tf.Tensor:
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


def resize(image, layers, opts: ReadOptions):
    """``(image, layers, share)`` at ``image_size``: stretched, or with ``keep_aspect``
    scaled to fit and padded bottom/right with 0 (``share``: the (y, x) share of the output
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
    share = tf.cast(size, tf.float32) / tf.constant([height, width], tf.float32)
    return image, layers, share


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
