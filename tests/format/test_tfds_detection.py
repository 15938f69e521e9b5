"""Against the real TensorFlow Datasets (skipped without it; scripts/test-tfds.sh runs it in
.venv-tfds): ``tfds.builder_from_directory`` loads a converted detection dataset from the
TFDS metadata ``format/tfds.py`` writes for it, every box and class equal to the truth."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

tfds = pytest.importorskip("tensorflow_datasets")

from tfrecord_tools.cli import main  # noqa: E402
from tfrecord_tools.convert.sources.annotated import (  # noqa: E402
    convert_coco,
    convert_csv,
    convert_voc,
    convert_yolo,
)
from tfrecord_tools.format.manifest import read_manifest  # noqa: E402
from tfrecord_tools.format.tfds import (  # noqa: E402
    TFDS_DETECTION_FILES,
    TFDS_LABELS,
    TFDS_OBJECT_LABELS,
    remove_tfds_metadata,
    write_tfds_metadata,
)

from ..convert.test_detection_convert import (  # noqa: E402
    CLASSES,
    COLOURS,
    expected,
    truth,
    write_coco,
    write_csv,
    write_voc,
    write_yolo,
)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

TRUTH = truth(count=8, seed=3)
SPLIT = "train=0.6,validation=0.4"


def _convert(kind: str, tmp_path: Path, **options) -> Path:
    src, out = tmp_path / "src", tmp_path / "out"
    options = {"split": SPLIT, "shards": 2, "quiet": True, **options}
    if kind == "coco":
        convert_coco(src, out, annotations=write_coco(src, TRUTH), **options)
    elif kind == "voc":
        write_voc(src, TRUTH)
        convert_voc(src, out, **options)
    elif kind == "yolo":
        write_yolo(src, TRUTH)
        convert_yolo(src, out, **options)
    else:
        convert_csv(src, out, annotations=write_csv(src, TRUTH), **options)
    return out


def _load(out: Path) -> tuple[object, dict[str, dict]]:
    """The builder, and every example TFDS gives of every split, by file name."""
    builder = tfds.builder_from_directory(os.fspath(out))
    examples = {}
    for split in read_manifest(out).splits:
        for ex in tfds.as_numpy(builder.as_dataset(split=split, shuffle_files=False)):
            examples[Path(ex["image"]["filename"].decode()).name] = ex
    return builder, examples


def _check_truth(examples: dict[str, dict], *, pixels: bool = True) -> None:
    assert sorted(examples) == sorted(im["name"] for im in TRUTH)
    for im in TRUTH:
        image = examples[im["name"]]["image"]
        objects = image["object"]
        boxes, labels = expected(im)
        bbox = objects["bbox"]
        got = np.stack([bbox["ymin"], bbox["xmin"], bbox["ymax"], bbox["xmax"]], axis=-1)
        np.testing.assert_allclose(got, boxes, rtol=0, atol=1e-6)
        assert objects["class"]["label"].tolist() == labels
        assert [t.decode() for t in objects["class"]["text"]] == [CLASSES[i - 1] for i in labels]
        assert objects["is_crowd"].tolist() == [0] * len(labels)
        assert image["height"] == im["height"] and image["width"] == im["width"]
        if pixels:  # each box sits on its class's colour in the image TFDS decodes
            assert image["encoded"].shape == (im["height"], im["width"], 3)
            for x0, y0, x1, y1, label in im["boxes"]:
                assert (image["encoded"][y0:y1, x0:x1] == COLOURS[label]).all()


@pytest.mark.parametrize("kind", ["coco", "voc", "yolo", "csv"])
def test_tfds_loads_every_box_and_class(tmp_path, kind):
    out = _convert(kind, tmp_path)
    written = write_tfds_metadata(out)
    assert sorted(p.name for p in written) == sorted(TFDS_DETECTION_FILES)
    assert not (out / TFDS_LABELS).exists()
    builder, examples = _load(out)
    manifest = read_manifest(out)
    assert set(builder.info.splits) == set(manifest.splits) == {"train", "validation"}
    for split, entry in manifest.splits.items():
        assert builder.info.splits[split].num_examples == entry.num_examples
    label = builder.info.features["image"]["object"]["class"]["label"]
    assert label.names == ["background", *CLASSES]
    _check_truth(examples)


def test_voc_attributes_and_an_image_without_objects(tmp_path):
    out = _convert("voc", tmp_path)
    write_tfds_metadata(out)
    _, examples = _load(out)
    empty = examples[TRUTH[-1]["name"]]["image"]["object"]
    assert all(v.shape == (0,) for v in empty["bbox"].values())
    assert empty["class"]["label"].shape == (0,)
    for im in TRUTH[:-1]:
        objects = examples[im["name"]]["image"]["object"]
        n = len(im["boxes"])
        assert objects["truncated"].tolist() == [1] * n  # write_voc marks every box
        assert objects["difficult"].tolist() == [0] * n
        assert [v.decode() for v in objects["view"]] == ["Left"] * n


def test_raw_pixels_of_several_shapes_come_as_bytes(tmp_path):
    out = _convert("coco", tmp_path, encoding="raw")
    write_tfds_metadata(out)
    _, examples = _load(out)
    _check_truth(examples, pixels=False)
    for im in TRUTH:
        image = examples[im["name"]]["image"]
        pixels = np.frombuffer(image["encoded"], np.uint8).reshape(im["height"], im["width"], 3)
        for x0, y0, x1, y1, label in im["boxes"]:
            assert (pixels[y0:y1, x0:x1] == COLOURS[label]).all()


def test_a_class_named_background_keeps_its_number(tmp_path):
    out = _convert("coco", tmp_path)
    manifest = json.loads((out / "dataset.json").read_text())
    manifest["classes"] = ["background", *CLASSES[1:]]  # as if class 1 were so named
    (out / "dataset.json").write_text(json.dumps(manifest))
    write_tfds_metadata(out)
    builder, examples = _load(out)
    label = builder.info.features["image"]["object"]["class"]["label"]
    assert label.names == ["_background", "background", *CLASSES[1:]]
    assert label.int2str(1) == "background"
    _check_truth(examples)


def test_the_tfds_metadata_command_and_its_removal(tmp_path, capsys):
    out = _convert("yolo", tmp_path)
    assert main(["tfds-metadata", str(out)]) == 0
    assert TFDS_OBJECT_LABELS in capsys.readouterr().out
    _check_truth(_load(out)[1])
    remove_tfds_metadata(out)
    assert not any((out / name).exists() for name in TFDS_DETECTION_FILES)
