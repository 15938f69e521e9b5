"""Local = URL parity: every public entry point gives the same answer on a local folder, on
fsspec's ``memory://``, on moto's S3 server and on the GCS emulator (``buckets.py``).

One small set of data is made once (``data``): an image folder (a dozen tiny JPEGs and
PNGs, one of them EXIF-rotated) and its conversions: ``ds`` (ours: 2 splits, 2 shards each),
``gz`` (the same, gzip), ``slim`` (bare third-party shards named ``train-00000-of-00002``,
no index, no manifest) and ``tfds`` (a folder as TFDS prepares it: ``dataset_info.json``,
no ``dataset.json``). It is uploaded once per transport (``place``); each test computes an
answer there and compares it with the same answer computed on the local folder (made once
per module). Paths inside answers are written relative to the place's root (``ROOT``), so
"the same" means the same records, counts, problems, offsets and bytes.

Tests that change data (damage, repair, index) work on a fresh copy (``Place.copy``).
"""

from __future__ import annotations

import itertools
import json
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import tfrecord_tools as tt
from tfrecord_tools import storage
from tfrecord_tools.errors import TFRecordToolsError
from tfrecord_tools.format.framing import iter_headers
from tfrecord_tools.format.naming import LABELS, MANIFEST

from .buckets import Server
from .helpers import encode, smooth_rgb

TRANSPORTS = ["local", "memory", "s3", "gs"]
CLASSES = ["cat", "dog"]
PER_CLASS = 6
#: (shard of ``ds`` to damage, record in it): its offset comes from the shard's .idx
DAMAGED_SHARD, DAMAGED_RECORD = "images-train.tfrecord-00000-of-00002", 1


# --------------------------------------------------------------------------- the data


