"""A baseline converter in the style of TensorFlow's inception ``build_image_data.py``:
every image is decoded in a TF session (PNGs re-encoded as JPEG), Examples are built with
``tf.train.Example`` and written with ``tf.io.TFRecordWriter`` from a few threads.

It exists only to be measured against ``tfrecord-tools convert`` in the same run
(``bench_convert.py``); it is written here from the description of that script, not copied.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path


def convert_like_inception(
    src: Path, out: Path, *, num_threads: int = 2, num_shards: int = 2
) -> int:
    """Convert ``src`` (class subfolders) the way build_image_data.py does; return the
    number of images written."""
    import tensorflow as tf

    tf1 = tf.compat.v1
    classes = sorted(p.name for p in src.iterdir() if p.is_dir())
    files = [
        (str(f), label, name)
        for label, name in enumerate(classes)
        for f in sorted((src / name).rglob("*"))
        if f.is_file() and f.name[0] != "."
    ]
    graph = tf.Graph()
    with graph.as_default():
        png_in = tf1.placeholder(tf.string)
        png_to_jpeg = tf.io.encode_jpeg(tf.io.decode_png(png_in, channels=3), quality=100)
        jpeg_in = tf1.placeholder(tf.string)
        jpeg_decoded = tf.io.decode_jpeg(jpeg_in, channels=3)
    # one session shared by the threads, with TensorFlow's default thread pools, as the
    # script's ImageCoder has it (a 1-thread pool here once made this baseline ~1.5x slower
    # by serialising the two threads' session runs)
    sess = tf1.Session(graph=graph)

    def feature_bytes(v: bytes):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v]))

    def feature_int(v: int):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[v]))

    def process(path: str) -> tuple[bytes, int, int]:
        data = Path(path).read_bytes()
        if data[:8] == b"\x89PNG\r\n\x1a\n":
            data = sess.run(png_to_jpeg, {png_in: data})
        image = sess.run(jpeg_decoded, {jpeg_in: data})
        return data, image.shape[0], image.shape[1]

    ranges = [files[i::num_shards] for i in range(num_shards)]
    written = [0] * num_shards

    def worker(thread_index: int) -> None:
        for shard in range(thread_index, num_shards, num_threads):
            name = out / f"train-{shard:05d}-of-{num_shards:05d}"
            with tf.io.TFRecordWriter(str(name)) as writer:
                for path, label, text in ranges[shard]:
                    data, height, width = process(path)
                    example = tf.train.Example(
                        features=tf.train.Features(
                            feature={
                                "image/height": feature_int(height),
                                "image/width": feature_int(width),
                                "image/colorspace": feature_bytes(b"RGB"),
                                "image/channels": feature_int(3),
                                "image/class/label": feature_int(label),
                                "image/class/text": feature_bytes(text.encode()),
                                "image/format": feature_bytes(b"JPEG"),
                                "image/filename": feature_bytes(os.path.basename(path).encode()),
                                "image/encoded": feature_bytes(data),
                            }
                        )
                    )
                    writer.write(example.SerializeToString())
                    written[shard] += 1

    out.mkdir(parents=True, exist_ok=True)
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(num_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sess.close()
    return sum(written)


if __name__ == "__main__":  # a whole process, TensorFlow's import included: SRC OUT
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    print(convert_like_inception(Path(sys.argv[1]), Path(sys.argv[2])))
