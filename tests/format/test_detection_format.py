"""The detection record schema (``format.detection``) against TensorFlow's own Example API:
our bytes parse in TF, TF's bytes (the detection API's keys) read back through our
TF-free parser and ``TFRecordDataSource(task="detection")``."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from tfrecord_tools.format import detection as d
from tfrecord_tools.format.example import encode_example

tf = pytest.importorskip("tensorflow")

OBJECTS = [
    d.DetectionObject(0.1, 0.2, 0.5, 0.75, 1, "cat", area=12.5, truncated=1, pose="Left"),
    d.DetectionObject(0.0, 0.0, 1.0, 1.0, 3, "dög", is_crowd=1, difficult=1),
]


def _png(width=8, height=6) -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.full((height, width, 3), 90, np.uint8)).save(out, "PNG")
    return out.getvalue()


def test_our_bytes_parse_in_tensorflow():
    encoded = _png()
    data = d.encode_detection(
        encoded=encoded, image_format="png", height=6, width=8, channels=3,
        filename="a/b.png", source_id="17", objects=OBJECTS,
    )  # fmt: skip
    example = tf.train.Example.FromString(data)
    f = example.features.feature
    assert f[d.XMIN].float_list.value == pytest.approx([0.1, 0.0])
    assert f[d.YMAX].float_list.value == pytest.approx([0.75, 1.0])
    assert list(f[d.CLASS_LABEL].int64_list.value) == [1, 3]
    assert [t.decode() for t in f[d.CLASS_TEXT].bytes_list.value] == ["cat", "dög"]
    assert list(f[d.IS_CROWD].int64_list.value) == [0, 1]
    assert list(f[d.DIFFICULT].int64_list.value) == [0, 1]
    assert list(f[d.TRUNCATED].int64_list.value) == [1, 0]
    assert f[d.AREA].float_list.value == pytest.approx([12.5, 0.0])
    assert f[d.SOURCE_ID].bytes_list.value == [b"17"]
    assert f[d.ENCODED].bytes_list.value == [encoded]
    import hashlib

    assert f[d.KEY_SHA256].bytes_list.value == [hashlib.sha256(encoded).hexdigest().encode()]
    spec = {
        d.XMIN: tf.io.VarLenFeature(tf.float32),
        d.CLASS_LABEL: tf.io.VarLenFeature(tf.int64),
        "image/encoded": tf.io.FixedLenFeature([], tf.string),
    }
    parsed = tf.io.parse_single_example(data, spec)
    assert tf.sparse.to_dense(parsed[d.CLASS_LABEL]).numpy().tolist() == [1, 3]


def test_no_objects_is_empty_lists():
    data = d.encode_detection(
        encoded=_png(), image_format="png", height=6, width=8, channels=3, filename="x",
        source_id="x", objects=[],
    )  # fmt: skip
    f = tf.train.Example.FromString(data).features.feature
    assert d.XMIN in f and list(f[d.XMIN].float_list.value) == []
    fields = d.parse_detection(data)
    assert fields.boxes == [] and fields.labels == []


def _tf_example(encoded: bytes, boxes, labels, texts) -> bytes:
    """A record as the detection API's create_pascal_tf_record.py writes it."""

    def b(v):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=v))

    def fl(v):
        return tf.train.Feature(float_list=tf.train.FloatList(value=v))

    def i(v):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=v))

    feature = {
        "image/height": i([6]),
        "image/width": i([8]),
        "image/filename": b([b"x.png"]),
        "image/source_id": b([b"x.png"]),
        "image/key/sha256": b([b"0"]),
        "image/encoded": b([encoded]),
        "image/format": b([b"png"]),
        "image/object/bbox/xmin": fl([x[1] for x in boxes]),
        "image/object/bbox/xmax": fl([x[3] for x in boxes]),
        "image/object/bbox/ymin": fl([x[0] for x in boxes]),
        "image/object/bbox/ymax": fl([x[2] for x in boxes]),
        "image/object/class/text": b([t.encode() for t in texts]),
        "image/object/class/label": i(labels),
        "image/object/difficult": i([0] * len(labels)),
        "image/object/truncated": i([0] * len(labels)),
        "image/object/view": b([b"Unspecified"] * len(labels)),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def test_records_written_by_tensorflow_read_back(tmp_path):
    from tfrecord_tools.access.source import TFRecordDataSource

    boxes = [(0.1, 0.2, 0.3, 0.4), (0.5, 0.0, 1.0, 0.625)]
    truth = np.array(boxes, np.float32)
    path = tmp_path / "voc.tfrecord"
    with tf.io.TFRecordWriter(str(path)) as w:
        w.write(_tf_example(_png(), boxes, [2, 1], ["dog", "cat"]))
        w.write(_tf_example(_png(), [], [], []))
    src = TFRecordDataSource(str(path), task="detection")
    assert len(src) == 2
    first, second = src[0], src[1]
    np.testing.assert_array_equal(first["boxes"], truth)  # float32 both ways: exact
    assert first["classes"].tolist() == [2, 1] and first["texts"] == ["dog", "cat"]
    assert first["image"].shape == (6, 8, 3)
    assert second["boxes"].shape == (0, 4) and second["classes"].shape == (0,)


def test_classification_records_are_unchanged():
    """The detection module adds keys; the classification encoder's bytes stay its own."""
    data = encode_example(
        encoded=b"x", image_format="png", height=1, width=1, channels=3, label=0, text="a",
        filename="f",
    )  # fmt: skip
    assert b"image/object" not in data


def test_label_map_quotes_names():
    text = d.label_map_pbtxt(["cat", "it's"])
    assert text == "item {\n  id: 1\n  name: 'cat'\n}\nitem {\n  id: 2\n  name: 'it\\'s'\n}\n"
