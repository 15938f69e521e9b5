"""The benchmark harness: options, grid, page-cache eviction, figures, and one tiny grid run
end to end (two cells, each a fresh pinned process that imports TensorFlow: ~5-8 s each)."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tfrecord_tools.bench import BenchConfig, BenchError, run_benchmark
from tfrecord_tools.bench.cache import evict_files, filesystem_type, resident_fraction
from tfrecord_tools.bench.config import default_cores, has_tfds, usable_cpus
from tfrecord_tools.bench.grid import Cell, child_spec, make_cells, read_options
from tfrecord_tools.bench.report import BenchReport
from tfrecord_tools.bench.runner import cell_record
from tfrecord_tools.cli import main
from tfrecord_tools.sample import make_digits

# --- options and grid (no TensorFlow) -------------------------------------------------------


def test_defaults_full_and_short(tmp_path):
    full = BenchConfig(out=tmp_path)
    tfds = ("tfds",) if has_tfds() else ()
    assert full.sources == ("raw", "tfrecord", "keras", "handwritten", *tfds)
    assert full.threads == (1, 2, 4, 8, "auto")
    assert full.cache == ("warm", "cold")
    assert full.cores == default_cores(len(usable_cpus()))
    assert (full.repeats, full.image_size, full.channels) == (3, (28, 28), 1)
    assert full.work == tmp_path / "data"
    short = BenchConfig(out=tmp_path, short=True)
    assert (short.threads, short.cores, short.cache, short.repeats) == (
        ("auto",),
        (1,),
        ("warm",),
        1,
    )
    assert short.num_cells == 4 + len(tfds)
    photos = BenchConfig(sample="photos", threads="2,auto", image_size="160x120")
    assert (photos.threads, photos.image_size, photos.channels) == ((2, "auto"), (160, 120), 3)


def test_default_cores():
    assert default_cores(1) == (1,)
    assert default_cores(2) == (1, 2)
    assert default_cores(6) == (1, 2, 4, 6)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"threads": "0"}, "threads: expected integers >= 1 or 'auto', got '0'"),
        ({"threads": "2,2"}, "threads: values repeat"),
        ({"threads": "1,,2"}, "threads: expected a comma-separated list"),
        ({"cores": "999"}, "cores: expected integers from 1 to"),
        ({"cache": "hot"}, "cache: 'hot' is not one of warm, cold"),
        (
            {"sources": "raw,lmdb"},
            "sources: 'lmdb' is not one of raw, tfrecord, keras, handwritten, tfds",
        ),
        ({"repeats": 0}, "repeats must be an integer >= 1, got 0"),
        ({"batch_size": -1}, "batch_size must be an integer >= 1"),
        ({"image_size": "224x"}, "image_size must be N or HEIGHTxWIDTH"),
        ({"channels": 2}, "channels must be 1, 3 or 4, got 2"),
        ({"sample": "cats"}, "sample must be one of digits, photos, got 'cats'"),
        ({"image_dir": "/no/such/folder"}, "/no/such/folder: not a folder"),
        ({"decode": "scaled,fast"}, "decode: 'fast' is not one of scaled, full"),
        ({"crop": "middle"}, "crop: 'middle' is not one of none, center, random"),
        ({"dtype": "uint8,uint8"}, "dtype: values repeat"),
        ({"max_size": "none,0"}, "max_size: expected integers >= 1 (pixels) or 'none', got '0'"),
        ({"max_size": "320,320"}, "max_size: values repeat"),
        ({"encoding": "keep,jpeg"}, "encoding: 'jpeg' is not one of keep, png, raw, auto"),
        ({"tfrecords": "/data", "max_size": "320"}, "max_size: the stored form is chosen by"),
        ({"tfrecords": "/data", "encoding": "raw"}, "encoding: the stored form is chosen by"),
    ],
)
def test_bad_options_say_what_was_expected(options, message):
    with pytest.raises(BenchError) as info:
        BenchConfig(**options)
    assert message in str(info.value)


def test_cells_cover_the_grid_with_sources_side_by_side():
    config = BenchConfig(sources="raw,tfrecord", threads="1,auto", cores="1", cache="warm,cold")
    cells = make_cells(config)
    assert len(cells) == config.num_cells == 8
    assert len(set(cells)) == 8
    assert cells[:2] == [Cell("raw", 1, 1, "warm"), Cell("tfrecord", 1, 1, "warm")]


def test_decode_crop_dtype_axes_default_to_the_plain_cell():
    config = BenchConfig(sources="raw,tfrecord", threads="1", cores="1", cache="warm")
    assert (config.decode, config.crop, config.dtype) == (("scaled",), ("none",), ("uint8",))
    cells = make_cells(config)
    assert cells == [Cell("raw", 1, 1, "warm"), Cell("tfrecord", 1, 1, "warm")]
    assert cells[0].label == "raw threads=1 cores=1 warm"


def test_decode_crop_dtype_axes_sweep_and_keras_runs_once():
    config = BenchConfig(
        sources="raw,tfrecord,keras",
        threads="1",
        cores="1",
        cache="warm",
        decode="full,scaled",
        crop="none,random",
        dtype="uint8,float32",
    )
    cells = make_cells(config)
    assert len(cells) == config.num_cells == 2 * 2 * 2 * 2 + 1
    keras = [c for c in cells if c.source == "keras"]
    assert keras == [Cell("keras", 1, 1, "warm", "full", "none", "uint8")]
    # the two readers of one variant run side by side
    assert cells[:2] == [
        Cell(s, 1, 1, "warm", "full", "none", "uint8") for s in ("raw", "tfrecord")
    ]
    cell = Cell("tfrecord", 1, 1, "warm", "full", "random", "float32")
    assert cell.reader_options() == {
        "decode_scaling": "off",
        "dtype": "float32",
        "crop": "random",
        "seed": 0,
    }
    assert cell.label == "tfrecord threads=1 cores=1 warm full crop=random float32"
    assert Cell("raw", 1, 1, "warm").reader_options() == {
        "decode_scaling": "auto",
        "dtype": "uint8",
    }


def test_stored_variants_parse_and_default_to_one_conversion():
    plain = BenchConfig(threads="1", cores="1", cache="warm")
    assert (plain.max_size, plain.encoding, plain.stored) == ((None,), ("keep",), ((None, "keep"),))
    config = BenchConfig(max_size="None, 320", encoding="keep,RAW")
    assert (config.max_size, config.encoding) == ((None, 320), ("keep", "raw"))
    assert config.stored == ((None, "keep"), (None, "raw"), (320, "keep"), (320, "raw"))
    assert BenchConfig(max_size=[None, 64]).max_size == (None, 64)
    assert BenchConfig(max_size=128).max_size == (128,)
    assert BenchConfig(max_size="none").max_size == (None,)


def test_stored_variants_multiply_only_the_tfrecord_cells():
    config = BenchConfig(
        sources="raw,tfrecord,keras",
        threads="1",
        cores="1",
        cache="warm",
        max_size="none,320",
        decode="full,scaled",
    )
    cells = make_cells(config)
    tfrecord = [c for c in cells if c.source == "tfrecord"]
    assert len(tfrecord) == 2 * 2 and len(cells) == config.num_cells == 4 + 2 + 1
    assert {c.stored for c in tfrecord} == {(None, "keep"), (320, "keep")}
    assert all(c.stored == (None, "keep") for c in cells if c.source != "tfrecord")
    # a variant's readers run side by side; the second stored variant comes after the first
    assert cells[:3] == [Cell(s, 1, 1, "warm", "full") for s in ("raw", "tfrecord", "keras")]
    assert Cell("tfrecord", 1, 1, "warm", max_size=320, encoding="raw").label == (
        "tfrecord threads=1 cores=1 warm max=320 raw"
    )
    # only max=320: raw and keras still read the folder, with the default stored slot
    only = make_cells(
        BenchConfig(
            sources="raw,tfrecord,keras", threads="1", cores="1", cache="warm", max_size="320"
        )
    )
    assert [(c.source, c.max_size) for c in only] == [
        ("raw", None),
        ("tfrecord", 320),
        ("keras", None),
    ]


def test_stored_variant_spec_reads_its_dataset():
    config = BenchConfig(
        sources="raw,tfrecord,keras", threads="1", cores="1", cache="warm", max_size="none,320"
    )
    datasets = {(None, "keep"): Path("/d/plain"), (320, "keep"): Path("/d/max320")}
    specs = [
        child_spec(c, config, cpus=[0], image_dir=Path("/d/images"), tfrecords=datasets)
        for c in make_cells(config)
    ]
    assert [(s["source"], s["path"], s["max_size"]) for s in specs] == [
        ("raw", "/d/images", None),
        ("tfrecord", "/d/plain", None),
        ("keras", "/d/images", None),
        ("tfrecord", "/d/max320", 320),
    ]


def test_thread_settings_reach_every_knob():
    assert read_options(4, 2, 3) == {"num_parallel_calls": 4, "cycle_length": 3, "threads": 4}
    assert read_options(1, 2, 8) == {"num_parallel_calls": 1, "cycle_length": 1, "threads": 1}
    assert read_options("auto", 2, 8) == {
        "num_parallel_calls": -1,
        "cycle_length": 2,
        "threads": None,
    }


# --- page cache -------------------------------------------------------------------------------


def test_eviction_drops_pages_and_checks_it(tmp_path):
    paths = []
    for i in range(3):
        path = tmp_path / f"f{i}"
        path.write_bytes(bytes(range(256)) * 400)
        paths.append(str(path))
    for p in paths:
        with open(p, "rb") as f:
            f.read()
    assert resident_fraction(paths) == 1.0
    result = evict_files(paths)
    if filesystem_type(tmp_path) == "tmpfs":
        assert result.ok is False and "did not work" in result.message
    else:
        assert result.ok is True and result.resident == 0.0
        assert resident_fraction(paths) == 0.0
    assert result.files == 3 and result.failed == 0


def test_eviction_reports_files_it_cannot_open(tmp_path):
    result = evict_files([str(tmp_path / "missing")])
    assert result.failed == 1 and result.ok is False
    assert "could not be advised" in result.message


# --- figures and report from a child's answer (no child run) ---------------------------------


def _child_result(seconds: list[float], images: int = 100) -> dict:
    return {
        "affinity": [0],
        "tensorflow": "x",
        "inter_op_threads": 2,
        "intra_op_threads": 2,
        "options": {"num_parallel_calls": 2, "cycle_length": 1, "threads": 2},
        "files": 2,
        "bytes_per_pass": 2_000_000,
        "images_per_pass": images,
        "output": {"shape": [None, 28, 28, 1], "dtype": "uint8", "label_dtype": "int64"},
        "warmup": {"seconds": 1.0},
        "repeats": [
            {
                "images": images,
                "batches": 10,
                "first_images": 10,
                "first_s": 0.1,
                "last_s": s,
                "end_wait_s": 0.03,
                "cpu_s": s / 2,
                "build_s": 0.2,
                "cache": {"resident_before": 1.0},
            }
            for s in seconds
        ],
    }


def _spec(cpus=(0,)) -> dict:
    return {
        "batch_size": 10,
        "image_size": [28, 28],
        "channels": 1,
        "epochs": 1,
        "repeats": 3,
        "cpus": list(cpus),
        "path": "/data",
    }


def test_cell_figures_are_medians_and_ranges():
    record = cell_record(Cell("tfrecord", 2, 1, "warm"), _spec(), _child_result([1.0, 2.0, 0.5]))
    assert record["images_per_s"] == 100.0
    assert (record["images_per_s_min"], record["images_per_s_max"]) == (50.0, 200.0)
    assert record["mb_per_s"] == 2.0
    assert record["cpu_us_per_image"] == pytest.approx(5000.0)
    assert record["cpu_ms_per_image"] == pytest.approx(5.0)
    assert record["cpu_utilisation"] == pytest.approx(0.5)
    assert record["images_per_s_steady"] == pytest.approx(90 / 0.9)
    assert record["affinity_ok"] is True and record["evicted"] is None
    assert record["resident_fraction"] == 1.0 and record["error"] is None
    other_cpu = cell_record(Cell("tfrecord", 2, 1, "warm"), _spec([1]), _child_result([1.0]))
    assert other_cpu["affinity_ok"] is False


def test_failed_cell_is_kept_and_shown():
    bad = cell_record(Cell("raw", 1, 1, "cold"), _spec(), {"error": "child exited: boom"})
    good = cell_record(Cell("tfrecord", 1, 1, "warm"), _spec(), _child_result([1.0]))
    report = BenchReport(
        config={"batch_size": 10, "image_size": [28, 28], "channels": 1, "repeats": 3, "epochs": 1},
        machine={
            "cpu_model": "cpu",
            "usable_cpus": [0],
            "logical_cpus": 1,
            "tensorflow": "x",
            "keras": "y",
            "data_filesystem": "ext4",
        },
        data={"sources": {}},
        conversion=None,
        cells=[bad, good],
    )
    assert report.failed == [bad]
    table = report.format_table()
    assert "failed" in table and "FAILED raw threads=1 cores=1 cold: child exited: boom" in table
    assert "100" in table  # the good cell's images/s


# --- end to end -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """Two cells (raw and TFRecord, 1 thread, 1 core, cold) over 24 digits."""
    root = tmp_path_factory.mktemp("bench")
    digits = make_digits(root / "digits", count=24, seed=0, workers=1)
    config = BenchConfig(
        image_dir=digits,
        out=root / "out",
        sources="raw,tfrecord",
        threads="1",
        cores="1",
        cache="cold",
        repeats=1,
        batch_size=8,
        image_size=28,
        channels=1,
        quiet=True,
    )
    return config, run_benchmark(config)


def test_tiny_grid_runs_and_writes_json(tiny_run):
    config, report = tiny_run
    assert not report.failed, report.failed
    results = json.loads((config.out / "results.json").read_text())
    assert results["machine"]["cpu_model"] and results["machine"]["tensorflow"]
    assert results["conversion"]["images"] == 24
    assert results["data"]["sources"]["raw"]["files"] == 24
    cells = results["cells"]
    assert [(c["source"], c["threads"], c["cores"], c["cache"]) for c in cells] == [
        ("raw", 1, 1, "cold"),
        ("tfrecord", 1, 1, "cold"),
    ]
    for cell in cells:
        assert cell["images"] == 24 and cell["images_per_s"] > 0 and cell["mb_per_s"] > 0
        assert cell["cpu_us_per_image"] > 0 and len(cell["seconds"]) == 1
        assert cell["inter_op_threads"] == cell["intra_op_threads"] == 1
        assert cell["options"]["num_parallel_calls"] == 1 and cell["options"]["threads"] == 1
        assert cell["output"]["shape"] == [None, 28, 28, 1] and cell["output"]["dtype"] == "uint8"
        assert "last element" in cell["timing"]


def test_child_runs_on_the_requested_core(tiny_run):
    _config, report = tiny_run
    for cell in report.cells:
        assert cell["affinity"] == cell["cpus_requested"] == usable_cpus()[:1]
        assert cell["affinity_ok"] is True


def test_cold_cells_evict_their_files(tiny_run):
    config, report = tiny_run
    for cell in report.cells:
        if filesystem_type(config.work) == "tmpfs":
            assert cell["evicted"] is False and "did not work" in cell["cache_note"]
        else:
            assert cell["evicted"] is True, cell["cache_note"]
            assert cell["resident_fraction"] <= 0.05


def test_csv_has_a_row_per_cell_and_the_machine(tiny_run):
    config, _report = tiny_run
    with open(config.out / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["kind"] for r in rows] == ["convert", "read", "read"]
    for row in rows[1:]:
        assert float(row["images_per_s"]) > 0
        assert row["cache"] == "cold" and row["cores"] == "1" and row["threads"] == "1"
        assert row["cpu_model"] and row["tensorflow"] and row["evicted"] in ("True", "False")


def test_plot_written_when_matplotlib_is_there(tiny_run):
    config, report = tiny_run
    png = config.out / "results.png"
    if importlib.util.find_spec("matplotlib") is None:
        assert report.paths["plot"] is None and any("matplotlib" in n for n in report.notes)
    else:
        assert report.paths["plot"] == str(png)
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_table_names_every_cell(tiny_run):
    _config, report = tiny_run
    table = report.format_table()
    assert table.count(" cold ") >= 2 and "convert: 24 images" in table


def test_variant_cell_runs_and_shows_in_table_json_and_csv(tiny_run, tmp_path):
    _config, first = tiny_run
    variant = BenchConfig(
        tfrecords=first.data["tfrecords"],
        out=tmp_path / "out",
        sources="tfrecord",
        threads="1",
        cores="1",
        cache="warm",
        crop="center",
        dtype="float32",
        decode="full",
        repeats=1,
        batch_size=8,
        image_size=20,
        channels=1,
        plot=False,
        quiet=True,
    )
    report = run_benchmark(variant)
    assert not report.failed, report.failed
    (cell,) = json.loads((variant.out / "results.json").read_text())["cells"]
    assert (cell["decode"], cell["crop"], cell["dtype"]) == ("full", "center", "float32")
    assert cell["output"]["dtype"] == "float32" and cell["output"]["shape"] == [None, 20, 20, 1]
    assert cell["options"]["crop"] == "center" and cell["options"]["decode_scaling"] == "off"
    assert "decode/crop/dtype" in report.format_table()
    assert "full crop=center float32" in report.format_table()
    assert "decode/crop/dtype" not in first.format_table()  # plain runs look as before
    assert "stored" not in first.format_table()
    with open(variant.out / "results.csv", newline="") as f:
        (row,) = [r for r in csv.DictReader(f) if r["kind"] == "read"]
    assert (row["decode"], row["crop"], row["dtype"]) == ("full", "center", "float32")


def test_max_size_variant_is_converted_timed_and_shown(tiny_run, tmp_path):
    """One tfrecord cell over a max-size variant of the tiny sample (28x28 -> 16x16)."""
    config, _first = tiny_run
    variant = BenchConfig(
        image_dir=config.image_dir,
        out=tmp_path / "out",
        work=tmp_path / "work",
        sources="tfrecord",
        threads="1",
        cores="1",
        cache="warm",
        max_size="16",
        repeats=1,
        batch_size=8,
        image_size=28,
        channels=1,
        plot=False,
        quiet=True,
    )
    report = run_benchmark(variant)
    assert not report.failed, report.failed
    results = json.loads((variant.out / "results.json").read_text())
    (conversion,) = results["conversions"]
    assert conversion == results["conversion"]
    assert (conversion["max_size"], conversion["encoding"], conversion["resized"]) == (
        16,
        "keep",
        24,
    )
    assert conversion["path"].endswith("-tfrecord-max16")
    (cell,) = results["cells"]
    assert (cell["max_size"], cell["encoding"], cell["path"]) == (16, "keep", conversion["path"])
    assert cell["images"] == 24 and cell["output"]["shape"] == [None, 28, 28, 1]
    assert results["data"]["stored"][0]["max_size"] == 16
    table = report.format_table()
    assert "stored" in table and "max=16" in table and "convert (max=16): 24 images" in table
    with open(variant.out / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["kind"], r["max_size"], r["encoding"]) for r in rows] == [
        ("convert", "16", "keep"),
        ("read", "16", "keep"),
    ]


# --- command line -----------------------------------------------------------------------------


def test_make_sample_command(tmp_path, capsys):
    out = tmp_path / "digits"
    assert main(["make-sample", "digits", str(out), "--count", "20", "--workers", "1"]) == 0
    assert str(out) in capsys.readouterr().out
    assert len(list(out.glob("*/*.png"))) == 20


def test_bench_bad_option_exits_2(capsys):
    assert main(["bench", "--threads", "1,x"]) == 2
    assert "threads: expected integers >= 1 or 'auto', got 'x'" in capsys.readouterr().err
    assert main(["bench", "--crop", "none,corner"]) == 2
    assert "crop: 'corner' is not one of none, center, random" in capsys.readouterr().err
    assert main(["bench", "--max-size", "none,big"]) == 2
    assert "max_size: expected integers >= 1 (pixels) or 'none', got 'big'" in (
        capsys.readouterr().err
    )
    assert main(["bench", "--encoding", "jpeg"]) == 2
    assert "encoding: 'jpeg' is not one of keep, png, raw, auto" in capsys.readouterr().err


def _children(pid: int, marker: str) -> list[int]:
    """Live (not zombie) processes whose parent is ``pid`` and whose command line holds
    ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        state, ppid = stat.rpartition(")")[2].split()[:2]
        if int(ppid) == pid and marker in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"  # a zombie has ended


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_a_killed_bench_takes_its_cell_with_it(tmp_path):
    """``kill -9`` of the benchmark: its cell process (a long one here: thousands of
    epochs) ends with it instead of running on with parent 1."""
    digits = make_digits(tmp_path / "digits", count=24, seed=0, workers=1)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "-1"}
    args = ["--sources", "raw", "--threads", "1", "--cores", "1", "--cache", "warm"]
    args += ["--repeats", "1", "--epochs", "100000", "--batch-size", "8", "--channels", "1"]
    args += ["--image-size", "28", "--no-plot", "--quiet", "--out", str(tmp_path / "out")]
    bench = subprocess.Popen(
        [sys.executable, "-m", "tfrecord_tools", "bench", str(digits), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    cells: list[int] = []
    try:
        deadline = time.monotonic() + 300  # the conversion first, then the cell starts
        while not cells and bench.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
            cells = _children(bench.pid, "tfrecord_tools.bench.child")
        assert cells, f"no cell process started within 300 s (bench exit {bench.poll()})"
        bench.kill()
        bench.wait()
        deadline = time.monotonic() + 60
        while _alive(cells[0]) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _alive(cells[0]), "the cell process outlived the killed benchmark by 60 s"
    finally:
        bench.kill()
        bench.wait()
        for pid in cells:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


# --- on object storage ----------------------------------------------------------------------


def test_bench_reads_both_sources_from_a_bucket(s3_server, tmp_path):
    """``tfrecord-tools bench s3://...``: the raw cell reads the bucket's images, the
    TFRecords are converted into the same bucket and read from there; cold cache and Keras
    do not apply (a note says why) and nothing local is read."""
    from tfrecord_tools import storage

    bucket = s3_server.new_bucket()
    digits = make_digits(tmp_path / "digits", count=24, seed=0, workers=1)
    for rel, _size in storage.walk_files(digits):
        storage.put_file(digits / rel, storage.join(bucket, "digits", rel))
    images = storage.join(bucket, "digits")
    with pytest.raises(BenchError, match="cold"):
        BenchConfig(image_dir=images, out=tmp_path / "x", cache="cold")
    config = BenchConfig(
        image_dir=images,
        out=tmp_path / "out",
        threads="1",
        cores="1",
        repeats=1,
        batch_size=8,
        image_size=28,
        channels=1,
        quiet=True,
    )
    assert config.cache == ("warm",) and config.work == bucket
    report = run_benchmark(config)
    assert not report.failed, report.failed
    results = json.loads((config.out / "results.json").read_text())
    assert [c["source"] for c in results["cells"]] == ["raw", "tfrecord"]
    assert all(c["images"] == 24 for c in results["cells"])
    assert results["conversion"]["path"] == f"{bucket}/digits-tfrecord"
    assert storage.is_file(f"{bucket}/digits-tfrecord/dataset.json")
    assert results["machine"]["data_filesystem"] == "s3 (object storage)"
    assert any("keras" in note for note in results["notes"]), results["notes"]
    assert results["data"]["sources"]["raw"]["bytes"] > 0
