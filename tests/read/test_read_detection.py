"""``make_dataset(task="detection" | "segmentation")``: boxes, classes, masks, keypoints and
class masks read back exactly, and moved with the pixels by every transform (orientation,
crop, resize, keep_aspect, flip); padded and ragged batches; the errors.

The data: small images of filled shapes, one colour per class and at most one shape per
class in an image, so every colour in an output image names the one box that must frame it.
Records come through our converter (``convert_coco``) and through TensorFlow's own
``tf.train.Example`` with the object detection API's keys only."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tfrecord_tools import TFRecordToolsError, convert_mnist
from tfrecord_tools.format import detection as det

from ..convert.test_detection_convert import COLOURS, expected, write_coco
from ..helpers import make_mnist

tf = pytest.importorskip("tensorflow")
from tfrecord_tools import make_dataset  # noqa: E402

#: PIL's transposes that ImageOps.exif_transpose applies for each EXIF orientation, and
#: their inverses (what a camera stored for an upright scene).
UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
STORED = {**UPRIGHT, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}


# --------------------------------------------------------------------------- the data


def scenes(count: int, seed: int, sides: tuple[int, int] = (48, 96)) -> list[dict]:
    """Per image: name, width, height and boxes [(x0, y0, x1, y1, label)] in whole pixels,
    one shape per class at most (each in its own column band), 12 pixels or more a side."""
    rng = np.random.default_rng(seed)
    images = []
    for i in range(count):
        height, width = (int(v) for v in rng.integers(*sides, size=2))
        labels = rng.permutation([1, 2, 3])[: int(rng.integers(1, 4))]
        band = width // 3
        boxes = []
        for k, label in enumerate(labels):
            x0 = k * band + int(rng.integers(0, band // 4))
            x1 = x0 + int(rng.integers(band // 2, band - band // 4))
            y0 = int(rng.integers(0, height // 2))
            y1 = y0 + int(rng.integers(height // 4, height // 2))
            boxes.append((x0, y0, x1, y1, int(label)))
        images.append({"name": f"s{i:02d}.png", "width": width, "height": height, "boxes": boxes})
    return images


def paint(im: dict, *, triangles: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(pixels [H, W, 3], masks [N, H, W] 0/1) of ``im``: each shape its class's colour, a
    filled box or (``triangles``) the box's lower-left triangle."""
    pixels = np.zeros((im["height"], im["width"], 3), np.uint8)
    masks = np.zeros((len(im["boxes"]), im["height"], im["width"]), np.uint8)
    for i, (x0, y0, x1, y1, label) in enumerate(im["boxes"]):
        inside = np.zeros((im["height"], im["width"]), bool)
        inside[y0:y1, x0:x1] = True
        if triangles:  # the diagonal from (x0, y0) to (x1, y1); both corner rows kept
            yy, xx = np.mgrid[0 : im["height"], 0 : im["width"]]
            inside &= (xx - x0) * (y1 - y0) <= (yy - y0 + 1) * (x1 - x0)
        pixels[inside] = COLOURS[label]
        masks[i][inside] = 1
    return pixels, masks


def png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, "PNG")
    return buf.getvalue()


def _floats(values) -> tf.train.Feature:
    return tf.train.Feature(float_list=tf.train.FloatList(value=list(values)))


def _ints(values) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=list(values)))


def _bytes(values) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=list(values)))


