"""The two cells of bench_read.py that the harness has no source for, in a fresh process
pinned to the requested cores: the decode-bound limit, and TensorFlow's record reader alone.

    python benchmarks/read_child.py SPEC_JSON   (bench_read.py runs it through
                                                 tfrecord_tools.bench.runner.run_child)

The reader cells of bench_read.py run in the harness's own child (``tfrecord_tools.bench.
child``); these two pin, time and answer with its functions: ``child.pin`` before
TensorFlow is imported, ``timing.measure`` for the record reader's passes, ``child.answer``
for the result line. A file, not ``python -c``: autograph needs the source of the functions
it converts.
"""

import json
import os
import statistics
import sys
import time

from tfrecord_tools.bench.child import answer, pin
from tfrecord_tools.bench.timing import measure

CELL = json.loads(sys.argv[1])
AFFINITY = pin(CELL["cpus"])  # before TensorFlow sizes its pools
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

from tfrecord_tools.format.example import decode_example  # noqa: E402
from tfrecord_tools.format.framing import iter_records  # noqa: E402


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
    best = min(times.values(), key=statistics.median)  # the harness's figure: the median
    return {"images": int(data.shape[0]), "seconds": best}


def records_only(cell):
    """TensorFlow's record reader and ``batch`` with nothing after them: the ceiling of any
    reader built on ``TFRecordDataset`` (it checks both CRCs of every record)."""
    root = cell["path"]
    names = [p for p in os.listdir(root) if "-train.tfrecord-" in p and ".idx" not in p]
    files = sorted(os.path.join(root, p) for p in names)
    options = tf.data.Options()
    options.autotune.enabled = False

    def make():
        return tf.data.TFRecordDataset(files).batch(cell["batch"]).prefetch(2).with_options(options)

    return measure(make, repeats=cell["repeats"], files=files)  # warm: files only checked


def main():
    cell = {"limit": limit, "records": records_only}[CELL["source"]]
    answer({**cell(CELL), "affinity": AFFINITY})


main()
