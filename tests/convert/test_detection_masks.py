"""COCO masks, keypoints and per-split files through ``convert coco``: polygons and both
run-length forms come back (decoded from the stored PNGs, parsed without TensorFlow) equal
to the truth, also resized by ``--max-size`` and on an EXIF-turned JPEG; keypoints are
normalised, filled up and turned; bad masks are listed, and refused with ``strict``.

The truth is made here with code of its own: pixel-centre point-in-polygon (PNPOLY) for
polygons, and pycocotools' ``rleToString`` rewritten for the compressed counts."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.convert.test_detection_convert import truth, write_coco
from tfrecord_tools.access.source import TFRecordDataSource
from tfrecord_tools.convert.sources.annotated import convert_coco
from tfrecord_tools.convert.sources.coco import rle_counts
from tfrecord_tools.errors import ConversionError
from tfrecord_tools.format.detection import MASK, parse_detection

TRUTH = truth(5, seed=11)
UPRIGHT = {3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_270}
UPRIGHT[8] = Image.Transpose.ROTATE_90


# --------------------------------------------------------------------------- the truth


def inside(rings: list[list[float]], height: int, width: int) -> np.ndarray:
    """PNPOLY at each pixel's centre, the rings OR-ed."""
    out = np.zeros((height, width), np.uint8)
    for ring in rings:
        xs, ys = ring[0::2], ring[1::2]
        n = len(xs)
        for r in range(height):
            py = r + 0.5
            for c in range(width):
                px, hit, j = c + 0.5, False, n - 1
                for i in range(n):
                    if (ys[i] > py) != (ys[j] > py) and px < (xs[j] - xs[i]) * (py - ys[i]) / (
                        ys[j] - ys[i]
                    ) + xs[i]:
                        hit = not hit
                    j = i
                if hit:
                    out[r, c] = 1
    return out


def runs(mask: np.ndarray) -> list[int]:
    """COCO's uncompressed counts: runs of 0 and 1 (0 first) down the columns."""
    flat = mask.T.ravel()
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = [0, *change.tolist(), len(flat)]
    counts = np.diff(bounds).tolist()
    return [0, *counts] if flat[0] == 1 else counts


def rle_string(counts: list[int]) -> str:
    """pycocotools' rleToString, line for line."""
    out = []
    for i, x in enumerate(counts):
        if i > 2:
            x -= counts[i - 2]
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = x != -1 if c & 0x10 else x != 0
            if more:
                c |= 0x20
            out.append(chr(c + 48))
    return "".join(out)


