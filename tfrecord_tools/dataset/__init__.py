"""The dataset layer: what a PATH holds, which shards, what each promises, and which keys
hold the image and label. Every reader (tf.data, TF-free, adapters) and every tool
(inspect, count, verify, repair, index, view, bench) starts here, so they find, open and
check a dataset the same way. TensorFlow-free.

    resolve      PATH -> Dataset (ours, TFDS, bare files) with its Shards; unfinished and
                 unknown folders are errors
    keys         which feature keys hold image and label (ours, TFDS, Keras, slim...)
    task         classification, detection or segmentation records; check_task, the one
                 check every reader makes that the records fit the task it was asked for
    images       the one lister of image folders (the converter and the raw-file twin)
"""

from __future__ import annotations

from .keys import AUTO, FeatureKeys, keys_for, resolve_keys
from .resolve import Dataset, Shard, resolve
from .task import TASKS, check_task

__all__ = [
    "AUTO",
    "TASKS",
    "Dataset",
    "FeatureKeys",
    "Shard",
    "check_task",
    "keys_for",
    "resolve",
    "resolve_keys",
]