def api_example(
    name: str,
    encoded: bytes,
    height: int,
    width: int,
    boxes,
    labels,
    *,
    fmt: str = "png",
    **extra: tf.train.Feature,
) -> bytes:
    """A ``tf.train.Example`` with the keys the object detection API's scripts write and
    require, nothing of ours (no image/channels, is_crowd, area, difficult): ``boxes``
    normalised (ymin, xmin, ymax, xmax); ``extra``: more features by key."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    feature = {
        "image/encoded": _bytes([encoded]),
        "image/format": _bytes([fmt.encode()]),
        "image/height": _ints([height]),
        "image/width": _ints([width]),
        "image/filename": _bytes([name.encode()]),
        "image/source_id": _bytes([name.encode()]),
        det.YMIN: _floats(boxes[:, 0]),
        det.XMIN: _floats(boxes[:, 1]),
        det.YMAX: _floats(boxes[:, 2]),
        det.XMAX: _floats(boxes[:, 3]),
        det.CLASS_TEXT: _bytes(f"class{label}".encode() for label in labels),
        det.CLASS_LABEL: _ints(labels),
        **extra,
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def scene_example(im: dict, **extra) -> bytes:
    pixels, _ = paint(im)
    boxes, labels = expected(im)
    return api_example(im["name"], png(pixels), im["height"], im["width"], boxes, labels, **extra)


def write_records(path: Path, examples: list[bytes]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for example in examples:
            writer.write(example)
    return str(path)


def elements(ds) -> list[dict]:
    return [{k: v.numpy() for k, v in e.items()} for e in ds]


def assert_framed(e: dict, counts: dict | None = None) -> None:
    """Every box of ``e`` (one element) lies in [0, 1] and its centre is its class's colour
    (at least half of it, blended with the black background: a box cut to less than a
    stored pixel is a blend once enlarged; boxes of 3 output pixels or more a side); every
    colour seen in the image has a box of its class, and the pixels of exactly that colour
    lie inside that box."""
    image, boxes, classes = e["image"], e["boxes"], e["classes"].tolist()
    height, width = image.shape[:2]
    assert boxes.min(initial=0) >= 0 and boxes.max(initial=1) <= 1, boxes
    assert (boxes[:, 2:] > boxes[:, :2]).all(), boxes  # nothing without area is kept
    sides = np.array([height, width, height, width], np.float32)
    for box, label in zip(boxes * sides, classes, strict=True):
        y0, x0, y1, x1 = box
        if y1 - y0 >= 3 and x1 - x0 >= 3:
            centre = image[int((y0 + y1) / 2), int((x0 + x1) / 2)]
            lit = np.array(COLOURS[label]) > 0
            assert (centre[lit] >= 128).all() and not centre[~lit].any(), (e, box, label)
    for label, colour in COLOURS.items():
        ys, xs = np.nonzero(np.all(image == colour, axis=-1))
        if not len(ys):
            continue
        assert label in classes, (e["filename"], label, "seen but no box")
        y0, x0, y1, x1 = boxes[classes.index(label)] * sides
        # pixel centres of the exact colour: inside the box (a hair of float slack)
        assert y0 - 0.01 <= ys.min() + 0.5 and ys.max() + 0.5 <= y1 + 0.01, (e["filename"], label)
        assert x0 - 0.01 <= xs.min() + 0.5 and xs.max() + 0.5 <= x1 + 0.01, (e["filename"], label)
    if counts is not None:
        counts["boxes"] = counts.get("boxes", 0) + len(classes)


SCENES = scenes(8, seed=1)


@pytest.fixture(scope="module")
def coco(tmp_path_factory) -> Path:
    """SCENES converted by ``convert_coco`` (PNG, two shards)."""
    root = tmp_path_factory.mktemp("coco")
    ann = write_coco(root / "src", SCENES)
    from tfrecord_tools import convert_coco

    convert_coco(root / "src", root / "out", annotations=ann, shards=2, quiet=True)
    return root / "out"


@pytest.fixture(scope="module")
def api_records(tmp_path_factory) -> str:
    """SCENES as the detection API's own keys only, written by TensorFlow."""
    root = tmp_path_factory.mktemp("api")
    return write_records(root / "scenes.tfrecord", [scene_example(im) for im in SCENES])


# --------------------------------------------------------------------------- the truth


def test_converted_records_give_every_box_and_class(coco):
    ds = make_dataset(coco, task="detection")
    assert int(ds.cardinality()) == len(SCENES)
    got = {Path(e["filename"].decode()).name: e for e in elements(ds)}
    assert sorted(got) == sorted(im["name"] for im in SCENES)
    for im in SCENES:
        e = got[im["name"]]
        boxes, labels = expected(im)
        np.testing.assert_array_equal(e["boxes"], boxes)  # float32, exactly as stored
        assert e["boxes"].dtype == np.float32 and e["classes"].dtype == np.int64
        assert e["classes"].tolist() == labels
        assert e["is_crowd"].tolist() == e["difficult"].tolist() == [0] * len(labels)
        areas = [(x1 - x0) * (y1 - y0) for x0, y0, x1, y1, _ in im["boxes"]]
        assert e["area"].tolist() == areas
        np.testing.assert_array_equal(e["image"], paint(im)[0])


