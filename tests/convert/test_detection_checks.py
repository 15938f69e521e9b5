"""Where a detection conversion checks its images: sizes from one listing and boxes
normalised to the annotated size before the plan, each image read and probed once, by its
shard (unreadable or resized images skipped there and left out of the manifest's figures,
a resumed conversion's finished shards included); ``--strict`` still refuses before
writing. Resume compares the annotation files' bytes; forked workers inherit the checked
images; bad JSON values in a COCO file are named, never a crash."""

from __future__ import annotations

import json
import pickle
from array import array
from pathlib import Path

import pytest

from tests.convert.test_detection_convert import (
    CLASSES,
    draw,
    truth,
    write_coco,
    write_csv,
    write_voc,
    write_yolo,
)
from tfrecord_tools.access.source import TFRecordDataSource
from tfrecord_tools.convert import inherit, local, plan
from tfrecord_tools.convert.sources import annotated, detection
from tfrecord_tools.convert.sources.annotated import (
    convert_coco,
    convert_csv,
    convert_voc,
    convert_yolo,
)
from tfrecord_tools.convert.sources.coco import read_coco
from tfrecord_tools.convert.sources.transcode import KEEP
from tfrecord_tools.errors import ConversionError
from tfrecord_tools.format.naming import WORK_DIR

TRUTH = truth(6, seed=4)  # boxes in whole pixels inside their image; the last one has none


def _manifest(out: Path) -> dict:
    return json.loads((out / "dataset.json").read_text())


def _names(out: Path) -> list[str]:
    source = TFRecordDataSource(out, task="detection")
    return sorted(source[i]["filename"] for i in range(len(source)))


def _coco(tmp_path: Path, change=None) -> tuple[Path, Path]:
    src = tmp_path / "src"
    ann = write_coco(src, TRUTH)
    if change is not None:
        data = json.loads(ann.read_text())
        change(data, src)
        ann.write_text(json.dumps(data))
    return src, ann


def _counting_reads(monkeypatch) -> list[str]:
    reads: list[str] = []
    real = detection.read_listed

    def counted(location: str) -> bytes:
        reads.append(location)
        return real(location)

    monkeypatch.setattr(detection, "read_listed", counted)
    return reads


@pytest.mark.parametrize(("strict", "per_image"), [(False, 1), (True, 2)])
def test_each_image_is_read_once_but_strict_checks_first(tmp_path, monkeypatch, strict, per_image):
    src, ann = _coco(tmp_path)
    reads = _counting_reads(monkeypatch)
    convert_coco(src, tmp_path / "out", annotations=ann, workers=1, strict=strict, quiet=True)
    assert len(reads) == per_image * len(TRUTH)
    assert _names(tmp_path / "out") == sorted(im["name"] for im in TRUTH)


def _spoil(data: dict, src: Path) -> None:
    """Image 100 annotated 1 pixel wider than it is, with one box outside and one partly
    outside; image 101 unreadable; image 102's path a folder; image 103 gets a box partly
    outside (clipped) and one wholly outside (dropped)."""
    data["images"][0]["width"] += 1
    (src / TRUTH[1]["name"]).write_bytes(b"not an image")
    (src / "folder.png").mkdir()
    data["images"][2]["file_name"] = "folder.png"
    extra = [(100, [500, 500, 4, 4]), (100, [-3, 1, 6, 6]), (103, [-4, 2, 10, 5])]
    extra.append((103, [900, 900, 5, 5]))
    for image_id, bbox in extra:
        data["annotations"].append(
            {"id": 900 + len(data["annotations"]), "image_id": image_id, "category_id": 3,
             "bbox": bbox, "iscrowd": 0}
        )  # fmt: skip


