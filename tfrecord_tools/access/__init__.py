"""Reading TFRecords without TensorFlow: random access and fast sequential batches for
PyTorch, JAX/grain and numpy.

Data flow: PATH -> ``source`` (shards, indexes, one pread per record, CRCs) -> ``parse``
(Example wire format) -> ``decode`` (Pillow / numpy) -> ``(image, label)``; sequentially,
``frames`` (whole shards, vectorised framing) -> ``batch`` (batches, worker shares). The
adapters ``torch`` and ``grain`` import their library; nothing here imports TensorFlow.
"""

from .source import TFRecordDataSource

__all__ = ["TFRecordDataSource"]
