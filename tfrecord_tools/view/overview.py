"""The overview as HTML: what the metadata says (splits, shards, counts, formats, skipped
files, the manifest itself) and, from a small sample of records, classes and image sizes.

Data flow: ``data.Dataset.overview`` (metadata only) -> **overview** -> HTML; the sample's
charts (``data.Dataset.sample_stats``) come in a frame of their own (``/sample``), so the
overview itself reads no shard. ``report`` puts both in one file.
"""

from __future__ import annotations

import json

from . import charts
from .html import Html, card, facts, fmt, join, nav, number, page, size
from .model import Overview, Sample

__all__ = ["overview_body", "overview_page", "sample_body", "sample_page"]

_SHOWN_SHARDS = 200
_SHOWN_SKIPPED = 200
_SAMPLE_SIZES = 12  # image sizes the sample's chart shows


def overview_page(ov: Overview, *, bench: bool, sample_src: str | None = "/sample") -> bytes:
    return page(
        ov.name,
        overview_body(ov, sample_src=sample_src),
        nav=nav("/", bench=bench),
        heading=ov.name,
    )


def overview_body(
    ov: Overview,
    *,
    sample_src: str | None = "/sample",
    sample: Html | None = None,
    linked: bool = True,
) -> Html:
    """The overview's cards. The class and size charts come from a sample of records: a
    frame loading ``sample_src`` (so the overview itself reads no shard), or ``sample``
    given as HTML. ``linked``: split and shard names link to the gallery."""
    about = [
        ("path", ov.shown),
        ("kind", ov.kind),
        ("records", number(ov.records)),
        ("splits", ", ".join(s.name for s in ov.splits)),
        ("shards", number(sum(len(s.shards) for s in ov.splits))),
        ("bytes", size(sum(s.bytes for s in ov.splits))),
        ("compression", ", ".join(ov.compression)),
    ]
    if ov.classes is not None:
        about.append(("classes", number(len(ov.classes))))
    if ov.image_shape is not None:
        about.append(("image shape", "x".join(map(str, ov.image_shape)) + " (every image)"))
    if ov.metadata:
        for key in ("created",):
            if key in ov.metadata:
                about.append((key, str(ov.metadata[key])))
        tool = ov.metadata.get("tool")
        if isinstance(tool, dict):
            about.append(("written by", f"{tool.get('name', '?')} {tool.get('version', '')}"))
    cards = [
        card("Dataset", facts(about)),
        card(
            "Records per split",
            _splits_table(ov, linked),
            charts.bars([(s.name, s.records or 0) for s in ov.splits], label="records per split"),
        ),
    ]
    images = _images_card(ov)
    if images is not None:
        cards.append(images)
    if sample is not None:
        cards.append(card("From a sample of records", sample, wide=True))
    elif sample_src is not None:
        rows = min(len(ov.classes or ()), 61)
        height = 120 + 22 * max(rows, 6)  # more rows: the frame scrolls
        cards.append(
            card(
                "From a sample of records",
                fmt(
                    '<iframe class="sample" src="{}" title="statistics of a sample" '
                    'style="height: {}px"></iframe>',
                    sample_src,
                    height,
                ),
                wide=True,
            )
        )
    if ov.skipped:
        cards.append(card(f"Skipped files ({len(ov.skipped):,})", _skipped(ov)))
    if ov.extra:
        cards.append(
            card(
                f"Shard files {ov.metadata_name or 'the metadata'} does not list",
                fmt("<ul>{}</ul>", join(fmt("<li>{}</li>", p) for p in ov.extra)),
            )
        )
    if ov.notes:
        cards.append(
            card("Notes", fmt("<ul>{}</ul>", join(fmt("<li>{}</li>", n) for n in ov.notes)))
        )
    cards.append(card("Shards", _shards(ov, linked)))
    if ov.metadata is not None:
        text = json.dumps(ov.metadata, indent=2, ensure_ascii=False)
        cards.append(
            card(
                ov.metadata_name or "metadata",
                fmt(
                    "<details><summary>show {}</summary><pre>{}</pre></details>",
                    ov.metadata_name,
                    text,
                ),
            )
        )
    return fmt('<div class="cards">{}</div>', join(cards))


def _images_card(ov: Overview) -> Html | None:
    """Formats, pixel kinds, EXIF orientations (every record: the manifest's statistics)
    and the stored form."""
    parts = []
    if ov.image_formats:
        parts.append(("Formats", charts.bars(list(ov.image_formats.items()), label="formats")))
    if ov.image_kinds:
        kinds = charts.bars(list(ov.image_kinds.items()), label="pixels", colour="#009E73")
        parts.append(("Pixels", kinds))
    if ov.orientations or ov.image_formats:
        orient = [(f"orientation {k}", v) for k, v in sorted(ov.orientations.items())]
        parts.append(
            (
                "EXIF orientations",
                charts.bars(orient, label="EXIF orientations", colour="#E69F00")
                if orient
                else fmt('<p class="muted">every image upright as stored</p>'),
            )
        )
    stored = _stored_form(ov)
    if stored:
        parts.append(("Stored form", facts(stored)))
    if not parts:
        return None
    return card(
        "Images (every record)",
        fmt(
            '<div class="columns">{}</div>',
            join(fmt("<div><h3>{}</h3>{}</div>", t, b) for t, b in parts),
        ),
        wide=True,
    )


def _link(href: str, text: str, linked: bool) -> Html:
    """A link to another page of the server (plain text in a report, which has none)."""
    return fmt('<a href="{}">{}</a>', href, text) if linked else fmt("{}", text)


