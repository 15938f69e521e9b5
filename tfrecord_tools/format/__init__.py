"""The on-disk format (``FORMAT.md``), one module per concept, TensorFlow-free: it imports
only the ground floor (``errors``) and ``storage``, so every stage (convert, read, check)
builds on the same rules.

    naming       file names: shard template (format and parse), index, manifest, temp files
    framing      record framing: header, CRCs, reading records and headers
    compression  none / gzip / zlib: detection and codecs both ways
    index        ``SHARD.idx`` lines
    example      the tf.train.Example feature keys, encoder and TF-free parser
    detection    the detection API's object keys on top of ``example``: encoder, parser
    manifest     ``dataset.json``: builder and typed, validating reader
    writer       a shard and its index, written atomically
    scan         one pass over a record stream: every record or damaged stretch, named
"""

#: The version of the FORMAT.md contract this code writes and reads (its "Contract version"
#: line). Compatible extensions raise the minor number; the manifest's ``format_version``
#: (``manifest.FORMAT_VERSION``) stays 1 until a change breaks old readers.
CONTRACT_VERSION = "1.7"
