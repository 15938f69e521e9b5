"""``tfrecord-tools inspect PATH --grid FILE.png``: a contact sheet, a row per class with
its first few images (TFDS's ``show_examples``), drawn with Pillow.

Data flow: ``data.Dataset`` -> runs of records from every shard in turn (so a dataset
whose shards hold one class each still fills every row) until each class has its images
or :data:`BUDGET` records were read -> thumbnails -> one PNG, written whole.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

from .. import storage
from ..errors import TFRecordToolsError
from .data import open_dataset
from .model import Entry

__all__ = ["BUDGET", "Sheet", "contact_sheet"]

#: Records read at most to fill the rows.
BUDGET = 20_000
_RUN = 64  # records read from a shard at a time
CELL = 96  # pixels of an image's square
_PAD = 6
_LABEL = 180  # width of the class column
_TITLE = 34
_MAX_ROWS = 200
_BACKGROUND = (255, 255, 255)
_INK = (29, 36, 48)
_MUTED = (91, 101, 119)
_EMPTY = (238, 240, 243)


@dataclass(frozen=True)
class Sheet:
    """What was drawn: ``rows`` as (class, images in its row)."""

    file: str
    rows: list[tuple[str, int]]
    records_read: int
    width: int
    height: int
    notes: list[str]

    @property
    def images(self) -> int:
        return sum(n for _, n in self.rows)

    def format_text(self) -> str:
        lines = [
            f"{self.file}: {len(self.rows)} class row(s), {self.images} image(s), "
            f"{self.width}x{self.height} px, from {self.records_read:,} records read"
        ]
        lines += [f"  {name}: {n}" for name, n in self.rows]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def contact_sheet(
    paths: str | os.PathLike | Sequence[str | os.PathLike],
    file: str | os.PathLike,
    *,
    per_class: int = 8,
) -> Sheet:
    """Draw up to ``per_class`` images of each class (a row each, in label order) into the
    PNG ``file`` (a local path or a URL)."""
    if not 1 <= per_class <= 100:
        raise TFRecordToolsError(f"--per-class must be between 1 and 100, got {per_class}")
    dataset = open_dataset(paths)
    try:
        rows, read, notes = _collect(dataset, per_class)
        if not rows:
            raise TFRecordToolsError(
                f"{dataset.overview().shown}: no record with an image in the first "
                f"{read:,} records read"
            )
        pictures = {key: [_picture(dataset, e) for e in entries] for key, entries in rows.items()}
        name = dataset.overview().name
        classes = dataset.classes
    finally:
        dataset.close()
    order = sorted(rows, key=lambda k: (k is None, k if k is not None else 0))
    if classes is not None:  # every class gets its row, found or not
        order = list(range(len(classes))) + [k for k in order if k is None or k >= len(classes)]
    if len(order) > _MAX_ROWS:
        notes.append(f"{len(order) - _MAX_ROWS} more classes not drawn (the first {_MAX_ROWS} are)")
        order = order[:_MAX_ROWS]
    labels = [_label(k, classes, rows) for k in order]
    image = _draw(name, per_class, labels, [pictures.get(k, []) for k in order])
    out = io.BytesIO()
    image.save(out, "PNG", optimize=True)
    where = storage.write_atomic(file, out.getvalue())
    return Sheet(
        storage.redact(where),
        [(label, len(pictures.get(k, []))) for label, k in zip(labels, order, strict=True)],
        read,
        image.width,
        image.height,
        notes,
    )


def _collect(dataset, per_class: int) -> tuple[dict[int | None, list[Entry]], int, list[str]]:
    """Entries with an image, at most ``per_class`` per label, read a run of records from
    each shard in turn."""
    shards = [
        (split, shard)
        for split in range(len(dataset.split_names))
        for shard in range(len(dataset.shards_of(split)))
    ]
    wanted = len(dataset.classes) if dataset.classes is not None else None
    rows: dict[int | None, list[Entry]] = {}
    at = dict.fromkeys(shards, 0)
    read = 0
    notes: list[str] = []
    while at and read < BUDGET:
        labels_before = len(rows)
        for place in list(at):
            run = dataset.records(*place, at[place], _RUN)
            read += len(run)
            at[place] += len(run)
            if len(run) < _RUN:
                del at[place]
            for entry in run:
                if entry.damage is None and entry.image_format is not None:
                    row = rows.setdefault(entry.label, [])
                    if len(row) < per_class:
                        row.append(entry)
            full = sum(1 for r in rows.values() if len(r) >= per_class)
            if (wanted is not None and full >= wanted) or read >= BUDGET:
                break
        full = sum(1 for r in rows.values() if len(r) >= per_class)
        if wanted is not None and full >= wanted:
            return rows, read, notes
        if wanted is None and rows and full == len(rows) and len(rows) == labels_before:
            return rows, read, notes  # every row full, and a whole round found no new label
    if at:
        notes.append(f"stopped after {read:,} records: some rows may be short")
    return rows, read, notes


def _picture(dataset, entry: Entry) -> Image.Image | None:
    try:
        picture = dataset.thumbnail(entry.split, entry.shard, entry.index, size=CELL)
    except (LookupError, TFRecordToolsError):
        return None
    image = Image.open(io.BytesIO(picture.data))
    image.load()
    return image


def _label(key: int | None, classes, rows) -> str:
    if key is None:
        return "(no label)"
    found = rows.get(key) or []
    name = classes[key] if classes is not None and 0 <= key < len(classes) else None
    if name is None and found and found[0].klass is not None:
        name = found[0].klass
    return f"{key}: {name}" if name is not None and name != str(key) else str(key)


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the bitmap font
        return ImageFont.load_default()


def _draw(
    name: str, per_class: int, labels: list[str], pictures: list[list[Image.Image | None]]
) -> Image.Image:
    step = CELL + _PAD
    width = _LABEL + per_class * step + _PAD
    height = _TITLE + len(labels) * step + _PAD
    sheet = Image.new("RGB", (width, height), _BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    draw.text((_PAD, 8), f"{name}: up to {per_class} per class", fill=_INK, font=_font(16))
    font = _font(13)
    for r, (label, row) in enumerate(zip(labels, pictures, strict=True)):
        top = _TITLE + r * step
        shown = label if len(label) <= 24 else label[:23] + "…"
        draw.text((_PAD, top + CELL // 2 - 8), shown, fill=_INK, font=font)
        for c in range(per_class):
            left = _LABEL + c * step
            picture = row[c] if c < len(row) else None
            if picture is None:
                draw.rectangle((left, top, left + CELL - 1, top + CELL - 1), fill=_EMPTY)
                continue
            sheet.paste(_fit(picture), (left, top))
        if not row:
            draw.text((_LABEL + 8, top + CELL // 2 - 8), "none found", fill=_MUTED, font=font)
    return sheet


def _fit(picture: Image.Image) -> Image.Image:
    """The picture scaled to fill a cell's longer side, centred on the sheet's background
    (small images enlarged without blurring, as pixels)."""
    scale = CELL / max(picture.size)
    size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
    small = max(picture.size) <= 64
    resample = Image.Resampling.NEAREST if small else Image.Resampling.BICUBIC
    picture = picture.convert("RGBA").resize(size, resample)
    cell = Image.new("RGBA", (CELL, CELL), (*_BACKGROUND, 255))
    cell.alpha_composite(picture, ((CELL - size[0]) // 2, (CELL - size[1]) // 2))
    return cell.convert("RGB")
