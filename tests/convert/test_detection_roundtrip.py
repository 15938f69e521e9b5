"""Detection round trips: a COCO set converted on the Apache Beam engine against the local
engine, and converted to and from buckets (S3 through moto's server, Cloud Storage through
its emulator: ``tests/buckets.py``), read back without TensorFlow against the truth the
images were drawn from.

The Beam tests run where the ``beam`` extra is installed (``bash scripts/test-beam.sh``);
the bucket tests where the cloud extras are (the default environment).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from tfrecord_tools import storage
from tfrecord_tools.access.source import TFRecordDataSource
from tfrecord_tools.convert.sources.annotated import convert_coco
from tfrecord_tools.format.detection import parse_detection

from .test_buckets_convert import _content, _same_output, _upload
from .test_detection_convert import COLOURS, expected, truth, write_coco

HAVE_BEAM = importlib.util.find_spec("apache_beam") is not None
needs_beam = pytest.mark.skipif(not HAVE_BEAM, reason="the beam extra is not installed")

TRUTH = truth(count=12, seed=1)
SPLITS = ("train", "validation")
OPTIONS = {
    "name": "shapes",
    "split": "train=0.75,validation=0.25",
    "shards": 4,
    "seed": 5,  # no shard ends in \r (the GCS emulator's quirk: see _same_output)
    "quiet": True,
}


def _read_back(out: str | Path) -> dict[str, dict]:
    """Every record of every split, TF-free: the decoded sample (``TFRecordDataSource``,
    task="detection") and the image bytes as stored, by file name."""
    found: dict[str, dict] = {}
    for split in SPLITS:
        with TFRecordDataSource(out, split=split, task="detection") as src:
            for i in range(len(src)):
                sample = src[i]
                sample["encoded"] = parse_detection(src.read_record(i)[0]).encoded
                sample["split"] = split
                assert sample["filename"] not in found, sample["filename"]
                found[sample["filename"]] = sample
    return found


def _assert_truth(found: dict[str, dict], images: list[dict], folder: Path) -> None:
    """``found`` holds each drawn image once: its file's bytes, its boxes and classes, and
    each box's colour where the box says."""
    assert sorted(found) == sorted(im["name"] for im in images)
    for im in images:
        s = found[im["name"]]
        assert s["encoded"] == (folder / im["name"]).read_bytes()
        boxes, labels = expected(im)
        np.testing.assert_allclose(s["boxes"], boxes, rtol=0, atol=1e-6)
        assert s["classes"].tolist() == labels
        h, w = s["image"].shape[:2]
        for (y0, x0, y1, x1), label in zip(s["boxes"], labels, strict=True):
            region = s["image"][round(y0 * h) : round(y1 * h), round(x0 * w) : round(x1 * w)]
            assert region.size and (region == COLOURS[label]).all()


def _assert_same_records(a: dict[str, dict], b: dict[str, dict]) -> None:
    """The same records in the same splits: boxes, classes and image bytes exactly."""
    assert sorted(a) == sorted(b)
    for name, x in a.items():
        y = b[name]
        assert (x["split"], x["encoded"]) == (y["split"], y["encoded"]), name
        np.testing.assert_array_equal(x["boxes"], y["boxes"])
        np.testing.assert_array_equal(x["classes"], y["classes"])


def _coco(tmp_path: Path) -> tuple[Path, Path]:
    src = tmp_path / "src"
    return src, write_coco(src, TRUTH)


def _only(manifest: dict, *drop: str) -> dict:
    """``manifest`` without ``created`` and the dotted keys ``drop``."""
    manifest = json.loads(json.dumps(manifest))
    manifest.pop("created")
    for key in drop:
        *path, last = key.split(".")
        where = manifest
        for part in path:
            where = where[part]
        where.pop(last)
    return manifest


# -- the Beam engine ----------------------------------------------------------------------------


