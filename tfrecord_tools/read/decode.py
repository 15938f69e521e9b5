"""Image decoding for tf.data pipelines: one ``tf.case`` over the record's format.

Data flow: parsed features -> **decode** (JPEG / PNG / raw pixels / anything else) ->
same channel count -> optional resize -> batch. Used by both the TFRecord reader and its
raw-file twin, so the two are compared on exactly the same work.

The format is chosen per record from the magic bytes: labels in the wild lie (``JPEG``,
``jpg``, missing, wrong). The ``image/format`` string (normalised: case, spaces) matters only
for ``raw`` pixels, which have no magic number, and is trusted only when the byte count
equals height x width x channels. Anything else goes to ``decode_image`` (BMP, GIF).

Then the EXIF orientation, when asked for: from the record's ``image/orientation`` (the
TFRecord reader) or parsed from a raw file's own EXIF (``orient.exif_orientation``, the
twin), applied by ``orient.orient`` before any resize.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import tensorflow as tf

from ..dataset.keys import OURS, FeatureKeys
from ..format.example import FILENAME
from .options import CHANNEL_CHOICES, ReadOptions
from .orient import orient

JPEG, PNG, RAW, OTHER = 0, 1, 2, 3
#: Not a record's format but a promise about all of them: every record is a JPEG or a PNG
#: (the manifest's counts) and 3 channels are asked for, so ``decode_image`` sniffs the
#: magic bytes in its kernel. A ``tf.case`` or ``tf.switch_case`` inside a tf.data function
#: costs ~70-100 us a record (500x375 photos, one core: ~5 % of the decode each).
ANY = 4
#: The formats ``ANY`` stands for.
ANY_FORMATS = frozenset({"jpeg", "png"})


def format_code(
    encoded: tf.Tensor, fmt: tf.Tensor, height: tf.Tensor, width: tf.Tensor, channels: tf.Tensor
) -> tf.Tensor:
    """int32 JPEG/PNG/RAW/OTHER for each record (works on scalars and batches alike)."""
    head = tf.strings.substr(encoded, 0, 4)
    label = tf.strings.lower(tf.strings.strip(fmt))
    size = tf.cast(height * width * channels, tf.int64)
    is_raw = tf.logical_and(
        tf.equal(label, "raw"), tf.equal(tf.cast(tf.strings.length(encoded), tf.int64), size)
    )
    code = tf.where(is_raw, RAW, OTHER)  # decode_image sniffs BMP, GIF... itself
    code = tf.where(tf.equal(head, b"\x89PNG"), PNG, code)
    return tf.where(tf.equal(tf.strings.substr(head, 0, 3), b"\xff\xd8\xff"), JPEG, code)


def to_channels(image: tf.Tensor, channels: int) -> tf.Tensor:
    """Give uint8 images (``[..., C]``, C of 1-4) exactly ``channels`` channels (1, 3 or 4)."""
    known = image.shape[-1]
    if known == channels:
        return image
    if known == 1 and channels == 3:
        return tf.repeat(image, 3, axis=-1)
    have = tf.shape(image)[-1]
    gray = image[..., :1]

    def rgb() -> tf.Tensor:
        return tf.cond(have >= 3, lambda: image[..., :3], lambda: tf.repeat(gray, 3, axis=-1))

    if channels == 1:
        return tf.cond(have >= 3, lambda: tf.image.rgb_to_grayscale(image[..., :3]), lambda: gray)
    if channels == 3:
        return rgb()
    opaque = tf.fill(tf.concat([tf.shape(image)[:-1], [1]], 0), tf.constant(255, tf.uint8))
    alpha = tf.case(
        [
            (tf.equal(have, 4), lambda: image[..., 3:4]),
            (tf.equal(have, 2), lambda: image[..., 1:2]),
        ],
        default=lambda: opaque,
    )
    return tf.concat([rgb(), alpha], -1)


def decoders(
    encoded: tf.Tensor,
    height: tf.Tensor,
    width: tf.Tensor,
    stored_channels: tf.Tensor,
    channels: int,
) -> dict[int, Callable[[], tf.Tensor]]:
    """One decoding function per format code, for one record, each giving uint8
    [H, W, channels]."""
    if channels not in CHANNEL_CHOICES:
        raise ValueError(f"channels must be one of {CHANNEL_CHOICES}, got {channels}")

    def jpeg() -> tf.Tensor:
        # decode_jpeg handles gray, RGB and CMYK for 3 channels; CMYK cannot give 1 directly.
        if channels == 3:
            return tf.io.decode_jpeg(encoded, channels=3)
        return to_channels(tf.io.decode_jpeg(encoded, channels=0), channels)

    def png() -> tf.Tensor:
        image = tf.io.decode_png(encoded, channels=channels, dtype=tf.uint8)
        return _opaque_low_depth_alpha(encoded, image) if channels == 4 else image

    def raw() -> tf.Tensor:
        shape = tf.stack([height, width, stored_channels])
        pixels = tf.reshape(tf.io.decode_raw(encoded, tf.uint8), tf.cast(shape, tf.int32))
        return to_channels(pixels, channels)

    def other() -> tf.Tensor:  # BMP, GIF (first frame), and anything decode_image knows
        if channels == 4:  # decode_gif refuses 4 channels: add the (opaque) alpha ourselves
            image = tf.io.decode_image(encoded, channels=0, expand_animations=False)
            return to_channels(image, 4)
        return tf.io.decode_image(encoded, channels=channels, expand_animations=False)

    def any_() -> tf.Tensor:  # a JPEG or a PNG, to 3 channels: what jpeg() and png() give
        if channels != 3:
            raise ValueError("the ANY decoder is for 3 channels (CMYK JPEGs give no other count)")
        return tf.io.decode_image(encoded, channels=3, expand_animations=False)

    return {JPEG: jpeg, PNG: png, RAW: raw, OTHER: other, ANY: any_}


def _opaque_low_depth_alpha(encoded: tf.Tensor, image: tf.Tensor) -> tf.Tensor:
    """Undo a ``decode_png(channels=4)`` quirk (TF 2.21): a 1, 2 or 4-bit gray or palette PNG
    without transparency gets the alpha (1 << depth) - 1 (1, 3 or 15), not 255. Such an image
    has that alpha everywhere; one with a tRNS chunk has real alpha (0 and 255 for gray), so
    it is left alone. Costs an IHDR byte per PNG; the alpha is only looked at below 8 bits."""
    depth = tf.cast(tf.io.decode_raw(tf.strings.substr(encoded, 24, 1), tf.uint8)[0], tf.int32)

    def fixed() -> tf.Tensor:
        alpha = image[..., 3:]
        filler = tf.cast(tf.bitwise.left_shift(1, depth) - 1, tf.uint8)
        opaque = tf.concat(
            [image[..., :3], tf.fill(tf.shape(alpha), tf.constant(255, tf.uint8))], -1
        )
        return tf.cond(tf.reduce_all(tf.equal(alpha, filler)), lambda: opaque, lambda: image)

    return tf.cond(depth < 8, fixed, lambda: image)


def decode_image(
    encoded: tf.Tensor,
    code: tf.Tensor,
    height: tf.Tensor,
    width: tf.Tensor,
    stored_channels: tf.Tensor,
    *,
    channels: int = 3,
    orientation: tf.Tensor | None = None,
) -> tf.Tensor:
    """Decode one record to uint8 [H, W, channels], choosing the decoder with ``tf.case``;
    upright for its EXIF ``orientation`` when one is given."""
    fns = decoders(encoded, height, width, stored_channels, channels)
    image = tf.case(
        [(tf.equal(code, c), fns[c]) for c in (JPEG, PNG, RAW)],
        default=fns[OTHER],
        exclusive=False,
    )
    image.set_shape([None, None, channels])
    return image if orientation is None else orient(image, orientation)


@dataclass(frozen=True)
class Plan:
    """What happens to a record's pixels once its format is known: channels, JPEG DCT
    scaling, crop, resize, flip and output dtype (from :class:`ReadOptions`)."""

    channels: int = 3
    image_size: tuple[int, int] | None = None
    scaling: bool = False  # JPEGs decoded at the smallest DCT scale still >= image_size
    crop: str | None = None  # None, "center", "random"
    central_fraction: float = 0.875
    flip: bool = False
    dtype: str = "uint8"
    #: Where a JPEG's size comes from when it matters (``needs_dims``): ``"stored"`` (the
    #: record's height and width: our datasets always have them), ``"header"`` (the JPEG
    #: header: image files), ``"either"`` (stored when > 0, else the header). A ``tf.cond``
    #: between the two in every record's graph: 214 against 222 1024x768 photos/s, one core.
    dims: str = "either"
    #: The DCT ratio every JPEG decodes at, when one image shape for all records fixes it
    #: (:func:`static_ratio`): no stored size to parse, no ``tf.switch_case`` per record.
    ratio: int | None = None

    @classmethod
    def of(cls, opts: ReadOptions) -> Plan:
        return cls(
            channels=opts.channels,
            image_size=opts.image_size,
            scaling=opts.decode_scaling == "auto" and opts.image_size is not None,
            crop=opts.crop,
            central_fraction=opts.central_fraction,
            flip=opts.flip,
            dtype=opts.dtype,
        )

    @property
    def random(self) -> bool:
        """Each record needs a seed (``decode_record``'s ``key``)."""
        return self.crop == "random" or self.flip

    @property
    def needs_dims(self) -> bool:
        """A JPEG's stored height and width decide how it is decoded."""
        if self.image_size is None:
            return False
        return self.crop is not None or (self.scaling and self.ratio is None)

    @property
    def tf_dtype(self) -> tf.DType:
        return tf.float32 if self.dtype == "float32" else tf.uint8


def decode_record(
    encoded: tf.Tensor,
    code: int | tf.Tensor,
    height: tf.Tensor,
    width: tf.Tensor,
    stored_channels: tf.Tensor,
    plan: Plan,
    *,
    orientation: tf.Tensor | None = None,
    key: tf.Tensor | None = None,
) -> tf.Tensor:
    """One record to its output image: decode (``code``: a format code, or a tensor of one
    for ``tf.case``), orientation, resize, flip, dtype.

    With ``plan.needs_dims`` a JPEG is decoded from its stored ``height`` x ``width`` (0: read
    from the JPEG header) at the smallest DCT scale (``ratio`` 8, 4, 2, 1) that keeps both
    sides of the image, or of the crop, at or above ``image_size`` (one more ``tf.case``
    level), and a crop is decoded as a crop (``decode_and_crop_jpeg``); other formats are
    decoded whole, then cropped. The crop window is taken in the stored frame; the target is
    swapped for quarter-turn orientations (5-8), which are applied after decoding.
    ``key``: an int64 [2] stateless seed, for ``crop="random"`` and ``flip``.
    """
    rand = uniforms(key) if plan.random else None
    fns = decoders(encoded, height, width, stored_channels, plan.channels)
    if plan.ratio is not None and plan.crop is None:
        if plan.ratio != 1:
            fns[JPEG] = _jpeg_at(encoded, plan.channels, plan.ratio)
    elif plan.needs_dims:
        target = _stored_target(plan.image_size, orientation)  # type: ignore[arg-type]
        fns[JPEG] = _scaled_jpeg(encoded, height, width, plan, target, rand)
    if plan.crop is not None:
        for c in (PNG, RAW, OTHER):
            fns[c] = _cropped(fns[c], plan, rand)
    if isinstance(code, int):
        image = fns[code]()
    elif plan.needs_dims and plan.scaling and plan.dims == "stored":
        # one switch over the JPEG scales and the other formats, not a switch inside a
        # case: each is a function call a record (~70 us of a 500x375 photo's ~1,500)
        scale, jpegs = _jpeg_scales(encoded, height, width, plan, target, rand)
        others = [fns[c] for c in (PNG, RAW, OTHER)]
        branch = tf.where(tf.equal(code, JPEG), scale, len(RATIOS) - 1 + code)
        image = tf.switch_case(branch, [*jpegs, *others])
    else:
        image = tf.case(
            [(tf.equal(code, c), fns[c]) for c in (JPEG, PNG, RAW)],
            default=fns[OTHER],
            exclusive=False,
        )
    image.set_shape([None, None, plan.channels])
    if orientation is not None:
        image = orient(image, orientation)
    image = resize(image, plan.image_size, dtype=plan.dtype)
    if plan.flip:
        unflipped = image
        image = tf.cond(
            rand[-1] < 0.5,  # type: ignore[index]
            lambda: tf.reverse(unflipped, [1]),
            lambda: unflipped,
        )
    return image


RATIOS = (1, 2, 4, 8)  # the DCT scales libjpeg decodes at: 1/1, 1/2, 1/4, 1/8
_CROP_TRIES = 10  # random-resized-crop draws before the fallback
_CROP_SCALE = (0.08, 1.0)
_CROP_ASPECT = (3 / 4, 4 / 3)


def scale_ratio(height: tf.Tensor, width: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    """int32 DCT ratio (1, 2, 4 or 8): the largest whose decoded size (``ceil(side /
    ratio)``, as libjpeg rounds) keeps both sides at or above ``target`` ([2]: height, width)."""
    height, width = tf.cast(height, tf.int32), tf.cast(width, tf.int32)
    ratio = tf.constant(1)
    for r in RATIOS[1:]:
        fits = (-(-height // r) >= target[0]) & (-(-width // r) >= target[1])
        ratio = tf.where(fits, r, ratio)
    return ratio


def crop_window(
    height: tf.Tensor, width: tf.Tensor, plan: Plan, rand: tf.Tensor | None = None
) -> tf.Tensor:
    """int32 [4] ``(y, x, crop_height, crop_width)`` inside a ``height`` x ``width`` image:
    the central ``plan.central_fraction`` of each side, or a random-resized crop drawn from
    ``rand`` (:func:`uniforms`): area 8-100 %, aspect 3/4-4/3 (log-uniform), ten tries, then
    the whole image with its aspect clamped to that range."""
    h, w = tf.cast(height, tf.int32), tf.cast(width, tf.int32)
    hf, wf = tf.cast(h, tf.float32), tf.cast(w, tf.float32)
    if plan.crop == "center":
        ch = tf.maximum(1, tf.cast(tf.round(hf * plan.central_fraction), tf.int32))
        cw = tf.maximum(1, tf.cast(tf.round(wf * plan.central_fraction), tf.int32))
        return tf.stack([(h - ch) // 2, (w - cw) // 2, ch, cw])
    n = _CROP_TRIES
    low, high = _CROP_SCALE
    area = hf * wf * (low + rand[:n] * (high - low))  # type: ignore[index]
    log_low, log_high = math.log(_CROP_ASPECT[0]), math.log(_CROP_ASPECT[1])
    aspect = tf.exp(log_low + rand[n : 2 * n] * (log_high - log_low))  # type: ignore[index]
    cws = tf.cast(tf.round(tf.sqrt(area * aspect)), tf.int32)
    chs = tf.cast(tf.round(tf.sqrt(area / aspect)), tf.int32)
    fits = (cws >= 1) & (cws <= w) & (chs >= 1) & (chs <= h)
    first = tf.argmax(tf.cast(fits, tf.int32), output_type=tf.int32)
    # the fallback: the whole image, clamped to the aspect range
    whole = wf / tf.maximum(hf, 1.0)
    fall_w = tf.where(whole > _CROP_ASPECT[1], tf.cast(tf.round(hf * _CROP_ASPECT[1]), tf.int32), w)
    fall_h = tf.where(whole < _CROP_ASPECT[0], tf.cast(tf.round(wf / _CROP_ASPECT[0]), tf.int32), h)
    any_fit = tf.reduce_any(fits)
    ch = tf.clip_by_value(tf.where(any_fit, chs[first], fall_h), 1, tf.maximum(h, 1))
    cw = tf.clip_by_value(tf.where(any_fit, cws[first], fall_w), 1, tf.maximum(w, 1))
    y = tf.cast(rand[2 * n] * tf.cast(h - ch + 1, tf.float32), tf.int32)  # type: ignore[index]
    x = tf.cast(rand[2 * n + 1] * tf.cast(w - cw + 1, tf.float32), tf.int32)  # type: ignore[index]
    return tf.stack([tf.minimum(y, h - ch), tf.minimum(x, w - cw), ch, cw])


def uniforms(key: tf.Tensor | None) -> tf.Tensor:
    """A record's random numbers in [0, 1): crop tries (area, aspect), offsets, flip."""
    if key is None:
        raise ValueError("crop='random' and flip need a per-record key")
    return tf.random.stateless_uniform([2 * _CROP_TRIES + 3], seed=tf.cast(key, tf.int64))


def _stored_target(image_size: tuple[int, int], orientation: tf.Tensor | None) -> tf.Tensor:
    """The output size in the stored frame: quarter turns (orientation 5-8) swap it."""
    target = tf.constant(image_size, tf.int32)
    if orientation is None:
        return target
    turned = (orientation >= 5) & (orientation <= 8)
    return tf.where(turned, tf.reverse(target, [0]), target)


def _scaled_jpeg(encoded, height, width, plan: Plan, target, rand) -> Callable[[], tf.Tensor]:
    """The JPEG branch of ``decode_record`` when the stored size matters: a switch over
    the DCT ratios (:func:`_jpeg_scales`)."""

    def run() -> tf.Tensor:
        scale, branches = _jpeg_scales(encoded, height, width, plan, target, rand)
        return tf.switch_case(scale, branches) if plan.scaling else branches[0]()

    return run


def _jpeg_scales(
    encoded, height, width, plan: Plan, target, rand
) -> tuple[tf.Tensor, list[Callable[[], tf.Tensor]]]:
    """A JPEG's decoders at each DCT ratio (``RATIOS``), each a ``decode_jpeg`` or, for a
    crop, a ``decode_and_crop_jpeg`` whose window is in the scaled image (it covers the
    crop, to within a scaled pixel), and the index of the one to run: the smallest scale
    that keeps the image, or the crop, at or above ``target`` (0 without ``plan.scaling``).
    The size comes from ``plan.dims``; ``"header"`` and ``"either"`` read the JPEG's, so
    call this inside the JPEG branch then."""
    channels = plan.channels
    if plan.dims == "stored":
        dims = tf.cast(tf.stack([height, width]), tf.int32)
    elif plan.dims == "header":
        dims = tf.io.extract_jpeg_shape(encoded)[:2]
    else:
        dims = tf.cond(
            (height > 0) & (width > 0),
            lambda: tf.cast(tf.stack([height, width]), tf.int32),
            lambda: tf.io.extract_jpeg_shape(encoded)[:2],
        )
    h, w = dims[0], dims[1]
    window = None
    if plan.crop is not None:
        window = crop_window(h, w, plan, rand)
    if plan.scaling and window is None:
        ratio = scale_ratio(h, w, target)
    elif plan.scaling:  # a crop's scaled size, rounded down: never below the target
        ratio = tf.constant(1)
        for r in RATIOS[1:]:
            fits = (window[2] // r >= target[0]) & (window[3] // r >= target[1])
            ratio = tf.where(fits, r, ratio)
    else:
        ratio = tf.constant(1)
    want = 3 if channels == 3 else 0  # CMYK cannot give 1 channel directly

    def at(r: int) -> Callable[[], tf.Tensor]:
        if window is None:
            return _jpeg_at(encoded, channels, r)

        def go() -> tf.Tensor:
            y0, x0 = window[0] // r, window[1] // r
            y1 = tf.minimum(-(-(window[0] + window[2]) // r), -(-h // r))
            x1 = tf.minimum(-(-(window[1] + window[3]) // r), -(-w // r))
            scaled = tf.stack([y0, x0, y1 - y0, x1 - x0])
            image = tf.io.decode_and_crop_jpeg(encoded, scaled, channels=want, ratio=r)
            return image if channels == 3 else to_channels(image, channels)

        return go

    scale = tf.cast(tf.math.log(tf.cast(ratio, tf.float32)) / math.log(2.0) + 0.5, tf.int32)
    return scale, [at(r) for r in RATIOS]


def _jpeg_at(encoded: tf.Tensor, channels: int, ratio: int) -> Callable[[], tf.Tensor]:
    """A whole JPEG decoded at DCT scale 1/``ratio``, to ``channels``."""

    def go() -> tf.Tensor:
        want = 3 if channels == 3 else 0  # CMYK cannot give 1 channel directly
        image = tf.io.decode_jpeg(encoded, channels=want, ratio=ratio)
        return image if channels == 3 else to_channels(image, channels)

    return go


def static_ratio(stored: tuple[int, int], target: tuple[int, int]) -> int:
    """:func:`scale_ratio` in Python, for one stored (height, width) known up front."""
    height, width = stored
    fits = [r for r in RATIOS if -(-height // r) >= target[0] and -(-width // r) >= target[1]]
    return max(fits, default=1)


def _cropped(fn: Callable[[], tf.Tensor], plan: Plan, rand) -> Callable[[], tf.Tensor]:
    """Decode whole, then crop (formats without a cropping decoder)."""

    def run() -> tf.Tensor:
        image = fn()
        shape = tf.shape(image)
        y, x, ch, cw = tf.unstack(crop_window(shape[0], shape[1], plan, rand))
        return image[y : y + ch, x : x + cw]

    return run


def known_code(image_format: str | None) -> int | None:
    """The decoder of every record when ``image_format`` says which (``"any"``: ANY), else
    None (a ``tf.case`` per record)."""
    return {"jpeg": JPEG, "png": PNG, "any": ANY}.get(image_format or "")


def decode_batch(
    encoded: tf.Tensor,
    fmt: tf.Tensor,
    height: tf.Tensor,
    width: tf.Tensor,
    stored_channels: tf.Tensor,
    *,
    plan: Plan,
    shape: tuple[int, int],
    image_format: str | None = None,
    orientation: tf.Tensor | None = None,
    keys: tf.Tensor | None = None,
) -> tf.Tensor:
    """Decode a batch of records to [N, H, W, channels] (``plan.dtype``) inside one graph loop.

    Each record goes through :func:`decode_record` (its ``tf.case``, or straight to its
    decoder when ``image_format`` says every record is PNG or JPEG; orientation when
    ``orientation`` ([N] EXIF orientations) is given; ``keys``: [N, 2] seeds for random
    crops and flips); ``shape`` is every output image's (height, width). One loop per batch
    instead of one tf.data element per image: for 28x28 PNGs the per-element cost was most
    of the work (measured on 2 cores: 27,000/s against 24,000/s on one core, 42,000/s
    against 27,000/s on two, with the map over batches in parallel).
    """
    n = tf.shape(encoded)[0]

    def one(i: tf.Tensor) -> tf.Tensor:
        code = known_code(image_format)
        if code is None:
            code = format_code(encoded[i], fmt[i], height[i], width[i], stored_channels[i])
        return decode_record(
            encoded[i],
            code,
            height[i],
            width[i],
            stored_channels[i],
            plan,
            orientation=None if orientation is None else orientation[i],
            key=None if keys is None else keys[i],
        )

    images = tf.TensorArray(plan.tf_dtype, size=n, element_shape=[*shape, plan.channels])
    _, images = tf.while_loop(
        lambda i, _: i < n,
        lambda i, acc: (i + 1, acc.write(i, one(i))),
        (tf.constant(0), images),
        parallel_iterations=1,  # batches run in parallel instead: no contention within one
    )
    stacked = images.stack()
    stacked.set_shape([encoded.shape[0], *shape, plan.channels])  # a static batch size stays known
    return stacked


#: Resize with antialiasing (a triangle filter as wide as the downscale): decided by PSNR
#: against Pillow's LANCZOS, see ``benchmarks/bench_decode.py``.
ANTIALIAS = False


def resize(
    image: tf.Tensor,
    image_size: tuple[int, int] | None,
    *,
    dtype: str = "uint8",
    antialias: bool | None = None,
) -> tf.Tensor:
    """Bilinear resize to (height, width); uint8 (rounded) or float32 (as resized). No
    resize without a size."""
    if image_size is None:
        return tf.cast(image, tf.float32) if dtype == "float32" else image
    aa = ANTIALIAS if antialias is None else antialias
    resized = tf.image.resize(image, image_size, method="bilinear", antialias=aa)
    if dtype == "float32":
        return resized
    # Bilinear weights are convex, so values stay within 0..255: rounding half up is one add
    # before the truncating cast (round + clip cost ~10 % of a 500x375 JPEG's decode).
    return tf.cast(resized + 0.5, tf.uint8)


def parse_spec(keys: FeatureKeys = OURS, *, orientation: bool = False) -> dict[str, Any]:
    """The ``tf.io.parse_example`` spec for the keys a reader needs, under ``keys``' names
    (ours by default; keys a layout lacks are left out: :func:`parsed` fills them in).

    ``image/format`` defaults to empty: readers then trust the magic bytes.
    ``image/orientation`` (absent: 1) only with ``orientation``: each key parsed costs.
    """
    spec = {keys.image: tf.io.FixedLenFeature([], tf.string)}
    if keys.format is not None:
        spec[keys.format] = tf.io.FixedLenFeature([], tf.string, default_value="")
    for key in (keys.height, keys.width, keys.channels):
        if key is not None:
            spec[key] = tf.io.FixedLenFeature([], tf.int64, default_value=0)
    if keys.label is not None:
        spec[keys.label] = tf.io.FixedLenFeature([], tf.int64, default_value=keys.label_default)
    if orientation and keys.orientation is not None:
        spec[keys.orientation] = tf.io.FixedLenFeature([], tf.int64, default_value=1)
    return spec


def parsed(f: dict[str, tf.Tensor], keys: FeatureKeys) -> tuple[dict[str, tf.Tensor], tf.Tensor]:
    """``parse_example``'s output under the decoders' names (``encoded``, ``format``,
    ``height``, ``width``, ``channels``, ``orientation`` when parsed) and the labels; keys
    the spec left out come as ``format`` ``keys.default_format``, sizes 0, labels -1."""
    encoded = f[keys.image]
    shape = tf.shape(encoded)
    no_label = tf.fill(shape, tf.constant(-1, tf.int64))
    labels = f[keys.label] if keys.label is not None else no_label
    zeros = tf.zeros_like(labels)
    fmt = f.get(keys.format) if keys.format is not None else None
    features = {
        "encoded": encoded,
        "format": fmt if fmt is not None else tf.fill(shape, keys.default_format),
    }
    for name in ("height", "width", "channels"):
        key = getattr(keys, name)
        value = f.get(key) if key is not None else None
        features[name] = value if value is not None else zeros
    if keys.orientation is not None and keys.orientation in f:
        features["orientation"] = f[keys.orientation]
    if FILENAME in f:  # asked for by with_filename
        features["name"] = f[FILENAME]
    return features, labels


# --------------------------------------------------------------------------- batches of any size


def with_filename(spec: dict[str, Any]) -> dict[str, Any]:
    """``spec`` plus the record's source file name (``image/filename``: ours, slim's; ""
    where a record has none), which :func:`parsed` gives as ``name``."""
    return {**spec, FILENAME: tf.io.FixedLenFeature([], tf.string, default_value="")}


def batch_one_size(ds: tf.data.Dataset, batch_size: int, drop_remainder: bool) -> tf.data.Dataset:
    """``(image, label, name, [height, width])`` elements to ``(images, labels)`` batches,
    as ``batch`` makes them, for images whose sizes nothing promised to be one (no
    ``image_size``, no ``image_shape`` in a manifest). Where a batch holds two sizes, the
    error names two of its images (``name``, else their place in the stream) and their
    sizes and says to pass ``image_size``: TensorFlow's own says only "Cannot add tensor
    to the batch: number of elements does not match"."""

    def check(number, batch):
        images, labels, names, sizes = batch
        differ = tf.reduce_any(sizes != sizes[:1], axis=1)

        def fail():
            def describe(i):
                place = tf.strings.join(
                    [
                        "image ",
                        tf.strings.as_string(number * batch_size + tf.cast(i, tf.int64)),
                        " read",
                    ]
                )
                name = tf.where(names[i] == "", place, names[i])
                height, width = tf.strings.as_string(sizes[i][0]), tf.strings.as_string(sizes[i][1])
                return tf.strings.join([name, " is ", height, "x", width])

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
                return tf.identity(images)

        return tf.cond(tf.reduce_any(differ), fail, lambda: images), labels

    batches = ds.padded_batch(batch_size, drop_remainder=drop_remainder)
    return batches.enumerate().map(check)
