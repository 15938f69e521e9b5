"""Decoding fewer pixels: JPEG DCT scaling chosen per record, crops decoded as crops, random
crops and flips seeded per record, float output; the same in the raw-file twin."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from tfrecord_tools import convert_image_folder
from tfrecord_tools.errors import TFRecordToolsError
from tfrecord_tools.read.options import ReadOptions

tf = pytest.importorskip("tensorflow")
from tfrecord_tools.read import decode  # noqa: E402
from tfrecord_tools.read.pipeline import make_dataset, make_raw_dataset  # noqa: E402

# (height, width): wide, tall, square, tiny
SIZES = [(96, 160), (160, 64), (128, 128), (3, 2)]


def _smooth(height: int, width: int, seed: int) -> np.ndarray:
    """A smooth picture (gradients + a little noise): resizes of it agree closely."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([x / max(width, 1), y / max(height, 1), (x + y) / (height + width)], -1)
    pixels = 40 + 170 * base + rng.normal(0, 3, (height, width, 3))
    return np.clip(pixels, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Two classes of JPEGs (q90) and PNGs in every aspect, plus a JPEG turned by EXIF."""
    root = tmp_path_factory.mktemp("scaling-src")
    for label in ("a", "b"):
        (root / label).mkdir()
    for i, (h, w) in enumerate(SIZES):
        pixels = _smooth(h, w, i)
        Image.fromarray(pixels).save(root / "a" / f"{i}.jpg", quality=90)
        Image.fromarray(pixels).save(root / "b" / f"{i}.png")
    exif = Image.Exif()
    exif[274] = 6  # stored 96x160, shown 160x96
    Image.fromarray(_smooth(96, 160, 9)).save(root / "a" / "turned.jpg", quality=90, exif=exif)
    return root


@pytest.fixture(scope="module")
def dataset(folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("scaling-ds")
    convert_image_folder(folder, out, workers=1, quiet=True)
    return out


def _images(ds) -> list[np.ndarray]:
    return [x.numpy() for x, _ in ds]


# --- the scale ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("height", "width", "target", "want"),
    [
        (768, 1024, (224, 224), 2),  # 1/4 would give 192 rows
        (1500, 2000, (224, 224), 4),
        (1800, 1800, (224, 224), 8),
        (1792, 1793, (224, 224), 8),  # ceil(1793 / 8) = 225
        (1785, 2000, (224, 224), 4),  # ceil(1785 / 8) = 224 ... no: 223.1 -> 224, so 8
        (1784, 2000, (224, 224), 4),  # ceil(1784 / 8) = 223 < 224
        (100, 100, (224, 224), 1),  # upscaled: no DCT scaling helps
        (160, 64, (16, 16), 4),
        (96, 160, (12, 20), 8),
        (3, 2, (1, 1), 8),  # libjpeg never gives less than 1x1
    ],
)
def test_ratio_is_the_smallest_scale_keeping_both_sides(height, width, target, want):
    # libjpeg's scaled size is ceil(side / ratio); the ratio is the largest that keeps it
    def fits(r):
        return -(-height // r) >= target[0] and -(-width // r) >= target[1]

    oracle = max([1, *(r for r in decode.RATIOS if fits(r))])
    got = int(decode.scale_ratio(tf.constant(height), tf.constant(width), tf.constant(target)))
    assert got == oracle
    if (height, width) != (1785, 2000):
        assert got == want


@pytest.mark.parametrize(("height", "width"), SIZES[:3])
@pytest.mark.parametrize("target", [(16, 16), (24, 40), (40, 24), (60, 60)])
def test_scaled_jpeg_keeps_both_sides_at_or_above_the_target(height, width, target):
    encoded = io.BytesIO()
    Image.fromarray(_smooth(height, width, 1)).save(encoded, "JPEG", quality=90)
    data = tf.constant(encoded.getvalue())
    ratio = int(decode.scale_ratio(height, width, tf.constant(target)))
    shape = tf.io.decode_jpeg(data, ratio=ratio).shape
    assert shape[0] >= target[0] and shape[1] >= target[1]
    if ratio < 8:  # the next scale down would be too small
        finer = tf.io.decode_jpeg(data, ratio=2 * ratio).shape
        assert finer[0] < target[0] or finer[1] < target[1]


@pytest.mark.parametrize(
    ("dims", "stored", "want"),
    [
        ("stored", (256, 256), 64),  # the record's size: 1/4 keeps 64
        ("stored", (64, 64), 256),  # a stored size that lies is believed: no scaling
        ("header", (64, 64), 64),  # the JPEG's own header, whatever is stored
        ("header", (0, 0), 64),
        ("either", (64, 64), 256),  # stored when given
        ("either", (0, 0), 64),  # else the header
    ],
)
def test_the_size_that_picks_the_scale_comes_from_where_the_plan_says(dims, stored, want):
    encoded = io.BytesIO()
    Image.fromarray(_smooth(256, 256, 2)).save(encoded, "JPEG", quality=90)
    plan = decode.Plan(image_size=(64, 64), scaling=True, dims=dims)
    height, width = (tf.constant(v, tf.int64) for v in stored)
    run = decode._scaled_jpeg(
        tf.constant(encoded.getvalue()), height, width, plan, tf.constant([64, 64]), None
    )
    assert run().shape[:2] == (want, want)


def test_our_datasets_take_the_stored_size_and_image_files_the_header(dataset, folder, monkeypatch):
    seen = []
    real = decode.decode_batch

    def spy(*args, plan, **kwargs):
        seen.append(plan.dims)
        return real(*args, plan=plan, **kwargs)

    monkeypatch.setattr(decode, "decode_batch", spy)  # the pipeline calls decode.decode_batch
    make_dataset(dataset, image_size=16, batch_size=4)
    make_raw_dataset(folder, image_size=16, batch_size=4)
    assert seen == ["stored", "header"]


@pytest.mark.parametrize("size", [(16, 16), (24, 40), (64, 64)])
@pytest.mark.parametrize("batch_size", [None, 3])
def test_scaled_decode_is_close_to_full_decode(dataset, size, batch_size):
    options = {"image_size": size, "batch_size": batch_size}
    full = make_dataset(dataset, decode_scaling="off", **options)
    scaled = make_dataset(dataset, **options)
    got, want = _images(scaled), _images(full)
    if batch_size:
        got, want = [np.concatenate(got)], [np.concatenate(want)]
    for a, b in zip(got, want, strict=True):
        assert a.shape == b.shape
        diff = np.abs(a.astype(int) - b.astype(int))
        assert diff.mean() < 3 and np.percentile(diff, 99) < 16


def test_turned_record_is_scaled_from_its_stored_size(dataset, folder):
    # stored 96x160, upright 160x96: a target of 40x24 allows 1/4 in the stored frame
    # (24x40), so the upright result must still match the full decode
    options = {"image_size": (40, 24), "image_format": "jpeg"}
    got = _images(make_dataset(dataset, **options))
    want = _images(make_dataset(dataset, decode_scaling="off", **options))
    for a, b in zip(got, want, strict=True):
        assert np.abs(a.astype(int) - b.astype(int)).mean() < 3


# --- crops ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("height", "width"), [*SIZES, (1, 1), (1, 300), (300, 1), (7, 1000)])
@pytest.mark.parametrize("crop", ["center", "random"])
def test_crop_windows_lie_inside_the_image(height, width, crop):
    plan = decode.Plan(image_size=(8, 8), crop=crop)
    for i in range(40 if crop == "random" else 1):
        rand = decode.uniforms(tf.constant([3, i], tf.int64)) if crop == "random" else None
        y, x, ch, cw = (int(v) for v in decode.crop_window(height, width, plan, rand))
        assert y >= 0 and x >= 0 and ch >= 1 and cw >= 1
        assert y + ch <= height and x + cw <= width


def test_random_windows_follow_the_scale_and_aspect_ranges():
    plan = decode.Plan(image_size=(8, 8), crop="random")
    areas, aspects = [], []
    for i in range(200):
        rand = decode.uniforms(tf.constant([0, i], tf.int64))
        _, _, ch, cw = (int(v) for v in decode.crop_window(400, 600, plan, rand))
        areas.append(ch * cw / (400 * 600))
        aspects.append(cw / ch)
    assert min(areas) > 0.07 and max(areas) <= 1.0 and np.median(areas) > 0.3
    assert min(aspects) > 0.74 and max(aspects) < 1.35


def test_center_crop_is_the_central_fraction_resized(dataset, folder):
    # PNGs: decoded whole, then cropped; JPEGs (scaling off): decoded as the crop
    options = {"image_size": (8, 8), "crop": "center", "decode_scaling": "off"}
    got = _images(make_dataset(dataset, **options))
    want = []
    for path in sorted(folder.rglob("*.*")):
        pixels = tf.io.decode_image(path.read_bytes(), channels=3).numpy()
        if path.name == "turned.jpg":
            pixels = np.rot90(pixels, -1)
        h, w = pixels.shape[:2]
        ch, cw = max(1, round(h * 0.875)), max(1, round(w * 0.875))
        crop = pixels[(h - ch) // 2 :][:ch, (w - cw) // 2 :][:, :cw]
        want.append(decode.resize(tf.constant(np.ascontiguousarray(crop)), (8, 8)).numpy())
    assert sorted(_digests(got)) == sorted(_digests(want))


def _digests(images) -> list[bytes]:
    return [np.ascontiguousarray(x).tobytes() for x in images]


def test_crop_reads_all_formats_batched_and_not(dataset):
    for batch_size in (None, 4):
        for crop in ("center", "random"):
            ds = make_dataset(dataset, image_size=12, crop=crop, seed=1, batch_size=batch_size)
            images = np.concatenate([x.numpy().reshape(-1, 12, 12, 3) for x, _ in ds])
            assert images.shape == (9, 12, 12, 3) and images.dtype == np.uint8


def test_same_seed_same_crops_other_seed_other_crops(dataset):
    def crops(seed, **options):
        return _images(
            make_dataset(dataset, image_size=10, crop="random", seed=seed, batch_size=3, **options)
        )

    first, again, other = crops(1), crops(1), crops(2)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))
    # the twins of the unbatched path too
    assert all(
        np.array_equal(a, b)
        for a, b in zip(
            _images(make_dataset(dataset, image_size=10, crop="random", seed=4)),
            _images(make_dataset(dataset, image_size=10, crop="random", seed=4)),
            strict=True,
        )
    )
    # and each epoch crops anew
    two = _images(make_dataset(dataset, image_size=10, crop="random", seed=1, repeat=2))
    assert not all(np.array_equal(a, b) for a, b in zip(two[:9], two[9:], strict=True))


def test_flip_mirrors_some_images_and_keeps_the_others(dataset):
    plain = _images(make_dataset(dataset, image_size=10, crop="center", repeat=4))
    flipped = _images(
        make_dataset(dataset, image_size=10, crop="center", flip=True, seed=0, repeat=4)
    )
    mirrored = [
        np.array_equal(f, p[:, ::-1]) and not np.array_equal(f, p)
        for f, p in zip(flipped, plain, strict=True)
    ]
    kept = [np.array_equal(f, p) for f, p in zip(flipped, plain, strict=True)]
    assert all(m or k for m, k in zip(mirrored, kept, strict=True))
    assert any(mirrored) and any(kept)


# --- float output, the raw twin, options -----------------------------------------------------


@pytest.mark.parametrize("crop", [None, "center"])
def test_float32_is_the_uint8_path_before_rounding(dataset, crop):
    options = {"image_size": (20, 16), "crop": crop, "batch_size": 9}
    ((as_float, _),) = make_dataset(dataset, dtype="float32", **options)
    ((as_uint8, _),) = make_dataset(dataset, **options)
    assert as_float.dtype == tf.float32 and as_uint8.dtype == tf.uint8
    diff = np.abs(as_float.numpy() - as_uint8.numpy().astype(np.float32))
    assert diff.max() <= 0.5 + 1e-3
    assert np.abs(as_float.numpy() - np.round(as_float.numpy())).max() > 0.01  # not rounded


def test_float32_without_resize(dataset):
    (image, _), *_ = make_dataset(dataset, dtype="float32", image_format="png")
    assert image.dtype == tf.float32


@pytest.mark.parametrize(
    "options",
    [
        {"image_size": 14},
        {"image_size": 14, "crop": "center"},
        {"image_size": 14, "crop": "random", "seed": 3, "flip": True},
        {"image_size": 14, "crop": "center", "dtype": "float32"},
    ],
)
@pytest.mark.parametrize("batch_size", [None, 3])
def test_raw_twin_gives_the_same_images(dataset, folder, options, batch_size):
    def read(make, src):
        ds = make(src, batch_size=batch_size, **options)
        images = [x.numpy().reshape(-1, 14, 14, 3) for x, _ in ds]
        return np.concatenate(images)

    twin, records = read(make_raw_dataset, folder), read(make_dataset, dataset)
    if options.get("crop") == "random":  # records come in another order: crops differ
        assert twin.shape == records.shape
        return
    # the same images, whatever the order: compare the sorted sums
    assert sorted(twin.reshape(len(twin), -1).sum(1).tolist()) == pytest.approx(
        sorted(records.reshape(len(records), -1).sum(1).tolist())
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"crop": "center"}, "crop='center' needs image_size"),
        ({"crop": "random"}, "crop='random' needs image_size"),
        ({"image_size": 8, "crop": "middle"}, "crop must be None, 'center' or 'random'"),
        ({"decode_scaling": "fast"}, "decode_scaling must be one of auto, off"),
        ({"dtype": "float16"}, "dtype must be one of uint8, float32"),
        ({"image_size": 8, "crop": "center", "central_fraction": 0}, "central_fraction must"),
        ({"flip": "yes"}, "flip must be True or False"),
    ],
)
def test_bad_options_name_the_option(options, message):
    with pytest.raises(TFRecordToolsError, match=message.replace("(", r"\(")):
        ReadOptions(**options)


def test_options_spelled_loosely_are_normalised():
    opts = ReadOptions(image_size=8, crop=" Center ", decode_scaling="OFF", dtype="Float32")
    assert (opts.crop, opts.decode_scaling, opts.dtype) == ("center", "off", "float32")
    assert ReadOptions(crop="none").crop is None
