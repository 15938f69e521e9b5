"""Options and errors at the edges users touch: reader options, a hand-edited manifest,
third-party TFRecord files, the CLI's help and its log lines. Every error's message is
asserted, not only its type."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import tfrecord_tools
from tfrecord_tools import TFRecordToolsError, convert_mnist, count_records, verify
from tfrecord_tools.cli import build_parser, main
from tfrecord_tools.format.framing import iter_records
from tfrecord_tools.format.writer import ShardWriter

from ..helpers import make_mnist

N_TRAIN, N_TEST = 12, 4


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small MNIST dataset folder (uncompressed, several train shards); copy it to change
    it."""
    src = tmp_path_factory.mktemp("mnist-src")
    make_mnist(src, n_train=N_TRAIN, n_test=N_TEST)
    out = tmp_path_factory.mktemp("mnist")
    convert_mnist(src, out, shards=4, workers=2, quiet=True)
    return out


@pytest.fixture(scope="module")
def reader_inputs(converted: Path, clean_folder: Path) -> dict[str, tuple]:
    """{reader name: (reader, the path it reads)}; needs TensorFlow."""
    pytest.importorskip("tensorflow")
    return {
        "make_dataset": (tfrecord_tools.make_dataset, converted),
        "make_raw_dataset": (tfrecord_tools.make_raw_dataset, clean_folder),
    }


READERS = ["make_dataset", "make_raw_dataset"]

# --------------------------------------------------------------------------- reader options

BAD_IMAGE_SIZES = [
    # (image_size, the message)
    pytest.param(0, "image_size must be positive, got (0, 0)", id="0"),
    pytest.param((0, 5), "image_size must be positive, got (0, 5)", id="0x5"),
    pytest.param((5, -1), "image_size must be positive, got (5, -1)", id="5x-1"),
    pytest.param(
        (3, 4, 5), "image_size must be N or (height, width), got (3, 4, 5)", id="three-sizes"
    ),
    pytest.param("big", "image_size must be N or (height, width), got 'big'", id="a-word"),
]


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize(("image_size", "message"), BAD_IMAGE_SIZES)
def test_bad_image_size_is_named(reader_inputs, reader: str, image_size, message: str) -> None:
    read, path = reader_inputs[reader]
    with pytest.raises(TFRecordToolsError) as info:
        read(path, image_size=image_size)
    assert str(info.value) == message


MISSPELT = [
    # (option given, the suggestion)
    ("batchsize", "batch_size"),
    ("imagesize", "image_size"),
    ("shufle", "shuffle"),
    ("chanels", "channels"),
]


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize(("option", "suggestion"), MISSPELT)
def test_misspelt_option_is_named_with_a_suggestion(
    reader_inputs, reader: str, option: str, suggestion: str
) -> None:
    read, path = reader_inputs[reader]
    with pytest.raises(TFRecordToolsError) as info:
        read(path, **{option: 32})
    message = str(info.value)
    assert message.startswith(f"unknown option {option!r} (did you mean {suggestion!r}?); ")
    valid = message.split("; valid options: ")[1].split(", ")
    assert {"batch_size", "image_size", "channels", "shuffle", "seed"} <= set(valid)
    assert option not in valid


def test_unknown_option_without_a_close_match_lists_the_valid_ones(reader_inputs) -> None:
    read, path = reader_inputs["make_dataset"]
    with pytest.raises(TFRecordToolsError) as info:
        read(path, colour="red")
    message = str(info.value)
    assert message.startswith("unknown option 'colour'; valid options: ")
    assert "did you mean" not in message


@pytest.mark.parametrize(
    ("option", "suggestion"), [("compresion", "compression"), ("splt", "split")]
)
def test_misspelt_make_dataset_argument_is_suggested(
    reader_inputs, option: str, suggestion: str
) -> None:
    read, path = reader_inputs["make_dataset"]
    with pytest.raises(TFRecordToolsError) as info:
        read(path, **{option: "x"})
    assert f"did you mean {suggestion!r}?" in str(info.value)


# --------------------------------------------------------------------------- hand-edited manifest

SHARD_COUNT = '"splits"."train"."shards"[0]."num_examples"'
SHARD_COUNT_KEYS = ("splits", "train", "shards", 0, "num_examples")
BAD_MANIFEST_VALUES = [
    # (JSON keys to the value, value written, where the message says it is, found as)
    pytest.param(SHARD_COUNT_KEYS, "500", SHARD_COUNT, '"500"', id="string"),
    pytest.param(SHARD_COUNT_KEYS, -1, SHARD_COUNT, "-1", id="negative"),
    pytest.param(SHARD_COUNT_KEYS, True, SHARD_COUNT, "true", id="boolean"),
    pytest.param(
        ("splits", "train", "num_examples"),
        "12",
        '"splits"."train"."num_examples"',
        '"12"',
        id="split-total-string",
    ),
]


def _edit_manifest(converted: Path, tmp_path: Path, keys: tuple, value: object) -> Path:
    """A copy of ``converted`` whose dataset.json holds ``value`` at ``keys``."""
    out = tmp_path / "edited"
    shutil.copytree(converted, out)
    manifest = json.loads((out / "dataset.json").read_text())
    *parents, last = keys
    node = manifest
    for key in parents:
        node = node[key]
    node[last] = value
    (out / "dataset.json").write_text(json.dumps(manifest, indent=2))
    return out


