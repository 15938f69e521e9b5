"""Detection and segmentation records read without TensorFlow (access/detection.py,
``TFRecordDataSource(task=...)``), and what a dataset's records are for
(dataset/task.py: ``Dataset.task``, ``check_task``).

The records hold the filled boxes of ``tests/convert/test_detection_convert.py``'s truth,
with a 0/1 PNG mask per box, two keypoints per box (the top-left pixel, seen; the middle
pixel, hidden) and a class mask PNG (the box's label inside, 255 on the bottom row). What
the readers give is compared with that truth turned by Pillow's EXIF transposes and resized
by whole pixel centres."""

from __future__ import annotations

import importlib
import io
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tfrecord_tools.access.detection import (
    collate_detection,
    decode_detection,
    pad_detection,
)
from tfrecord_tools.access.source import TFRecordDataSource
from tfrecord_tools.dataset import check_task, resolve
from tfrecord_tools.errors import TFRecordToolsError
from tfrecord_tools.format.detection import DetectionObject, encode_detection
from tfrecord_tools.format.example import encode_example
from tfrecord_tools.format.framing import frame

from ..convert.test_detection_convert import CLASSES, COLOURS, truth, write_yolo

TRUTH = truth()
#: EXIF orientation -> Pillow's transpose that makes the stored image upright.
UPRIGHT = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


# --------------------------------------------------------------------------- the data


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def _pixels(im: dict) -> np.ndarray:
    pixels = np.zeros((im["height"], im["width"], 3), np.uint8)
    for x0, y0, x1, y1, label in im["boxes"]:
        pixels[y0:y1, x0:x1] = COLOURS[label]
    return pixels


def _masks(im: dict) -> np.ndarray:
    """uint8 [N, h, w]: 1 inside each box."""
    masks = np.zeros((len(im["boxes"]), im["height"], im["width"]), np.uint8)
    for mask, (x0, y0, x1, y1, _label) in zip(masks, im["boxes"], strict=True):
        mask[y0:y1, x0:x1] = 1
    return masks


def _class_mask(im: dict) -> np.ndarray:
    seg = np.zeros((im["height"], im["width"]), np.uint8)
    for x0, y0, x1, y1, label in im["boxes"]:
        seg[y0:y1, x0:x1] = label
    seg[-1] = 255  # DeepLab's "ignore" (no box reaches the bottom row)
    return seg


