"""One cell of bench_read.py, in a fresh process pinned to the requested cores.

A file, not ``python -c``: autograph needs the source of the functions it converts.
"""

import json
import os
import sys
import time

CELL = json.loads(sys.argv[1])
os.sched_setaffinity(0, set(range(CELL["cores"])))  # before TensorFlow sizes its pools
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"

import tensorflow as tf  # noqa: E402

from tfrecord_tools.format.example import decode_example  # noqa: E402
from tfrecord_tools.format.framing import iter_records  # noqa: E402
from tfrecord_tools.read.pipeline import make_dataset, make_raw_dataset  # noqa: E402


def evict(paths):
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def files_of(root):
    return [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs if f[0] != "."]


def time_pass(make):
    """Seconds from iterator creation to the last element's arrival."""
    ds = make()
    t = time.perf_counter()
    n = 0
    for images, _ in ds:
        n += int(images.shape[0])
    return n, time.perf_counter() - t


def encoded_images(root):
    shards = sorted(p for p in os.listdir(root) if ".tfrecord-" in p and not p.endswith(".idx"))
    return [
        decode_example(r.data)["image/encoded"][1][0]
        for shard in shards
        for r in iter_records(os.path.join(root, shard))
    ]


def limit(cell):
    """The decode work alone, over encoded bytes already in memory, in a tight graph loop.

    Two loop forms, and the faster one is the limit: one keeps a pixel of each image (a few
    ops per image: the tighter form for large images), the other writes each image to a
    TensorArray (one op per image: tighter for 28x28 PNGs, ~15 % faster there)."""
    data = tf.constant(encoded_images(cell["path"]))
    size = cell.get("image_size")

    def decode_one(encoded):
        if size:
            img = tf.io.decode_image(encoded, channels=3, expand_animations=False)
            return tf.image.resize(img, (size, size))
        return tf.io.decode_png(encoded, channels=1)

    @tf.function
    def keep_a_pixel(data):
        total = tf.constant(0, tf.int64)
        for i in tf.range(tf.shape(data)[0]):
            total += tf.cast(decode_one(data[i])[0, 0, 0], tf.int64)
        return total

    @tf.function
    def write_each(data):
        n = tf.shape(data)[0]
        dtype = tf.float32 if size else tf.uint8
        images = tf.TensorArray(dtype, size=n, element_shape=[size, size, 3] if size else None)
        _, images = tf.while_loop(
            lambda i, _: i < n,
            lambda i, acc: (i + 1, acc.write(i, decode_one(data[i]))),
            (tf.constant(0), images),
            parallel_iterations=1,
        )
        return tf.shape(images.stack())[0]

    forms = {"keep_a_pixel": keep_a_pixel, "write_each": write_each}
    times = {name: [] for name in forms}
    for run in forms.values():
        run(data[:8])
    for _ in range(CELL["repeats"]):  # interleaved, so both see the same machine
        for name, run in forms.items():
            t = time.perf_counter()
            run(data).numpy()
            times[name].append(time.perf_counter() - t)
    best = min(times.values(), key=lambda ts: sorted(ts)[len(ts) // 2])
    return int(data.shape[0]), best


def records_only(cell):
    """TensorFlow's record reader and ``batch`` with nothing after them: the ceiling of any
    reader built on ``TFRecordDataset`` (it checks both CRCs of every record)."""
    root = cell["path"]
    names = [p for p in os.listdir(root) if "-train.tfrecord-" in p and ".idx" not in p]
    files = sorted(os.path.join(root, p) for p in names)
    options = tf.data.Options()
    options.autotune.enabled = False

    def one_pass():
        ds = tf.data.TFRecordDataset(files).batch(cell["batch"]).prefetch(2)
        t = time.perf_counter()
        n = sum(int(records.shape[0]) for records in ds.with_options(options))
        return n, time.perf_counter() - t

    one_pass()
    passes = [one_pass() for _ in range(cell["repeats"])]
    return passes[0][0], [dt for _, dt in passes]


def main():
    kw = {
        "batch_size": CELL["batch"],
        "image_size": CELL.get("image_size"),
        "channels": CELL["channels"],
        **CELL.get("options", {}),
    }
    if CELL["source"] == "limit":
        n, times = limit(CELL)
    elif CELL["source"] == "records":
        n, times = records_only(CELL)
    else:
        reader = make_dataset if CELL["source"] == "tfrecord" else make_raw_dataset

        def make():
            return reader(CELL["path"], **kw)

        time_pass(make)  # warm-up: traces functions, fills the page cache
        times = []
        for _ in range(CELL["repeats"]):
            if CELL["cache"] == "cold":
                evict(files_of(CELL["path"]))
            n, dt = time_pass(make)
            times.append(dt)
    print(json.dumps({"n": n, "times": times}))


main()