def test_detection_api_records_read_with_defaults(api_records):
    """Only the keys the detection API requires: is_crowd, difficult, area read as 0."""
    got = elements(make_dataset(api_records, task="detection"))
    assert [e["filename"].decode() for e in got] == [im["name"] for im in SCENES]
    for im, e in zip(SCENES, got, strict=True):
        boxes, labels = expected(im)
        np.testing.assert_array_equal(e["boxes"], boxes)
        assert e["classes"].tolist() == labels
        n = len(labels)
        assert e["is_crowd"].tolist() == e["difficult"].tolist() == [0] * n
        assert e["area"].tolist() == [0.0] * n


# --------------------------------------------------------------------------- transforms


@pytest.mark.parametrize(
    "options",
    [
        {"crop": "random"},
        {"flip": True},
        {"crop": "random", "flip": True},
        {"crop": "center", "central_fraction": 0.6, "flip": True},
        {"crop": "random", "flip": True, "keep_aspect": True},
        {"crop": "random", "flip": True, "image_size": 112},  # a record an element
    ],
    ids=lambda o: "+".join(f"{k}={v}" for k, v in o.items()),
)
def test_transforms_keep_boxes_on_their_shapes(coco, api_records, options):
    """Six epochs (new crops and flips each: the record numbers differ) of each source."""
    counts: dict = {}
    for path in (coco, api_records):
        options = {"image_size": 48, **options}
        ds = make_dataset(path, task="detection", seed=7, repeat=6, **options)
        got = elements(ds)
        assert len(got) == 6 * len(SCENES)
        for e in got:
            assert e["image"].shape == (*[options["image_size"]] * 2, 3)
            assert_framed(e, counts)
    whole = 2 * 6 * sum(len(im["boxes"]) for im in SCENES)
    if options.get("crop"):  # the crops did cut some shapes away
        assert counts["boxes"] < whole
    else:
        assert counts["boxes"] == whole


def test_flip_mirrors_about_half_the_images(api_records):
    plain = elements(make_dataset(api_records, task="detection", image_size=48))
    flipped = elements(
        make_dataset(api_records, task="detection", image_size=48, flip=True, seed=3)
    )
    mirrored = 0
    for a, b in zip(plain, flipped, strict=True):
        if not np.array_equal(a["image"], b["image"]):
            np.testing.assert_array_equal(b["image"], a["image"][:, ::-1])
            y0, x0, y1, x1 = a["boxes"].T
            np.testing.assert_allclose(b["boxes"], np.stack([y0, 1 - x1, y1, 1 - x0], 1), atol=1e-6)
            mirrored += 1
        else:
            np.testing.assert_array_equal(a["boxes"], b["boxes"])
    assert 0 < mirrored < len(plain)


def test_same_seed_same_crops_each_epoch_new_ones(api_records):
    def run(seed):
        ds = make_dataset(api_records, task="detection", image_size=32, crop="random", seed=seed)
        return [e["boxes"] for e in elements(ds.repeat(2))]

    first, again, other = run(5), run(5), run(6)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))


def test_center_crop_clips_and_drops_exactly(tmp_path):
    """A 100x100 image, the central half kept (25..75): a shape in the corner is cut away,
    one across the crop's edge is clipped to it, one inside moves with the crop."""
    im = {
        "name": "c.png",
        "width": 100,
        "height": 100,
        "boxes": [(0, 0, 10, 10, 1), (60, 20, 90, 40, 2), (30, 50, 40, 70, 3)],
    }
    path = write_records(tmp_path / "c.tfrecord", [scene_example(im)])
    ds = make_dataset(path, task="detection", image_size=50, crop="center", central_fraction=0.5)
    (e,) = elements(ds)
    assert e["classes"].tolist() == [2, 3]
    want = np.array(
        [
            [0, (60 - 25) / 50, (40 - 25) / 50, 1],
            [(50 - 25) / 50, (30 - 25) / 50, 45 / 50, 15 / 50],
        ],
        np.float32,
    )
    np.testing.assert_allclose(e["boxes"], want, atol=1e-6)
    assert_framed(e)