def test_images_the_shards_skip_are_left_out_of_the_figures(tmp_path):
    src, ann = _coco(tmp_path, _spoil)
    convert_coco(src, tmp_path / "out", annotations=ann, shards=2, quiet=True)
    m = _manifest(tmp_path / "out")
    skipped = {s["path"]: s["reason"] for s in m["source"]["skipped"]}
    assert skipped == {
        f"{ann}: image 100": "image size differs from the annotation's",
        f"{ann}: image 101": "unreadable image",
        f"{ann}: image 102": "unreadable image",
    }
    kept = TRUTH[3:]
    assert _names(tmp_path / "out") == sorted(im["name"] for im in kept)
    labels = [b[4] for im in kept for b in im["boxes"]] + [1]  # image 103's clipped box
    assert m["objects"] == {
        "total": len(labels),
        "per_class": {c: labels.count(k + 1) for k, c in enumerate(CLASSES)},
        "images_without_objects": 1,
        "clipped": 1,  # image 100's clipped box is not counted: the image is left out
        "dropped": 1,
    }
    dropped = m["source"]["dropped_objects"]
    assert [(d["reason"], d["detail"]) for d in dropped] == [
        ("box outside the image", f"box (900, 900, 905, 905), image {TRUTH[3]['width']}x"
         f"{TRUTH[3]['height']}")
    ]  # fmt: skip


def test_a_resumed_conversion_counts_the_skips_of_its_finished_shards(tmp_path, monkeypatch):
    src, ann = _coco(tmp_path, _spoil)
    options = {"annotations": ann, "shards": 2, "workers": 1, "seed": 1, "quiet": True}
    convert_coco(src, tmp_path / "whole", **options)
    real_run_job = local.run_job
    calls = []

    def dies_on_second_shard(job, report=None):
        calls.append(job.filename)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_run_job(job, report)

    monkeypatch.setattr(local, "run_job", dies_on_second_shard)
    with pytest.raises(KeyboardInterrupt):
        convert_coco(src, tmp_path / "out", **options)
    finished = tmp_path / "out" / WORK_DIR / f"{calls[0]}.json"
    assert json.loads(finished.read_text())["skipped"]  # the finished shard skipped images
    monkeypatch.setattr(local, "run_job", real_run_job)
    summary = convert_coco(src, tmp_path / "out", **options)
    assert summary.resumed_shards == 1
    whole, resumed = _manifest(tmp_path / "whole"), _manifest(tmp_path / "out")
    assert resumed["objects"] == whole["objects"]
    assert resumed["source"]["dropped_objects"] == whole["source"]["dropped_objects"]
    assert sorted(map(str, resumed["source"]["skipped"])) == sorted(
        map(str, whole["source"]["skipped"])
    )


def test_strict_names_every_image_problem_before_writing(tmp_path):
    src, ann = _coco(tmp_path, _spoil)
    with pytest.raises(ConversionError, match="--strict: 4 bad annotations") as refused:
        convert_coco(src, tmp_path / "out", annotations=ann, strict=True, quiet=True)
    message = str(refused.value)
    for image_id in (100, 101, 102):
        assert f"{ann}: image {image_id}: " in message
    assert "box outside the image" in message
    assert not (tmp_path / "out").exists()


def test_an_image_resized_after_the_plan_is_skipped_by_its_shard(tmp_path, monkeypatch):
    """The shard compares the image with the size its boxes were normalised for (here: it
    changes between the check and the shard's read); ``strict`` then ends the job."""
    src, ann = _coco(tmp_path)
    real = annotated.steps.run

    def resize_first_image(**kwargs):
        draw(src, [{**TRUTH[0], "width": TRUTH[0]["width"] + 2}])
        return real(**kwargs)

    monkeypatch.setattr(annotated.steps, "run", resize_first_image)
    convert_coco(src, tmp_path / "out", annotations=ann, quiet=True)
    skipped = _manifest(tmp_path / "out")["source"]["skipped"]
    assert skipped == [
        {"path": f"{ann}: image 100", "reason": "image size differs from the annotation's"}
    ]
    draw(src, TRUTH[:1])
    with pytest.raises(ConversionError, match=r"image 100: image size differs .* \(--strict\)"):
        convert_coco(src, tmp_path / "strict", annotations=ann, strict=True, quiet=True)