@pytest.mark.parametrize("tool", [verify, count_records], ids=lambda f: f.__name__)
@pytest.mark.parametrize(("keys", "value", "where", "found"), BAD_MANIFEST_VALUES)
def test_hand_edited_manifest_value_is_named(
    converted, tmp_path, tool, keys, value, where: str, found: str
) -> None:
    out = _edit_manifest(converted, tmp_path, keys, value)
    with pytest.raises(TFRecordToolsError) as info:
        tool(out)
    assert str(info.value) == (
        f"{out / 'dataset.json'}: {where} must be a whole number >= 0, found {found}"
    )


@pytest.mark.parametrize("command", ["verify", "count"])
def test_cli_reports_a_hand_edited_manifest_without_traceback(
    converted, tmp_path, capsys, command: str
) -> None:
    out = _edit_manifest(converted, tmp_path, SHARD_COUNT_KEYS, "500")
    assert main([command, str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.err == (
        f"tfrecord-tools: error: {out / 'dataset.json'}: {SHARD_COUNT} must be a whole "
        'number >= 0, found "500"\n'
    )
    assert captured.out == ""


# --------------------------------------------------------------------------- third-party files


def _train_shards(converted: Path) -> list[Path]:
    return sorted(converted.glob("mnist-train.tfrecord-?????-of-?????"))


def _rewrite_with_shard_writer(shards: list[Path], target: Path) -> None:
    """The records of ``shards`` in one file written by our writer (it adds an index)."""
    with ShardWriter(target) as writer:
        for shard in shards:
            for record in iter_records(shard, "none"):
                writer.write(bytes(record.data))
        writer.commit()


def _copy_without_index(shards: list[Path], target: Path) -> None:
    """The bytes of ``shards`` one after the other: a valid TFRecord file, no index."""
    target.write_bytes(b"".join(shard.read_bytes() for shard in shards))


@pytest.mark.parametrize(
    ("write", "count_options"),
    [(_rewrite_with_shard_writer, {}), (_copy_without_index, {"scan": True})],
    ids=["shard-writer-with-index", "copied-no-index"],
)
def test_third_party_tfrec_file_is_found_by_count_and_reader(
    converted, reader_inputs, tmp_path, write, count_options: dict
) -> None:
    folder = tmp_path / "third-party"
    folder.mkdir()
    write(_train_shards(converted), folder / "x.tfrec")

    counted = count_records(folder, **count_options)
    assert [shard.file for shard in counted.shards] == ["x.tfrec"]
    assert counted.total == N_TRAIN
    make_dataset, _ = reader_inputs["make_dataset"]
    assert sum(1 for _ in make_dataset(folder)) == N_TRAIN


def test_third_party_file_without_index_needs_scan_to_count(converted, tmp_path) -> None:
    folder = tmp_path / "third-party"
    folder.mkdir()
    _copy_without_index(_train_shards(converted), folder / "x.tfrec")
    with pytest.raises(TFRecordToolsError) as info:
        count_records(folder)
    assert str(info.value) == (
        f"{folder / 'x.tfrec'}: no manifest entry and no x.tfrec.idx; pass --scan to count by "
        "reading record headers, or run `tfrecord-tools index` once"
    )


# --------------------------------------------------------------------------- CLI help and logs


def test_strict_help_says_it_exits_2(capsys, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # one help line per option
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["convert", "images", "--help"])
    assert info.value.code == 0
    help_lines = capsys.readouterr().out.splitlines()
    strict = [line for line in help_lines if line.strip().startswith("--strict")]
    assert len(strict) == 1
    assert "exit 2" in strict[0]


@pytest.fixture
def package_logger():
    """The "tfrecord_tools" logger as a new process has it (an earlier in-process ``main``
    left a handler bound to that test's stderr, and propagate off, which makes pytest attach
    its own capture handlers to it); its state is restored afterwards."""
    log = logging.getLogger("tfrecord_tools")
    saved = log.handlers[:], log.level, log.propagate
    log.handlers.clear()
    log.setLevel(logging.NOTSET)
    log.propagate = True
    yield log
    log.handlers[:], log.level, log.propagate = saved


LOG_CASES = [
    # (arguments after the dataset, level logged, shown on stderr)
    pytest.param([], logging.INFO, True, id="info"),
    pytest.param(["-q"], logging.INFO, False, id="quiet-info"),
    pytest.param(["-q"], logging.WARNING, True, id="quiet-warning"),
]


@pytest.mark.parametrize(("quiet", "level", "shown"), LOG_CASES)
def test_cli_shows_the_package_log_lines(
    converted, package_logger, capsys, quiet: list[str], level: int, shown: bool
) -> None:
    for _ in range(2):  # a second call adds no second handler
        assert main(["verify", str(converted), *quiet]) == 0
    capsys.readouterr()
    logging.getLogger("tfrecord_tools.convert.sources.mnist_idx").log(level, "downloading x")
    err = capsys.readouterr().err
    assert err == ("downloading x\n" if shown else "")


def test_cli_log_lines_reach_stderr_of_the_real_process(converted) -> None:
    script = (
        "import logging, sys\n"
        "from tfrecord_tools.cli import main\n"
        "code = main(['count', sys.argv[1]])\n"
        "logging.getLogger('tfrecord_tools.convert.sources.mnist_idx').info('downloading x')\n"
        "sys.exit(code)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(converted)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines()[-1] == "downloading x"
    assert f"train: {N_TRAIN} records" in proc.stdout
