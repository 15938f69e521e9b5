"""Bad annotations are found, not trained on: each kind is listed with its file (and
line) in the manifest, and ``strict`` refuses the conversion naming it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.convert.test_detection_convert import (
    CLASSES,
    truth,
    write_coco,
    write_csv,
    write_voc,
    write_yolo,
)
from tfrecord_tools.access.source import TFRecordDataSource
from tfrecord_tools.convert.sources.annotated import (
    convert_coco,
    convert_csv,
    convert_voc,
    convert_yolo,
)
from tfrecord_tools.errors import ConversionError

TRUTH = truth(4, seed=3)


def _manifest(out: Path) -> dict:
    return json.loads((out / "dataset.json").read_text())


def _coco_with(tmp_path, change) -> tuple[Path, Path]:
    src = tmp_path / "src"
    ann = write_coco(src, TRUTH)
    data = json.loads(ann.read_text())
    change(data)
    ann.write_text(json.dumps(data))
    return src, ann


def _add(data, **fields):
    data["annotations"].append(
        {"id": 999, "image_id": 100, "category_id": 3, "iscrowd": 0, **fields}
    )


COCO_CASES = {
    "box outside the image": (lambda d: _add(d, bbox=[500, 500, 10, 10]), "annotations["),
    "negative width or height": (lambda d: _add(d, bbox=[5, 5, -3, 4]), "annotations["),
    "unknown category": (lambda d: _add(d, bbox=[1, 1, 2, 2], category_id=5), "annotations["),
    "annotation for a missing image": (
        lambda d: _add(d, bbox=[1, 1, 2, 2], image_id=7),
        "image_id 7",
    ),
    "image size differs from the annotation's": (
        lambda d: d["images"][0].update(width=d["images"][0]["width"] + 1),
        "image 100",
    ),
}


@pytest.mark.parametrize("reason", list(COCO_CASES))
def test_coco_problems_are_listed_and_strict_refuses(tmp_path, reason):
    change, where = COCO_CASES[reason]
    src, ann = _coco_with(tmp_path, change)
    with pytest.raises(ConversionError, match="--strict") as refused:
        convert_coco(src, tmp_path / "strict", annotations=ann, strict=True, quiet=True)
    assert reason in str(refused.value) and str(ann) in str(refused.value)
    assert not (tmp_path / "strict").exists() or not any((tmp_path / "strict").iterdir())
    convert_coco(src, tmp_path / "out", annotations=ann, quiet=True)
    m = _manifest(tmp_path / "out")
    listed = m["source"]["skipped"] + m["source"]["dropped_objects"]
    hits = [e for e in listed if e["reason"] == reason]
    assert len(hits) == 1 and where in hits[0]["path"] + hits[0].get("detail", "")
    boxes = sum(
        len(s["boxes"])
        for s in map(_src(tmp_path / "out").__getitem__, range(len(_src(tmp_path / "out"))))
    )
    dropped_image = reason == "image size differs from the annotation's"
    expected = sum(len(im["boxes"]) for im in (TRUTH[1:] if dropped_image else TRUTH))
    assert boxes == expected  # the bad box (or image) is not in the records


def _src(out: Path) -> TFRecordDataSource:
    return TFRecordDataSource(out, task="detection")


def test_a_box_partly_outside_is_clipped(tmp_path):
    src, ann = _coco_with(tmp_path, lambda d: _add(d, bbox=[-4, 2, 10, 5]))
    convert_coco(src, tmp_path / "out", annotations=ann, quiet=True)
    m = _manifest(tmp_path / "out")
    assert m["objects"]["clipped"] == 1 and m["source"]["dropped_objects"] == []
    source = _src(tmp_path / "out")
    first = next(
        s for s in map(source.__getitem__, range(len(source))) if s["filename"] == TRUTH[0]["name"]
    )
    w, h = TRUTH[0]["width"], TRUTH[0]["height"]
    assert first["boxes"][-1].tolist() == pytest.approx([2 / h, 0.0, 7 / h, 6 / w], abs=1e-6)


def test_malformed_voc_xml_names_file_and_line(tmp_path):
    src = tmp_path / "src"
    write_voc(src, TRUTH)
    bad = src / "Annotations" / "img01.xml"
    bad.write_text("<annotation>\n<filename>img01.png</filename>\n<object>\n</annotation>\n")
    with pytest.raises(ConversionError, match=r"img01\.xml:4: malformed annotation"):
        convert_voc(src, tmp_path / "strict", strict=True, quiet=True)
    convert_voc(src, tmp_path / "out", quiet=True)
    skipped = _manifest(tmp_path / "out")["source"]["skipped"]
    assert [s["reason"] for s in skipped] == ["malformed annotation"]
    assert len(_src(tmp_path / "out")) == len(TRUTH) - 1


def test_bad_yolo_lines_and_orphan_labels(tmp_path):
    src = tmp_path / "src"
    write_yolo(src, TRUTH)
    (src / "labels" / "img00.txt").write_text("0 0.5 0.5 0.2\n7 0.5 0.5 0.2 0.2\n")
    (src / "labels" / "ghost.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    with pytest.raises(ConversionError) as refused:
        convert_yolo(src, tmp_path / "strict", strict=True, quiet=True)
    text = str(refused.value)
    assert "img00.txt:1: malformed annotation" in text
    assert "img00.txt:2: unknown category" in text
    assert "ghost.txt: annotation for a missing image" in text
    convert_yolo(src, tmp_path / "out", quiet=True)
    m = _manifest(tmp_path / "out")
    assert sorted(d["reason"] for d in m["source"]["dropped_objects"]) == [
        "malformed annotation",
        "unknown category",
    ]
    assert [s["reason"] for s in m["source"]["skipped"]] == ["annotation for a missing image"]


def test_bad_csv_and_json_lines_name_their_line(tmp_path):
    src = tmp_path / "src"
    table = write_csv(src, TRUTH)
    lines = table.read_text().splitlines()
    lines.insert(2, "img00.png,1,2,x,4,circle")
    lines.append("nothere.png,1,1,3,3,circle")
    table.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConversionError) as refused:
        convert_csv(src, tmp_path / "strict", annotations=table, strict=True, quiet=True)
    assert f"{table}:3: malformed annotation" in str(refused.value)
    assert "annotation for a missing image" in str(refused.value)
    jsonl = tmp_path / "boxes.jsonl"
    rows = [
        {
            "filename": im["name"],
            "xmin": b[0],
            "ymin": b[1],
            "xmax": b[2],
            "ymax": b[3],
            "label": CLASSES[b[4] - 1],
        }
        for im in TRUTH
        for b in im["boxes"]
    ]
    jsonl.write_text("\n".join(json.dumps(r) for r in rows) + "\n{not json\n")
    with pytest.raises(
        ConversionError, match=rf"boxes\.jsonl:{len(rows) + 1}: malformed annotation"
    ):
        convert_csv(src, tmp_path / "strict2", annotations=jsonl, strict=True, quiet=True)


def test_missing_image_in_a_folder(tmp_path):
    src = tmp_path / "src"
    table = write_csv(src, TRUTH)
    (src / TRUTH[0]["name"]).unlink()
    convert_csv(src, tmp_path / "out", annotations=table, quiet=True)
    skipped = _manifest(tmp_path / "out")["source"]["skipped"]
    assert [s["reason"] for s in skipped] == ["annotation for a missing image"]
    assert len(_src(tmp_path / "out")) == len(TRUTH) - 1