def shapes(images: list[dict], seed: int = 0) -> list[list[tuple[object, np.ndarray]]]:
    """Per image, per box: (its COCO segmentation, the truth mask). Boxes take turns:
    a polygon (a second ring on some, some points past the image's edge), uncompressed
    run lengths, compressed run lengths."""
    rng = np.random.default_rng(seed)
    made, k = [], 0
    for im in images:
        h, w = im["height"], im["width"]
        per_box = []
        for x0, y0, x1, y1, _ in im["boxes"]:
            form = k % 3
            k += 1
            if form == 0:
                ring = []
                for angle in np.linspace(0, 2 * np.pi, 6, endpoint=False):
                    rx, ry = (x1 - x0) / 2 * rng.uniform(0.6, 1.3), (y1 - y0) / 2
                    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
                    ring += [round(cx + rx * np.cos(angle), 2), round(cy + ry * np.sin(angle), 2)]
                rings = [ring]
                if k % 2:
                    rings.append([x0 - 3.2, y0 - 2.7, x0 + 2.4, y0 - 2.7, x0 - 0.6, y0 + 3.1])
                per_box.append((rings, inside(rings, h, w)))
                continue
            mask = (rng.random((h, w)) < 0.3).astype(np.uint8)
            mask[:, :x0] = 0
            mask[: y0 // 2] = 0
            counts = runs(mask)
            counts_form = counts if form == 1 else rle_string(counts)
            per_box.append(({"counts": counts_form, "size": [h, w]}, mask))
        made.append(per_box)
    return made


def write_masked_coco(src: Path, images: list[dict], seed: int = 0):
    """The COCO file of ``images`` with a segmentation per box; the truth masks."""
    ann = write_coco(src, images)
    data = json.loads(ann.read_text())
    truths = shapes(images, seed)
    flat = [s for per_image in truths for s in per_image]
    for a, (segmentation, _) in zip(data["annotations"], flat, strict=True):
        a["segmentation"] = segmentation
        a["iscrowd"] = int(isinstance(segmentation, dict))
    ann.write_text(json.dumps(data))
    return ann, {im["name"]: [m for _, m in t] for im, t in zip(images, truths, strict=True)}


def records(out: Path, split: str = "train") -> dict:
    """TF-free: file name -> parsed fields."""
    src = TFRecordDataSource(out, split=split, task="detection")
    fields = [parse_detection(src.read_record(i)[0]) for i in range(len(src))]
    return {Path(f.filename).name: f for f in fields}


def decoded(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG" and image.mode in ("1", "L")
        return np.asarray(image).astype(np.uint8)


def nearest(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    (h, w), (height, width) = mask.shape, size
    return mask[(2 * np.arange(height) + 1) * h // (2 * height)][
        :, (2 * np.arange(width) + 1) * w // (2 * width)
    ]


# --------------------------------------------------------------------------- masks


def test_the_compressed_counts_decode_as_pycocotools_writes_them():
    # worked by hand from rleToString: 5, 4, 5 as they are; 2 - 4 = -2 -> 'N' (sign bit)
    assert rle_counts("545N") == [5, 4, 5, 2]
    counts = [0, 7, 300, 2, 1, 40_000, 3]
    assert rle_counts(rle_string(counts)) == counts
    with pytest.raises(ValueError, match="ends inside"):
        rle_counts("5" + chr(48 + 0x20))
    with pytest.raises(ValueError, match="alphabet"):
        rle_counts("5 4")


@pytest.mark.parametrize("max_size", [None, 30])
def test_masks_from_polygons_and_run_lengths_equal_the_truth(tmp_path, max_size):
    src = tmp_path / "src"
    ann, want = write_masked_coco(src, TRUTH)
    convert_coco(src, tmp_path / "out", annotations=ann, masks=True, max_size=max_size, quiet=True)
    got = records(tmp_path / "out")
    for im in TRUTH:
        f = got[im["name"]]
        assert len(f.masks) == len(im["boxes"]) == len(f.labels)
        for png, mask in zip(f.masks, want[im["name"]], strict=True):
            stored = decoded(png)
            assert stored.shape == (f.height, f.width)
            np.testing.assert_array_equal(stored, nearest(mask, (f.height, f.width)))
            assert max_size is None or stored.shape != mask.shape  # resized when asked
    manifest = json.loads((tmp_path / "out" / "dataset.json").read_text())
    assert manifest["features"][MASK] == "bytes[]"
    assert manifest["source"]["dropped_objects"] == []


def test_without_masks_nothing_changes(tmp_path):
    src = tmp_path / "src"
    ann, _ = write_masked_coco(src, TRUTH)
    data = json.loads(ann.read_text())
    data["annotations"][0]["segmentation"] = {"counts": "!!", "size": [1, 1]}  # not read
    ann.write_text(json.dumps(data))
    convert_coco(src, tmp_path / "plain", annotations=ann, quiet=True)
    plain = write_coco(tmp_path / "src2", TRUTH)
    convert_coco(tmp_path / "src2", tmp_path / "none", annotations=plain, quiet=True)
    a, b = records(tmp_path / "plain"), records(tmp_path / "none")
    assert all(f.masks == [] for f in a.values())
    assert {n: (f.boxes, f.labels) for n, f in a.items()} == {
        n: (f.boxes, f.labels) for n, f in b.items()
    }
    manifest = json.loads((tmp_path / "plain" / "dataset.json").read_text())
    assert MASK not in manifest["features"]


def _exif_jpeg(path: Path, orientation: int) -> None:
    pixels = np.zeros((40, 60, 3), np.uint8)  # 60 wide, 40 high on disk
    pixels[4:20, 30:55] = (230, 40, 40)
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(pixels).save(path, "JPEG", quality=95, exif=exif)


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_masks_and_keypoints_turn_with_an_image_stored_upright(tmp_path, orientation):
    src = tmp_path / "src"
    src.mkdir()
    _exif_jpeg(src / "a.jpg", orientation)
    ring = [30.2, 4.1, 54.8, 6.3, 49.7, 19.6, 33.4, 15.2]
    mask = inside([ring], 40, 60)
    data = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 60, "height": 40}],
        "categories": [{"id": 1, "name": "red", "keypoints": ["corner", "middle"]}],
        "annotations": [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 1,
                "bbox": [30, 4, 25, 16],
                "segmentation": [ring],
                "keypoints": [30.5, 4.5, 2, 42.5, 12.5, 1],
            }
        ],
    }
    ann = tmp_path / "a.json"
    ann.write_text(json.dumps(data))
    expected = {}
    for form, options in (
        ("as_is", {}),
        ("upright", {"encoding": "png"}),
        ("small", {"max_size": 30}),
    ):
        convert_coco(src, tmp_path / form, annotations=ann, masks=True, quiet=True, **options)
        f = records(tmp_path / form)["a.jpg"]
        stored = decoded(f.masks[0])
        if form == "as_is":  # kept with its EXIF orientation: the mask as on disk
            assert f.orientation == orientation
            np.testing.assert_array_equal(stored, mask)
            expected["points"] = [(30.5 / 60, 4.5 / 40, 2), (42.5 / 60, 12.5 / 40, 1)]
            np.testing.assert_allclose(f.keypoints, expected["points"], atol=1e-6)
            continue
        assert f.orientation == 1
        turned = np.asarray(Image.fromarray(mask).transpose(UPRIGHT[orientation]))
        np.testing.assert_array_equal(stored, nearest(turned, (f.height, f.width)))
        # each keypoint's pixel, found again in the turned mask of that pixel alone
        for (x, y, v), (px, py, _) in zip(f.keypoints, [(30, 4, 2), (42, 12, 1)], strict=True):
            marked = np.zeros((40, 60), np.uint8)
            marked[py, px] = 1
            qy, qx = np.argwhere(
                np.asarray(Image.fromarray(marked).transpose(UPRIGHT[orientation]))
            )[0]
            h, w = turned.shape
            assert (x, y) == pytest.approx(((qx + 0.5) / w, (qy + 0.5) / h), abs=1e-6)
            assert v in (1, 2)
        ymin, xmin, ymax, xmax = f.boxes[0]  # the box holds the turned mask
        ys, xs = np.nonzero(turned)
        h, w = turned.shape
        assert xmin - 1e-6 <= xs.min() / w and (xs.max() + 1) / w <= xmax + 1e-6
        assert ymin - 1e-6 <= ys.min() / h and (ys.max() + 1) / h <= ymax + 1e-6


