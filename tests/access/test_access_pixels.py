"""The TF-free reader's pixels against make_dataset's, record by record: PNG of every colour
type and depth (tRNS, gamma chunks, interlacing, 16 bits), raw pixels, JPEG (photos, gray,
CMYK, files libjpeg decodes with a warning), for 1, 3 and 4 channels.

Records are built with the package's Example encoder (or converted from image files made
here with numpy and Pillow); TensorFlow decodes them through make_dataset.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

tf = pytest.importorskip("tensorflow")  # first: the suite shares one TensorFlow import

from tfrecord_tools import TFRecordDataSource, convert_image_folder  # noqa: E402
from tfrecord_tools.access import decode  # noqa: E402
from tfrecord_tools.access.parse import parse_image_example  # noqa: E402
from tfrecord_tools.errors import TFRecordToolsError  # noqa: E402
from tfrecord_tools.format.example import encode_example  # noqa: E402
from tfrecord_tools.format.framing import frame  # noqa: E402
from tfrecord_tools.read.pipeline import make_dataset  # noqa: E402
from tfrecord_tools.sample import make_photos  # noqa: E402

CHANNELS = (1, 3, 4)
H, W = 11, 13  # odd sizes: rows of 1, 2 and 4-bit samples end inside a byte


# -- building records ------------------------------------------------------------------------


def write_records(path: Path, images: list[tuple[bytes, str, tuple[int, ...]]]) -> Path:
    """A TFRecord file of Examples (``encoded``, ``image_format``, stored shape), labels 0.."""
    with open(path, "wb") as out:
        for label, (encoded, fmt, shape) in enumerate(images):
            height, width, channels = (*shape, 1)[:3]
            out.write(
                frame(
                    encode_example(
                        encoded=encoded,
                        image_format=fmt,
                        height=height,
                        width=width,
                        channels=channels,
                        label=label,
                        text="",
                        filename=f"{label}.{fmt}",
                    )
                )
            )
    return path


def assert_equal_to_make_dataset(path: Path, channels: int, names: list[str] | None = None):
    """Every record of ``path`` decoded by TFRecordDataSource equals make_dataset's."""
    src = TFRecordDataSource(str(path), channels=channels)
    want = list(make_dataset(str(path), channels=channels).as_numpy_iterator())
    assert len(src) == len(want)
    for i, (image, label) in enumerate(want):
        name = names[i] if names else i
        got, got_label = src[i]
        assert got_label == label and got.dtype == np.uint8, name
        assert got.shape == image.shape, (name, got.shape, image.shape)
        diff = np.abs(got.astype(int) - image.astype(int))
        assert diff.max() == 0, (name, channels, int(diff.max()), int((diff > 0).sum()))


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _row(samples: np.ndarray, depth: int) -> bytes:
    """One row of interleaved samples, packed to ``depth`` bits, big-endian."""
    if depth == 16:
        return samples.astype(">u2").tobytes()
    if depth == 8:
        return samples.astype(np.uint8).tobytes()
    per = 8 // depth
    padded = np.zeros(-(-samples.size // per) * per, np.uint32)
    padded[: samples.size] = samples
    shifts = 8 - depth * (np.arange(per, dtype=np.uint32) + 1)
    return (padded.reshape(-1, per) << shifts).sum(axis=1).astype(np.uint8).tobytes()


_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2))
_ADAM7 += ((0, 1, 1, 2),)


def png(
    samples: np.ndarray,
    depth: int,
    color_type: int,
    *,
    palette: np.ndarray | None = None,
    trns: bytes | None = None,
    before: tuple[tuple[bytes, bytes], ...] = (),
    interlace: bool = False,
) -> bytes:
    """A PNG written here, any depth and colour type: ``samples`` [H, W, n] (palette indices
    for colour type 3), ``before``: chunks before PLTE (gAMA, sRGB, iCCP, sBIT), rows
    unfiltered, Adam7-interlaced when asked."""
    height, width = samples.shape[:2]
    rows = []
    passes = _ADAM7 if interlace else ((0, 0, 1, 1),)
    for x0, y0, dx, dy in passes:
        part = samples[y0::dy, x0::dx]
        if part.size:
            rows += [b"\0" + _row(row.reshape(-1), depth) for row in part]
    head = struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, int(interlace))
    chunks = [_chunk(b"IHDR", head), *(_chunk(k, b) for k, b in before)]
    if palette is not None:
        chunks.append(_chunk(b"PLTE", palette.astype(np.uint8).tobytes()))
    if trns is not None:
        chunks.append(_chunk(b"tRNS", trns))
    chunks += [_chunk(b"IDAT", zlib.compress(b"".join(rows))), _chunk(b"IEND", b"")]
    return b"\x89PNG\r\n\x1a\n" + b"".join(chunks)


