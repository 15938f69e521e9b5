"""The benchmark plot: images/s and CPU time per image of every reader. Needs matplotlib
(the ``plot`` extra).

- One thread setting and one core count: **bars**, one per reader (source, and its
  variant), grouped by cache state, each labelled with its figure.
- A sweep: **lines**, one per reader, against the thread setting (a line per core count
  too) or, with one thread setting, against the core count; a column per cache state.

The title says what the plot is for: TFRecords against raw files (and against the
hand-written tf.data pipeline), in images/s and in images per CPU second (what holds on a
shared machine), each reader at its best setting.

Data flow: ``results.json`` (as a dict) -> **figure** (:func:`draw`) -> **results.png**.
Also runnable on its own, to plot results measured where matplotlib was missing::

    python -m tfrecord_tools.bench.plot OUT/results.json [PNG]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from .report import line_label

_COLOURS = {
    "raw": "tab:orange",
    "tfrecord": "tab:blue",
    "keras": "tab:green",
    "handwritten": "tab:purple",
    "tfds": "tab:red",
}
_NAMES = {"handwritten": "hand-written tf.data", "tfds": "TFDS as_dataset"}
_STYLES = ("-", "--", ":", "-.")
_MARKERS = ("o", "s", "^", "D", "v", "P")
_FIGURES = (  # (cell key, low, high, axis label) per row of panels
    ("images_per_s", "images_per_s_min", "images_per_s_max", "images/s (median, min-max)"),
    ("cpu_us_per_image", None, None, "CPU us per image (median)"),
)


def plot_results(results: dict[str, Any], path: str | Path) -> Path:
    """Draw ``results`` (the results.json content) to ``path``; ImportError without
    matplotlib."""
    plt = _pyplot()
    fig = draw(results)
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def draw(results: dict[str, Any]):
    """The figure of ``results``: bars for one setting, lines for a sweep (module doc)."""
    plt = _pyplot()
    cells = [_with_us(c) for c in results["cells"] if c.get("images_per_s")]
    states = [s for s in ("warm", "cold") if any(c["cache"] == s for c in results["cells"])]
    states = states or ["warm"]
    threads = _present(results["config"]["threads"], cells, "threads")
    cores = _present(results["config"]["cores"], cells, "cores")
    sweep = "threads" if len(threads) > 1 else "cores" if len(cores) > 1 else None
    columns = len(states) if sweep else 1
    fig, axes = plt.subplots(
        2, columns, figsize=(6.4 * max(columns, 1.5), 8.0), sharex="col", squeeze=False
    )
    if sweep is None:
        _bars(axes[:, 0], cells, states, results)
    else:
        values = threads if sweep == "threads" else cores
        for column, state in enumerate(states):
            _lines(axes[:, column], cells, state, sweep, values, results)
    handles, labels = axes[0][0].get_legend_handles_labels()
    if sweep is not None:  # below the panels, where it hides no line
        fig.legend(
            handles, labels, loc="lower center", ncol=min(5, max(1, len(labels))), fontsize="small"
        )
    fig.suptitle(_title(results, cells, states, sweep=sweep is not None), fontsize="medium")
    fig.tight_layout(rect=(0, 0.07 if sweep else 0, 1, 1))
    return fig


def _bars(axes, cells: list[dict[str, Any]], states: list[str], results) -> None:
    """A bar per reader, grouped by cache state, on both rows."""
    readers = _readers(cells)
    width = 0.8 / max(1, len(readers))
    for row, (key, low, high, ylabel) in zip(axes, _FIGURES, strict=True):
        for i, reader in enumerate(readers):
            found = [_cell(cells, reader, cache=s) for s in states]
            xs = [k + (i - (len(readers) - 1) / 2) * width for k, c in enumerate(found) if c]
            got = [c for c in found if c]
            heights = [c[key] for c in got]
            errors = None
            if low:
                errors = [[h - c[low] for h, c in zip(heights, got, strict=True)]]
                errors.append([c[high] - h for h, c in zip(heights, got, strict=True)])
            bars = row.bar(
                xs,
                heights,
                width * 0.9,
                yerr=errors,
                capsize=3,
                color=_COLOURS.get(reader[0], "tab:gray"),
                label=_label(reader),
            )
            row.bar_label(bars, [_figure(h) for h in heights], fontsize="x-small", padding=2)
        row.set_xticks(range(len(states)), [_state_title(s, results) for s in states])
        row.set_ylabel(ylabel)
        row.grid(True, axis="y", alpha=0.3)
        row.set_ylim(bottom=0)
        row.margins(y=0.15)
    setting = cells[0] if cells else {"threads": "?", "cores": "?"}
    axes[-1].set_xlabel(
        f"threads={setting['threads']}, {setting['cores']} core(s); a fresh pinned process each"
    )
    axes[0].legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))


def _lines(axes, cells, state: str, sweep: str, values: list[str], results) -> None:
    """A line per reader (and per core count, against threads) for one cache state."""
    here = [c for c in cells if c["cache"] == state]
    keys = sorted(
        {(c["source"], line_label(c), c["cores"] if sweep == "threads" else None) for c in here},
        key=lambda k: (k[2] or 0, k[1], _order(k[0])),
    )
    all_cores = sorted({k[2] for k in keys if k[2] is not None}) or [None]
    variants = sorted({k[1] for k in keys})
    for row, (key, low, high, ylabel) in zip(axes, _FIGURES, strict=True):
        for source, variant, cores in keys:
            points = {
                str(c[sweep]): c
                for c in here
                if (c["source"], line_label(c)) == (source, variant)
                and (cores is None or c["cores"] == cores)
            }
            xs = [i for i, v in enumerate(values) if v in points]
            if not xs:
                continue
            got = [points[values[i]] for i in xs]
            ys = [c[key] for c in got]
            errors = None
            if low:
                errors = [[y - c[low] for y, c in zip(ys, got, strict=True)]]
                errors.append([c[high] - y for y, c in zip(ys, got, strict=True)])
            k = all_cores.index(cores)
            shade = variants.index(variant) / max(1, len(variants))  # variants: lighter
            where = f", {cores} core{'s' if cores > 1 else ''}" if cores else ""
            row.errorbar(
                xs,
                ys,
                yerr=errors,
                capsize=3,
                color=_COLOURS.get(source, "tab:gray"),
                linestyle=_STYLES[k % len(_STYLES)],
                marker=_MARKERS[(k + variants.index(variant)) % len(_MARKERS)],
                alpha=1.0 - 0.5 * shade,
                label=_label((source, variant)) + where,
            )
        row.set_xticks(range(len(values)), values)
        row.set_ylabel(ylabel)
        row.grid(True, alpha=0.3)
        row.set_ylim(bottom=0)
    axes[0].set_title(_state_title(state, results))
    axes[-1].set_xlabel(
        "threads (tf.data calls, private pool, TF op pools)"
        if sweep == "threads"
        else "cores the process is pinned to"
    )


def ratios(cells: list[dict[str, Any]], state: str) -> dict[str, tuple[float, float | None]]:
    """TFRecords against raw files and against the hand-written pipeline, each reader at its
    best setting (thread setting x cores), plain cells only (no variant): (images/s ratio,
    images per CPU second ratio; None without CPU figures)."""
    rate: dict[str, float] = {}
    cpu: dict[str, float] = {}
    for c in cells:
        if c["cache"] == state and not line_label(c) and c.get("images_per_s"):
            rate[c["source"]] = max(rate.get(c["source"], 0.0), c["images_per_s"])
            if c.get("cpu_us_per_image"):
                us = c["cpu_us_per_image"]
                cpu[c["source"]] = min(cpu.get(c["source"], us), us)
    if "tfrecord" not in rate:
        return {}
    out: dict[str, tuple[float, float | None]] = {}
    for other in ("raw", "handwritten"):
        if other in rate:
            per_cpu = cpu[other] / cpu["tfrecord"] if {other, "tfrecord"} <= cpu.keys() else None
            out[other] = (rate["tfrecord"] / rate[other], per_cpu)
    return out


def _pyplot():
    """matplotlib's pyplot, drawing to files (Agg: no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _title(results: dict[str, Any], cells, states: list[str], *, sweep: bool) -> str:
    """The ratios (a line each, per cache state when there are several), then what was
    read."""
    lines = []
    for state in states:
        for other, (rate, per_cpu) in ratios(cells, state).items():
            line = f"{state}: " if len(states) > 1 else ""
            line += f"TFRecords/{_NAMES.get(other, other)}: {rate:.2f}x images/s"
            lines.append(line + (f", {per_cpu:.2f}x per CPU second" if per_cpu else ""))
    if lines:
        lines[-1] += " (each at its best setting)" if sweep else ""
    else:
        lines = ["images/s and CPU time per image"]
    cfg, machine = results["config"], results["machine"]
    sources = results["data"]["sources"]
    first = next(iter(sources.values()), None)
    what = f"{first['images']:,} images" if first else "no data"
    sample = results["data"].get("sample")
    if sample:
        what += f" ({sample['kind']} sample)"
    size = "x".join(map(str, cfg["image_size"]))
    lines.append(
        f"{what}, batch {cfg['batch_size']}, resized to {size}x{cfg['channels']}; "
        f"{machine['cpu_model']}, TensorFlow {machine['tensorflow']}"
    )
    return "\n".join(lines)