def test_another_annotation_file_is_another_conversion(tmp_path):
    """Category ids renumbered in order: the same objects, but another file (and another
    ``category_ids`` in the manifest)."""
    src, ann = _coco(tmp_path)
    convert_coco(src, tmp_path / "out", annotations=ann, quiet=True)
    assert convert_coco(src, tmp_path / "out", annotations=ann, quiet=True).already_complete
    ann.write_text(ann.read_text().replace('"category_id": 3', '"category_id": 4'))
    ann.write_text(ann.read_text().replace('{"id": 3, "name"', '{"id": 4, "name"'))
    with pytest.raises(ConversionError, match="already holds a finished conversion"):
        convert_coco(src, tmp_path / "out", annotations=ann, quiet=True)
    convert_coco(src, tmp_path / "out", annotations=ann, quiet=True, overwrite=True)
    assert _manifest(tmp_path / "out")["source"]["category_ids"] == {"4": 1, "7": 2, "42": 3}


def _layout(kind: str, tmp_path: Path):
    """(convert(out, **options), the annotation file of TRUTH[0]'s first box)."""
    src = tmp_path / "src"
    if kind == "voc":
        write_voc(src, TRUTH)
        return (lambda out, **o: convert_voc(src, out, **o)), src / "Annotations" / "img00.xml"
    if kind == "yolo":
        write_yolo(src, TRUTH)
        return (lambda out, **o: convert_yolo(src, out, **o)), src / "labels" / "img00.txt"
    table = write_csv(src, TRUTH)
    return (lambda out, **o: convert_csv(src, out, annotations=table, **o)), table


@pytest.mark.parametrize("kind", ["voc", "yolo", "csv"])
def test_every_layout_s_annotation_files_identify_the_conversion(tmp_path, kind):
    convert, annotation = _layout(kind, tmp_path)
    convert(tmp_path / "out", quiet=True)
    assert convert(tmp_path / "out", quiet=True).already_complete
    text = annotation.read_text()
    x0 = TRUTH[0]["boxes"][0][0]
    changed = {  # the first box moved one pixel (YOLO: its class changed)
        "voc": text.replace(f"<xmin>{x0}</xmin>", f"<xmin>{x0 + 1}</xmin>", 1),
        "yolo": "0 " + text.split(" ", 1)[1] if text.startswith("1 ") else "1 " + text[2:],
        "csv": text.replace(f"img00.png,{x0},", f"img00.png,{x0 + 1},", 1),
    }[kind]
    assert changed != text
    annotation.write_text(changed)
    with pytest.raises(ConversionError, match="already holds a finished conversion"):
        convert(tmp_path / "out", quiet=True)


def test_a_renamed_voc_file_is_another_conversion(tmp_path):
    """The same objects, but the record's source_id is the XML file's name."""
    convert, annotation = _layout("voc", tmp_path)
    convert(tmp_path / "out", quiet=True)
    annotation.rename(annotation.with_name("img00b.xml"))  # in the same place in order
    with pytest.raises(ConversionError, match="already holds a finished conversion"):
        convert(tmp_path / "out", quiet=True)


def test_annotation_files_that_are_not_utf8_are_named(tmp_path):
    src = tmp_path / "yolo"
    write_yolo(src, TRUTH)
    (src / "labels" / "img00.txt").write_bytes(b"0 0.5 0.5 0.1 0.1\xff\n")
    convert_yolo(src, tmp_path / "out", quiet=True)
    skipped = _manifest(tmp_path / "out")["source"]["skipped"]
    assert skipped == [
        {"path": str(src / "labels" / "img00.txt"), "reason": "malformed annotation"}
    ]
    assert _names(tmp_path / "out") == sorted(f"images/{im['name']}" for im in TRUTH[1:])
    (src / "data.yaml").unlink()
    (src / "classes.txt").write_bytes(b"circle\xff\n")
    with pytest.raises(ConversionError, match=r"classes\.txt: not UTF-8 text"):
        convert_yolo(src, tmp_path / "out2", quiet=True)
    voc = tmp_path / "voc"
    write_voc(voc, TRUTH, {"train": [0, 1, 2], "val": [3, 4, 5]})
    (voc / "ImageSets" / "Main" / "val.txt").write_bytes(b"img03\xff\n")
    with pytest.raises(ConversionError, match=r"val\.txt: not UTF-8 text"):
        convert_voc(voc, tmp_path / "out3", quiet=True)


