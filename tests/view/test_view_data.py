"""The viewer without a browser: its data access (metadata only for the overview; a run of
records in one ranged read; a shard without an index read only as far as a page needs),
its routes (numbers only, 404 for anything else), the --html report, the --grid contact
sheet and the command line. The pages in a real browser: ``test_view_browser.py``, which
uses the datasets made here."""

from __future__ import annotations

import contextlib
import gzip
import http.client
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from tfrecord_tools import convert_image_folder, storage
from tfrecord_tools.cli import main
from tfrecord_tools.format.example import decode_example, encode_example
from tfrecord_tools.format.framing import frame, iter_records
from tfrecord_tools.format.index import read_index
from tfrecord_tools.format.tfds import TFDS_FILES
from tfrecord_tools.view.data import open_dataset
from tfrecord_tools.view.server import App, ViewServer

from ..helpers import encode

CLASSES = ["circle", "square", "triangle"]
PER_CLASS = 10
XSS_CLASS = "<script>alert(1)"  # a folder name cannot hold the "/" of "</script>"
XSS_FILE = "<img src=x onerror=alert(2)>.png"


def shape_image(rng: np.random.Generator, kind: str, size: tuple[int, int]) -> Image.Image:
    """A coloured shape on a soft background: classes a person tells apart at a glance."""
    width, height = size
    base = tuple(int(v) for v in rng.integers(200, 250, 3))
    image = Image.new("RGB", size, base)
    draw = ImageDraw.Draw(image)
    for y in range(0, height, 4):  # a gentle gradient, so JPEGs look like photos
        shade = tuple(max(0, c - y * 40 // height) for c in base)
        draw.rectangle((0, y, width, y + 3), fill=shade)
    colour = tuple(int(v) for v in rng.integers(20, 200, 3))
    m = min(width, height)
    cx, cy = width / 2 + rng.integers(-m // 8, m // 8 + 1), height / 2
    r = m * rng.uniform(0.28, 0.4)
    if kind == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour)
    elif kind == "square":
        draw.rectangle((cx - r, cy - r, cx + r, cy + r), fill=colour)
    else:
        draw.polygon([(cx, cy - r), (cx - r, cy + r * 0.8), (cx + r, cy + r * 0.8)], fill=colour)
    return image


def make_shapes_folder(root: Path, *, extra_class: str | None = None) -> Path:
    """Three classes of shapes, JPEG and PNG, landscape and portrait; one JPEG stored on
    its side with EXIF orientation 6 (upright once turned 90 degrees clockwise); two bad
    files the conversion skips."""
    rng = np.random.default_rng(7)
    classes = [*CLASSES, *([extra_class] if extra_class else [])]
    for c, name in enumerate(classes):
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(PER_CLASS):
            size = (144, 108) if i % 3 else (108, 144)
            image = shape_image(rng, CLASSES[c % 3], size)
            if i % 2:
                (folder / f"{name[:6]}-{i}.png").write_bytes(encode(image, "PNG"))
            else:
                (folder / f"{name[:6]}-{i}.jpg").write_bytes(encode(image, "JPEG", quality=90))
    upright = shape_image(rng, "triangle", (64, 96))  # tall: width 64, height 96
    exif = Image.Exif()
    exif[0x0112] = 6
    sideways = upright.transpose(Image.Transpose.ROTATE_90)  # stored 96 wide, 64 high
    (root / "triangle" / "sideways.jpg").write_bytes(
        encode(sideways, "JPEG", quality=90, exif=exif.tobytes())
    )
    (root / "circle" / "broken.jpg").write_bytes(encode(upright, "JPEG")[:300])
    (root / "square" / "notes.txt").write_text("not an image")
    if extra_class:
        image = shape_image(rng, "circle", (40, 40))
        (root / extra_class / XSS_FILE).write_bytes(encode(image, "PNG"))
    return root


def convert(src: Path, out: Path, **options) -> Path:
    options = {"split": "train=0.75,validation=0.25", "shards": 3, "seed": 3, **options}
    convert_image_folder(src, out, name=options.pop("name", "shapes"), quiet=True, **options)
    return out


@pytest.fixture(scope="session")
def shapes(tmp_path_factory) -> Path:
    """A dataset of ours: shapes, two splits, two train shards with their indexes."""
    root = tmp_path_factory.mktemp("view-shapes")
    return convert(make_shapes_folder(root / "src"), root / "out")


@pytest.fixture(scope="session")
def hostile(tmp_path_factory) -> Path:
    """A dataset whose class and file names hold HTML."""
    root = tmp_path_factory.mktemp("view-hostile")
    return convert(make_shapes_folder(root / "src", extra_class=XSS_CLASS), root / "out")


def as_tfds_folder(dataset: Path, dest: Path) -> Path:
    """``dataset`` laid out as TFDS prepares one: shards and TFDS's metadata; no manifest,
    labels.txt or .idx files."""
    dest.mkdir()
    for path in dataset.iterdir():
        if path.name in TFDS_FILES or (".tfrecord-" in path.name and path.suffix != ".idx"):
            shutil.copy(path, dest / path.name)
    return dest


def damage_record(dataset: Path, shard: str, index: int) -> int:
    """Flip a byte inside record ``index``'s image bytes (its framing stays intact, its
    data CRC no longer matches); returns the record's offset."""
    offset, size = read_index(dataset / f"{shard}.idx")[index]
    path = dataset / shard
    data = bytearray(path.read_bytes())
    data[offset + size - 40] ^= 0xFF
    path.write_bytes(bytes(data))
    return offset


def truth(dataset: Path) -> dict[tuple[int, int, int], dict]:
    """(split number, shard number, record) -> the record's features, read independently
    of the viewer (every CRC checked)."""
    manifest = json.loads((dataset / "dataset.json").read_text())
    out = {}
    for s, info in enumerate(manifest["splits"].values()):
        for k, shard in enumerate(info["shards"]):
            for rec in iter_records(dataset / shard["file"], manifest["compression"]):
                out[(s, k, rec.index)] = decode_example(rec.data)
    return out


@pytest.fixture
def opened():
    """``opened(path)``: a viewer's dataset, closed after the test."""
    with contextlib.ExitStack() as stack:
        yield lambda path: stack.enter_context(open_dataset(path))


@contextlib.contextmanager
def serving(path, **app_options):
    """The viewer on a free loopback port, in this process: its base URL."""
    dataset = open_dataset(path)
    try:
        with ViewServer(App(dataset, **app_options), port=0).start() as server:
            yield server.url.rstrip("/")
    finally:
        dataset.close()


def get(url: str, target: str, *, host: str | None = None) -> tuple[int, bytes, dict]:
    """A raw GET of exactly ``target`` (no client-side normalisation of ``..``)."""
    split = re.match(r"http://([^:/]+):(\d+)", url)
    assert split is not None
    conn = http.client.HTTPConnection(split[1], int(split[2]), timeout=60)
    try:
        conn.putrequest("GET", target, skip_host=host is not None)
        if host is not None:
            conn.putheader("Host", host)
        conn.endheaders()
        response = conn.getresponse()
        return response.status, response.read(), dict(response.getheaders())
    finally:
        conn.close()


# --------------------------------------------------------------------------- data access


class _Opened:
    """Every file this process opens while ``active`` (an audit hook: it sees the opens
    of every library, fsspec's and Pillow's included)."""

    def __init__(self) -> None:
        self.active = False
        self.paths: list[str] = []
        sys.addaudithook(self._hook)

    def _hook(self, event: str, args) -> None:
        if self.active and event == "open" and isinstance(args[0], str | bytes | os.PathLike):
            self.paths.append(os.fsdecode(args[0]))

    @contextlib.contextmanager
    def watching(self):
        self.paths.clear()
        self.active = True
        try:
            yield self.paths
        finally:
            self.active = False


OPENED = _Opened()


def test_the_overview_reads_no_shard(shapes, opened):
    dataset = opened(shapes)
    with OPENED.watching() as files:
        ov = dataset.overview()
    assert not [p for p in files if ".tfrecord-" in p and not p.endswith(".idx")], files
    manifest = json.loads((shapes / "dataset.json").read_text())
    assert [s.name for s in ov.splits] == list(manifest["splits"])
    for split in ov.splits:
        entry = manifest["splits"][split.name]
        assert split.records == entry["num_examples"]
        assert [s.records for s in split.shards] == [s["num_examples"] for s in entry["shards"]]
    assert ov.classes == tuple(CLASSES)
    assert dict(ov.skipped) == {
        "circle/broken.jpg": "truncated JPEG",
        "square/notes.txt": "not an image",
    }
    assert ov.orientations == {"6": 1}


def test_a_page_of_records_is_one_ranged_read(shapes, monkeypatch, opened):
    reads = []
    real = storage.read_bytes

    def counting(path, start=None, end=None):
        reads.append((os.path.basename(path), start, end))
        return real(path, start, end)

    monkeypatch.setattr(storage, "read_bytes", counting)
    dataset = opened(shapes)
    entries = dataset.records(0, 0, 2, 5)
    shard = dataset.shard_name(0, 0)
    index = read_index(shapes / f"{shard}.idx")
    data_reads = [r for r in reads if not r[0].endswith(".idx")]
    assert data_reads == [(shard, index[2][0], index[6][0] + index[6][1])]
    want = truth(shapes)
    assert [e.index for e in entries] == [2, 3, 4, 5, 6]
    for e in entries:
        features = want[(0, 0, e.index)]
        assert e.label == features["image/class/label"][1][0]
        assert e.klass == features["image/class/text"][1][0].decode()
        assert e.damage is None


def test_records_across_shards_follow_the_manifest_order(shapes, opened):
    dataset = opened(shapes)
    want = truth(shapes)
    train = sorted(k for k in want if k[0] == 0)
    got = dataset.records(0, None, 0, 1000)
    assert [(e.split, e.shard, e.index) for e in got] == train
    first = dataset.count(0, 0)
    assert [(e.shard, e.index) for e in dataset.records(0, None, first - 1, 2)] == [
        (0, first - 1),
        (1, 0),
    ]


def test_a_shard_without_an_index_is_read_only_as_far_as_a_page_needs(tmp_path, opened):
    big = tmp_path / "big.tfrecord"  # a bare file: no metadata, no index
    png = encode(Image.new("L", (8, 8), 128), "PNG")
    records = [
        encode_example(
            encoded=png, image_format="png", height=8, width=8, channels=1, label=i % 5,
            text=f"c{i % 5}", filename=f"f{i}.png",
        )
        for i in range(400)
    ]  # fmt: skip
    big.write_bytes(b"".join(frame(r) for r in records))
    dataset = opened(big)
    assert dataset.count(0, 0) is None  # unknown without reading it
    got = dataset.records(0, 0, 10, 5)
    assert [(e.index, e.filename, e.label) for e in got] == [
        (i, f"f{i}.png", i % 5) for i in range(10, 15)
    ]
    assert dataset.count(0, 0) is None  # still unknown: the page did not read it all
    assert dataset.count(0, 0, learn=True) == 400
    assert [e.filename for e in dataset.records(0, 0, 398, 5)] == ["f398.png", "f399.png"]


def test_a_damaged_record_is_an_entry_that_says_so(shapes, tmp_path, opened):
    copy = tmp_path / "copy"
    shutil.copytree(shapes, copy)
    shard = json.loads((copy / "dataset.json").read_text())["splits"]["train"]["shards"][0]["file"]
    offset = damage_record(copy, shard, 2)
    dataset = opened(copy)
    entries = dataset.records(0, 0, 0, 5)
    assert [e.damage is not None for e in entries] == [False, False, True, False, False]
    assert entries[2].damage == "data CRC mismatch" and entries[2].offset == offset
    [met] = dataset.damage_met()
    assert (met.shard, met.index, met.offset, met.kind) == (0, 2, offset, "data CRC mismatch")


def test_a_missing_shard_is_noted_and_shows_no_records(shapes, tmp_path, opened):
    copy = tmp_path / "copy"
    shutil.copytree(shapes, copy)
    manifest = json.loads((copy / "dataset.json").read_text())
    gone = manifest["splits"]["train"]["shards"][0]["file"]
    (copy / gone).unlink()
    dataset = opened(copy)
    ov = dataset.overview()
    assert ov.notes == (f"{copy / gone}: listed, but missing",)
    assert ov.splits[0].shards[0].bytes is None
    assert dataset.records(0, 0, 0, 10) == []
    second = dataset.records(0, None, 0, 100)  # the split goes on with the next shard
    assert {e.shard for e in second} == {1} and len(second) == dataset.count(0, 1)


def _gzip_copy(dataset: Path, dest: Path) -> Path:
    """The same records, every shard gzip-compressed, no .idx and no metadata: bare files."""
    dest.mkdir()
    for path in sorted(dataset.glob("*.tfrecord-*")):
        if path.suffix != ".idx":
            (dest / (path.name + ".gz")).write_bytes(gzip.compress(path.read_bytes(), mtime=0))
    return dest


def test_compressed_shards_page_forward_and_back(shapes, tmp_path, opened):
    folder = _gzip_copy(shapes, tmp_path / "gz")
    dataset = opened(folder)
    assert dataset.split_names == ["files"]
    want = [decode_example(r.data) for r in iter_records(folder / dataset.shard_name(0, 0), "gzip")]
    pages = [dataset.records(0, 0, start, 3) for start in (0, 3, 6, 3, 0)]
    for start, page in zip((0, 3, 6, 3, 0), pages, strict=True):
        assert [e.index for e in page] == list(range(start, min(start + 3, len(want))))
        for e in page:
            assert e.filename == want[e.index]["image/filename"][1][0].decode()


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    return bytes([*out, n])


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def other_example(features: dict[str, bytes | int]) -> bytes:
    """A tf.train.Example with any keys (bytes or one int64 each), as other tools write."""
    entries = b""
    for key, value in features.items():
        if isinstance(value, bytes):
            feature = _field(1, _field(1, value))  # bytes_list
        else:
            feature = _field(3, _field(1, _varint(value)))  # int64_list, packed
        entries += _field(1, _field(1, key.encode()) + _field(2, feature))
    return _field(1, entries)


@pytest.mark.parametrize("layout", ["tfds", "keras"])
def test_other_layouts_show_their_images_and_labels(tmp_path, opened, layout):
    pixels = np.arange(16 * 20, dtype=np.uint8).reshape(16, 20)
    records = []
    for i in range(12):
        if layout == "tfds":
            image = encode(Image.fromarray(pixels + i), "PNG")
            records.append(other_example({"image": image, "label": i % 3}))
        else:
            raw = (pixels + i).tobytes()
            records.append(
                other_example(
                    {"image_raw": raw, "label": i % 3, "height": 16, "width": 20, "depth": 1}
                )
            )
    path = tmp_path / "data.tfrecord.gz"
    path.write_bytes(gzip.compress(b"".join(frame(r) for r in records)))
    dataset = opened(path)
    entries = dataset.records(0, 0, 0, 100)
    assert [(e.index, e.label, e.klass) for e in entries] == [
        (i, i % 3, str(i % 3)) for i in range(12)
    ]
    assert {(e.image_format, e.width, e.height) for e in entries} == {
        ("png" if layout == "tfds" else "raw", 20, 16)
    }
    thumb = dataset.thumbnail(0, 0, 5, size=160)
    shown = np.asarray(Image.open(io.BytesIO(thumb.data)))
    assert thumb.mime == "image/png" and shown.shape[:2] == (16, 20)
    assert np.array_equal(shown if shown.ndim == 2 else shown[..., 0], pixels + 5)
    view = dataset.record(0, 0, 5)
    assert {k for k, _, _ in view.features} == set(decode_example(records[5]))


# --------------------------------------------------------------------------- routes


@pytest.mark.parametrize(
    "target",
    [
        "/../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/etc/passwd",
        "//etc/passwd",
        "/record/0/0/../../../etc/passwd",
        "/thumb/0/0/%2Fetc%2Fpasswd",
        "/image/0/0/..%2f..%2f..%2fetc%2fpasswd",
        "/gallery/../../etc/passwd",
        "/record/0/0/-1",
        "/record/0/9/0",
        "/record/7/0/0",
        "/thumb/0/0/99999",
        "/" + "/".join(["..", "..", "..", "..", "tmp"]),
    ],
)
def test_paths_outside_the_routes_get_404_and_read_nothing_outside(shapes, target):
    root = os.path.realpath(shapes)
    python = (os.path.realpath(sys.prefix), os.path.realpath(sys.base_prefix))
    with serving(shapes) as url, OPENED.watching() as files:
        status, body, _ = get(url, target)
    assert status == 404, (target, body[:200])
    assert b"root:" not in body
    outside = [
        p
        for p in files
        if os.path.isabs(p) and not os.path.realpath(p).startswith((root, *python, "/proc", "/dev"))
    ]
    assert outside == []


def test_numbers_only_in_queries(shapes):
    with serving(shapes) as url:
        assert get(url, "/gallery?split=../../etc/passwd")[0] == 400
        assert get(url, "/gallery?shard=%2Fetc%2Fpasswd")[0] == 400
        assert get(url, "/gallery?split=0&shard=1&class=2&start=1&n=5&seed=3")[0] == 200


def test_loopback_server_answers_only_requests_for_loopback(shapes):
    """DNS rebinding: a page on evil.example whose name resolves to 127.0.0.1 gets 400."""
    with serving(shapes) as url:
        port = url.rsplit(":", 1)[1]
        assert get(url, "/", host=f"evil.example:{port}")[0] == 400
        assert get(url, "/", host=f"localhost:{port}")[0] == 200
        status, _body, headers = get(url, "/")
        assert status == 200
        assert "script-src" not in headers["Content-Security-Policy"]  # none allowed
        assert headers["Content-Security-Policy"].startswith("default-src 'none'")


def test_pages_escape_labels_and_file_names(hostile, opened):
    with serving(hostile) as url:
        pages = [get(url, t)[1].decode() for t in ("/", "/sample", "/gallery?n=200")]
        dataset = opened(hostile)
        assert XSS_CLASS in dataset.classes
        place = next(
            (s, k, i)
            for s in range(len(dataset.split_names))
            for k in range(len(dataset.shards_of(s)))
            for i, e in enumerate(dataset.records(s, k, 0, 100))
            if e.filename and XSS_FILE in e.filename
        )
        pages.append(get(url, "/record/{}/{}/{}".format(*place))[1].decode())
    for text in pages:
        assert "<script" not in text.lower()
        assert "<img src=x" not in text
    assert "&lt;script&gt;alert(1)" in pages[2]
    assert "&lt;img src=x onerror=alert(2)&gt;.png" in pages[3]


# --------------------------------------------------------------------------- --html, --grid


def test_html_report_is_one_self_contained_file(shapes, tmp_path, capsys):
    out = tmp_path / "report.html"
    assert main(["view", str(shapes), "--html", str(out), "--sample", "12", "--seed", "5"]) == 0
    assert f"{out}: 12 thumbnails" in capsys.readouterr().out
    text = out.read_text(encoding="utf-8")
    assert 20_000 < out.stat().st_size < 400_000
    sources = re.findall(r'<img src="([^"]*)"', text)
    assert len(sources) == 12
    assert all(s.startswith(("data:image/jpeg;base64,", "data:image/png;base64,")) for s in sources)
    for src in sources:  # each one an image Pillow opens
        import base64

        Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))).verify()
    assert not re.search(r'(src|href)="(https?:)?//', text)  # nothing fetched from elsewhere
    assert "<script" not in text and "<link" not in text and "<iframe" not in text
    assert "<a " not in text  # no link to a server page
    manifest = json.loads((shapes / "dataset.json").read_text())
    for name, split in manifest["splits"].items():
        assert f'data-split="{name}"' in text
        assert f'data-records="{split["num_examples"]}"' in text
    assert all(f">{c}<" in text for c in CLASSES)  # the sample's class chart


