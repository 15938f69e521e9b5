"""The viewer's one door to a dataset: every byte the pages show is read here.

Data flow: PATH -> ``dataset.resolve`` (shards, manifest / ``dataset_info.json``, sizes) ->
**Dataset**: the overview (metadata only: no shard byte is read), runs of records by
number, one record's features, thumbnails and full images (``access.parse`` /
``access.decode``), a small sample's statistics, and verify's results.

Splits and shards are addressed by NUMBER (their place in the dataset), records by their
index in the shard: nothing a request says ever becomes a path. Reads follow the index:

- a plain shard with a ``.idx``: a run of records is one ranged read (one request in a
  bucket), every record's framing and CRCs checked;
- a plain shard without one: its headers are walked (a bucket's object streamed in 1 MiB
  pieces) only as far as the page needs; the offsets learned are kept for later pages;
- a compressed shard: decompressed from its start as far as the page needs, by a stream
  kept open for the next page.

A damaged record is an :class:`Entry` with ``damage`` set, never an exception.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import random
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .. import storage
from ..access.parse import ImageFields
from ..dataset import Dataset as Resolved
from ..dataset import Shard as ShardRef
from ..dataset import resolve
from ..errors import Damage, TFRecordToolsError
from ..format import example as schema
from ..format.framing import FOOTER, HEADER, HEADER_SIZE, OVERHEAD, masked_crc32c
from ..format.naming import LABELS
from ..format.scan import RecordScanner, Span
from ..format.tfds import TFDS_LABELS
from . import pictures
from .features import first_int, first_text, image_fields, image_format, layout, show_values
from .model import (
    DamagedRecord,
    Entry,
    Overview,
    RecordView,
    Sample,
    ShardInfo,
    SplitInfo,
    Verified,
)

__all__ = [
    "Dataset",
    "Entry",
    "NotFound",
    "Overview",
    "RecordView",
    "ShardInfo",
    "SplitInfo",
    "open_dataset",
]

#: A run of records read at once is cut at this many bytes.
_RUN_BYTES = 32 << 20
#: Ranged reads of a shard streamed without an index: small, as far as the page needs.
_STREAM_BLOCK = 1 << 20
#: Record bytes and thumbnails kept for the pages that follow (browsers ask for a page's
#: thumbnails right after its HTML).
_RECORD_CACHE = 128 << 20
_PICTURE_CACHE = 32 << 20
#: Parallel single-record reads of a random sample (a bucket's requests overlap).
_READERS = 16
#: The split name of shards no metadata puts in a split (bare files).
FILES = "files"


class NotFound(LookupError):
    """A split, shard or record number the dataset does not have (the server's 404)."""


# --------------------------------------------------------------------------- the dataset


def open_dataset(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> Dataset:
    """The dataset at PATH (a dataset folder, a TFDS folder, shard files or globs; local or
    a URL); TFRecordToolsError when it names nothing usable."""
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    return Dataset([os.fspath(p) for p in paths])


class Dataset:
    """A dataset opened for viewing; safe to use from several threads at once."""

    def __init__(self, paths: list[str]):
        self.paths = paths
        self._located: Resolved = resolve(paths)
        if not self._located.shards:
            raise TFRecordToolsError(f"{storage.redact(paths[0])}: no shards")
        self._splits: list[tuple[str, list[_Shard]]] = []
        by_name: dict[str, list[_Shard]] = {}
        for ref in self._located.shards:
            name = ref.split or FILES
            if name not in by_name:
                by_name[name] = []
                self._splits.append((name, by_name[name]))
            shards = by_name[name]
            shards.append(_Shard(ref, len(self._splits) - 1, len(shards)))
        self.classes: tuple[str, ...] | None = self._class_names()
        self._records = _Cache(_RECORD_CACHE)
        self._pictures = _Cache(_PICTURE_CACHE)
        self._overview: Overview | None = None
        self._sample: Sample | None = None
        self._lock = threading.Lock()
        self._met: dict[tuple[int, int, int], DamagedRecord] = {}  # damage seen while reading
        self._verified = Verified("idle")

    def close(self) -> None:
        """Close the streams of shards read part way (they reopen when needed)."""
        for _, shards in self._splits:
            for shard in shards:
                shard.close()

    def __enter__(self) -> Dataset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- numbers -> shards ------------------------------------------------------------------

    @property
    def split_names(self) -> list[str]:
        return [name for name, _ in self._splits]

    def shards_of(self, split: int) -> list[_Shard]:
        if not 0 <= split < len(self._splits):
            raise NotFound(f"no split {split}")
        return self._splits[split][1]

    def _shard(self, split: int, shard: int) -> _Shard:
        shards = self.shards_of(split)
        if not 0 <= shard < len(shards):
            raise NotFound(f"no shard {shard} in split {split}")
        return shards[shard]

    def shard_name(self, split: int, shard: int) -> str:
        return self._shard(split, shard).ref.name

    def count(self, split: int, shard: int, *, learn: bool = False) -> int | None:
        """Records in a shard: from metadata or its ``.idx``; ``learn``: else by reading it
        to the end (the pages ask for this only when they must go past it)."""
        return self._shard(split, shard).count(learn=learn)

    # -- the overview: metadata only ----------------------------------------------------------

    def overview(self) -> Overview:
        """The dataset from its manifest / ``dataset_info.json``, listing and ``.idx``
        files: no shard byte is read."""
        if self._overview is None:
            self._overview = self._make_overview()
        return self._overview

    def _make_overview(self) -> Overview:
        located = self._located
        shards = [s for _, group in self._splits for s in group]
        with ThreadPoolExecutor(min(_READERS, len(shards))) as pool:
            infos = list(pool.map(lambda s: s.info(), shards))
        found = iter(infos)
        splits = tuple(
            SplitInfo(n, name, tuple(next(found) for _ in group))
            for n, (name, group) in enumerate(self._splits)
        )
        notes = [f"{s.ref.shown}: listed, but missing" for s in shards if not s.ref.exists()]
        compression = tuple(sorted({s.ref.compression for s in shards}))
        extra = tuple(storage.redact(p) for p in located.extra)
        shown = (
            storage.redact(self.paths[0]) if len(self.paths) == 1 else f"{len(self.paths)} paths"
        )
        manifest = located.manifest
        if manifest is not None:
            data = manifest.data
            stats = data.get("statistics") or {}
            stored = {k: data[k] for k in ("max_size", "encoding", "encoding_asked") if k in data}
            skipped = tuple(
                (str(s.get("path", "")), str(s.get("reason", "")))
                for s in (data.get("source") or {}).get("skipped") or []
                if isinstance(s, dict)
            )
            return Overview(
                shown,
                manifest.name,
                "tfrecord-tools dataset",
                splits,
                self.classes,
                compression,
                image_formats=_counts(stats.get("image_formats")),
                image_kinds=_counts(stats.get("image_kinds")),
                image_shape=manifest.image_shape,
                orientations=_counts(stats.get("orientations")),
                converted_from=_counts(stats.get("converted_from")),
                stored=stored,
                skipped=skipped,
                extra=extra,
                metadata_name=storage.basename(manifest.path),
                metadata=data,
                notes=tuple(notes),
            )
        if located.tfds is not None:
            info = located.tfds
            try:
                metadata = json.loads(storage.read_text(info.path))
            except (OSError, ValueError, TFRecordToolsError) as e:
                metadata = None
                notes.append(f"{storage.redact(info.path)}: cannot show it ({e})")
            return Overview(
                shown,
                info.name,
                "TFDS folder",
                splits,
                self.classes,
                compression,
                extra=extra,
                metadata_name=storage.basename(info.path),
                metadata=metadata,
                notes=tuple(notes),
            )
        root = located.root
        name = storage.basename(root) if root is not None else shards[0].ref.name
        return Overview(
            shown, name, "TFRecord files", splits, self.classes, compression, notes=tuple(notes)
        )

    def _class_names(self) -> tuple[str, ...] | None:
        """The manifest's classes, else a labels file beside the shards (ours, TFDS's)."""
        located = self._located
        if located.manifest is not None and located.manifest.classes is not None:
            return tuple(located.manifest.classes)
        root = located.root
        if root is None:
            return None
        names = [LABELS, TFDS_LABELS]
        if located.tfds_keys is not None and located.tfds_keys[1] is not None:
            names.append(f"{located.tfds_keys[1]}.labels.txt")  # TFDS's ClassLabel's names
        for name in names:
            with contextlib.suppress(OSError, UnicodeDecodeError, TFRecordToolsError):
                return tuple(storage.read_text(storage.join(root, name)).splitlines())
        return None

    # -- records ---------------------------------------------------------------------------

    def records(self, split: int, shard: int | None, start: int, n: int) -> list[Entry]:
        """Records ``start``..``start + n - 1`` of a shard, or of the whole split when
        ``shard`` is None (counted across its shards in order); fewer at the end."""
        if start < 0 or n < 1:
            raise NotFound("record numbers start at 0")
        if shard is not None:
            return self._read(self._shard(split, shard), start, n)
        out: list[Entry] = []
        for s in self.shards_of(split):
            if len(out) >= n:
                break
            count = s.count(learn=False)
            if count is not None and start >= count:
                start -= count
                continue
            got = self._read(s, start, n - len(out))
            if not got and count is None:  # read to its end, so counted now: skip it
                start -= s.count(learn=True) or 0
                continue
            out += got
            start = 0
        return out

    def record(self, split: int, shard: int, index: int) -> RecordView:
        """Record ``index`` of a shard with every feature; NotFound past its end."""
        s = self._shard(split, shard)
        entry, data = self._one(s, index)
        shown: tuple[tuple[str, str, str], ...] = ()
        if data is not None:
            try:
                parsed = schema.decode_example(data)
            except schema.ExampleParseError:
                parsed = {}
            shown = tuple((k, kind, show_values(kind, v)) for k, (kind, v) in parsed.items())
        return RecordView(entry, s.ref.name, self._splits[split][0], shown, s.count(learn=False))

    def sample(self, split: int, shard: int | None, n: int, seed: int) -> tuple[list[Entry], int]:
        """``n`` records drawn at random (seeded) from a shard or a split: (entries in
        record order, shards left out because their count is unknown without a scan)."""
        shards = self.shards_of(split) if shard is None else [self._shard(split, shard)]
        counted = [(s, s.count(learn=False)) for s in shards]
        known = [(s, c) for s, c in counted if c]
        left_out = sum(1 for _, c in counted if c is None)
        total = sum(c for _, c in known)
        rng = random.Random(seed)
        picks = sorted(rng.sample(range(total), min(n, total))) if total else []
        places: list[tuple[_Shard, int]] = []
        base = 0
        it = iter(known)
        s, c = next(it, (None, 0))
        for p in picks:
            while s is not None and p >= base + c:
                base += c
                s, c = next(it, (None, 0))
            places.append((s, p - base))  # type: ignore[arg-type]
        with ThreadPoolExecutor(_READERS) as pool:
            found = list(pool.map(lambda place: self._read(place[0], place[1], 1), places))
        return [e for got in found for e in got], left_out

    def _read(self, shard: _Shard, start: int, n: int) -> list[Entry]:
        return [entry for entry, _data in self._read_data(shard, start, n)]

    def _read_data(self, shard: _Shard, start: int, n: int) -> list[tuple[Entry, bytes | None]]:
        """Entries and their record bytes (kept for the thumbnails that follow a page)."""
        out = []
        for index, row, data in shard.read(start, n):
            if data is not None:
                self._records.put((shard.split, shard.number, index), data)
            entry = self._entry(shard, index, row, data)
            if entry.damage is not None:
                self._met_damage(shard, entry)
            out.append((entry, data))
        return out

    def _one(self, shard: _Shard, index: int) -> tuple[Entry, bytes | None]:
        """Record ``index`` of ``shard`` and its bytes (None: damaged); NotFound past the end."""
        got = self._read_data(shard, index, 1) if index >= 0 else []
        if not got:
            raise NotFound(f"no record {index} in {shard.ref.name}")
        return got[0]

    def _entry(self, shard: _Shard, index: int, row: _Row, data: bytes | None) -> Entry:
        offset, size, damage = row
        place = dict(split=shard.split, shard=shard.number, index=index, offset=offset, size=size)
        if data is None:
            return Entry(**place, damage=damage or "unreadable")
        try:
            features = schema.decode_example(data)
        except schema.ExampleParseError as e:
            return Entry(**place, damage=f"not a tf.train.Example ({e})")
        keys = layout(features)
        label = first_int(features, keys.label if keys else None)
        if label is None:
            label = next(
                (v for k in ("label", schema.LABEL) if (v := first_int(features, k)) is not None),
                None,
            )
        text = first_text(features, schema.TEXT)
        klass = text
        if klass is None and label is not None:
            klass = self.class_name(label)
        filename = first_text(features, schema.FILENAME)
        fields = image_fields(features, keys) if keys else None
        fmt = width = height = None
        orientation = 1
        if fields is not None:
            fmt = image_format(fields)
            height, width = fields.height or None, fields.width or None
            orientation = fields.orientation if 1 <= fields.orientation <= 8 else 1
            if (height is None or width is None) and fmt not in (None, "raw"):
                width, height = pictures.header_size(fields.encoded)
        return Entry(
            **place,
            label=label,
            klass=klass,
            filename=filename,
            image_format=fmt,
            width=width,
            height=height,
            orientation=orientation,
        )

    def class_name(self, label: int) -> str:
        """A label number as its class name (the number itself when there is none)."""
        if self.classes is not None and 0 <= label < len(self.classes):
            return self.classes[label]
        return str(label)

    # -- pictures --------------------------------------------------------------------------

    def thumbnail(
        self, split: int, shard: int, index: int, *, size: int, oriented: bool = True
    ) -> pictures.Picture:
        """A record's image at most ``size`` pixels on its longest side (EXIF orientation
        applied unless ``oriented`` is False); NotFound when the record has no image."""
        key = ("thumb", split, shard, index, size, oriented)
        picture = self._pictures.get(key)
        if picture is None:
            fields = self._fields(split, shard, index)
            picture = pictures.thumbnail(fields, size, oriented=oriented)
            self._pictures.put(key, picture)
        return picture

    def image(
        self, split: int, shard: int, index: int, *, oriented: bool = True
    ) -> pictures.Picture:
        """A record's image at full size (re-encoded: PNG, or JPEG for a JPEG)."""
        return pictures.full(self._fields(split, shard, index), oriented=oriented)

    def _fields(self, split: int, shard: int, index: int) -> ImageFields:
        data = self._records.get((split, shard, index))
        if data is None:
            entry, data = self._one(self._shard(split, shard), index)
            if data is None:
                raise NotFound(f"record {index}: {entry.damage}")
        try:
            features = schema.decode_example(data)
        except schema.ExampleParseError as e:
            raise NotFound(f"record {index}: not a tf.train.Example ({e})") from None
        keys = layout(features)
        fields = image_fields(features, keys) if keys else None
        if fields is None:
            raise NotFound(f"record {index} has no image")
        return fields

    # -- a sample's statistics -------------------------------------------------------------

    def sample_stats(self, *, shards: int = 8, per_shard: int = 64, seed: int = 0) -> Sample:
        """Classes, image sizes, formats and orientations of a small sample: runs of
        ``per_shard`` records at seeded random places in up to ``shards`` shards spread
        over the dataset (one ranged read each)."""
        if self._sample is not None:
            return self._sample
        everything = [s for _, group in self._splits for s in group if s.ref.exists()]
        picked = _spread(everything, shards)
        rng = random.Random(seed)
        starts = []
        for s in picked:
            count = s.count(learn=False)
            starts.append(rng.randrange(max(count - per_shard, 0) + 1) if count else 0)
        with ThreadPoolExecutor(max(1, len(picked))) as pool:
            runs = list(
                pool.map(
                    lambda p: self._read(p[0], p[1], per_shard), zip(picked, starts, strict=True)
                )
            )
        classes: collections.Counter[str] = collections.Counter()
        sizes: collections.Counter[str] = collections.Counter()
        formats: collections.Counter[str] = collections.Counter()
        orientations: collections.Counter[str] = collections.Counter()
        damaged = records = 0
        for entry in (e for run in runs for e in run):
            records += 1
            if entry.damage is not None:
                damaged += 1
                continue
            classes[entry.klass if entry.klass is not None else "(no label)"] += 1
            formats[entry.image_format or "(no image)"] += 1
            if entry.width and entry.height:
                sizes[f"{entry.height}x{entry.width}"] += 1
            orientations[str(entry.orientation)] += 1
        order = {name: i for i, name in enumerate(self.classes or ())}
        self._sample = Sample(
            records,
            len(picked),
            dict(sorted(classes.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0]))),
            dict(sizes.most_common()),
            dict(formats.most_common()),
            dict(sorted(orientations.items())),
            damaged,
        )
        return self._sample

    # -- damage ----------------------------------------------------------------------------

    def _met_damage(self, shard: _Shard, entry: Entry) -> None:
        kind, _, detail = (entry.damage or "").partition(": ")
        with self._lock:
            self._met[(shard.split, shard.number, entry.index)] = DamagedRecord(
                shard.split, shard.number, shard.ref.name, entry.index, entry.offset, kind, detail
            )

    def damage_met(self) -> list[DamagedRecord]:
        """Damaged records met while reading, so far."""
        with self._lock:
            return sorted(self._met.values(), key=lambda d: (d.split, d.shard, d.index))

    def verified(self) -> Verified:
        return self._verified

    def damaged_places(self) -> set[tuple[int, int, int]]:
        """(split, shard, record) of every damaged record known: verify's and met."""
        with self._lock:
            met = set(self._met)
        return met | {(d.split, d.shard, d.index) for d in self._verified.records}

    def start_verify(self) -> Verified:
        """Run ``verify`` over every shard (in a thread; it reads them all) unless it ran
        or runs already; returns the state."""
        with self._lock:
            if self._verified.state in ("running", "done"):
                return self._verified
            self._verified = Verified("running")
        threading.Thread(
            target=self._verify, name="tfrecord-tools-view-verify", daemon=True
        ).start()
        return self._verified

    def _verify(self) -> None:
        from ..check.verify import verify

        try:
            report = verify(self.paths, sha256=False)
        except (TFRecordToolsError, OSError) as e:  # the page says so (it polls the state)
            self._verified = Verified("failed", summary=str(e))
            return
        places = {
            s.ref.shown: (s.split, s.number, s.ref.name) for _, group in self._splits for s in group
        }
        records, problems = [], []
        for p in report.problems:
            place = places.get(p.file)
            if p.index is not None and place is not None and p.kind != "index mismatch":
                records.append(
                    DamagedRecord(*place[:2], place[2], p.index, p.offset, p.kind, p.detail)
                )
            else:
                problems.append(str(p))
        self._verified = Verified("done", tuple(records), tuple(problems), report.summary())