def _gama(gamma: float) -> tuple[bytes, bytes]:
    return b"gAMA", struct.pack(">I", round(gamma * 100000))


SRGB = (b"sRGB", b"\0")


def png_cases() -> list[tuple[str, bytes]]:
    """(name, PNG bytes): every colour type and depth, with and without tRNS, interlaced,
    with gamma chunks (what libpng's RGB -> gray goes through), sBIT."""
    rng = np.random.default_rng(7)
    cases = []

    def samples(n: int, depth: int) -> np.ndarray:
        return rng.integers(0, 1 << depth, (H, W, n), dtype=np.uint32)

    for depth in (1, 2, 4, 8, 16):  # gray, with a colour key some pixels match
        gray = samples(1, depth)
        key = int(gray[3, 4, 0])
        cases.append((f"gray{depth}", png(gray, depth, 0)))
        cases.append((f"gray{depth}-trns", png(gray, depth, 0, trns=struct.pack(">H", key))))
        cases.append((f"gray{depth}-interlaced", png(gray, depth, 0, interlace=True)))
    for depth in (8, 16):
        cases.append((f"gray-alpha{depth}", png(samples(2, depth), depth, 4)))
        cases.append((f"rgba{depth}", png(samples(4, depth), depth, 6)))
        rgb = samples(3, depth)
        if depth == 16:  # pixels one low byte away from the key: 16-bit keys compare 16 bits
            rgb[5, 6] = rgb[3, 4] ^ np.array([0, 0, 1])
        key = struct.pack(">HHH", *rgb[3, 4].tolist())
        cases.append((f"rgb{depth}", png(rgb, depth, 2)))
        cases.append((f"rgb{depth}-trns", png(rgb, depth, 2, trns=key)))
        cases.append((f"rgb{depth}-interlaced", png(rgb, depth, 2, interlace=True)))
        rgb[:4] = rgb[:4, :, :1]  # gray pixels in a colour image: kept (quantised at 16 bits)
        for gamma in (0.45455, 1 / 1.8, 1.0, 2.2, 0.97):
            chunk = (_gama(gamma),)
            cases.append((f"rgb{depth}-gamma{gamma:.3f}", png(rgb, depth, 2, before=chunk)))
        cases.append((f"rgb{depth}-srgb", png(rgb, depth, 2, before=(SRGB,))))
        cases.append((f"rgba{depth}-srgb", png(samples(4, depth), depth, 6, before=(SRGB,))))
        # sRGB wins over a gAMA that disagrees, whichever comes first
        cases.append((f"rgb{depth}-gama-srgb", png(rgb, depth, 2, before=(_gama(1), SRGB))))
        cases.append((f"rgb{depth}-srgb-gama", png(rgb, depth, 2, before=(SRGB, _gama(1)))))
    rgb16 = samples(3, 16)
    sbit = (b"sBIT", bytes([7, 9, 10]))  # the 16-bit gamma tables' resolution follows it
    cases.append(("rgb16-sbit-gamma", png(rgb16, 16, 2, before=(sbit, _gama(0.45455)))))
    cases.append(("rgb16-sbit", png(rgb16, 16, 2, before=(sbit,))))
    cases.append(("rgb8-two-gama", png(samples(3, 8), 8, 2, before=(_gama(0.5), _gama(1)))))
    # ICC profiles: one libpng does not know for sRGB's (no gamma from it, a later gAMA
    # counts); chunks it rejects: the colour space turns invalid, a later gAMA is ignored;
    # but a chunk of less than 92 bytes is ignored ("too short", libpng 1.6.43)
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    deflated = zlib.compress(profile)
    iccp = (b"iCCP", b"littlecms\0\0" + deflated)
    rgb8 = samples(3, 8)
    for name, before in {
        "iccp": (iccp,),
        "iccp-gama": (iccp, _gama(0.45455)),
        "iccp-srgb": (iccp, SRGB),
        "srgb-iccp": (SRGB, iccp),
        "corrupt-iccp-gama": ((b"iCCP", b"x\0\0" + deflated[:40] + bytes(60)), _gama(0.45455)),
        "no-keyword-iccp-gama": ((b"iCCP", b"\0\0" + deflated), _gama(0.45455)),
        "short-iccp-gama": ((b"iCCP", b"x\0\0" + b"not zlib at all"), _gama(0.45455)),
        "gama-corrupt-iccp": (_gama(0.45455), (b"iCCP", b"x\0\0" + deflated[:40] + bytes(60))),
        "gray-space-iccp-gama": (
            (b"iCCP", b"x\0\0" + zlib.compress(profile[:16] + b"GRAY" + profile[20:])),
            _gama(0.45455),
        ),
    }.items():
        cases.append((f"rgb8-{name}", png(rgb8, 8, 2, before=before)))
    for depth in (1, 2, 4, 8):  # palette: short palettes, partial tRNS
        entries = min(1 << depth, 40)
        palette = rng.integers(0, 256, (entries, 3))
        index = rng.integers(0, entries, (H, W, 1))
        alphas = rng.integers(0, 256, max(entries // 2, 1)).astype(np.uint8).tobytes()
        cases.append((f"palette{depth}", png(index, depth, 3, palette=palette)))
        cases.append((f"palette{depth}-trns", png(index, depth, 3, palette=palette, trns=alphas)))
        cases.append(
            (f"palette{depth}-srgb", png(index, depth, 3, palette=palette, before=(SRGB,)))
        )
        cases.append(
            (f"palette{depth}-interlaced", png(index, depth, 3, palette=palette, interlace=True))
        )
    # every alpha (1 << depth) - 1: make_dataset takes it for libpng's filler and makes it 255
    index = rng.integers(0, 4, (H, W, 1))
    palette = rng.integers(0, 256, (4, 3))
    cases.append(("palette2-filler-alpha", png(index, 2, 3, palette=palette, trns=b"\3" * 4)))
    # indices past a short palette: libpng's palette is 256 entries, black past PLTE
    index = rng.integers(0, 16, (H, W, 1))
    cases.append(("palette4-short", png(index, 4, 3, palette=palette, trns=b"\0\x80")))
    return cases


def pillow_cases() -> list[tuple[str, bytes]]:
    """PNGs as Pillow saves them, from each mode it writes to PNG."""
    rng = np.random.default_rng(8)
    rgb = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    image = Image.fromarray(rgb)
    out = []
    variants = {
        "1": (image.convert("1"), {}),
        "L": (image.convert("L"), {}),
        "LA": (image.convert("LA"), {}),
        "RGB": (image, {}),
        "RGB-transparency": (image, {"transparency": tuple(rgb[2, 2].tolist())}),
        "RGBA": (image.convert("RGBA"), {}),
        "P": (image.convert("P"), {}),
        "P-transparency": (image.convert("P"), {"transparency": 3}),
        "I;16": (Image.fromarray(rng.integers(0, 65536, (H, W), dtype=np.uint16)), {}),
    }
    for name, (img, options) in variants.items():
        buf = io.BytesIO()
        img.save(buf, "PNG", **options)
        out.append((f"pillow-{name}", buf.getvalue()))
    return out


@pytest.fixture(scope="module")
def png_records(tmp_path_factory) -> tuple[Path, list[str]]:
    cases = png_cases() + pillow_cases()
    images = [(data, "png", Image.open(io.BytesIO(data)).size[::-1]) for _, data in cases]
    path = write_records(tmp_path_factory.mktemp("pngs") / "pngs.tfrecord", images)
    return path, [name for name, _ in cases]


@pytest.mark.parametrize("channels", CHANNELS)
def test_png_of_every_mode_equals_make_dataset(png_records, channels):
    path, names = png_records
    assert_equal_to_make_dataset(path, channels, names)


@pytest.mark.parametrize("channels", CHANNELS)
def test_png_without_the_fast_extra_or_fast_paths_is_the_same(png_records, channels, monkeypatch):
    path, _ = png_records
    src = TFRecordDataSource(str(path), channels=channels)
    fields = [parse_image_example(src.read_record(i)[0]) for i in range(len(src))]
    fast = [decode.decode_fields(f, channels=channels) for f in fields]
    plugin = [decode.decode_fields(f, channels=channels, fast=False) for f in fields]
    monkeypatch.setattr(decode, "pyspng", None)
    direct = [decode.decode_fields(f, channels=channels) for f in fields]
    for i, image in enumerate(fast):
        assert np.array_equal(image, plugin[i]) and np.array_equal(image, direct[i]), i


#: The cases decode_simple_pngs takes: 8-bit gray, RGB, RGBA, the image data right after
#: the header (Pillow writes nothing in between either); colour is never made gray there.
SIMPLE = {"gray8": 0, "rgb8": 2, "rgba8": 6, "pillow-L": 0, "pillow-RGB": 2, "pillow-RGBA": 6}


@pytest.mark.parametrize("channels", CHANNELS)
@pytest.mark.parametrize("pyspng", [True, False])
def test_pngs_decoded_together_equal_one_at_a_time(png_records, channels, pyspng, monkeypatch):
    path, names = png_records
    src = TFRecordDataSource(str(path), channels=channels)
    fields = [parse_image_example(src.read_record(i)[0]) for i in range(len(src))]
    if not pyspng:  # Pillow's decoder directly
        monkeypatch.setattr(decode, "pyspng", None)
    together = decode.decode_simple_pngs([bytes(f.encoded) for f in fields], channels=channels)
    taken = {name for name, image in zip(names, together, strict=True) if image is not None}
    assert taken == {n for n, colour in SIMPLE.items() if channels != 1 or colour == 0}
    for name, one, image in zip(names, fields, together, strict=True):
        if image is not None:
            assert np.array_equal(image, decode.decode_fields(one, channels=channels)), name


@pytest.mark.parametrize("channels", CHANNELS)
def test_batched_reads_of_every_png_equal_src_i(png_records, channels):
    from tfrecord_tools.access.fetch import fetch

    path, _ = png_records
    src = TFRecordDataSource(str(path), channels=channels)
    indices = list(range(len(src)))[::-1]
    images, labels = fetch(src, indices)
    assert labels.tolist() == indices
    for i, image in zip(indices, images, strict=True):
        assert np.array_equal(image, src[i][0]), i


def test_16_bit_pngs_keep_their_high_byte(tmp_path):
    """16-bit samples become their high byte (``png_set_strip_16``: ``value >> 8``, not
    rounded), for gray, gray + alpha, RGB and RGBA; they used to come out clipped."""
    rng = np.random.default_rng(3)
    kinds = {1: 0, 2: 4, 3: 2, 4: 6}  # samples per pixel -> colour type
    stored = [rng.integers(0, 65536, (H, W, n), dtype=np.uint32) for n in kinds]
    records = [(png(s, 16, kinds[s.shape[2]]), "png", (H, W)) for s in stored]
    path = write_records(tmp_path / "wide.tfrecord", records)
    src = TFRecordDataSource(str(path), channels=4)
    for i, samples in enumerate(stored):
        high = (samples >> 8).astype(np.uint8)
        rgb = high[..., :3] if high.shape[2] >= 3 else np.repeat(high[..., :1], 3, axis=2)
        alpha = high[..., -1:] if high.shape[2] in (2, 4) else np.full((H, W, 1), 255, np.uint8)
        assert np.array_equal(src[i][0], np.concatenate([rgb, alpha], axis=2)), i


def test_converted_16_bit_and_float_tiffs_equal_make_dataset(tmp_path):
    folder = tmp_path / "src" / "a"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(9)
    Image.fromarray(rng.integers(0, 65536, (H, W), dtype=np.uint16)).save(folder / "g16.tif")
    Image.fromarray(rng.random((H, W)).astype(np.float32)).save(folder / "f32.tif")
    out = tmp_path / "out"
    convert_image_folder(tmp_path / "src", out, shards=1, workers=1, quiet=True)
    src = TFRecordDataSource(out)
    stored = [parse_image_example(src.read_record(i)[0]).encoded for i in (0, 1)]
    assert [data[24] for data in stored] == [16, 16]  # IHDR's bit depth
    for channels in CHANNELS:
        want = list(make_dataset(out, channels=channels).as_numpy_iterator())
        got = TFRecordDataSource(out, channels=channels)
        for i, (image, _) in enumerate(want):
            assert np.array_equal(got[i][0], image), (channels, i)
            assert image.max() > 128  # not the clipped 255 everywhere, not 0


# -- raw pixels and gray ---------------------------------------------------------------------


@pytest.mark.parametrize("channels", CHANNELS)
def test_raw_pixels_of_every_channel_count_equal_make_dataset(tmp_path, channels):
    rng = np.random.default_rng(4)
    records = []
    for stored in (1, 2, 3, 4):
        pixels = rng.integers(0, 256, (H, W, stored), dtype=np.uint8)
        records.append((pixels.tobytes(), "raw", (H, W, stored)))
    assert_equal_to_make_dataset(write_records(tmp_path / "raw.tfrecord", records), channels)


def test_tf_gray_is_rgb_to_grayscale_for_every_colour():
    """All 2**24 RGB values, in 16 blocks of 1024 x 1024."""
    for block in np.split(np.arange(1 << 24, dtype=np.uint32), 16):
        rgb = np.stack([block >> 16, (block >> 8) & 255, block & 255], axis=-1)
        rgb = rgb.astype(np.uint8).reshape(1024, 1024, 3)
        want = tf.image.rgb_to_grayscale(rgb).numpy()
        assert np.array_equal(decode.tf_gray(rgb), want), int(block[0] >> 20)


# -- JPEG ------------------------------------------------------------------------------------

needs_simplejpeg = pytest.mark.skipif(
    decode.simplejpeg is None, reason="simplejpeg is not installed (no wheel here)"
)


def _save(image: Image.Image, **options) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "JPEG", **options)
    return buf.getvalue()


def _without_segment(data: bytes, marker: int) -> bytes:
    """``data`` without its first segment of ``marker`` (e.g. 0xEE, Adobe's APP14)."""
    at = data.index(bytes([0xFF, marker]))
    length = int.from_bytes(data[at + 2 : at + 4], "big")
    return data[:at] + data[at + 2 + length :]


def _insert_before(data: bytes, marker: int, garbage: bytes, *, in_scan: bool) -> bytes:
    """``garbage`` inserted before the first ``marker`` (after the start of scan when
    ``in_scan``): libjpeg warns of extraneous bytes and decodes on."""
    start = data.index(b"\xff\xda") if in_scan else 0
    at = data.index(bytes([0xFF, marker]), start)
    return data[:at] + garbage + data[at:]


@pytest.fixture(scope="module")
def photo_files(tmp_path_factory) -> list[Path]:
    """The package's sample photos (JPEG at quality 90), small."""
    folder = make_photos(
        tmp_path_factory.mktemp("photos"), count=5, size=(160, 120), png_fraction=0.0
    )
    return sorted(folder.rglob("*.jpg"))


@pytest.fixture(scope="module")
def photo(photo_files) -> Image.Image:
    return Image.open(photo_files[0]).convert("RGB")


@pytest.fixture(scope="module")
def jpeg_records(tmp_path_factory, photo_files, photo) -> tuple[Path, list[str]]:
    """The sample photos as stored, and one photo saved every way Pillow saves a JPEG."""
    cases = [(f.name, f.read_bytes()) for f in photo_files]
    ink = 255 - np.asarray(photo)  # CMYK with black ink too: k a gradient
    k = np.broadcast_to(np.linspace(0, 200, ink.shape[1], dtype=np.uint8), ink.shape[:2])
    cmyk = Image.frombytes("CMYK", photo.size, np.dstack([ink, k]).tobytes())
    cases += [(f"subsampling{s}", _save(photo, quality=90, subsampling=s)) for s in (0, 1, 2)]
    cases += [
        ("progressive", _save(photo, quality=85, progressive=True)),
        ("restart-markers", _save(photo, quality=85, restart_marker_rows=1)),
        ("gray", _save(photo.convert("L"), quality=90)),
        ("cmyk-adobe", _save(cmyk, quality=90)),
        ("cmyk-plain", _without_segment(_save(cmyk, quality=90), 0xEE)),
    ]
    records = [(data, "jpeg", Image.open(io.BytesIO(data)).size[::-1]) for _, data in cases]
    path = write_records(tmp_path_factory.mktemp("jpegs") / "jpegs.tfrecord", records)
    return path, [name for name, _ in cases]


@needs_simplejpeg
@pytest.mark.parametrize("channels", CHANNELS)
def test_jpegs_equal_make_dataset_with_simplejpeg(jpeg_records, channels):
    """simplejpeg decodes with tf.io.decode_jpeg's settings: the fast integer IDCT and
    fancy upsampling; CMYK and gray are converted as TensorFlow converts them."""
    path, names = jpeg_records
    assert_equal_to_make_dataset(path, channels, names)


def test_jpegs_by_pillow_differ_only_by_the_idct(jpeg_records, monkeypatch):
    """Without simplejpeg, Pillow decodes with libjpeg's accurate IDCT (no Pillow setting
    gives the fast one with fancy upsampling): TensorFlow's pixels with
    ``dct_method="INTEGER_ACCURATE"``, a few steps from make_dataset's."""
    path, names = jpeg_records
    monkeypatch.setattr(decode, "simplejpeg", None)
    src = TFRecordDataSource(str(path))
    want = list(make_dataset(str(path)).as_numpy_iterator())
    for i, (image, _) in enumerate(want):
        got = src[i][0]
        encoded = parse_image_example(src.read_record(i)[0]).encoded
        if not names[i].startswith("cmyk"):  # TensorFlow's CMYK -> RGB is its own
            accurate = tf.io.decode_jpeg(encoded, channels=3, dct_method="INTEGER_ACCURATE")
            assert np.array_equal(got, accurate.numpy()), names[i]
        diff = np.abs(got.astype(int) - image.astype(int))
        assert diff.mean() < 2, (names[i], diff.mean())


# -- JPEGs libjpeg decodes with a warning, or not at all -------------------------------------


@pytest.fixture(scope="module")
def warned_jpegs(photo) -> dict[str, bytes]:
    """JPEGs libjpeg decodes with a warning (as Pillow's hopper_bad_exif.jpg: "Corrupt JPEG
    data: 1214 extraneous bytes before marker 0xd0"), and ones it cannot decode."""
    garbage = bytes(range(16, 216))  # no 0xFF: not taken for a marker
    color = _save(photo, quality=90, restart_marker_rows=1)
    gray = _save(photo.convert("L"), quality=90, restart_marker_rows=2)
    return {
        "good": _save(photo, quality=90),
        "garbage-in-scan": _insert_before(color, 0xD0, garbage, in_scan=True),
        "gray-garbage-in-scan": _insert_before(gray, 0xD1, garbage, in_scan=True),
        "no-end-marker": color[:-2],
        "garbage-in-header": _insert_before(color, 0xDB, garbage[:5], in_scan=False),
        "cut-short": color[: len(color) * 2 // 3],
    }


def test_jpegs_with_libjpeg_warnings_decode_as_in_make_dataset(tmp_path, warned_jpegs):
    """simplejpeg's strict mode fails on them; TensorFlow and Pillow decode them: so does
    the TF-free reader, a pass over the records goes on, with make_dataset's pixels."""
    names = ["good", "garbage-in-scan", "gray-garbage-in-scan", "good"]
    records = [(warned_jpegs[n], "jpeg", (120, 160)) for n in names]
    path = write_records(tmp_path / "warned.tfrecord", records)
    if decode.simplejpeg is not None:
        for name in names[1:3]:  # what the fallback is for
            with pytest.raises(ValueError):
                decode.simplejpeg.decode_jpeg(warned_jpegs[name])
        for channels in CHANNELS:
            assert_equal_to_make_dataset(path, channels)
    src = TFRecordDataSource(str(path))
    assert [src[i][0].shape for i in range(len(src))] == [(120, 160, 3)] * 4


def test_a_jpeg_with_garbage_in_its_header_decodes_by_pillow(tmp_path, warned_jpegs):
    """Extraneous bytes before a header marker fail simplejpeg even when lenient: Pillow
    decodes it, with libjpeg's accurate IDCT."""
    data = warned_jpegs["garbage-in-header"]
    path = write_records(tmp_path / "header.tfrecord", [(data, "jpeg", (120, 160))])
    want = next(make_dataset(str(path)).as_numpy_iterator())[0]
    got = TFRecordDataSource(str(path))[0][0]
    accurate = tf.io.decode_jpeg(data, channels=3, dct_method="INTEGER_ACCURATE").numpy()
    assert np.array_equal(got, accurate)
    assert np.abs(got.astype(int) - want.astype(int)).mean() < 2


@pytest.mark.parametrize("name", ["cut-short", "no-end-marker"])
def test_a_jpeg_cut_short_is_an_error_as_in_tensorflow(tmp_path, warned_jpegs, name):
    """libjpeg pads a JPEG cut short with gray (simplejpeg's lenient mode would deliver
    it); TensorFlow refuses it, even when only the end marker is missing: so does the
    TF-free reader, naming the record."""
    data = warned_jpegs[name]
    with pytest.raises(tf.errors.InvalidArgumentError):
        tf.io.decode_jpeg(data)
    records = [(warned_jpegs["good"], "jpeg", (120, 160)), (data, "jpeg", (120, 160))]
    src = TFRecordDataSource(str(write_records(tmp_path / "cut.tfrecord", records)))
    assert src[0][0].shape == (120, 160, 3)
    with pytest.raises(TFRecordToolsError, match=r"record 1 .*(jpeg)"):
        src[1]
