"""Decisions the manifest lets the reader take once instead of per record: one decoder for
datasets of JPEGs and PNGs, one DCT ratio for datasets of one image shape, a record an
element for large output images, a sequential map on one core. Each must give exactly the
pixels the per-record choices give (a glob of the same shards has no manifest, so it takes
them per record)."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from tfrecord_tools import convert_image_folder
from tfrecord_tools.read import options as read_options

tf = pytest.importorskip("tensorflow")
from tfrecord_tools.read import decode, pipeline  # noqa: E402
from tfrecord_tools.read.pipeline import make_dataset  # noqa: E402


def _picture(height: int, width: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([x / width, y / height, (x + y) / (height + width)], -1)
    return np.clip(30 + 190 * base + rng.normal(0, 8, (height, width, 3)), 0, 255).astype(np.uint8)


def _convert(root, tmp, shape, seed=0, *, odd_pngs=False):
    """JPEGs and PNGs of one ``shape`` (``odd_pngs``: gray and palette ones too: the
    manifest then has no one image shape), converted."""
    height, width = shape
    for label in ("a", "b"):
        (root / label).mkdir(parents=True)
    for i in range(3):
        pixels = _picture(height, width, seed + i)
        Image.fromarray(pixels).save(root / "a" / f"{i}.jpg", quality=90)
        Image.fromarray(pixels).save(root / "b" / f"{i}.png")
    if odd_pngs:
        Image.fromarray(_picture(height, width, 7)[..., 0]).save(root / "b" / "gray.png")
        Image.fromarray(_picture(height, width, 8)).convert("P").save(root / "b" / "palette.png")
    out = tmp / "ds"
    convert_image_folder(root, out, workers=1, quiet=True, shards=2)
    return out


def _shards(out) -> list[str]:
    return sorted(str(p) for p in out.iterdir() if ".tfrecord-" in p.name and p.suffix != ".idx")


def _read(path, **options) -> tuple[np.ndarray, np.ndarray]:
    """Every image and label, batched or not (the images here are of one size)."""
    images, labels = [], []
    for x, y in make_dataset(path, **options):
        images.append(x.numpy())
        labels.append(y.numpy())
    join = np.concatenate if options.get("batch_size") else np.stack
    return join(images), join(labels)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """One shape, 120x200: at 224 every JPEG decodes at full scale."""
    tmp = tmp_path_factory.mktemp("fixed-photos")
    return _convert(tmp / "src", tmp, (120, 200))


@pytest.fixture(scope="module")
def mixed_pngs(tmp_path_factory):
    """RGB, gray and palette PNGs beside JPEGs: no one image shape in the manifest."""
    tmp = tmp_path_factory.mktemp("fixed-mixed")
    return _convert(tmp / "src", tmp, (120, 200), odd_pngs=True)


@pytest.fixture(scope="module")
def large_photos(tmp_path_factory):
    """One shape, 600x800: at 224 every JPEG decodes at 1/2 (300x400)."""
    tmp = tmp_path_factory.mktemp("fixed-large")
    return _convert(tmp / "src", tmp, (600, 800), seed=3)


@pytest.mark.parametrize(
    ("fixture", "options"),
    [
        ("photos", {"batch_size": 4, "image_size": 224}),  # one shape: the ratio is 1
        ("mixed_pngs", {"batch_size": 4, "image_size": 224, "decode_scaling": "off"}),
        ("mixed_pngs", {}),  # no resize: no scale to choose
    ],
)
def test_jpegs_and_pngs_decode_alike_with_one_decoder(fixture, options, request, monkeypatch):
    photos = request.getfixturevalue(fixture)
    decoded = []
    real = decode.decoders

    def spy(*args):
        fns = real(*args)
        decoded.append(sorted(fns))
        return fns

    monkeypatch.setattr(decode, "decoders", spy)
    fixed = _read(photos, **options)
    per_record = _read(_shards(photos), **options)
    assert decode.ANY in decoded[0]
    plan = decode.Plan.of(read_options.ReadOptions(**options))
    fixed_plan, image_format = pipeline._fixed_decoder(
        plan, None, pipeline.resolve_shards(photos), turned=False
    )
    assert image_format == "any"
    assert fixed_plan.ratio == (1 if plan.scaling else None)
    assert np.array_equal(fixed[0], per_record[0])
    assert np.array_equal(fixed[1], per_record[1])


def test_without_one_shape_a_resize_keeps_the_per_record_scale(mixed_pngs):
    plan = decode.Plan(image_size=(224, 224), scaling=True)
    shards = pipeline.resolve_shards(mixed_pngs)
    assert pipeline._fixed_decoder(plan, None, shards, turned=False) == (plan, None)


@pytest.mark.parametrize(
    "options",
    [
        {"channels": 1},  # a CMYK JPEG cannot give 1 channel through decode_image
        {"crop": "center"},  # JPEGs are decoded as crops
    ],
)
def test_the_one_decoder_is_not_used_where_it_would_differ(photos, options):
    shards = pipeline.resolve_shards(photos)
    plan = decode.Plan(
        image_size=(224, 224),
        scaling=True,
        channels=options.get("channels", 3),
        crop=options.get("crop"),
    )
    assert pipeline._fixed_decoder(plan, None, shards, turned=False)[1] is None
    fixed = _read(photos, batch_size=4, image_size=224, **options)
    per_record = _read(_shards(photos), batch_size=4, image_size=224, **options)
    assert np.array_equal(fixed[0], per_record[0])


def test_one_shape_fixes_the_dct_ratio(large_photos):
    shards = pipeline.resolve_shards(large_photos)
    plan = decode.Plan(image_size=(224, 224), scaling=True)
    fixed, image_format = pipeline._fixed_decoder(plan, None, shards, turned=False)
    assert fixed.ratio == 2 and not fixed.needs_dims
    assert image_format is None  # JPEGs at 1/2, PNGs whole: the format still decides
    assert pipeline._fixed_decoder(plan, None, shards, turned=True)[0].ratio is None
    assert decode.static_ratio((600, 800), (224, 224)) == 2
    assert decode.static_ratio((600, 800), (75, 100)) == 8
    assert decode.static_ratio((600, 800), (601, 100)) == 1
    for options in ({"batch_size": 3}, {}):
        fixed_images = _read(large_photos, image_size=224, **options)
        per_record = _read(_shards(large_photos), image_size=224, **options)
        assert np.array_equal(fixed_images[0], per_record[0])


@pytest.mark.parametrize("dtype", ["uint8", "float32"])
def test_large_images_a_record_an_element_give_the_batched_pixels(photos, dtype):
    assert pipeline.large_images((224, 224), read_options.ReadOptions(dtype=dtype))
    assert not pipeline.large_images((28, 28), read_options.ReadOptions(dtype=dtype))
    batched = _read(photos, batch_size=5, image_size=224, dtype=dtype)
    one_by_one = [x.numpy() for x, _ in make_dataset(photos, image_size=224, dtype=dtype)]
    assert batched[0].dtype == np.dtype(dtype)
    assert np.array_equal(batched[0], np.stack(one_by_one))
    # small images keep the batched graph loop: the same pixels, resized alike
    small = _read(photos, batch_size=5, image_size=32, dtype=dtype)
    small_one = [x.numpy() for x, _ in make_dataset(photos, image_size=32, dtype=dtype)]
    assert np.array_equal(small[0], np.stack(small_one))


def test_one_core_maps_in_the_consumers_thread():
    cpus = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {min(cpus)})
        assert read_options.options_from({}).num_parallel_calls is None
        assert read_options.options_from({"num_parallel_calls": 4}).num_parallel_calls == 4
        autotuned = read_options.options_from({"autotune": True})
        assert autotuned.num_parallel_calls == read_options.AUTOTUNE
        served = read_options.options_from({"service": "grpc://localhost:5000"})
        assert served.num_parallel_calls == read_options.AUTOTUNE  # its workers decide
    finally:
        os.sched_setaffinity(0, cpus)
    if len(cpus) > 1:
        assert read_options.options_from({}).num_parallel_calls == read_options.AUTOTUNE
