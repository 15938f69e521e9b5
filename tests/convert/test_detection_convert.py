"""Test data for the detection tests: images with filled rectangles of known colours at
known boxes, and the same truth written as COCO, VOC, YOLO and CSV annotations."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = ["circle", "square", "triangle"]  # names only: every shape is a filled box
COLOURS = {1: (255, 0, 0), 2: (0, 255, 0), 3: (0, 0, 255)}


def truth(count: int = 6, seed: int = 0) -> list[dict]:
    """Per image: name, width, height, boxes [(xmin, ymin, xmax, ymax, label)] in whole
    pixels, not overlapping (each in its own column band); the last image has none."""
    rng = np.random.default_rng(seed)
    images = []
    for i in range(count):
        width, height = int(rng.integers(40, 90)), int(rng.integers(30, 70))
        boxes = []
        n = 0 if i == count - 1 else int(rng.integers(1, 4))
        band = width // 3
        for k in range(n):
            x0 = k * band + int(rng.integers(0, band // 3))
            x1 = x0 + int(rng.integers(4, band - band // 3))
            y0 = int(rng.integers(0, height // 2))
            y1 = y0 + int(rng.integers(4, height // 2))
            boxes.append((x0, y0, x1, y1, int(rng.integers(1, 4))))
        images.append({"name": f"img{i:02d}.png", "width": width, "height": height, "boxes": boxes})
    return images


def draw(folder: Path, images: list[dict]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for im in images:
        pixels = np.zeros((im["height"], im["width"], 3), np.uint8)
        for x0, y0, x1, y1, label in im["boxes"]:
            pixels[y0:y1, x0:x1] = COLOURS[label]
        Image.fromarray(pixels).save(folder / im["name"])


def write_coco(src: Path, images: list[dict], *, category_ids=(3, 7, 42)) -> Path:
    """Category ids not contiguous: label l is category_ids[l - 1]."""
    draw(src, images)
    anns = []
    for i, im in enumerate(images):
        for x0, y0, x1, y1, label in im["boxes"]:
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": 100 + i,
                    "category_id": category_ids[label - 1],
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "area": (x1 - x0) * (y1 - y0),
                    "iscrowd": 0,
                }
            )
    data = {
        "images": [
            {"id": 100 + i, "file_name": im["name"], "width": im["width"], "height": im["height"]}
            for i, im in enumerate(images)
        ],
        "annotations": anns,
        "categories": [{"id": c, "name": CLASSES[k]} for k, c in enumerate(category_ids)],
    }
    path = src.parent / "instances.json"
    path.write_text(json.dumps(data))
    return path


def write_voc(src: Path, images: list[dict], splits: dict[str, list[int]] | None = None) -> None:
    draw(src / "JPEGImages", images)
    (src / "Annotations").mkdir(parents=True, exist_ok=True)
    for im in images:
        objects = "".join(
            f"<object><name>{CLASSES[label - 1]}</name><pose>Left</pose><truncated>1"
            f"</truncated><difficult>0</difficult><bndbox><xmin>{x0}</xmin><ymin>{y0}"
            f"</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>"
            for x0, y0, x1, y1, label in im["boxes"]
        )
        xml = (
            f"<annotation><filename>{im['name']}</filename><size><width>{im['width']}</width>"
            f"<height>{im['height']}</height><depth>3</depth></size>{objects}</annotation>"
        )
        (src / "Annotations" / f"{Path(im['name']).stem}.xml").write_text(xml)
    if splits:
        main = src / "ImageSets" / "Main"
        main.mkdir(parents=True)
        for split, members in splits.items():
            ids = "".join(f"{Path(images[i]['name']).stem}\n" for i in members)
            (main / f"{split}.txt").write_text(ids)


def write_yolo(src: Path, images: list[dict]) -> None:
    draw(src / "images", images)
    (src / "labels").mkdir(parents=True, exist_ok=True)
    (src / "data.yaml").write_text("names:\n" + "".join(f"  - {c}\n" for c in CLASSES))
    for im in images:
        w, h = im["width"], im["height"]
        lines = "".join(
            f"{label - 1} {(x0 + x1) / 2 / w!r} {(y0 + y1) / 2 / h!r} {(x1 - x0) / w!r} "
            f"{(y1 - y0) / h!r}\n"
            for x0, y0, x1, y1, label in im["boxes"]
        )
        if im["boxes"]:
            (src / "labels" / f"{Path(im['name']).stem}.txt").write_text(lines)


def write_csv(src: Path, images: list[dict]) -> Path:
    draw(src, images)
    rows = ["filename,xmin,ymin,xmax,ymax,label"]
    for im in images:
        rows += [
            f"{im['name']},{x0},{y0},{x1},{y1},{CLASSES[lab - 1]}"
            for x0, y0, x1, y1, lab in im["boxes"]
        ]
        if not im["boxes"]:
            rows.append(f"{im['name']},,,,,")
    path = src.parent / "boxes.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def expected(im: dict) -> tuple[np.ndarray, list[int]]:
    """Normalised (ymin, xmin, ymax, xmax) float32 boxes and 1-based labels of ``im``."""
    w, h = im["width"], im["height"]
    boxes = np.array(
        [(y0 / h, x0 / w, y1 / h, x1 / w) for x0, y0, x1, y1, _ in im["boxes"]], np.float32
    ).reshape(-1, 4)
    return boxes, [b[4] for b in im["boxes"]]


# -- the tests ------------------------------------------------------------------------------

import pytest  # noqa: E402

from tfrecord_tools.access.source import TFRecordDataSource  # noqa: E402
from tfrecord_tools.convert.sources.annotated import (  # noqa: E402
    convert_coco,
    convert_csv,
    convert_voc,
    convert_yolo,
)

TRUTH = truth()


def _convert(kind: str, tmp_path: Path, **options):
    src = tmp_path / "src"
    if kind == "coco":
        return convert_coco(src, tmp_path / "out", annotations=write_coco(src, TRUTH), **options)
    if kind == "voc":
        write_voc(src, TRUTH)
        return convert_voc(src, tmp_path / "out", **options)
    if kind == "yolo":
        write_yolo(src, TRUTH)
        return convert_yolo(src, tmp_path / "out", **options)
    return convert_csv(src, tmp_path / "out", annotations=write_csv(src, TRUTH), **options)


def _read_all(out: Path, split: str = "train", **options) -> dict[str, dict]:
    src = TFRecordDataSource(out, split=split, task="detection", **options)
    return {Path(s["filename"]).name: s for s in (src[i] for i in range(len(src)))}


@pytest.mark.parametrize("kind", ["coco", "voc", "yolo", "csv"])
def test_every_layout_reads_back_the_truth(tmp_path, kind):
    summary = _convert(kind, tmp_path, workers=2, quiet=True)
    assert summary.classes == CLASSES
    samples = _read_all(tmp_path / "out")
    assert sorted(samples) == sorted(im["name"] for im in TRUTH)
    for im in TRUTH:
        s = samples[im["name"]]
        boxes, labels = expected(im)
        np.testing.assert_allclose(s["boxes"], boxes, rtol=0, atol=1e-6)
        assert s["classes"].tolist() == labels
        assert s["texts"] == [CLASSES[label - 1] for label in labels]
        for (y0, x0, y1, x1), label in zip(s["boxes"], labels, strict=True):
            h, w = s["image"].shape[:2]
            region = s["image"][round(y0 * h) : round(y1 * h), round(x0 * w) : round(x1 * w)]
            assert (region == COLOURS[label]).all()
    manifest = json.loads((tmp_path / "out" / "dataset.json").read_text())
    assert manifest["task"] == "detection"
    objects = manifest["objects"]
    assert objects["total"] == sum(len(im["boxes"]) for im in TRUTH)
    assert objects["images_without_objects"] == 1
    assert objects["per_class"] == {
        c: sum(1 for im in TRUTH for b in im["boxes"] if b[4] == k + 1)
        for k, c in enumerate(CLASSES)
    }
    label_map = (tmp_path / "out" / "label_map.pbtxt").read_text()
    assert "id: 1\n  name: 'circle'" in label_map and "id: 3\n  name: 'triangle'" in label_map
    # TFDS metadata describing the objects (format/tfds.py; loaded by TFDS in its venv)
    assert (tmp_path / "out" / "features.json").exists()
    assert (tmp_path / "out" / "image-object-class-label.labels.txt").exists()


def test_coco_keeps_its_category_mapping(tmp_path):
    _convert("coco", tmp_path, quiet=True)
    manifest = json.loads((tmp_path / "out" / "dataset.json").read_text())
    assert manifest["source"]["category_ids"] == {"3": 1, "7": 2, "42": 3}


def test_voc_splits_and_attributes(tmp_path):
    src = tmp_path / "src"
    write_voc(src, TRUTH, splits={"train": [0, 1, 2, 3], "val": [4, 5]})
    convert_voc(src, tmp_path / "out", quiet=True)
    train, val = _read_all(tmp_path / "out"), _read_all(tmp_path / "out", "val")
    assert sorted(train) == [im["name"] for im in TRUTH[:4]]
    assert sorted(val) == [im["name"] for im in TRUTH[4:]]
    from tfrecord_tools.format.detection import parse_detection

    raw = TFRecordDataSource(tmp_path / "out", task="detection")
    fields = parse_detection(raw.read_record(0)[0])
    assert fields.truncated == [1] * len(fields.labels) and fields.difficult == [0] * len(
        fields.labels
    )


def test_resize_keeps_normalised_boxes_on_their_colour(tmp_path):
    _convert("coco", tmp_path, quiet=True)
    samples = _read_all(tmp_path / "out", image_size=(64, 64))
    for im in TRUTH:
        s = samples[im["name"]]
        assert s["image"].shape == (64, 64, 3)
        for (y0, x0, y1, x1), label in zip(s["boxes"], s["classes"], strict=True):
            centre = s["image"][int((y0 + y1) * 32), int((x0 + x1) * 32)]
            assert tuple(centre) == COLOURS[label]


def test_collate_gives_absolute_xyxy_boxes(tmp_path):
    from tfrecord_tools.access.detection import collate_detection

    _convert("yolo", tmp_path, quiet=True)
    samples = _read_all(tmp_path / "out")
    batch = [samples[im["name"]] for im in TRUTH]
    images, targets = collate_detection(batch, as_tensor=np.asarray)
    for im, image, target in zip(TRUTH, images, targets, strict=True):
        assert image.shape == (3, im["height"], im["width"]) and image.dtype == np.float32
        want = np.array([b[:4] for b in im["boxes"]], np.float32).reshape(-1, 4)
        np.testing.assert_allclose(target["boxes"], want, atol=1e-4)
        assert target["labels"].tolist() == [b[4] for b in im["boxes"]]


def test_cli_converts_a_coco_file(tmp_path):
    from tfrecord_tools.cli import main

    src = tmp_path / "src"
    ann = write_coco(src, TRUTH)
    assert (
        main(["convert", "coco", str(src), str(tmp_path / "out"), "--annotations", str(ann), "-q"])
        == 0
    )
    assert len(_read_all(tmp_path / "out")) == len(TRUTH)