# --------------------------------------------------------------------------- keypoints


def test_keypoints_are_normalised_and_every_object_has_k_of_them(tmp_path):
    im = TRUTH[0]
    src = tmp_path / "src"
    ann = write_coco(src, [im])
    data = json.loads(ann.read_text())
    data["categories"][0]["keypoints"] = ["left", "right"]
    first = data["annotations"][0]
    first["category_id"] = data["categories"][0]["id"]
    first["keypoints"] = [3, 4, 2, 10.5, 6, 1]
    for other in data["annotations"][1:]:
        other.pop("keypoints", None)  # none: two (0, 0, 0) points
    ann.write_text(json.dumps(data))
    convert_coco(src, tmp_path / "out", annotations=ann, quiet=True)
    f = records(tmp_path / "out")[im["name"]]
    w, h = im["width"], im["height"]
    n = len(im["boxes"])
    want = [(3 / w, 4 / h, 2), (10.5 / w, 6 / h, 1)] + [(0.0, 0.0, 0)] * 2 * (n - 1)
    np.testing.assert_allclose(f.keypoints, want, atol=1e-6)
    manifest = json.loads((tmp_path / "out" / "dataset.json").read_text())
    assert manifest["features"]["image/object/keypoint/visibility"] == "int64[]"
    sample = TFRecordDataSource(tmp_path / "out", task="detection")[0]
    assert sample["keypoints"].shape == (n, 2, 3)


