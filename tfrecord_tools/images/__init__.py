"""Image files, below the dataset layer: what a file's bytes hold and how Pillow's formats
become PNG. TensorFlow-free; used by the converter, the raw-file twin, inspect and the
benchmark alike.

    probe     the format from the magic bytes, dimensions and orientation without a full
              decode, bounded reads, the checks that keep a bad file out of a dataset
    reencode  Pillow's formats -> PNG, upright, values kept; quiet Pillow warnings
    pngenc    a small, fast PNG encoder for 8- and 16-bit arrays
"""
