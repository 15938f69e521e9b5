"""Decode fewer pixels at conversion: ``--max-size`` (bounded longest side, JPEG stays JPEG)
and ``--encoding keep|png|raw|auto`` (raw uint8 pixels for small images)."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from tfrecord_tools import TFRecordToolsError, convert_image_folder
from tfrecord_tools.cli import main
from tfrecord_tools.sample import make_digits

from ..helpers import encode, read_dataset, smooth_rgb

ORIENTATION = 0x0112


def _exif(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    return exif.tobytes()


def _photo(rng: np.random.Generator, height: int, width: int) -> Image.Image:
    """Photo-like: smooth shapes in correlated colours and mild noise (``smooth_rgb``'s
    independent sawtooth channels are chroma detail that 4:2:0 JPEG cannot keep)."""
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    light = np.sin(x * rng.uniform(4, 9)) * np.cos(y * rng.uniform(3, 7)) * 80
    tint = np.array([rng.uniform(0.7, 1.1) for _ in range(3)])
    pixels = 128 + light[..., None] * tint + rng.normal(0, 6, (height, width, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


def _records(out: Path) -> dict[str, dict]:
    return {r["image/filename"].decode(): r for r in read_dataset(out)["train"]}


def _pixels(record: dict) -> np.ndarray:
    if record["image/format"] == b"raw":
        shape = (record["image/height"], record["image/width"], record["image/channels"])
        return np.frombuffer(record["image/encoded"], np.uint8).reshape(shape)
    return np.asarray(Image.open(io.BytesIO(record["image/encoded"])))


@pytest.fixture(scope="module")
def sized_folder(tmp_path_factory) -> Path:
    """Large and small JPEGs and PNGs, two turned by EXIF orientation 6, and a large BMP."""
    root = tmp_path_factory.mktemp("sized")
    rng = np.random.default_rng(3)
    (root / "a").mkdir()
    (root / "b").mkdir()
    photo = _photo(rng, 768, 1024)
    (root / "a" / "big.jpg").write_bytes(encode(photo, "JPEG", quality=90))
    tall = _photo(rng, 200, 400)  # stored 400x200, shown 200x400
    (root / "a" / "turned.jpg").write_bytes(encode(tall, "JPEG", quality=90, exif=_exif(6)))
    small = Image.fromarray(smooth_rgb(rng, 120, 90))
    (root / "a" / "small.jpg").write_bytes(encode(small, "JPEG", quality=90, exif=_exif(6)))
    (root / "b" / "big.png").write_bytes(encode(Image.fromarray(smooth_rgb(rng, 300, 500)), "PNG"))
    gray = Image.fromarray(smooth_rgb(rng, 100, 100)[..., 0])
    (root / "b" / "small.png").write_bytes(encode(gray, "PNG"))
    (root / "b" / "big.bmp").write_bytes(encode(Image.fromarray(smooth_rgb(rng, 50, 400)), "BMP"))
    return root


@pytest.fixture(scope="module")
def bounded(sized_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("bounded") / "out"
    summary = convert_image_folder(sized_folder, out, max_size=160, workers=1, quiet=True)
    return out, summary


def test_max_size_keeps_small_images_byte_for_byte(sized_folder, bounded):
    records = _records(bounded[0])
    for name in ("a/small.jpg", "b/small.png"):
        stored = hashlib.sha256(records[name]["image/encoded"]).hexdigest()
        assert stored == hashlib.sha256((sized_folder / name).read_bytes()).hexdigest(), name
    assert records["a/small.jpg"]["image/orientation"] == 6  # kept, as without --max-size


def test_max_size_resizes_large_images_to_the_exact_longest_side(sized_folder, bounded):
    records = _records(bounded[0])
    expect = {
        "a/big.jpg": ("jpeg", 120, 160),
        "a/turned.jpg": ("jpeg", 160, 80),  # upright: 200 wide, 400 high
        "b/big.png": ("png", 96, 160),
        "b/big.bmp": ("png", 20, 160),
    }
    for name, (fmt, height, width) in expect.items():
        r = records[name]
        assert r["image/format"].decode() == fmt, name
        assert (r["image/height"], r["image/width"]) == (height, width), name
        assert "image/orientation" not in r, name
        assert _pixels(r).shape[:2] == (height, width), name
        source = ImageOps.exif_transpose(Image.open(sized_folder / name))
        reference = np.asarray(source.resize((width, height), Image.Resampling.LANCZOS))
        assert _psnr(_pixels(r), reference) > 30, name


def test_max_size_in_the_manifest_and_the_summary(sized_folder, bounded):
    out, summary = bounded
    manifest = json.loads((out / "dataset.json").read_text())
    records = _records(out)
    resized = ["a/big.jpg", "a/turned.jpg", "b/big.png", "b/big.bmp"]
    assert manifest["max_size"] == {
        "size": 160,
        "quality": 90,
        "resized": 4,
        "bytes_before": sum((sized_folder / n).stat().st_size for n in resized),
        "bytes_after": sum(len(records[n]["image/encoded"]) for n in resized),
    }
    assert manifest["statistics"]["orientations"] == {"6": 1}  # only the small one keeps it
    assert summary.max_size == manifest["max_size"]
    assert "max size 160: 4 of 6 resized (JPEG q90)" in summary.format_table()
    assert "encoding" not in manifest


def test_default_conversion_has_no_new_manifest_keys(sized_folder, tmp_path):
    convert_image_folder(sized_folder, tmp_path / "out", workers=1, quiet=True)
    manifest = json.loads((tmp_path / "out" / "dataset.json").read_text())
    assert not {"max_size", "encoding", "encoding_asked"} & set(manifest)
    assert _records(tmp_path / "out")["a/big.jpg"]["image/width"] == 1024


def test_quality_is_the_jpeg_quality(sized_folder, tmp_path):
    convert_image_folder(sized_folder, tmp_path / "q", max_size=160, quality=40, quiet=True)
    low = len(_records(tmp_path / "q")["a/big.jpg"]["image/encoded"])
    convert_image_folder(sized_folder, tmp_path / "h", max_size=160, quality=95, quiet=True)
    assert low < len(_records(tmp_path / "h")["a/big.jpg"]["image/encoded"])


def test_the_fingerprint_changes_with_max_size_and_quality(sized_folder, tmp_path):
    out = tmp_path / "out"
    convert_image_folder(sized_folder, out, max_size=160, workers=1, quiet=True)
    again = convert_image_folder(sized_folder, out, max_size=160, workers=1, quiet=True)
    assert again.already_complete and again.max_size["resized"] == 4
    for other in ({"max_size": 200}, {"max_size": 160, "quality": 80}, {}):
        with pytest.raises(TFRecordToolsError, match="--overwrite"):
            convert_image_folder(sized_folder, out, workers=1, quiet=True, **other)
    redone = convert_image_folder(sized_folder, out, max_size=200, overwrite=True, quiet=True)
    assert not redone.already_complete and redone.max_size["size"] == 200


@pytest.fixture(scope="module")
def modes_folder(tmp_path_factory) -> Path:
    """PNGs of every common mode, a JPEG, one turned JPEG: sizes differ."""
    root = tmp_path_factory.mktemp("modes")
    rng = np.random.default_rng(5)
    (root / "x").mkdir()
    rgb = Image.fromarray(smooth_rgb(rng, 20, 30))
    (root / "x" / "rgb.png").write_bytes(encode(rgb, "PNG"))
    (root / "x" / "gray.png").write_bytes(encode(rgb.convert("L"), "PNG"))
    (root / "x" / "rgba.png").write_bytes(encode(rgb.convert("RGBA"), "PNG"))
    (root / "x" / "palette.png").write_bytes(encode(rgb.convert("P"), "PNG"))
    (root / "x" / "photo.jpg").write_bytes(encode(rgb, "JPEG", quality=90))
    turned = Image.fromarray(smooth_rgb(rng, 12, 16))
    (root / "x" / "turned.jpg").write_bytes(encode(turned, "JPEG", exif=_exif(8)))
    return root


def test_raw_round_trip_equals_the_decoded_sources(modes_folder, tmp_path):
    summary = convert_image_folder(modes_folder, tmp_path / "out", encoding="raw", quiet=True)
    records = _records(tmp_path / "out")
    expect = {"rgb.png": "RGB", "gray.png": "L", "rgba.png": "RGBA", "palette.png": "RGB"}
    expect |= {"photo.jpg": "RGB", "turned.jpg": "RGB"}
    for name, mode in expect.items():
        r = records[f"x/{name}"]
        assert r["image/format"] == b"raw" and "image/orientation" not in r
        source = ImageOps.exif_transpose(Image.open(modes_folder / "x" / name)).convert(mode)
        want = np.asarray(source).reshape(source.height, source.width, -1)
        np.testing.assert_array_equal(_pixels(r), want, err_msg=name)
    manifest = json.loads((tmp_path / "out" / "dataset.json").read_text())
    assert manifest["statistics"]["image_formats"] == {"raw": 6}
    assert manifest["encoding"] == "raw" and "encoding_asked" not in manifest
    assert "image_shape" not in manifest  # sizes differ
    assert "encoding: raw" in summary.format_table()


def test_png_encoding_makes_every_image_png(modes_folder, tmp_path):
    convert_image_folder(modes_folder, tmp_path / "out", encoding="png", quiet=True)
    records = _records(tmp_path / "out")
    assert {r["image/format"] for r in records.values()} == {b"png"}
    source = (modes_folder / "x" / "rgb.png").read_bytes()
    assert records["x/rgb.png"]["image/encoded"] == source  # PNGs stay as they are
    turned = records["x/turned.jpg"]
    assert (turned["image/height"], turned["image/width"]) == (16, 12)
    want = ImageOps.exif_transpose(Image.open(modes_folder / "x" / "turned.jpg"))
    np.testing.assert_array_equal(_pixels(turned), np.asarray(want))
    manifest = json.loads((tmp_path / "out" / "dataset.json").read_text())
    assert manifest["statistics"]["converted_from"] == {"jpeg": 2}


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> Path:
    return make_digits(tmp_path_factory.mktemp("digits") / "src", count=30)


def test_auto_picks_raw_for_small_images_of_one_shape(digits, tmp_path):
    convert_image_folder(digits, tmp_path / "out", encoding="auto", quiet=True)
    manifest = json.loads((tmp_path / "out" / "dataset.json").read_text())
    assert manifest["encoding"] == "raw" and manifest["encoding_asked"] == "auto"
    assert manifest["image_shape"] == [28, 28, 1]
    assert manifest["statistics"]["image_formats"] == {"raw": 30}
    first = read_dataset(tmp_path / "out")["train"][0]
    source = np.asarray(Image.open(digits / first["image/filename"].decode()))
    np.testing.assert_array_equal(_pixels(first)[..., 0], source)


def test_auto_keeps_mixed_sizes(modes_folder, tmp_path):
    convert_image_folder(modes_folder, tmp_path / "out", encoding="auto", quiet=True)
    manifest = json.loads((tmp_path / "out" / "dataset.json").read_text())
    assert manifest["encoding"] == "keep" and manifest["encoding_asked"] == "auto"
    assert "raw" not in manifest["statistics"]["image_formats"]


def test_auto_with_max_size_decides_on_the_stored_shape(tmp_path):
    (tmp_path / "src" / "a").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(3):
        image = Image.fromarray(smooth_rgb(rng, 200, 200))
        (tmp_path / "src" / "a" / f"{i}.png").write_bytes(encode(image, "PNG"))
    convert_image_folder(tmp_path / "src", tmp_path / "out", encoding="auto", max_size=32)
    manifest = json.loads((tmp_path / "out" / "dataset.json").read_text())
    assert manifest["encoding"] == "raw" and manifest["image_shape"] == [32, 32, 3]
    assert manifest["max_size"]["resized"] == 3


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_size": 0}, r"max_size \(--max-size\) must be a whole number of pixels >= 1"),
        ({"max_size": -3}, "got -3"),
        ({"quality": 0}, r"quality \(--quality\) must be a JPEG quality 1..100, got 0"),
        ({"quality": 101}, "got 101"),
        ({"encoding": "jpeg"}, "encoding must be one of keep, png, raw, auto, got 'jpeg'"),
    ],
)
def test_bad_options_are_errors_with_a_message(sized_folder, tmp_path, options, message):
    with pytest.raises(TFRecordToolsError, match=message):
        convert_image_folder(sized_folder, tmp_path / "out", quiet=True, **options)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--max-size", "0"], "max_size (--max-size) must be"),
        (["--quality", "101"], "quality (--quality) must be"),
        (["--quality", "0"], "got 0"),
    ],
)
def test_cli_bad_values_exit_2(sized_folder, tmp_path, capsys, flags, message):
    assert main(["convert", "images", str(sized_folder), str(tmp_path / "o"), *flags]) == 2
    assert message in capsys.readouterr().err


def test_cli_unknown_encoding_exits_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["convert", "images", "a", "b", "--encoding", "webp"])
    assert info.value.code == 2
    assert "invalid choice: 'webp'" in capsys.readouterr().err


def test_cli_flags_reach_the_library(monkeypatch, tmp_path):
    import tfrecord_tools.convert.api as api

    seen = {}

    class Done:
        def format_table(self) -> str:
            return ""

    def fake(src, out, **kwargs):
        seen.update(kwargs)
        return Done()

    monkeypatch.setattr(api, "convert_image_folder", fake)
    argv = ["convert", "images", "s", "o", "--max-size", "320", "--quality", "80", "-q"]
    assert main([*argv, "--encoding", "auto"]) == 0
    assert (seen["max_size"], seen["quality"], seen["encoding"]) == (320, 80, "auto")
    assert main(["convert", "images", "s", "o", "-q"]) == 0
    assert (seen["max_size"], seen["quality"], seen["encoding"]) == (None, 90, "keep")


def test_make_dataset_reads_a_raw_folder(digits, tmp_path):
    from tfrecord_tools import make_dataset

    convert_image_folder(digits, tmp_path / "out", encoding="raw", quiet=True)
    stored = [_pixels(r) for r in read_dataset(tmp_path / "out")["train"]]
    got = list(make_dataset(tmp_path / "out", channels=1).as_numpy_iterator())
    assert len(got) == 30
    for (image, _label), expected in zip(got, stored, strict=True):
        np.testing.assert_array_equal(image, expected)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_max_size_keeps_an_upright_images_aspect_for_every_orientation(tmp_path, orientation):
    """A 40x20 (width x height) landscape JPEG shown as EXIF ``orientation`` says, bounded
    to 20: stored upright, its shown sides halved (2-4 mirror or turn it half way, keeping
    them; 5-8 turn it a quarter, swapping them)."""
    src = tmp_path / "src" / "a"
    src.mkdir(parents=True)
    _photo(np.random.default_rng(orientation), 20, 40).save(
        src / "x.jpg", quality=95, exif=_exif(orientation)
    )
    convert_image_folder(tmp_path / "src", tmp_path / "out", workers=1, quiet=True, max_size=20)
    record = _records(tmp_path / "out")["a/x.jpg"]
    shown = (40, 20) if orientation >= 5 else (20, 40)  # (height, width) as shown
    stored = (record["image/height"], record["image/width"])
    assert stored == (shown[0] // 2, shown[1] // 2)
    assert _pixels(record).shape[:2] == stored
