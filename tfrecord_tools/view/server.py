"""The viewer's web server: the standard library's ``ThreadingHTTPServer`` and a router
that takes numbers only.

Data flow: request -> **route** (a fixed table; split, shard and record NUMBERS, never a
name or a path) -> ``data.Dataset`` -> ``pages`` -> response. The standard library is
enough here: eight GET routes, no sessions, no forms that write, no templates beyond
``pages``; a framework would add a dependency and hide the one property that matters, that
no part of a request reaches the file system.

Safe by default: it listens on 127.0.0.1 (another address only when asked, with a
warning), answers GET and HEAD only, checks the Host header while it listens on loopback
(a page elsewhere cannot reach it through DNS rebinding), and sends a
Content-Security-Policy that allows no script, so a ``<script>`` in a label is text even
if escaping were forgotten.
"""

from __future__ import annotations

import contextlib
import re
import socket
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from ..errors import TFRecordToolsError
from . import overview, pages
from .bench import BenchResults, bench_page
from .data import Dataset, NotFound
from .gallery import DEFAULT_PAGE, Query, gallery
from .html import fmt, page

__all__ = ["LOOPBACK", "App", "Response", "ViewServer", "serve"]

LOOPBACK = ("127.0.0.1", "localhost", "::1")
_NUMBER = re.compile(r"[0-9]{1,12}")
_CSP = (
    "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; frame-src 'self'; "
    "frame-ancestors 'self'; form-action 'self'; base-uri 'none'"
)


@dataclass(frozen=True)
class Response:
    status: int
    mime: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


class BadRequest(ValueError):
    """A query value that is not a number where one is wanted (400)."""


class App:
    """Routes a GET to a page or a picture; the HTTP server calls :meth:`handle`."""

    def __init__(self, dataset: Dataset, *, bench: list[BenchResults] | None = None):
        self.dataset = dataset
        self.bench = bench

    def handle(self, target: str) -> Response:
        parts = urlsplit(target)
        segments = parts.path.split("/")[1:]
        try:
            query = _query(parts.query)
            return self._route(segments, query)
        except NotFound as e:
            return _error(HTTPStatus.NOT_FOUND, str(e) or "not found")
        except BadRequest as e:
            return _error(HTTPStatus.BAD_REQUEST, str(e))

    def _route(self, segments: list[str], query: dict[str, str]) -> Response:
        ds = self.dataset
        has_bench = self.bench is not None
        match segments:
            case [""]:
                return _html(overview.overview_page(ds.overview(), bench=has_bench))
            case ["sample"]:
                return _html(overview.sample_page(ds.sample_stats()))
            case ["gallery"]:
                q = Query(
                    split=_int(query, "split", 0),
                    shard=_int(query, "shard"),
                    klass=_int(query, "class"),
                    start=_int(query, "start", 0),
                    n=_int(query, "n", DEFAULT_PAGE),
                    seed=_int(query, "seed"),
                    stored=_int(query, "stored", 0) == 1,
                )
                result = gallery(ds, q)
                shards = [ds.shard_name(q.split, k) for k in range(len(ds.shards_of(q.split)))]
                return _html(
                    pages.gallery_page(
                        result,
                        split_names=ds.split_names,
                        shard_names=shards,
                        classes=ds.classes,
                        damaged=ds.damaged_places(),
                        bench=has_bench,
                    )
                )
            case ["record", s, k, i] if _all_numbers(s, k, i):
                view = ds.record(int(s), int(k), int(i))
                damaged = (view.entry.split, view.entry.shard, view.entry.index)
                return _html(
                    pages.record_page(
                        view,
                        stored=_int(query, "stored", 0) == 1,
                        damaged=damaged in ds.damaged_places(),
                        bench=has_bench,
                    )
                )
            case ["thumb" | "image" as what, s, k, i] if _all_numbers(s, k, i):
                oriented = _int(query, "stored", 0) != 1
                try:
                    if what == "thumb":
                        picture = ds.thumbnail(
                            int(s), int(k), int(i), size=pages.THUMB, oriented=oriented
                        )
                    else:
                        picture = ds.image(int(s), int(k), int(i), oriented=oriented)
                except TFRecordToolsError as e:
                    return Response(200, "image/svg+xml", _placeholder(str(e)))
                return Response(
                    200, picture.mime, picture.data, {"Cache-Control": "private, max-age=600"}
                )
            case ["damage"]:
                if _int(query, "verify", 0) == 1:
                    ds.start_verify()
                return _html(pages.damage_page(ds.verified(), ds.damage_met(), bench=has_bench))
            case ["bench"] if self.bench is not None:
                return _html(bench_page(self.bench))
        raise NotFound("no such page")


def _all_numbers(*values: str) -> bool:
    return all(_NUMBER.fullmatch(v) for v in values)


def _query(text: str) -> dict[str, str]:
    """The last value of each parameter (parse_qs decodes; nothing here is a path)."""
    return {k: v[-1] for k, v in parse_qs(text, keep_blank_values=True).items()}


