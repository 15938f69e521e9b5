"""The docs' examples run: every ```python block of README.md and docs/*.md, in order, one
namespace per page, in a fresh folder holding the small data the examples name:

    flowers/                 an image folder, one subfolder per class (sample photos)
    mnist_raw/               the four MNIST IDX files (tiny)
    keras_tutorial.tfrecord  records in the Keras tutorial's layout (image_raw, label, ...)
    other/a.tfrecord         records with keys of their own (img, cls)
    unlabelled/a.tfrecord    records with an image and no label

Nothing is downloaded: examples that need a bucket or the network are ```bash / ```text
blocks, or use ``memory://`` (cleaned up after each page). A block that imports torch,
grain or tensorflow_datasets, or uses ``memory://`` (fsspec), runs in a test of its own,
after the page's other blocks before it, and is skipped where that module is missing
(the .venv-torch and .venv-tfds environments have torch, grain and TFDS). The pages'
relative links must point at files and headings that exist.
"""

from __future__ import annotations

import ast
import importlib.util
import io
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from .helpers import make_mnist

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
tf = pytest.importorskip("tensorflow")

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINKED = [*PAGES, ROOT / "FORMAT.md"]

#: Modules a block may import that the main environment need not have -> the module that
#: must be importable for the block to run.
OPTIONAL = {
    "torch": "torch",
    "grain": "grain",
    "tensorflow_datasets": "tensorflow_datasets",
    "tfrecord_tools.access.torch": "torch",
    "tfrecord_tools.access.grain": "grain",
}


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # of the block's first code line, 1-based
    code: str

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def needs(self) -> str | None:
        """The optional module this block needs, if any: one it imports, or fsspec for a
        ``memory://`` URL (the cloud extras bring it)."""
        if "memory://" in self.code:
            return "fsspec"
        for node in ast.walk(ast.parse(self.code)):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                for prefix, module in OPTIONAL.items():
                    if name == prefix or name.startswith(prefix + "."):
                        return module
        return None


def python_blocks(page: Path) -> list[Block]:
    """The ```python blocks of a Markdown page, in order."""
    blocks, code, start, fence = [], [], 0, None
    for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), start=1):
        stripped = line.strip()
        if fence is None:
            if stripped.startswith("```"):
                fence = stripped[3:].strip()
                code, start = [], number + 1
        elif stripped == "```":
            if fence == "python":
                blocks.append(Block(page, start, "\n".join(code) + "\n"))
            fence = None
        else:
            code.append(line)
    assert fence is None, f"{page.relative_to(ROOT)}: a code block is never closed"
    return blocks


# --------------------------------------------------------------------------- the data


def _example(features: dict) -> bytes:
    def feature(value):
        if isinstance(value, bytes):
            return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))

    feats = tf.train.Features(feature={k: feature(v) for k, v in features.items()})
    return tf.train.Example(features=feats).SerializeToString()


def _write_records(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for row in rows:
            writer.write(_example(row))


def _third_party(root: Path) -> None:
    """TFRecords as other tools write them, of small PNGs."""
    rng = np.random.default_rng(5)
    rows = []
    for i in range(6):
        pixels = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, format="PNG")
        rows.append((buf.getvalue(), i % 3, pixels.shape))
    _write_records(
        root / "keras_tutorial.tfrecord",
        [
            {"height": h, "width": w, "depth": c, "label": label, "image_raw": data}
            for data, label, (h, w, c) in rows
        ],
    )
    _write_records(root / "other" / "a.tfrecord", [{"img": d, "cls": lab} for d, lab, _ in rows])
    _write_records(root / "unlabelled" / "a.tfrecord", [{"image": d} for d, _, _ in rows])


@pytest.fixture(scope="session")
def world(tmp_path_factory) -> Path:
    """The inputs the examples name, made once; each page gets a copy."""
    from tfrecord_tools.sample import make_photos

    root = tmp_path_factory.mktemp("docs-world")
    make_photos(root / "flowers", count=24, size=(160, 120))
    (root / "flowers" / ".sample-complete").unlink()  # not part of the example folder
    make_mnist(root / "mnist_raw", n_train=40, n_test=12)
    _third_party(root)
    return root


