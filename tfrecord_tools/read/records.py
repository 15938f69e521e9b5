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

``shuffle="global"`` (:func:`read_runs`): runs of consecutive records, planned from the
index files (``shards.plan_runs``), are shuffled across all shards every epoch; each run is
read from its first record's byte offset (``TFRecordDatasetV2``'s ``byte_offsets``, which
the public ``TFRecordDataset`` does not take: the op's variant is wrapped with
``from_variant``) and cut to its count, with the same guard: a run cut short by damage is
filled with markers naming its file.
"""

from __future__ import annotations

import tensorflow as tf

from .options import ReadOptions
from .shards import Runs

#: Starts the marker record. No serialized Example starts with a zero byte (protobuf field
#: tag 0 does not exist), so the marker cannot be mistaken for data.
_MARK = "\x00tfrecord-tools: "
_DAMAGED = (
    ": damaged shard; it holds fewer intact records than the ",
    " its manifest lists (run `tfrecord-tools verify` on it, then `repair`)",
)


def read_records(
    files: list[str], counts: list[int] | None, compression_type: str, opts: ReadOptions
) -> tf.data.Dataset:
    """The records of ``files`` (``counts``: each file's records, when known)."""

    def read(f, n=None):
        records = tf.data.TFRecordDataset(f, compression_type=compression_type)
        if n is None:
            return records
        count = tf.strings.as_string(n)
        marker = tf.strings.join([_MARK, f, _DAMAGED[0], count, _DAMAGED[1]])
        records = records.ignore_errors().concatenate(tf.data.Dataset.from_tensors(marker).repeat())
        return records.take(n)

    if counts is None and not opts.shuffle and opts.cycle_length == 1:
        return tf.data.TFRecordDataset(files, compression_type=compression_type)
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
    (deterministic for ``seed``)."""

    def read(f, offset, n, size):
        # the reader's buffer fits the run: a short run does not read 256 KiB
        buffer = tf.clip_by_value(size, 4 << 10, _READ_BUFFER)
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


def check(records: tf.Tensor) -> tf.Tensor:
    """``records`` (a batch), after raising where a damaged shard's marker is among them."""
    marked = tf.strings.substr(records, 0, len(_MARK)) == _MARK
    message = tf.strings.substr(tf.boolean_mask(records, marked)[:1], len(_MARK), -1)
    with tf.control_dependencies([tf.debugging.Assert(~tf.reduce_any(marked), [message])]):
        return tf.identity(records)
