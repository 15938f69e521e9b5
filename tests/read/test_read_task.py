"""The tf.data reader asked for classification on detection records says which task to
pass (``dataset.check_task``, shared with the TF-free reader), before anything is built."""

from __future__ import annotations

import pytest

from tests.convert.test_detection_convert import truth, write_coco
from tfrecord_tools import convert_coco
from tfrecord_tools.errors import TFRecordToolsError

pytest.importorskip("tensorflow")
from tfrecord_tools.read.pipeline import make_dataset


def test_detection_records_read_as_classification_name_the_task(tmp_path):
    annotations = write_coco(tmp_path / "src", truth(3))
    out = tmp_path / "out"
    convert_coco(tmp_path / "src", out, annotations=annotations, workers=1, quiet=True)
    shards = sorted(str(p) for p in out.iterdir() if ".tfrecord-" in p.name and p.suffix != ".idx")
    for path in (out, shards):  # the manifest says so; the first record says so
        with pytest.raises(TFRecordToolsError, match=r"detection records .*task='detection'"):
            make_dataset(path, batch_size=2, image_size=32)


def test_the_raw_file_twin_refuses_another_task(tmp_path):
    from tfrecord_tools.read.pipeline import make_raw_dataset

    with pytest.raises(TFRecordToolsError, match="task='detection': make_raw_dataset reads"):
        make_raw_dataset(tmp_path, task="detection")