@needs_beam
def test_beam_detection_records_equal_the_local_engine(tmp_path):
    src, annotations = _coco(tmp_path)
    local = convert_coco(src, tmp_path / "local", annotations=annotations, workers=2, **OPTIONS)
    beam = convert_coco(
        src, tmp_path / "beam", annotations=annotations, engine="beam", workers=2, **OPTIONS
    )
    assert beam.num_examples == local.num_examples == len(TRUTH)
    records = _read_back(tmp_path / "beam")
    _assert_same_records(_read_back(tmp_path / "local"), records)
    _assert_truth(records, TRUTH, src)
    a, b = _content(tmp_path / "local"), _content(tmp_path / "beam")
    manifests = [json.loads(files.pop("dataset.json")) for files in (a, b)]
    assert manifests[1]["engine"] == {"name": "beam", "runner": "FnApiRunner"}
    assert _only(manifests[0], "engine") == _only(manifests[1], "engine")
    assert a == b  # shards, indexes, labels.txt, label_map.pbtxt byte for byte


@needs_beam
def test_beam_converts_detection_to_an_s3_bucket(s3_server, tmp_path):
    """Beam's SDK worker processes upload the shards; read back from the bucket, they hold
    the truth, and the local engine's bytes."""
    src, annotations = _coco(tmp_path)
    out = storage.join(s3_server.new_bucket(), "shapes")
    convert_coco(src, tmp_path / "local", annotations=annotations, workers=2, **OPTIONS)
    summary = convert_coco(src, out, annotations=annotations, engine="beam", workers=2, **OPTIONS)
    assert summary.out_dir == out
    _assert_truth(_read_back(out), TRUTH, src)
    a, b = _content(tmp_path / "local"), _content(out)
    manifests = [json.loads(files.pop("dataset.json")) for files in (a, b)]
    assert _only(manifests[0], "engine") == _only(manifests[1], "engine")
    assert a == b


# -- buckets ------------------------------------------------------------------------------------


def test_detection_to_a_bucket_reads_back_the_truth(bucket, tmp_path):
    src, annotations = _coco(tmp_path)
    convert_coco(src, tmp_path / "local", annotations=annotations, workers=2, **OPTIONS)
    out = storage.join(bucket, "data", "shapes")
    remote = convert_coco(src, out, annotations=annotations, workers=2, **OPTIONS)
    assert remote.out_dir == out
    assert remote.num_examples == len(TRUTH)
    _assert_truth(_read_back(out), TRUTH, src)  # TF-free, from the bucket
    manifest = _same_output(tmp_path / "local", out)  # byte for byte, the manifest too
    assert manifest["task"] == "detection"


def test_detection_from_a_bucket_equals_the_local_conversion(bucket, tmp_path):
    """Images and the instances JSON in the bucket: the records, the shards and the manifest
    (but where the source is) are the local conversion's."""
    src, annotations = _coco(tmp_path)
    remote_src = _upload(src, storage.join(bucket, "coco", "images"))
    remote_annotations = storage.join(bucket, "coco", "instances.json")
    storage.put_file(annotations, remote_annotations)
    convert_coco(src, tmp_path / "local", annotations=annotations, workers=2, **OPTIONS)
    convert_coco(
        remote_src, tmp_path / "remote", annotations=remote_annotations, workers=2, **OPTIONS
    )
    records = _read_back(tmp_path / "remote")
    _assert_truth(records, TRUTH, src)
    _assert_same_records(_read_back(tmp_path / "local"), records)
    a, b = _content(tmp_path / "local"), _content(tmp_path / "remote")
    manifests = [json.loads(files.pop("dataset.json")) for files in (a, b)]
    assert manifests[1]["source"]["path"] == remote_src
    assert manifests[1]["source"]["annotations"] == remote_annotations
    where = ("source.path", "source.annotations", "conversion")  # the source's location
    assert _only(manifests[0], *where) == _only(manifests[1], *where)
    assert a == b


def test_a_missing_image_in_a_bucket_is_listed(bucket, tmp_path):
    """The bucket is listed once for the images' sizes: an annotated image it does not hold
    is listed as missing; the others are converted."""
    src, annotations = _coco(tmp_path)
    (src / TRUTH[0]["name"]).unlink()
    remote_src = _upload(src, storage.join(bucket, "missing", "images"))
    out = tmp_path / "out"
    convert_coco(remote_src, out, annotations=annotations, workers=2, **OPTIONS)
    skipped = json.loads((out / "dataset.json").read_text())["source"]["skipped"]
    assert skipped == [
        {"path": f"{annotations}: image 100", "reason": "annotation for a missing image"}
    ]
    assert sorted(_read_back(out)) == sorted(im["name"] for im in TRUTH[1:])
