"""tfrecord_tools.access: TFRecordDataSource (random access, batches, stream) against the
tf.data reader, in a process that imported TensorFlow first."""

from __future__ import annotations

import hashlib
import pickle
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")  # first: the source must live beside TensorFlow

from tfrecord_tools import TFRecordDataSource, convert_image_folder, convert_mnist  # noqa: E402
from tfrecord_tools.access import decode  # noqa: E402
from tfrecord_tools.access.decode import image_kind  # noqa: E402
from tfrecord_tools.access.parse import (  # noqa: E402
    parse_image_example,
    parse_image_example_pure,
)
from tfrecord_tools.errors import TFRecordToolsError  # noqa: E402
from tfrecord_tools.format.framing import frame, iter_records  # noqa: E402
from tfrecord_tools.read.pipeline import make_dataset  # noqa: E402

from ..conftest import GOOD_PER_CLASS, make_mnist  # noqa: E402

N_GOOD = sum(GOOD_PER_CLASS.values())


@pytest.fixture(scope="module")
def photos(image_folder, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("photos")
    convert_image_folder(image_folder, out, shards=3, workers=1, quiet=True)
    return out


@pytest.fixture(scope="module")
def mnist_src(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("mnist_src")
    make_mnist(src, n_train=70, n_test=9)
    return src


@pytest.fixture(scope="module", params=["raw", "png"])
def digits(request, mnist_src, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp(f"digits_{request.param}")
    convert_mnist(mnist_src, out, encoding=request.param, shards=4, workers=1, quiet=True)
    return out


def _digest(image) -> str:
    return hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest()


def _kinds(folder: Path) -> list[str]:
    src = TFRecordDataSource(folder)
    return [image_kind(parse_image_example(src.read_record(i)[0])) for i in range(len(src))]


def test_every_record_by_index_equals_make_dataset(photos):
    src = TFRecordDataSource(photos)
    want = list(make_dataset(photos).as_numpy_iterator())
    assert len(src) == len(want) == N_GOOD
    kinds = _kinds(photos)
    assert {"jpeg", "png"} <= set(kinds)
    for i, ((image, label), kind) in enumerate(zip(want, kinds, strict=True)):
        got, got_label = src[i]
        assert got_label == label and got.dtype == np.uint8 and got.shape == image.shape, i
        diff = np.abs(got.astype(int) - image.astype(int))
        if kind == "jpeg" and decode.simplejpeg is None:
            # Pillow's IDCT is libjpeg's accurate one, tf.io.decode_jpeg's the fast integer
            # one: the same decoder then, up to the last bit
            assert diff.max() <= 8 and diff.mean() < 2, (i, diff.max(), diff.mean())
            accurate = tf.io.decode_jpeg(
                parse_image_example(src.read_record(i)[0]).encoded,
                channels=3,
                dct_method="INTEGER_ACCURATE",
            ).numpy()
            assert np.abs(got.astype(int) - accurate.astype(int)).max() <= 1, i
        else:  # PNG and raw always; JPEG with simplejpeg's fast IDCT, TensorFlow's default
            assert diff.max() == 0, (i, kind)


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_digits_are_exact_for_every_channel_count(digits, channels):
    src = TFRecordDataSource(digits, channels=channels)
    want = list(make_dataset(digits, channels=channels).as_numpy_iterator())
    assert len(src) == len(want) == 70
    for i, (image, label) in enumerate(want):
        got, got_label = src[i]
        assert got_label == label and np.array_equal(got, image), i
    assert src[-1][1] == want[-1][1]
    with pytest.raises(IndexError):
        src[len(src)]


def test_resized_images_are_close_to_make_dataset(photos):
    src = TFRecordDataSource(photos, image_size=(12, 16))
    want = list(make_dataset(photos, image_size=(12, 16), batch_size=64).unbatch())
    for i, (image, label) in enumerate(want):
        got, got_label = src[i]
        assert got.shape == (12, 16, 3) and got_label == int(label)
        # with OpenCV (the fast extra) the resize is TensorFlow's, the JPEG decoders differ
        # by a step; Pillow's bilinear (the fallback) antialiases when shrinking
        limit = 3 if decode.cv2 is not None else 24
        assert np.abs(got.astype(int) - image.numpy().astype(int)).mean() < limit, i


def test_resize_is_tensorflows_bilinear_with_the_fast_extra():
    """OpenCV's bilinear against tf.image.resize (half-pixel centres, no antialias), down
    and up, gray and RGB: within one step after rounding."""
    if decode.cv2 is None:
        pytest.skip("opencv-python-headless (the fast extra) is not installed")
    rng = np.random.default_rng(0)
    cases = [((375, 500, 3), (224, 224)), ((28, 28, 1), (12, 16)), ((9, 7, 3), (20, 30))]
    for shape, size in cases:
        image = rng.integers(0, 256, shape, dtype=np.uint8)
        want = np.clip(np.rint(tf.image.resize(image[None], size)[0].numpy()), 0, 255)
        got = decode.resize(image, size)
        assert got.shape == (*size, shape[2]) and got.dtype == np.uint8
        assert np.abs(got.astype(float) - want).max() <= 1, (shape, size)


def test_batches_equal_make_dataset_and_stack_one_shape(digits):
    src = TFRecordDataSource(digits, channels=1)
    want = list(make_dataset(digits, channels=1).as_numpy_iterator())
    batches = list(src.batches(16))
    assert [len(labels) for _, labels in batches] == [16, 16, 16, 16, 6]
    assert all(isinstance(images, np.ndarray) for images, _ in batches)
    images = np.concatenate([images for images, _ in batches])
    assert np.array_equal(images, np.stack([x for x, _ in want]))
    assert np.concatenate([y for _, y in batches]).tolist() == [y for _, y in want]
    assert [len(y) for _, y in src.batches(16, drop_remainder=True)] == [16] * 4


def test_batches_of_mixed_sizes_are_lists(photos):
    batches = list(TFRecordDataSource(photos).batches(8))
    assert sum(len(y) for _, y in batches) == N_GOOD
    assert any(isinstance(images, list) for images, _ in batches)
    resized = list(TFRecordDataSource(photos, image_size=10).batches(8))
    assert all(x.shape == (len(y), 10, 10, 3) for x, y in resized)


@pytest.mark.parametrize("workers", [1, 2, 3, 7])
@pytest.mark.parametrize("shuffle", [False, True])
def test_batches_with_workers_give_every_record_once(digits, workers, shuffle):
    src = TFRecordDataSource(digits, channels=1)
    want = Counter((_digest(x), y) for x, y in (src[i] for i in range(len(src))))
    got: Counter = Counter()
    for w in range(workers):
        for images, labels in src.batches(
            5, shuffle=shuffle, seed=w, num_workers=workers, worker_index=w
        ):
            got.update((_digest(x), int(y)) for x, y in zip(images, labels, strict=True))
    assert got == want


def test_shuffled_batches_change_order_with_the_seed(digits):
    src = TFRecordDataSource(digits, channels=1)
    labels = [np.concatenate([y for _, y in src.batches(70, shuffle=True, seed=s)]) for s in (1, 2)]
    plain = np.concatenate([y for _, y in src.batches(70)])
    assert sorted(labels[0]) == sorted(plain) and not np.array_equal(labels[0], labels[1])


@pytest.mark.parametrize("workers", [1, 3, 6])
def test_stream_gives_every_record_once_without_an_index(digits, tmp_path, workers):
    copy = tmp_path / "ds"
    shutil.copytree(digits, copy)
    for idx in copy.glob("*.idx"):
        idx.unlink()
    src = TFRecordDataSource(copy, channels=1)
    want = Counter((_digest(x), y) for x, y in src.stream())
    got = Counter()
    for w in range(workers):
        got.update((_digest(x), y) for x, y in src.stream(num_workers=workers, worker_index=w))
    assert got == want and sum(want.values()) == 70


def test_files_without_manifest_or_index(digits, tmp_path):
    for shard in sorted(digits.glob("*-train.tfrecord-*")):
        if not shard.name.endswith(".idx"):
            shutil.copy(shard, tmp_path / shard.name.replace("tfrecord", "tfrec"))
    src = TFRecordDataSource(str(tmp_path / "*.tfrec*"), channels=1)
    ref = TFRecordDataSource(digits, channels=1)
    assert len(src) == len(ref)
    assert all(np.array_equal(src[i][0], ref[i][0]) for i in range(len(src)))
    listed = TFRecordDataSource(sorted(map(str, tmp_path.glob("*"))), channels=1)
    assert len(listed) == len(ref)


def test_single_record_shards_and_tensorflow_written_examples(tmp_path):
    pixels = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    for i in range(3):
        feature = {
            "image/encoded": tf.train.Feature(
                bytes_list=tf.train.BytesList(value=[pixels.tobytes()])
            ),
            "image/format": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"RAW"])),
            "image/height": tf.train.Feature(int64_list=tf.train.Int64List(value=[2])),
            "image/width": tf.train.Feature(int64_list=tf.train.Int64List(value=[3])),
            "image/channels": tf.train.Feature(int64_list=tf.train.Int64List(value=[3])),
            "image/class/label": tf.train.Feature(int64_list=tf.train.Int64List(value=[i - 1])),
            "other/score": tf.train.Feature(float_list=tf.train.FloatList(value=[0.5, 2.0])),
        }
        data = tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()
        assert parse_image_example(data) == parse_image_example_pure(data)
        (tmp_path / f"one-{i}.tfrecord").write_bytes(frame(data))
    src = TFRecordDataSource(str(tmp_path / "*.tfrecord"))
    assert len(src) == 3 and [src[i][1] for i in range(3)] == [-1, 0, 1]
    assert np.array_equal(src[2][0], pixels)
    (images, labels), = src.batches(8)  # fmt: skip
    assert images.shape == (3, 2, 3, 3) and labels.tolist() == [-1, 0, 1]