# --------------------------------------------------------------------------- one shard

_Row = tuple[int | None, int | None, str | None]  # (offset, whole size, damage)


class _Shard:
    """One shard's records by number: its ``.idx`` or the offsets learned by streaming it,
    and the stream itself while it is not read to the end."""

    def __init__(self, ref: ShardRef, split: int, number: int):
        self.ref = ref
        self.split, self.number = split, number
        self.plain = ref.compression == "none"
        self._lock = threading.Lock()
        self._table: list[_Row] = []  # known records from 0, in order
        self._complete = False
        self._indexed = False
        self._stream: _Stream | None = None

    def close(self) -> None:
        with self._lock:
            if self._stream is not None:
                self._stream.close()
                self._stream = None

    @property
    def promised(self) -> int | None:
        if self.ref.expected is not None:
            return self.ref.expected.num_examples
        return self.ref.tfds_records

    def info(self) -> ShardInfo:
        size = None
        with contextlib.suppress(OSError):
            size = self.ref.file_size()
        records, source = self.promised, None
        if records is not None:
            source = "manifest" if self.ref.expected is not None else "dataset_info"
        elif self.ref.has_index():
            with contextlib.suppress(OSError, TFRecordToolsError):
                records, source = self.ref.count_index(), "index"
        return ShardInfo(
            self.number,
            self.ref.name,
            records,
            size,
            self.ref.compression,
            self.ref.has_index(),
            source,
        )

    def count(self, *, learn: bool) -> int | None:
        with self._lock:
            if self._complete:
                return len(self._table)
            if self.promised is not None:
                return self.promised
            if self._load_index():
                return len(self._table)
            if not learn:
                return None
            if not self.ref.exists():
                return 0
            self._learn(None)
            return len(self._table)

    def read(self, start: int, n: int) -> list[tuple[int, _Row, bytes | None]]:
        """(index, row, data or None) of records ``start``..``start + n - 1``."""
        if not self.ref.exists():
            return []
        if not self.plain:
            with self._lock:
                return self._stream_window(start, n)
        with self._lock:
            self._load_index()
            self._learn(start + n)
            rows = list(enumerate(self._table[start : start + n], start))
        return self._read_rows(rows)

    # -- plain shards: offsets, then ranged reads ---------------------------------------------

    def _load_index(self) -> bool:
        """The table from the ``.idx`` (once): True when it is complete now."""
        if self._complete:
            return True
        if self._indexed or self._stream is not None or not self.ref.has_index():
            return False
        self._indexed = True
        try:
            entries = self.ref.read_index()
        except (OSError, TFRecordToolsError):
            return False  # a missing or malformed index: the shard is streamed instead
        self._table = [(offset, size, None) for offset, size in entries]
        self._complete = True
        return True

    def _learn(self, upto: int | None) -> None:
        """Extend the table by streaming until it holds ``upto`` records (None: all)."""
        while not self._complete and (upto is None or len(self._table) < upto):
            if self._stream is None:
                self._stream = _Stream(self.ref, check_data=False)
            item = self._stream.next()
            if item is None:
                self._complete = True
                self._stream.close()
                self._stream = None
                return
            row, _data = item
            self._table.append(row)

    def _read_rows(self, rows: list[tuple[int, _Row]]) -> list[tuple[int, _Row, bytes | None]]:
        """Each row's record, a run of neighbours in one ranged read, framing and CRCs
        checked."""
        out: list[tuple[int, _Row, bytes | None]] = []
        run: list[tuple[int, _Row]] = []

        def flush() -> None:
            if not run:
                return
            first = run[0][1][0]
            end = run[-1][1][0] + run[-1][1][1]  # type: ignore[operator]
            try:
                buf = storage.read_bytes(self.ref.path, first, end)
            except (OSError, TFRecordToolsError) as e:
                out.extend((i, (o, s, f"unreadable: {e}"), None) for i, (o, s, _) in run)
            else:
                for i, row in run:
                    data, problem = _check_record(buf, row[0] - first, row[1])  # type: ignore[operator]
                    out.append((i, row if problem is None else (row[0], row[1], problem), data))
            run.clear()

        for i, row in rows:
            offset, size, damage = row
            if damage is not None or offset is None or size is None:
                flush()
                out.append((i, row, None))
                continue
            if run:
                last = run[-1][1]
                joined = last[0] + last[1] == offset  # type: ignore[operator]
                if not joined or offset + size - run[0][1][0] > _RUN_BYTES:  # type: ignore[operator]
                    flush()
            run.append((i, row))
        flush()
        return out

    # -- compressed shards: a stream kept for the next page -------------------------------------

    def _stream_window(self, start: int, n: int) -> list[tuple[int, _Row, bytes | None]]:
        if self._stream is None or self._stream.at > start:
            if self._stream is not None:
                self._stream.close()
            if self._complete and start >= len(self._table):
                return []
            self._stream = _Stream(self.ref, check_data=True)
        out = []
        while self._stream.at < start + n:
            index = self._stream.at
            item = self._stream.next()
            if item is None:
                self._complete = True
                self._stream.close()
                self._stream = None
                break
            row, data = item
            if index == len(self._table):
                self._table.append(row)
            if index >= start:
                out.append((index, row, data))
        return out


