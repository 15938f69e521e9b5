"""The viewer's gallery, record and damage pages as HTML (the overview's: ``overview``).

Data flow: ``data`` / ``gallery`` results -> **pages** -> HTML bytes (``server`` sends
them; ``report`` writes a gallery's tiles into one file). Links carry numbers only:
``/gallery?split=0&shard=2``, ``/record/0/2/17``, ``/thumb/0/2/17``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from urllib.parse import urlencode

from .gallery import PAGE_SIZES, GalleryPage, Query
from .html import Html, facts, fmt, join, nav, number, page
from .model import Entry, RecordView, Verified

__all__ = ["damage_page", "gallery_href", "gallery_page", "record_page", "tiles"]

#: Longest side of a gallery thumbnail, in pixels.
THUMB = 160
_SMALL = 320  # record pages show images smaller than this enlarged


def gallery_href(query: Query, **changes) -> str:
    """The gallery URL of ``query`` with ``changes`` (None drops a parameter)."""
    values = {
        "split": query.split,
        "shard": query.shard,
        "class": query.klass,
        "start": query.start or None,
        "n": query.n,
        "seed": query.seed,
        "stored": 1 if query.stored else None,
    }
    values.update({("class" if k == "klass" else k): v for k, v in changes.items()})
    return "/gallery?" + urlencode({k: v for k, v in values.items() if v is not None})


def _stored(stored: bool) -> str:
    return "?stored=1" if stored else ""


# --------------------------------------------------------------------------- gallery


def tiles(
    entries: Iterable[Entry],
    *,
    thumb_src: Callable[[Entry], str],
    record_href: Callable[[Entry], str] | None,
    damaged: set[tuple[int, int, int]] = frozenset(),  # type: ignore[assignment]
) -> Html:
    """A grid of thumbnails with their class and place; damaged records marked."""
    out = []
    for e in entries:
        bad = e.damage is not None or (e.split, e.shard, e.index) in damaged
        place = fmt('<span class="place">shard {} · #{}</span>', e.shard, number(e.index))
        src = "" if bad or e.image_format is None else thumb_src(e)
        if not src:
            why = e.damage or ("damaged (verify)" if bad else "no image to show")
            frame = fmt('<div class="frame">{}</div>', why)
        else:
            tiny = (e.width or 999) <= 64 and (e.height or 999) <= 64
            frame = fmt(
                '<div class="frame"><img src="{}" alt="{}"{}></div>',
                src,
                e.klass or "",
                Html(' class="tiny"' if tiny else ""),
            )
        if record_href is not None:
            frame = fmt('<a href="{}">{}</a>', record_href(e), frame)
        caption = fmt(
            '<figcaption>{}<span class="class">{}</span>{}</figcaption>',
            Html('<span class="badge">damaged</span> ') if bad else Html(""),
            e.klass if e.klass is not None else "—",
            place,
        )
        out.append(
            fmt(
                '<figure class="tile{}" data-split="{}" data-shard="{}" data-index="{}" '
                'data-label="{}" data-damaged="{}">{}{}</figure>',
                Html(" damaged" if bad else ""),
                e.split,
                e.shard,
                e.index,
                "" if e.label is None else e.label,
                "1" if bad else "0",
                frame,
                caption,
            )
        )
    return fmt('<div class="gallery">{}</div>', join(out))


def gallery_page(
    result: GalleryPage,
    *,
    split_names: list[str],
    shard_names: list[str],
    classes: tuple[str, ...] | None,
    damaged: set[tuple[int, int, int]],
    bench: bool,
) -> bytes:
    q = result.query
    suffix = _stored(q.stored)
    body = [
        _filters(q, split_names, shard_names, classes),
        _pager(result),
        tiles(
            result.entries,
            thumb_src=lambda e: f"/thumb/{e.split}/{e.shard}/{e.index}{suffix}",
            record_href=lambda e: f"/record/{e.split}/{e.shard}/{e.index}{suffix}",
            damaged=damaged,
        ),
    ]
    if not result.entries:
        body.append(fmt('<p class="muted">no records here</p>'))
    body.append(_pager(result))
    title = split_names[q.split] + ("" if q.shard is None else f" · {shard_names[q.shard]}")
    return page(f"gallery: {title}", join(body), nav=nav("/gallery", bench=bench))


def _filters(
    q: Query, split_names: list[str], shard_names: list[str], classes: tuple[str, ...] | None
) -> Html:
    def options(values: Iterable[tuple[str, str]], chosen: str) -> Html:
        return join(
            fmt('<option value="{}"{}>{}</option>', v, Html(" selected" if v == chosen else ""), t)
            for v, t in values
        )

    splits = options(((str(i), n) for i, n in enumerate(split_names)), str(q.split))
    shards = options(
        [("", "all"), *((str(i), f"{i}: {n}") for i, n in enumerate(shard_names))],
        "" if q.shard is None else str(q.shard),
    )
    class_select = Html("")
    if classes is not None:
        class_select = fmt(
            '<label>class<select name="class">{}</select></label>',
            options(
                [("", "all"), *((str(i), f"{i}: {c}") for i, c in enumerate(classes))],
                "" if q.klass is None else str(q.klass),
            ),
        )
    else:
        class_select = fmt(
            '<label>class number<input name="class" inputmode="numeric" size="5" value="{}">'
            "</label>",
            "" if q.klass is None else q.klass,
        )
    sizes = options(((str(n), str(n)) for n in sorted({*PAGE_SIZES, q.n})), str(q.n))
    seed = "" if q.seed is None else str(q.seed)
    toggle = gallery_href(q, stored=None if q.stored else 1)
    sample = gallery_href(q, seed=(q.seed or 0) + 1, start=None)
    return fmt(
        '<form class="filters" method="get" action="/gallery">'
        '<label>split<select name="split">{}</select></label>'
        '<label>shard<select name="shard">{}</select></label>{}'
        '<label>per page<select name="n">{}</select></label>'
        '<label>random sample, seed<input name="seed" inputmode="numeric" size="6" value="{}">'
        '</label>{}<button type="submit">Show</button>'
        '<a href="{}">{}</a><a href="{}">{}</a></form>',
        splits,
        shards,
        class_select,
        sizes,
        seed,
        Html('<input type="hidden" name="stored" value="1">') if q.stored else Html(""),
        sample,
        "another random sample" if q.seed is not None else "a random sample",
        toggle,
        "apply EXIF orientation" if q.stored else "show as stored (no EXIF orientation)",
    )


def _pager(result: GalleryPage) -> Html:
    q = result.query
    shown = len(result.entries)
    if q.seed is not None:
        what = fmt("{} records drawn at random (seed {})", number(shown), q.seed)
    elif q.klass is not None:
        what = fmt(
            "{} records of class {} among {} read from record {}",
            number(shown),
            q.klass,
            number(result.scanned),
            number(q.start),
        )
    elif shown:
        what = fmt(
            "records {}–{} of {}",
            number(q.start),
            number(q.start + shown - 1),
            number(result.total),
        )
    else:
        what = fmt("no records from {} (of {})", number(q.start), number(result.total))
    links = []
    if result.prev_start is not None:
        links.append(
            fmt(
                '<a href="{}" rel="prev">← previous</a>',
                gallery_href(q, start=result.prev_start or None),
            )
        )
    if result.next_start is not None:
        links.append(
            fmt('<a href="{}" rel="next">next →</a>', gallery_href(q, start=result.next_start))
        )
    notes = join(fmt('<span class="note">{}</span>', n) for n in result.notes)
    return fmt('<div class="pager"><span>{}</span>{}{}</div>', what, join(links), notes)


# --------------------------------------------------------------------------- record


def record_page(view: RecordView, *, stored: bool, damaged: bool, bench: bool) -> bytes:
    e = view.entry
    suffix = _stored(stored)
    here = f"/record/{e.split}/{e.shard}/{e.index}"
    about = [
        ("split", view.split_name),
        ("shard", f"{e.shard}: {view.shard_name}"),
        ("record", f"{e.index:,}" + ("" if view.count is None else f" of {view.count:,}")),
        ("byte offset", number(e.offset)),
        ("bytes", number(e.size) + " (with framing)"),
    ]
    if e.klass is not None:
        about.append(("class", e.klass + ("" if e.label is None else f" (label {e.label})")))
    if e.filename:
        about.append(("file", e.filename))
    if e.image_format:
        dims = f", {e.width}×{e.height} px (width×height)" if e.width and e.height else ""
        about.append(("image", f"{e.image_format}{dims}, EXIF orientation {e.orientation}"))
    links = []
    if e.index > 0:
        links.append(
            fmt(
                '<a rel="prev" href="/record/{}/{}/{}{}">← previous</a>',
                e.split,
                e.shard,
                e.index - 1,
                suffix,
            )
        )
    if view.count is None or e.index + 1 < view.count:
        links.append(
            fmt(
                '<a rel="next" href="/record/{}/{}/{}{}">next →</a>',
                e.split,
                e.shard,
                e.index + 1,
                suffix,
            )
        )
    links.append(
        fmt(
            '<a href="/gallery?split={}&amp;shard={}&amp;start={}">in the gallery</a>',
            e.split,
            e.shard,
            e.index,
        )
    )
    if e.image_format is not None and e.damage is None:
        links.append(
            fmt(
                '<a href="{}{}">{}</a>',
                here,
                "" if stored else "?stored=1",
                "apply EXIF orientation" if stored else "show as stored",
            )
        )
    rows = join(
        fmt(
            '<tr data-key="{}"><td><code>{}</code></td><td>{}</td><td>{}</td></tr>',
            key,
            key,
            kind,
            shown,
        )
        for key, kind, shown in view.features
    )
    table = fmt(
        '<table class="features"><thead><tr><th>key</th><th>type</th><th>value</th></tr></thead>'
        "<tbody>{}</tbody></table>",
        rows,
    )
    if e.damage is not None or damaged:
        image = fmt(
            '<p class="bad"><span class="badge">damaged</span> {}</p>',
            e.damage or "verify found this record damaged",
        )
    elif e.image_format is None:
        image = fmt('<p class="muted">no image in this record</p>')
    else:
        image = fmt(
            '<img src="/image/{}/{}/{}{}" alt="{}"{}>',
            e.split,
            e.shard,
            e.index,
            suffix,
            e.klass or "image",
            _enlarged(e, stored),
        )
    body = fmt(
        '<div class="pager">{}</div><div class="record"><section class="card image">{}'
        '</section><section class="card">{}<h2>Features</h2>{}</section></div>',
        join(links, " "),
        image,
        facts(about),
        table if view.features else fmt('<p class="muted">none could be read</p>'),
    )
    title = f"{view.shard_name} #{e.index}"
    return page(title, body, nav=nav("", bench=bench), heading=title)


def _enlarged(e: Entry, stored: bool) -> Html:
    """Attributes that show a small image (under 256 pixels) a whole number of times
    larger; a tiny one (64 and under) as crisp pixels."""
    if not e.width or not e.height or max(e.width, e.height) >= _SMALL:
        return Html("")
    width = e.height if not stored and e.orientation >= 5 else e.width
    scale = _SMALL // max(e.width, e.height)
    tiny = ' class="tiny"' if max(e.width, e.height) <= 64 else ""
    return fmt('{} style="width: {}px"', Html(tiny), width * scale)


# --------------------------------------------------------------------------- damage


def damage_page(verified: Verified, met: list, *, bench: bool) -> bytes:
    parts = []
    if verified.state == "idle":
        parts.append(
            fmt(
                '<section class="card"><h2>Verify</h2><p>Check every record of every shard '
                "(length and data CRCs, file ends, indexes): this reads the whole dataset."
                '</p><p><a class="button" href="/damage?verify=1">Verify every record</a></p>'
                "</section>"
            )
        )
    elif verified.state == "running":
        parts.append(
            fmt(
                '<section class="card"><h2>Verifying…</h2><p class="muted">'
                "this page reloads until it is done</p></section>"
            )
        )
    elif verified.state == "failed":
        parts.append(
            fmt(
                '<section class="card"><h2>Verify failed</h2><p class="bad">{}</p></section>',
                verified.summary,
            )
        )
    else:
        parts.append(
            fmt(
                '<section class="card"><h2>Verified</h2><p>{}</p>{}{}</section>',
                verified.summary,
                _damage_table(verified.records, "verify-damage"),
                fmt(
                    "<h2>Other problems</h2><ul>{}</ul>",
                    join(fmt("<li>{}</li>", p) for p in verified.problems),
                )
                if verified.problems
                else Html(""),
            )
        )
    parts.append(
        fmt(
            '<section class="card"><h2>Damaged records met while browsing</h2>{}</section>',
            _damage_table(met, "met-damage")
            if met
            else fmt(
                '<p class="muted">none so far: pages mark a record whose framing or CRC '
                "does not check out</p>"
            ),
        )
    )
    return page(
        "damage",
        join(parts),
        nav=nav("/damage", bench=bench),
        heading="Damage",
        refresh=1 if verified.state == "running" else None,
    )


def _damage_table(records, table_id: str) -> Html:
    if not records:
        return fmt('<p id="{}">no damaged record</p>', table_id)
    rows = join(
        fmt(
            '<tr data-shard="{}" data-index="{}"><td>{}</td><td><a href="/record/{}/{}/{}">{}</a>'
            '</td><td class="n">{}</td><td>{}</td><td>{}</td></tr>',
            d.shard,
            d.index,
            d.shard_name,
            d.split,
            d.shard,
            d.index,
            number(d.index),
            number(d.offset),
            d.kind,
            d.detail,
        )
        for d in records
    )
    return fmt(
        '<table id="{}"><thead><tr><th>shard</th><th>record</th><th class="n">byte offset</th>'
        "<th>problem</th><th>detail</th></tr></thead><tbody>{}</tbody></table>",
        table_id,
        rows,
    )
