"""``tfrecord-tools view PATH --html FILE``: the overview and a gallery sample as one
self-contained HTML file, thumbnails inline as ``data:`` URIs, to attach to a report or
open offline.

Data flow: ``data.Dataset`` (overview, a sample's statistics, a seeded random sample of
each split) -> ``pages`` (the same cards and tiles the server shows) -> one file, written
whole (locally through a temporary sibling; to a bucket in one upload).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Sequence
from dataclasses import dataclass

from .. import storage
from ..errors import TFRecordToolsError
from .data import open_dataset
from .html import fmt, join, page
from .model import Entry
from .overview import overview_body, sample_body
from .pages import THUMB, tiles

__all__ = ["HtmlReport", "write_html"]


@dataclass(frozen=True)
class HtmlReport:
    file: str
    images: int  # thumbnails in the file
    bytes: int


def write_html(
    paths: str | os.PathLike | Sequence[str | os.PathLike],
    file: str | os.PathLike,
    *,
    sample: int = 60,
    seed: int = 0,
) -> HtmlReport:
    """Write the report to ``file`` (a local path or a URL): the overview, the statistics
    of a sample of records, and ``sample`` thumbnails drawn at random (seeded) over the
    splits."""
    if sample < 0:
        raise TFRecordToolsError(f"--sample must be at least 0, got {sample}")
    dataset = open_dataset(paths)
    try:
        ov = dataset.overview()
        stats = dataset.sample_stats()
        sections = []
        images = 0
        drawn = _shares(sample, [s.records for s in ov.splits])
        for number, name in enumerate(dataset.split_names):
            share = drawn[number]
            entries, _left_out = dataset.sample(number, None, share, seed) if share else ([], 0)
            inline = {e: _inline(dataset, e) for e in entries}
            images += sum(1 for src in inline.values() if src)
            sections.append(
                fmt(
                    '<section class="card"><h2>{}: {} records drawn at random (seed {})</h2>{}'
                    "</section>",
                    name,
                    len(entries),
                    seed,
                    tiles(
                        entries,
                        thumb_src=lambda e, inline=inline: inline[e],
                        record_href=None,
                    ),
                )
            )
        body = fmt(
            "{}<h1>Gallery sample</h1>{}",
            overview_body(ov, sample_src=None, sample=sample_body(stats), linked=False),
            join(sections),
        )
        document = page(f"{ov.name}: tfrecord-tools report", body, heading=ov.name)
    finally:
        dataset.close()
    where = storage.write_atomic(file, document)
    return HtmlReport(storage.redact(where), images, len(document))


def _shares(total: int, sizes: list[int | None]) -> list[int]:
    """``total`` spread evenly over splits of ``sizes`` records (None: unknown, as many as
    asked), a small split's unused share going to the others."""
    shares = [0] * len(sizes)
    left = total
    order = sorted(range(len(sizes)), key=lambda i: (sizes[i] is None, sizes[i] or 0))
    for k, i in enumerate(order):
        want = -(-left // (len(order) - k))
        shares[i] = want if sizes[i] is None else min(want, sizes[i])
        left -= shares[i]
    return shares


def _inline(dataset, entry: Entry) -> str:
    """A thumbnail as a ``data:`` URI ("" when the record has no readable image)."""
    if entry.damage is not None or entry.image_format is None:
        return ""
    try:
        picture = dataset.thumbnail(entry.split, entry.shard, entry.index, size=THUMB)
    except (LookupError, TFRecordToolsError):
        return ""
    return f"data:{picture.mime};base64,{base64.b64encode(picture.data).decode('ascii')}"
