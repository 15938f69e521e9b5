"""The on-disk format (``FORMAT.md``), one module per concept, TensorFlow-free: it imports
nothing else of the package, so every stage (convert, read, check) builds on the same rules.

    naming       file names: shard template (format and parse), index, manifest, temp files
    framing      record framing: header, CRCs, reading records and headers
    compression  none / gzip / zlib: detection and codecs both ways
    index        ``SHARD.idx`` lines
    atomic       temp file, then rename
    errors       the base error, a damaged record (``Damage``) and its error
    example      the tf.train.Example feature keys, encoder and TF-free parser
    manifest     ``dataset.json``: builder and typed, validating reader
    writer       a shard and its index, written atomically
"""