def test_contact_sheet_has_a_row_per_class(shapes, tmp_path, capsys):
    out = tmp_path / "grid.png"
    assert main(["inspect", str(shapes), "--grid", str(out), "--per-class", "4"]) == 0
    printed = capsys.readouterr().out
    assert f"{out}: 3 class row(s), 12 image(s)" in printed
    from tfrecord_tools.view.sheet import _LABEL, _PAD, _TITLE, CELL

    image = Image.open(out)
    assert image.size == (_LABEL + 4 * (CELL + _PAD) + _PAD, _TITLE + 3 * (CELL + _PAD) + _PAD)
    pixels = np.asarray(image.convert("RGB")).astype(int)
    for row in range(3):
        top = _TITLE + row * (CELL + _PAD)
        for col in range(4):
            left = _LABEL + col * (CELL + _PAD)
            cell = pixels[top : top + CELL, left : left + CELL]
            assert cell.std() > 10, (row, col)  # an image, not the empty cell's flat grey
    for n, name in enumerate(CLASSES):
        assert f"  {n}: {name}: 4" in printed


def test_contact_sheet_with_fewer_images_than_asked(shapes, tmp_path):
    from tfrecord_tools.view.sheet import contact_sheet

    sheet = contact_sheet(shapes, tmp_path / "g.png", per_class=30)
    counts = dict(sheet.rows)
    want = {}
    for features in truth(shapes).values():
        label = features["image/class/label"][1][0]
        want[f"{label}: {CLASSES[label]}"] = want.get(f"{label}: {CLASSES[label]}", 0) + 1
    assert counts == want
    assert sheet.records_read == sum(want.values())


# --------------------------------------------------------------------------- the command


def test_view_command_prints_its_address_and_serves(shapes):
    proc = subprocess.Popen(
        [sys.executable, "-m", "tfrecord_tools", "view", str(shapes), "--port", "0",
         "--host", "127.0.0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        line = proc.stdout.readline()  # blocks until the server listens (or the process ends)
        match = re.search(r"http://127\.0\.0\.2:(\d+)/", line)
        assert match, (line, proc.stderr.read() if proc.poll() is not None else "")
        status, body, _ = get(match[0], "/")
        assert status == 200 and b"shapes" in body
    finally:
        proc.terminate()
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "warning: listening on 127.0.0.2" in err  # not in the loopback names it trusts


def test_view_command_errors(tmp_path, capsys):
    assert main(["view", str(tmp_path / "nothing")]) == 2
    assert "nothing" in capsys.readouterr().err
    assert (
        main(["inspect", str(tmp_path), "--grid", str(tmp_path / "g.png"), "--per-class", "0"]) == 2
    )
    assert "--per-class" in capsys.readouterr().err
    assert main(["view", str(tmp_path), "--bench", str(tmp_path)]) == 2