def test_jpeg_crops_at_a_dct_scale_normalise_boxes_to_what_they_cover(tmp_path):
    """A 256x323 JPEG, its central 224x283 read at 64x64: decoded at 1/2 scale, whole scaled
    pixels cover stored columns 20..304 (not 20..303): the boxes are normalised to those.
    Without the scale (``decode_scaling="off"``) to the exact window."""
    pixels = np.zeros((256, 323, 3), np.uint8)
    pixels[50:150, 100:200] = COLOURS[1]
    jpeg = io.BytesIO()
    Image.fromarray(pixels).save(jpeg, "JPEG", quality=95)
    box = [(50 / 256, 100 / 323, 150 / 256, 200 / 323)]
    record = api_example("j.jpg", jpeg.getvalue(), 256, 323, box, [1], fmt="jpeg")
    path = write_records(tmp_path / "j.tfrecord", [record])
    for scaling, width in (("auto", 284), ("off", 283)):
        ds = make_dataset(
            path, task="detection", image_size=64, crop="center", decode_scaling=scaling
        )
        (e,) = elements(ds)
        want = [[(50 - 16) / 224, (100 - 20) / width, (150 - 16) / 224, (200 - 20) / width]]
        np.testing.assert_allclose(e["boxes"], want, atol=1e-6)
        y0, x0, y1, x1 = (e["boxes"][0] * 64).round().astype(int)
        inside = e["image"][y0 + 1 : y1 - 1, x0 + 1 : x1 - 1].astype(int)
        assert np.abs(inside - COLOURS[1]).max() < 40  # JPEG: near the colour
        outside = e["image"][:, x1 + 1 :].astype(int)
        assert outside.max() < 40


def test_global_shuffle_and_hosts_read_every_record_once(coco):
    def names(**options):
        ds = make_dataset(coco, task="detection", **options)
        return [e["filename"].decode() for e in elements(ds)]

    every = sorted(names())
    assert sorted(names(shuffle="global", seed=1, shuffle_buffer=32)) == every
    assert sorted(names(shuffle=True, seed=1)) == every
    parts = [names(num_workers=2, worker_index=i) for i in (0, 1)]
    assert parts[0] and parts[1] and sorted(parts[0] + parts[1]) == every


def test_a_bucket_reads_as_the_local_folder(coco, api_records):
    pytest.importorskip("fsspec")
    from fsspec.implementations.memory import MemoryFileSystem

    from tfrecord_tools import storage

    url = "memory://tt-read-detection"
    try:
        for path in sorted(coco.rglob("*")):
            if path.is_file():
                storage.put_file(path, f"{url}/coco/{path.relative_to(coco).as_posix()}")
        options = {"task": "detection", "image_size": 32, "crop": "random", "seed": 4}
        local = elements(make_dataset(coco, **options))
        remote = elements(make_dataset(f"{url}/coco", **options))
        assert len(local) == len(remote) == len(SCENES)
        for a, b in zip(local, remote, strict=True):
            assert a.keys() == b.keys()
            for key in a:
                np.testing.assert_array_equal(a[key], b[key])
        good = [scene_example(im) for im in SCENES[:2]]
        bad = _bad("bad.png", **{det.YMIN: _floats([0.1])})
        write_records(Path(api_records).parent / "bad.tfrecord", [*good, bad])
        storage.put_file(Path(api_records).parent / "bad.tfrecord", f"{url}/bad.tfrecord")
        with pytest.raises(
            tf.errors.InvalidArgumentError,
            match=rf"{url}/bad.tfrecord: record 2 at byte {sum(len(r) + 16 for r in good)} ",
        ):
            elements(make_dataset(f"{url}/bad.tfrecord", task="detection"))
    finally:
        MemoryFileSystem().rm(url.removeprefix("memory:/"), recursive=True)


def test_keep_aspect_pads_bottom_right_and_keeps_boxes(api_records):
    ds = make_dataset(api_records, task="detection", image_size=(40, 60), keep_aspect=True)
    for im, e in zip(SCENES, elements(ds), strict=True):
        scale = min(40 / im["height"], 60 / im["width"])
        rows, cols = round(im["height"] * scale), round(im["width"] * scale)
        assert e["image"].shape == (40, 60, 3)
        assert not e["image"][rows:].any() and not e["image"][:, cols:].any()
        boxes, _ = expected(im)
        shrink = np.array([rows / 40, cols / 60, rows / 40, cols / 60], np.float32)
        np.testing.assert_allclose(e["boxes"], boxes * shrink, atol=1e-6)
        assert_framed(e)


