"""Conversion on Apache Beam (``--engine beam``) against the local engine.

Runs where the ``beam`` extra is installed (``bash scripts/test-beam.sh``); in the default
environment only the "not installed" message is checked.
"""

from __future__ import annotations

import importlib.util
import json

import pytest

from tfrecord_tools import convert_image_folder, convert_mnist, storage
from tfrecord_tools.cli import main
from tfrecord_tools.errors import ConversionError

from ..helpers import make_mnist

HAVE_BEAM = importlib.util.find_spec("apache_beam") is not None
needs_beam = pytest.mark.skipif(not HAVE_BEAM, reason="the beam extra is not installed")

VARYING = ("created", "engine")  # manifest keys that may differ between runs and engines


def _content(out) -> dict[str, bytes]:
    """Every file of a finished dataset folder, by name (the work folder must be gone)."""
    files = {p.name: p.read_bytes() for p in out.iterdir()}
    assert not any(p.is_dir() for p in out.iterdir()), sorted(files)
    return files


def _same_output(local, beam, *, same_source: bool = True) -> None:
    a, b = _content(local), _content(beam)
    assert sorted(a) == sorted(b)
    manifests = [json.loads(x.pop("dataset.json")) for x in (a, b)]
    for m in manifests:
        for key in VARYING:
            m.pop(key)
        m["source"].pop("path", None)
        if not same_source:  # the fingerprint of the source's location and listing
            m.pop("conversion")
    assert manifests[0] == manifests[1]
    assert a == b  # shards, indexes and labels.txt byte for byte


@needs_beam
def test_beam_image_folder_output_equals_the_local_engine(image_folder, tmp_path):
    options = {"split": "train=0.75,validation=0.25", "shards": 4, "seed": 3, "quiet": True}
    local = convert_image_folder(image_folder, tmp_path / "local", workers=2, **options)
    beam = convert_image_folder(
        image_folder, tmp_path / "beam", engine="beam", workers=2, **options
    )
    _same_output(tmp_path / "local", tmp_path / "beam")
    assert beam.num_examples == local.num_examples
    assert beam.skipped_by_reason == local.skipped_by_reason
    manifest = json.loads((tmp_path / "beam" / "dataset.json").read_text())
    assert manifest["engine"] == {"name": "beam", "runner": "FnApiRunner"}
    assert main(["verify", str(tmp_path / "beam"), "--quiet"]) == 0


@needs_beam
def test_beam_mnist_and_cli_pass_pipeline_options(tmp_path, capsys):
    make_mnist(tmp_path / "src", 30, 10)
    convert_mnist(tmp_path / "src", tmp_path / "local", shards=3, workers=1, quiet=True)
    code = main(
        [
            "convert",
            "mnist",
            str(tmp_path / "src"),
            str(tmp_path / "beam"),
            "--shards",
            "3",
            "--workers",
            "1",
            "--engine",
            "beam",
            "--runner",
            "FnApiRunner",
            "--",
            "--direct_running_mode=in_memory",  # a Beam pipeline option, passed through
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "beam: 3 shard jobs on FnApiRunner" in out
    _same_output(tmp_path / "local", tmp_path / "beam")


@needs_beam
def test_beam_run_finishes_an_interrupted_conversion(image_folder, tmp_path, monkeypatch):
    from tfrecord_tools.convert import local as engine

    real_run_job = engine.run_job
    calls = []

    def dies_on_second_shard(job, report=None):
        calls.append(job.filename)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_run_job(job, report)

    monkeypatch.setattr(engine, "run_job", dies_on_second_shard)
    with pytest.raises(KeyboardInterrupt):
        convert_image_folder(image_folder, tmp_path / "out", shards=4, workers=1, quiet=True)
    monkeypatch.undo()
    summary = convert_image_folder(
        image_folder, tmp_path / "out", shards=4, engine="beam", workers=1, quiet=True
    )
    assert summary.resumed_shards == 1
    convert_image_folder(image_folder, tmp_path / "local", shards=4, workers=1, quiet=True)
    _same_output(tmp_path / "local", tmp_path / "out")


@needs_beam
def test_beam_converts_from_and_to_s3_urls(s3_server, clean_folder, tmp_path):
    """Beam's SDK worker processes (two) read the images and upload the shards by URL, with
    no mount; the output equals the local engine's from the local folder."""
    bucket = s3_server.new_bucket()
    src = storage.join(bucket, "photos")
    for rel, _size in storage.walk_files(clean_folder):
        storage.put_file(clean_folder / rel, storage.join(src, rel))
    out = storage.join(bucket, "out")
    options = {"name": "flowers", "split": "train=0.75,validation=0.25", "shards": 4}
    convert_image_folder(clean_folder, tmp_path / "local", workers=2, quiet=True, **options)
    summary = convert_image_folder(src, out, engine="beam", workers=2, quiet=True, **options)
    assert summary.out_dir == out
    for rel, _size in storage.walk_files(out):  # the work folder is gone: files only
        (tmp_path / "beam").mkdir(exist_ok=True)
        (tmp_path / "beam" / rel).write_bytes(storage.read_bytes(storage.join(out, rel)))
    _same_output(tmp_path / "local", tmp_path / "beam", same_source=False)
    manifest = json.loads((tmp_path / "beam" / "dataset.json").read_text())
    assert manifest["source"]["path"] == src
    assert manifest["engine"] == {"name": "beam", "runner": "FnApiRunner"}


def test_without_beam_the_engine_says_how_to_install(image_folder, tmp_path, capsys):
    if HAVE_BEAM:
        pytest.skip("the beam extra is installed")
    with pytest.raises(ConversionError, match=r'pip install "tfrecord-tools\[beam\]"'):
        convert_image_folder(image_folder, tmp_path / "out", engine="beam")
    code = main(["convert", "images", str(image_folder), str(tmp_path / "o"), "--engine", "beam"])
    assert code == 2
    assert "tfrecord-tools[beam]" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_beam_only_options_need_the_beam_engine(image_folder, tmp_path, capsys):
    with pytest.raises(ConversionError, match="need engine='beam'"):
        convert_image_folder(image_folder, tmp_path / "out", runner="DataflowRunner")
    with pytest.raises(SystemExit):
        main(["convert", "images", str(image_folder), str(tmp_path / "o"), "--project=x"])
    assert "unrecognized arguments: --project=x" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # a typo is not forwarded to Beam, even with the engine
        main(["convert", "images", str(image_folder), "o", "--engine", "beam", "--shrads=3"])
    assert "unrecognized arguments: --shrads=3" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["convert", "images", str(image_folder), str(tmp_path / "o"), "--", "--project=x"])
    assert "need --engine beam" in capsys.readouterr().err
