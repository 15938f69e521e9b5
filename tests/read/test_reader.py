"""The tf.data reader and its raw-file twin, against the converter's output."""

from __future__ import annotations

import hashlib
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from tfrecord_tools import convert_image_folder, convert_mnist
from tfrecord_tools.errors import TFRecordToolsError
from tfrecord_tools.format.example import encode_example
from tfrecord_tools.format.writer import ShardWriter

from ..conftest import GOOD_PER_CLASS, encode, make_mnist

tf = pytest.importorskip("tensorflow")
from tfrecord_tools.read.pipeline import make_dataset, make_raw_dataset  # noqa: E402

N_GOOD = sum(GOOD_PER_CLASS.values())


@pytest.fixture(scope="module")
def dataset(image_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("ds")
    convert_image_folder(image_folder, out, shards=4, workers=1, quiet=True)
    return out


def _digest(image) -> str:
    return hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest()


def _expected_pixels(path, channels=3) -> np.ndarray:
    data = path.read_bytes()
    return tf.io.decode_image(data, channels=channels, expand_animations=False).numpy()


def test_round_trip_pixels_labels_and_cardinality(dataset, image_folder):
    ds = make_dataset(dataset)
    assert int(ds.cardinality()) == N_GOOD
    got = Counter((int(y), _digest(x)) for x, y in ds)
    classes = sorted(GOOD_PER_CLASS)
    want = Counter()
    for label, name in enumerate(classes):
        for f in sorted((image_folder / name).rglob("*")):
            if (
                f.is_file()
                and f.name[0] != "."
                and f.suffix in (".jpg", ".png", ".bmp")
                and f.name not in ("truncated.jpg", "empty.png", "flipped.png")
            ):
                want[(label, _digest(_expected_pixels(f)))] += 1
    assert got == want


def test_raw_twin_yields_the_same_images(dataset, image_folder):
    tfr = Counter(
        (int(y), _digest(x))
        for x, y in make_dataset(dataset, image_size=16, batch_size=4).unbatch()
    )
    bad = {"truncated.jpg", "empty.png", "flipped.png", "notes.txt"}
    clean = image_folder.parent / "clean_copy"
    if not clean.exists():
        import shutil

        shutil.copytree(image_folder, clean, ignore=lambda d, names: [n for n in names if n in bad])
    raw = Counter(
        (int(y), _digest(x))
        for x, y in make_raw_dataset(clean, image_size=16, batch_size=4).unbatch()
    )
    assert raw == tfr


def test_batches_are_static_shaped_and_fit_keras(dataset):
    ds = make_dataset(
        dataset,
        batch_size=8,
        image_size=(20, 24),
        channels=3,
        shuffle=True,
        seed=1,
        drop_remainder=True,
    )
    assert ds.element_spec[0].shape.as_list() == [8, 20, 24, 3]
    model = tf.keras.Sequential(
        [
            tf.keras.layers.Input((20, 24, 3)),
            tf.keras.layers.Rescaling(1 / 255),
            tf.keras.layers.GlobalAveragePooling2D(),
            tf.keras.layers.Dense(3),
        ]
    )
    model.compile("sgd", tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(ds, epochs=1, verbose=0, shuffle=False)
    assert np.isfinite(history.history["loss"][0])


def _shard(path, records):
    with ShardWriter(path) as w:
        for r in records:
            w.write(r)
        w.commit()
    return path


def _example(data, fmt, h=0, w=0, c=0, label=0):
    return encode_example(
        encoded=data,
        image_format=fmt,
        height=h,
        width=w,
        channels=c,
        label=label,
        text="x",
        filename="f",
    )


def test_tf_case_picks_the_branch_from_bytes_not_labels(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (6, 5, 3), dtype=np.uint8)
    png = encode(Image.fromarray(rgb), "PNG")
    jpeg = encode(Image.fromarray(rgb), "JPEG", quality=95)
    bmp = encode(Image.fromarray(rgb), "BMP")
    jpeg_pixels = tf.io.decode_jpeg(jpeg, channels=3).numpy()
    cases = [  # (bytes, label in the record, expected pixels)
        (png, "png", rgb),
        (png, "PNG", rgb),
        (png, "JPEG", rgb),
        (png, "", rgb),
        (jpeg, "jpeg", jpeg_pixels),
        (jpeg, "jpg", jpeg_pixels),
        (jpeg, " JPG ", jpeg_pixels),
        (jpeg, "png", jpeg_pixels),
        (jpeg, "raw", jpeg_pixels),
        (rgb.tobytes(), "raw", rgb),
        (rgb.tobytes(), "RAW", rgb),
        (bmp, "bmp", rgb),
        (bmp, "png", rgb),
    ]
    path = _shard(
        tmp_path / "mixed.tfrecord",
        [_example(b, f, 6, 5, 3, i) for i, (b, f, _) in enumerate(cases)],
    )
    # per record; per record then batched; in one graph loop per batch (needs one size)
    for batch_size, size in ((None, None), (4, None), (4, (6, 5))):
        ds = make_dataset(str(path), batch_size=batch_size, image_size=size)
        if batch_size:
            ds = ds.unbatch()
        for (image, label), (_, fmt, want) in zip(ds, cases, strict=True):
            assert np.array_equal(image.numpy(), want), (int(label), fmt)


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_channels_for_odd_images(tmp_path, channels):
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)
    images = {
        "gray png": encode(Image.fromarray(rgb[..., 0]), "PNG"),
        "gray+alpha png": encode(Image.fromarray(rgb[..., :2].copy(), "LA"), "PNG"),
        "rgba png": encode(Image.fromarray(rgb).convert("RGBA"), "PNG"),
        "palette png": encode(Image.fromarray(rgb).convert("P"), "PNG"),
        "16-bit png": encode(Image.fromarray(rgb[..., 0].astype(np.uint16) * 257), "PNG"),
        "gray jpeg": encode(Image.fromarray(rgb[..., 0]), "JPEG"),
        "cmyk jpeg": encode(Image.fromarray(rgb).convert("CMYK"), "JPEG"),
        "gray raw": rgb[..., 0].tobytes(),
    }
    records = [
        _example(b, "raw" if "raw" in k else "", 8, 8, 1 if "raw" in k else 0)
        for k, b in images.items()
    ]
    path = _shard(tmp_path / "odd.tfrecord", records)
    got = [x.numpy() for x, _ in make_dataset(str(path), channels=channels)]
    assert [g.shape for g in got] == [(8, 8, channels)] * len(images)
    gray_png = got[0]
    if channels == 4:
        assert (got[0][..., 3] == 255).all()  # opaque alpha added
    if channels == 1:
        assert np.array_equal(gray_png[..., 0], rgb[..., 0])


def test_sharding_by_worker_is_disjoint_and_complete(dataset):
    def ids(**kw):
        return Counter(_digest(x) for x, _ in make_dataset(dataset, **kw))

    parts = [ids(num_workers=2, worker_index=i, shuffle=True, seed=3) for i in range(2)]
    assert not set(parts[0]) & set(parts[1])
    assert parts[0] + parts[1] == ids()
    with pytest.raises(TFRecordToolsError, match="4 shard files cannot be shared by 5"):
        make_dataset(dataset, num_workers=5, worker_index=0)

    class Context:  # what tf.distribute passes
        num_input_pipelines, input_pipeline_id = 2, 1

    assert ids(input_context=Context()) == parts[1]


def test_shuffle_is_deterministic_for_a_seed(dataset):
    def order(seed):
        return [
            int(y) for _, y in make_dataset(dataset, shuffle=True, seed=seed, deterministic=True)
        ]

    assert order(5) == order(5)
    assert sorted(order(5)) == sorted(order(6))


def test_third_party_gzip_shards_without_manifest(tmp_path):
    rgb = np.full((4, 4, 3), 7, np.uint8)
    example = tf.train.Example(
        features=tf.train.Features(
            feature={
                "image/encoded": tf.train.Feature(
                    bytes_list=tf.train.BytesList(value=[encode(Image.fromarray(rgb), "PNG")])
                ),
                "image/class/label": tf.train.Feature(int64_list=tf.train.Int64List(value=[3])),
            }
        )
    )
    for i in range(2):
        with tf.io.TFRecordWriter(str(tmp_path / f"x-{i}.tfrecord.gz"), "GZIP") as w:
            w.write(example.SerializeToString())
    got = list(make_dataset(str(tmp_path / "x-*.tfrecord.gz")))
    assert len(got) == 2 and all(int(y) == 3 for _, y in got)
    assert np.array_equal(got[0][0].numpy(), rgb)


def test_mnist_raw_and_png_batches(tmp_path):
    pixels, labels = make_mnist(tmp_path / "src", n_train=20, n_test=5)
    for encoding in ("raw", "png"):
        out = tmp_path / encoding
        convert_mnist(tmp_path / "src", out, encoding=encoding, workers=1, quiet=True)
        ds = make_dataset(out, split="test", batch_size=4, channels=1)
        assert ds.element_spec[0].shape.as_list() == [None, 28, 28, 1]
        got = sorted((int(y), _digest(x[..., 0])) for x, y in ds.unbatch())
        assert got == sorted(
            (int(lab), _digest(p)) for p, lab in zip(pixels["test"], labels["test"], strict=True)
        )
        dropped = make_dataset(out, split="test", batch_size=4, channels=1, drop_remainder=True)
        assert dropped.element_spec[0].shape.as_list() == [4, 28, 28, 1]
        assert [int(x.shape[0]) for x, _ in dropped] == [4]
        # small images are decoded many batches at a time, then cut back: sizes, order and
        # cardinality are batch()'s
        assert len(ds) == 2 and len(dropped) == 1
        train = make_dataset(out, batch_size=3, channels=1)
        sizes = [int(x.shape[0]) for x, _ in train]
        assert len(train) == len(sizes) == 7 and sizes == [3] * 6 + [2]
        one_by_one = [int(y) for _, y in make_dataset(out, channels=1)]
        assert [int(y) for _, ys in train for y in ys] == one_by_one
        rgb = next(iter(make_dataset(out, split="test", batch_size=5, channels=3)))[0].numpy()
        assert rgb.shape == (5, 28, 28, 3)
        assert (rgb == rgb[..., :1]).all()  # gray repeated into 3 channels
        # without a batch size there is no remainder to drop
        assert len(list(make_dataset(out, split="test", channels=1, drop_remainder=True))) == 5


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"channels": 2}, "channels must be 1, 3 or 4"),
        ({"batch_size": 0}, "batch_size"),
        ({"num_workers": 2, "worker_index": 2}, "worker_index 2"),
        ({"split": "nope"}, "no split"),
    ],
)
def test_bad_arguments(dataset, kwargs, message):
    with pytest.raises(TFRecordToolsError, match=message):
        make_dataset(dataset, **kwargs)


def test_no_files_is_a_clear_error(tmp_path):
    with pytest.raises(TFRecordToolsError, match="no files match"):
        make_dataset(str(tmp_path / "*.tfrecord"))
