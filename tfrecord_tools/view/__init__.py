"""Seeing a dataset: a viewer in the browser, a self-contained HTML report, a contact
sheet. TensorFlow-free.

Data flow: PATH -> ``data`` (the one module that reads the dataset: metadata, runs of
records by number, thumbnails, verify; ``features`` and ``pictures`` turn a record's bytes
into what is shown, ``model`` holds the results) -> ``gallery`` (which records a page
shows) -> ``overview`` / ``pages`` (HTML; ``charts`` as CSS and inline SVG, ``html``
escaping) -> ``server`` (the standard library's HTTP server, routes of numbers only) |
``report`` (one HTML file) | ``sheet`` (one PNG). ``bench`` draws ``tfrecord-tools bench``
results.

    tfrecord-tools view PATH [--port N] [--host 127.0.0.1] [--open] [--bench DIR]
    tfrecord-tools view PATH --html FILE
    tfrecord-tools inspect PATH --grid FILE.png [--per-class N]
"""

from __future__ import annotations

from .data import Dataset, open_dataset
from .report import write_html
from .server import App, ViewServer, serve
from .sheet import contact_sheet

__all__ = ["App", "Dataset", "ViewServer", "contact_sheet", "open_dataset", "serve", "write_html"]