def test_both_parsers_agree_on_the_converters_records(photos):
    for shard in sorted(photos.glob("*.tfrecord-*")):
        if shard.suffix != ".idx":
            for record in iter_records(shard):
                a, b = parse_image_example(record.data), parse_image_example_pure(record.data)
                assert a == b


def _flip(folder: Path, record: int = 1) -> tuple[Path, int]:
    """Flip a byte inside record ``record`` of the first shard; its path and offset."""
    shard = sorted(p for p in folder.glob("*-train.tfrecord-*") if p.suffix != ".idx")[0]
    offsets = [r.offset for r in iter_records(shard)]
    data = bytearray(shard.read_bytes())
    data[offsets[record] + 20] ^= 0xFF
    shard.write_bytes(bytes(data))
    return shard, offsets[record]


@pytest.fixture
def damaged(digits, tmp_path) -> tuple[Path, Path, int]:
    copy = tmp_path / "ds"
    shutil.copytree(digits, copy)
    return (copy, *_flip(copy))


def test_a_damaged_record_is_named(damaged):
    folder, shard, offset = damaged
    src = TFRecordDataSource(folder, channels=1)
    src[0]
    with pytest.raises(
        TFRecordToolsError, match=rf"{shard.name}: record 1 at byte {offset}: data CRC"
    ):
        src[1]
    with pytest.raises(TFRecordToolsError, match=rf"{shard.name}: record 1 at byte {offset}"):
        list(src.batches(8))
    with pytest.raises(TFRecordToolsError, match=rf"{shard.name}: record 1 at byte {offset}"):
        list(src.stream())