def test_dtype_float32_and_one_channel(api_records):
    (e, *_) = elements(
        make_dataset(api_records, task="detection", image_size=24, dtype="float32", channels=1)
    )
    assert e["image"].dtype == np.float32 and e["image"].shape == (24, 24, 1)


# --------------------------------------------------------------------------- orientation


def _stored_scene(orientation: int) -> tuple[dict, bytes]:
    """An upright scene (triangles, their masks, two keypoints per object) and the record a
    camera would have written: pixels, masks and keypoints stored turned, with
    ``image/orientation``; every stored coordinate found from turned pixels (PIL's
    transposes), not from the code under test."""
    (im,) = scenes(1, seed=orientation + 10, sides=(40, 70))
    upright, masks = paint(im, triangles=True)
    turn = (
        (lambda a: a)
        if orientation == 1
        else (lambda a: Image.fromarray(a).transpose(STORED[orientation]))
    )
    stored = np.asarray(turn(upright))
    if orientation != 1:  # the inverse is right: PIL turns it back
        back = Image.fromarray(stored).transpose(UPRIGHT[orientation])
        np.testing.assert_array_equal(np.asarray(back), upright)
    height, width = stored.shape[:2]
    stored_masks = [np.asarray(turn(m)) for m in masks]
    boxes = []
    for m in stored_masks:
        ys, xs = np.nonzero(m)
        boxes.append(
            (ys.min() / height, xs.min() / width, (ys.max() + 1) / height, (xs.max() + 1) / width)
        )
    # keypoints: two marked pixels per object (its mask's first and last pixel), at centres
    marks = np.zeros(upright.shape[:2], np.uint8)
    points = []
    for i, m in enumerate(masks):
        ys, xs = np.nonzero(m)
        for j, k in enumerate((0, len(ys) - 1)):
            marks[ys[k], xs[k]] = 1 + 2 * i + j
            points.append(((ys[k] + 0.5) / m.shape[0], (xs[k] + 0.5) / m.shape[1]))
    stored_marks = np.asarray(turn(marks))
    stored_points = []
    for mark in range(1, 1 + len(points)):
        (y,), (x,) = np.nonzero(stored_marks == mark)
        stored_points.append(((y + 0.5) / height, (x + 0.5) / width))
    ky, kx = zip(*stored_points, strict=True)
    extra = {
        det.MASK: _bytes(png(m) for m in stored_masks),
        det.KEYPOINT_Y: _floats(ky),
        det.KEYPOINT_X: _floats(kx),
        det.KEYPOINT_VISIBILITY: _ints([2] * len(ky)),
    }
    if orientation != 1:
        extra["image/orientation"] = _ints([orientation])
    labels = [b[4] for b in im["boxes"]]
    record = api_example(im["name"], png(stored), height, width, boxes, labels, **extra)
    truth = {
        "image": upright,
        "stored": stored,
        "masks": masks,
        "boxes": expected(im)[0],
        "stored_boxes": np.array(boxes, np.float32),
        "keypoints": np.array(points, np.float32).reshape(len(masks), 2, 2),
        "stored_keypoints": np.array(stored_points, np.float32).reshape(len(masks), 2, 2),
    }
    return truth, record


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_turns_boxes_masks_and_keypoints(tmp_path, orientation):
    truth, record = _stored_scene(orientation)
    path = write_records(tmp_path / "o.tfrecord", [record])
    options = {"task": "detection", "masks": True, "keypoints": True}
    (e,) = elements(make_dataset(path, **options))
    np.testing.assert_array_equal(e["image"], truth["image"])
    np.testing.assert_allclose(e["boxes"], truth["boxes"], atol=1e-6)
    np.testing.assert_array_equal(e["masks"], truth["masks"])
    # (x, y, visibility) as stored; the truth is (y, x)
    np.testing.assert_allclose(e["keypoints"][..., [1, 0]], truth["keypoints"], atol=1e-6)
    assert (e["keypoints"][..., 2] == 2).all()
    (raw,) = elements(make_dataset(path, orientation=False, **options))
    np.testing.assert_array_equal(raw["image"], truth["stored"])
    np.testing.assert_allclose(raw["boxes"], truth["stored_boxes"], atol=1e-6)
    np.testing.assert_allclose(raw["keypoints"][..., [1, 0]], truth["stored_keypoints"], atol=1e-6)


