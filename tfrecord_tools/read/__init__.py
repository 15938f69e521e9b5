"""Reading datasets back with tf.data.

Data flow: PATH -> shards (files, counts, per-host part) -> pipeline (records, shuffle,
parse) -> decode (``tf.case`` per record) -> batches -> [service: tf.data service workers].
``options`` and ``shards`` are TensorFlow-free; ``pipeline``, ``decode`` and ``service``
import it.
"""