def _splits_table(ov: Overview, linked: bool) -> Html:
    rows = [
        fmt(
            '<tr data-split="{}"><td>{}</td>'
            '<td class="n" data-shards="{}">{}</td><td class="n" data-records="{}">{}</td>'
            '<td class="n">{}</td></tr>',
            s.name,
            _link(f"/gallery?split={s.number}", s.name, linked),
            len(s.shards),
            number(len(s.shards)),
            "" if s.records is None else s.records,
            number(s.records),
            size(s.bytes),
        )
        for s in ov.splits
    ]
    return fmt(
        '<table class="splits"><thead><tr><th>split</th><th class="n">shards</th>'
        '<th class="n">records</th><th class="n">bytes</th></tr></thead><tbody>{}</tbody>'
        "</table>",
        join(rows),
    )


def _stored_form(ov: Overview) -> list[tuple[str, str]]:
    rows = []
    max_size = ov.stored.get("max_size")
    if isinstance(max_size, dict):
        rows.append(
            (
                "max_size",
                f"{max_size.get('size', '?')} px (JPEG quality {max_size.get('quality', '?')})",
            )
        )
        if "resized" in max_size:
            rows.append(
                (
                    "resized",
                    f"{number(max_size.get('resized'))} images, "
                    f"{size(max_size.get('bytes_before'))} -> "
                    f"{size(max_size.get('bytes_after'))}",
                )
            )
    if "encoding" in ov.stored:
        asked = ov.stored.get("encoding_asked")
        rows.append(
            ("encoding", str(ov.stored["encoding"]) + (f" (asked: {asked})" if asked else ""))
        )
    if ov.converted_from:
        rows.append(("converted", ", ".join(f"{k} {v:,}" for k, v in ov.converted_from.items())))
    return rows


def _skipped(ov: Overview) -> Html:
    reasons: dict[str, int] = {}
    for _, reason in ov.skipped:
        reasons[reason] = reasons.get(reason, 0) + 1
    chart = charts.bars(
        sorted(reasons.items(), key=lambda kv: -kv[1]), label="skipped files", colour="#c62828"
    )
    rows = join(
        fmt('<tr><td class="skipped-path">{}</td><td>{}</td></tr>', path, reason)
        for path, reason in ov.skipped[:_SHOWN_SKIPPED]
    )
    more = (
        fmt('<p class="muted">and {} more</p>', number(len(ov.skipped) - _SHOWN_SKIPPED))
        if len(ov.skipped) > _SHOWN_SKIPPED
        else Html("")
    )
    return fmt(
        "{}<details><summary>list them</summary><table><thead><tr><th>file</th><th>reason</th>"
        "</tr></thead><tbody>{}</tbody></table>{}</details>",
        chart,
        rows,
        more,
    )


def _shards(ov: Overview, linked: bool) -> Html:
    parts = []
    for split in ov.splits:
        rows = [
            fmt(
                "<tr><td>{}</td><td>{}</td>"
                '<td class="n">{}</td><td class="n">{}</td><td>{}</td><td>{}</td></tr>',
                _link(f"/gallery?split={split.number}&shard={s.number}", str(s.number), linked),
                s.name,
                number(s.records),
                size(s.bytes),
                s.compression,
                ("yes" if s.indexed else "no") + (f" ({s.count_source})" if s.count_source else ""),
            )
            for s in split.shards[:_SHOWN_SHARDS]
        ]
        more = len(split.shards) - _SHOWN_SHARDS
        parts.append(
            fmt(
                "<details{}><summary>{}: {} shard(s)</summary><table><thead><tr><th>#</th>"
                '<th>file</th><th class="n">records</th><th class="n">bytes</th>'
                "<th>compression</th><th>.idx (count from)</th></tr></thead><tbody>{}</tbody>"
                "</table>{}</details>",
                Html(" open" if len(ov.splits) == 1 and len(split.shards) <= 16 else ""),
                split.name,
                number(len(split.shards)),
                join(rows),
                fmt('<p class="muted">and {} more</p>', number(more)) if more > 0 else Html(""),
            )
        )
    return join(parts)


# --------------------------------------------------------------------------- sample


def sample_page(sample: Sample) -> bytes:
    return page("sample", sample_body(sample), bare=True)


def sample_body(sample: Sample) -> Html:
    note = fmt(
        '<p class="note">{} records read from {} shard(s), in runs at seeded random places: '
        "an estimate, not a count.{}</p>",
        number(sample.records),
        sample.shards,
        f" {sample.damaged} of them damaged." if sample.damaged else "",
    )
    charts_ = [
        ("Records per class", "sample-classes",
         charts.bars(list(sample.classes.items()), label="records per class in the sample")),
        ("Image sizes (HxW)", "sample-sizes",
         charts.bars(list(sample.sizes.items()), label="image sizes", colour="#009E73",
                     limit=_SAMPLE_SIZES)),
        ("Image formats", "sample-formats",
         charts.bars(list(sample.formats.items()), label="image formats", colour="#56B4E9")),
        ("EXIF orientations", "sample-orientations",
         charts.bars(list(sample.orientations.items()), label="orientations", colour="#E69F00")),
    ]  # fmt: skip
    return fmt(
        '{}<div class="columns">{}</div>',
        note,
        join(fmt('<div id="{}"><h3>{}</h3>{}</div>', i, t, c) for t, i, c in charts_),
    )
