"""Shard files -> serialized records for the tf.data pipelines, with every damaged shard
named.

Data flow: files (this host's part) -> [file shuffle] -> **records** (one file after the
other, or several interleaved) -> record shuffle -> parse. TensorFlow's record reader says
only "corrupted record at 276686" when it meets damage, without the file. So where the
manifest gives each shard's count, a shard is read with ``ignore_errors`` (TensorFlow then
drops the rest of a damaged file), followed by marker records naming it, and cut to its
count: an intact shard never shows a marker, a damaged one fills its count with them (so
the dataset's cardinality still holds), and :func:`check` raises naming the file when a
marker reaches the parser. The price, measured with ``make_dataset(batch_size=1024)`` on
one core (an A/B in one process, medians of 3): 28x28 raw digits 172k against 208k images/s
unguarded, of which the per-file ``flat_map`` that replaces the multi-file reader is most
(~10 %; the shuffled path pays that anyway) and ``ignore_errors`` + marker + ``take`` ~4 %;
28x28 PNG digits 47.8k against 51.9k (~8 %); photos, whose decode dominates, nothing
measurable. Files without counts (no manifest) are read as before, with TensorFlow's
message on damage.

Two kinds of damage TensorFlow's reader does not survive are found before it starts
(:func:`check_shards`, :func:`check_runs`): a listed shard that is missing (``ignore_errors``
retries opening it forever) and a record whose length field, its CRC valid, is larger than
the whole shard (the reader allocates the length first: 2^40 is a segfault). Local
uncompressed shards have their record headers walked for that; compressed shards and the
shards TensorFlow opens at ``gs://`` are not walked (that would mean inflating or fetching
them once more).

``shuffle="global"`` (:func:`read_runs`): runs of consecutive records, planned from the
index files (``shards.plan_runs``), are shuffled across all shards every epoch; each run is
read from its first record's byte offset (``TFRecordDatasetV2``'s ``byte_offsets``, which
the public ``TFRecordDataset`` does not take: the op's variant is wrapped with
``from_variant``) and cut to its count, with the same guard: a run cut short by damage is
filled with markers naming its file.

Shards at URLs. Which schemes TensorFlow 2.21 opens itself, measured
(``tf.io.gfile.exists`` and ``TFRecordDataset`` on each): ``get_registered_schemes()`` is
``file``, ``ram`` and ``gs``; ``s3``, ``memory``, ``hdfs``, ``http(s)``, ``az`` raise
"File system scheme ... not implemented". Its ``gs`` has Google's endpoints built in
(``www.googleapis.com``): with ``STORAGE_EMULATOR_HOST`` set it still resolves Google's
host, never the emulator. So:

- local paths and ``gs://`` (no emulator): TensorFlow's own ``TFRecordDataset``, with an
  8 MiB buffer for remote shards (its 256 KiB default costs a round trip per 256 KiB),
  and ``tf.io.read_file`` for the raw twin;
- every other URL (``s3://``, ``memory://``, ``gs://`` against an emulator, any fsspec URL):
  below, in Python. Uncompressed shards with their ``.idx`` files (every dataset we write;
  the index objects are fetched in one concurrent batch) are cut into pieces of up to
  8 MiB of whole records, each one ranged read in a ``py_function``, four in flight, in
  order (:func:`_read_pieces`). Other shards (compressed, or without an index) are
  streamed by a generator each (``tf.data.Dataset.from_generator``; 8 MiB ranged reads, the
  next one asked while this one is parsed: ``storage.streams.open_stream``), yielding chunks of
  up to 256 records, interleaved and unbatched. Measured on 2 cores: a generator costs
  ~40 ms per epoch and ~6 ms per shard before its first record, a piece a fraction of a
  millisecond; 400 JPEG records (23 KiB) read 2.2k/s streamed, 3.9k/s in pieces, 8k/s
  locally (moto's S3 on the same machine, which takes CPU from the reader). Either way
  every CRC is checked (``stream.frames``, the layout of ``format/framing.py``).

Damage is reported as the local reader reports it: a damaged record, a short shard or an
object that cannot be read becomes a marker record whose message names the URL (and the
record index and byte offset), and :func:`check` raises it when it reaches the parser;
where the manifest gives a shard's count the markers fill it, so the cardinality holds.

Options as locally: shuffle (files, then the record buffer), ``num_workers``/``worker_index``,
``cycle_length`` (streamed shards alternate by chunks of records, not single records),
``shuffle="global"`` (each run of records is one ranged read of its bytes, in a parallel
``map``). Not ``service``: a tf.data service worker cannot run this process's Python.
"""