def _state_title(state: str, results: dict[str, Any]) -> str:
    evicted = [c.get("evicted") for c in results["cells"] if c["cache"] == state]
    title = f"{state} page cache"
    if state == "cold" and False in evicted:
        title += " (eviction did NOT work)"
    return title


def _readers(cells: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(source, variant) of every cell, in source order."""
    found = {(c["source"], line_label(c)) for c in cells}
    return sorted(found, key=lambda k: (_order(k[0]), k[1]))


def _cell(cells, reader: tuple[str, str], *, cache: str) -> dict[str, Any] | None:
    return next(
        (c for c in cells if (c["source"], line_label(c)) == reader and c["cache"] == cache),
        None,
    )


def _label(reader: tuple[str, str]) -> str:
    source, variant = reader
    return _NAMES.get(source, source) + (f", {variant}" if variant else "")


def _order(source: str) -> int:
    return list(_COLOURS).index(source) if source in _COLOURS else len(_COLOURS)


def _present(values: list[Any], cells: list[dict[str, Any]], key: str) -> list[str]:
    """The configured values of ``key`` some cell measured, as strings, in config order."""
    seen = {str(c[key]) for c in cells}
    return [str(v) for v in values if str(v) in seen]


def _with_us(cell: dict[str, Any]) -> dict[str, Any]:
    """The cell with ``cpu_us_per_image`` (results written before it had only ms)."""
    if cell.get("cpu_us_per_image") is None and cell.get("cpu_ms_per_image") is not None:
        return {**cell, "cpu_us_per_image": 1000 * cell["cpu_ms_per_image"]}
    return cell


def _figure(value: float) -> str:
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not 1 <= len(args) <= 2:
        print("usage: python -m tfrecord_tools.bench.plot RESULTS_JSON [PNG]", file=sys.stderr)
        return 2
    source = Path(args[0])
    target = Path(args[1]) if len(args) == 2 else source.with_suffix(".png")
    print(plot_results(json.loads(source.read_text(encoding="utf-8")), target))
    return 0


if __name__ == "__main__":
    sys.exit(main())