def _make_images(folder: Path) -> Path:
    """Two classes of six small images, JPEG and PNG, of a few sizes; one JPEG carries EXIF
    orientation 6 (the readers turn it upright); and files that are not data."""
    rng = np.random.default_rng(0)
    for name in CLASSES:
        (folder / name).mkdir(parents=True)
        for i in range(PER_CLASS):
            img = Image.fromarray(smooth_rgb(rng, 10 + i, 14))
            if i % 2:
                kw = {"quality": 90}
                if (name, i) == ("dog", 3):
                    exif = Image.Exif()
                    exif[0x0112] = 6
                    kw["exif"] = exif.tobytes()
                (folder / name / f"{i}.jpg").write_bytes(encode(img, "JPEG", **kw))
            else:
                (folder / name / f"{i}.png").write_bytes(encode(img, "PNG"))
    # not data, by the lister's rules (dataset/images.py), wherever the folder is
    (folder / "cat" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (folder / ".hidden").mkdir()
    (folder / ".hidden" / "x.png").write_bytes(encode(Image.new("RGB", (4, 4)), "PNG"))
    (folder / "README").write_text("not in a class folder")
    return folder


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """The local originals: ``images``, ``ds``, ``gz``, ``slim``, ``tfds``."""
    root = tmp_path_factory.mktemp("parity")
    images = _make_images(root / "images")
    split = "train=0.5,validation=0.5"
    for name, compression in (("ds", "none"), ("gz", "gzip")):
        tt.convert_image_folder(
            images, root / name, split=split, shards=4, workers=1, compression=compression,
            quiet=True,
        )  # fmt: skip
    slim = root / "slim"
    slim.mkdir()
    for i in range(2):
        shutil.copyfile(
            root / "ds" / f"images-train.tfrecord-0000{i}-of-00002",
            slim / f"train-0000{i}-of-00002",
        )
    tfds = root / "tfds"
    shutil.copytree(root / "ds", tfds, ignore=lambda d, names: [MANIFEST, LABELS])
    return root


def upload(folder: Path, url: str) -> str:
    """Every file under ``folder`` put at ``url``, one object each (manifests last).
    gcp-storage-emulator drops a trailing ``\\r`` of an upload: no file may end in one."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    for path in sorted(files, key=lambda p: p.name == MANIFEST):
        if url.startswith("gs://") and path.read_bytes().endswith(b"\r"):
            pytest.fail(f"{path} ends in \\r, which the GCS emulator would drop")
        storage.put_file(path, storage.join(url, path.relative_to(folder).as_posix()))
    return url


_copies = itertools.count()


@dataclass(frozen=True)
class Place:
    """The data on one transport: ``root`` a local folder (a ``Path``) or a URL."""

    kind: str
    root: Path | str
    scratch: Path  # local work space (copies to edit before they are uploaded)

    def at(self, *parts: str) -> Path | str:
        """A location under the root, as a user names it (a Path locally, else a URL)."""
        if isinstance(self.root, Path):
            return self.root.joinpath(*parts)
        return storage.join(self.root, *parts)

    def rel(self, value: Any) -> Any:
        """``value`` with this place's root written ``ROOT`` (``relative``)."""
        return relative(value, self.root, "ROOT")

    def copy(self, folder: Path, edit: Callable[[Path], None] | None = None) -> Path | str:
        """A fresh copy of the local ``folder`` here (``edit``-ed first): its location."""
        name = f"copy{next(_copies)}"
        local = self.scratch / name
        shutil.copytree(folder, local)
        if edit is not None:
            edit(local)
        if self.kind == "local":
            return local
        return upload(local, storage.join(self.root, "copies", name))

    def fresh(self) -> Path | str:
        """A location here where nothing is yet."""
        name = f"new{next(_copies)}"
        return self.scratch / name if self.kind == "local" else self.at("new", name)


def _make_place(kind: str, data: Path, request) -> Place:
    scratch = request.getfixturevalue("tmp_path_factory").mktemp(f"parity-{kind}")
    if kind == "local":  # a copy: no path in the data (the manifest's source) is its root
        return Place(kind, shutil.copytree(data, scratch / "root"), scratch)
    if kind == "memory":
        pytest.importorskip("fsspec", reason="fsspec missing: pip install -e '.[cloud,test]'")
        bucket = Server("memory", None).new_bucket()
    else:
        bucket = request.getfixturevalue("s3_server" if kind == "s3" else "gcs_server").new_bucket()
    return Place(kind, upload(data, storage.join(bucket, "parity")), scratch)


@pytest.fixture(scope="module")
def local(data, request) -> Place:
    return _make_place("local", data, request)


@pytest.fixture(scope="module", params=TRANSPORTS)
def place(request, data, local) -> Place:
    """The data on each transport in turn (uploaded once per module)."""
    return local if request.param == "local" else _make_place(request.param, data, request)


def relative(value: Any, base: Path | str, name: str) -> Any:
    """``value`` with ``base`` written ``name`` in every string inside it (dataclasses as
    dicts), so that answers of two places compare."""
    if hasattr(value, "__dataclass_fields__"):
        value = asdict(value)
    if isinstance(value, Path):
        value = str(value)
    if isinstance(value, str):
        return value.replace(str(base), name)
    if isinstance(value, dict):
        return {relative(k, base, name): relative(v, base, name) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        items = [relative(v, base, name) for v in value]
        return tuple(items) if isinstance(value, tuple) else items
    return value


_answers: dict[tuple, Any] = {}


def same_as_local(answer: Callable[..., Any], place: Place, local: Place, *args: Any) -> Any:
    """Assert that ``answer(place, *args)`` equals ``answer(local, *args)`` (computed once
    per module), each with its root written ROOT; returns the answer."""
    key = (answer.__qualname__, repr(args))
    if key not in _answers:
        _answers[key] = local.rel(answer(local, *args))
    got = _answers[key] if place is local else place.rel(answer(place, *args))
    assert got == _answers[key]
    return got


def _damage(folder: Path) -> None:
    """Flip a byte in the data of record DAMAGED_RECORD of DAMAGED_SHARD."""
    shard = folder / DAMAGED_SHARD
    offset, length = damaged_record(folder)
    data = bytearray(shard.read_bytes())
    data[offset + length // 2] ^= 0xFF
    shard.write_bytes(bytes(data))


def damaged_record(folder: Path) -> tuple[int, int]:
    """(offset, length) of the record ``_damage`` damages, from the shard's index."""
    line = (folder / f"{DAMAGED_SHARD}.idx").read_text().splitlines()[DAMAGED_RECORD]
    offset, length = map(int, line.split())
    return offset, length


def pixels(image: np.ndarray, label: int) -> tuple[tuple[int, ...], bytes, int]:
    image = np.asarray(image)
    return image.shape, image.tobytes(), int(label)


# --------------------------------------------------------------------------- tf.data readers

#: (folder, make_dataset options)
DATASET_CASES = [
    ("ds", {}),
    ("ds", {"shuffle": "global", "seed": 1, "shuffle_buffer": 32}),  # ranged reads by .idx
    ("gz", {}),
    ("slim", {}),
    ("tfds", {"split": "validation"}),
]


def _records(ds) -> list:
    return [pixels(x, y) for x, y in ds.as_numpy_iterator()]


def _make_dataset(place: Place, folder: str, options: dict) -> list:
    got = _records(tt.make_dataset(place.at(folder), **options))
    assert len(got) == PER_CLASS  # half the images, or slim's two train shards
    return got


@pytest.mark.parametrize(("folder", "options"), DATASET_CASES, ids=lambda v: str(v))
def test_make_dataset(place, local, folder, options):
    got = same_as_local(_make_dataset, place, local, folder, options)
    assert len({shape for shape, _, _ in got}) > 1  # images of several sizes, one turned


def _make_raw_dataset(place: Place, options: dict) -> list:
    return _records(tt.make_raw_dataset(place.at("images"), **options))


def test_make_raw_dataset(place, local):
    got = same_as_local(_make_raw_dataset, place, local, {})
    assert len(got) == PER_CLASS * len(CLASSES)
    assert [label for *_, label in got] == [0] * PER_CLASS + [1] * PER_CLASS


def test_raw_twin_equals_the_converted_records(local):
    """What the parity tests compare is itself right: the raw files and the records they
    became decode alike (every transport equals these)."""
    raw = same_as_local(_make_raw_dataset, local, local, {})
    train = same_as_local(_make_dataset, local, local, "ds", {})
    validation = same_as_local(_make_dataset, local, local, "ds", {"split": "validation"})
    assert sorted(raw) == sorted(train + validation)


# --------------------------------------------------------------------------- TF-free reader

#: (folder, TFRecordDataSource options)
SOURCE_CASES = [
    ("ds", {}),
    ("ds", {"split": "validation", "image_size": 8, "channels": 1}),
    ("gz", {}),
    ("slim", {}),
    ("tfds", {"split": "validation"}),
]


def _batches(batches) -> list:
    """Each batch as its size and (shape, pixels, label) per image."""
    return [
        (len(labels), [pixels(x, y) for x, y in zip(images, labels, strict=True)])
        for images, labels in batches
    ]


def _data_source(place: Place, folder: str, options: dict) -> dict:
    src = tt.TFRecordDataSource(place.at(folder), **options)
    answer: dict[str, Any] = {"len": len(src), "compression": src.compression}
    if src.compression == "none":
        answer["items"] = [pixels(*src[i]) for i in range(len(src))]
        answer["last"] = pixels(*src[-1])
    else:  # no random access: the same error everywhere
        with pytest.raises(TFRecordToolsError, match="no random access") as caught:
            src[0]
        answer["items"] = str(caught.value)
    answer["batches"] = _batches(src.batches(4))
    answer["stream"] = [pixels(*r) for r in src.stream()]
    answer["shard_counts"] = src.shard_counts()
    assert answer["len"] == PER_CLASS == len(answer["stream"])
    assert [n for n, _ in answer["batches"]] == [4, 2]
    if src.compression == "none":
        assert answer["stream"] == answer["items"]
    return answer


@pytest.mark.parametrize(("folder", "options"), SOURCE_CASES, ids=lambda v: str(v))
def test_data_source(place, local, folder, options):
    same_as_local(_data_source, place, local, folder, options)


def _damaged_source(place: Place, data: Path) -> dict:
    """What a source of a dataset with one damaged record does: raise it (``src[i]``,
    ``stream``), or with ``skip_corrupt`` skip it and list it."""
    copy = place.copy(data / "ds", _damage)
    strict = tt.TFRecordDataSource(copy)
    errors = []
    for read in (lambda: strict[DAMAGED_RECORD], lambda: list(strict.stream())):
        with pytest.raises(TFRecordToolsError) as caught:
            read()
        errors.append(str(caught.value))
    answer: dict[str, Any] = {"errors": errors}
    reads = {
        "items": lambda src: [pixels(*src[i]) for i in range(len(src))],
        "batches": lambda src: _batches(src.batches(4)),
        "stream": lambda src: [pixels(*r) for r in src.stream()],
    }
    for name, read in reads.items():
        src = tt.TFRecordDataSource(copy, skip_corrupt=True)
        answer[name] = read(src)
        answer[f"{name} skipped"] = [(e.path, e.index, e.offset, e.kind) for e in src.skipped]
    assert all(answer[f"{name} skipped"] for name in reads)
    assert f"record {DAMAGED_RECORD} at byte {damaged_record(data / 'ds')[0]}" in errors[0]
    return relative(answer, copy, "COPY")


def test_data_source_with_a_damaged_record(place, local, data):
    same_as_local(_damaged_source, place, local, data)


# --------------------------------------------------------------------------- check tools

#: what the check tools are pointed at, under the root
TARGETS = ["ds", "gz", "slim", "tfds", "ds/images-train.tfrecord-*", f"ds/{DAMAGED_SHARD}"]


def _inspect(place: Place, target: str) -> dict:
    report = tt.inspect_dataset(place.at(target))
    answer = report.to_json()
    assert answer.pop("path") == str(place.at(target))
    answer["text"] = report.format_text().splitlines()[1:]  # the first line is the path
    assert answer["sample"]["records"] > 0
    return answer


@pytest.mark.parametrize("target", TARGETS)
def test_inspect_dataset(place, local, target):
    same_as_local(_inspect, place, local, target)


def _count(place: Place, target: str) -> dict:
    answer: dict[str, Any] = {}
    try:
        answer["plain"] = tt.count_records(place.at(target)).to_json()
    except TFRecordToolsError as e:  # bare shards without an index: --scan needed
        answer["plain"] = str(e)
    report = tt.count_records(place.at(target), scan=True)
    answer["scan"] = report.to_json()
    answer["text"] = report.format_text()
    assert report.total > 0
    return answer


@pytest.mark.parametrize("target", TARGETS)
def test_count_records(place, local, target):
    got = same_as_local(_count, place, local, target)
    if target == "slim":
        assert "pass --scan" in got["plain"]


def _verify_answer(report) -> dict:
    answer = asdict(report)
    del answer["seconds"]
    answer["ok"], answer["records"] = report.ok, report.records
    answer["problems shown"] = [str(p) for p in report.problems]
    return answer


def _verify(place: Place, target: str) -> dict:
    answer = _verify_answer(tt.verify(place.at(target)))
    assert answer["ok"], answer["problems shown"]
    return answer


@pytest.mark.parametrize("target", TARGETS)
def test_verify(place, local, target):
    same_as_local(_verify, place, local, target)


def _verify_damaged(place: Place, data: Path) -> dict:
    copy = place.copy(data / "ds", _damage)
    answer = _verify_answer(tt.verify(copy))
    kinds = [(p["kind"], p["index"], p["offset"]) for p in answer["problems"]]
    assert kinds == [
        ("data CRC mismatch", DAMAGED_RECORD, damaged_record(data / "ds")[0]),
        ("sha256 mismatch", None, None),
    ]
    return relative(answer, copy, "COPY")


def test_verify_a_damaged_shard(place, local, data):
    same_as_local(_verify_damaged, place, local, data)


def _output(folder: Path | str, source: Path | str) -> dict:
    """Every file a tool wrote under ``folder``: its bytes, and the manifest as JSON with
    ``source`` (which it names) written SOURCE."""
    files: dict[str, Any] = {}
    for rel, _size in storage.walk_files(folder):
        data = storage.read_bytes(storage.join(folder, rel))
        files[rel] = relative(json.loads(data), source, "SOURCE") if rel == MANIFEST else data
    return files


def _repair(place: Place, data: Path) -> dict:
    copy = place.copy(data / "ds", _damage)
    out = place.fresh()
    report = tt.repair(copy, out)
    assert report.kept == 2 * PER_CLASS - 1 and report.records_dropped == 1
    answer = {
        "report": relative(relative(asdict(report), copy, "COPY"), out, "OUT"),
        "text": relative(relative(report.format_text(), copy, "COPY"), out, "OUT"),
        "files": _output(out, copy),
    }
    again = place.fresh()  # a clean source gives the same bytes back
    clean = tt.repair(out, again)
    assert clean.clean
    answer["again"] = relative(_output(again, out), out, "OUT")
    return answer


def test_repair(place, local, data):
    got = same_as_local(_repair, place, local, data)
    repaired = got["files"][MANIFEST]["repaired"]
    assert repaired["source"] == "SOURCE" and repaired["records_dropped"] == 1


def _without_indexes(folder: Path) -> None:
    for index in folder.glob("*.idx"):
        index.unlink()


def _index(place: Place, data: Path, folder: str) -> dict:
    copy = place.copy(data / folder, _without_indexes)
    results = tt.index_shards([copy])
    answer = {
        "results": relative(results, copy, "COPY"),
        "files": {k: v for k, v in _output(copy, copy).items() if k.endswith(".idx")},
    }
    assert len(answer["files"]) == len(results) > 0
    return answer


@pytest.mark.parametrize("folder", ["slim", "gz"])
def test_index_shards(place, local, data, folder):
    got = same_as_local(_index, place, local, data, folder)
    if folder == "gz":  # and the converter's own index files are what index writes
        assert got["files"] == {p.name: p.read_bytes() for p in sorted((data / "gz").glob("*.idx"))}


# --------------------------------------------------------------------------- damage, every tool


def _cut_gzip(folder: Path) -> None:
    """The first train shard of ``gz`` cut at about two thirds (never just after a ``\\r``:
    the GCS emulator would drop it)."""
    shard = folder / DAMAGED_SHARD
    data = shard.read_bytes()
    cut = len(data) * 2 // 3
    while data[cut - 1] == ord("\r"):
        cut -= 1
    shard.write_bytes(data[:cut])


def _bad_header(folder: Path) -> None:
    """A length byte of record 2 of slim's ``train-00000-of-00002`` flipped (no index: the
    readers find records by their headers)."""
    shard = folder / "train-00000-of-00002"
    offset = list(iter_headers(shard))[2].offset
    data = bytearray(shard.read_bytes())
    data[offset + 1] ^= 0x40
    shard.write_bytes(bytes(data))


def _missing_shard(folder: Path) -> None:
    (folder / "images-validation.tfrecord-00001-of-00002").unlink()


def _drop_last_index_line(folder: Path) -> None:
    """The .idx of the second train shard of ``ds`` loses its last line (the shard and the
    manifest are intact)."""
    index = folder / "images-train.tfrecord-00001-of-00002.idx"
    index.write_text("".join(index.read_text().splitlines(keepends=True)[:-1]))


#: name -> (folder, edit, split the TF-free reader reads, the first problem verify names)
DAMAGE = {
    "cut gzip": ("gz", _cut_gzip, "train", "truncated record"),
    "bad header": ("slim", _bad_header, "train", "length CRC mismatch"),
    "missing shard": ("ds", _missing_shard, "validation", "missing shard"),
    "bad index": ("ds", _drop_last_index_line, "train", "index mismatch"),
}


def _outcome(run: Callable[[], Any]) -> Any:
    """What ``run()`` gives, or the message of the TFRecordToolsError it raises."""
    try:
        return run()
    except TFRecordToolsError as e:
        return f"error: {e}"


def _damaged_tools(place: Place, data: Path, name: str) -> dict:
    """Every TF-free entry point on one kind of damage: what each reports, raises, keeps."""
    folder, edit, split, first_problem = DAMAGE[name]
    copy = place.copy(data / folder, edit)

    def read(how: Callable[[tt.TFRecordDataSource], list], skip: bool = True) -> dict:
        try:
            src = tt.TFRecordDataSource(copy, split=split, skip_corrupt=skip)
        except TFRecordToolsError as e:  # what a source cannot read at all
            return {"got": f"error: {e}"}
        return {"got": _outcome(lambda: how(src)), "skipped": [str(e) for e in src.skipped]}

    out = place.fresh()
    answer = {
        "verify": _verify_answer(tt.verify(copy)),
        "count": _outcome(lambda: tt.count_records(copy, scan=True).to_json()),
        "inspect": _outcome(lambda: tt.inspect_dataset(copy).to_json()["notes"]),
        "stream": read(lambda src: [pixels(*r) for r in src.stream()]),
        "batches": read(lambda src: _batches(src.batches(4))),
        "items": read(lambda src: [pixels(*src[i]) for i in range(len(src))]),
        "strict stream": read(lambda src: [pixels(*r) for r in src.stream()], skip=False),
        "strict batches": read(lambda src: _batches(src.batches(4)), skip=False),
        "repair": _outcome(lambda: asdict(tt.repair(copy, out))),
        "repaired": _outcome(lambda: _output(out, copy)),
    }
    assert answer["verify"]["problems"][0]["kind"] == first_problem
    for strict in ("strict stream", "strict batches"):  # the records are damaged or gone
        assert name == "bad index" or answer[strict]["got"].startswith("error: ")
    return relative(relative(answer, copy, "COPY"), out, "OUT")


@pytest.mark.parametrize("name", list(DAMAGE))
def test_damage_seen_alike_by_every_tool(place, local, data, name):
    same_as_local(_damaged_tools, place, local, data, name)


def _bad_index_read(place: Place, data: Path, options: dict) -> Any:
    copy = place.copy(data / "ds", _drop_last_index_line)
    try:
        got = _records(tt.make_dataset(copy, **options))
    except TFRecordToolsError as e:
        got = f"error: {e}"
    return relative(got, copy, "COPY")


@pytest.mark.parametrize("options", [{}, {"shuffle": "global", "seed": 1}], ids=["plain", "global"])
def test_make_dataset_with_a_bad_index(place, local, data, options):
    """An .idx that does not describe its (intact) shard: the global shuffle, which seeks
    by it, refuses it everywhere; a plain read does not need it, so it must give every
    record everywhere."""
    got = same_as_local(_bad_index_read, place, local, data, options)
    if options:
        assert "rebuild it with `tfrecord-tools index" in got
    else:
        assert len(got) == PER_CLASS
