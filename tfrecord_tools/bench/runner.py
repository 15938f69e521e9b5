"""Running a benchmark: data, then one fresh pinned child process per cell, then the report.

Data flow: config -> data (``data.py``) -> cells (``grid.py``) -> **child process per
cell** (``child.py``; its JSON line becomes a cell record with the figures computed here)
-> report files (``report.py``, ``plot.py``). This process never imports TensorFlow, so the
children start from a clean slate and only they pay for it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

from ..cores import usable_cpus
from ..lifetime import child_env
from ..storage import redact
from .config import STORED_SOURCES, BenchConfig
from .data import BenchData, Log, prepare_data
from .grid import Cell, child_spec, make_cells
from .machine import describe_machine
from .report import TIMING, BenchReport, write_outputs
from .timing import figures

_STDERR_TAIL = 30  # lines of a failed child's stderr kept in its record


def run(config: BenchConfig) -> BenchReport:
    """Run ``config``'s grid and write results.json, results.csv and the plot to ``out``."""
    log: Log = _silent if config.quiet else _to_stderr
    started = time.monotonic()
    config.out.mkdir(parents=True, exist_ok=True)
    data = prepare_data(config, log)
    cpus = usable_cpus()
    cells = [c for c in make_cells(config) if c.source in data.sources]
    records = []
    for i, cell in enumerate(cells, 1):
        spec = child_spec(
            cell, config, cpus=cpus, image_dir=data.image_dir, tfrecords=data.variants
        )
        record = cell_record(cell, spec, run_child(spec))
        records.append(record)
        log(f"[{i}/{len(cells)}] {progress_line(record)}")
    report = BenchReport(
        config=config.to_json(),
        machine=describe_machine(data.image_dir or data.tfrecords),
        data=_data_json(data, records),
        conversion=data.conversion,
        conversions=list(data.conversions),
        cells=records,
        notes=list(data.notes),
        elapsed_s=time.monotonic() - started,
    )
    write_outputs(report, config.out, plot=config.plot)
    return report


def run_child(spec: dict[str, Any], *, script: str | os.PathLike | None = None) -> dict[str, Any]:
    """Run one cell in a fresh interpreter; its result, or ``{"error": ...}``.

    ``script``: a Python file to run instead of the harness's child (``child.py``), for a
    cell the harness has no source for; it takes the spec the same way and answers with
    :func:`child.answer`."""
    from .child import RESULT_PREFIX

    child = [str(script)] if script is not None else ["-m", "tfrecord_tools.bench.child"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
    env = child_env(env)  # the child ends with this process, even killed (child.pin)
    proc = subprocess.run(
        [sys.executable, *child, json.dumps(spec)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    for line in reversed(proc.stdout.splitlines()):
        if proc.returncode == 0 and line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX) :])
    tail = "\n".join(proc.stderr.strip().splitlines()[-_STDERR_TAIL:])
    return {"error": f"child exited with code {proc.returncode}:\n{tail}"}


