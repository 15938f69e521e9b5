"""What a conversion reports: the summary object returned to Python callers, the table the
CLI prints, and the manifest built from the shard results.

Data flow: shard results -> **summary + manifest dict** -> ``dataset.json``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..format.example import OPTIONAL_FEATURES, ORIENTATION
from ..format.manifest import build_manifest
from ..storage import redact
from .jobs import ShardResult


@dataclass(frozen=True)
class SplitSummary:
    num_examples: int
    num_shards: int
    num_bytes: int


@dataclass(frozen=True)
class ConversionSummary:
    """The outcome of ``convert_image_folder`` / ``convert_mnist``."""

    out_dir: Path | str  # a URL stays a string
    name: str
    classes: list[str]
    splits: dict[str, SplitSummary]
    skipped: list[tuple[str, str]]
    image_formats: dict[str, int]
    image_kinds: dict[str, int]
    converted_from: dict[str, int]
    source_bytes: int
    elapsed: float
    resumed_shards: int = 0
    manifest: dict[str, Any] = field(default_factory=dict, repr=False)
    #: what the user should know about how their options were applied (shard counts)
    notes: tuple[str, ...] = ()
    #: OUT already held this very conversion, finished: nothing was written
    already_complete: bool = False
    #: records per EXIF orientation other than 1 (``{"6": 3}``), which the readers apply
    orientations: dict[str, int] = field(default_factory=dict)
    #: ``--max-size``: the manifest's ``max_size`` (size, quality, how many images it
    #: re-encoded, their bytes before and after); empty without it
    max_size: dict[str, int] = field(default_factory=dict)
    #: ``--encoding`` other than keep: what the images were stored as (raw, png, keep when
    #: auto found them unsuitable for raw); empty by default
    encoding: str = ""

    @property
    def num_examples(self) -> int:
        return sum(s.num_examples for s in self.splits.values())

    @property
    def num_bytes(self) -> int:
        return sum(s.num_bytes for s in self.splits.values())

    @property
    def skipped_by_reason(self) -> dict[str, int]:
        return dict(Counter(reason for _, reason in self.skipped).most_common())

    @property
    def images_per_second(self) -> float:
        return self.num_examples / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def megabytes_per_second(self) -> float:
        return self.source_bytes / self.elapsed / 1e6 if self.elapsed > 0 else 0.0

    def format_table(self) -> str:
        """The human-readable summary the CLI prints."""
        rows = [("split", "examples", "shards", "bytes")]
        for split, s in self.splits.items():
            rows.append((split, f"{s.num_examples:,}", str(s.num_shards), _human(s.num_bytes)))
        rows.append(
            (
                "total",
                f"{self.num_examples:,}",
                str(sum(s.num_shards for s in self.splits.values())),
                _human(self.num_bytes),
            )
        )
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        lines = [f"{self.name}: {len(self.classes)} classes -> {redact(self.out_dir)}"]
        if self.already_complete:
            lines.append("  already complete: nothing was rewritten (--overwrite converts again)")
        for i, row in enumerate(rows):
            lines.append(
                "  "
                + "  ".join(
                    c.ljust(w) if j == 0 else c.rjust(w)
                    for j, (c, w) in enumerate(zip(row, widths, strict=False))
                )
            )
            if i == 0 or i == len(rows) - 2:
                lines.append("  " + "  ".join("-" * w for w in widths))
        lines.append(f"  formats: {_counts(self.image_formats)}")
        lines.append(f"  kinds: {_counts(self.image_kinds)}")
        if self.converted_from:
            lines.append(f"  converted to PNG from: {_counts(self.converted_from)}")
        if self.encoding:
            lines.append(f"  encoding: {self.encoding}")
        if self.max_size:
            m = self.max_size
            lines.append(
                f"  max size {m['size']}: {m['resized']:,} of {self.num_examples:,} resized "
                f"(JPEG q{m['quality']}), {_human(m['bytes_before'])} -> "
                f"{_human(m['bytes_after'])}"
            )
        if self.orientations:
            lines.append(
                f"  EXIF orientations: {_counts(self.orientations)} (kept; the readers apply them)"
            )
        if self.skipped:
            lines.append(
                f"  skipped {len(self.skipped)}: {_counts(self.skipped_by_reason)}"
                " (every path is listed in dataset.json)"
            )
        else:
            lines.append("  skipped: none")
        if self.resumed_shards:
            lines.append(f"  resumed: {self.resumed_shards} shards were already complete")
        lines.extend(f"  note: {note}" for note in self.notes)
        if not self.already_complete:
            lines.append(
                f"  elapsed {self.elapsed:.2f} s: {self.images_per_second:,.0f} images/s, "
                f"{self.megabytes_per_second:,.1f} MB/s read"
            )
        return "\n".join(lines)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in counts.items()) or "none"


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def _merge(counters: Iterable[dict[str, int]]) -> dict[str, int]:
    total: Counter[str] = Counter()
    for c in counters:
        total.update(c)
    return dict(total.most_common())


def summarise(
    *,
    out_dir: Path | str,
    name: str,
    classes: list[str],
    results: list[ShardResult],
    split_order: list[str],
    source: dict[str, Any],
    pre_skipped: list[tuple[str, str]],
    compression: str,
    elapsed: float,
    resumed: int,
    extra: dict[str, Any],
    max_size: dict[str, int] | None = None,
) -> ConversionSummary:
    """Build the summary and the manifest dict (FORMAT.md) from the shard results.
    ``max_size`` ({"size", "quality"}) adds the manifest's ``max_size`` with the counts."""
    from .. import __version__

    by_file = sorted(results, key=lambda r: r.info.file)
    skipped = list(pre_skipped) + [s for r in by_file for s in r.skipped]
    shards = {split: [r.info for r in by_file if r.split == split] for split in split_order}
    splits = {
        split: SplitSummary(
            sum(s.num_examples for s in infos), len(infos), sum(s.num_bytes or 0 for s in infos)
        )
        for split, infos in shards.items()
        if infos
    }
    formats = _merge(r.formats for r in results)
    kinds = _merge(r.kinds for r in results)
    converted = _merge(r.converted_from for r in results)
    orientations = dict(sorted(_merge(r.orientations for r in results).items()))
    if max_size is not None:
        resized = {"resized": 0, "bytes_before": 0, "bytes_after": 0}
        resized.update(_merge(r.resized for r in results))
        extra = {**extra, "max_size": {**max_size, **resized}}
    shape = _common_shape(results)
    if shape is not None:  # every image has this shape: readers can batch without resizing
        extra = {"image_shape": shape, **extra}
    statistics: dict[str, Any] = {
        "image_formats": formats,
        "image_kinds": kinds,
        "converted_from": converted,
    }
    if orientations:  # absent: no record has image/orientation, readers need not parse it
        statistics["orientations"] = orientations
    manifest = build_manifest(
        name=name,
        source=source,
        skipped=skipped,
        classes=classes,
        compression=compression,
        splits=shards,
        statistics=statistics,
        extra=extra,
        tool_version=__version__,
    )
    if orientations:
        manifest["features"] = {**manifest["features"], ORIENTATION: OPTIONAL_FEATURES[ORIENTATION]}
    return ConversionSummary(
        out_dir,
        name,
        classes,
        splits,
        skipped,
        formats,
        kinds,
        converted,
        sum(r.source_bytes for r in results),
        elapsed,
        resumed,
        manifest,
        orientations=orientations,
        max_size=dict(manifest.get("max_size") or {}),
        encoding=_encoding_of(manifest),
    )


