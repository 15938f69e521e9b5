"""``inspect`` on detection and segmentation records: per record its objects (class, box,
flags), keypoints and mask, in text and ``--json``; ours, and records TensorFlow's own
Example API wrote with the detection API's keys."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tfrecord_tools.check.inspect import inspect_dataset
from tfrecord_tools.cli import main
from tfrecord_tools.errors import TFRecordToolsError
from tfrecord_tools.format import detection as d
from tfrecord_tools.format.framing import frame

from ..convert.test_detection_convert import CLASSES, expected, truth, write_coco, write_voc

TRUTH = truth(count=7, seed=5)


@pytest.fixture(scope="module")
def coco(tmp_path_factory) -> Path:
    from tfrecord_tools.convert.sources.annotated import convert_coco

    root = tmp_path_factory.mktemp("coco")
    src = root / "src"
    convert_coco(src, root / "out", annotations=write_coco(src, TRUTH), shards=2, quiet=True)
    return root / "out"


def _png(height: int, width: int, channels: int = 3) -> bytes:
    out = io.BytesIO()
    shape = (height, width, channels) if channels > 1 else (height, width)
    Image.fromarray(np.full(shape, 1, np.uint8)).save(out, "PNG")
    return out.getvalue()


def _by_file(report) -> dict[str, dict]:
    return {r["filename"]: r for r in report.to_json()["sample"]["objects"]["shown"]}


def test_every_object_of_the_sample_with_its_class_and_box(coco):
    report = inspect_dataset(coco, show_records=len(TRUTH))
    objects = report.objects
    assert objects is not None
    assert objects.records == len(TRUTH) and objects.without_objects == 1
    assert objects.per_class == {
        c: n
        for c in CLASSES
        if (n := sum(1 for im in TRUTH for b in im["boxes"] if CLASSES[b[4] - 1] == c))
    }
    shown = _by_file(report)
    assert sorted(shown) == sorted(im["name"] for im in TRUTH)
    text = report.format_text()
    for im in TRUTH:
        record = shown[im["name"]]
        want_boxes, labels = expected(im)
        assert [o["label"] for o in record["objects"]] == labels
        assert [o["text"] for o in record["objects"]] == [CLASSES[i - 1] for i in labels]
        got = np.array([o["box"] for o in record["objects"]], np.float32).reshape(-1, 4)
        np.testing.assert_allclose(got, want_boxes, rtol=0, atol=1e-6)
        assert all(o["flags"] == [] for o in record["objects"])
        assert f"record {record['record']} ({im['name']}): " in text
        for box, label in zip(want_boxes, labels, strict=True):  # 3 decimals, ymin first
            line = f"{label} {CLASSES[label - 1]}: " + " ".join(f"{v:.3f}" for v in box)
            assert f"\n      {line}\n" in text + "\n"
    assert "labels: none" not in text and "objects: " in text


def test_show_records_limits_the_list_not_the_counts(coco, capsys):
    assert main(["inspect", str(coco), "--json", "--show-records", "2"]) == 0
    sample = json.loads(capsys.readouterr().out)["sample"]["objects"]
    assert len(sample["shown"]) == 2 and sample["records"] == len(TRUTH)
    assert sample["total"] == sum(len(im["boxes"]) for im in TRUTH)
    assert main(["inspect", str(coco), "--show-records", "0"]) == 0
    out = capsys.readouterr().out
    assert "record 0" not in out and f"… {len(TRUTH)} more in the sample" in out
    assert main(["inspect", str(coco), "--show-records", "-1"]) == 2
    assert "records to show must be 0 or more" in capsys.readouterr().err
    with pytest.raises(TFRecordToolsError):
        inspect_dataset(coco, show_records=-1)


def test_voc_flags(tmp_path):
    from tfrecord_tools.convert.sources.annotated import convert_voc

    write_voc(tmp_path / "src", TRUTH)
    convert_voc(tmp_path / "src", tmp_path / "out", quiet=True)
    report = inspect_dataset(tmp_path / "out", show_records=len(TRUTH))
    for record in _by_file(report).values():
        assert all(o["flags"] == ["truncated"] for o in record["objects"])  # write_voc: all
    assert ", truncated\n" in report.format_text()


def test_a_classification_dataset_shows_no_objects(tmp_path):
    from tfrecord_tools import convert_image_folder

    from ..test_golden import make_golden_folder

    convert_image_folder(make_golden_folder(tmp_path / "src"), tmp_path / "out", quiet=True)
    report = inspect_dataset(tmp_path / "out")
    assert report.objects is None and "objects" not in report.to_json()["sample"]
    assert report.format_text().splitlines()[-1].startswith("  labels: ")


def _tf_example(tf, features: dict) -> bytes:
    """A tf.train.Example of ``{key: list}`` (bytes, int or float lists by the values)."""

    def feature(values):
        if all(isinstance(v, bytes) for v in values) and values:
            return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))
        if all(isinstance(v, int) for v in values) and values:
            return tf.train.Feature(int64_list=tf.train.Int64List(value=values))
        return tf.train.Feature(float_list=tf.train.FloatList(value=values))

    return tf.train.Example(
        features=tf.train.Features(feature={k: feature(v) for k, v in features.items()})
    ).SerializeToString()


def test_records_tensorflow_wrote_with_the_detection_api_keys(tmp_path):
    tf = pytest.importorskip("tensorflow")
    image = _png(6, 8)
    crowded = {
        d.ENCODED: [image],
        d.FORMAT: [b"png"],
        d.FILENAME: [b"street.png"],
        d.HEIGHT: [6],
        d.WIDTH: [8],
        d.XMIN: [0.125, 0.5],
        d.YMIN: [0.25, 0.0],
        d.XMAX: [0.375, 1.0],
        d.YMAX: [0.5, 0.8333333],
        d.CLASS_LABEL: [2, 1],
        d.CLASS_TEXT: [b"car", b"person"],
        d.IS_CROWD: [0, 1],
        d.DIFFICULT: [1, 0],
        d.TRUNCATED: [0, 0],
        d.MASK: [_png(6, 8, 1), _png(6, 8, 1)],
        d.KEYPOINT_X: [0.1, 0.2, 0.3, 0.6, 0.7, 0.8],  # 3 per object
        d.KEYPOINT_Y: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
        d.KEYPOINT_VISIBILITY: [2, 2, 1, 2, 0, 2],
    }
    segmented = {
        d.ENCODED: [image],
        d.FORMAT: [b"png"],
        d.FILENAME: [b"road.png"],
        d.SEGMENTATION: [_png(6, 8, 1)],
        d.SEGMENTATION_FORMAT: [b"png"],
    }
    path = tmp_path / "theirs.tfrecord"
    with tf.io.TFRecordWriter(str(path)) as writer:
        writer.write(_tf_example(tf, crowded))
        writer.write(_tf_example(tf, segmented))
    report = inspect_dataset([path])
    assert report.notes == []  # no "no label" note: detection records have no image label
    assert report.image_formats == {"png": 2} and report.image_sizes == {"6x8x3": 2}
    street, road = report.to_json()["sample"]["objects"]["shown"]
    assert street["filename"] == "street.png" and street["keypoints"] == 6
    car, person = street["objects"]
    assert (car["label"], car["text"], person["label"], person["text"]) == (
        2,
        "car",
        1,
        "person",
    )
    np.testing.assert_allclose(car["box"], [0.25, 0.125, 0.5, 0.375], atol=1e-6)
    np.testing.assert_allclose(person["box"], [0.0, 0.5, 0.8333333, 1.0], atol=1e-6)
    assert car["flags"] == ["difficult", "mask"] and person["flags"] == ["crowd", "mask"]
    assert car["keypoints"] == person["keypoints"] == 3
    assert road["objects"] == [] and road["segmentation"]["format"] == "png"
    assert (road["segmentation"]["height"], road["segmentation"]["width"]) == (6, 8)
    text = report.format_text()
    assert "2 car: 0.250 0.125 0.500 0.375, difficult, mask, 3 keypoints" in text
    assert "1 person: 0.000 0.500 0.833 1.000, crowd, mask, 3 keypoints" in text
    assert "record 1 (road.png): no objects, segmentation mask png 6x8 (" in text


def test_a_record_whose_lists_disagree_is_a_note(tmp_path):
    tf = pytest.importorskip("tensorflow")
    good = d.encode_detection(
        encoded=_png(4, 4), image_format="png", height=4, width=4, channels=3,
        filename="a.png", source_id="1",
        objects=[d.DetectionObject(0.1, 0.1, 0.5, 0.5, 1, "cat")],
    )  # fmt: skip
    broken = _tf_example(
        tf,
        {
            d.ENCODED: [_png(4, 4)],
            d.XMIN: [0.1],
            d.YMIN: [0.1],
            d.XMAX: [0.5, 0.9],  # two xmax for one box
            d.YMAX: [0.5],
            d.CLASS_LABEL: [1],
        },
    )
    path = tmp_path / "broken.tfrecord"
    path.write_bytes(frame(good) + frame(broken))
    report = inspect_dataset([path])
    assert report.objects is not None and report.objects.records == 1
    assert any(
        "broken.tfrecord: record 1: not a valid detection record: box coordinates" in n
        for n in report.notes
    )


def test_unlabelled_records_without_objects_keep_their_note(tmp_path):
    tf = pytest.importorskip("tensorflow")
    path = tmp_path / "bare.tfrecord"
    with tf.io.TFRecordWriter(str(path)) as writer:
        writer.write(_tf_example(tf, {d.ENCODED: [_png(3, 5)], d.FILENAME: [b"x.png"]}))
    report = inspect_dataset([path])
    assert report.objects is None
    assert any("no label" in n and "label_key" in n for n in report.notes)
    assert "labels: none" in report.format_text()


def test_text_lists_20_objects_of_a_record_and_json_all(tmp_path):
    objects = [d.DetectionObject(0.0, 0.0, 0.5, 0.5, 1 + i % 2, f"c{1 + i % 2}") for i in range(25)]
    data = d.encode_detection(
        encoded=_png(4, 4), image_format="png", height=4, width=4, channels=3,
        filename="many.png", source_id="1", objects=objects,
    )  # fmt: skip
    path = tmp_path / "many.tfrecord"
    path.write_bytes(frame(data))
    report = inspect_dataset([path])
    (record,) = report.to_json()["sample"]["objects"]["shown"]
    assert len(record["objects"]) == 25 and report.objects.per_class == {"c1": 13, "c2": 12}
    text = report.format_text()
    assert (
        text.count(": 0.000 0.000 0.500 0.500") == 20 and "… 5 more (--json lists them all)" in text
    )
