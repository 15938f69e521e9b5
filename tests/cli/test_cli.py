"""The CLI: in-process for speed, and once by subprocess for the real entry points."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from tfrecord_tools.cli import main

from ..conftest import BAD, GOOD_PER_CLASS
from ..helpers import make_mnist


def test_convert_images_prints_summary(image_folder, tmp_path, capsys):
    code = main(
        [
            "convert",
            "images",
            str(image_folder),
            str(tmp_path),
            "--name",
            "pets",
            "--split",
            "train=0.75,validation=0.25",
            "--shards",
            "3",
            "--workers",
            "2",
        ]
    )
    assert code == 0
    out = capsys.readouterr()
    assert "train" in out.out and "validation" in out.out and "skipped 5" in out.out
    # the progress bar (workers report through a queue) got to its total: no increment lost
    last = out.err.rstrip().split("\r")[-1]
    assert re.search(r"100%\|\S+\| (\d+\.0)/\1 \[.*img/s", last), last
    manifest = json.loads((tmp_path / "dataset.json").read_text())
    assert sum(s["num_examples"] for s in manifest["splits"].values()) == sum(
        GOOD_PER_CLASS.values()
    )
    assert len(manifest["source"]["skipped"]) == len(BAD)


def test_strict_exits_non_zero_naming_the_file(image_folder, tmp_path, capsys):
    code = main(["convert", "images", str(image_folder), str(tmp_path), "--strict", "-q"])
    err = capsys.readouterr().err
    assert code == 2
    assert "error:" in err and "--strict" in err
    assert any(path.split("/")[-1] in err for path in BAD)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["convert", "images", "/no/such/dir", "OUT"], "/no/such/dir: not a folder"),
        (["convert", "images", ".", "OUT", "--shard-size", "lots"], "cannot read size"),
        (["convert", "mnist", "/no/such/dir", "OUT"], "/no/such/dir"),
    ],
)
def test_errors_exit_2_with_message(argv, message, capsys, tmp_path):
    argv = [a.replace("OUT", str(tmp_path / "out")) for a in argv]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["convert", "images", "--shards", "2", "--shard-size", "1MB", "a", "b"])
    assert info.value.code == 2
    assert "not allowed with" in capsys.readouterr().err


def test_module_entry_point_converts_mnist(tmp_path):
    make_mnist(tmp_path / "src", n_train=12, n_test=5)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tfrecord_tools",
            "convert",
            "mnist",
            str(tmp_path / "src"),
            str(tmp_path / "out"),
            "--encoding",
            "raw",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "train" in proc.stdout and "12" in proc.stdout and "test" in proc.stdout
    assert (tmp_path / "out" / "dataset.json").exists()