def cell_record(cell: Cell, spec: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    """One JSON object per cell: what was asked, what the child saw, and the figures."""
    record: dict[str, Any] = {
        "source": cell.source,
        "threads": cell.threads,
        "cores": cell.cores,
        "cache": cell.cache,
        "decode": cell.decode,
        "crop": cell.crop,
        "dtype": cell.dtype,
        # the stored form read: only the sources reading the shards have one (null for raw
        # and keras)
        "max_size": cell.max_size if cell.source in STORED_SOURCES else None,
        "encoding": cell.encoding if cell.source in STORED_SOURCES else None,
        "batch_size": spec["batch_size"],
        "image_size": spec["image_size"],
        "channels": spec["channels"],
        "epochs": spec["epochs"],
        "repeats": spec["repeats"],
        "cpus_requested": spec["cpus"],
        "path": spec["path"],
        "timing": TIMING,
    }
    if "error" in result:
        return {**record, "images_per_s": None, "error": result["error"]}
    reps = result["repeats"]
    fig = figures(reps)
    return {
        **record,
        "images_per_s": fig["images_per_s"],
        "images_per_s_min": fig["images_per_s_min"],
        "images_per_s_max": fig["images_per_s_max"],
        "mb_per_s": result["bytes_per_pass"] * spec["epochs"] / fig["seconds_median"] / 1e6,
        "images_per_s_steady": fig["images_per_s_steady"],
        "cpu_us_per_image": fig["cpu_us_per_image"],
        "cpu_ms_per_image": fig["cpu_ms_per_image"],
        "cpu_utilisation": fig["cpu_utilisation"],
        "seconds": fig["seconds"],
        "seconds_median": fig["seconds_median"],
        "first_s": fig["first_s"],
        "end_wait_s": fig["end_wait_s"],
        "build_s": fig["build_s"],
        "warmup_s": result["warmup"]["seconds"],
        "images": fig["images"],
        "images_per_pass": result["images_per_pass"],
        "files": result["files"],
        "bytes_per_pass": result["bytes_per_pass"],
        **_cache_figures(cell.cache, [r["cache"] for r in reps]),
        "affinity": result["affinity"],
        "affinity_ok": result["affinity"] == spec["cpus"],
        "inter_op_threads": result["inter_op_threads"],
        "intra_op_threads": result["intra_op_threads"],
        "options": result["options"],
        "output": result["output"],
        "tensorflow": result["tensorflow"],
        "error": None,
    }


def _cache_figures(cache: str, checks: list[dict[str, Any]]) -> dict[str, Any]:
    """``evicted`` (cold: True/False, None when it could not be checked; warm: None),
    ``resident_fraction`` of the files' pages when timing began (worst repeat), a note."""
    if cache == "warm":
        found = [c["resident_before"] for c in checks if c["resident_before"] is not None]
        low = min(found) if found else None
        note = "" if low is None or low >= 0.9 else f"warm, but only {low:.0%} of pages cached"
        return {"evicted": None, "resident_fraction": low, "cache_note": note}
    oks = [c["ok"] for c in checks]
    evicted = False if False in oks else (None if None in oks else True)
    found = [c["resident_after"] for c in checks if c["resident_after"] is not None]
    worst = next((c for c in checks if c["ok"] is not True), checks[0])
    return {
        "evicted": evicted,
        "resident_fraction": max(found) if found else None,
        "cache_note": worst["message"],
    }


def progress_line(record: dict[str, Any]) -> str:
    where = f"{record['source']} threads={record['threads']} cores={record['cores']} "
    where += record["cache"]
    where += "".join(
        f" {k}={record[k]}" for k, v in _DEFAULT_VARIANT.items() if record.get(k, v) != v
    )
    if record.get("encoding"):  # a cell reading the shards
        where += "".join(
            f" {k}={record[k]}" for k, v in _DEFAULT_STORED.items() if record.get(k, v) != v
        )
    if record["error"]:
        return f"{where}: FAILED ({record['error'].splitlines()[-1]})"
    line = (
        f"{where}: {record['images_per_s']:,.0f} img/s "
        f"({record['images_per_s_min']:,.0f}-{record['images_per_s_max']:,.0f}), "
        f"{record['cpu_us_per_image']:,.0f} CPU us/img"
    )
    if record["evicted"] is False:
        line += f"; {record['cache_note']}"
    return line


_DEFAULT_VARIANT = {"decode": "scaled", "crop": "none", "dtype": "uint8"}
_DEFAULT_STORED = {"max_size": None, "encoding": "keep"}


def _data_json(data: BenchData, records: list[dict[str, Any]]) -> dict[str, Any]:
    """What each source read (from the children: the files they actually opened); the
    tfrecord source's figures are the first stored variant's, ``stored`` has every one."""
    per_source: dict[str, Any] = {}
    stored: dict[str, Any] = {}
    for r in records:
        if r["error"]:
            continue
        read = {
            "files": r["files"],
            "bytes": r["bytes_per_pass"],
            "images": r["images_per_pass"],
            "mean_file_bytes": r["bytes_per_pass"] / r["files"] if r["files"] else None,
            "path": r["path"],
        }
        if r["source"] == "tfrecord" and r["path"] not in stored:
            stored[r["path"]] = {"max_size": r["max_size"], "encoding": r["encoding"], **read}
        if r["source"] in per_source:
            continue
        if r["source"] not in STORED_SOURCES or r["path"] == str(data.tfrecords):
            per_source[r["source"]] = read
    return {
        "image_dir": redact(data.image_dir) if data.image_dir else None,
        "tfrecords": redact(data.tfrecords),
        "sample": data.sample,
        "sources": per_source,
        "stored": list(stored.values()),
    }


def _silent(message: str) -> None:
    pass


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
