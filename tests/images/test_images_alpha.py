"""channels=4: opaque images come out opaque (alpha 255) whatever their PNG bit depth.

TF's decode_png(channels=4) gives 1, 2 and 4-bit gray and palette PNGs without
transparency the alpha 1, 3 or 15. The readers share decode.py, so both are checked, on
PNGs written by Pillow (``bits=``, small palettes) and by our converter (a GIF and a TIFF
of few colours become low-depth palette PNGs), through the per-record ``tf.case`` and the
batched known-format path. Images with real transparency keep it.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from tfrecord_tools import convert_image_folder

tf = pytest.importorskip("tensorflow")
from tfrecord_tools.read.pipeline import make_dataset, make_raw_dataset  # noqa: E402

RNG = np.random.default_rng(3)
H, W = 6, 10


def _png(image: Image.Image, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", **params)
    return buffer.getvalue()


def _encode(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def _gray() -> Image.Image:
    return Image.fromarray(RNG.integers(0, 256, (H, W), dtype=np.uint8))


def _palette(colours: int) -> Image.Image:
    return Image.fromarray(RNG.integers(0, 256, (H, W, 3), dtype=np.uint8)).quantize(colours)


OPAQUE = {
    "gray-1bit.png": _png(_gray(), bits=1),
    "gray-2bit.png": _png(_gray(), bits=2),
    "gray-4bit.png": _png(_gray(), bits=4),
    "mode-1.png": _png(_gray().convert("1")),
    "palette-2.png": _png(_palette(2)),
    "palette-4.png": _png(_palette(4)),
    "palette-16.png": _png(_palette(16)),
    "gray-8bit.png": _png(_gray()),
    "few-colours.gif": _encode(_palette(4), "GIF"),  # our converter writes a 2-bit PNG
    "few-colours.tif": _encode(_palette(16), "TIFF"),  # and a 4-bit one
}
TRANSPARENT = {
    "palette-4-trns.png": _png(_palette(4), transparency=0),
    "gray-2bit-trns.png": _png(_gray(), bits=2, transparency=0),
}


def test_the_inputs_are_low_depth_pngs() -> None:
    depths = {name: data[24] for name, data in OPAQUE.items() if data[:4] == b"\x89PNG"}
    assert depths["gray-1bit.png"] == 1 and depths["gray-2bit.png"] == 2
    assert depths["gray-4bit.png"] == 4 and depths["palette-16.png"] == 4
    assert depths["palette-2.png"] == 1 and depths["mode-1.png"] == 1


def _folder(root, tf_reads: bool):
    for label, files in (("a_opaque", OPAQUE), ("b_transparent", TRANSPARENT)):
        (root / label).mkdir()
        for name, data in files.items():
            if data[:4] in (b"\x89PNG", b"GIF8") or not tf_reads:
                (root / label / name).write_bytes(data)
    return root


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    src = _folder(tmp_path_factory.mktemp("alpha-src"), tf_reads=False)
    out = tmp_path_factory.mktemp("alpha-out")
    summary = convert_image_folder(src, out, workers=1, quiet=True)
    assert summary.num_examples == len(OPAQUE) + len(TRANSPARENT) and not summary.skipped
    # the converter's own PNGs are low-depth palette PNGs too
    assert summary.converted_from == {"gif": 1, "tiff": 1}
    return out


@pytest.fixture(scope="module")
def pngs(tmp_path_factory):
    return _folder(tmp_path_factory.mktemp("alpha-png"), tf_reads=True)  # TF reads no TIFF


def _check(rgba_images, rgb_images, labels, count: int) -> None:
    assert len(rgba_images) == count
    for rgba, rgb, label in zip(rgba_images, rgb_images, labels, strict=True):
        np.testing.assert_array_equal(rgba[..., :3], rgb)
        if label == 0:
            assert (rgba[..., 3] == 255).all(), sorted(set(rgba[..., 3].ravel().tolist()))
        else:
            assert (rgba[..., 3] == 0).any() and (rgba[..., 3] == 255).any()


def _collect(ds, batched=False):
    images, labels = [], []
    for x, y in ds:
        xs, ys = (list(x.numpy()), list(y.numpy())) if batched else ([x.numpy()], [int(y)])
        images += xs
        labels += ys
    return images, labels


@pytest.mark.parametrize("batched", [False, True], ids=["per-record", "batched"])
def test_tfrecord_reader_gives_opaque_alpha(converted, batched) -> None:
    kw = {"batch_size": 4, "image_size": (H, W)} if batched else {}
    rgba, labels = _collect(make_dataset(converted, channels=4, **kw), batched)
    rgb, _ = _collect(make_dataset(converted, channels=3, **kw), batched)
    _check(rgba, rgb, labels, len(OPAQUE) + len(TRANSPARENT))


@pytest.mark.parametrize("batched", [False, True], ids=["per-record", "batched"])
def test_raw_twin_gives_opaque_alpha(pngs, batched) -> None:
    kw = {"batch_size": 4, "image_size": (H, W)} if batched else {}
    rgba, labels = _collect(make_raw_dataset(pngs, channels=4, **kw), batched)
    rgb, _ = _collect(make_raw_dataset(pngs, channels=3, **kw), batched)
    _check(rgba, rgb, labels, len(OPAQUE) - 1 + len(TRANSPARENT))  # with the GIF, as it is