from __future__ import annotations

import concurrent.futures
import mmap
import os
from collections.abc import Iterator, Mapping

import numpy as np
import tensorflow as tf

from .. import storage
from ..dataset.indexes import read_indexes
from ..errors import Damage, FormatError, RecordError, TFRecordToolsError
from ..format.compression import normalize_compression
from ..format.framing import HEADER_SIZE, LENGTH, OVERHEAD, header_ok
from .options import ReadOptions
from .shards import Runs, plan_pieces
from .stream import REMOTE_BUFFER, run_records_of, shard_records, tf_opens

#: Starts the marker record. No serialized Example starts with a zero byte (protobuf field
#: tag 0 does not exist), so the marker cannot be mistaken for data.
_MARK = "\x00tfrecord-tools: "
_DAMAGED = (
    ": damaged shard; it holds fewer intact records than the ",
    " its manifest lists (run `tfrecord-tools verify` on it, then `repair`)",
)


def read_records(
    files: list[str],
    counts: list[int] | None,
    compression_type: str,
    opts: ReadOptions,
    sizes: Mapping[str, int] | None = None,
) -> tf.data.Dataset:
    """The records of ``files`` (``counts``: each file's records, when known). Files at
    URLs TensorFlow cannot open come through fsspec (``sizes``: their sizes by URL, when a
    listing gave them)."""
    if not all(map(tf_opens, files)):
        return _read_records_fsspec(files, counts, compression_type, opts, sizes or {})
    check_shards(files, counts, compression_type, sizes)
    # remote shards (gs://) in large reads: each 256 KiB buffer refill is a round trip
    buffer = REMOTE_BUFFER if any(map(storage.is_url, files)) else None

    def read(f, n=None):
        records = tf.data.TFRecordDataset(f, compression_type=compression_type, buffer_size=buffer)
        if n is None:
            return records
        count = tf.strings.as_string(n)
        marker = tf.strings.join([_MARK, f, _DAMAGED[0], count, _DAMAGED[1]])
        records = records.ignore_errors().concatenate(tf.data.Dataset.from_tensors(marker).repeat())
        return records.take(n)

    if counts is None and not opts.shuffle and opts.cycle_length == 1:
        return tf.data.TFRecordDataset(files, compression_type=compression_type, buffer_size=buffer)
    if counts is None:
        ds = tf.data.Dataset.from_tensor_slices(files)
    else:
        ds = tf.data.Dataset.from_tensor_slices((files, tf.constant(counts, tf.int64)))
    if opts.shuffle:
        ds = ds.shuffle(len(files), seed=opts.seed, reshuffle_each_iteration=True)
    if opts.cycle_length == 1:
        return ds.flat_map(read)
    # parallel: in tf.data service's distributed_epoch mode a sequential interleave after a
    # shuffle delivers every record once per worker (TF 2.21)
    return ds.interleave(
        read,
        cycle_length=min(opts.cycle_length, len(files)),
        num_parallel_calls=opts.cycle_length,
        deterministic=opts.deterministic,
    )