# --------------------------------------------------------------------------- bad masks


def _one_bad(change):
    def edit(data):
        change(data["annotations"][0])

    return edit


BAD_MASKS = {
    "run lengths of size": _one_bad(
        lambda a: a.update(segmentation={"counts": [2, 2], "size": [2, 2]})
    ),
    "fewer than 3": _one_bad(lambda a: a.update(segmentation=[[1, 1, 5, 5]])),
    "not [x, y, x, y": _one_bad(lambda a: a.update(segmentation=[[1, 1, 5, 5, 3]])),
    "not one of its alphabet": _one_bad(
        lambda a: a.update(segmentation={"counts": "5 4", "size": [2, 2]})
    ),
    "cover 3 pixels": _one_bad(lambda a: a.update(segmentation={"counts": [1, 2], "size": [2, 2]})),
    "negative run": _one_bad(lambda a: a.update(segmentation={"counts": [5, -1], "size": [2, 2]})),
    "no segmentation": _one_bad(lambda a: a.pop("segmentation")),
    "neither polygons nor run lengths": _one_bad(lambda a: a.update(segmentation="x")),
}


@pytest.mark.parametrize("detail", list(BAD_MASKS))
def test_bad_masks_are_listed_and_strict_refuses(tmp_path, detail):
    src = tmp_path / "src"
    ann, want = write_masked_coco(src, TRUTH)
    data = json.loads(ann.read_text())
    BAD_MASKS[detail](data)
    ann.write_text(json.dumps(data))
    with pytest.raises(ConversionError, match="--strict") as refused:
        convert_coco(src, tmp_path / "strict", annotations=ann, masks=True, strict=True, quiet=True)
    assert "annotations[0]: bad mask" in str(refused.value) and detail in str(refused.value)
    convert_coco(src, tmp_path / "out", annotations=ann, masks=True, quiet=True)
    dropped = json.loads((tmp_path / "out" / "dataset.json").read_text())["source"]
    assert [(d["reason"], detail in d["detail"]) for d in dropped["dropped_objects"]] == [
        ("bad mask", True)
    ]
    f = records(tmp_path / "out")[TRUTH[0]["name"]]
    assert len(f.masks) == len(f.labels) == len(TRUTH[0]["boxes"]) - 1  # the object is gone
    for png, mask in zip(f.masks, want[TRUTH[0]["name"]][1:], strict=True):
        np.testing.assert_array_equal(decoded(png), mask)


def test_cli_masks_and_strict_exit_codes(tmp_path, capsys):
    from tfrecord_tools.cli import main

    src = tmp_path / "src"
    ann, want = write_masked_coco(src, TRUTH)
    args = ["convert", "coco", str(src), str(tmp_path / "out"), "--annotations", str(ann)]
    assert main([*args, "--masks", "-q"]) == 0
    got = records(tmp_path / "out")
    np.testing.assert_array_equal(
        decoded(got[TRUTH[1]["name"]].masks[0]), want[TRUTH[1]["name"]][0]
    )
    data = json.loads(ann.read_text())
    data["annotations"][0]["segmentation"] = [[1, 1, 2, 2]]
    ann.write_text(json.dumps(data))
    strict = ["convert", "coco", str(src), str(tmp_path / "strict"), "--annotations", str(ann)]
    assert main([*strict, "--masks", "--strict", "-q"]) == 2
    assert "bad mask" in capsys.readouterr().err
    assert main([*strict, "--strict", "-q"]) == 0  # without --masks the polygon is not read