def test_masks_and_keypoints_follow_crop_resize_and_flip(tmp_path):
    records = [_stored_scene(o)[1] for o in (1, 6, 3, 8)]
    path = write_records(tmp_path / "m.tfrecord", records)
    seen = 0
    # three epochs: new crops and flips each
    ds = make_dataset(
        path,
        task="detection",
        masks=True,
        keypoints=True,
        image_size=40,
        crop="random",
        flip=True,
        seed=1,
        repeat=3,
    )
    for e in elements(ds):
        assert e["masks"].shape == (len(e["classes"]), 40, 40) and e["masks"].dtype == np.uint8
        for mask, label, box, points in zip(
            e["masks"], e["classes"], e["boxes"], e["keypoints"], strict=True
        ):
            coloured = np.all(e["image"] == COLOURS[label], axis=-1)
            # a nearest-neighbour mask of a bilinear image: every pixel of exactly the
            # colour is in the mask, and no mask pixel is pure background
            assert (mask[coloured] == 1).all()
            assert not np.all(e["image"][mask == 1] == 0, axis=-1).any()
            if mask.any():  # the clipped box holds the clipped mask (not tightly:
                ys, xs = np.nonzero(mask)  # a cut triangle may not fill its box)
                y0, x0, y1, x1 = box * 40
                assert y0 - 1 <= ys.min() and ys.max() + 1 <= y1 + 1
                assert x0 - 1 <= xs.min() and xs.max() + 1 <= x1 + 1
            for x, y, visible in points:  # a visible keypoint is on its object's mask
                if visible:
                    row, col = int(y * 40), int(x * 40)
                    assert mask[max(row - 1, 0) : row + 2, max(col - 1, 0) : col + 2].any()
                    seen += 1
    assert seen > 0


def test_segmentation_masks_equal_and_move_with_the_image(tmp_path):
    examples, truths = [], []
    for im in SCENES[:4]:
        pixels, masks = paint(im, triangles=True)
        ids = np.zeros(pixels.shape[:2], np.uint8)
        for (*_, label), m in zip(im["boxes"], masks, strict=True):
            ids[m == 1] = label
        truths.append((pixels, ids))
        extra = {det.SEGMENTATION: _bytes([png(ids)]), det.SEGMENTATION_FORMAT: _bytes([b"png"])}
        boxes, labels = expected(im)
        examples.append(
            api_example(im["name"], png(pixels), im["height"], im["width"], boxes, labels, **extra)
        )
    path = write_records(tmp_path / "seg.tfrecord", examples)
    got = elements(make_dataset(path, task="segmentation"))
    for (pixels, ids), e in zip(truths, got, strict=True):
        assert set(e) == {"image", "mask", "filename"}
        np.testing.assert_array_equal(e["image"], pixels)
        np.testing.assert_array_equal(e["mask"][..., 0], ids)
    # three epochs: new crops and flips each
    ds = make_dataset(
        path,
        task="segmentation",
        image_size=32,
        crop="random",
        flip=True,
        seed=1,
        batch_size=3,
        repeat=3,
    )
    for batch in elements(ds):
        assert batch["mask"].shape[1:] == (32, 32, 1) and batch["mask"].dtype == np.uint8
        for image, mask in zip(batch["image"], batch["mask"][..., 0], strict=True):
            for label, colour in COLOURS.items():
                assert (mask[np.all(image == colour, axis=-1)] == label).all()
            assert (mask[np.all(image == 0, axis=-1)] == 0).all()


def test_keep_aspect_pads_the_class_mask_with_0(tmp_path):
    (im,) = scenes(1, seed=4)
    pixels, masks = paint(im)
    ids = np.max(masks * np.array([b[4] for b in im["boxes"]])[:, None, None], axis=0)
    extra = {det.SEGMENTATION: _bytes([png(ids.astype(np.uint8))])}
    boxes, labels = expected(im)
    path = write_records(
        tmp_path / "k.tfrecord",
        [api_example("k.png", png(pixels), im["height"], im["width"], boxes, labels, **extra)],
    )
    ds = make_dataset(path, task="segmentation", image_size=(30, 120), keep_aspect=True)
    (e,) = elements(ds)
    cols = round(im["width"] * 30 / im["height"])
    assert cols < 120 and not e["mask"][:, cols:].any() and not e["image"][:, cols:].any()
    want = tf.image.resize(ids[..., None], (30, cols), method="nearest").numpy()
    np.testing.assert_array_equal(e["mask"][:, :cols], want)