def _points(im: dict) -> list[tuple[int, int, int]]:
    """Per box, in pixels: its top-left pixel (seen, 2) and its middle one (hidden, 1)."""
    points = []
    for x0, y0, x1, y1, _label in im["boxes"]:
        points.append((x0, y0, 2))
        points.append(((x0 + x1) // 2, (y0 + y1) // 2, 1))
    return points


def _record(
    im: dict, orientation: int = 1, *, masks=True, keypoints=True, segmentation=True, first=None
):
    """``im``'s record; ``first``: other bytes for the first object's mask."""
    w, h = im["width"], im["height"]
    points = _points(im)
    pngs = [_png(mask) for mask in _masks(im)]
    if first is not None:
        pngs[0] = first
    objects = [
        DetectionObject(
            xmin=x0 / w,
            ymin=y0 / h,
            xmax=x1 / w,
            ymax=y1 / h,
            label=label,
            text=CLASSES[label - 1],
            mask=png if masks else None,
            keypoints=tuple(((px + 0.5) / w, (py + 0.5) / h, v) for px, py, v in pair)
            if keypoints
            else (),
        )
        for (x0, y0, x1, y1, label), png, pair in zip(
            im["boxes"], pngs, zip(points[::2], points[1::2], strict=True), strict=True
        )
    ]
    return encode_detection(
        encoded=_png(_pixels(im)),
        image_format="png",
        height=h,
        width=w,
        channels=3,
        filename=im["name"],
        source_id=im["name"],
        objects=objects,
        orientation=orientation,
        segmentation=_png(_class_mask(im)) if segmentation else None,
    )


def _write(path: Path, records: list[bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(frame(r) for r in records))
    return path


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """orientation -> a shard of every truth image stored with that EXIF orientation."""
    root = tmp_path_factory.mktemp("detection")
    return {
        o: _write(root / f"o{o}" / "data.tfrecord", [_record(im, o) for im in TRUTH])
        for o in UPRIGHT
    }


# --------------------------------------------------------------------------- the truth


def _upright(array: np.ndarray, orientation: int) -> np.ndarray:
    """``array`` ([h, w] or [h, w, 3]) as Pillow turns it for ``orientation``."""
    if UPRIGHT[orientation] is None:
        return array
    return np.asarray(Image.fromarray(array).transpose(UPRIGHT[orientation]))


def _nearest(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Output pixel i takes the input pixel its centre falls in: floor((i + 1/2) h / H),
    in whole numbers."""
    (h, w), (height, width) = array.shape[:2], size
    rows = (2 * np.arange(height) + 1) * h // (2 * height)
    cols = (2 * np.arange(width) + 1) * w // (2 * width)
    return array[rows][:, cols]


def _upright_points(im: dict, orientation: int) -> np.ndarray:
    """[N, 2, 3]: each keypoint's pixel found again in the turned image, normalised to its
    centre, and its visibility."""
    h, w = im["height"], im["width"]
    out = []
    for px, py, v in _points(im):
        marked = np.zeros((h, w), np.uint8)
        marked[py, px] = 255
        turned = _upright(marked, orientation)
        qy, qx = np.argwhere(turned)[0]
        out.append(((qx + 0.5) / turned.shape[1], (qy + 0.5) / turned.shape[0], v))
    return np.asarray(out, np.float32).reshape(len(im["boxes"]), 2, 3)


# --------------------------------------------------------------------------- detection


@pytest.mark.parametrize("orientation", list(UPRIGHT))
def test_masks_keypoints_and_boxes_turn_with_the_image(shards, orientation):
    src = TFRecordDataSource(shards[orientation], task="detection", masks=True)
    assert len(src) == len(TRUTH)
    for i, im in enumerate(TRUTH):
        s = src[i]
        image = _upright(_pixels(im), orientation)
        np.testing.assert_array_equal(s["image"], image)
        want = np.stack([_upright(m, orientation) for m in _masks(im)]) if im["boxes"] else None
        if want is None:
            assert s["masks"].shape == (0, *image.shape[:2]) and s["masks"].dtype == np.uint8
            assert "keypoints" not in s  # the record has none
            continue
        assert s["masks"].dtype == np.uint8
        np.testing.assert_array_equal(s["masks"], want)
        assert s["keypoints"].dtype == np.float32
        np.testing.assert_allclose(s["keypoints"], _upright_points(im, orientation), atol=1e-6)
        height, width = image.shape[:2]
        for mask, box, label in zip(s["masks"], s["boxes"], s["classes"], strict=True):
            assert (image[mask == 1] == COLOURS[label]).all()  # the mask is on its box's pixels
            ys, xs = np.nonzero(mask)
            bounds = [ys.min() / height, xs.min() / width, (ys.max() + 1) / height]
            np.testing.assert_allclose(box, [*bounds, (xs.max() + 1) / width], atol=1e-6)


@pytest.mark.parametrize("orientation", [1, 6])
def test_masks_are_resized_nearest_as_the_image(shards, orientation):
    size = (37, 53)
    src = TFRecordDataSource(shards[orientation], task="detection", masks=True, image_size=size)
    for i, im in enumerate(TRUTH):
        s = src[i]
        assert s["image"].shape == (*size, 3)
        assert s["masks"].shape == (len(im["boxes"]), *size)
        for got, mask in zip(s["masks"], _masks(im), strict=True):
            np.testing.assert_array_equal(got, _nearest(_upright(mask, orientation), size))
        if im["boxes"]:  # normalised: the resize does not move them
            np.testing.assert_allclose(s["keypoints"], _upright_points(im, orientation), atol=1e-6)


def test_without_masks_none_are_decoded(shards):
    s = TFRecordDataSource(shards[1], task="detection")[0]
    assert "masks" not in s and s["keypoints"].shape == (len(TRUTH[0]["boxes"]), 2, 3)
    assert s["texts"] == [CLASSES[b[4] - 1] for b in TRUTH[0]["boxes"]]


# --------------------------------------------------------------------------- segmentation


@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
@pytest.mark.parametrize("size", [None, (29, 41)])
def test_segmentation_gives_the_class_mask_turned_and_resized(shards, orientation, size):
    src = TFRecordDataSource(shards[orientation], task="segmentation", image_size=size)
    for i, im in enumerate(TRUTH):
        s = src[i]
        assert set(s) == {"image", "mask"}
        want = _upright(_class_mask(im), orientation)
        if size is None:
            np.testing.assert_array_equal(s["image"], _upright(_pixels(im), orientation))
        else:
            want = _nearest(want, size)
            assert s["image"].shape == (*size, 3)
        assert s["mask"].dtype == np.uint8
        np.testing.assert_array_equal(s["mask"], want)


def _deeplab(path: Path, images: list[dict]) -> Path:
    """Records as DeepLab's ``build_voc2012_data.py`` writes them: no box keys."""
    tf = pytest.importorskip("tensorflow")

    def feature(value):
        if isinstance(value, bytes):
            return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))

    records = []
    for im in images:
        features = {
            "image/encoded": _png(_pixels(im)),
            "image/filename": im["name"].encode(),
            "image/format": b"png",
            "image/height": im["height"],
            "image/width": im["width"],
            "image/channels": 3,
            "image/segmentation/class/encoded": _png(_class_mask(im)),
            "image/segmentation/class/format": b"png",
        }
        example = tf.train.Example(
            features=tf.train.Features(feature={k: feature(v) for k, v in features.items()})
        )
        records.append(example.SerializeToString())
    return _write(path, records)


def test_deeplab_records_are_segmentation_records(tmp_path):
    path = _deeplab(tmp_path / "voc" / "train-00000-of-00001.tfrecord", TRUTH)
    assert resolve(path).task == "segmentation"
    with pytest.raises(TFRecordToolsError) as caught:
        TFRecordDataSource(path)
    assert str(caught.value) == (
        f"{path} holds segmentation records (class masks): pass task='segmentation'"
    )
    with pytest.raises(TFRecordToolsError, match=r"not detection records .*image/object/bbox/xmin"):
        TFRecordDataSource(path, task="detection")
    src = TFRecordDataSource(tmp_path / "voc", task="segmentation")
    for i, im in enumerate(TRUTH):
        np.testing.assert_array_equal(src[i]["mask"], _class_mask(im))


# --------------------------------------------------------------------------- the task


def test_classification_on_detection_records_says_which_task(shards):
    path = shards[1]
    dataset = resolve(path)
    assert dataset.task == "detection"
    with pytest.raises(TFRecordToolsError) as caught:
        TFRecordDataSource(path)
    assert str(caught.value) == (
        f"{path} holds detection records (boxes and classes): pass task='detection'"
    )
    with pytest.raises(TFRecordToolsError) as again:
        check_task(dataset, "classification")  # the one check every reader calls
    assert str(again.value) == str(caught.value)
    check_task(dataset, "segmentation")  # these detection records carry class masks too
    check_task(dataset, "detection")


def test_classification_records_refuse_the_other_tasks(tmp_path):
    pixels = np.zeros((4, 5, 3), np.uint8)
    record = encode_example(
        encoded=_png(pixels),
        image_format="png",
        height=4,
        width=5,
        channels=3,
        label=1,
        text="a",
        filename="a.png",
    )
    path = _write(tmp_path / "a.tfrecord", [record])
    assert resolve(path).task == "classification"
    for task in ("detection", "segmentation"):
        with pytest.raises(TFRecordToolsError) as caught:
            TFRecordDataSource(path, task=task)
        assert str(caught.value).startswith(f"{path} holds classification records")
        assert "read them with task='classification' (the default)" in str(caught.value)
    assert TFRecordDataSource(path)[0][1] == 1


def test_a_record_with_a_label_and_boxes_is_classification_and_reads_as_both(tmp_path):
    """The rule: detection needs the box keys and no image/class/label."""
    im = TRUTH[0]
    label = encode_example(
        encoded=b"x", image_format="png", height=1, width=1, channels=3, label=2, text="b",
        filename="x",
    )  # fmt: skip
    # serialised Examples concatenated are one Example with the keys of both (the last
    # one's value where both have a key: the detection record's image)
    record = label + _record(im, segmentation=False)
    path = _write(tmp_path / "both.tfrecord", [record])
    assert resolve(path).task == "classification"
    assert TFRecordDataSource(path)[0][1] == 2
    assert len(TFRecordDataSource(path, task="detection")[0]["boxes"]) == len(im["boxes"])
    with pytest.raises(TFRecordToolsError, match="no image/segmentation/class/encoded"):
        TFRecordDataSource(path, task="segmentation")


def test_an_empty_dataset_has_no_task_to_refuse(tmp_path):
    path = _write(tmp_path / "empty.tfrecord", [])
    assert resolve(path).task == "classification"
    for task in ("classification", "detection", "segmentation"):
        check_task(resolve(path), task)
    with pytest.raises(TFRecordToolsError, match="task must be one of"):
        check_task(resolve(path), "panoptic")


@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> Path:
    from tfrecord_tools.convert.sources.annotated import convert_yolo

    root = tmp_path_factory.mktemp("yolo")
    write_yolo(root / "src", TRUTH)
    convert_yolo(root / "src", root / "out", quiet=True)
    return root / "out"


def test_our_manifest_says_the_task_without_a_record_read(converted, monkeypatch):
    resolve_module = importlib.import_module("tfrecord_tools.dataset.resolve")

    def no_read(*args):
        raise AssertionError("a record was read")

    monkeypatch.setattr(resolve_module, "first_record", no_read)
    dataset = resolve(converted)
    assert dataset.task == "detection"
    with pytest.raises(TFRecordToolsError) as caught:
        TFRecordDataSource(converted)
    assert str(caught.value) == (
        f"{converted} holds detection records (boxes and classes): pass task='detection'"
    )
    assert len(TFRecordDataSource(converted, task="detection")) == len(TRUTH)


def test_a_manifest_with_a_task_this_version_does_not_know(converted, tmp_path):
    import shutil

    copy = tmp_path / "out"
    shutil.copytree(converted, copy)
    manifest = json.loads((copy / "dataset.json").read_text())
    manifest["task"] = "panoptic"
    (copy / "dataset.json").write_text(json.dumps(manifest))
    with pytest.raises(TFRecordToolsError, match=r"dataset.json: task 'panoptic', which this"):
        TFRecordDataSource(copy, task="detection")


def test_the_first_record_is_read_once_and_not_pickled(shards, monkeypatch):
    resolve_module = importlib.import_module("tfrecord_tools.dataset.resolve")
    keys_module = importlib.import_module("tfrecord_tools.dataset.keys")
    reads = []
    real = keys_module.first_record
    for module in (resolve_module, keys_module):
        monkeypatch.setattr(module, "first_record", lambda *a: reads.append(a) or real(*a))
    src = TFRecordDataSource(shards[1], task="detection")  # check_task, then keys_for
    assert len(reads) == 1
    copy = pickle.loads(pickle.dumps(src))
    assert "first_record" not in copy.dataset.__dict__ and copy.dataset.task == "detection"
    assert copy[0]["filename"] == TRUTH[0]["name"]


# --------------------------------------------------------------------------- others' records


def _coco_script_records(path: Path, images: list[dict]) -> Path:
    """Examples built as TF's ``create_coco_tf_record.py`` builds them (JPEG, no
    image/channels, masks as PNGs when include_masks)."""
    tf = pytest.importorskip("tensorflow")
    import hashlib

    def ints(v):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=v))

    def floats(v):
        return tf.train.Feature(float_list=tf.train.FloatList(value=v))

    def blobs(v):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=v))

    records = []
    for i, im in enumerate(images):
        buf = io.BytesIO()
        Image.fromarray(_pixels(im)).save(buf, format="JPEG", quality=95, subsampling=0)
        encoded = buf.getvalue()
        w, h = im["width"], im["height"]
        boxes = im["boxes"]
        feature = {
            "image/height": ints([h]),
            "image/width": ints([w]),
            "image/filename": blobs([im["name"].encode()]),
            "image/source_id": blobs([str(100 + i).encode()]),
            "image/key/sha256": blobs([hashlib.sha256(encoded).hexdigest().encode()]),
            "image/encoded": blobs([encoded]),
            "image/format": blobs([b"jpeg"]),
            "image/object/bbox/xmin": floats([b[0] / w for b in boxes]),
            "image/object/bbox/xmax": floats([b[2] / w for b in boxes]),
            "image/object/bbox/ymin": floats([b[1] / h for b in boxes]),
            "image/object/bbox/ymax": floats([b[3] / h for b in boxes]),
            "image/object/class/text": blobs([CLASSES[b[4] - 1].encode() for b in boxes]),
            "image/object/class/label": ints([b[4] for b in boxes]),
            "image/object/is_crowd": ints([0] * len(boxes)),
            "image/object/area": floats([float((b[2] - b[0]) * (b[3] - b[1])) for b in boxes]),
            "image/object/mask": blobs([_png(m) for m in _masks(im)]),
        }
        example = tf.train.Example(features=tf.train.Features(feature=feature))
        records.append(example.SerializeToString())
    return _write(path, records)


