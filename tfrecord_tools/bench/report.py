"""What a benchmark reports: the terminal table, ``results.json``, ``results.csv`` (and,
through ``plot.py``, ``results.png``).

Data flow: cell records (``runner.py``) -> **report** -> files in OUT. The JSON holds
everything (machine, options, data, conversion, one object per cell); the CSV has one row
per cell (and one for the conversion) with the scalar figures and the machine repeated on
every row, so a spreadsheet needs nothing else.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from .config import STORED_SOURCES
from .grid import stored_label

SCHEMA_VERSION = 1
TIMING = (
    "from iterator creation to the arrival of the last element, after a warm-up pass; "
    "tf.data's wait after the last element is excluded (end_wait_s)"
)
PLOT_HINT = (
    "no plot: matplotlib is not installed; `pip install 'tfrecord-tools[plot]'` and run "
    "`python -m tfrecord_tools.bench.plot {json}`"
)

#: CSV columns, mostly keys of the cell record.
CSV_COLUMNS = (
    "kind",
    "source",
    "threads",
    "cores",
    "cache",
    "decode",
    "crop",
    "dtype",
    "max_size",
    "encoding",
    "images_per_s",
    "images_per_s_min",
    "images_per_s_max",
    "cpu_us_per_image",
    "mb_per_s",
    "images_per_s_steady",
    "cpu_ms_per_image",
    "cpu_utilisation",
    "seconds_median",
    "first_s",
    "end_wait_s",
    "build_s",
    "warmup_s",
    "images",
    "images_per_pass",
    "epochs",
    "repeats",
    "batch_size",
    "image_size",
    "channels",
    "files",
    "bytes_per_pass",
    "evicted",
    "resident_fraction",
    "cache_note",
    "affinity",
    "affinity_ok",
    "inter_op_threads",
    "intra_op_threads",
    "num_parallel_calls",
    "cycle_length",
    "private_threads",
    "output_dtype",
    "error",
)
MACHINE_COLUMNS = ("cpu_model", "logical_cpus", "memory_bytes", "tensorflow", "keras", "os")


@dataclass
class BenchReport:
    """Everything a run measured; ``paths`` says which files were written."""

    config: dict[str, Any]
    machine: dict[str, Any]
    data: dict[str, Any]
    conversion: dict[str, Any] | None
    cells: list[dict[str, Any]]
    #: every conversion, one per stored variant (``conversion`` is the first)
    conversions: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0
    paths: dict[str, str | None] = field(default_factory=dict)

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [c for c in self.cells if c.get("error")]

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": self.machine,
            "config": self.config,
            "data": self.data,
            "timing": TIMING,
            "conversion": self.conversion,
            "conversions": self.all_conversions(),
            "cells": self.cells,
            "notes": self.notes,
            "elapsed_s": self.elapsed_s,
        }

    def all_conversions(self) -> list[dict[str, Any]]:
        if self.conversions:
            return self.conversions
        return [self.conversion] if self.conversion else []

    def _stored_swept(self) -> bool:
        """More than the default stored form (then every variant is named)."""
        stored = self.data.get("stored") or []
        return (
            any(
                stored_label(c.get("max_size"), c.get("encoding") or "keep")
                for c in [
                    *self.all_conversions(),
                    *stored,
                ]
            )
            or len(self.all_conversions()) > 1
        )

    def format_table(self) -> str:
        """The plain-text table (what :meth:`print_table` shows without rich)."""
        body = self._body()
        return "\n".join([*self._header(), "", *body, "", *self._footer()]).rstrip() + "\n"

    def _body(self) -> list[str]:
        headers, names = _headers(self.cells)
        extra = _extra_columns(self.cells)
        rows = [_row(c, extra) for c in self.cells]
        widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
        body = [_line(headers, widths, names), _line(["-" * w for w in widths], widths, names)]
        return body + [_line(r, widths, names) for r in rows]

    def print_table(self, file: TextIO | None = None) -> None:
        """The table on ``file`` (stdout): with rich on a terminal when it is installed,
        else plain text."""
        file = file or sys.stdout
        if not (file.isatty() and importlib.util.find_spec("rich")):
            print(self.format_table(), file=file)
            return
        from rich.console import Console
        from rich.table import Table

        headers, names = _headers(self.cells)
        extra = _extra_columns(self.cells)
        table = Table(show_edge=False, header_style="bold")
        for i, header in enumerate(headers):
            table.add_column(header, justify="left" if i < names else "right", overflow="fold")
        for cell in self.cells:
            table.add_row(*_row(cell, extra), style="red" if cell.get("error") else None)
        console = Console(file=file, highlight=False)
        if console.width < len(self._body()[0]) + 2 * len(headers):  # rich would fold figures
            print(self.format_table(), file=file)
            return
        console.print("\n".join(self._header()), markup=False)
        console.print(table)
        console.print("\n".join(self._footer()), markup=False)

    def _header(self) -> list[str]:
        m, cfg = self.machine, self.config
        lines = [
            f"machine: {m['cpu_model']}, {len(m['usable_cpus'])} usable of "
            f"{m['logical_cpus']} logical CPUs; TensorFlow {m['tensorflow']}, "
            f"Keras {m['keras']}; data on {m['data_filesystem']}",
        ]
        swept = self._stored_swept()
        same: dict[tuple, list[str]] = {}  # the sources reading the shards read one set
        for source, d in self.data["sources"].items():
            if source in STORED_SOURCES and swept:
                continue  # one line per stored variant below
            same.setdefault((d["path"], d["files"], d["bytes"], d["images"]), []).append(source)
        for sources in same.values():
            d = self.data["sources"][sources[0]]
            lines.append(
                f"{', '.join(sources):>8}: {d['images']:,} images in {d['files']:,} files, "
                f"{_size(d['bytes'])} ({_size(d['mean_file_bytes'])} per file)"
            )
        for d in self.data.get("stored") or [] if swept else []:
            label = stored_label(d["max_size"], d["encoding"] or "keep") or "keep"
            lines.append(
                f"tfrecord {label}: {d['images']:,} images in {d['files']:,} files, "
                f"{_size(d['bytes'])} ({_size(d['mean_file_bytes'])} per file)"
            )
        lines.append(
            f"batch {cfg['batch_size']}, image size {cfg['image_size'][0]}x"
            f"{cfg['image_size'][1]}x{cfg['channels']}; median of {cfg['repeats']} repeat(s) "
            f"of {cfg['epochs']} epoch(s); timed {TIMING}"
        )
        for c in self.all_conversions():
            label = stored_label(c.get("max_size"), c.get("encoding") or "keep")
            label = f" ({label or 'keep'})" if swept else ""
            lines.append(
                f"convert{label}: {c['images']:,} images in {c['seconds']:.2f} s on {c['workers']} "
                f"workers = {c['images_per_s']:,.0f} img/s, {c['mb_per_s']:.1f} MB/s "
                f"-> {c['shards']} shard(s), {_size(c['tfrecord_bytes'])}"
            )
        return lines

    def _footer(self) -> list[str]:
        lines = [
            "img/s: median (min-max) over repeats; CPU us/img: CPU time per image (user + "
            "system, every thread of the cell's process; load from other processes changes it "
            "little, unlike img/s); steady: img/s from the first element on; CPU: cores busy "
            "on average; start: ms from iterator creation to the first element; end: ms from "
            "the last element to the end of the data (not timed)."
        ]
        dtypes = {
            c["source"]: c["output"]["dtype"]
            for c in self.cells
            if not c.get("error") and c.get("dtype", "uint8") == "uint8"
        }
        if len(set(dtypes.values())) > 1:
            lines.append(
                "output dtype: "
                + ", ".join(f"{s} {d}" for s, d in dtypes.items())
                + " (Keras returns float32 from its resize)"
            )
        cold_failed = [c for c in self.cells if c["cache"] == "cold" and c.get("evicted") is False]
        if cold_failed:
            note = cold_failed[0]["cache_note"]
            lines.append(f"cold! = NOT evicted ({len(cold_failed)} cells): {note}")
        if any(_cache_label(c) == "cold?" for c in self.cells):
            lines.append("cold? = eviction requested, but it could not be checked here")
        lines.extend(f"note: {n}" for n in self.notes)
        for c in self.failed:
            variant = f" {line_label(c)}" if line_label(c) else ""
            lines.append(
                f"FAILED {c['source']} threads={c['threads']} cores={c['cores']} "
                f"{c['cache']}{variant}: {c['error'].splitlines()[-1]}"
            )
        lines.extend(f"{kind}: {path}" for kind, path in self.paths.items() if path)
        return lines


_HEADERS = (
    "source",
    "cores",
    "threads",
    "cache",
    "img/s",
    "min-max",
    "CPU us/img",
    "MB/s",
    "steady",
    "CPU",
    "start",
    "end",
)


def cell_stored_label(c: dict[str, Any]) -> str:
    """``max=320 raw``: the stored form a cell reading the shards reads, where not the
    default ("" otherwise, and for the raw and keras cells, which read the image folder)."""
    if c.get("source") not in STORED_SOURCES:
        return ""
    return stored_label(c.get("max_size"), c.get("encoding") or "keep")


def line_label(c: dict[str, Any]) -> str:
    """The stored form, decode, crop and dtype where not the defaults (the plot's lines)."""
    return " ".join(p for p in (cell_stored_label(c), variant_label(c)) if p)


#: A cell's decode, crop and dtype, and their defaults (left out of its label).
VARIANT_DEFAULTS = {"decode": "scaled", "crop": "none", "dtype": "uint8"}


def variant_label(c: dict[str, Any]) -> str:
    """``full crop=random float32``: what differs from the defaults ("" for none)."""
    parts = []
    for key, default in VARIANT_DEFAULTS.items():
        value = c.get(key, default)
        if value != default:
            parts.append(f"crop={value}" if key == "crop" else str(value))
    return " ".join(parts)


def _extra_columns(cells: list[dict[str, Any]]) -> tuple[str, ...]:
    """``stored`` when some tfrecord cell reads a stored variant other than the default,
    ``decode/crop/dtype`` when some cell is not the default."""
    extra = ("stored",) if any(cell_stored_label(c) for c in cells) else ()
    return extra + (("decode/crop/dtype",) if any(variant_label(c) for c in cells) else ())


def _headers(cells: list[dict[str, Any]]) -> tuple[tuple[str, ...], int]:
    """The table's headers, with the extra name columns only when used; and how many
    leading columns are names (left-aligned)."""
    extra = _extra_columns(cells)
    return (*_HEADERS[:4], *extra, *_HEADERS[4:]), 4 + len(extra)


def _row(c: dict[str, Any], extra: tuple[str, ...] = ()) -> list[str]:
    head = [c["source"], str(c["cores"]), str(c["threads"]), _cache_label(c)]
    if "stored" in extra:
        stored = cell_stored_label(c) or "keep"
        head.append(stored if c["source"] in STORED_SOURCES else "-")
    if "decode/crop/dtype" in extra:
        head.append(variant_label(c) or "-")
    if c.get("error"):
        return [*head, "failed", "", "", "", "", "", "", ""]
    steady = c["images_per_s_steady"]
    return [
        *head,
        f"{c['images_per_s']:,.0f}",
        f"{c['images_per_s_min']:,.0f}-{c['images_per_s_max']:,.0f}",
        _us(c),
        f"{c['mb_per_s']:.1f}",
        "-" if steady is None else f"{steady:,.0f}",
        f"{c['cpu_utilisation']:.2f}",
        f"{1000 * c['first_s']:.0f}",
        f"{1000 * c['end_wait_s']:.0f}",
    ]


def _us(c: dict[str, Any]) -> str:
    """CPU us per image (from ms in a results.json written before the us figure)."""
    us = c.get("cpu_us_per_image")
    us = 1000 * c["cpu_ms_per_image"] if us is None else us
    return f"{us:,.1f}" if us < 100 else f"{us:,.0f}"


def _line(cols, widths: list[int], names: int = 4) -> str:
    """Names left-aligned, figures right-aligned."""
    cells = (
        c.ljust(w) if i < names else c.rjust(w)
        for i, (c, w) in enumerate(zip(cols, widths, strict=True))
    )
    return "  ".join(cells).rstrip()


def _cache_label(c: dict[str, Any]) -> str:
    """``cold!``: eviction did not work; ``cold?``: it could not be checked."""
    if c["cache"] == "cold" and c.get("evicted") is False:
        return "cold!"
    if c["cache"] == "cold" and c.get("evicted") is None and not c.get("error"):
        return "cold?"
    return c["cache"]


def _size(n: float | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


# --- files ----------------------------------------------------------------------------------


def write_outputs(report: BenchReport, out: Path, *, plot: bool = True) -> None:
    """results.json, results.csv and (with matplotlib) results.png in ``out``."""
    json_path, csv_path, png_path = (out / f"results.{ext}" for ext in ("json", "csv", "png"))
    report.paths = {"json": str(json_path), "csv": str(csv_path), "plot": None}
    if plot:
        from .plot import plot_results

        try:
            report.paths["plot"] = str(plot_results(report.to_json(), png_path))
        except ImportError:
            report.notes.append(PLOT_HINT.format(json=json_path))
    write_json(report, json_path)
    write_csv(report, csv_path)


def write_json(report: BenchReport, path: Path) -> None:
    path.write_text(json.dumps(report.to_json(), indent=2) + "\n", encoding="utf-8")


def write_csv(report: BenchReport, path: Path) -> None:
    machine = {k: report.machine.get(k) for k in MACHINE_COLUMNS}
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, [*CSV_COLUMNS, *MACHINE_COLUMNS])
        writer.writeheader()
        for c in report.all_conversions():
            writer.writerow(
                {
                    "kind": "convert",
                    "source": "convert",
                    "max_size": c.get("max_size"),
                    "encoding": c.get("encoding", "keep"),
                    "threads": c["workers"],
                    "cores": c["cores"],
                    "cache": c["cache"],
                    "images_per_s": c["images_per_s"],
                    "mb_per_s": c["mb_per_s"],
                    "seconds_median": c["seconds"],
                    "images": c["images"],
                    "files": c["shards"],
                    "bytes_per_pass": c["tfrecord_bytes"],
                    **machine,
                }
            )
        for cell in report.cells:
            writer.writerow({**_csv_row(cell), **machine})


def _csv_row(cell: dict[str, Any]) -> dict[str, Any]:
    row = {k: cell.get(k) for k in CSV_COLUMNS}
    options = cell.get("options") or {}
    row.update(
        kind="read",
        image_size="x".join(map(str, cell["image_size"])),
        affinity=" ".join(map(str, cell.get("affinity") or [])),
        num_parallel_calls=options.get("num_parallel_calls"),
        cycle_length=options.get("cycle_length"),
        private_threads=options.get("threads"),
        output_dtype=(cell.get("output") or {}).get("dtype"),
        error=(cell.get("error") or "").replace("\n", " | ") or None,
    )
    return row