@pytest.fixture
def page_folder(world, tmp_path, monkeypatch) -> Path:
    """A fresh copy of the world as the working directory; what a page puts in
    ``memory://`` (a store shared by the whole test session) is removed afterwards."""
    folder = tmp_path / "work"
    shutil.copytree(world, folder)
    monkeypatch.chdir(folder)
    if importlib.util.find_spec("fsspec") is None:
        yield folder
        return
    from fsspec.implementations.memory import MemoryFileSystem

    store, dirs = set(MemoryFileSystem.store), set(MemoryFileSystem.pseudo_dirs)
    yield folder
    for key in set(MemoryFileSystem.store) - store:
        del MemoryFileSystem.store[key]
    MemoryFileSystem.pseudo_dirs[:] = [d for d in MemoryFileSystem.pseudo_dirs if d in dirs]


def run_blocks(blocks: list[Block]) -> None:
    """Run ``blocks`` in order in one namespace; a failure names the page and line."""
    namespace: dict = {"__name__": "__docs__"}
    for block in blocks:
        # padded so that tracebacks give the page's own line numbers
        code = compile("\n" * (block.line - 1) + block.code, str(block.page), "exec")
        try:
            exec(code, namespace)
        except Exception as e:
            raise AssertionError(f"{block.where}: the example failed: {e!r}") from e


# --------------------------------------------------------------------------- the tests


def _page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


def test_the_pages_have_examples():
    """The collection itself works: the README and most pages have runnable blocks."""
    with_blocks = [p for p in PAGES if python_blocks(p)]
    assert ROOT / "README.md" in with_blocks
    assert len(with_blocks) >= 6, with_blocks


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_page_examples_run(page, page_folder):
    run_blocks([b for b in python_blocks(page) if b.needs is None])


OPTIONAL_BLOCKS = [b for page in PAGES for b in python_blocks(page) if b.needs is not None]


@pytest.mark.parametrize("block", OPTIONAL_BLOCKS, ids=lambda b: b.where)
def test_optional_example_runs(block, page_folder):
    if importlib.util.find_spec(block.needs) is None:
        pytest.skip(f"{block.where} needs {block.needs}, which is not installed here")
    before = [b for b in python_blocks(block.page) if b.line < block.line and b.needs is None]
    run_blocks([*before, block])


# --------------------------------------------------------------------------- links

_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _anchor(heading: str) -> str:
    """GitHub's id for a heading: lowercase, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = page.read_text(encoding="utf-8")
    text = re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)
    return {_anchor(m[1]) for m in re.finditer(r"^#+ (.*)$", text, re.MULTILINE)}


@pytest.mark.parametrize("page", LINKED, ids=_page_id)
def test_relative_links_resolve(page):
    """Every relative link names a file that exists, and a heading of it that exists."""
    broken = []
    for target in _LINK.findall(page.read_text(encoding="utf-8")):
        if re.match(r"^[a-z]+:", target):
            continue  # https:, mailto:
        file, _, anchor = target.partition("#")
        path = (page.parent / file).resolve() if file else page
        if not path.exists() or (anchor and path.suffix == ".md" and anchor not in _anchors(path)):
            broken.append(target)
    assert not broken, f"{_page_id(page)}: broken links {broken}"


def test_the_index_lists_every_page():
    """docs/index.md links every page of docs/, and the README links the index."""
    index = (ROOT / "docs" / "index.md").read_text(encoding="utf-8")
    pages = [p.name for p in PAGES if p.parent.name == "docs" and p.name != "index.md"]
    assert [name for name in pages if f"]({name})" not in index] == []
    assert "](docs/index.md)" in (ROOT / "README.md").read_text(encoding="utf-8")