def read_runs(runs: Runs, opts: ReadOptions) -> tf.data.Dataset:
    """The records of ``runs`` (uncompressed shards), the runs in a new order every epoch
    (deterministic for ``seed``). Runs at URLs TensorFlow cannot open are read through
    fsspec, one ranged read each."""
    if not all(map(tf_opens, runs.files)):
        return _read_runs_fsspec(runs, opts)
    check_runs(runs)
    most = REMOTE_BUFFER if any(map(storage.is_url, runs.files)) else _READ_BUFFER

    def read(f, offset, n, size):
        # the reader's buffer fits the run: a short run does not read 256 KiB
        buffer = tf.clip_by_value(size, 4 << 10, most)
        variant = tf.raw_ops.TFRecordDatasetV2(
            filenames=tf.reshape(f, [1]),
            compression_type="",
            buffer_size=buffer,
            byte_offsets=tf.reshape(offset, [1]),
        )
        records = tf.data.experimental.from_variant(variant, tf.TensorSpec([], tf.string))
        count = tf.strings.as_string(n)
        marker = tf.strings.join([_MARK, f, _DAMAGED[0], count, _DAMAGED[1]])
        records = records.ignore_errors().concatenate(tf.data.Dataset.from_tensors(marker).repeat())
        return records.take(n)

    ds = tf.data.Dataset.from_tensor_slices(
        (runs.files, *(tf.constant(v, tf.int64) for v in (runs.offsets, runs.counts, runs.sizes)))
    )
    ds = ds.shuffle(len(runs.files), seed=opts.seed, reshuffle_each_iteration=True)
    if opts.cycle_length == 1:
        return ds.flat_map(read)
    # as in read_records: a parallel interleave, never a sequential one, after the shuffle
    return ds.interleave(
        read,
        cycle_length=min(opts.cycle_length, len(runs.files)),
        num_parallel_calls=opts.cycle_length,
        deterministic=opts.deterministic,
    )


_READ_BUFFER = 256 << 10  # TFRecordDataset's default


# --------------------------------------------------------------------------- before TF reads


def check_shards(
    files: list[str],
    counts: list[int] | None,
    compression_type: str,
    sizes: Mapping[str, int] | None = None,
) -> None:
    """Raise, naming the file, where TensorFlow's reader would never come back: a listed
    shard that is not there (``ignore_errors`` retries opening it forever) or a record
    whose length cannot fit (:func:`_check_lengths`). ``counts``: the records read of each
    file (TensorFlow reads no further); ``sizes``: object sizes by URL, when a listing gave
    them."""
    walks = []
    for number, file in enumerate(files):
        if _is_local_file(file, sizes) and compression_type == "":
            walks.append((file, [(0, 0, -1 if counts is None else counts[number])]))
    _walk(walks)


def check_runs(runs: Runs) -> None:
    """:func:`check_shards` for ``shuffle="global"``: TensorFlow reads each run from its
    first record's offset, so each run is walked from there."""
    starts: dict[str, list[tuple[int, int, int]]] = {}
    for file, offset, first, count in zip(
        runs.files, runs.offsets, runs.firsts, runs.counts, strict=True
    ):
        starts.setdefault(file, []).append((offset, first, count))
    _walk([(file, walks) for file, walks in starts.items() if _is_local_file(file, None)])


def _is_local_file(file: str, sizes: Mapping[str, int] | None) -> bool:
    """Is ``file`` a local shard (then walked), or an error naming it when it is not there
    (a URL: when a listing's ``sizes`` leave it out)."""
    if storage.is_url(file):
        if sizes and file not in sizes:
            raise TFRecordToolsError(f"{storage.redact(file)}: {_MISSING}")
        return False
    if not os.path.exists(file):
        raise TFRecordToolsError(f"{file}: {_MISSING}")
    if not os.path.isfile(file):
        raise TFRecordToolsError(f"{file}: not a file; the dataset lists it as a shard")
    return True


_MISSING = (
    "no such shard file, but the dataset lists it (restore it from a copy, or convert "
    "again; `tfrecord-tools verify` checks every shard)"
)
_WALKERS = 16  # shards walked at once: from a cold page cache each header waits on a read
#: Records at least this long have a header per page: read by ``pread``, which releases
#: the interpreter while it waits on the disk (a page fault in an mmap does not)
_SPARSE = 16 << 10


