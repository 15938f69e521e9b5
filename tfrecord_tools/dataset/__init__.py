"""The dataset layer: what a PATH holds, which shards, what each promises, and which keys
hold the image and label. Every reader (tf.data, TF-free, adapters) and every tool
(inspect, count, verify, repair, index, view, bench) starts here, so they find, open and
check a dataset the same way. TensorFlow-free.

    resolve      PATH -> Dataset (ours, TFDS, bare files) with its Shards; unfinished and
                 unknown folders are errors
    keys         which feature keys hold image and label (ours, TFDS, Keras, slim...)
    images       the one lister of image folders (the converter and the raw-file twin)
"""

from __future__ import annotations

from .keys import AUTO, FeatureKeys, keys_for, resolve_keys
from .resolve import Dataset, Shard, resolve

__all__ = ["AUTO", "Dataset", "FeatureKeys", "Shard", "keys_for", "resolve", "resolve_keys"]
