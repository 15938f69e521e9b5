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


# A record of edge values (labels and visibilities past one varint byte, negative ints, long
# names, empty and non-empty masks, keypoints, orientation, a segmentation), and the sha256
# of its bytes as the encoder wrote them before it was rewritten for speed: the records a
# conversion writes do not change.
EDGE_OBJECTS = [
    d.DetectionObject(
        0.1, 0.2, 0.5, 0.75, 1, "cat", area=12.5, truncated=1, pose="Left",
        mask=b"\x89PNG-1", keypoints=((0.25, 0.5, 2), (0.0, 1.0, 0)),
    ),
    d.DetectionObject(
        0.0, 0.0, 1.0, 1.0, 200, "dög", is_crowd=1, difficult=-1, area=1e9, truncated=300,
        mask=b"", keypoints=((1.0, 0.125, 1), (0.5, 0.5, 200)),
    ),
    d.DetectionObject(
        0.3, 0.3, 0.4, 0.4, 127, "x" * 130, area=0.0, pose="é" * 70, mask=b"m" * 200,
        keypoints=((0.1, 0.2, 128), (0.3, 0.4, -5)),
    ),
]  # fmt: skip
EDGE_SHA256 = "282c7809eef6ddf31468103ac154a71f774292d4fc73c858207d0ea49d052e10"


def _edge_record() -> bytes:
    return d.encode_detection(
        encoded=b"\xff\xd8image", image_format="jpeg", height=480, width=640, channels=3,
        filename="a/ü.jpg", source_id="4242", objects=EDGE_OBJECTS, orientation=6,
        segmentation=b"\x89PNG-seg",
    )  # fmt: skip


def test_the_encoder_s_bytes_are_pinned():
    import hashlib

    assert hashlib.sha256(_edge_record()).hexdigest() == EDGE_SHA256


def test_edge_values_parse_in_tensorflow():
    f = tf.train.Example.FromString(_edge_record()).features.feature
    assert list(f[d.CLASS_LABEL].int64_list.value) == [1, 200, 127]
    assert list(f[d.DIFFICULT].int64_list.value) == [0, -1, 0]
    assert list(f[d.TRUNCATED].int64_list.value) == [1, 300, 0]
    assert list(f[d.IS_CROWD].int64_list.value) == [0, 1, 0]
    assert [t.decode() for t in f[d.CLASS_TEXT].bytes_list.value] == ["cat", "dög", "x" * 130]
    assert [t.decode() for t in f[d.POSE].bytes_list.value] == ["Left", "", "é" * 70]
    assert list(f[d.MASK].bytes_list.value) == [b"\x89PNG-1", b"", b"m" * 200]
    assert list(f[d.KEYPOINT_VISIBILITY].int64_list.value) == [2, 0, 1, 200, 128, -5]
    assert f[d.KEYPOINT_Y].float_list.value == pytest.approx([0.5, 1.0, 0.125, 0.5, 0.2, 0.4])
    assert f[d.AREA].float_list.value == pytest.approx([12.5, 1e9, 0.0])
    assert list(f["image/orientation"].int64_list.value) == [6]
    fields = d.parse_detection(_edge_record())
    assert fields.labels == [1, 200, 127] and fields.difficult == [0, -1, 0]
    assert fields.keypoints[3] == (pytest.approx(0.5), pytest.approx(0.5), 200)


def _keypoint_record(xs, ys, visibility) -> bytes:
    def floats(v):
        return tf.train.Feature(float_list=tf.train.FloatList(value=v))

    feature = {
        "image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(value=[_png()])),
        d.KEYPOINT_X: floats(xs),
        d.KEYPOINT_Y: floats(ys),
    }
    if visibility is not None:
        feature[d.KEYPOINT_VISIBILITY] = tf.train.Feature(
            int64_list=tf.train.Int64List(value=visibility)
        )
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


@pytest.mark.parametrize(
    ("xs", "ys", "visibility", "found"),
    [
        ([0.1, 0.2], [0.3], [2, 2], "2 image/object/keypoint/x, 1 image/object/keypoint/y"),
        ([0.1], [0.3, 0.4], None, "1 image/object/keypoint/x, 2 image/object/keypoint/y"),
        ([0.1, 0.2], [0.3, 0.4], [1], "1 image/object/keypoint/visibility"),
        ([0.1], [0.3], [1, 2, 0], "3 image/object/keypoint/visibility"),
    ],
)
def test_keypoint_lists_that_disagree_are_refused(xs, ys, visibility, found):
    with pytest.raises(d.DetectionParseError, match="keypoint lists disagree") as refused:
        d.parse_detection(_keypoint_record(xs, ys, visibility))
    assert found in str(refused.value)


def test_keypoints_without_visibility_are_seen():
    fields = d.parse_detection(_keypoint_record([0.5, 0.25], [0.75, 1.0], None))
    assert fields.keypoints == [(0.5, 0.75, 2), (0.25, 1.0, 2)]