def test_records_of_tfs_coco_script_are_found_and_read(tmp_path):
    images = [TRUTH[-1], *TRUTH[:-1]]  # the first record has no object: empty lists
    path = _coco_script_records(tmp_path / "coco_train.record-00000-of-00001", images)
    assert resolve(tmp_path).task == "detection"
    with pytest.raises(TFRecordToolsError, match=r"holds detection records .*task='detection'"):
        TFRecordDataSource(tmp_path)
    src = TFRecordDataSource(path, task="detection", masks=True)
    for i, im in enumerate(images):
        s = src[i]
        boxes = [(y0 / im["height"], x0 / im["width"], y1 / im["height"], x1 / im["width"])
                 for x0, y0, x1, y1, _ in im["boxes"]]  # fmt: skip
        np.testing.assert_allclose(s["boxes"], np.reshape(boxes, (-1, 4)), atol=1e-6)
        assert s["classes"].tolist() == [b[4] for b in im["boxes"]]
        assert s["texts"] == [CLASSES[b[4] - 1] for b in im["boxes"]]
        np.testing.assert_array_equal(s["masks"], _masks(im).reshape(-1, *s["image"].shape[:2]))
        for mask, label in zip(s["masks"], s["classes"], strict=True):  # JPEG: near its colour
            assert np.abs(s["image"][mask == 1].astype(int) - COLOURS[label]).mean() < 8