def test_skip_corrupt_skips_and_reports(damaged):
    folder, shard, offset = damaged
    src = TFRecordDataSource(folder, channels=1, skip_corrupt=True)
    clean = TFRecordDataSource(folder, channels=1)
    assert np.array_equal(src[1][0], clean[2][0])  # the next intact record
    assert [(e.path, e.index, e.offset) for e in src.skipped] == [(str(shard), 1, offset)]
    src.skipped.clear()
    assert sum(len(y) for _, y in src.batches(8)) == 69 and len(src.skipped) == 1
    src.skipped.clear()
    assert (
        sum(1 for _ in src.stream(num_workers=2, worker_index=1))
        + sum(1 for _ in src.stream(num_workers=2, worker_index=0))
        == 69
        and len(src.skipped) == 1
    )


def test_compressed_shards_read_in_order_only(mnist_src, tmp_path):
    convert_mnist(mnist_src, tmp_path, encoding="png", shards=2, workers=1, quiet=True,
                  compression="gzip")  # fmt: skip
    src = TFRecordDataSource(tmp_path, channels=1)
    assert len(src) == 70
    with pytest.raises(TFRecordToolsError, match=r"no random access.*batches"):
        src[0]
    want = [y for _, y in make_dataset(tmp_path, channels=1).as_numpy_iterator()]
    assert np.concatenate([y for _, y in src.batches(32)]).tolist() == want
    assert [y for _, y in src.stream()] == want


def test_pickles_by_path_and_reopens(digits):
    src = TFRecordDataSource(digits, channels=1)
    src[3]
    copy = pickle.loads(pickle.dumps(src))
    assert all(reader is None for reader in copy._readers)
    assert np.array_equal(copy[3][0], src[3][0]) and copy[3][1] == src[3][1]


def test_options_are_checked(digits):
    with pytest.raises(TFRecordToolsError, match="channels"):
        TFRecordDataSource(digits, channels=2)
    with pytest.raises(TFRecordToolsError, match="no split"):
        TFRecordDataSource(digits, split="nope")
    with pytest.raises(TFRecordToolsError, match="worker_index"):
        next(TFRecordDataSource(digits).batches(4, num_workers=2, worker_index=2))