# --------------------------------------------------------------------------- one file a split


def _split_files(tmp_path: Path) -> tuple[Path, dict[str, Path]]:
    """TRUTH[:3] in train.json, TRUTH[3:] in val.json, one image folder."""
    src = tmp_path / "src"
    files = {}
    for split, part in (("train", TRUTH[:3]), ("val", TRUTH[3:])):
        written = write_coco(src, part)
        files[split] = written.rename(tmp_path / f"{split}.json")
    return src, files


def test_one_coco_file_a_split(tmp_path):
    src, files = _split_files(tmp_path)
    convert_coco(src, tmp_path / "out", annotations=files, quiet=True)
    assert sorted(records(tmp_path / "out")) == sorted(im["name"] for im in TRUTH[:3])
    assert sorted(records(tmp_path / "out", "val")) == sorted(im["name"] for im in TRUTH[3:])
    manifest = json.loads((tmp_path / "out" / "dataset.json").read_text())
    assert manifest["source"]["annotations"] == {s: str(f) for s, f in files.items()}
    assert manifest["source"]["category_ids"] == {"3": 1, "7": 2, "42": 3}
    assert list(manifest["splits"]) == ["train", "val"]


def test_split_files_must_agree_on_categories(tmp_path):
    src, files = _split_files(tmp_path)
    data = json.loads(files["val"].read_text())
    data["categories"][1]["name"] = "box"
    files["val"].write_text(json.dumps(data))
    with pytest.raises(ConversionError) as refused:
        convert_coco(src, tmp_path / "out", annotations=files, quiet=True)
    message = str(refused.value)
    assert str(files["train"]) in message and str(files["val"]) in message
    assert "'box' only in the second" in message
    assert not (tmp_path / "out").exists()


def test_cli_split_files(tmp_path, capsys):
    from tfrecord_tools.cli import main

    src, files = _split_files(tmp_path)
    base = ["convert", "coco", str(src), str(tmp_path / "out"), "-q"]
    given = [a for split, f in files.items() for a in ("--annotations", f"{split}={f}")]
    assert main([*base, *given]) == 0
    assert sorted(records(tmp_path / "out", "val")) == sorted(im["name"] for im in TRUTH[3:])
    mixed = ["--annotations", str(files["train"]), "--annotations", f"val={files['val']}"]
    assert main([*base[:3], str(tmp_path / "out2"), "-q", *mixed]) == 2
    assert "each must be SPLIT=FILE" in capsys.readouterr().err
    twice = ["--annotations", f"val={files['train']}", "--annotations", f"val={files['val']}"]
    assert main([*base[:3], str(tmp_path / "out3"), "-q", *twice]) == 2
    assert "given twice" in capsys.readouterr().err


def test_a_changed_mask_is_not_a_finished_conversion(tmp_path):
    src = tmp_path / "src"
    ann, _ = write_masked_coco(src, TRUTH)
    options = {"annotations": ann, "masks": True, "quiet": True}
    convert_coco(src, tmp_path / "out", **options)
    assert convert_coco(src, tmp_path / "out", **options).already_complete
    data = json.loads(ann.read_text())
    data["annotations"][0]["segmentation"] = [[1, 1, 9, 1, 5, 7]]  # the box stays
    ann.write_text(json.dumps(data))
    with pytest.raises(ConversionError, match="already holds a finished conversion"):
        convert_coco(src, tmp_path / "out", **options)