def test_forked_workers_get_indices_into_the_checked_images(tmp_path, monkeypatch):
    monkeypatch.setattr(inherit, "forks", lambda: True)  # as without TensorFlow imported
    src, ann = _coco(tmp_path)
    settings = annotated._Settings(str(src), "fast", False, KEEP, 2, inherit.share)
    prepared = annotated._detection(lambda: read_coco(ann))(settings)
    try:
        assert prepared.shared  # the images stay in the parent
        samples = array("q", range(len(TRUTH)))
        p = plan.ShardPlan("train", 0, 1, "x", memoryview(samples))
        shared = pickle.loads(pickle.dumps(prepared.make_source(p)))
        assert shared.images == () and list(shared.samples) == list(samples)
        carried = annotated._detection(lambda: read_coco(ann))(
            annotated._Settings(str(src), "fast", False, KEEP, 2)
        ).make_source(p)
        assert len(carried.images) == len(shared) == len(TRUTH)
        assert len(pickle.dumps(shared)) < len(pickle.dumps(carried)) / 3
        assert [i.example for i in shared.items()] == [i.example for i in carried.items()]
    finally:
        for key in prepared.shared:
            inherit.unshare(key)


def _coco_json(tmp_path: Path, **fields) -> Path:
    data = {
        "images": [{"id": 1, "file_name": "a.png", "width": 4, "height": 4}],
        "categories": [{"id": 1, "name": "a"}],
        "annotations": [],
        **fields,
    }
    path = tmp_path / "x.json"
    path.write_text(json.dumps(data).replace('"HUGE"', "1" + "0" * 400))
    return path


def _ann(**fields) -> list[dict]:
    return [{"image_id": 1, "bbox": [1, 1, 2, 2], "category_id": 1, **fields}]


BAD_VALUES = {
    "an image id that is a list": (
        {"images": [{"id": [1], "file_name": "a.png"}]},
        "images[0]: malformed annotation (id [1] is not a number or a string)",
    ),
    "a category id that is a list": (
        {"annotations": _ann(category_id=[1])},
        "annotations[0]: unknown category (category_id [1])",
    ),
    "an image_id that is an object": (
        {"annotations": _ann(image_id={"a": 1})},
        "annotations[0]: annotation for a missing image (image_id {'a': 1} is not in images)",
    ),
    "a bbox number too large for a float": (
        {"annotations": _ann(bbox=["HUGE", 1, 2, 2])},
        "annotations[0]: malformed annotation (bbox [1000000",
    ),
    "a keypoint too large for a float": (
        {"annotations": _ann(keypoints=[1, 2, "HUGE"])},
        "annotations[0]: malformed annotation (keypoints [1, 2, 1000000",
    ),
    "an area too large for a float": ({"annotations": _ann(area="HUGE")}, None),
    "no categories": (
        {"categories": [], "annotations": _ann()},
        "annotations[0]: unknown category (category_id 1)",
    ),
}


@pytest.mark.parametrize("case", list(BAD_VALUES))
def test_bad_json_values_are_named(tmp_path, case):
    fields, problem = BAD_VALUES[case]
    found = read_coco(_coco_json(tmp_path, **fields))
    listed = [str(p) for p in found.problems]
    if problem is None:  # not a problem: the box's own area is used
        assert listed == [] and found.images[0].objects[0].area is None
    else:
        assert len(listed) == 1 and listed[0].startswith(f"{tmp_path / 'x.json'}: {problem}")


def test_annotations_that_are_not_a_list_are_refused(tmp_path):
    with pytest.raises(ConversionError, match='"annotations" is not a list'):
        read_coco(_coco_json(tmp_path, annotations={"0": _ann()[0]}))