def summary_of_finished(
    out_dir: Path | str, manifest: dict[str, Any], *, elapsed: float, notes: tuple[str, ...] = ()
) -> ConversionSummary:
    """The summary of a conversion found finished in ``out_dir``, from its manifest."""
    splits = {
        split: SplitSummary(
            info["num_examples"],
            len(info["shards"]),
            sum(s.get("num_bytes") or 0 for s in info["shards"]),
        )
        for split, info in manifest["splits"].items()
    }
    statistics = manifest.get("statistics") or {}
    skipped = [(s["path"], s["reason"]) for s in manifest["source"].get("skipped", [])]
    return ConversionSummary(
        out_dir,
        manifest["name"],
        list(manifest.get("classes") or []),
        splits,
        skipped,
        dict(statistics.get("image_formats") or {}),
        dict(statistics.get("image_kinds") or {}),
        dict(statistics.get("converted_from") or {}),
        0,
        elapsed,
        manifest=manifest,
        notes=notes,
        already_complete=True,
        orientations=dict(statistics.get("orientations") or {}),
        max_size=dict(manifest.get("max_size") or {}),
        encoding=_encoding_of(manifest),
    )


def _common_shape(results: list[ShardResult]) -> list[int] | None:
    """The (height, width, channels) all written images share, or None."""
    seen: list[list[int]] = []
    for r in results:
        if r.shapes is None:
            return None
        seen.extend(s for s in r.shapes if s not in seen)
    return seen[0] if len(seen) == 1 and len(seen[0]) == 3 else None


def _encoding_of(manifest: dict[str, Any]) -> str:
    """``--encoding`` as the manifest records it for an image folder ("raw (auto)"); MNIST
    manifests say their encoding too, but the table has always shown it as a format."""
    if (manifest.get("source") or {}).get("kind") != "image_folder" or not manifest.get("encoding"):
        return ""
    asked = manifest.get("encoding_asked")
    return f"{manifest['encoding']} ({asked})" if asked else str(manifest["encoding"])