# --------------------------------------------------------------------------- batches


def test_padded_and_ragged_batches_agree(coco):
    options = {"task": "detection", "image_size": 32, "batch_size": 3, "crop": "random"}
    padded = elements(make_dataset(coco, seed=2, **options))
    ragged = list(make_dataset(coco, seed=2, ragged=True, **options))
    assert len(padded) == len(ragged) == 3  # 8 images: 3 + 3 + 2
    for p, r in zip(padded, ragged, strict=True):
        assert "num_objects" not in r
        assert isinstance(r["boxes"], tf.RaggedTensor)
        np.testing.assert_array_equal(p["image"], r["image"].numpy())
        for i, n in enumerate(p["num_objects"]):
            for key in ("boxes", "classes", "is_crowd", "difficult", "area"):
                np.testing.assert_array_equal(p[key][i, :n], r[key][i].numpy())
            assert (p["classes"][i, n:] == -1).all() and not p["boxes"][i, n:].any()


def test_batches_without_image_size_need_one_size(api_records, tmp_path):
    ds = make_dataset(api_records, task="detection", batch_size=4)
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match=r"images of different sizes cannot be batched: s00\.png is \d+x\d+, s0\d\.png",
    ):
        elements(ds)
    (im,) = scenes(1, seed=2)
    same = write_records(tmp_path / "same.tfrecord", [scene_example(im)] * 3)
    (batch,) = elements(make_dataset(same, task="detection", batch_size=4))
    assert batch["image"].shape == (3, im["height"], im["width"], 3)
    assert batch["num_objects"].tolist() == [len(im["boxes"])] * 3


# --------------------------------------------------------------------------- errors


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("mnist-src")
    make_mnist(src, n_train=6, n_test=2)
    out = tmp_path_factory.mktemp("mnist")
    convert_mnist(src, out, quiet=True)
    return out


def test_records_of_another_task_are_refused(digits, api_records):
    """``dataset.check_task``, every reader's check, before anything is built: it names the
    dataset, what it holds, what is missing and which task to pass."""
    holds = r"holds classification records \(an image and its image/class/label\), not"
    with pytest.raises(
        TFRecordToolsError,
        match=rf"^{re.escape(str(digits))} {holds} detection records "
        r"\(no image/object/bbox/xmin, image/object/class/label\): read them with "
        r"task='classification'",
    ):
        make_dataset(digits, task="detection")
    shard = next(p for p in digits.glob("*train*") if p.suffix != ".idx")
    with pytest.raises(TFRecordToolsError, match=rf"^{re.escape(str(shard))} {holds} detection"):
        make_dataset(str(shard), task="detection")
    with pytest.raises(
        TFRecordToolsError,
        match=r"holds detection records \(boxes and classes\), not segmentation records "
        r"\(no image/segmentation/class/encoded\): pass task='detection'",
    ):
        make_dataset(api_records, task="segmentation")


def test_lists_of_the_wrong_type_name_the_file(tmp_path):
    path = write_records(
        tmp_path / "t.tfrecord", [scene_example(SCENES[0], **{det.AREA: _ints([5])})]
    )
    with pytest.raises(
        TFRecordToolsError,
        match=rf"^{re.escape(path)}: record 0: image/object/area holds int64, expected float$",
    ):
        make_dataset(path, task="detection")


THREE = next(im for im in SCENES if len(im["boxes"]) == 3)  # a scene of three objects


def _bad(name: str, **extra) -> bytes:
    pixels, _ = paint(THREE)
    boxes, labels = expected(THREE)
    return api_example(name, png(pixels), THREE["height"], THREE["width"], boxes, labels, **extra)


BAD_RECORDS = [
    # (the bad record's extra features, what the message says)
    pytest.param({det.YMIN: _floats([0.1])}, r"1 image/object/bbox/ymin", id="ymin"),
    pytest.param(
        {det.CLASS_LABEL: _ints([1, 2, 3, 1])}, r"4 image/object/class/label", id="labels"
    ),
    pytest.param({det.IS_CROWD: _ints([0])}, r"1 image/object/is_crowd", id="is-crowd"),
    pytest.param({det.AREA: _floats([1.0] * 7)}, r"7 image/object/area", id="area"),
]


