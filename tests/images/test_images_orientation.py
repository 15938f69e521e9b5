"""EXIF orientation: JPEG and PNG bytes are stored unchanged with ``image/orientation`` (only
when it is not 1), re-encoded formats are stored upright, and both readers apply it by
default, as Pillow's ``ImageOps.exif_transpose`` does (the oracle here)."""

from __future__ import annotations

import io
import json
import shutil
import struct

import numpy as np
import pytest
from PIL import Image, ImageOps

from tfrecord_tools import convert_image_folder
from tfrecord_tools.convert.jobs import ShardResult
from tfrecord_tools.errors import TFRecordToolsError
from tfrecord_tools.format import example
from tfrecord_tools.format.framing import iter_records
from tfrecord_tools.format.manifest import ShardEntry
from tfrecord_tools.images.probe import exif_orientation, probe_image

tf = pytest.importorskip("tensorflow")
from tfrecord_tools.read import decode, orient  # noqa: E402
from tfrecord_tools.read.pipeline import make_dataset, make_raw_dataset  # noqa: E402

H, W = 6, 10  # not square: a quarter turn shows
PIXELS = np.random.default_rng(5).integers(0, 256, (H, W, 3), dtype=np.uint8)
ORIENTATIONS = range(1, 9)


def _exif(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[274] = orientation
    return exif


def _encode(fmt: str, orientation: int | None, **params) -> bytes:
    buffer = io.BytesIO()
    image = Image.fromarray(PIXELS)
    if orientation is not None and fmt == "TIFF":
        params["tiffinfo"] = {274: orientation}
    elif orientation is not None:
        params["exif"] = _exif(orientation)
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def jpeg(o: int | None) -> bytes:
    return _encode("JPEG", o, quality=95)


def png(o: int | None) -> bytes:
    return _encode("PNG", o)


def upright(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """What Pillow shows: ``exif_transpose`` of ``pixels`` tagged with ``orientation``."""
    image = Image.fromarray(pixels)
    image.info["exif"] = _exif(orientation).tobytes()
    return np.asarray(ImageOps.exif_transpose(image))


# --- probing ---------------------------------------------------------------------------------


@pytest.mark.parametrize("o", ORIENTATIONS)
@pytest.mark.parametrize("make", [jpeg, png], ids=["jpeg", "png"])
def test_jpeg_and_png_keep_their_bytes_and_report_the_orientation(make, o) -> None:
    data = make(o)
    assert Image.open(io.BytesIO(data)).getexif()[274] == o  # the input really carries it
    stored, info = probe_image(data)
    assert stored is data
    assert info.orientation == o and (info.height, info.width) == (H, W)  # the stored image


def test_no_exif_and_bad_exif_mean_upright() -> None:
    assert probe_image(jpeg(None))[1].orientation == 1
    assert probe_image(png(None))[1].orientation == 1
    assert exif_orientation(b"") == 1 and exif_orientation(b"XX\x00*\x00\x00\x00\x08") == 1
    for bad in (0, 9, 300):
        assert exif_orientation(_tiff_header("<", bad)) == 1


def _tiff_header(order: str, orientation: int, kind: int = 3) -> bytes:
    mark = b"II" if order == "<" else b"MM"
    value = struct.pack(order + ("H2x" if kind == 3 else "I"), orientation)
    entry = struct.pack(order + "HHI", 0x0112, kind, 1) + value
    return mark + struct.pack(order + "HI", 42, 8) + struct.pack(order + "H", 1) + entry + bytes(4)


def _jpeg_with_app1(tiff: bytes) -> bytes:
    data = jpeg(None)
    app1 = b"\xff\xe1" + struct.pack(">H", len(tiff) + 8) + b"Exif\x00\x00" + tiff
    return data[:2] + app1 + data[2:]


def test_exif_byte_orders_and_value_types() -> None:
    for order in "<>":
        for kind in (3, 4):
            data = _jpeg_with_app1(_tiff_header(order, 6, kind))
            assert probe_image(data)[1].orientation == 6, (order, kind)


@pytest.mark.parametrize("o", [2, 5, 6, 8])
@pytest.mark.parametrize("fmt", ["TIFF", "WEBP"])
def test_reencoded_formats_are_stored_upright(fmt, o) -> None:
    data = _encode(fmt, o, **({"lossless": True} if fmt == "WEBP" else {}))
    stored, info = probe_image(data)
    want = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"))
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(stored))), want)
    assert info.orientation == 1 and (info.height, info.width) == want.shape[:2]


