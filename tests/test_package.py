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
        "convert_coco", "convert_voc", "convert_yolo", "convert_csv", "convert_segmentation",
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


def _imports(path: Path, source: str | None = None) -> list[tuple[str, bool]]:
    """(absolute module name, at module level?) of every import in a package module
    (``source``: its text, when not the file's)."""
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    if path.name == "__init__.py":
        module = package
    found = []
    tree = ast.parse(path.read_text(encoding="utf-8") if source is None else source)
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


#: The layers, bottom up: a module may import its own folder and any lower layer, never a
#: sibling of its own layer (the verbs stay apart) and never a higher one.
LAYERS: dict[str, int] = {
    "errors": 0,  # every error type; imports nothing of the package
    "cores": 0,  # usable cores
    "lifetime": 0,  # children end with their parent
    "storage": 1,  # locations, the opener, atomic writes
    "format": 2,  # the on-disk contract
    "images": 2,  # image files: sniffing, Pillow formats to PNG
    "dataset": 3,  # what a PATH holds: resolver, keys, listing, checked indexes
    "convert": 4,
    "read": 4,
    "access": 4,
    "check": 4,
    "sample": 4,
    "bench": 5,  # measures the verbs
    "view": 6,  # shows what the verbs find, and the benchmark's results
    "cli": 7,
    "__main__": 8,
}


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_every_module_belongs_to_a_layer():
    folders = {_layer(_module_name(path)) for path in MODULES} - {"__init__"}
    assert folders <= set(LAYERS), f"add {sorted(folders - set(LAYERS))} to LAYERS"


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)


def _sideways(path: Path, source: str | None = None) -> list[str]:
    """The imports of ``path`` that do not go down the layers."""
    own = _layer(_module_name(path))
    found = []
    for name, _ in _imports(path, source):
        target = _layer(name) if name.startswith("tfrecord_tools.") else "__init__"
        if target in (own, "__init__") or target not in LAYERS:
            continue  # its own folder, or a name of the package's facade (__version__)
        if LAYERS[target] >= LAYERS[own]:
            found.append(f"{path.relative_to(PACKAGE)} ({own}) imports {name}")
    return found


def test_imports_only_go_down_the_layers():
    sideways = [line for path in MODULES for line in _sideways(path)]
    assert not sideways, "\n".join(sideways)


@pytest.mark.parametrize(
    ("module", "source", "bad"),
    [
        ("access/probe.py", "from ..check import verify\n", True),  # a sibling verb
        ("format/probe.py", "from ..dataset import resolve\n", True),  # up a layer
        ("read/probe.py", "def f():\n    from ..convert import api\n", True),  # in a function
        ("read/probe.py", "from ..dataset import resolve\nfrom . import options\n", False),
        ("cli/probe.py", "from ..view import server\n", False),
    ],
)
def test_the_layering_check_finds_a_sideways_import(module, source, bad):
    assert bool(_sideways(PACKAGE / module, source)) is bad


#: The only modules that may import TensorFlow: the tf.data readers and the benchmark's
#: child process, which measures them.
TF_MODULES = {
    "read/pipeline.py",
    "read/records.py",
    "read/decode.py",
    "read/orient.py",
    "read/service.py",
    "read/detection.py",
    "read/objects.py",
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
