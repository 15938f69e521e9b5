"""Golden output: a seeded conversion of a fixed image folder and of fixed MNIST files gives
exactly these bytes, whatever the package's inner layout and whichever engine runs it.

The inputs are built here without an image encoder whose output could change between
library versions: PNGs by hand (zlib at a fixed level), one JPEG kept as literal bytes. The
hashes below were taken before the package was reorganised (issue "One format layer");
a change to them is a change to the on-disk format and needs a FORMAT.md version bump.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import re
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from tfrecord_tools import convert_image_folder, convert_mnist
from tfrecord_tools.format import CONTRACT_VERSION
from tfrecord_tools.format.manifest import FORMAT_VERSION

from .conftest import write_idx

ENGINES = [
    "local",
    pytest.param(
        "beam",
        marks=pytest.mark.skipif(
            importlib.util.find_spec("apache_beam") is None,
            reason="the beam extra is not installed",
        ),
    ),
]

# A 16x12 baseline JPEG (quality 90), as literal bytes.
_JPEG = base64.b64decode(
    "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAMCAgMCAgMDAwMEAwMEBQgFBQQEBQoHBwYIDAoMDAsKCwsNDhIQDQ4R"
    "DgsLEBYQERMUFRUVDA8XGBYUGBIUFRT/2wBDAQMEBAUEBQkFBQkUDQsNFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQU"
    "FBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBT/wAARCAAMABADASIAAhEBAxEB/8QAHwAAAQUBAQEBAQEAAAAAAAAA"
    "AAECAwQFBgcICQoL/8QAtRAAAgEDAwIEAwUFBAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAk"
    "M2JyggkKFhcYGRolJicoKSo0NTY3ODk6Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKT"
    "lJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi4+Tl5ufo6erx8vP09fb3+Pn6/8QA"
    "HwEAAwEBAQEBAQEBAQAAAAAAAAECAwQFBgcICQoL/8QAtREAAgECBAQDBAcFBAQAAQJ3AAECAxEEBSExBhJBUQdh"
    "cRMiMoEIFEKRobHBCSMzUvAVYnLRChYkNOEl8RcYGRomJygpKjU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVmZ2hp"
    "anN0dXZ3eHl6goOEhYaHiImKkpOUlZaXmJmaoqOkpaanqKmqsrO0tba3uLm6wsPExcbHyMnK0tPU1dbX2Nna4uPk"
    "5ebn6Onq8vP09fb3+Pn6/9oADAMBAAIRAxEAPwD5g+HPwQ+aL/R/TtX1t8Kfgh80P7j07V03w68J6bui/cV6j8bf"
    "FM/wS/Zx8WeMvD9rbS6vp8dtHALwOYx511DAzfIytkLKxBDDDAHnofzLhPiXFYvNqWHho5yUVfa7aROU5/UoYd1b"
    "X5U39yuf/9k="
)


def _png(pixels: np.ndarray) -> bytes:
    """A PNG of uint8 gray (H, W) or RGB (H, W, 3) pixels, filter None, zlib level 6."""
    height, width = pixels.shape[:2]
    color = 0 if pixels.ndim == 2 else 2

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    rows = b"".join(b"\0" + row.tobytes() for row in pixels.reshape(height, -1))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, color, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(rows, 6))
        + chunk(b"IEND", b"")
    )


def make_golden_folder(root: Path) -> Path:
    """Three classes of small PNGs (gray and RGB), the JPEG, and two bad files."""
    rng = np.random.default_rng(1234)
    for c, name in enumerate(["ant", "bee", "cow é"]):
        folder = root / name
        (folder / "sub").mkdir(parents=True)
        for i in range(6):
            shape = (10 + c, 12) if i % 2 else (9, 11 + c, 3)
            pixels = rng.integers(0, 256, shape, dtype=np.uint8)
            (folder / f"p{i}.png").write_bytes(_png(pixels))
        (folder / "sub" / "photo.jpg").write_bytes(_JPEG)
    (root / "ant" / "broken.jpg").write_bytes(_JPEG[:200])
    (root / "bee" / "notes.txt").write_text("not an image")
    return root


def make_golden_mnist(folder: Path) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(99)
    for prefix, n in (("train", 30), ("t10k", 10)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10)
    return folder


def fingerprint(out: Path) -> dict[str, str]:
    """sha256 of every file of a dataset folder; the manifest without what varies between
    runs and engines (creation time, source path, engine)."""
    found = {}
    for path in sorted(out.iterdir()):
        assert path.is_file(), f"{path} left behind"
        data = path.read_bytes()
        if path.name == "dataset.json":
            manifest = json.loads(data)
            for key in ("created", "engine", "conversion"):
                manifest.pop(key)
            manifest["source"].pop("path")
            data = json.dumps(manifest, sort_keys=True).encode()
        found[path.name] = hashlib.sha256(data).hexdigest()[:16]
    return found


GOLDEN_FOLDER: dict[str, str] = {
    "dataset.json": "b28c413065a7d21d",
    "dataset_info.json": "35dc0bc8c4909061",  # TFDS metadata (format/tfds.py), no date
    "features.json": "8474032e5a7d182a",
    "image-class-label.labels.txt": "189743567d9d5543",  # = labels.txt
    "golden-train.tfrecord-00000-of-00002": "968907bf2cc20879",
    "golden-train.tfrecord-00000-of-00002.idx": "f6c22f63da26cd8f",
    "golden-train.tfrecord-00001-of-00002": "8485a8f4112dc2e3",
    "golden-train.tfrecord-00001-of-00002.idx": "b9dcb53d079754e4",
    "golden-validation.tfrecord-00000-of-00001": "757db81bd8fadfeb",
    "golden-validation.tfrecord-00000-of-00001.idx": "88a46864a220187e",
    "labels.txt": "189743567d9d5543",
}
GOLDEN_MNIST: dict[str, dict[str, str]] = {
    "png": {
        "dataset.json": "671cd5bdb4652a22",
        "dataset_info.json": "0e2eb5edde2a572b",
        "features.json": "3516329161b23d9e",
        "image-class-label.labels.txt": "7427877c40fb0361",
        "labels.txt": "7427877c40fb0361",
        "mnist-test.tfrecord-00000-of-00001": "94878cf0a68a9687",
        "mnist-test.tfrecord-00000-of-00001.idx": "18949d4db7f31837",
        "mnist-train.tfrecord-00000-of-00003": "b3aec7016a35fede",
        "mnist-train.tfrecord-00000-of-00003.idx": "d37f2bbebb8ac05a",
        "mnist-train.tfrecord-00001-of-00003": "3d7fe87ceda56212",
        "mnist-train.tfrecord-00001-of-00003.idx": "5f32fd6e548bad51",
        "mnist-train.tfrecord-00002-of-00003": "d8ceaae74bbb37ed",
        "mnist-train.tfrecord-00002-of-00003.idx": "dce9ccca8c870297",
    },
    "raw": {
        "dataset.json": "342a4860052a12a8",
        "dataset_info.json": "c65aada1f716df8f",
        "features.json": "02add2e54febdb88",
        "image-class-label.labels.txt": "7427877c40fb0361",
        "labels.txt": "7427877c40fb0361",
        "mnist-test.tfrecord-00000-of-00001": "5f19bc48ea88c51c",
        "mnist-test.tfrecord-00000-of-00001.idx": "b05d2160be7f3d22",
        "mnist-train.tfrecord-00000-of-00003": "37640fb9330eb8be",
        "mnist-train.tfrecord-00000-of-00003.idx": "8c8dc48fc9870a1f",
        "mnist-train.tfrecord-00001-of-00003": "43fcb27143d7029d",
        "mnist-train.tfrecord-00001-of-00003.idx": "8c8dc48fc9870a1f",
        "mnist-train.tfrecord-00002-of-00003": "efff528778ff875c",
        "mnist-train.tfrecord-00002-of-00003.idx": "8c8dc48fc9870a1f",
    },
}


@pytest.mark.parametrize("engine", ENGINES)
def test_image_folder_golden(tmp_path, engine):
    src = make_golden_folder(tmp_path / "src")
    convert_image_folder(
        src,
        tmp_path / "out",
        name="golden",
        split="train=0.7,validation=0.3",
        shards=3,
        seed=7,
        workers=2,
        quiet=True,
        engine=engine,
    )
    assert fingerprint(tmp_path / "out") == GOLDEN_FOLDER
    assert _format_version(tmp_path / "out") == 1


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("encoding", ["png", "raw"])
def test_mnist_golden(tmp_path, engine, encoding):
    src = make_golden_mnist(tmp_path / "src")
    convert_mnist(
        src,
        tmp_path / "out",
        encoding=encoding,
        shards=4,
        seed=3,
        workers=2,
        quiet=True,
        engine=engine,
    )
    assert fingerprint(tmp_path / "out") == GOLDEN_MNIST[encoding]
    assert _format_version(tmp_path / "out") == 1


def _format_version(out: Path) -> object:
    return json.loads((out / "dataset.json").read_text(encoding="utf-8"))["format_version"]


FORMAT_MD = Path(__file__).resolve().parent.parent / "FORMAT.md"


def test_format_md_states_the_code_s_contract_version():
    """FORMAT.md's "Contract version" line, and the last row of its version table, are the
    code's CONTRACT_VERSION; every extension is compatible, so the manifest's
    format_version (pinned by the hashes above) is still 1."""
    text = FORMAT_MD.read_text(encoding="utf-8")
    assert re.findall(r"^Contract version: (\S+)$", text, re.MULTILINE) == [CONTRACT_VERSION]
    table = re.findall(r"^\| (\d+\.\d+) \|", text, re.MULTILINE)
    assert table and table[-1] == CONTRACT_VERSION, table
    assert CONTRACT_VERSION.split(".")[0] == str(FORMAT_VERSION) == "1"


#: A shard's resume state as written by the version before the reorganisation.
OLD_STATE = {
    "info": {
        "file": "golden-train.tfrecord-00000-of-00001",
        "num_examples": 3,
        "num_bytes": 1234,
        "sha256": "ab" * 32,
    },
    "split": "train",
    "skipped": [["ant/broken.jpg", "truncated JPEG"]],
    "formats": {"png": 2, "jpeg": 1},
    "kinds": {"rgb": 3},
    "converted_from": {},
    "source_bytes": 999,
    "shapes": [[9, 11, 3], [10, 12, 1]],
}


def test_an_interrupted_conversion_from_before_the_move_resumes():
    """The plan digest and the per-shard state files keep their meaning, so a conversion
    interrupted under the old layout resumes under the new one."""
    from tfrecord_tools.convert.jobs import ShardResult
    from tfrecord_tools.convert.resume import fingerprint

    plan = {
        "identity": {"root": "/data/src", "files": "abc"},
        "name": "golden",
        "seed": 7,
        "compression": "none",
        "plan": [("golden-train.tfrecord-00000-of-00001", 3)],
    }
    assert fingerprint(plan) == "9cc0d8d348a39050a9dc726e20faa3dee48f6dbb2b7f12ad0466a27be88bfdda"
    result = ShardResult.from_json(OLD_STATE)
    assert result.info.num_bytes == 1234 and result.skipped == [
        ("ant/broken.jpg", "truncated JPEG")
    ]
    assert result.to_json() == OLD_STATE