# --- the record --------------------------------------------------------------------------------

FIELDS = {
    "encoded": b"\x89PNG...",
    "image_format": "png",
    "height": H,
    "width": W,
    "channels": 3,
    "label": 1,
    "text": "b",
    "filename": "b/x.png",
}


def test_the_key_is_written_only_when_not_1() -> None:
    upright_record = example.encode_example(**FIELDS)
    assert example.encode_example(**FIELDS, orientation=1) == upright_record
    assert example.ORIENTATION.encode() not in upright_record
    turned = example.encode_example(**FIELDS, orientation=6)
    assert example.decode_example(turned)[example.ORIENTATION] == ("int64", [6])
    parsed = tf.io.parse_single_example(turned, decode.parse_spec(orientation=True))
    assert int(parsed[example.ORIENTATION]) == 6 and int(parsed[example.HEIGHT]) == H
    parsed = tf.io.parse_single_example(upright_record, decode.parse_spec(orientation=True))
    assert int(parsed[example.ORIENTATION]) == 1
    with pytest.raises(ValueError, match="orientation"):
        example.encode_example(**FIELDS, orientation=9)


def test_shard_state_round_trips_and_leaves_out_an_empty_count() -> None:
    info = ShardEntry("x-train.tfrecord-00000-of-00001", 3, 10, "ab" * 32)
    plain = ShardResult(info, "train", shapes=[[6, 10, 3]])
    assert "orientations" not in plain.to_json()
    assert ShardResult.from_json(plain.to_json()) == plain
    turned = ShardResult(info, "train", shapes=[[6, 10, 3]], orientations={"6": 2})
    assert ShardResult.from_json(json.loads(json.dumps(turned.to_json()))) == turned


# --- conversion and readers --------------------------------------------------------------------

# class name -> file; one class per file so labels say which file an image came from.
# The TIFF comes last, so the raw folder (without it: TF reads no TIFF) has the same labels.
FILES = {f"j{o}": (f"j{o}.jpg", jpeg(o)) for o in ORIENTATIONS}
FILES |= {f"p{o}": (f"p{o}.png", png(o)) for o in ORIENTATIONS}
FILES |= {"t6": ("t6.tif", _encode("TIFF", 6))}


def _folder(root, *, tiff: bool = True):
    for name, (file, data) in FILES.items():
        if tiff or not file.endswith(".tif"):
            (root / name).mkdir()
            (root / name / file).write_bytes(data)
    return root


@pytest.fixture(scope="module")
def src(tmp_path_factory):
    return _folder(tmp_path_factory.mktemp("orient-src"), tiff=False)


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    src = _folder(tmp_path_factory.mktemp("orient-src-all"))
    out = tmp_path_factory.mktemp("orient-out")
    summary = convert_image_folder(src, out, shards=2, workers=1, quiet=True)
    assert not summary.skipped
    assert summary.orientations == {str(o): 2 for o in range(2, 9)}  # JPEG + PNG; TIFF upright
    return out


def _expected(orientation: bool = True) -> dict[int, np.ndarray]:
    """label -> the image the readers must give (channels 3, no resize)."""
    want = {}
    for label, (file, data) in enumerate(FILES.values()):
        if file.endswith(".tif"):
            want[label] = upright(PIXELS, 6)  # stored upright: the same with or without
            continue
        o = int(file[1])
        pixels = tf.io.decode_image(data, channels=3).numpy()  # what TF decodes, unturned
        want[label] = upright(pixels, o) if orientation else pixels
    return want


def _by_label(ds) -> dict[int, np.ndarray]:
    return {int(y): x.numpy() for x, y in ds}


def _assert_images(got: dict[int, np.ndarray], want: dict[int, np.ndarray]) -> None:
    assert sorted(got) == sorted(want)
    for label, image in want.items():
        np.testing.assert_array_equal(got[label], image, err_msg=list(FILES)[label])


def test_manifest_counts_orientations_and_lists_the_key(out) -> None:
    manifest = json.loads((out / "dataset.json").read_text())
    assert manifest["statistics"]["orientations"] == {str(o): 2 for o in range(2, 9)}
    assert manifest["features"][example.ORIENTATION] == "int64"
    seen, sizes = {}, {}
    for shard in sorted(out.glob("*.tfrecord-*-of-*[0-9]")):
        for record in iter_records(shard):
            features = example.decode_example(record.data)
            name = features[example.FILENAME][1][0].decode()
            if example.ORIENTATION in features:
                seen[name] = features[example.ORIENTATION][1][0]
            sizes[name] = features[example.HEIGHT][1] + features[example.WIDTH][1]
    # only the records that need it carry the key (not the TIFF, stored upright); sizes are
    # those of the stored images
    turned = {c: file for c, (file, _) in FILES.items() if c[0] != "t" and c[1] != "1"}
    assert seen == {f"{c}/{file}": int(c[1]) for c, file in turned.items()}
    assert sizes.pop("t6/t6.tif") == [W, H]
    assert set(map(tuple, sizes.values())) == {(H, W)}


