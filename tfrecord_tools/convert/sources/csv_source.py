"""CSV or JSON Lines, one row per box -> annotations (``convert csv``), pure (no image
touched; ``detection.check_annotations`` does that).

    SRC/                 the image folder: each row's ``filename`` below it
      a.jpg
    boxes.csv            --annotations FILE: a header row, then one box a row:
                         filename,xmin,ymin,xmax,ymax,label   (pixels; ``class`` for label;
                         optional width,height: the image's size, checked)
    boxes.jsonl          or one JSON object a line with the same keys

A row whose box fields are empty lists an image without objects. Classes are the labels
found, sorted (label i + 1 is the i-th).
"""

from __future__ import annotations

import csv
import io
import json
import os

from ... import storage
from ...errors import ConversionError
from .detection import (
    MALFORMED,
    AnnotatedImage,
    AnnotatedObject,
    AnnotationDigest,
    Annotations,
    Problem,
)

__all__ = ["read_box_table"]

BOX = ("xmin", "ymin", "xmax", "ymax")


def read_box_table(annotations: str | os.PathLike) -> Annotations:
    """The boxes of a CSV file (``.jsonl``/``.ndjson``: JSON Lines), grouped by image in
    order of first appearance. A row that does not parse is a listed :class:`Problem`
    naming the file and line."""
    shown = storage.redact(annotations) if storage.is_url(annotations) else str(annotations)
    digest = AnnotationDigest("csv")
    try:
        text = digest.add("", storage.read_bytes(annotations)).decode("utf-8")
    except FileNotFoundError:
        raise ConversionError(f"{shown}: no such annotation file") from None
    except UnicodeDecodeError as e:
        raise ConversionError(f"{shown}: not UTF-8 text ({e})") from None
    if os.fspath(annotations).lower().endswith((".jsonl", ".ndjson")):
        rows = _json_lines(text, shown)
    else:
        rows = _csv_rows(text, shown)
    problems: list[Problem] = []
    parsed: list[tuple[str, str, dict]] = []
    for where, row in rows:
        if isinstance(row, Problem):
            problems.append(row)
        else:
            parsed.append((where, str(row.get("filename") or ""), row))
    names = sorted({str(_label(r)) for _, _, r in parsed if _has_box(r) and _label(r) is not None})
    label_of = {n: i + 1 for i, n in enumerate(names)}
    images: dict[str, dict] = {}
    for where, filename, row in parsed:
        if not filename:
            problems.append(Problem(where, MALFORMED, "no filename", "image"))
            continue
        entry = images.setdefault(filename, {"where": where, "objects": [], "size": None})
        try:
            if row.get("width") not in (None, "") and row.get("height") not in (None, ""):
                entry["size"] = (int(row["width"]), int(row["height"]))
            if not _has_box(row):
                continue
            box = tuple(float(row[k]) for k in BOX)
        except (TypeError, ValueError) as e:
            problems.append(Problem(where, MALFORMED, str(e)))
            continue
        label = _label(row)
        if label is None:
            problems.append(Problem(where, MALFORMED, "no label"))
            continue
        entry["objects"].append(AnnotatedObject(box, label_of[str(label)], where))  # type: ignore[arg-type]
    listed = [
        AnnotatedImage(
            path=filename,
            source_id=filename,
            where=e["where"],
            objects=tuple(e["objects"]),
            width=e["size"][0] if e["size"] else None,
            height=e["size"][1] if e["size"] else None,
        )
        for filename, e in images.items()
    ]
    source = {"annotations": shown}
    return Annotations(names, listed, problems, None, source, digest=digest.hexdigest())


def _label(row: dict):
    value = row.get("label", row.get("class"))
    return None if value in (None, "") else value


def _has_box(row: dict) -> bool:
    return any(row.get(k) not in (None, "") for k in BOX)


def _csv_rows(text: str, shown: str):
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    missing = [k for k in ("filename", *BOX) if k not in header]
    if missing or not ({"label", "class"} & set(header)):
        raise ConversionError(
            f"{shown}: the header must name filename,xmin,ymin,xmax,ymax,label (missing: "
            f"{', '.join(missing or ['label'])})"
        )
    for row in reader:
        where = f"{shown}:{reader.line_num}"
        if None in row:  # more fields than the header names
            yield (
                where,
                Problem(
                    where,
                    MALFORMED,
                    f"{len(header) + len(row[None])} fields, header has {len(header)}",
                ),
            )
        else:
            yield where, row


def _json_lines(text: str, shown: str):
    for line_no, line in enumerate(text.splitlines(), start=1):
        where = f"{shown}:{line_no}"
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            yield where, Problem(where, MALFORMED, f"not JSON: {e.msg}", "object")
            continue
        if not isinstance(row, dict):
            yield where, Problem(where, MALFORMED, "not a JSON object")
            continue
        yield where, row
