"""The benchmark plot: throughput against the thread setting, one line per source x cores,
a panel per cache state (warm, cold). Needs matplotlib (the ``plot`` extra).

Data flow: ``results.json`` (as a dict) -> **results.png**. Also runnable on its own, to
plot results measured where matplotlib was missing::

    python -m tfrecord_tools.bench.plot OUT/results.json [PNG]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from .report import line_label

_COLOURS = {"raw": "tab:orange", "tfrecord": "tab:blue", "keras": "tab:green"}
_STYLES = ("-", "--", ":", "-.")
_MARKERS = ("o", "s", "^", "D", "v", "P")


def plot_results(results: dict[str, Any], path: str | Path) -> Path:
    """Draw ``results`` (the results.json content) to ``path``; ImportError without
    matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = [c for c in results["cells"] if c.get("images_per_s")]
    states = [s for s in ("warm", "cold") if any(c["cache"] == s for c in results["cells"])]
    threads = [str(t) for t in results["config"]["threads"]]
    order = {s: i for i, s in enumerate(_COLOURS)}
    lines = sorted(
        {(c["source"], c["cores"], line_label(c)) for c in cells},
        key=lambda k: (k[1], k[2], order.get(k[0], 9)),
    )
    variants = sorted({k[2] for k in lines})
    all_cores = sorted({k[1] for k in lines})
    fig, axes = plt.subplots(
        1,
        max(1, len(states)),
        figsize=(6.4 * max(1, len(states)), 4.8),
        sharey=True,
        squeeze=False,
    )
    for ax, state in zip(axes[0], states or ["warm"], strict=False):
        for source, cores, variant in lines:
            points = {
                str(c["threads"]): c
                for c in cells
                if (c["source"], c["cores"], c["cache"], line_label(c))
                == (source, cores, state, variant)
            }
            xs = [i for i, t in enumerate(threads) if t in points]
            if not xs:
                continue
            ys = [points[threads[i]]["images_per_s"] for i in xs]
            low = [y - points[threads[i]]["images_per_s_min"] for i, y in zip(xs, ys, strict=True)]
            high = [points[threads[i]]["images_per_s_max"] - y for i, y in zip(xs, ys, strict=True)]
            k = all_cores.index(cores)
            shade = variants.index(variant) / max(1, len(variants))  # variants: lighter
            ax.errorbar(
                xs,
                ys,
                yerr=[low, high],
                capsize=3,
                color=_COLOURS.get(source, "tab:gray"),
                linestyle=_STYLES[k % len(_STYLES)],
                marker=_MARKERS[(k + variants.index(variant)) % len(_MARKERS)],
                alpha=1.0 - 0.5 * shade,
                label=f"{source}{', ' + variant if variant else ''}, "
                f"{cores} core{'s' if cores > 1 else ''}",
            )
        evicted = [c.get("evicted") for c in results["cells"] if c["cache"] == state]
        title = f"{state} page cache"
        if state == "cold" and False in evicted:
            title += " (eviction did NOT work)"
        ax.set_title(title)
        ax.set_xticks(range(len(threads)), threads)
        ax.set_xlabel("threads (tf.data calls, private pool, TF op pools)")
        ax.grid(True, alpha=0.3)
        ax.set_ylim(bottom=0)
    axes[0][0].set_ylabel("images/s (median, min-max bars)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    # below the panels, where it hides no line
    fig.legend(
        handles, labels, loc="lower center", ncol=min(6, max(1, len(labels))), fontsize="small"
    )
    fig.suptitle(_title(results), fontsize="medium")
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _title(results: dict[str, Any]) -> str:
    cfg, machine = results["config"], results["machine"]
    sources = results["data"]["sources"]
    first = next(iter(sources.values()), None)
    what = f"{first['images']:,} images" if first else "no data"
    sample = results["data"].get("sample")
    if sample:
        what += f" ({sample['kind']} sample)"
    size = "x".join(map(str, cfg["image_size"]))
    return (
        f"{what}, batch {cfg['batch_size']}, resized to {size}x{cfg['channels']}\n"
        f"{machine['cpu_model']}, TensorFlow {machine['tensorflow']}"
    )


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