class _Stream:
    """A shard read from its start, one record (or damaged stretch) at a time. A shard that
    cannot be read ends the stream with one damaged row saying why."""

    def __init__(self, ref: ShardRef, *, check_data: bool):
        self._ref = ref
        self._keep = check_data  # compressed: the data of each record is wanted
        self._scanner: RecordScanner | None = None
        self._items: Iterator[Span | Damage] | None = None
        self._ended = False
        self.at = 0  # the index of the next record

    def next(self) -> tuple[_Row, bytes | None] | None:
        if self._ended:
            return None
        try:
            if self._items is None:
                self._scanner = RecordScanner(
                    self._ref.path,
                    self._ref.compression,
                    check_data=self._keep,
                    size=self._ref.size,
                    block_size=_STREAM_BLOCK,
                    ahead=0,
                )
                self._items = iter(self._scanner)
            item = next(self._items, None)
        except (OSError, TFRecordToolsError) as e:
            self._ended = True
            self.at += 1
            return (None, None, f"unreadable: {e}"), None
        if item is None:
            self._ended = True
            return None
        self.at += 1
        if isinstance(item, Damage):
            detail = f": {item.detail}" if item.detail else ""
            size = item.end - item.offset if item.end > item.offset else None
            return (item.offset, size, f"{item.kind}{detail}"), None
        data = bytes(self._scanner.payload(item)) if self._keep else None  # type: ignore[union-attr]
        return (item.offset, item.size, None), data

    def close(self) -> None:
        if self._scanner is not None:
            self._scanner.close()


