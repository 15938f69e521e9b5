"""Detection and segmentation records through the PyTorch and grain adapters (run in
.venv-torch, as test_access_torch.py; skipped where the libraries are missing): the
collate functions give what torchvision's models take, in a DataLoader with workers too.
The records are test_access_detection.py's."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tfrecord_tools.access.detection import (  # noqa: E402
    collate_detection,
    collate_segmentation,
    pad_detection,
)
from tfrecord_tools.access.source import TFRecordDataSource  # noqa: E402
from tfrecord_tools.access.torch import TFRecordIterableDataset, TFRecordMapDataset  # noqa: E402

from .test_access_detection import TRUTH, _class_mask, _record, _write  # noqa: E402

SIZE = (32, 40)


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    """Two shards of the truth images, the second with EXIF orientation 6."""
    root = tmp_path_factory.mktemp("detection-torch")
    _write(root / "a.tfrecord", [_record(im) for im in TRUTH[:3]])
    _write(root / "b.tfrecord", [_record(im, 6) for im in TRUTH[3:]])
    return root


def _by_name(src: TFRecordDataSource) -> dict[str, dict]:
    return {s["filename"]: s for s in (src[i] for i in range(len(src)))}


@pytest.mark.parametrize("workers", [0, 2])
def test_a_dataloader_gives_torchvision_targets(shards, workers):
    ds = TFRecordMapDataset(shards, task="detection", masks=True)
    loader = torch.utils.data.DataLoader(
        ds, batch_size=4, num_workers=workers, collate_fn=collate_detection
    )
    got = [pair for images, targets in loader for pair in zip(images, targets, strict=True)]
    assert len(got) == len(TRUTH)
    for i, (image, target) in enumerate(got):
        sample = ds.source[i]
        height, width = sample["image"].shape[:2]
        assert image.dtype == torch.float32 and image.shape == (3, height, width)
        torch.testing.assert_close(image, torch.from_numpy(sample["image"]).permute(2, 0, 1) / 255)
        assert target["masks"].dtype == torch.uint8
        assert torch.equal(target["masks"], torch.from_numpy(sample["masks"]))
        assert target["labels"].dtype == torch.int64
        assert target["labels"].tolist() == sample["classes"].tolist()
        y0, x0, y1, x1 = sample["boxes"].T
        xyxy = np.stack([x0 * width, y0 * height, x1 * width, y1 * height], axis=1)
        np.testing.assert_allclose(target["boxes"].numpy(), xyxy.reshape(-1, 4), atol=1e-4)
        assert target["keypoints"].dtype == torch.float32
        assert target["keypoints"].shape == (len(sample["classes"]), 2, 3)
        for mask, points in zip(target["masks"], target["keypoints"], strict=True):
            for x, y, _seen in points.tolist():  # absolute: on the object's pixels
                assert mask[int(y), int(x)] == 1


@pytest.mark.parametrize("workers", [0, 2])
def test_the_iterable_dataset_gives_every_detection_record_once(shards, workers):
    ds = TFRecordIterableDataset(shards, task="detection")
    loader = torch.utils.data.DataLoader(
        ds, batch_size=2, num_workers=workers, collate_fn=collate_detection
    )
    count = sum(len(images) for images, _ in loader)
    names = [s["filename"] for s in ds.source.stream()]
    assert count == len(TRUTH) and sorted(names) == sorted(im["name"] for im in TRUTH)


def test_batched_indices_give_the_records_dicts(shards):
    ds = TFRecordMapDataset(shards, task="detection", masks=True)
    batch = ds[[4, 0]]
    assert [s["filename"] for s in batch] == [ds.source[4]["filename"], ds.source[0]["filename"]]
    np.testing.assert_array_equal(batch[0]["masks"], ds.source[4]["masks"])


def test_collate_segmentation_gives_float_images_and_long_masks(shards):
    ds = TFRecordMapDataset(shards, task="segmentation", image_size=SIZE)
    loader = torch.utils.data.DataLoader(ds, batch_size=len(TRUTH), collate_fn=collate_segmentation)
    images, masks = next(iter(loader))
    assert images.shape == (len(TRUTH), 3, *SIZE) and images.dtype == torch.float32
    assert masks.shape == (len(TRUTH), *SIZE) and masks.dtype == torch.int64
    first = TRUTH[0]  # stored upright: the class mask's values, 255 included
    assert set(masks[0].unique().tolist()) == set(np.unique(_class_mask(first)).tolist())


def test_grain_pads_detection_batches(shards):
    grain = pytest.importorskip("grain")
    from tfrecord_tools.access.grain import GrainSource

    src = GrainSource(shards, task="detection", masks=True, image_size=SIZE)
    pad = functools.partial(pad_detection, num_objects=4)
    ds = grain.MapDataset.source(src).batch(3, batch_fn=pad)
    batch = ds[1]
    assert batch["image"].shape == (3, *SIZE, 3)
    assert batch["boxes"].shape == (3, 4, 4) and batch["masks"].shape == (3, 4, *SIZE)
    want = [src[i] for i in range(3, 6)]
    assert batch["num_objects"].tolist() == [len(s["classes"]) for s in want]
    for i, s in enumerate(want):
        n = len(s["classes"])
        np.testing.assert_array_equal(batch["masks"][i, :n], s["masks"])
        assert (batch["classes"][i, n:] == -1).all()
    read = src.batched(3, shuffle=False, num_objects=4)
    assert len(read) == 2
    for key, value in pad([src[i] for i in range(3)]).items():
        np.testing.assert_array_equal(read[0][key], value)
    pushed = grain.MapDataset.source(src)._getitems([5, 1])  # grain's batched hook
    assert [s["filename"] for s in pushed] == [src[5]["filename"], src[1]["filename"]]


def test_grain_stacks_segmentation_batches(shards):
    grain = pytest.importorskip("grain")
    from tfrecord_tools.access.grain import GrainSource

    src = GrainSource(shards, task="segmentation")
    ds = grain.MapDataset.source(src).batch(3)
    with pytest.raises(ValueError):
        ds[0]  # images of different sizes: grain's np.stack refuses them
    src = GrainSource(shards, task="segmentation", image_size=SIZE)
    batch = grain.MapDataset.source(src).batch(3)[0]
    assert batch["image"].shape == (3, *SIZE, 3) and batch["mask"].shape == (3, *SIZE)
    read = src.read_batch([0, 1, 2])
    np.testing.assert_array_equal(read["mask"], batch["mask"])
