"""``convert segmentation``: an image folder and a folder of class masks -> records with
DeepLab's keys. The class masks come back (parsed without TensorFlow) equal to the truth:
as they are, resized by ``--max-size``, turned with an EXIF-turned JPEG; every bad pair is
listed, and refused with ``strict``; local and ``memory://`` folders alike."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tfrecord_tools import storage
from tfrecord_tools.access.source import TFRecordDataSource
from tfrecord_tools.convert.sources.annotated import convert_segmentation
from tfrecord_tools.errors import ConversionError
from tfrecord_tools.format.detection import SEGMENTATION, XMIN, parse_detection
from tfrecord_tools.format.example import decode_example

UPRIGHT = {3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_270}
UPRIGHT[8] = Image.Transpose.ROTATE_90
#: a palette whose colours are not the indices (as VOC's): the ids are the indices
PALETTE = [v for i in range(256) for v in ((i * 37) % 256, (i * 91) % 256, (i * 13) % 256)]


def make(root: Path, count: int = 5, seed: int = 0) -> dict[str, np.ndarray]:
    """``root/images`` (PNGs, one in a subfolder, one JPEG) and ``root/masks`` (gray or
    palette PNGs of class ids 0-4 and 255); returns image path -> its class ids."""
    rng = np.random.default_rng(seed)
    truth = {}
    for i in range(count):
        h, w = int(rng.integers(20, 50)), int(rng.integers(20, 50))
        ids = rng.integers(0, 5, (h, w)).astype(np.uint8)
        ids[0, : w // 3] = 255  # DeepLab's ignore
        pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        rel = f"city/img{i}" if i == 1 else f"img{i}"
        suffix = ".jpg" if i == 2 else ".png"
        (root / "images" / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / "masks" / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(root / "images" / f"{rel}{suffix}")
        mask = Image.fromarray(ids)
        if i % 2:
            mask = mask.convert("P")
            mask.putpalette(PALETTE)
            assert (np.asarray(mask) == ids).all()
        mask.save(root / "masks" / f"{rel}.png")
        truth[f"{rel}{suffix}"] = ids
    return truth


def records(out, split: str = "train") -> dict:
    src = TFRecordDataSource(out, split=split, task="segmentation")
    return {
        f.filename: f for f in (parse_detection(src.read_record(i)[0]) for i in range(len(src)))
    }


def decoded(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG" and image.mode == "L"
        return np.asarray(image)


def nearest(ids: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    (h, w), (height, width) = ids.shape, size
    return ids[(2 * np.arange(height) + 1) * h // (2 * height)][
        :, (2 * np.arange(width) + 1) * w // (2 * width)
    ]


def manifest(out) -> dict:
    return json.loads(storage.read_text(storage.join(out, "dataset.json")))


@pytest.mark.parametrize("max_size", [None, 16])
def test_class_masks_come_back_equal(tmp_path, max_size):
    truth = make(tmp_path)
    convert_segmentation(
        tmp_path / "images",
        tmp_path / "out",
        masks=tmp_path / "masks",
        max_size=max_size,
        workers=2,
        quiet=True,
    )
    got = records(tmp_path / "out")
    assert sorted(got) == sorted(truth)
    for rel, ids in truth.items():
        f = got[rel]
        stored = decoded(f.segmentation)
        assert stored.shape == (f.height, f.width)
        assert max_size is None or max(stored.shape) == max_size
        np.testing.assert_array_equal(stored, nearest(ids, (f.height, f.width)))
        assert f.source_id == rel.rsplit(".", 1)[0]
    m = manifest(tmp_path / "out")
    assert m["task"] == "segmentation" and m["source"]["kind"] == "segmentation"
    assert m["classes"] == ["class_0", "class_1", "class_2", "class_3", "class_4"]
    assert m["segmentation"]["ignore_label"] == 255
    assert m["segmentation"]["images_per_class"] == dict.fromkeys(m["classes"], 5)
    assert m["features"][SEGMENTATION] == "bytes"
    assert (tmp_path / "out" / "labels.txt").read_text().split() == m["classes"]
    assert not (tmp_path / "out" / "label_map.pbtxt").exists()
    src = TFRecordDataSource(tmp_path / "out", task="segmentation")
    record = decode_example(bytes(src.read_record(0)[0]))
    assert SEGMENTATION in record and XMIN not in record  # the keys say "segmentation"
    sample = src[0]  # the TF-free reader's class mask is the stored one
    want = truth[sample_name(src, 0)]
    np.testing.assert_array_equal(sample["mask"], nearest(want, sample["mask"].shape))


def sample_name(src: TFRecordDataSource, i: int) -> str:
    return parse_detection(src.read_record(i)[0]).filename


def test_class_names_from_a_file(tmp_path):
    truth = make(tmp_path, count=3)
    names = tmp_path / "classes.txt"
    names.write_text("background\nroad\ncar\nperson\nsky\n")
    convert_segmentation(
        tmp_path / "images", tmp_path / "out", masks=tmp_path / "masks", classes=names, quiet=True
    )
    m = manifest(tmp_path / "out")
    assert m["classes"] == ["background", "road", "car", "person", "sky"]
    assert m["source"]["classes"] == str(names)
    assert len(records(tmp_path / "out")) == len(truth)
    names.write_text("background\nroad\ncar\n")  # ids 3 and 4 unnamed
    with pytest.raises(ConversionError, match="class id 3, --classes names 3"):
        convert_segmentation(
            tmp_path / "images",
            tmp_path / "strict",
            masks=tmp_path / "masks",
            classes=names,
            strict=True,
            quiet=True,
        )
    names.write_text("a\n\nb\n")
    with pytest.raises(ConversionError, match="one non-empty class name a line"):
        convert_segmentation(
            tmp_path / "images", tmp_path / "x", masks=tmp_path / "masks", classes=names
        )


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_the_mask_turns_with_an_image_stored_upright(tmp_path, orientation):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    rng = np.random.default_rng(orientation)
    ids = rng.integers(0, 3, (30, 44)).astype(np.uint8)  # as the image is on disk
    exif = Image.Exif()
    exif[0x0112] = orientation
    pixels = rng.integers(0, 256, (30, 44, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "images" / "a.jpg", exif=exif)
    Image.fromarray(ids).save(tmp_path / "masks" / "a.png")
    turned = np.asarray(Image.fromarray(ids).transpose(UPRIGHT[orientation]))
    for form, options in (
        ("as_is", {}),
        ("upright", {"encoding": "png"}),
        ("small", {"max_size": 20}),
    ):
        convert_segmentation(
            tmp_path / "images", tmp_path / form, masks=tmp_path / "masks", quiet=True, **options
        )
        f = records(tmp_path / form)["a.jpg"]
        stored = decoded(f.segmentation)
        if form == "as_is":  # kept with its orientation: readers turn image and mask
            assert f.orientation == orientation
            np.testing.assert_array_equal(stored, ids)
        else:
            assert f.orientation == 1
            np.testing.assert_array_equal(stored, nearest(turned, (f.height, f.width)))


def _bad_pairs(root: Path) -> dict[str, str]:
    """Spoil ``make``'s folders: path (under root) -> the reason it is listed with."""
    Image.new("L", (7, 7)).save(root / "masks" / "ghost.png")
    (root / "masks" / "img3.png").unlink()
    Image.new("L", (5, 5)).save(root / "masks" / "img4.png")
    Image.new("RGB", (10, 10)).save(root / "images" / "rgb.png")
    Image.new("RGB", (10, 10)).save(root / "masks" / "rgb.png")
    Image.new("RGB", (10, 10)).save(root / "images" / "notpng.png")
    Image.new("L", (10, 10)).save(root / "masks" / "notpng.png", "JPEG")
    (root / "images" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    Image.new("L", (10, 10)).save(root / "masks" / "broken.png")
    return {
        "masks/ghost.png": "mask without an image",
        "images/img3.png": "image without a mask",
        "masks/img4.png": "mask size differs from the image's",
        "masks/rgb.png": "bad mask",
        "masks/notpng.png": "bad mask",
        "images/broken.png": "unreadable image",
    }


def test_bad_pairs_are_listed_and_strict_refuses(tmp_path):
    truth = make(tmp_path)
    bad = _bad_pairs(tmp_path)
    with pytest.raises(ConversionError, match="--strict: 6 bad annotations") as refused:
        convert_segmentation(
            tmp_path / "images", tmp_path / "strict", masks=tmp_path / "masks", strict=True
        )
    for path, reason in bad.items():
        assert f"{tmp_path / path}: {reason}" in str(refused.value)
    assert "RGB pixels" in str(refused.value) and "not a PNG" in str(refused.value)
    assert not (tmp_path / "strict").exists()
    convert_segmentation(
        tmp_path / "images", tmp_path / "out", masks=tmp_path / "masks", quiet=True
    )
    skipped = {s["path"]: s["reason"] for s in manifest(tmp_path / "out")["source"]["skipped"]}
    assert skipped == {str(tmp_path / p): r for p, r in bad.items()}
    assert sorted(records(tmp_path / "out")) == sorted(set(truth) - {"img3.png", "img4.png"})


def test_cli(tmp_path, capsys):
    from tfrecord_tools.cli import main

    truth = make(tmp_path, count=4)
    (tmp_path / "classes.txt").write_text("a\nb\nc\nd\ne\n")
    args = ["convert", "segmentation", str(tmp_path / "images"), str(tmp_path / "out")]
    more = ["--masks", str(tmp_path / "masks"), "--classes", str(tmp_path / "classes.txt")]
    assert main([*args, *more, "--split", "train=0.5,val=0.5", "-q"]) == 0
    found = {**records(tmp_path / "out"), **records(tmp_path / "out", "val")}
    assert sorted(found) == sorted(truth)
    assert manifest(tmp_path / "out")["classes"] == ["a", "b", "c", "d", "e"]
    (tmp_path / "masks" / "img0.png").unlink()
    strict = ["convert", "segmentation", str(tmp_path / "images"), str(tmp_path / "strict")]
    assert main([*strict, "--masks", str(tmp_path / "masks"), "--strict", "-q"]) == 2
    assert "image without a mask" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        main(strict)  # --masks is required
    assert usage.value.code == 2


def test_memory_urls_give_what_local_folders_give(tmp_path, memory_bucket):
    make(tmp_path)
    for rel, _ in storage.walk_files(tmp_path):
        storage.put_file(tmp_path / rel, storage.join(memory_bucket, rel))
    out = storage.join(memory_bucket, "out")
    convert_segmentation(
        storage.join(memory_bucket, "images"),
        out,
        masks=storage.join(memory_bucket, "masks"),
        quiet=True,
    )
    convert_segmentation(
        tmp_path / "images", tmp_path / "out", masks=tmp_path / "masks", quiet=True
    )
    here, there = records(tmp_path / "out"), records(out)
    assert sorted(here) == sorted(there)
    for name, f in here.items():
        assert (f.encoded, f.segmentation) == (there[name].encoded, there[name].segmentation)
    assert manifest(out)["source"]["masks"] == storage.join(memory_bucket, "masks")


def test_a_changed_mask_is_not_a_finished_conversion(tmp_path):
    make(tmp_path, count=3)
    options = {"masks": tmp_path / "masks", "quiet": True}
    convert_segmentation(tmp_path / "images", tmp_path / "out", **options)
    again = convert_segmentation(tmp_path / "images", tmp_path / "out", **options)
    assert again.already_complete
    with Image.open(tmp_path / "masks" / "img0.png") as mask:
        size = mask.size
    Image.new("L", size).save(tmp_path / "masks" / "img0.png")  # all 0 now: a smaller file
    with pytest.raises(ConversionError, match="already holds a finished conversion"):
        convert_segmentation(tmp_path / "images", tmp_path / "out", **options)
    convert_segmentation(tmp_path / "images", tmp_path / "out", overwrite=True, **options)
    assert not decoded(records(tmp_path / "out")["img0.png"].segmentation).any()


def test_folders_without_images_or_masks(tmp_path):
    make(tmp_path, count=2)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConversionError, match=r"empty \(--masks\): no mask PNG"):
        convert_segmentation(tmp_path / "images", tmp_path / "out", masks=tmp_path / "empty")
    with pytest.raises(ConversionError, match=r"empty: no image"):
        convert_segmentation(tmp_path / "empty", tmp_path / "out", masks=tmp_path / "masks")
