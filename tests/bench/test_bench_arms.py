"""The benchmark's peers of the reader: the hand-written tf.data pipeline and TFDS's
``as_dataset`` give the tfrecord source's batches (shapes, dtypes, labels, the same photos);
CPU time per image in every cell; the TFDS source left out with a note where TFDS is
missing (scripts/test-tfds.sh runs the TFDS cases in .venv-tfds); the plot draws bars for
one setting, lines for a sweep, the TFRecords/raw ratio in its title."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from tfrecord_tools import convert_image_folder
from tfrecord_tools.bench import BenchConfig, BenchError, run_benchmark
from tfrecord_tools.bench import config as bench_config
from tfrecord_tools.bench.config import TFDS_MISSING, has_tfds
from tfrecord_tools.bench.data import prepare_data
from tfrecord_tools.bench.grid import Cell, cell_spec, child_spec, make_cells
from tfrecord_tools.cli import main
from tfrecord_tools.format.tfds import TFDS_INFO
from tfrecord_tools.sample import make_digits

ARMS = [
    "handwritten",
    pytest.param("tfds", marks=pytest.mark.skipif(not has_tfds(), reason="no TFDS")),
]


def _photos(root):
    """12 small photos in 3 classes: RGB JPEGs, RGB PNGs and grayscale JPEGs, each of its
    own colour (so that the images can be told apart by their mean)."""
    rng = np.random.default_rng(0)
    for i in range(12):
        folder = root / f"class{i % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        y, x = np.mgrid[0:30, 0:40]
        base = rng.uniform(30, 220, 3)
        pixels = np.clip(base + 0.5 * x[..., None] - 0.3 * y[..., None], 0, 255).astype(np.uint8)
        image = Image.fromarray(pixels)
        if i % 3 == 0:
            image.save(folder / f"{i}.png")
        else:
            image = image.convert("L") if i % 3 == 2 else image
            image.save(folder / f"{i}.jpg", quality=95)
    return root


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    root = tmp_path_factory.mktemp("arms")
    images = _photos(root / "images")
    convert_image_folder(images, root / "tfrecords", quiet=True)
    return images, root / "tfrecords"


def _batches(source, path, *, channels=3, size=16, dtype="uint8"):
    """Every batch of ``source`` as the child builds it (threads 1: the files in order)."""
    import tensorflow as tf

    from tfrecord_tools.bench import child

    cell = Cell(source, 1, 1, "warm", dtype=dtype)
    spec = cell_spec(cell, path, cpus=[0], batch_size=5, image_size=size, channels=channels)
    make, files, _applied = child._SOURCES[source](spec, tf)
    assert files
    return [(x.numpy(), y.numpy(), x.dtype.name, y.dtype.name) for x, y in make()]


def _same_batches(got, want, *, tolerance):
    assert [b[0].shape for b in got] == [b[0].shape for b in want]
    assert [b[2:] for b in got] == [b[2:] for b in want]
    assert [b[1].tolist() for b in got] == [b[1].tolist() for b in want]
    # the same photos in the same order: each image's mean within ``tolerance`` levels (the
    # resizes differ: the reader scales the JPEG decode and antialiases, a user's does not)
    means = [
        np.concatenate([b[0].mean(axis=(1, 2, 3)) for b in batches]) for batches in (got, want)
    ]
    np.testing.assert_allclose(means[0], means[1], atol=tolerance)


@pytest.mark.parametrize("source", ARMS)
def test_arm_gives_the_tfrecord_sources_batches(photos, source):
    _images, tfrecords = photos
    want = _batches("tfrecord", tfrecords)
    assert [b[0].shape for b in want] == [(5, 16, 16, 3), (5, 16, 16, 3), (2, 16, 16, 3)]
    _same_batches(_batches(source, tfrecords), want, tolerance=3)


@pytest.mark.parametrize("source", ARMS)
def test_arm_casts_to_the_cells_dtype(photos, source):
    _images, tfrecords = photos
    got = _batches(source, tfrecords, dtype="float32", channels=1, size=(12, 10))
    want = _batches("tfrecord", tfrecords, dtype="float32", channels=1, size=(12, 10))
    assert got[0][0].shape == (5, 12, 10, 1) and got[0][2] == "float32"
    _same_batches(got, want, tolerance=3)


@pytest.mark.parametrize("source", ARMS)
def test_arm_reads_raw_pixels(tmp_path, source):
    digits = make_digits(tmp_path / "digits", count=12, seed=0, workers=1)
    convert_image_folder(digits, tmp_path / "raw", encoding="raw", quiet=True)
    want = _batches("tfrecord", tmp_path / "raw", channels=1, size=28)
    assert want[0][0].shape == (5, 28, 28, 1)
    _same_batches(_batches(source, tmp_path / "raw", channels=1, size=28), want, tolerance=0)


# --- the grid ----------------------------------------------------------------------------------


def test_the_peers_read_every_stored_variant_and_take_only_the_dtype(monkeypatch):
    monkeypatch.setattr(bench_config, "has_tfds", lambda: True)
    config = BenchConfig(
        threads="1",
        cores="1",
        cache="warm",
        max_size="none,320",
        decode="full,scaled",
        dtype="uint8,float32",
    )
    assert config.sources == ("raw", "tfrecord", "keras", "handwritten", "tfds")
    cells = make_cells(config)
    for source in ("handwritten", "tfds"):
        mine = [(c.stored, c.decode, c.crop, c.dtype) for c in cells if c.source == source]
        assert mine == [
            (stored, "full", "none", dtype)
            for stored in ((None, "keep"), (320, "keep"))
            for dtype in ("uint8", "float32")
        ]
    datasets = {(None, "keep"): "/d/plain", (320, "keep"): "/d/max320"}
    spec = child_spec(
        Cell("handwritten", 1, 1, "warm", max_size=320),
        config,
        cpus=[0],
        image_dir="/d/images",
        tfrecords=datasets,
    )
    assert spec["path"] == "/d/max320"


# --- TFDS missing ------------------------------------------------------------------------------


def test_tfds_left_out_of_the_defaults_with_a_note_when_missing(monkeypatch, tmp_path):
    monkeypatch.setattr(bench_config, "has_tfds", lambda: False)
    config = BenchConfig(image_dir=_photos(tmp_path / "images"), out=tmp_path / "out", quiet=True)
    assert config.sources == ("raw", "tfrecord", "keras", "handwritten")
    (note,) = config.skipped
    assert note.startswith(TFDS_MISSING) and "left out" in note
    data = prepare_data(config, lambda message: None)
    assert "tfds" not in data.sources and note in data.notes


def test_tfds_asked_for_when_missing_is_an_error(monkeypatch, capsys):
    monkeypatch.setattr(bench_config, "has_tfds", lambda: False)
    with pytest.raises(BenchError, match="sources: tfds: tensorflow_datasets is not installed"):
        BenchConfig(sources="tfrecord,tfds")
    assert main(["bench", "--sources", "raw,tfds"]) == 2
    assert "tensorflow_datasets is not installed" in capsys.readouterr().err


@pytest.mark.skipif(has_tfds(), reason="TFDS is installed here")
def test_this_environment_without_tfds_leaves_it_out():
    assert "tfds" not in BenchConfig().sources
    with pytest.raises(BenchError, match="tensorflow_datasets is not installed"):
        BenchConfig(sources="tfds")


def test_tfds_left_out_of_a_dataset_without_its_metadata(monkeypatch, photos, tmp_path):
    monkeypatch.setattr(bench_config, "has_tfds", lambda: True)
    bare = tmp_path / "bare"
    shutil.copytree(photos[1], bare)
    (bare / TFDS_INFO).unlink()
    config = BenchConfig(tfrecords=bare, sources="tfrecord,tfds", out=tmp_path / "out")
    data = prepare_data(config, lambda message: None)
    assert data.sources == ("tfrecord",)
    assert any(n.startswith(f"tfds: {bare} has no {TFDS_INFO}") for n in data.notes), data.notes


# --- end to end: every arm in its own pinned process ---------------------------------------------


def test_the_arms_run_and_report_cpu_time_per_image(photos, tmp_path):
    """tfrecord, handwritten (and tfds where installed) cells, one each (~5-8 s apiece)."""
    _images, tfrecords = photos
    sources = "tfrecord,handwritten" + (",tfds" if has_tfds() else "")
    config = BenchConfig(
        tfrecords=tfrecords,
        out=tmp_path / "out",
        sources=sources,
        threads="1",
        cores="1",
        cache="warm",
        repeats=1,
        batch_size=5,
        image_size=16,
        quiet=True,
    )
    report = run_benchmark(config)
    assert not report.failed, report.failed
    results = json.loads((config.out / "results.json").read_text())
    cells = results["cells"]
    assert [c["source"] for c in cells] == sources.split(",")
    for cell in cells:
        assert cell["images"] == 12 and cell["cpu_us_per_image"] > 0
        assert cell["output"] == cells[0]["output"]  # [None, 16, 16, 3] uint8, int64 labels
        assert cell["options"]["threads"] == 1 and cell["affinity_ok"] is True
    table = report.format_table()
    assert "CPU us/img" in table and "handwritten" in table
    with open(config.out / "results.csv") as f:
        assert "cpu_us_per_image" in f.readline()


# --- the plot ----------------------------------------------------------------------------------


def _results(cells, *, threads, cores):
    return {
        "config": {
            "threads": threads,
            "cores": cores,
            "batch_size": 32,
            "image_size": [224, 224],
            "channels": 3,
        },
        "machine": {"cpu_model": "cpu", "tensorflow": "2.x"},
        "data": {"sources": {"raw": {"images": 600}}, "sample": None},
        "cells": cells,
    }


def _cell(source, rate, *, threads=1, cores=1, cache="warm", us=100.0):
    return {
        "source": source,
        "threads": threads,
        "cores": cores,
        "cache": cache,
        "images_per_s": rate,
        "images_per_s_min": rate * 0.9,
        "images_per_s_max": rate * 1.1,
        "cpu_us_per_image": us,
    }


@pytest.fixture
def figures():
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    from tfrecord_tools.bench.plot import draw

    drawn = []

    def make(results):
        drawn.append(draw(results))
        return drawn[-1]

    yield make
    for fig in drawn:
        plt.close(fig)


def _bars(fig):
    from matplotlib.container import BarContainer

    return [b for ax in fig.axes for c in ax.containers if isinstance(c, BarContainer) for b in c]


def _data_lines(fig):
    """The lines through the points (not the error bars' caps; bars have none)."""
    from matplotlib.container import ErrorbarContainer

    found = [c for ax in fig.axes for c in ax.containers if isinstance(c, ErrorbarContainer)]
    return [c.lines[0] for c in found if c.lines[0] is not None]


def test_one_setting_draws_bars_grouped_by_cache(figures):
    cells = [
        _cell(s, r, cache=cache)
        for cache in ("warm", "cold")
        for s, r in (("raw", 100.0), ("tfrecord", 250.0), ("handwritten", 200.0))
    ]
    fig = figures(_results(cells, threads=[1], cores=[1]))
    assert len(_bars(fig)) == 2 * 3 * 2  # images/s and CPU rows x readers x cache states
    assert _data_lines(fig) == []
    ticks = [t.get_text() for t in fig.axes[-1].get_xticklabels()]
    assert ticks == ["warm page cache", "cold page cache"]
    assert fig._suptitle.get_text().splitlines()[:4] == [
        "warm: TFRecords/raw: 2.50x images/s, 1.00x per CPU second",
        "warm: TFRecords/hand-written tf.data: 1.25x images/s, 1.00x per CPU second",
        "cold: TFRecords/raw: 2.50x images/s, 1.00x per CPU second",
        "cold: TFRecords/hand-written tf.data: 1.25x images/s, 1.00x per CPU second",
    ]


def test_a_thread_sweep_draws_lines_per_reader_with_the_best_ratio(figures):
    cells = [
        _cell("raw", 100.0, threads=1, us=400.0),
        _cell("raw", 160.0, threads=2, us=500.0),
        _cell("tfrecord", 300.0, threads=1, us=200.0),
        _cell("tfrecord", 480.0, threads=2, us=250.0),
    ]
    fig = figures(_results(cells, threads=[1, 2], cores=[1]))
    assert _bars(fig) == []
    assert len(_data_lines(fig)) == 2 * 2  # a line per reader, on both rows
    assert "threads" in fig.axes[-1].get_xlabel()
    title = fig._suptitle.get_text()  # the best images/s of each; the least CPU of each
    assert "TFRecords/raw: 3.00x images/s, 2.00x per CPU second (each at its best" in title


def test_a_cores_sweep_draws_lines_against_the_cores(figures):
    cells = [
        _cell(s, r * cores, cores=cores)
        for cores in (1, 2)
        for s, r in (("raw", 100.0), ("tfrecord", 200.0), ("keras", 50.0))
    ]
    fig = figures(_results(cells, threads=[1], cores=[1, 2]))
    assert _bars(fig) == [] and len(_data_lines(fig)) == 3 * 2
    assert [t.get_text() for t in fig.axes[-1].get_xticklabels()] == ["1", "2"]
    assert "cores" in fig.axes[-1].get_xlabel()
    assert "TFRecords/raw: 2.00x images/s" in fig._suptitle.get_text()
