"""Promises about the package itself: a small public API and light imports."""

from __future__ import annotations

import subprocess
import sys

import tfrecord_tools


def test_exported_names():
    assert sorted(tfrecord_tools.__all__) == sorted([
        "BenchConfig", "ConversionSummary", "RepairReport", "TFRecordToolsError",
        "VerifyReport", "__version__", "convert_image_folder", "convert_mnist",
        "count_records", "index_shards", "inspect_dataset", "make_dataset",
        "make_raw_dataset", "repair", "run_benchmark", "verify",
    ])  # fmt: skip
    for name in tfrecord_tools.__all__:
        assert getattr(tfrecord_tools, name) is not None


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys\nprint(' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    return set(out.split())


def test_help_and_conversion_do_not_import_tensorflow():
    for code in (
        "from tfrecord_tools.cli import build_parser\n"
        "import contextlib, io\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    build_parser().parse_args(['convert', 'images', '--help'])",
        "import tfrecord_tools.convert, tfrecord_tools.probe, tfrecord_tools.pngenc,"
        " tfrecord_tools.mnist, tfrecord_tools.framing",
    ):
        assert "tensorflow" not in _modules_after(code)


def test_count_from_the_manifest_does_not_load_the_crc_library(tmp_path):
    # crc32c's __init__ reads package metadata (40-90 ms): only commands checking CRCs pay
    (tmp_path / "dataset.json").write_text(
        '{"format_version": 1, "name": "x", "compression": "none", "splits": {"train": '
        '{"num_examples": 3, "shards": [{"file": "x-train.tfrecord-00000-of-00001", '
        '"num_examples": 3, "num_bytes": 1, "sha256": ""}]}}}'
    )
    (tmp_path / "x-train.tfrecord-00000-of-00001").write_bytes(b"x")
    code = (
        "import contextlib, io\nfrom tfrecord_tools.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    assert main(['count', {str(tmp_path)!r}]) == 0"
    )
    loaded = _modules_after(code)
    assert "tfrecord_tools.count" in loaded and "crc32c" not in loaded
    assert "crc32c" in _modules_after(
        "from tfrecord_tools.framing import masked_crc32c as m; m(b'')"
    )