# --------------------------------------------------------------------------- bad records


def _bad(tmp_path, record: bytes) -> Path:
    return _write(tmp_path / "bad.tfrecord", [_record(TRUTH[0]), record])


@pytest.mark.parametrize(
    ("mask", "message"),
    [
        (_png(np.zeros((5, 5), np.uint8)), r"mask 0 is 5x5, the image is \d+x\d+ \(height x"),
        (b"not a png at all, but long enough", "mask 0 is not a PNG"),
    ],
)  # fmt: skip
def test_a_bad_mask_names_the_record(tmp_path, mask, message):
    im = TRUTH[0]
    path = _bad(tmp_path, _record(im, first=mask))
    src = TFRecordDataSource(path, task="detection", masks=True)
    src[0]
    with pytest.raises(
        TFRecordToolsError, match=rf"bad.tfrecord: record 1 at byte \d+: .*{message}"
    ):
        src[1]
    assert len(TFRecordDataSource(path, task="detection")[1]["boxes"]) == len(im["boxes"])


def test_masks_true_on_records_without_masks(tmp_path):
    path = _bad(tmp_path, _record(TRUTH[1], masks=False))
    src = TFRecordDataSource(path, task="detection", masks=True)
    with pytest.raises(TFRecordToolsError, match=r"record 1 .*masks=True, but the record has "):
        src[1]
    with pytest.raises(TFRecordToolsError, match="masks=True reads a mask per object"):
        TFRecordDataSource(path, masks=True)


