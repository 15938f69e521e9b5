"""Benchmark results (``tfrecord-tools bench --out DIR``'s ``results.json``) as the
viewer's plots: throughput against the thread setting, a line per source x cores x stored
form, a panel per page-cache state, min-max bars; the same lines ``bench.plot`` draws.

Data flow: DIR/results.json (or DIR/*/results.json) -> **bench** -> SVG + a table. The
files are read once, when the viewer starts: the folder is the one named on the command
line, never one a request names.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from .. import storage
from ..bench.report import line_label
from ..errors import TFRecordToolsError
from . import charts
from .html import Html, fmt, join, nav, number, page

__all__ = ["BenchResults", "bench_page", "load_bench"]

RESULTS = "results.json"
_SOURCES = ("raw", "tfrecord", "keras")
#: bench.plot's colours (matplotlib's tab:orange, tab:blue, tab:green)
_COLOURS = {"raw": "#ff7f0e", "tfrecord": "#1f77b4", "keras": "#2ca02c"}


@dataclass(frozen=True)
class BenchResults:
    name: str  # the folder it came from
    data: dict[str, Any]


def load_bench(folder: str | os.PathLike) -> list[BenchResults]:
    """The results in ``folder`` (its ``results.json``, else those of its subfolders);
    TFRecordToolsError when there are none or one is not a benchmark's."""
    folder = os.fspath(folder)
    files, folders = storage.list_folder(folder)
    if RESULTS in files:
        found = [(storage.basename(folder.rstrip("/")) or folder, storage.join(folder, RESULTS))]
    else:
        found = [
            (name, storage.join(folder, name, RESULTS))
            for name in sorted(folders)
            if RESULTS in storage.list_files(storage.join(folder, name))
        ]
    if not found:
        raise TFRecordToolsError(
            f"{storage.redact(folder)}: no {RESULTS} here or in its subfolders "
            "(the output of `tfrecord-tools bench --out DIR`)"
        )
    out = []
    for name, path in found:
        try:
            data = json.loads(storage.read_text(path))
        except (OSError, ValueError) as e:
            raise TFRecordToolsError(f"{storage.redact(path)}: cannot read it: {e}") from None
        if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
            raise TFRecordToolsError(
                f'{storage.redact(path)}: not benchmark results (no list of "cells")'
            )
        out.append(BenchResults(name, data))
    return out


def bench_page(results: list[BenchResults]) -> bytes:
    return page("benchmarks", join(_one(r) for r in results), nav=nav("/bench", bench=True),
                heading="Benchmarks")  # fmt: skip


def _one(result: BenchResults) -> Html:
    data = result.data
    cells = [c for c in data["cells"] if isinstance(c, dict) and c.get("images_per_s")]
    config = data.get("config") or {}
    threads = [
        str(t) for t in config.get("threads") or sorted({str(c.get("threads")) for c in cells})
    ]
    states = [s for s in ("warm", "cold") if any(c.get("cache") == s for c in cells)] or ["warm"]
    panels = []
    for state in states:
        series = []
        keys = sorted(
            {
                (c.get("source"), c.get("cores"), line_label(c))
                for c in cells
                if c.get("cache") == state
            },
            key=lambda k: (k[1] or 0, k[2], _SOURCES.index(k[0]) if k[0] in _SOURCES else 9),
        )
        for source, cores, variant in keys:
            points = {
                str(c.get("threads")): c
                for c in cells
                if (c.get("source"), c.get("cores"), c.get("cache"), line_label(c))
                == (source, cores, state, variant)
            }

            def value(t: str, key: str, points=points) -> float | None:
                cell = points.get(t)
                return None if cell is None else cell.get(key)

            plural = "s" if cores != 1 else ""
            name = f"{source}{', ' + variant if variant else ''}, {cores} core{plural}"
            series.append(
                charts.Series(
                    name,
                    [value(t, "images_per_s") for t in threads],
                    [value(t, "images_per_s_min") for t in threads],
                    [value(t, "images_per_s_max") for t in threads],
                    dashed=(cores or 1) > 1,
                    colour=_COLOURS.get(source) if not variant else None,
                )
            )
        panels.append(
            charts.lines(
                threads,
                series,
                title=f"{state} page cache",
                y_label="images/s (median, min-max)",
                x_label="threads",
            )
        )
    rows = join(
        fmt(
            '<tr><td>{}</td><td>{}</td><td class="n">{}</td><td class="n">{}</td><td>{}</td>'
            '<td class="n">{}</td><td class="n">{}</td><td class="n">{}</td></tr>',
            c.get("source"),
            line_label(c),
            c.get("cores"),
            c.get("threads"),
            c.get("cache"),
            f"{c.get('images_per_s') or 0:,.0f}",
            f"{c.get('images_per_s_min') or 0:,.0f}",
            f"{c.get('images_per_s_max') or 0:,.0f}",
        )
        for c in cells
    )
    machine = data.get("machine") or {}
    images = next(iter((data.get("data") or {}).get("sources", {}).values()), {}).get("images")
    size = "x".join(map(str, config.get("image_size") or [])) or "?"
    about = fmt(
        '<p class="muted">{} images, batch {}, resized to {}; {}, {} CPUs, TensorFlow {}; {}</p>',
        number(images),
        config.get("batch_size", "?"),
        size,
        machine.get("cpu_model", "?"),
        machine.get("logical_cpus", "?"),
        machine.get("tensorflow", "?"),
        data.get("created", ""),
    )
    failed = [c for c in data["cells"] if isinstance(c, dict) and c.get("error")]
    errors = fmt('<p class="bad">{} cell(s) failed</p>', len(failed)) if failed else Html("")
    return fmt(
        '<section class="card bench"><h2>{}</h2>{}{}<div class="cards">{}</div>'
        "<details><summary>every cell</summary><table><thead><tr><th>source</th>"
        '<th>variant</th><th class="n">cores</th><th class="n">threads</th><th>cache</th>'
        '<th class="n">images/s</th><th class="n">min</th><th class="n">max</th></tr>'
        "</thead><tbody>{}</tbody></table></details></section>",
        result.name,
        about,
        errors,
        join(fmt("<div>{}</div>", p) for p in panels),
        rows,
    )