@pytest.mark.parametrize(("extra", "said"), BAD_RECORDS)
def test_lists_of_different_lengths_name_the_file_and_record(tmp_path, extra, said):
    good = [scene_example(im) for im in SCENES[:2]]
    path = write_records(tmp_path / "bad.tfrecord", [*good, _bad("bad.png", **extra), *good])
    offset = sum(len(r) + 16 for r in good)
    ds = make_dataset(path, task="detection", batch_size=2, image_size=16)
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        elements(ds)
    message = info.value.message
    assert (
        f"{path}: record 2 at byte {offset} (image/filename bad.png): per-object lists disagree"
        in message
    )
    assert re.search(said, message), message


def test_keypoints_not_whole_per_object_name_the_record(tmp_path):
    odd = _floats([0.5] * 7)  # not a whole number for 3 objects
    bad = scene_example(THREE, **{det.KEYPOINT_X: odd, det.KEYPOINT_Y: odd})
    path = write_records(tmp_path / "k.tfrecord", [bad])
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match=r"record 0 at byte 0 .*: 3 image/object/bbox/ymin, .*7 image/object/keypoint/x",
    ):
        elements(make_dataset(path, task="detection", keypoints=True))
    (e,) = elements(make_dataset(path, task="detection"))  # not asked for: not read
    assert "keypoints" not in e


def test_masks_missing_or_of_another_size(tmp_path):
    path = write_records(tmp_path / "none.tfrecord", [scene_example(SCENES[0])])
    with pytest.raises(
        TFRecordToolsError,
        match=r"record 0: masks=True, but the record has \d objects and no image/object/mask",
    ):
        make_dataset(path, task="detection", masks=True)
    im = SCENES[0]
    small = [png(np.zeros((5, 5), np.uint8))] * len(im["boxes"])
    path = write_records(
        tmp_path / "small.tfrecord", [scene_example(im, **{det.MASK: _bytes(small)})]
    )
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match=rf"record 0 at byte 0 \(image/filename s00.png\): a mask is 5x5, the image is "
        rf"{im['height']}x{im['width']}",
    ):
        elements(make_dataset(path, task="detection", masks=True))


def test_a_record_without_its_class_mask_is_named(tmp_path):
    (im,) = scenes(1, seed=3)
    with_mask = scene_example(
        im, **{det.SEGMENTATION: _bytes([png(np.zeros((im["height"], im["width"]), np.uint8))])}
    )
    path = write_records(tmp_path / "s.tfrecord", [with_mask, scene_example(im)])
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match=rf"record 1 at byte {len(with_mask) + 16} .*no image/segmentation/class/encoded",
    ):
        elements(make_dataset(path, task="segmentation"))


BAD_OPTIONS = [
    pytest.param(
        {"masks": True},
        "task='classification' does not take masks=True ('detection' only)",
        id="masks",
    ),
    pytest.param(
        {"ragged": True, "keep_aspect": True, "image_size": 8, "batch_size": 2},
        "task='classification' does not take ragged=True ('detection' only), "
        "keep_aspect=True ('detection' or 'segmentation' only)",
        id="two",
    ),
    pytest.param(
        {"task": "detection", "label_key": "x"},
        "task='detection' does not take label_key='x'",
        id="label-key",
    ),
    pytest.param(
        {"task": "segmentation", "keypoints": True},
        "task='segmentation' does not take keypoints=True",
        id="seg-keypoints",
    ),
    pytest.param(
        {"task": "detection", "ragged": True},
        "ragged=True shapes batches: pass batch_size",
        id="ragged",
    ),
    pytest.param(
        {"task": "detection", "keep_aspect": True},
        "keep_aspect=True fits each image into image_size: pass image_size",
        id="keep-aspect",
    ),
    pytest.param(
        {"task": "detection", "masks": "yes"},
        "masks must be True or False, got 'yes'",
        id="not-bool",
    ),
]


@pytest.mark.parametrize(("options", "said"), BAD_OPTIONS)
def test_options_of_another_task_are_refused(api_records, options, said):
    with pytest.raises(TFRecordToolsError, match=re.escape(said)):
        make_dataset(api_records, **options)