def test_the_source_imports_no_tensorflow_and_registers_no_protobuf(digits):
    code = (
        "import sys\nfrom tfrecord_tools import TFRecordDataSource\n"
        f"src = TFRecordDataSource({str(digits)!r})\nsrc[0]; next(src.batches(4))\n"
        "from google.protobuf import descriptor_pool\n"
        "assert 'tensorflow' not in sys.modules\n"
        "try:\n"
        "    descriptor_pool.Default().FindMessageTypeByName('tfrecord_tools_private.Example')\n"
        "except KeyError:\n    print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"


# -- EXIF orientation, and the fast decoders against Pillow's plugins ----------------------

ORIENT_H, ORIENT_W = 6, 10  # not square: a quarter turn shows


@pytest.fixture(scope="module")
def oriented(tmp_path_factory) -> Path:
    """Converted JPEGs and PNGs (RGB and gray) tagged with each orientation 1-8."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("oriented_src")
    rng = np.random.default_rng(5)
    for kind in ("jpg", "png", "gray.png"):
        (folder / kind).mkdir()
        for o in range(1, 9):
            pixels = rng.integers(0, 256, (ORIENT_H, ORIENT_W, 3), dtype=np.uint8)
            image = Image.fromarray(pixels).convert("L" if kind == "gray.png" else "RGB")
            exif = image.getexif()
            exif[0x0112] = o
            image.save(folder / kind / f"o{o}.{kind.split('.')[-1]}", exif=exif.tobytes())
    out = tmp_path_factory.mktemp("oriented")
    convert_image_folder(folder, out, shards=2, workers=1, quiet=True)
    return out


def _upright_by_pillow(encoded: bytes, channels: int) -> np.ndarray:
    import io

    from PIL import Image, ImageOps

    image = ImageOps.exif_transpose(Image.open(io.BytesIO(encoded)))
    array = np.asarray(image.convert({1: "L", 3: "RGB"}[channels]))
    return array[..., None] if array.ndim == 2 else array


@pytest.mark.parametrize("channels", [1, 3])
def test_orientation_is_applied_as_make_dataset_and_exif_transpose(oriented, channels):
    src = TFRecordDataSource(oriented, channels=channels)
    want = list(make_dataset(oriented, channels=channels).as_numpy_iterator())
    orientations = set()
    for i, (image, label) in enumerate(want):
        fields = parse_image_example(src.read_record(i)[0])
        orientations.add(fields.orientation)
        got, got_label = src[i]
        assert got_label == label and got.shape == image.shape, (i, fields.orientation)
        quarter = fields.orientation >= 5
        assert got.shape[:2] == ((ORIENT_W, ORIENT_H) if quarter else (ORIENT_H, ORIENT_W))
        exact = image_kind(fields) == "png" or decode.simplejpeg is not None
        if exact:  # libpng's and TensorFlow's pixels, JPEGs with TensorFlow's IDCT
            assert np.array_equal(got, image), (i, fields.orientation)
        else:  # Pillow's accurate IDCT (see test_every_record_by_index_equals_make_dataset)
            assert np.abs(got.astype(int) - image.astype(int)).max() <= 8, i
        if image_kind(fields) == "png" and channels == fields.channels:
            assert np.array_equal(got, _upright_by_pillow(bytes(fields.encoded), channels)), i
    assert orientations == set(range(1, 9))
    stored = TFRecordDataSource(oriented, channels=channels, orientation=False)
    flat = list(make_dataset(oriented, channels=channels, orientation=False).as_numpy_iterator())
    for i, (image, _) in enumerate(flat):
        assert stored[i][0].shape == image.shape == (ORIENT_H, ORIENT_W, channels)


def test_orientation_comes_before_the_resize(oriented):
    src = TFRecordDataSource(oriented, image_size=(4, 8))
    plain = TFRecordDataSource(oriented)
    for i in range(len(src)):
        got = src[i][0]
        assert got.shape == (4, 8, 3)
        assert np.array_equal(got, decode.resize(plain[i][0], (4, 8))), i


def test_orientation_option_is_checked(oriented):
    with pytest.raises(TFRecordToolsError, match="orientation must be True"):
        TFRecordDataSource(oriented, orientation=1)


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_fast_decoders_give_pillows_pixels(photos, digits, oriented, channels, monkeypatch):
    """pyspng, simplejpeg (when installed) and Pillow's direct PNG decoder against Pillow's
    plugins, with and without resizing (the JPEG DCT scale follows Image.draft's rule)."""
    records = []
    for folder in (photos, digits, oriented):
        src = TFRecordDataSource(folder)
        records += [parse_image_example(src.read_record(i)[0]) for i in range(len(src))]
    for size in (None, (12, 16), (100, 70)):
        for fields in records:
            slow = decode.decode_fields(fields, channels=channels, image_size=size, fast=False)
            fast = decode.decode_fields(fields, channels=channels, image_size=size)
            if image_kind(fields) == "jpeg":
                # simplejpeg decodes with TensorFlow's fast IDCT, Pillow with the accurate
                # one (test_every_record_by_index_equals_make_dataset); PNG and raw agree
                continue
            assert np.array_equal(fast, slow), (size, image_kind(fields), fields.orientation)
            with monkeypatch.context() as m:
                m.setattr(decode, "pyspng", None)
                m.setattr(decode, "simplejpeg", None)
                assert np.array_equal(
                    decode.decode_fields(fields, channels=channels, image_size=size), slow
                )
