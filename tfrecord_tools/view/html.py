"""HTML for the viewer's pages: escaping, the page frame, its style sheet.

Every value that comes from a dataset (class names, file names, feature keys and values,
manifest text, paths) reaches a page through :func:`fmt` or :func:`esc`, which escape it;
only :class:`Html` (markup this package wrote) passes through as it is. The pages carry no
script at all, and the server's Content-Security-Policy forbids one, so a ``<script>`` in a
label is text twice over.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Any

__all__ = ["Html", "card", "esc", "facts", "fmt", "join", "nav", "number", "page", "size"]


class Html(str):
    """Markup this package wrote: safe to put in a page as it is."""

    __slots__ = ()


def esc(value: Any) -> Html:
    """``value`` as text in a page (quotes escaped too: safe inside attributes)."""
    if isinstance(value, Html):
        return value
    return Html(html.escape(str(value), quote=True))


def fmt(template: str, *args: Any, **kwargs: Any) -> Html:
    """``template`` (markup written here) with every argument escaped unless it is
    :class:`Html` or a number (numbers keep their format specs: ``{:.1f}``)."""
    return Html(
        template.format(*(_arg(a) for a in args), **{k: _arg(v) for k, v in kwargs.items()})
    )


def _arg(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    return esc(value)


def join(parts: Iterable[Any], sep: str = "") -> Html:
    return Html(sep.join(esc(p) for p in parts))


def number(value: int | None) -> str:
    return "?" if value is None else f"{value:,}"


def size(value: int | None) -> str:
    """Bytes as people read them."""
    if value is None:
        return "?"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if value >= scale:
            return f"{value / scale:,.1f} {unit}"
    return f"{value:,} B"


def page(
    title: str,
    body: Html,
    *,
    nav: Iterable[tuple[str, str, bool]] = (),
    heading: str | None = None,
    refresh: int | None = None,
    bare: bool = False,
) -> bytes:
    """A whole page as UTF-8 bytes. ``nav``: (href, text, current) links; ``refresh``:
    reload after that many seconds; ``bare``: no header (a frame's content)."""
    links = join(
        fmt('<a href="{}"{}>{}</a>', href, Html(' aria-current="page"' if here else ""), text)
        for href, text, here in nav
    )
    head = (
        Html("")
        if bare
        else fmt(
            '<header><span class="brand">tfrecord-tools view</span><nav>{}</nav></header>', links
        )
    )
    meta = fmt('<meta http-equiv="refresh" content="{}">', refresh) if refresh else Html("")
    document = fmt(
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">{}'
        "<title>{}</title><style>{}</style></head>"
        '<body class="{}">{}<main>{}{}</main></body></html>\n',
        meta,
        title,
        Html(STYLE),
        "bare" if bare else "",
        head,
        Html("") if heading is None else fmt("<h1>{}</h1>", heading),
        body,
    )
    return document.encode("utf-8")


def nav(current: str, *, bench: bool) -> list[tuple[str, str, bool]]:
    links = [("/", "Overview"), ("/gallery", "Gallery"), ("/damage", "Damage")]
    if bench:
        links.append(("/bench", "Benchmarks"))
    return [(href, text, href == current) for href, text in links]


def card(title: str, *parts: Html, wide: bool = False) -> Html:
    return fmt(
        '<section class="card{}"><h2>{}</h2>{}</section>',
        Html(" wide" if wide else ""),
        title,
        join(parts),
    )


def facts(rows: Iterable[tuple[str, str]]) -> Html:
    return fmt(
        '<dl class="facts">{}</dl>', join(fmt("<dt>{}</dt><dd>{}</dd>", k, v) for k, v in rows)
    )


STYLE = """
:root { --ink: #1d2430; --muted: #5b6577; --line: #dde2ea; --bg: #f6f7f9; --card: #fff;
  --accent: #2f6fd0; --bad: #c62828; --bad-bg: #fdecea; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans",
  "DejaVu Sans", sans-serif; color: var(--ink); background: var(--bg); }
body.bare { background: var(--card); }
header { display: flex; gap: 2rem; align-items: center; padding: .6rem 1.5rem;
  background: #1d2430; color: #fff; }
header .brand { font-weight: 600; letter-spacing: .02em; }
header nav { display: flex; gap: 1.2rem; flex-wrap: wrap; }
header a { color: #c9d6ee; text-decoration: none; }
header a[aria-current] { color: #fff; border-bottom: 2px solid #7fb0ff; }
main { max-width: 1280px; margin: 0 auto; padding: 1rem 1.5rem 3rem; }
body.bare main { padding: .25rem; }
h1 { font-size: 1.5rem; margin: .6rem 0 1rem; overflow-wrap: anywhere; }
h2 { font-size: 1.15rem; margin: 0 0 .6rem; }
a { color: var(--accent); }
.muted, .note { color: var(--muted); font-size: .9rem; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(340px, 1fr));
  gap: 1rem; align-items: start; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px;
  padding: 1rem 1.2rem; margin-bottom: 1rem; min-width: 0; }
.facts { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; margin: 0; }
.facts dt { color: var(--muted); }
.facts dd { margin: 0; overflow-wrap: anywhere; }
table { border-collapse: collapse; width: 100%; font-size: .92rem; }
th, td { text-align: left; padding: .3rem .6rem; border-bottom: 1px solid var(--line);
  vertical-align: top; overflow-wrap: anywhere; }
th { color: var(--muted); font-weight: 600; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
pre { background: #f0f2f5; padding: .8rem; border-radius: 6px; overflow: auto;
  max-height: 32rem; font-size: .82rem; white-space: pre-wrap; overflow-wrap: anywhere; }
details > summary { cursor: pointer; color: var(--accent); margin: .3rem 0; }
.bars { display: grid; grid-template-columns: minmax(3rem, max-content) minmax(4rem, 1fr)
  max-content; gap: .25rem .6rem; align-items: center; font-size: .85rem; margin: .3rem 0 .8rem; }
.bars .name { max-width: 16rem; overflow: hidden; text-overflow: ellipsis; white-space: nowrap;
  text-align: right; }
.bars .track { background: #eef0f3; border-radius: 3px; height: .8rem; }
.bars .fill { display: block; height: 100%; border-radius: 3px; min-width: 1px; }
.bars .value { font-variant-numeric: tabular-nums; color: var(--muted); }
.cards .wide { grid-column: 1 / -1; }
.columns { display: grid; grid-template-columns: repeat(auto-fit, minmax(260px, 1fr));
  gap: 0 1.5rem; }
h3 { font-size: 1rem; margin: .4rem 0 .3rem; }
svg.chart { width: 100%; height: auto; display: block; }
svg.chart text { font: 12px system-ui, sans-serif; fill: var(--ink); }
svg.chart .axis { stroke: #9aa4b5; stroke-width: 1; }
svg.chart .grid { stroke: #e6e9ef; stroke-width: 1; }
form.filters { display: flex; flex-wrap: wrap; gap: .6rem 1rem; align-items: end;
  background: var(--card); border: 1px solid var(--line); border-radius: 8px;
  padding: .7rem 1rem; margin-bottom: 1rem; }
form.filters label { display: flex; flex-direction: column; font-size: .85rem;
  color: var(--muted); gap: .15rem; }
select, input, button { font: inherit; padding: .25rem .4rem; }
select { max-width: 22rem; }
button, .button { background: var(--accent); color: #fff; border: 0; border-radius: 5px;
  padding: .35rem .9rem; cursor: pointer; text-decoration: none; display: inline-block; }
.pager { display: flex; gap: 1rem; align-items: center; margin: 1rem 0; flex-wrap: wrap; }
.gallery { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr));
  gap: .8rem; }
.tile { margin: 0; background: var(--card); border: 1px solid var(--line);
  border-radius: 8px; overflow: hidden; display: flex; flex-direction: column; }
.tile a { text-decoration: none; color: inherit; display: block; }
.tile .frame { height: 150px; display: flex; align-items: center; justify-content: center;
  background: repeating-conic-gradient(#eef0f3 0 25%, #f8f9fa 0 50%) 50% / 16px 16px; }
.tile img { max-width: 100%; max-height: 150px; min-width: 56px; min-height: 56px;
  object-fit: contain; image-rendering: auto; }
.tile img.tiny { image-rendering: pixelated; width: 112px; height: 112px; }
.tile figcaption { padding: .35rem .5rem; font-size: .85rem; }
.tile .class { font-weight: 600; display: block; overflow-wrap: anywhere; }
.tile .place { color: var(--muted); font-size: .78rem; }
.tile.damaged { border: 2px solid var(--bad); background: var(--bad-bg); }
.tile.damaged .frame { background: var(--bad-bg); color: var(--bad); padding: .5rem;
  font-size: .8rem; text-align: center; overflow-wrap: anywhere; }
.badge { display: inline-block; background: var(--bad); color: #fff; border-radius: 4px;
  padding: 0 .4rem; font-size: .75rem; font-weight: 600; }
.record { display: grid; grid-template-columns: minmax(0, 3fr) minmax(0, 2fr); gap: 1rem; }
.record { align-items: start; }
.record .image { text-align: center; }
table.features td:first-child, table.features td:nth-child(2) { white-space: nowrap; }
table.features td:first-child code { overflow-wrap: normal; }
.record .image img { max-width: 100%; height: auto; background: #eef0f3;
  image-rendering: auto; }
.record .image img.tiny { image-rendering: pixelated; }
.bad { color: var(--bad); }
iframe.sample { width: 100%; border: 0; }
@media (max-width: 800px) { .record { grid-template-columns: 1fr; } }
"""
