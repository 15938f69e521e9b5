"""Boxes follow their image's EXIF orientation: stored as they are (the readers turn image
and boxes together) or stored upright by ``--max-size`` (the converter turns the boxes)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tfrecord_tools import TFRecordDataSource
from tfrecord_tools.convert.sources.annotated import convert_csv

RED = (255, 0, 0)


def _image(path, orientation: int) -> None:
    pixels = np.zeros((40, 80, 3), np.uint8)  # stored 80 wide, 40 high
    pixels[5:15, 50:70] = RED  # the box: x 50..70, y 5..15 in the stored frame
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(pixels).save(path, exif=exif)


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_boxes_turn_with_the_image_stored_as_is_or_upright(tmp_path, orientation):
    src = tmp_path / "src"
    src.mkdir()
    _image(src / "a.png", orientation)
    table = tmp_path / "boxes.csv"
    table.write_text("filename,xmin,ymin,xmax,ymax,label\na.png,50,5,70,15,red\n")
    got = {}
    for form, options in (("as is", {}), ("upright", {"max_size": 40})):
        out = tmp_path / form.replace(" ", "_")
        convert_csv(src, out, annotations=table, quiet=True, **options)
        sample = TFRecordDataSource(out, task="detection")[0]
        image, boxes = sample["image"], sample["boxes"]
        height, width = image.shape[:2]
        ymin, xmin, ymax, xmax = boxes[0]
        # the box's inside holds the red of the shape, in the upright image
        inside = image[
            int(ymin * height) + 1 : int(ymax * height) - 1,
            int(xmin * width) + 1 : int(xmax * width) - 1,
        ]
        assert inside.size and (np.abs(inside.astype(int) - RED) <= 24).all(), (form, boxes)
        got[form] = boxes
    np.testing.assert_allclose(got["as is"], got["upright"], atol=1e-6)