def _check_record(buf: bytes, at: int, size: int) -> tuple[bytes | None, str | None]:
    """The data of the record at ``buf[at:]`` whose whole size (the index's) is ``size``,
    or None and what is wrong with it."""
    if at < 0 or len(buf) < at + HEADER_SIZE:
        return None, "truncated record: the shard ends before its header"
    length, length_crc = HEADER.unpack_from(buf, at)
    if masked_crc32c(buf[at : at + 8]) != length_crc:
        return None, "length CRC mismatch"
    if length + OVERHEAD != size:
        return None, f"index mismatch: the index says {size} bytes, the header {length + OVERHEAD}"
    if len(buf) < at + size:
        return None, f"truncated record: length field says {length} bytes"
    data = buf[at + HEADER_SIZE : at + HEADER_SIZE + length]
    if masked_crc32c(data) != FOOTER.unpack_from(buf, at + HEADER_SIZE + length)[0]:
        return None, "data CRC mismatch"
    return data, None


# --------------------------------------------------------------------------- helpers


def _counts(value: Any) -> dict[str, int]:
    if not isinstance(value, dict):
        return {}
    return {str(k): v for k, v in value.items() if isinstance(v, int)}


def _spread(items: list, n: int) -> list:
    """Up to ``n`` items evenly spread from first to last."""
    if len(items) <= n:
        return items
    step = (len(items) - 1) / (n - 1) if n > 1 else 0
    return [items[round(i * step)] for i in range(n)]


class _Cache:
    """A thread-safe LRU of values with a ``len``, bounded by their total length."""

    def __init__(self, limit: int):
        self._limit = limit
        self._items: collections.OrderedDict[Any, Any] = collections.OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, key: Any) -> Any:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: Any, value: Any) -> None:
        size = len(value)
        if size > self._limit:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._size -= len(old)
            self._items[key] = value
            self._size += size
            while self._size > self._limit:
                _, dropped = self._items.popitem(last=False)
                self._size -= len(dropped)