def test_reader_applies_orientation_by_default(out) -> None:
    _assert_images(_by_label(make_dataset(out)), _expected())


def test_reader_can_leave_images_as_stored(out) -> None:
    _assert_images(_by_label(make_dataset(out, orientation=False)), _expected(orientation=False))


def test_batched_reader_orients_before_resizing(out) -> None:
    got = {}
    for x, y in make_dataset(out, batch_size=4, image_size=(8, 8)):
        got.update(zip(y.numpy().tolist(), x.numpy(), strict=True))
    want = {k: decode.resize(tf.constant(v), (8, 8)).numpy() for k, v in _expected().items()}
    _assert_images(got, want)


def test_raw_twin_applies_the_files_own_exif(src) -> None:
    want = {k: v for k, v in _expected().items() if k < len(FILES) - 1}
    _assert_images(_by_label(make_raw_dataset(src)), want)
    got = {}
    for x, y in make_raw_dataset(src, batch_size=4, image_size=(8, 8)):
        got.update(zip(y.numpy().tolist(), x.numpy(), strict=True))
    _assert_images(got, {k: decode.resize(tf.constant(v), (8, 8)).numpy() for k, v in want.items()})
    plain = {k: v for k, v in _expected(orientation=False).items() if k < len(FILES) - 1}
    _assert_images(_by_label(make_raw_dataset(src, orientation=False)), plain)


def test_graph_exif_parser_agrees_with_the_probe() -> None:
    samples = [data for _, data in FILES.values()] + [
        jpeg(None),
        png(None),
        _jpeg_with_app1(_tiff_header("<", 8)),
        _jpeg_with_app1(_tiff_header(">", 5, kind=4)),
        _jpeg_with_app1(_tiff_header("<", 42)),
        b"not an image",
        b"",
    ]
    want = []
    for data in samples:
        try:
            want.append(probe_image(data)[1].orientation if data[:1] in (b"\xff", b"\x89") else 1)
        except Exception:
            want.append(1)
    assert orient.exif_orientation(tf.constant(samples)).numpy().tolist() == want
    assert int(orient.exif_orientation(tf.constant(samples[5]))) == want[5]  # a scalar too


def test_without_a_manifest_the_key_is_read(out, tmp_path) -> None:
    shards = sorted(str(p) for p in out.glob("*.tfrecord-*-of-*[0-9]"))
    _assert_images(_by_label(make_dataset(shards)), _expected())


def test_a_manifest_without_orientations_means_the_key_is_not_parsed(out, tmp_path) -> None:
    """The fast path: a manifest that counts no orientation (every dataset of upright
    images) makes the reader skip the key. Shown by lying to it."""
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    manifest = json.loads((copy / "dataset.json").read_text())
    del manifest["statistics"]["orientations"]
    (copy / "dataset.json").write_text(json.dumps(manifest))
    _assert_images(_by_label(make_dataset(copy)), _expected(orientation=False))


def test_one_stored_shape_turned_a_quarter_gives_two_shapes(tmp_path) -> None:
    """All images are 6x10 as stored (the manifest's image_shape), but one is turned."""
    src = tmp_path / "src"
    for name, data in (("a", png(1)), ("b", png(6))):
        (src / name).mkdir(parents=True)
        (src / name / "x.png").write_bytes(data)
    convert_image_folder(src, tmp_path / "out", workers=1, quiet=True)
    manifest = json.loads((tmp_path / "out" / "dataset.json").read_text())
    assert manifest["image_shape"] == [H, W, 3]
    shapes = {int(y): tuple(x.shape) for x, y in make_dataset(tmp_path / "out")}
    assert shapes == {0: (H, W, 3), 1: (W, H, 3)}
    batches = list(make_dataset(tmp_path / "out", batch_size=2, image_size=(4, 4)))
    assert batches[0][0].shape == (2, 4, 4, 3)


def test_orientation_option_is_checked() -> None:
    with pytest.raises(TFRecordToolsError, match="orientation"):
        make_dataset("nowhere", orientation="yes")