def test_keypoints_that_do_not_divide_among_the_objects(tmp_path):
    objects = [
        DetectionObject(0.1, 0.1, 0.2, 0.2, label=1, text="a", keypoints=((0.1, 0.1, 2),) * k)
        for k in (2, 1)
    ]
    odd = encode_detection(
        encoded=_png(np.zeros((4, 4, 3), np.uint8)), image_format="png", height=4, width=4,
        channels=3, filename="odd.png", source_id="odd", objects=objects,
    )  # fmt: skip
    with pytest.raises(TFRecordToolsError, match=r"record 1 .*3 keypoints for 2 objects"):
        TFRecordDataSource(_bad(tmp_path, odd), task="detection")[1]


def test_per_object_lists_of_another_length(tmp_path):
    tf = pytest.importorskip("tensorflow")
    texts = tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"one"]))
    extra = tf.train.Example(
        features=tf.train.Features(feature={"image/object/class/text": texts})
    ).SerializeToString()
    # Examples concatenated merge: the last one's texts replace the three the record had
    record = _record(TRUTH[1]) + extra
    with pytest.raises(TFRecordToolsError, match="3 boxes but 1 values in image/object/class/t"):
        TFRecordDataSource(_bad(tmp_path, record), task="detection")[1]


# --------------------------------------------------------------------------- batching


