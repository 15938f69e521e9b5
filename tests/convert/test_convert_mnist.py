"""MNIST conversion: PNG and raw encodings, gz and plain, counts from headers, errors."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from tfrecord_tools import convert_mnist
from tfrecord_tools.errors import ConversionError, DownloadError, IDXFormatError

from ..helpers import make_mnist, read_dataset


@pytest.mark.parametrize(("encoding", "gz"), [("png", False), ("raw", True)])
def test_round_trip_pixels_labels_ids(tmp_path, encoding, gz):
    pixels, labels = make_mnist(tmp_path / "src", n_train=50, n_test=13, gz=gz)
    summary = convert_mnist(
        tmp_path / "src", tmp_path / "out", encoding=encoding, shards=3, workers=2, quiet=True
    )
    assert {s: v.num_examples for s, v in summary.splits.items()} == {"train": 50, "test": 13}
    manifest = json.loads((tmp_path / "out" / "dataset.json").read_text())
    assert manifest["classes"] == [str(d) for d in range(10)]
    assert manifest["source"]["kind"] == "mnist" and manifest["encoding"] == encoding
    for split, rows in read_dataset(tmp_path / "out").items():
        seen = set()
        for r in rows:
            split_name, idx = r["image/filename"].decode().split("/")
            i = int(idx)
            assert split_name == split
            seen.add(i)
            assert r["image/format"].decode() == encoding
            assert (r["image/height"], r["image/width"], r["image/channels"]) == (28, 28, 1)
            assert r["image/class/label"] == labels[split][i]
            assert r["image/class/text"].decode() == str(labels[split][i])
            if encoding == "png":
                img = np.asarray(Image.open(io.BytesIO(r["image/encoded"])))
            else:
                img = np.frombuffer(r["image/encoded"], np.uint8).reshape(28, 28)
            assert np.array_equal(img, pixels[split][i])
        assert seen == set(range(len(pixels[split])))


def test_tensorflow_decodes_our_pngs(tmp_path):
    tf = pytest.importorskip("tensorflow")
    pixels, _ = make_mnist(tmp_path / "src", n_train=5, n_test=2)
    convert_mnist(tmp_path / "src", tmp_path / "out", workers=1, quiet=True)
    for r in read_dataset(tmp_path / "out")["train"]:
        img = tf.io.decode_png(r["image/encoded"], channels=0).numpy()
        i = int(r["image/filename"].decode().split("/")[1])
        assert img.shape == (28, 28, 1)
        assert np.array_equal(img[..., 0], pixels["train"][i])


def test_header_errors_name_the_file(tmp_path):
    make_mnist(tmp_path / "src", n_train=10, n_test=4)
    labels = tmp_path / "src" / "t10k-labels-idx1-ubyte"
    labels.write_bytes(labels.read_bytes()[:-1])  # one label short
    with pytest.raises(IDXFormatError, match="t10k-labels-idx1-ubyte"):
        convert_mnist(tmp_path / "src", tmp_path / "out", quiet=True)
    assert not (tmp_path / "out" / "dataset.json").exists()


def test_missing_files_suggest_download(tmp_path):
    (tmp_path / "src").mkdir()
    with pytest.raises(IDXFormatError, match="--download"):
        convert_mnist(tmp_path / "src", tmp_path / "out", quiet=True)


def test_download_offline_is_a_clear_error(tmp_path, monkeypatch):
    # A port on localhost where nothing listens stands in for "offline".
    from tfrecord_tools.convert.sources import mnist_download

    monkeypatch.setattr(mnist_download, "DEFAULT_MIRRORS", ("http://127.0.0.1:9/",))
    with pytest.raises(DownloadError, match="offline"):
        convert_mnist(tmp_path / "src", tmp_path / "out", download=True, quiet=True)


def test_png_level_changes_size_not_pixels(tmp_path):
    pixels, _ = make_mnist(tmp_path / "src", n_train=40, n_test=5)
    sizes = {}
    for level in (0, 6):
        out = tmp_path / f"out{level}"
        convert_mnist(tmp_path / "src", out, png_level=level, workers=1, quiet=True)
        rows = read_dataset(out)["train"]
        sizes[level] = sum(len(r["image/encoded"]) for r in rows)
        for r in rows:
            i = int(r["image/filename"].decode().split("/")[1])
            image = np.asarray(Image.open(io.BytesIO(r["image/encoded"])))
            assert np.array_equal(image, pixels["train"][i])
        assert len(rows) == 40
        assert json.loads((out / "dataset.json").read_text())["png_level"] == level
    assert sizes[6] < sizes[0]
    with pytest.raises(ConversionError, match="png_level"):
        convert_mnist(tmp_path / "src", tmp_path / "bad", png_level=10, quiet=True)