def _walk(walks: list[tuple[str, list[tuple[int, int, int]]]]) -> None:
    """:func:`_check_lengths` for each ``(file, starts)``, several files at once; the error
    raised is the first file's in ``walks`` order."""
    if len(walks) <= 1:
        for file, starts in walks:
            _check_lengths(file, starts)
        return
    with concurrent.futures.ThreadPoolExecutor(min(len(walks), _WALKERS)) as pool:
        for _ in pool.map(lambda walk: _check_lengths(*walk), walks):
            pass


def _check_lengths(file: str, starts: list[tuple[int, int, int]]) -> None:
    """Walk the record headers of the local shard ``file`` from each ``(offset, index,
    count)`` in ``starts`` (count -1: to the end) and raise a RecordError at the first
    length field, its CRC valid, larger than the whole shard: TensorFlow's reader allocates
    a record's length before it reads the record (2^40: a segfault). Only the 12-byte
    headers are read, never the data; a walk stops where TensorFlow's reader would: the
    end, a short header, a length CRC that fails (then TensorFlow reports the damage).

    Measured per record (medians, 2 shared cores): 28x28 raw digits ~0.3 us (an mmap),
    ~0.8 us from a cold page cache; 500x375 photos ~1.5 us (a ``pread`` each), ~40-70 us
    cold (a random read of a page per header, shards walked at once), against ~130 us to
    read one cold. Once per ``make_dataset``: ~5 % of one pass over the digits."""
    with open(file, "rb", buffering=0) as f:
        size = os.fstat(f.fileno()).st_size  # what is there now
        first = f.read(HEADER_SIZE)
        if len(first) < HEADER_SIZE:
            return
        if LENGTH.unpack_from(first)[0] >= _SPARSE and hasattr(os, "pread"):
            for start in starts:
                _walk_read(f.fileno(), file, size, *start)
            return
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            for start in starts:
                _walk_mapped(mm, file, size, *start)


def _walk_mapped(mm: mmap.mmap, file: str, size: int, offset: int, index: int, count: int):
    unpack = LENGTH.unpack_from
    while count != 0 and offset + HEADER_SIZE <= size:
        (length,) = unpack(mm, offset)
        if length > size and header_ok(mm[offset : offset + HEADER_SIZE]):
            raise _impossible(file, size, index, offset, length)
        if length > size:
            return  # a length CRC that fails: TensorFlow stops there, allocating nothing
        offset += length + OVERHEAD
        index += 1
        count -= 1


def _walk_read(fd: int, file: str, size: int, offset: int, index: int, count: int):
    """:func:`_walk_mapped` with a ``pread`` per header."""
    while count != 0 and offset + HEADER_SIZE <= size:
        head = os.pread(fd, HEADER_SIZE, offset)
        (length,) = LENGTH.unpack_from(head)
        if length > size and header_ok(head):
            raise _impossible(file, size, index, offset, length)
        if length > size:
            return
        offset += length + OVERHEAD
        index += 1
        count -= 1


def _impossible(file: str, size: int, index: int, offset: int, length: int) -> RecordError:
    detail = (
        f"its length field says {length:,} bytes, more than the whole shard ({size:,} bytes); "
        "TensorFlow's reader would allocate that before reading (run `tfrecord-tools verify` "
        "on it, then `repair`)"
    )
    return Damage(index, offset, offset, "impossible record length", detail).error(file)


def marker(message: str) -> bytes:
    """A marker record carrying ``message``: :func:`check` raises it when it reaches the
    parser (how readers outside TensorFlow's record reader report damage in the graph)."""
    return (_MARK + message).encode("utf-8", "backslashreplace")


def short_shard(file: str, count: int) -> str:
    """The message of a shard that holds fewer intact records than its manifest lists."""
    return f"{file}{_DAMAGED[0]}{count}{_DAMAGED[1]}"


