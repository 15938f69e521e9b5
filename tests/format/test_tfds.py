"""TFDS metadata without TFDS: the JSON a conversion writes for tfds.builder_from_directory,
the tfds-metadata command, and reading a folder TFDS prepared (its dataset_info.json) with
resolve_shards / count / verify. The real TFDS checks these in test_tfds_real.py."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tfrecord_tools import convert_image_folder
from tfrecord_tools.check.count import count_records
from tfrecord_tools.check.verify import verify
from tfrecord_tools.cli import main
from tfrecord_tools.errors import TFRecordToolsError
from tfrecord_tools.format.manifest import read_manifest
from tfrecord_tools.format.tfds import (
    TFDS_FEATURES,
    TFDS_FILES,
    TFDS_INFO,
    TFDS_LABELS,
    build_tfds_metadata,
    file_template,
    read_tfds_info,
    tfds_name,
)
from tfrecord_tools.read.shards import resolve_shards

from ..test_golden import make_golden_folder

_IMAGE = "tensorflow_datasets.core.features.image_feature.Image"


@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tfds")
    src = make_golden_folder(root / "src")
    out = root / "out"
    convert_image_folder(
        src, out, name="golden", split="train=0.7,validation=0.3", shards=3, seed=7, quiet=True
    )
    return out


def _json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_a_conversion_writes_tfds_metadata_matching_its_manifest(converted):
    manifest = read_manifest(converted)
    info = _json(converted / TFDS_INFO)
    assert info["name"] == "golden" and info["fileFormat"] == "tfrecord"
    assert info["version"] == "1.0.0"
    assert [s["name"] for s in info["splits"]] == list(manifest.splits)
    for split in info["splits"]:
        entry = manifest.splits[split["name"]]
        assert split["shardLengths"] == [str(s.num_examples) for s in entry.shards]
        assert split["numBytes"] == str(sum(s.num_bytes for s in entry.shards))
        assert split["filepathTemplate"] == "{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}"
    text = json.dumps(info)
    assert "created" not in text and str(converted) not in text  # deterministic bytes
    assert (converted / TFDS_LABELS).read_text(encoding="utf-8") == "ant\nbee\ncow é\n"


def test_features_flatten_to_our_keys(converted):
    """TFDS joins nested FeaturesDict keys with '/': the leaves must be our record keys."""
    features = _json(converted / TFDS_FEATURES)

    def leaves(node: dict, prefix: str = "") -> dict[str, dict]:
        if "featuresDict" not in node:
            return {prefix: node}
        found = {}
        for key, child in node["featuresDict"]["features"].items():
            found.update(leaves(child, f"{prefix}/{key}" if prefix else key))
        return found

    flat = leaves(features)
    assert set(flat) == set(read_manifest(converted).data["features"])
    assert flat["image/encoded"]["pythonClassName"] == _IMAGE
    assert flat["image/encoded"]["image"]["shape"]["dimensions"] == ["-1", "-1", "3"]
    assert flat["image/class/label"]["classLabel"] == {"numClasses": "3"}


def _manifest(**changes) -> dict:
    data = {
        "format_version": 1,
        "name": "digits",
        "classes": ["0", "1"],
        "compression": "none",
        "splits": {"train": {"num_examples": 5, "shards": [{"file": "x", "num_examples": 5}]}},
    }
    return {**data, **changes}


def test_raw_records_of_one_shape_are_a_uint8_tensor_of_bytes():
    data = _manifest(image_shape=[28, 28, 1], statistics={"image_formats": {"raw": 5}})
    features = json.loads(build_tfds_metadata(data)[TFDS_FEATURES])
    encoded = features["featuresDict"]["features"]["image"]["featuresDict"]["features"]["encoded"]
    assert encoded["tensor"] == {
        "dtype": "uint8",
        "encoding": "bytes",
        "shape": {"dimensions": ["28", "28", "1"]},
    }


@pytest.mark.parametrize(
    ("name", "valid", "template"),
    [
        ("flowers", "flowers", "{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}"),
        ("my-data", "my_data", "my-data-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}"),
        ("my data", "my_data", "my data-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}"),
        ("2024", "d_2024", "2024-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}"),
        ("a{b}", "a_b_", "a{{b}}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}"),
    ],
)
def test_names_tfds_rejects_keep_our_shard_names(name, valid, template):
    assert tfds_name(name) == valid
    assert file_template(name) == template
    shard = f"{name}-train.tfrecord-00000-of-00001"
    formatted = template.format(
        DATASET=valid, SPLIT="train", FILEFORMAT="tfrecord", SHARD_X_OF_Y="00000-of-00001"
    )
    assert formatted == shard


def test_my_data_conversion_says_so(tmp_path):
    src = make_golden_folder(tmp_path / "src")
    summary = convert_image_folder(src, tmp_path / "out", name="my-data", quiet=True)
    info = read_tfds_info(tmp_path / "out")
    assert info.name == "my_data"
    assert all((tmp_path / "out" / f).is_file() for _, f, _ in info.shards)
    assert any("TFDS name 'my_data'" in n for n in summary.notes)
    assert "TFDS name 'my_data'" in summary.format_table()


def test_compressed_output_gets_no_tfds_metadata(tmp_path):
    src = make_golden_folder(tmp_path / "src")
    out = tmp_path / "out"
    convert_image_folder(src, out, quiet=True)
    assert (out / TFDS_INFO).exists()
    summary = convert_image_folder(src, out, compression="gzip", overwrite=True, quiet=True)
    assert not any((out / f).exists() for f in TFDS_FILES)  # none left from the first run
    assert any("TFDS reads only uncompressed" in n for n in summary.notes)
    assert main(["tfds-metadata", str(out)]) == 2


def test_tfds_metadata_command_writes_the_same_bytes(converted, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(converted, copy)
    before = {f: (copy / f).read_bytes() for f in TFDS_FILES}
    for f in TFDS_FILES:
        (copy / f).unlink()
    assert main(["tfds-metadata", str(copy)]) == 0
    assert {f: (copy / f).read_bytes() for f in TFDS_FILES} == before
    assert TFDS_INFO in capsys.readouterr().out


def _as_tfds_folder(converted: Path, dest: Path, *, name: str = "golden") -> Path:
    """A folder laid out as TFDS prepares it: shards and its metadata, no manifest, no
    labels.txt, no .idx files."""
    dest.mkdir()
    for path in converted.iterdir():
        if path.name in TFDS_FILES or (".tfrecord-" in path.name and path.suffix != ".idx"):
            shutil.copy(path, dest / path.name.replace("golden", name))
    return dest


def test_resolve_shards_reads_a_tfds_folder(converted, tmp_path):
    folder = _as_tfds_folder(converted, tmp_path / "tfds")
    listed = resolve_shards(folder, split="train")
    assert [Path(f).name for f in listed.files] == [
        "golden-train.tfrecord-00000-of-00002",
        "golden-train.tfrecord-00001-of-00002",
    ]
    ours = resolve_shards(converted, split="train")
    assert listed.counts == ours.counts and listed.compression == "none"
    with pytest.raises(TFRecordToolsError, match="no split 'test'"):
        resolve_shards(folder, split="test")


def test_count_and_verify_a_tfds_folder_without_a_scan(converted, tmp_path):
    folder = _as_tfds_folder(converted, tmp_path / "tfds")
    report = count_records(folder)
    assert {s.source for s in report.shards} == {"dataset_info"}
    splits = read_manifest(converted).splits
    assert report.by_split == {name: split.num_examples for name, split in splits.items()}
    checked = verify(folder)
    assert checked.ok, checked.problems
    assert checked.records == report.total
    (folder / "golden-validation.tfrecord-00000-of-00001").unlink()
    with pytest.raises(TFRecordToolsError, match=r"listed in the dataset_info\.json"):
        count_records(folder)


def test_a_file_template_with_a_folder(tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "data.tfrecord-00000").write_bytes(b"")
    info = {
        "name": "x",
        "splits": [
            {
                "name": "train",
                "shardLengths": ["0"],
                "filepathTemplate": "{SPLIT}/data.{FILEFORMAT}-{SHARD_INDEX}",
            }
        ],
    }
    (tmp_path / TFDS_INFO).write_text(json.dumps(info))
    assert resolve_shards(tmp_path, split="train").files == [
        str(tmp_path / "train" / "data.tfrecord-00000")
    ]


@pytest.mark.parametrize(
    ("info", "message"),
    [
        ({"name": "x", "splits": [{"name": "train"}]}, 'no "shardLengths"'),
        ({"name": "x", "fileFormat": "array_record", "splits": []}, "only TFRecord"),
        ({"splits": []}, '"name" must be'),
        (
            {"name": "x", "splits": [{"name": "t", "shardLengths": ["a"]}]},
            "must be whole numbers",
        ),
        (
            {
                "name": "x",
                "splits": [{"name": "t", "shardLengths": ["1"], "filepathTemplate": "../{SPLIT}"}],
            },
            "leaves the folder",
        ),
    ],
)
def test_bad_dataset_info_names_file_and_key(tmp_path, info, message):
    (tmp_path / TFDS_INFO).write_text(json.dumps(info))
    with pytest.raises(TFRecordToolsError, match=message) as caught:
        read_tfds_info(tmp_path)
    assert TFDS_INFO in str(caught.value)