def test_collate_gives_masks_and_absolute_keypoints(shards):
    src = TFRecordDataSource(shards[6], task="detection", masks=True)
    samples = [src[i] for i in range(len(src))]
    images, targets = collate_detection(samples, as_tensor=np.asarray)
    for im, s, image, target in zip(TRUTH, samples, images, targets, strict=True):
        height, width = s["image"].shape[:2]
        assert image.shape == (3, height, width)
        assert target["masks"].dtype == np.uint8
        np.testing.assert_array_equal(target["masks"], s["masks"])
        assert target["keypoints"].shape == (len(im["boxes"]), 2, 3)
        pixels = target["keypoints"][..., :2] - 0.5  # the centres of the marked pixels
        np.testing.assert_allclose(pixels, np.round(pixels), atol=1e-3)
        for obj, points in zip(target["masks"], np.round(pixels).astype(int), strict=True):
            assert all(obj[y, x] == 1 for x, y in points)  # both points lie on the object
        seen = np.tile([2, 1], (len(im["boxes"]), 1))
        np.testing.assert_array_equal(target["keypoints"][..., 2], seen)


def test_collate_without_masks_has_none(shards):
    src = TFRecordDataSource(shards[1], task="detection")
    _, targets = collate_detection([src[0], src[5]], as_tensor=np.asarray)
    assert "masks" not in targets[0]
    assert targets[1]["keypoints"].shape == (0, 2, 3)  # no object: no keypoints needed


def test_pad_detection_pads_every_per_object_field(shards):
    size = (32, 48)
    src = TFRecordDataSource(shards[1], task="detection", masks=True, image_size=size)
    samples = [src[i] for i in range(len(src))]
    batch = pad_detection(samples, num_objects=4)
    counts = [len(im["boxes"]) for im in TRUTH]
    assert batch["num_objects"].tolist() == counts
    assert batch["image"].shape == (len(TRUTH), *size, 3)
    assert batch["boxes"].shape == (len(TRUTH), 4, 4)
    assert batch["masks"].shape == (len(TRUTH), 4, *size)
    assert batch["keypoints"].shape == (len(TRUTH), 4, 2, 3)
    for s, n, i in zip(samples, counts, range(len(TRUTH)), strict=True):
        np.testing.assert_array_equal(batch["boxes"][i, :n], s["boxes"])
        np.testing.assert_array_equal(batch["masks"][i, :n], s["masks"])
        assert (batch["classes"][i, n:] == -1).all() and (batch["boxes"][i, n:] == 0).all()
        assert batch["texts"][i, :n].tolist() == s["texts"]
        assert (batch["masks"][i, n:] == 0).all()
    assert batch["filename"].tolist() == [im["name"] for im in TRUTH]
    assert pad_detection(samples)["boxes"].shape[1] == max(counts)
    with pytest.raises(TFRecordToolsError, match=r"img01.png has 3 objects, more than num_obj"):
        pad_detection(samples, num_objects=2)


def test_images_of_different_sizes_are_not_padded_together(shards):
    src = TFRecordDataSource(shards[1], task="detection")
    with pytest.raises(TFRecordToolsError, match=r"img00.png is .*img01.png is .*image_size"):
        pad_detection([src[0], src[1]])


def test_decode_detection_alone(shards):
    """The decoder without a source: what a pipeline of one's own calls on record bytes."""
    from tfrecord_tools.format.framing import iter_records

    data = next(iter_records(str(shards[1]))).data
    s = decode_detection(data, channels=1, masks=True)
    assert s["image"].shape == (TRUTH[0]["height"], TRUTH[0]["width"], 1)
    np.testing.assert_array_equal(s["masks"], _masks(TRUTH[0]))