def check(records: tf.Tensor) -> tf.Tensor:
    """``records`` (a batch), after raising where a damaged shard's marker is among them."""
    marked = tf.strings.substr(records, 0, len(_MARK)) == _MARK
    message = tf.strings.substr(tf.boolean_mask(records, marked)[:1], len(_MARK), -1)
    with tf.control_dependencies([tf.debugging.Assert(~tf.reduce_any(marked), [message])]):
        return tf.identity(records)


# --------------------------------------------------------------------------- URLs fsspec reads


#: A generator yields records in chunks of at most this many records or bytes.
CHUNK_RECORDS = 256
CHUNK_BYTES = 4 << 20


def _problem(error: BaseException, where: str) -> str:
    if isinstance(error, FileNotFoundError):
        return f"{where}: no such object (listed, but not there: deleted or not uploaded)"
    return str(error) if where in str(error) else f"{where}: {error}"


# --------------------------------------------------------------------------- shards


def shard_chunks(
    url: bytes, compression: bytes, count: int, size: int = -1
) -> Iterator[list[bytes]]:
    """The records of one shard in chunks (``count``: its records per the manifest, -1:
    unknown; ``size``: its bytes, -1: unknown), then the markers that report damage."""
    path = url.decode("utf-8", "surrogateescape")
    where = storage.redact(path)
    name = normalize_compression(compression.decode())
    chunk: list[bytes] = []
    held = produced = 0
    message = None
    try:
        for data in shard_records(path, name, int(size)):
            if produced == count:
                break
            chunk.append(data)
            produced += 1
            held += len(data)
            if len(chunk) >= CHUNK_RECORDS or held >= CHUNK_BYTES:
                yield chunk
                chunk, held = [], 0
    except (TFRecordToolsError, OSError) as e:
        message = _problem(e, where)
    if message is None and 0 <= produced < count:
        message = short_shard(where, count)
    if message is not None:
        chunk += [marker(message)] * max(count - produced, 1)
    if chunk:
        yield chunk


def _read_records_fsspec(
    files: list[str],
    counts: list[int] | None,
    compression_type: str,
    opts: ReadOptions,
    sizes: Mapping[str, int],
) -> tf.data.Dataset:
    """The records of ``files`` read through fsspec (see the module docstring)."""
    _no_service(files, opts)
    compression = compression_type or "none"
    indexes = _indexes(files, counts, sizes) if compression == "none" else None
    if indexes is not None:
        return _read_pieces(files, indexes, opts)
    numbers = [-1] * len(files) if counts is None else counts
    known = [sizes.get(f, -1) for f in files]
    ds = tf.data.Dataset.from_tensor_slices(
        (files, tf.constant(numbers, tf.int64), tf.constant(known, tf.int64))
    )
    if opts.shuffle:
        ds = ds.shuffle(len(files), seed=opts.seed, reshuffle_each_iteration=True)
    spec = tf.TensorSpec([None], tf.string)

    def read(f, n, size):
        return tf.data.Dataset.from_generator(
            shard_chunks, output_signature=spec, args=(f, compression, n, size)
        )

    cycle = min(opts.cycle_length, len(files))
    ds = ds.interleave(
        read,
        cycle_length=cycle,
        num_parallel_calls=cycle,  # parallel even at 1: read in the background
        deterministic=opts.deterministic,
    )
    return ds.unbatch()


# --------------------------------------------------------------------------- runs


def run_records(url: bytes, offset: int, count: int, size: int, first: int) -> np.ndarray:
    """The ``count`` records of a run: one ranged read of its ``size`` bytes from
    ``offset``, then the framing; markers where it is damaged."""
    path = url.decode("utf-8", "surrogateescape")
    where = storage.redact(path)
    out: list[bytes] = []
    try:
        for record in run_records_of(path, offset, size, first):
            out.append(record)
            if len(out) == count:
                break
        message = None if len(out) == count else short_shard(where, count)
    except (TFRecordToolsError, OSError) as e:
        message = _problem(e, where)
    if message is not None:
        out += [marker(message)] * (count - len(out))
    records = np.empty(len(out), dtype=object)
    records[:] = out
    return records


