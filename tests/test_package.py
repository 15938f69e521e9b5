"""Promises about the package itself: a small public API, the layering of its folders, and
light imports."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

import tfrecord_tools

PACKAGE = Path(tfrecord_tools.__file__).parent


def test_exported_names():
    assert sorted(tfrecord_tools.__all__) == sorted([
        "BenchConfig", "ConversionSummary", "RepairReport", "TFRecordToolsError",
        "VerifyReport", "__version__", "convert_image_folder", "convert_mnist",
        "count_records", "index_shards", "inspect_dataset", "make_dataset",
        "make_raw_dataset", "repair", "run_benchmark", "verify", "TFRecordDataSource",
    ])  # fmt: skip
    for name in tfrecord_tools.__all__:
        assert getattr(tfrecord_tools, name) is not None


def test_make_dataset_options_are_keyword_parameters_with_the_reader_defaults():
    from tfrecord_tools.read.options import ReadOptions
    from tfrecord_tools.read.pipeline import make_dataset

    params = inspect.signature(make_dataset).parameters
    for option in dataclasses.fields(ReadOptions):
        assert params[option.name].kind is inspect.Parameter.KEYWORD_ONLY, option.name
        assert params[option.name].default == option.default, option.name


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(absolute module name, at module level?) of every import in a package module."""
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    if path.name == "__init__.py":
        module = package
    found = []
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, id(node) in top) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            names = [f"{base}.{a.name}" for a in node.names] if not node.module else [base]
            found += [(name, id(node) in top) for name in names]
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_the_format_layer_imports_nothing_else_of_the_package():
    for path in (PACKAGE / "format").rglob("*.py"):
        for name, _ in _imports(path):
            if name.startswith("tfrecord_tools"):
                assert name.startswith("tfrecord_tools.format"), f"{path.name} imports {name}"


#: The only modules that may import TensorFlow: the tf.data readers and the benchmark's
#: child process, which measures them.
TF_MODULES = {
    "read/pipeline.py",
    "read/records.py",
    "read/decode.py",
    "read/orient.py",
    "read/service.py",
    "bench/child.py",
}


def test_only_the_readers_import_tensorflow():
    importers = {
        str(path.relative_to(PACKAGE))
        for path in MODULES
        if any(name.split(".")[0] == "tensorflow" for name, _ in _imports(path))
    }
    assert importers == TF_MODULES


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys\nprint(' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    return set(out.split())


_HELP = (
    "from tfrecord_tools.cli import build_parser\n"
    "import contextlib, io\n"
    "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
    "    build_parser().parse_args({!r})"
)


@pytest.mark.parametrize(
    "code",
    [
        _HELP.format(["--help"]),
        _HELP.format(["convert", "images", "--help"]),
        _HELP.format(["bench", "--help"]),
        "import tfrecord_tools as tt; tt.convert_image_folder, tt.convert_mnist",
        "import tfrecord_tools.convert.sources.mnist, tfrecord_tools.convert.sources.mnist_idx",
        "import tfrecord_tools as tt; tt.verify, tt.repair, tt.count_records, tt.index_shards, "
        "tt.inspect_dataset",
        "import tfrecord_tools.bench.runner, tfrecord_tools.bench.child, tfrecord_tools.sample",
        "import tfrecord_tools.read.options, tfrecord_tools.read.shards",
    ],
    ids=["help", "convert-help", "bench-help", "convert", "mnist", "check", "bench", "read-opts"],
)
def test_tensorflow_is_not_imported(code):
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
    assert "tfrecord_tools.check.count" in loaded and "crc32c" not in loaded
    assert "crc32c" in _modules_after(
        "from tfrecord_tools.format.framing import masked_crc32c as m; m(b'')"
    )
