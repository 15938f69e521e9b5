"""TFRecords other tools write: TFDS's keys (image, label), the Keras tutorial's (image_raw,
label, height, width, depth), inception / slim's and ours (image/encoded,
image/class/label) are found from the first record; explicit image_key / label_key; and
errors that name the keys a record has."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
tf = pytest.importorskip("tensorflow")

from tfrecord_tools import TFRecordToolsError, inspect_dataset, make_dataset  # noqa: E402
from tfrecord_tools.dataset import keys as feature_keys  # noqa: E402
from tfrecord_tools.read.pipeline import make_raw_dataset  # noqa: E402


def _image(seed: int, fmt: str, size=(6, 5)) -> tuple[bytes, np.ndarray]:
    """Tiny image bytes and the pixels a reader should give (JPEG: what TF decodes)."""
    pixels = np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format=fmt.upper())
    data = buf.getvalue()
    if fmt == "jpeg":
        pixels = tf.io.decode_jpeg(data, channels=3).numpy()
    return data, pixels


def _feature(value) -> tf.train.Feature:
    if isinstance(value, bytes):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))
    if isinstance(value, float):
        return tf.train.Feature(float_list=tf.train.FloatList(value=[value]))
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))


def _write(path, rows: list[dict]) -> str:
    with tf.io.TFRecordWriter(str(path)) as writer:
        for row in rows:
            feats = {k: _feature(v) for k, v in row.items()}
            writer.write(
                tf.train.Example(features=tf.train.Features(feature=feats)).SerializeToString()
            )
    return str(path)


def _layout_rows(layout: str, n: int = 4):
    """Records as ``layout`` writes them, and the (pixels, label) a reader must give."""
    rows, want = [], []
    for i in range(n):
        data, pixels = _image(i, "png" if i % 2 else "jpeg")
        label = i % 3
        if layout == "tfds":
            row = {"image": data, "label": label}
        elif layout == "keras":
            h, w, c = pixels.shape
            row = {"height": h, "width": w, "depth": c, "label": label, "image_raw": data}
        elif layout == "slim":  # inception / slim: our two keys and a text format
            row = {"image/encoded": data, "image/format": b"JPEG", "image/class/label": label}
        else:  # ours: every key
            h, w, c = pixels.shape
            row = {
                "image/encoded": data,
                "image/format": b"png" if i % 2 else b"jpeg",
                "image/height": h,
                "image/width": w,
                "image/channels": c,
                "image/class/label": label,
                "image/class/text": b"c%d" % label,
                "image/filename": b"f%d" % i,
            }
        rows.append(row)
        want.append((pixels, label))
    return rows, want


def _read(ds) -> list[tuple[np.ndarray, int]]:
    return [(image.numpy(), int(label)) for image, label in ds]


def _assert_same(got, want) -> None:
    assert len(got) == len(want)
    for (image, label), (pixels, wanted) in zip(got, want, strict=True):
        np.testing.assert_array_equal(image, pixels)
        assert label == wanted


@pytest.mark.parametrize("layout", ["tfds", "keras", "slim", "ours"])
def test_layouts_are_detected(tmp_path, layout):
    rows, want = _layout_rows(layout)
    path = _write(tmp_path / "data.tfrecord", rows)
    _assert_same(_read(make_dataset(path)), want)
    # batched and resized: the batch path parses with the same keys
    (images, labels), *_ = make_dataset(path, batch_size=4, image_size=4)
    assert images.shape == (4, 4, 4, 3)
    assert labels.numpy().tolist() == [label for _p, label in want]


@pytest.mark.parametrize(
    ("layout", "image", "label"),
    [
        ("ours", "image/encoded", "image/class/label"),
        ("tfds", "image", "label"),
        ("keras", "image_raw", "label"),
    ],
)
def test_resolve_keys_names_the_layout(tmp_path, layout, image, label):
    rows, _want = _layout_rows(layout, 1)
    path = _write(tmp_path / "data.tfrecord", rows)
    keys = feature_keys.resolve_keys([path], "none")
    assert (keys.image, keys.label) == (image, label)
    if layout == "keras":
        assert (keys.height, keys.width, keys.channels) == ("height", "width", "depth")
    if layout == "tfds":
        assert keys.format is keys.height is keys.channels is None


def test_our_dataset_folder_needs_no_record():
    assert feature_keys.resolve_keys(["/no/such/file"], "none", ours=True) == feature_keys.OURS


def test_keras_tutorial_raw_pixels(tmp_path):
    """MNIST-style tutorial files: image_raw holds height x width x depth raw pixels."""
    pixels = np.random.default_rng(0).integers(0, 256, (3, 7, 7, 1), dtype=np.uint8)
    rows = [
        {"height": 7, "width": 7, "depth": 1, "label": i, "image_raw": p.tobytes()}
        for i, p in enumerate(pixels)
    ]
    path = _write(tmp_path / "mnist.tfrecord", rows)
    _assert_same(_read(make_dataset(path, channels=1)), [(p, i) for i, p in enumerate(pixels)])


def test_the_first_non_empty_file_decides(tmp_path):
    _write(tmp_path / "a.tfrecord", [])
    rows, want = _layout_rows("tfds", 2)
    _write(tmp_path / "b.tfrecord", rows)
    _assert_same(_read(make_dataset(str(tmp_path / "*.tfrecord"))), want)


def test_explicit_keys(tmp_path):
    rows, want = _layout_rows("tfds", 3)
    renamed = [{"img": r["image"], "cls": r["label"], "other": b"x"} for r in rows]
    path = _write(tmp_path / "data.tfrecord", renamed)
    _assert_same(_read(make_dataset(path, image_key="img", label_key="cls")), want)
    # the image key alone is not enough: no known label key
    with pytest.raises(TFRecordToolsError, match=r"no label .*cls \(int64\)"):
        make_dataset(path, image_key="img")


def test_label_key_none_reads_labels_as_minus_one(tmp_path):
    rows, want = _layout_rows("tfds", 3)
    path = _write(tmp_path / "data.tfrecord", [{"image": r["image"]} for r in rows])
    got = _read(make_dataset(path, label_key=None))
    _assert_same(got, [(p, -1) for p, _label in want])


@pytest.mark.parametrize(
    ("row", "options", "message"),
    [
        (  # nothing we know
            {"pixels": b"\x89PNG", "target": 1},
            {},
            r"no known image key \(image/encoded, image, image_raw\) holds bytes; "
            r"keys found: pixels \(bytes\), target \(int64\)",
        ),
        (  # an image key that holds numbers
            {"image": 3, "label": 1},
            {},
            r"keys found: image \(int64\), label \(int64\)",
        ),
        (
            {"image": b"x", "label": 1},
            {"image_key": "img"},
            r"image_key 'img' is missing; keys found: image \(bytes\), label \(int64\)",
        ),
        (
            {"image": b"x", "label": 1},
            {"label_key": "class"},
            r"label_key 'class' is missing; keys found: image \(bytes\), label \(int64\)",
        ),
        (  # the label as a class name
            {"image": b"x", "label": b"cat"},
            {},
            r"the label 'label' is bytes \(b'cat'\), not an int64 class number",
        ),
        (
            {"image": b"x", "label": 0.5},
            {},
            r"the label 'label' is float",
        ),
        (  # no label at all
            {"image": b"x"},
            {},
            r"no label 'label' in the record; keys found: image \(bytes\).*label_key=None",
        ),
    ],
)
def test_key_errors_name_the_keys_found(tmp_path, row, options, message):
    path = _write(tmp_path / "data.tfrecord", [row])
    with pytest.raises(TFRecordToolsError, match=message) as caught:
        make_dataset(path, **options)
    assert "data.tfrecord: record 0" in str(caught.value)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"image_key": ""}, "image_key must be a feature key"),
        ({"image_key": None}, "image_key must be a feature key"),
        ({"label_key": 3}, "label_key must be a feature key"),
    ],
)
def test_key_options_are_checked(tmp_path, options, message):
    rows, _want = _layout_rows("tfds", 1)
    path = _write(tmp_path / "data.tfrecord", rows)
    with pytest.raises(TFRecordToolsError, match=message):
        make_dataset(path, **options)


def test_make_raw_dataset_takes_no_keys(tmp_path):
    with pytest.raises(TFRecordToolsError, match="make_raw_dataset reads image files"):
        make_raw_dataset(tmp_path, image_key="image")


def test_a_later_record_without_the_label_is_an_error(tmp_path):
    rows, _want = _layout_rows("tfds", 2)
    path = _write(tmp_path / "data.tfrecord", [rows[0], {"image": rows[1]["image"]}])
    with pytest.raises(tf.errors.InvalidArgumentError, match="label"):
        _read(make_dataset(path))


@pytest.mark.parametrize("layout", ["tfds", "keras"])
def test_inspect_shows_keys_types_and_samples(tmp_path, layout):
    rows, _want = _layout_rows(layout, 2)
    path = _write(tmp_path / "data.tfrecord", rows)
    report = inspect_dataset(path)
    image = "image" if layout == "tfds" else "image_raw"
    assert report.features[image] == "bytes" and report.features["label"] == "int64"
    assert report.feature_samples[image].startswith("<jpeg, ")
    assert report.feature_samples["label"] == "0"
    assert report.image_formats == {"jpeg": 1, "png": 1}
    assert report.labels == {"0": 1, "1": 1}
    text = report.format_text()
    assert f"feature {image}: bytes = <jpeg, " in text
    assert "feature label: int64 = 0" in text
    assert report.to_json()["feature_samples"]["label"] == "0"