def _int(query: dict[str, str], key: str, default: int | None = None) -> int | None:
    value = query.get(key, "").strip()
    if value == "":
        return default
    if not _NUMBER.fullmatch(value):
        raise BadRequest(f"{key} must be a number")
    return int(value)


def _html(body: bytes, status: int = 200) -> Response:
    return Response(status, "text/html; charset=utf-8", body, {"Cache-Control": "no-store"})


def _error(status: HTTPStatus, message: str) -> Response:
    body = page(
        f"{status.value} {status.phrase}",
        fmt('<p>{}</p><p><a href="/">the overview</a></p>', message),
        heading=f"{status.value} {status.phrase}",
    )
    return _html(body, status.value)


def _placeholder(message: str) -> bytes:
    """An image saying why a record's image cannot be shown (its text escaped)."""
    text = fmt("{}", message[:80])
    return fmt(
        '<svg xmlns="http://www.w3.org/2000/svg" width="160" height="120" viewBox="0 0 160 120">'
        '<rect width="160" height="120" fill="#fdecea"/><text x="8" y="60" font-size="9" '
        'fill="#c62828" font-family="sans-serif">{}</text></svg>',
        text,
    ).encode("utf-8")


# --------------------------------------------------------------------------- HTTP


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    server_version = "tfrecord-tools-view"
    sys_version = ""
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._answer(body=True)

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def _answer(self, *, body: bool) -> None:
        if not self._host_ok():
            response = _error(HTTPStatus.BAD_REQUEST, "unexpected Host header")
        else:
            try:
                response = self.server.app.handle(self.path)
            except Exception as e:  # a page that fails is a 500, not a dead connection
                print(f"tfrecord-tools view: {self.path}: {type(e).__name__}: {e}", file=sys.stderr)
                response = _error(HTTPStatus.INTERNAL_SERVER_ERROR, "this page failed")
        self.send_response(response.status)
        self.send_header("Content-Type", response.mime)
        self.send_header("Content-Length", str(len(response.body)))
        self.send_header("Content-Security-Policy", _CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        for key, value in response.headers.items():
            self.send_header(key, value)
        self.end_headers()
        if body:
            with contextlib.suppress(ConnectionError):
                self.wfile.write(response.body)

    def _host_ok(self) -> bool:
        """While listening on loopback, only requests addressed to loopback (DNS rebinding:
        a name that resolves to 127.0.0.1 is not enough)."""
        if not self.server.loopback_only:
            return True
        host = (self.headers.get("Host") or "").strip().lower()
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        return name.strip("[]") in LOOPBACK

    def log_message(self, format: str, *args) -> None:
        pass  # one line per thumbnail would drown the address line


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    app: App
    loopback_only: bool


class _HTTPServer6(_HTTPServer):
    address_family = socket.AF_INET6


class ViewServer:
    """The viewer listening on ``host``:``port`` (0: any free port) until :meth:`close`."""

    def __init__(self, app: App, *, host: str = "127.0.0.1", port: int = 0):
        cls = _HTTPServer6 if ":" in host else _HTTPServer
        try:
            self._httpd = cls((host, port), _Handler)
        except OSError as e:
            raise TFRecordToolsError(
                f"cannot listen on {host}:{port}: {e.strerror or e}"
                + ("; pass --port 0 for any free port" if port else "")
            ) from None
        self._httpd.app = app
        self._httpd.loopback_only = host in LOOPBACK
        self.host = host
        self.port = self._httpd.server_address[1]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.host in ("0.0.0.0", "::"):
            host = "127.0.0.1"
        return f"http://{host}:{self.port}/"

    def serve_forever(self) -> None:
        self._httpd.serve_forever(poll_interval=0.2)

    def start(self) -> ViewServer:
        """Serve from a background thread (tests, the benchmark)."""
        self._thread = threading.Thread(
            target=self.serve_forever, name="tfrecord-tools-view", daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> ViewServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def serve(
    paths: str | Sequence[str],
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    bench: str | None = None,
    open_browser: bool = False,
) -> None:
    """Serve the dataset at PATH until interrupted: the address (and, for an address other
    than loopback, a warning) on stdout / stderr, ``open_browser`` opens it."""
    from .bench import load_bench
    from .data import open_dataset

    results = load_bench(bench) if bench is not None else None
    dataset = open_dataset(paths)
    try:
        server = ViewServer(App(dataset, bench=results), host=host, port=port)
        with server:
            if host not in LOOPBACK:
                print(
                    f"tfrecord-tools view: warning: listening on {host}: anyone who can reach "
                    f"this machine on port {server.port} can browse the dataset (no password)",
                    file=sys.stderr,
                )
            name = dataset.overview().name
            print(f"tfrecord-tools view: {name} at {server.url} (Ctrl-C stops)", flush=True)
            if open_browser:
                import webbrowser

                webbrowser.open(server.url)
            server.serve_forever()
    finally:
        dataset.close()
