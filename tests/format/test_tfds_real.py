"""Against the real TensorFlow Datasets (skipped without it; scripts/test-tfds.sh runs them
in .venv-tfds): TFDS loads the datasets we write, and our tools read a dataset a TFDS
builder prepared."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from PIL import Image

tfds = pytest.importorskip("tensorflow_datasets")

from tfrecord_tools import convert_image_folder, convert_mnist, make_dataset  # noqa: E402
from tfrecord_tools.check.count import count_records  # noqa: E402
from tfrecord_tools.check.inspect import inspect_dataset  # noqa: E402
from tfrecord_tools.check.verify import verify  # noqa: E402
from tfrecord_tools.dataset.keys import tfds_feature_keys  # noqa: E402
from tfrecord_tools.format.manifest import read_manifest  # noqa: E402
from tfrecord_tools.read.shards import resolve_shards  # noqa: E402

from ..helpers import read_dataset  # noqa: E402
from ..test_golden import make_golden_folder, make_golden_mnist  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _pixels(record: dict, channels: int) -> np.ndarray:
    """Our record's image, decoded with Pillow (PNG) or as raw pixels."""
    if record["image/format"] == b"raw":
        shape = (record["image/height"], record["image/width"], record["image/channels"])
        return np.frombuffer(record["image/encoded"], np.uint8).reshape(shape)
    image = Image.open(io.BytesIO(record["image/encoded"]))
    image = image.convert("L" if channels == 1 else "RGB")
    return np.asarray(image).reshape(image.height, image.width, channels)


def _check_loads(out, *, channels: int, lossless: bool) -> None:
    manifest = read_manifest(out)
    builder = tfds.builder_from_directory(os.fspath(out))
    assert set(builder.info.splits) == set(manifest.splits)
    label = builder.info.features["image"]["class"]["label"]
    assert label.names == manifest.classes
    ours = read_dataset(out)  # {split: [record dict]} in shard order
    for split, entry in manifest.splits.items():
        assert builder.info.splits[split].num_examples == entry.num_examples
        got = list(tfds.as_numpy(builder.as_dataset(split=split, shuffle_files=False)))
        want = ours[split]
        assert len(got) == len(want) == entry.num_examples
        for ex, rec in zip(got, want, strict=True):
            image = ex["image"]
            assert image["class"]["label"] == rec["image/class/label"]
            assert image["filename"] == rec["image/filename"]
            if lossless or rec["image/format"] != b"jpeg":
                np.testing.assert_array_equal(image["encoded"], _pixels(rec, channels))
            else:
                assert image["encoded"].shape == _pixels(rec, channels).shape


def test_tfds_loads_an_image_folder_conversion(tmp_path):
    src = make_golden_folder(tmp_path / "src")
    out = tmp_path / "out"
    convert_image_folder(src, out, name="golden", split="train=0.7,validation=0.3", quiet=True)
    _check_loads(out, channels=3, lossless=False)


@pytest.mark.parametrize("encoding", ["png", "raw"])
def test_tfds_loads_mnist(tmp_path, encoding):
    src = make_golden_mnist(tmp_path / "src")
    convert_mnist(src, tmp_path / "out", encoding=encoding, shards=3, quiet=True)
    _check_loads(tmp_path / "out", channels=1, lossless=True)


@pytest.mark.parametrize("name", ["my-data", "my data"])
def test_tfds_loads_names_it_would_reject(tmp_path, name):
    src = make_golden_folder(tmp_path / "src")
    out = tmp_path / "out"
    convert_image_folder(src, out, name=name, split="train=0.7,validation=0.3", quiet=True)
    assert any(p.name.startswith(f"{name}-train.tfrecord-") for p in out.iterdir())
    _check_loads(out, channels=3, lossless=False)


class TinyImages(tfds.core.GeneratorBasedBuilder):
    """A builder of its own: an Image and a ClassLabel, nothing downloaded."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(8, 8, 3)),
                    "label": tfds.features.ClassLabel(names=["cat", "dog"]),
                }
            ),
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(7), "test": self._generate_examples(3)}

    def _generate_examples(self, n):
        rng = np.random.default_rng(n)
        for i in range(n):
            yield i, {"image": rng.integers(0, 256, (8, 8, 3), dtype=np.uint8), "label": i % 2}


class OddNames(TinyImages):
    """The same, under names no layout of ours uses: features.json gives them."""

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict(
                {
                    "picture": tfds.features.Image(shape=(8, 8, 3)),
                    "kind": tfds.features.ClassLabel(names=["cat", "dog"]),
                    "note": tfds.features.Text(),
                }
            ),
        )

    def _generate_examples(self, n):
        for key, ex in super()._generate_examples(n):
            yield key, {"picture": ex["image"], "kind": ex["label"], "note": f"n{key}"}


def _prepare(builder_class, data_dir):
    builder = builder_class(data_dir=os.fspath(data_dir))
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(num_shards=2)
        if "num_shards" in tfds.download.DownloadConfig.__dataclass_fields__
        else None
    )
    return builder


@pytest.mark.parametrize(
    ("builder_class", "image", "label"),
    [(TinyImages, "image", "label"), (OddNames, "picture", "kind")],
)
def test_make_dataset_reads_a_dataset_tfds_prepared(tmp_path, builder_class, image, label):
    builder = _prepare(builder_class, tmp_path / "tfds_data")
    folder = builder.data_dir
    assert tfds_feature_keys(folder) == (image, label)
    for split in ("train", "test"):
        want = list(tfds.as_numpy(builder.as_dataset(split=split, shuffle_files=False)))
        ds = make_dataset(folder, split=split)
        assert ds.cardinality().numpy() == len(want)
        got = [(im.numpy(), int(lab)) for im, lab in ds]
        assert len(got) == len(want)
        for (pixels, number), ex in zip(got, want, strict=True):
            np.testing.assert_array_equal(pixels, ex[image])
            assert number == ex[label]
        (images, labels), *_ = make_dataset(folder, split=split, batch_size=16, image_size=8)
        np.testing.assert_array_equal(images.numpy(), np.stack([ex[image] for ex in want]))
        assert labels.numpy().tolist() == [ex[label] for ex in want]


def test_our_tools_read_a_dataset_tfds_prepared(tmp_path):
    builder = _prepare(TinyImages, tmp_path / "tfds_data")
    folder = tmp_path / "tfds_data" / "tiny_images" / "1.0.0"
    assert (folder / "dataset_info.json").is_file() and not (folder / "dataset.json").exists()
    for split, n in (("train", 7), ("test", 3)):
        listed = resolve_shards(folder, split=split)
        info = builder.info.splits[split]
        assert [os.path.basename(f) for f in listed.files] == [
            os.path.basename(f) for f in info.filenames
        ]
        assert sum(listed.counts) == n and listed.compression == "none"
    report = count_records(folder)
    assert {s.source for s in report.shards} == {"dataset_info"}
    assert report.by_split == {"train": 7, "test": 3}
    checked = verify(folder)
    assert checked.ok, checked.problems
    assert checked.records == 10
    report = inspect_dataset(folder)
    assert report.features == {"image": "bytes", "label": "int64"}
    assert report.feature_samples["image"].startswith("<png, ")
    assert report.image_formats == {"png": sum(report.labels.values())}