def _read_runs_fsspec(runs: Runs, opts: ReadOptions) -> tf.data.Dataset:
    """The records of ``runs`` (uncompressed shards), the runs in a new order every epoch,
    each run one ranged read through fsspec."""
    _no_service(runs.files, opts)
    ds = tf.data.Dataset.from_tensor_slices(
        (
            runs.files,
            *(
                tf.constant(v, tf.int64)
                for v in (runs.offsets, runs.counts, runs.sizes, runs.firsts)
            ),
        )
    )
    ds = ds.shuffle(len(runs.files), seed=opts.seed, reshuffle_each_iteration=True)

    def read(f, offset, n, size, first):
        def load(*args):
            return run_records(*(a.numpy() for a in args))

        out = tf.py_function(load, [f, offset, n, size, first], tf.string)
        out.set_shape([None])
        return out

    calls = max(opts.cycle_length, 2)
    ds = ds.map(read, num_parallel_calls=calls, deterministic=opts.deterministic)
    return ds.unbatch()


def _indexes(files: list[str], counts: list[int] | None, sizes: Mapping[str, int]) -> list | None:
    """Every file's index entries, fetched at once (one concurrent batch of reads); None
    when one has none or lists another count than the manifest (then the shards are
    streamed instead)."""
    try:
        return read_indexes(files, counts=counts, sizes=sizes)
    except (FileNotFoundError, FormatError):
        return None  # a plain read needs no index: streamed, as TensorFlow reads local files


def _read_pieces(files: list[str], indexes: list, opts: ReadOptions) -> tf.data.Dataset:
    """Indexed, uncompressed shards: pieces of up to ``REMOTE_BUFFER`` bytes, each one
    ranged read in a ``py_function``, several in flight, in file order (a ``map``: a few
    hundred microseconds a piece, where a generator per shard costs ~40 ms an epoch)."""
    pieces, splits = plan_pieces(files, indexes, REMOTE_BUFFER)
    table = (
        tf.constant(pieces.files, tf.string),
        *(
            tf.constant(v, tf.int64)
            for v in (pieces.offsets, pieces.counts, pieces.sizes, pieces.firsts)
        ),
    )
    bounds = tf.constant(splits, tf.int64)
    ds = tf.data.Dataset.range(len(files))
    if opts.shuffle:
        ds = ds.shuffle(len(files), seed=opts.seed, reshuffle_each_iteration=True)
    ds = ds.flat_map(lambda i: tf.data.Dataset.range(bounds[i], bounds[i + 1]))

    def read(i):
        out = tf.py_function(
            lambda *args: run_records(*(a.numpy() for a in args)),
            [t[i] for t in table],
            tf.string,
        )
        out.set_shape([None])
        return out

    calls = max(opts.cycle_length, _IN_FLIGHT)
    return ds.map(read, num_parallel_calls=calls, deterministic=opts.deterministic).unbatch()


_IN_FLIGHT = 4  # pieces read at once (network waits release the interpreter)


# --------------------------------------------------------------------------- raw files


def read_files(paths: tf.Tensor) -> tf.Tensor:
    """The bytes of the files at ``paths`` (a string tensor, any shape): TensorFlow's
    ``read_file`` where it opens them, else one concurrent fetch through fsspec per call."""

    def load(batch):
        paths = np.asarray(batch.numpy(), dtype=object)
        data = storage.read_many([p.decode("utf-8", "surrogateescape") for p in paths.flat])
        out = np.empty(len(data), dtype=object)
        out[:] = data
        return out.reshape(paths.shape)

    out = tf.py_function(load, [paths], tf.string)
    out.set_shape(paths.shape)
    return out


def _no_service(files: list[str], opts: ReadOptions) -> None:
    if opts.service is not None:
        raise TFRecordToolsError(
            f"{storage.redact(files[0])}: service= needs shards TensorFlow opens itself "
            "(local paths, gs://): its workers cannot run the Python reader that "
            f"{storage.scheme(files[0])}:// URLs need"
        )
